//! The canonical event catalogue: what happened, on which subject, with which body.
//!
//! | kind                      | subject (`medbus.events.` …) | body                     | from HL7 v2                  |
//! |---------------------------|------------------------------|--------------------------|------------------------------|
//! | `patient.registered`      | `patient.registered`         | [`PatientEvent`]         | ADT A01, A04, A05, A28       |
//! | `patient.updated`         | `patient.updated`            | [`PatientEvent`]         | ADT A08, A31                 |
//! | `patient.merged`          | `patient.merged`             | [`MergeEvent`]           | ADT A40                      |
//! | `encounter.planned`       | `encounter.planned`          | [`EncounterEvent`]       | ADT A05                      |
//! | `encounter.started`       | `encounter.started`          | [`EncounterEvent`]       | ADT A01, A04                 |
//! | `encounter.updated`       | `encounter.updated`          | [`EncounterEvent`]       | ADT A08 (with a visit)       |
//! | `encounter.finished`      | `encounter.finished`         | [`EncounterEvent`]       | ADT A03                      |
//! | `encounter.cancelled`     | `encounter.cancelled`        | [`EncounterEvent`]       | ADT A11                      |
//! | `encounter.reopened`      | `encounter.reopened`         | [`EncounterEvent`]       | ADT A13                      |
//! | `order.placed`            | `order.placed`               | [`OrderEvent`]           | ORM O01, OML O21: ORC-1 NW   |
//! | `order.updated`           | `order.updated`              | [`OrderEvent`]           | ORC-1 XO, SC, OK, HD, RL …   |
//! | `order.cancelled`         | `order.cancelled`            | [`OrderEvent`]           | ORC-1 CA, OC, DC, OD …       |
//! | `order.completed`         | `order.completed`            | [`OrderEvent`]           | ORC-1 CM                     |
//! | `appointment.booked`      | `appointment.booked`         | [`AppointmentEvent`]     | SIU S12                      |
//! | `appointment.rescheduled` | `appointment.rescheduled`    | [`AppointmentEvent`]     | SIU S13, S14                 |
//! | `appointment.cancelled`   | `appointment.cancelled`      | [`AppointmentEvent`]     | SIU S15                      |
//! | `appointment.noshow`      | `appointment.noshow`         | [`AppointmentEvent`]     | SIU S26                      |
//! | `result.reported`         | `result.reported`            | [`ResultEvent`]          | ORU R01 (one per OBR)        |
//! | `result.corrected`        | `result.corrected`           | [`ResultEvent`]          | ORU R01 with status C, A, D, W |
//! | `result.critical`         | `result.critical`            | [`CriticalResultEvent`]  | raised by the results service |
//! | `billing.charge-posted`   | `billing.charge-posted`      | [`ChargeEvent`]          | DFT P03: FT1-6 CG            |
//! | `billing.charge-reversed` | `billing.charge-reversed`    | [`ChargeEvent`]          | DFT P03: FT1-6 CD            |
//! | `imaging.instance-stored` | `imaging.instance-stored`    | [`ImagingEvent`]         | DICOM C-STORE (one instance) |
//! | `imaging.study-completed` | `imaging.study-completed`    | [`ImagingEvent`]         | raised by the imaging service |
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
//! - Every body carries the patient, so every event has a patient key
//!   ([`CanonicalEvent::patient_key`]) and orders, results and charges of one
//!   patient stay in order with that patient's ADT.
//! - Resources are snapshots of what the source sent: an absent element means
//!   "not sent". Orders, appointments, reports, observations and charges have
//!   natural keys (`key()`); a later event with the same key replaces the state.
//! - Bodies are JSON objects in camelCase; the resources inside are valid FHIR
//!   R4 JSON. The envelope carries the kind, ids and times.

use serde::{Deserialize, Serialize};

use super::datatypes::Identifier;
use super::encounter::Encounter;
use super::event_bodies::{AppointmentEvent, ChargeEvent, CriticalResultEvent, ImagingEvent, OrderEvent, ResultEvent};
use super::event_kind::EventKind;
use super::patient::Patient;
use super::primitives::DateTime;
use crate::subjects::Subject;

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
    /// `order.placed`.
    OrderPlaced(OrderEvent),
    /// `order.updated`.
    OrderUpdated(OrderEvent),
    /// `order.cancelled`.
    OrderCancelled(OrderEvent),
    /// `order.completed`.
    OrderCompleted(OrderEvent),
    /// `appointment.booked`.
    AppointmentBooked(AppointmentEvent),
    /// `appointment.rescheduled`.
    AppointmentRescheduled(AppointmentEvent),
    /// `appointment.cancelled`.
    AppointmentCancelled(AppointmentEvent),
    /// `appointment.noshow`.
    AppointmentNoshow(AppointmentEvent),
    /// `result.reported`.
    ResultReported(ResultEvent),
    /// `result.corrected`.
    ResultCorrected(ResultEvent),
    /// `result.critical` (boxed: an observation and a report make it the largest body by far).
    ResultCritical(Box<CriticalResultEvent>),
    /// `billing.charge-posted`.
    ChargePosted(ChargeEvent),
    /// `billing.charge-reversed`.
    ChargeReversed(ChargeEvent),
    /// `imaging.instance-stored`.
    ImagingInstanceStored(ImagingEvent),
    /// `imaging.study-completed`.
    ImagingStudyCompleted(ImagingEvent),
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
    /// An order event.
    Order(&'a OrderEvent),
    /// An appointment event.
    Appointment(&'a AppointmentEvent),
    /// A report with its observations.
    Result(&'a ResultEvent),
    /// A critical value.
    CriticalResult(&'a CriticalResultEvent),
    /// A charge.
    Charge(&'a ChargeEvent),
    /// An imaging study (one instance received, or the study completed).
    Imaging(&'a ImagingEvent),
}

// Evaluates `$e` with `$b` bound to the body, whatever its shape: the bodies
// share `occurred` and `sourceMessageType`, so one expression serves them all.
macro_rules! each_body {
    ($body:expr, $b:ident => $e:expr) => {
        match $body {
            EventBody::Patient($b) => $e,
            EventBody::Merge($b) => $e,
            EventBody::Encounter($b) => $e,
            EventBody::Order($b) => $e,
            EventBody::Appointment($b) => $e,
            EventBody::Result($b) => $e,
            EventBody::CriticalResult($b) => $e,
            EventBody::Charge($b) => $e,
            EventBody::Imaging($b) => $e,
        }
    };
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
            CanonicalEvent::OrderPlaced(_) => EventKind::OrderPlaced,
            CanonicalEvent::OrderUpdated(_) => EventKind::OrderUpdated,
            CanonicalEvent::OrderCancelled(_) => EventKind::OrderCancelled,
            CanonicalEvent::OrderCompleted(_) => EventKind::OrderCompleted,
            CanonicalEvent::AppointmentBooked(_) => EventKind::AppointmentBooked,
            CanonicalEvent::AppointmentRescheduled(_) => EventKind::AppointmentRescheduled,
            CanonicalEvent::AppointmentCancelled(_) => EventKind::AppointmentCancelled,
            CanonicalEvent::AppointmentNoshow(_) => EventKind::AppointmentNoshow,
            CanonicalEvent::ResultReported(_) => EventKind::ResultReported,
            CanonicalEvent::ResultCorrected(_) => EventKind::ResultCorrected,
            CanonicalEvent::ResultCritical(_) => EventKind::ResultCritical,
            CanonicalEvent::ChargePosted(_) => EventKind::ChargePosted,
            CanonicalEvent::ChargeReversed(_) => EventKind::ChargeReversed,
            CanonicalEvent::ImagingInstanceStored(_) => EventKind::ImagingInstanceStored,
            CanonicalEvent::ImagingStudyCompleted(_) => EventKind::ImagingStudyCompleted,
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
            CanonicalEvent::OrderPlaced(b)
            | CanonicalEvent::OrderUpdated(b)
            | CanonicalEvent::OrderCancelled(b)
            | CanonicalEvent::OrderCompleted(b) => EventBody::Order(b),
            CanonicalEvent::AppointmentBooked(b)
            | CanonicalEvent::AppointmentRescheduled(b)
            | CanonicalEvent::AppointmentCancelled(b)
            | CanonicalEvent::AppointmentNoshow(b) => EventBody::Appointment(b),
            CanonicalEvent::ResultReported(b) | CanonicalEvent::ResultCorrected(b) => EventBody::Result(b),
            CanonicalEvent::ResultCritical(b) => EventBody::CriticalResult(b),
            CanonicalEvent::ChargePosted(b) | CanonicalEvent::ChargeReversed(b) => EventBody::Charge(b),
            CanonicalEvent::ImagingInstanceStored(b) | CanonicalEvent::ImagingStudyCompleted(b) => {
                EventBody::Imaging(b)
            }
        }
    }

    /// The subject to publish on.
    pub fn subject(&self) -> Subject {
        self.kind().subject()
    }

    /// The body as JSON, as published.
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        each_body!(self.body(), b => serde_json::to_value(b))
    }

    /// What the router publishes: the subject and the JSON body.
    pub fn to_message(&self) -> Result<(Subject, serde_json::Value), serde_json::Error> {
        Ok((self.subject(), self.to_json()?))
    }

    /// Reads an event back from its kind and JSON body (what a consumer receives).
    pub fn from_json(kind: EventKind, body: serde_json::Value) -> Result<Self, serde_json::Error> {
        use serde_json::from_value as read;
        Ok(match kind {
            EventKind::PatientRegistered => CanonicalEvent::PatientRegistered(read(body)?),
            EventKind::PatientUpdated => CanonicalEvent::PatientUpdated(read(body)?),
            EventKind::PatientMerged => CanonicalEvent::PatientMerged(read(body)?),
            EventKind::EncounterPlanned => CanonicalEvent::EncounterPlanned(read(body)?),
            EventKind::EncounterStarted => CanonicalEvent::EncounterStarted(read(body)?),
            EventKind::EncounterUpdated => CanonicalEvent::EncounterUpdated(read(body)?),
            EventKind::EncounterFinished => CanonicalEvent::EncounterFinished(read(body)?),
            EventKind::EncounterCancelled => CanonicalEvent::EncounterCancelled(read(body)?),
            EventKind::EncounterReopened => CanonicalEvent::EncounterReopened(read(body)?),
            EventKind::OrderPlaced => CanonicalEvent::OrderPlaced(read(body)?),
            EventKind::OrderUpdated => CanonicalEvent::OrderUpdated(read(body)?),
            EventKind::OrderCancelled => CanonicalEvent::OrderCancelled(read(body)?),
            EventKind::OrderCompleted => CanonicalEvent::OrderCompleted(read(body)?),
            EventKind::AppointmentBooked => CanonicalEvent::AppointmentBooked(read(body)?),
            EventKind::AppointmentRescheduled => CanonicalEvent::AppointmentRescheduled(read(body)?),
            EventKind::AppointmentCancelled => CanonicalEvent::AppointmentCancelled(read(body)?),
            EventKind::AppointmentNoshow => CanonicalEvent::AppointmentNoshow(read(body)?),
            EventKind::ResultReported => CanonicalEvent::ResultReported(read(body)?),
            EventKind::ResultCorrected => CanonicalEvent::ResultCorrected(read(body)?),
            EventKind::ResultCritical => CanonicalEvent::ResultCritical(read(body)?),
            EventKind::ChargePosted => CanonicalEvent::ChargePosted(read(body)?),
            EventKind::ChargeReversed => CanonicalEvent::ChargeReversed(read(body)?),
            EventKind::ImagingInstanceStored => CanonicalEvent::ImagingInstanceStored(read(body)?),
            EventKind::ImagingStudyCompleted => CanonicalEvent::ImagingStudyCompleted(read(body)?),
        })
    }

    /// The patient this event is about: the survivor of a merge.
    pub fn patient(&self) -> &Patient {
        match self.body() {
            EventBody::Merge(b) => &b.surviving,
            EventBody::Patient(b) => &b.patient,
            EventBody::Encounter(b) => &b.patient,
            EventBody::Order(b) => &b.patient,
            EventBody::Appointment(b) => &b.patient,
            EventBody::Result(b) => &b.patient,
            EventBody::CriticalResult(b) => &b.patient,
            EventBody::Charge(b) => &b.patient,
            EventBody::Imaging(b) => &b.patient,
        }
    }

    /// The natural key of the patient ([`Patient::key`]): events with the same
    /// key must be applied in order.
    pub fn patient_key(&self) -> Option<String> {
        self.patient().key()
    }

    /// When it happened in the source system.
    pub fn occurred(&self) -> Option<&DateTime> {
        each_body!(self.body(), b => b.occurred.as_ref())
    }

    /// The source message type (`ADT^A01`).
    pub fn source_message_type(&self) -> Option<&str> {
        each_body!(self.body(), b => b.source_message_type.as_deref())
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
