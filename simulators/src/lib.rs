//! medbus-simulators: clients that play the hospital systems around medbus, for tests,
//! demonstrations and load measurements. Each protocol is one module.
//!
//! - [`hl7`]: HL7 v2 over MLLP — a seeded generator of realistic ADT, ORM, ORU, DFT and SIU
//!   traffic (with malformed messages and resends), a sender over N connections that checks
//!   every ACK, and the report of a run. The `medbus-sim` binary is its command line.
//!
//! - [`fhir`]: FHIR R4 over HTTP — N concurrent clients creating distinct Patients, with
//!   requests/s and exact latency percentiles.
//!
//! Every load loop here is bounded in count and in time, and only sends to loopback.

#![warn(missing_docs)]

pub mod dicom;
pub mod fhir;
pub mod hl7;
