//! Tests of the message types after ADT — orders, results, appointments,
//! charges — and of the dispatcher: one file per concern, samples in `samples`.

mod appointments;
mod charges;
mod corpus;
mod dispatch;
mod orders;
mod results;
mod samples;

use medbus_bus::canonical::{AppointmentEvent, CanonicalEvent, ChargeEvent, EventBody, OrderEvent, ResultEvent};
use serde_json::Value;

use super::{map_message, MapError};
use crate::hl7::parser::Message;

/// Parses (the samples are valid HL7) and maps.
fn map(raw: &[u8]) -> Result<Vec<CanonicalEvent>, MapError> {
    let msg = Message::parse(raw).unwrap();
    map_message(&msg)
}

/// Maps a sample that must map.
fn events(raw: &[u8]) -> Vec<CanonicalEvent> {
    map(raw).unwrap()
}

/// Maps a sample that must be refused.
fn refused(raw: &[u8]) -> MapError {
    map(raw).unwrap_err()
}

/// The kinds, as strings.
fn kinds(events: &[CanonicalEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind().as_str()).collect()
}

/// The body as published.
fn body(event: &CanonicalEvent) -> Value {
    event.to_json().unwrap()
}

/// Where an error points, as `OBX-5`.
fn location(e: &MapError) -> Option<String> {
    e.location().map(ToString::to_string)
}

fn order_of(event: &CanonicalEvent) -> &OrderEvent {
    match event.body() {
        EventBody::Order(b) => b,
        _ => panic!("{} is not an order event", event.kind().as_str()),
    }
}

fn result_of(event: &CanonicalEvent) -> &ResultEvent {
    match event.body() {
        EventBody::Result(b) => b,
        _ => panic!("{} is not a result event", event.kind().as_str()),
    }
}

fn appointment_of(event: &CanonicalEvent) -> &AppointmentEvent {
    match event.body() {
        EventBody::Appointment(b) => b,
        _ => panic!("{} is not an appointment event", event.kind().as_str()),
    }
}

fn charge_of(event: &CanonicalEvent) -> &ChargeEvent {
    match event.body() {
        EventBody::Charge(b) => b,
        _ => panic!("{} is not a charge event", event.kind().as_str()),
    }
}
