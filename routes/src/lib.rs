//! medbus-routes: turns what the adapters kept into canonical events.
//!
//! - [`hl7_router`]: the durable consumer of `medbus.ingress.hl7v2.>` that
//!   records each message in the store, parses and maps it, publishes its
//!   canonical events, and only then acknowledges the ingress message.
//! - [`config`]: route files (filters, transforms, code tables, fan-out to
//!   services and destinations), checked with file and line, compiled once and
//!   run per message (`Routes::select`, `Route::apply`).
//!
//! Until the router runs the configured routes, every ADT message of every HL7
//! channel is mapped, and other message types are recorded as filtered.
//!
//! Depends on `bus` and on `adapters` (for the HL7 parser and the
//! HL7 → canonical mapping, which belong to the protocol adapter).

pub mod config;
pub mod hl7_router;
