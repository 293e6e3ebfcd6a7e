//! The canonical event catalogue: what happened, on which subject, with which body.
//!
//! | kind                 | subject                               | body               | from HL7 v2 ADT      |
//! |----------------------|---------------------------------------|--------------------|----------------------|
//! | `patient.registered` | `medbus.events.patient.registered`    | [`PatientEvent`]   | A01, A04, A05, A28   |
//! | `patient.updated`    | `medbus.events.patient.updated`       | [`PatientEvent`]   | A08, A31             |
//! | `patient.merged`     | `medbus.events.patient.merged`        | [`MergeEvent`]     | A40                  |
//! | `encounter.planned`  | `medbus.events.encounter.planned`     | [`EncounterEvent`] | A05                  |
//! | `encounter.started`  | `medbus.events.encounter.started`     | [`EncounterEvent`] | A01, A04             |
//! | `encounter.updated`  | `medbus.events.encounter.updated`     | [`EncounterEvent`] | A08 (with a visit)   |
//! | `encounter.finished` | `medbus.events.encounter.finished`    | [`EncounterEvent`] | A03                  |
//! | `encounter.cancelled`| `medbus.events.encounter.cancelled`   | [`EncounterEvent`] | A11                  |
//! | `encounter.reopened` | `medbus.events.encounter.reopened`    | [`EncounterEvent`] | A13                  |
//!
//! Semantics consumers can rely on:
//! - `patient.registered` says the source *asserts* the patient exists: it
//!   creates the record or refreshes it, so treat it as an upsert. Only the
//!   registration service knows whether the patient is new.
//! - A discharge is `encounter.finished` (there is no `patient.discharged`):
//!   a discharge ends a visit, not a patient.
//! - An ADT message that admits or registers yields the patient event first,
//!   then the encounter event; both carry the same patient key, so per-patient
//!   ordering keeps them in that order.
//! - Bodies are JSON objects in camelCase; the resources inside are valid FHIR
//!   R4 JSON. The envelope carries the kind, ids and times.

use serde::{Deserialize, Serialize};

use super::datatypes::Identifier;
use super::encounter::Encounter;
use super::patient::Patient;
use super::primitives::DateTime;
use crate::subjects::Subject;

/// Every canonical event kind, with its domain and event tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `patient.registered`: a source asserts a patient exists (create or refresh).
    PatientRegistered,
    /// `patient.updated`: a source changed a patient's demographics.
    PatientUpdated,
    /// `patient.merged`: one or more identifiers were merged into a surviving patient.
    PatientMerged,
    /// `encounter.planned`: a visit is expected (pre-admission).
    EncounterPlanned,
    /// `encounter.started`: a visit began (admission, outpatient or emergency registration).
    EncounterStarted,
    /// `encounter.updated`: visit details changed.
    EncounterUpdated,
    /// `encounter.finished`: the visit ended (discharge).
    EncounterFinished,
    /// `encounter.cancelled`: the visit was cancelled before it began (cancel admit).
    EncounterCancelled,
    /// `encounter.reopened`: a discharge was cancelled; the visit is in progress again.
    EncounterReopened,
}

impl EventKind {
    /// All kinds, in catalogue order.
    pub const ALL: [EventKind; 9] = [
        EventKind::PatientRegistered,
        EventKind::PatientUpdated,
        EventKind::PatientMerged,
        EventKind::EncounterPlanned,
        EventKind::EncounterStarted,
        EventKind::EncounterUpdated,
        EventKind::EncounterFinished,
        EventKind::EncounterCancelled,
        EventKind::EncounterReopened,
    ];

    /// `(domain, event)` tokens of the subject.
    pub fn tokens(self) -> (&'static str, &'static str) {
        match self {
            EventKind::PatientRegistered => ("patient", "registered"),
            EventKind::PatientUpdated => ("patient", "updated"),
            EventKind::PatientMerged => ("patient", "merged"),
            EventKind::EncounterPlanned => ("encounter", "planned"),
            EventKind::EncounterStarted => ("encounter", "started"),
            EventKind::EncounterUpdated => ("encounter", "updated"),
            EventKind::EncounterFinished => ("encounter", "finished"),
            EventKind::EncounterCancelled => ("encounter", "cancelled"),
            EventKind::EncounterReopened => ("encounter", "reopened"),
        }
    }

    /// The kind string, `patient.registered`, as in the envelope's `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PatientRegistered => "patient.registered",
            EventKind::PatientUpdated => "patient.updated",
            EventKind::PatientMerged => "patient.merged",
            EventKind::EncounterPlanned => "encounter.planned",
            EventKind::EncounterStarted => "encounter.started",
            EventKind::EncounterUpdated => "encounter.updated",
            EventKind::EncounterFinished => "encounter.finished",
            EventKind::EncounterCancelled => "encounter.cancelled",
            EventKind::EncounterReopened => "encounter.reopened",
        }
    }

    /// The kind for a kind string, `None` for one outside the catalogue.
    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The subject, `medbus.events.<domain>.<event>`.
    pub fn subject(self) -> Subject {
        // The tokens are constants known to be valid, so no check is needed.
        let (domain, event) = self.tokens();
        Subject::Event {
            domain: domain.into(),
            event: event.into(),
        }
    }
}

/// Body of `patient.registered` and `patient.updated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatientEvent {
    /// The patient as the source sent it.
    pub patient: Patient,
    /// The source message type, e.g. `ADT^A01`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_message_type: Option<String>,
    /// When it happened in the source system (HL7 EVN-6, else EVN-2, else MSH-7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred: Option<DateTime>,
}

/// Body of `patient.merged`: the identifiers in `merged` now belong to `surviving`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeEvent {
    /// The surviving patient; its `link` lists each merged record as `replaces`.
    pub surviving: Patient,
    /// Identifiers of the records merged away (HL7 MRG-1).
    pub merged: Vec<Identifier>,
    /// The source message type, e.g. `ADT^A40`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_message_type: Option<String>,
    /// When it happened in the source system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred: Option<DateTime>,
}

/// Body of the `encounter.*` events.
///
/// The patient travels with the encounter so that a consumer of `encounter.*`
/// alone (billing, bed management) needs nothing else, and so that a visit
/// for a patient not seen before can still be recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncounterEvent {
    /// The encounter; its `subject` refers to `patient` by key identifier.
    pub encounter: Encounter,
    /// The patient as the source sent it with this event.
    pub patient: Patient,
    /// The source message type, e.g. `ADT^A03`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_message_type: Option<String>,
    /// When it happened in the source system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred: Option<DateTime>,
}

/// One canonical event: its kind and its typed body, which cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanonicalEvent {
    /// `patient.registered`.
    PatientRegistered(PatientEvent),
    /// `patient.updated`.
    PatientUpdated(PatientEvent),
    /// `patient.merged`.
    PatientMerged(MergeEvent),
    /// `encounter.planned`.
    EncounterPlanned(EncounterEvent),
    /// `encounter.started`.
    EncounterStarted(EncounterEvent),
    /// `encounter.updated`.
    EncounterUpdated(EncounterEvent),
    /// `encounter.finished`.
    EncounterFinished(EncounterEvent),
    /// `encounter.cancelled`.
    EncounterCancelled(EncounterEvent),
    /// `encounter.reopened`.
    EncounterReopened(EncounterEvent),
}

/// The body of a [`CanonicalEvent`], by shape.
#[derive(Debug, Clone, Copy)]
pub enum EventBody<'a> {
    /// A patient event.
    Patient(&'a PatientEvent),
    /// A merge.
    Merge(&'a MergeEvent),
    /// An encounter event.
    Encounter(&'a EncounterEvent),
}

impl CanonicalEvent {
    /// The kind.
    pub fn kind(&self) -> EventKind {
        match self {
            CanonicalEvent::PatientRegistered(_) => EventKind::PatientRegistered,
            CanonicalEvent::PatientUpdated(_) => EventKind::PatientUpdated,
            CanonicalEvent::PatientMerged(_) => EventKind::PatientMerged,
            CanonicalEvent::EncounterPlanned(_) => EventKind::EncounterPlanned,
            CanonicalEvent::EncounterStarted(_) => EventKind::EncounterStarted,
            CanonicalEvent::EncounterUpdated(_) => EventKind::EncounterUpdated,
            CanonicalEvent::EncounterFinished(_) => EventKind::EncounterFinished,
            CanonicalEvent::EncounterCancelled(_) => EventKind::EncounterCancelled,
            CanonicalEvent::EncounterReopened(_) => EventKind::EncounterReopened,
        }
    }

    /// The body, by shape.
    pub fn body(&self) -> EventBody<'_> {
        match self {
            CanonicalEvent::PatientRegistered(b) | CanonicalEvent::PatientUpdated(b) => EventBody::Patient(b),
            CanonicalEvent::PatientMerged(b) => EventBody::Merge(b),
            CanonicalEvent::EncounterPlanned(b)
            | CanonicalEvent::EncounterStarted(b)
            | CanonicalEvent::EncounterUpdated(b)
            | CanonicalEvent::EncounterFinished(b)
            | CanonicalEvent::EncounterCancelled(b)
            | CanonicalEvent::EncounterReopened(b) => EventBody::Encounter(b),
        }
    }

    /// The subject to publish on.
    pub fn subject(&self) -> Subject {
        self.kind().subject()
    }

    /// The body as JSON, as published.
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        match self.body() {
            EventBody::Patient(b) => serde_json::to_value(b),
            EventBody::Merge(b) => serde_json::to_value(b),
            EventBody::Encounter(b) => serde_json::to_value(b),
        }
    }

    /// What the router publishes: the subject and the JSON body.
    pub fn to_message(&self) -> Result<(Subject, serde_json::Value), serde_json::Error> {
        Ok((self.subject(), self.to_json()?))
    }

    /// Reads an event back from its kind and JSON body (what a consumer receives).
    pub fn from_json(kind: EventKind, body: serde_json::Value) -> Result<Self, serde_json::Error> {
        Ok(match kind {
            EventKind::PatientRegistered => CanonicalEvent::PatientRegistered(serde_json::from_value(body)?),
            EventKind::PatientUpdated => CanonicalEvent::PatientUpdated(serde_json::from_value(body)?),
            EventKind::PatientMerged => CanonicalEvent::PatientMerged(serde_json::from_value(body)?),
            EventKind::EncounterPlanned => CanonicalEvent::EncounterPlanned(serde_json::from_value(body)?),
            EventKind::EncounterStarted => CanonicalEvent::EncounterStarted(serde_json::from_value(body)?),
            EventKind::EncounterUpdated => CanonicalEvent::EncounterUpdated(serde_json::from_value(body)?),
            EventKind::EncounterFinished => CanonicalEvent::EncounterFinished(serde_json::from_value(body)?),
            EventKind::EncounterCancelled => CanonicalEvent::EncounterCancelled(serde_json::from_value(body)?),
            EventKind::EncounterReopened => CanonicalEvent::EncounterReopened(serde_json::from_value(body)?),
        })
    }

    /// The patient this event is about: the survivor of a merge.
    pub fn patient(&self) -> &Patient {
        match self.body() {
            EventBody::Patient(b) => &b.patient,
            EventBody::Merge(b) => &b.surviving,
            EventBody::Encounter(b) => &b.patient,
        }
    }

    /// The natural key of the patient ([`Patient::key`]): events with the same
    /// key must be applied in order.
    pub fn patient_key(&self) -> Option<String> {
        self.patient().key()
    }

    /// When it happened in the source system.
    pub fn occurred(&self) -> Option<&DateTime> {
        match self.body() {
            EventBody::Patient(b) => b.occurred.as_ref(),
            EventBody::Merge(b) => b.occurred.as_ref(),
            EventBody::Encounter(b) => b.occurred.as_ref(),
        }
    }

    /// The source message type (`ADT^A01`).
    pub fn source_message_type(&self) -> Option<&str> {
        match self.body() {
            EventBody::Patient(b) => b.source_message_type.as_deref(),
            EventBody::Merge(b) => b.source_message_type.as_deref(),
            EventBody::Encounter(b) => b.source_message_type.as_deref(),
        }
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
