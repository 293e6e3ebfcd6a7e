//! medbus-bus: the foundation every other medbus crate builds on. It depends on
//! no other medbus crate.
//!
//! - [`subjects`]: building and checking `medbus.ingress|events|dlq.…` subjects.
//! - [`envelope`]: the envelope (ids, correlation, source, kind, body) and its wire form.
//! - [`canonical`]: the canonical model (FHIR R4-shaped Patient, Encounter …) and
//!   the event catalogue (kinds, subjects, bodies).
//! - [`backbone`]: the durable backbone trait, with [`backbone::jetstream`] (NATS)
//!   and [`backbone::embedded`] (a log file) implementations and dead-lettering.
//! - [`store`]: the store trait, with [`store::postgres`] and [`store::sqlite`].
//! - [`config`]: the configuration model and its layered, line-reporting loader.
//! - [`bench`](mod@bench): the backbone benchmark behind `medbus bench backbone`.

pub mod backbone;
pub mod bench;
pub mod canonical;
pub mod config;
pub mod envelope;
pub mod store;
pub mod subjects;
