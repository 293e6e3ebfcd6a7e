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
//! - `events`: the event catalogue ([`EventKind`], [`CanonicalEvent`]) with
//!   kinds, subjects and bodies — the table is in that module's docs;
//! - [`systems`]: code and identifier system URIs.

mod datatypes;
mod encounter;
mod events;
mod patient;
mod primitives;
mod resource;
pub mod systems;

pub use datatypes::{
    Address, AddressType, AddressUse, CodeableConcept, Coding, ContactPoint, ContactPointSystem, ContactPointUse,
    HumanName, Identifier, IdentifierUse, NameUse, Period, Reference,
};
pub use encounter::{
    Encounter, EncounterHospitalization, EncounterLocation, EncounterLocationStatus, EncounterParticipant,
    EncounterStatus,
};
pub use events::{CanonicalEvent, EncounterEvent, EventBody, EventKind, MergeEvent, PatientEvent};
pub use patient::{AdministrativeGender, Deceased, LinkType, Patient, PatientLink};
pub use primitives::{Date, DateTime, PrimitiveError};
pub use resource::{Resource, ResourceType};
