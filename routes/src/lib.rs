//! medbus-routes: turns what the adapters kept into canonical events.
//!
//! - [`hl7_router`]: the durable consumer of `medbus.ingress.hl7v2.>` that
//!   records each message in the store, parses and maps it, publishes its
//!   canonical events, and only then acknowledges the ingress message.
//!
//! Route rules from configuration (filters, field maps, code tables, fan-out)
//! arrive with the routes issue; until then every ADT message of every HL7
//! channel is mapped, and other message types are recorded as filtered.
//!
//! Depends on `bus` and on `adapters` (for the HL7 parser and the
//! HL7 → canonical mapping, which belong to the protocol adapter).

pub mod hl7_router;
