//! medbus-routes: turns what the adapters kept into canonical events.
//!
//! - [`hl7_router`]: the durable consumer of `medbus.ingress.hl7v2.>` that
//!   records each message in the store, runs the routes in force on it,
//!   publishes the canonical events (tagged with the services they go to) and
//!   the changed messages for destinations, and only then acknowledges the
//!   ingress message.
//! - [`fhir_router`]: the durable consumer of `medbus.ingress.fhir.>` that
//!   records each accepted FHIR request and publishes the canonical events
//!   its resources stand for (the same events HL7 v2 input produces).
//! - [`dicom_router`]: the durable consumer of `medbus.ingress.dicom.>` that
//!   records each instance the SCP kept and publishes its
//!   `imaging.instance-stored` event.
//! - `batch`: the batch skeleton the FHIR and DICOM routers share (two store
//!   transactions a batch, lanes, settling).
//! - [`hl7_plan`]: what the routes do with one message, decided before anything is written.
//! - [`config`]: route files (filters, transforms, code tables, fan-out to
//!   services and destinations), checked with file and line, compiled once and
//!   run per message (`Routes::select`, `Route::apply`).
//! - [`live`] and [`reload`]: the routes in force, replaced between messages
//!   on SIGHUP or when the files change, and only by a valid version.
//!
//! Without route files every message that maps goes to every service of its
//! kinds; other message types are recorded as filtered.
//!
//! Depends on `bus` and on `adapters` (for the HL7 parser and the
//! HL7 → canonical mapping, which belong to the protocol adapter).

mod batch;
pub mod config;
pub mod dicom_router;
mod failure;
pub mod fhir_router;
pub mod hl7_plan;
pub mod hl7_router;
pub mod live;
pub mod publish;
pub mod reload;
