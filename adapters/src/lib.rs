//! medbus-adapters: the protocols medbus speaks to the outside world. Each
//! adapter is one folder, listed once here.
//!
//! - [`hl7`]: HL7 v2 — the zero-copy parser and writer (`hl7::parser`), and
//!   MLLP framing (`hl7::mllp_codec`).
//! - [`dicom`]: DICOM — the storage SCP (C-ECHO, C-STORE) that keeps received
//!   instances, the storage SCU, and forwarding to a PACS (`dicom::forward`).
//! - [`fhir`]: canonical events → FHIR R4 resources and transaction Bundles.
//! - [`webhook`]: webhook subscriptions — events POSTed, HMAC-signed, in order.

mod destination_status;
pub mod dicom;
pub mod fhir;
pub mod hl7;
pub mod webhook;
