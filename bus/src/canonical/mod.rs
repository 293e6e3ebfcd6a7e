//! The canonical model: typed structs named after FHIR R4 resources and
//! elements, which every protocol maps into and out of.
//!
//! Each type serialises to valid FHIR R4 JSON (camelCase element names,
//! `resourceType` on resources, no empty or absent elements), so that the FHIR
//! adapter is a thin, total mapping and downstream consumers can read event
//! bodies as FHIR. HL7 v2 and DICOM map into the same types.
//!
//! - `primitives`: [`Date`], [`DateTime`] — FHIR's constrained date strings;
//! - `datatypes`: [`Identifier`], [`HumanName`], [`Address`], [`ContactPoint`],
//!   [`CodeableConcept`], [`Coding`], [`Reference`], [`Period`];
//! - `resource`: [`ResourceType`], the checked `resourceType` element;
//! - `patient`: [`Patient`] and its natural key ([`Patient::key`]);
//! - `encounter`: [`Encounter`];
//! - `service_request`: [`ServiceRequest`] (orders); `appointment`: [`Appointment`];
//! - `observation`: [`Observation`]; `diagnostic_report`: [`DiagnosticReport`];
//! - `charge_item`: [`ChargeItem`]; `imaging_study`: [`ImagingStudy`] (DICOM studies);
//! - `quantity`: [`Decimal`], [`Quantity`], [`Money`]; `annotation`: [`Annotation`];
//! - `events`: the event catalogue ([`CanonicalEvent`]) with kinds, subjects
//!   and bodies — the table is in that module's docs; `event_kind`:
//!   [`EventKind`] and its subjects; `event_bodies`: the bodies of the order,
//!   appointment, result and billing events; [`SystemEventKind`] and
//!   `system_events` ([`DestinationStatusEvent`]): medbus reporting on itself;
//! - [`systems`]: code and identifier system URIs.

mod annotation;
mod appointment;
mod charge_item;
mod datatypes;
mod diagnostic_report;
mod encounter;
mod event_bodies;
mod event_kind;
mod events;
mod imaging_study;
mod observation;
mod patient;
mod primitives;
mod quantity;
mod resource;
mod service_request;
mod system_events;
pub mod systems;

pub use annotation::Annotation;
pub use appointment::{Appointment, AppointmentParticipant, AppointmentStatus, ParticipationStatus};
pub use charge_item::{ChargeItem, ChargeItemStatus, ChargeOccurrence};
pub use datatypes::{
    Address, AddressType, AddressUse, CodeableConcept, Coding, ContactPoint, ContactPointSystem, ContactPointUse,
    HumanName, Identifier, IdentifierUse, NameUse, Period, Reference,
};
pub use diagnostic_report::{DiagnosticReport, DiagnosticReportStatus};
pub use encounter::{
    Encounter, EncounterHospitalization, EncounterLocation, EncounterLocationStatus, EncounterParticipant,
    EncounterStatus,
};
pub use event_bodies::{
    AppointmentEvent, ChargeEvent, CriticalReason, CriticalResultEvent, ImagingEvent, OrderEvent, ResultEvent,
    StoredInstance,
};
pub use event_kind::{EventKind, SystemEventKind};
pub use events::{CanonicalEvent, EncounterEvent, EventBody, MergeEvent, PatientEvent};
pub use imaging_study::{ImagingStudy, ImagingStudyInstance, ImagingStudySeries, ImagingStudyStatus, DICOM_UID_SYSTEM};
pub use observation::{Observation, ObservationReferenceRange, ObservationStatus, ObservationValue};
pub use patient::{AdministrativeGender, Deceased, LinkType, Patient, PatientLink};
pub use primitives::{Date, DateTime, PrimitiveError};
pub use quantity::{Decimal, Money, Quantity, QuantityComparator};
pub use resource::{Resource, ResourceType};
pub use service_request::{RequestPriority, ServiceRequest, ServiceRequestIntent, ServiceRequestStatus};
pub use system_events::DestinationStatusEvent;
