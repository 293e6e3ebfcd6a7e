//! The storage SCU: what sends instances to another AE with C-STORE. The modality
//! simulator (`medbus-sim dicom send|echo`) and the PACS forwarder
//! ([`super::forward`]) share it.
//!
//! - `association`: one association — establish with the presentation contexts needed,
//!   C-STORE / C-ECHO one message at a time, release or abort;
//! - `command`: the C-STORE-RQ and C-ECHO-RQ command sets, their responses, and what a
//!   C-STORE status means;
//! - `pdata`: P-DATA-TF framing, fragmented to the peer's maximum PDU length;
//! - `file`: a stored Part-10 file split into its meta information and data set.

pub mod association;
pub mod command;
pub mod file;
pub mod pdata;

pub use association::{echo, Association, Context, ScuConfig, ScuError};
pub use command::{describe, outcome, Outcome, Response};
