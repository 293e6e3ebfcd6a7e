//! medbus-actors: the domain services. Each is an actix actor under a
//! supervisor, fed by a durable consumer; it commits a fetched batch of events
//! in one store transaction (domain rows + event log, in order), or one event
//! at a time when the batch fails, and only then are the events acked.
//!
//! - [`system`]: the actix System on its own thread (actix actors need a
//!   `LocalSet`; the rest of medbus runs on a multi-threaded tokio runtime and
//!   talks to actors through their `Addr`).
//! - [`feed`]: the durable consumer that hands events to a domain actor as one
//!   batch, falling back to per-patient lanes of single events, and settles
//!   each delivery by the actor's answer.
//! - [`faults`]: the test-only switch that makes a service panic on purpose.
//! - [`registration`]: patients and encounters (ADT).
//! - [`notifications`]: critical results, dead letters and destination
//!   outages as webhook calls and e-mails, with throttling and escalation.
//! - [`orders`]: orders and appointments.
//! - [`results`]: reports, observations and critical values.
//! - [`billing`]: charges sent, derived through the charge master, and reversed.
//! - [`imaging`]: DICOM studies folded from received instances, linked to
//!   their order by accession number, completed after a quiet time.
//! - [`outbox`]: publishing the follow-up events services raise, after their commit.
//! - [`clinical`], [`table`]: what those services share (store writes, CSV tables).
//!
//! A new domain service is a new module here plus one line where the binary starts it.

pub mod billing;
pub mod clinical;
pub mod faults;
pub mod feed;
pub mod imaging;
pub mod notifications;
pub mod orders;
pub mod outbox;
pub mod registration;
pub mod results;
pub mod system;
pub mod table;
