//! Tests of the ADT mapping: one file per concern, samples in `samples`.

/// The parser benchmark's generated corpus (ADT, ORU, ORM), one more input for the robustness tests.
#[path = "../../../../benches/hl7_corpus/mod.rs"]
mod bench_corpus;
mod errors;
mod fields;
mod robustness;
mod samples;
mod triggers;

use medbus_bus::canonical::{CanonicalEvent, EventBody};
use serde_json::Value;

use super::{map_adt, MapError};
use crate::hl7::parser::Message;

/// Parses (the samples are valid HL7) and maps.
fn map(raw: &[u8]) -> Result<Vec<CanonicalEvent>, MapError> {
    let msg = Message::parse(raw).unwrap();
    map_adt(&msg)
}

/// Maps a sample that must map.
fn events(raw: &[u8]) -> Vec<CanonicalEvent> {
    map(raw).unwrap()
}

/// The kinds, as strings.
fn kinds(events: &[CanonicalEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind().as_str()).collect()
}

/// The body as published.
fn body(event: &CanonicalEvent) -> Value {
    event.to_json().unwrap()
}

/// The encounter event body of an event that has one.
fn encounter_of(event: &CanonicalEvent) -> &medbus_bus::canonical::EncounterEvent {
    match event.body() {
        EventBody::Encounter(e) => e,
        _ => panic!("{} has no encounter", event.kind().as_str()),
    }
}
