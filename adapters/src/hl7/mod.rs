//! HL7 v2: parsing, writing and MLLP framing.
//!
//! - `parser`: a zero-copy parser over the received bytes (delimiters from MSH,
//!   escapes, repetitions, components, sub-components, batches) and field
//!   access by path (`PID-3[2].1`).
//! - `canonical`: ADT → canonical patient and encounter events (`map_adt`).
//! - `mllp_codec`: `<VT> … <FS><CR>` framing on tokio_util with a frame limit.

pub mod ack;
pub mod canonical;
pub mod listener;
pub mod mllp_codec;
pub mod parser;
pub mod sender;
