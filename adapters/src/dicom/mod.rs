//! DICOM: a storage SCP (C-ECHO, C-STORE) on dicom-rs, the storage SCU that
//! sends instances on, and the forwarder that delivers received instances to a
//! PACS with it.
//!
//! dicom-ul negotiates associations; the DIMSE messages on top are built and
//! read here by hand, because dicom-rs has no DIMSE layer.
//!
//! - `options`: [`ScpOptions`] — AE title, allow-list, PDU and data set limits, timeouts.
//! - `sop_classes`: the storage SOP classes and transfer syntaxes the SCP accepts.
//! - `access`: which calling and called AE titles may associate (logged when refused).
//! - `dimse`: command sets — C-ECHO and C-STORE requests read, responses written.
//! - `dataset`: metadata read from a received data set (the code the fuzz target runs).
//! - `element_lengths`: a header walk that bounds what the parser may allocate.
//! - `instance`: [`ReceivedInstance`], [`InstanceMetadata`] and the [`InstanceSink`] trait
//!   the SCP calls before it answers a C-STORE.
//! - `part10`: a received instance as DICOM Part-10 file bytes.
//! - `reassembly`: P-DATA fragments into complete DIMSE messages, with size caps.
//! - `budget`: [`budget::MemoryBudget`] — the memory all associations' data sets share.
//! - `association`: one association — negotiation, DIMSE dispatch, timeouts.
//! - `scp`: [`run`] — the accept loop, association limit, shutdown.
//! - `storage`: UID-derived paths and atomic file writes.
//! - `ingest`: [`FileAndBackboneSink`] — file first, then the backbone, then success.
//! - `canonical`: what the SCP published for an instance → the body of an
//!   `imaging.instance-stored` event (the DICOM router runs it).
//! - `scu`: the storage SCU — associations as requestor, C-STORE / C-ECHO, P-DATA
//!   framing, stored Part-10 files read for sending (the modality simulator uses it too).
//! - `forward`: `[dicom_destinations.<name>]` — received instances sent on to a PACS
//!   over a kept-open association, with retries, backoff and dead letters.

pub mod access;
mod association;
pub mod budget;
pub mod canonical;
pub mod dataset;
pub mod dimse;
pub mod element_lengths;
pub mod forward;
pub mod ingest;
pub mod instance;
pub mod options;
pub mod part10;
mod reassembly;
pub mod scp;
pub mod scu;
pub mod sop_classes;
pub mod storage;

pub use ingest::FileAndBackboneSink;
pub use instance::{InstanceMetadata, InstanceSink, ReceivedInstance, SinkError};
pub use options::ScpOptions;
pub use scp::run;
