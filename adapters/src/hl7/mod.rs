//! HL7 v2: parsing, writing and MLLP framing.
//!
//! - `parser`: a zero-copy parser over the received bytes (delimiters from MSH,
//!   escapes, repetitions, components, sub-components, batches) and field
//!   access by path (`PID-3[2].1`).
//! - `canonical`: HL7 v2 → canonical events: ADT (`map_adt`), and orders, results,
//!   appointments and charges, chosen by MSH-9 (`map_message`).
//! - `mllp_codec`: `<VT> … <FS><CR>` framing on tokio_util with a frame limit.
//! - `tls`: PEM files into rustls acceptors and connectors (MLLP over TLS).
//! - `listener`: the MLLP listener of one channel (ACK after the durable ack).
//! - `ack`, `application_ack`: original-mode, commit and application ACKs.
//! - `sender`: one MLLP connection to a downstream receiver, ACK-checked.
//! - `destination`: the delivery consumer of one configured destination.

pub mod ack;
pub mod application_ack;
pub mod canonical;
pub mod destination;
pub mod listener;
pub mod mllp_codec;
pub mod parser;
pub mod sender;
pub mod tls;
