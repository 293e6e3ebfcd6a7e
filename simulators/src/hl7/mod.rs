//! HL7 v2 over MLLP: a generator of realistic traffic and a load-generating sender.
//!
//! - [`generate`]: seeded, deterministic ADT/ORM/ORU/DFT/SIU streams with malformed messages
//!   and exact resends mixed in, each message labelled with what answer it should get;
//! - [`sender`]: sends a stream over N MLLP connections, at least once, and tallies answers;
//! - [`ack`]: reads MSA-1 and MSA-2 from an ACK (independent of the adapters' parser);
//! - [`rate`]: the token bucket behind `--rate`;
//! - [`latency`]: ACK latency samples and percentiles;
//! - [`report`]: the run's report as a table or JSON, and the accepted-ids file;
//! - [`corpus`]: writes generated messages to a file (MLLP-framed or CR-separated).

pub mod ack;
pub mod corpus;
pub mod generate;
pub mod latency;
pub mod rate;
pub mod report;
pub mod sender;
