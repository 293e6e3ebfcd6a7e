//! DICOM → canonical: one received instance (its [`InstanceMetadata`] and
//! where the SCP kept it) becomes the body of one `imaging.instance-stored`
//! event — the Patient as the data set names it and an ImagingStudy holding
//! that one series and instance. The mapping belongs to the protocol adapter,
//! as the HL7 v2 one does; the DICOM router runs it.
//!
//! - `dates`: Study Date / Time / Timezone Offset → `started`.
//!
//! Every field is optional in practice (modalities leave out what they
//! please): a value that does not read is absent, never an error. Only what
//! makes the event meaningless is refused — a UID that is not a UID (the SCP
//! already refuses those, so this is a guard against a body that did not come
//! from it).

mod dates;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use medbus_bus::canonical::{
    systems, CodeableConcept, Coding, DateTime, HumanName, Identifier, ImagingEvent, ImagingStudy,
    ImagingStudyInstance, ImagingStudySeries, ImagingStudyStatus, Patient, Reference, ResourceType, StoredInstance,
};

use super::ingest::raw_header;
use super::instance::InstanceMetadata;
use super::storage::{check_uid, BadUid};

pub use dates::study_started;

/// `source_message_type` of events from instances received by C-STORE.
pub const C_STORE: &str = "C-STORE";

/// Why an ingress message is not an instance to map; it is dead-lettered with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DicomMapError {
    /// The body is not instance metadata as the SCP writes it.
    #[error("body is not DICOM instance metadata: {0}")]
    Metadata(String),
    /// A UID the event is keyed by is not a UID.
    #[error(transparent)]
    BadUid(#[from] BadUid),
    /// A raw header the SCP always sets is absent or unreadable.
    #[error("raw header {0} is absent or unreadable")]
    Header(&'static str),
}

/// What the mapping needs besides the instance.
#[derive(Debug, Clone, Default)]
pub struct MapOptions<'a> {
    /// The channel's `patient_id_authority`: the system of Patient IDs
    /// (`urn:medbus:authority:<name>`); None leaves them without one.
    pub patient_id_authority: Option<&'a str>,
    /// When the instance was received (the event's `occurred`).
    pub received: Option<DateTime>,
}

/// Reads the body the SCP publishes (`dicom.instance`).
pub fn read_metadata(body: &[u8]) -> Result<InstanceMetadata, DicomMapError> {
    serde_json::from_slice(body).map_err(|e| DicomMapError::Metadata(e.to_string()))
}

/// Where the instance is kept, from the ingress message's raw headers
/// (see [`raw_header`]) and the metadata.
pub fn stored_instance(
    channel: &str,
    headers: &BTreeMap<String, String>,
    m: &InstanceMetadata,
) -> Result<StoredInstance, DicomMapError> {
    let file = headers
        .get(raw_header::FILE)
        .filter(|f| !f.is_empty())
        .ok_or(DicomMapError::Header(raw_header::FILE))?;
    let file_bytes = headers
        .get(raw_header::FILE_BYTES)
        .and_then(|n| n.parse().ok())
        .ok_or(DicomMapError::Header(raw_header::FILE_BYTES))?;
    Ok(StoredInstance {
        channel: channel.to_string(),
        file: file.clone(),
        file_bytes,
        transfer_syntax: m.transfer_syntax_uid.clone(),
        calling_ae: headers
            .get(raw_header::CALLING_AE)
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty()),
        number_of_frames: m.number_of_frames,
    })
}

/// The `imaging.instance-stored` body of one instance kept as `stored`.
pub fn instance_stored(
    m: &InstanceMetadata,
    stored: StoredInstance,
    options: &MapOptions<'_>,
) -> Result<ImagingEvent, DicomMapError> {
    check_uid("Study Instance UID", &m.study_instance_uid)?;
    check_uid("Series Instance UID", &m.series_instance_uid)?;
    check_uid("SOP Instance UID", &m.sop_instance_uid)?;
    check_uid("SOP Class UID", &m.sop_class_uid)?;
    let patient = patient(m, options.patient_id_authority);
    let modality = Coding::new(systems::DICOM_DCM, m.modality.as_deref().unwrap_or("OT"), None);
    let accession = m
        .accession_number
        .as_deref()
        .map(|a| ImagingStudy::accession_identifier(a, Some(systems::MEDBUS_ACCESSION)));
    let series = ImagingStudySeries {
        uid: m.series_instance_uid.clone(),
        number: m.series_number,
        modality: modality.clone(),
        body_site: m.body_part_examined.as_deref().map(|b| Coding {
            code: Some(b.to_string()),
            display: Some(b.to_string()),
            ..Coding::default()
        }),
        number_of_instances: None,
        instance: vec![ImagingStudyInstance {
            uid: m.sop_instance_uid.clone(),
            sop_class: Coding::new(systems::URI, format!("urn:oid:{}", m.sop_class_uid), None),
            number: m.instance_number,
        }],
    };
    let imaging_study = ImagingStudy {
        resource_type: ResourceType::default(),
        id: None,
        identifier: std::iter::once(ImagingStudy::study_uid_identifier(&m.study_instance_uid))
            .chain(accession.clone())
            .collect(),
        status: ImagingStudyStatus::Registered,
        modality: vec![modality],
        subject: patient.reference(),
        started: study_started(
            m.study_date.as_deref(),
            m.study_time.as_deref(),
            m.timezone_offset.as_deref(),
        ),
        // The order, by accession: the orders service indexes every ACSN of a
        // ServiceRequest under this system too, so it resolves whoever issued it.
        based_on: accession
            .into_iter()
            .map(|identifier| Reference {
                type_: Some("ServiceRequest".into()),
                identifier: Some(identifier),
                ..Reference::default()
            })
            .collect(),
        // Counts are the imaging service's to tell: one instance says nothing of the study.
        number_of_series: None,
        number_of_instances: None,
        description: m.study_description.clone(),
        series: vec![series],
    };
    Ok(ImagingEvent {
        imaging_study,
        patient,
        instance: Some(stored),
        source_message_type: Some(C_STORE.into()),
        occurred: options.received.clone(),
    })
}

/// The Patient as the data set names it. Without a Patient ID it has no
/// identifier (and so no key): the study still names it by display name, and
/// the event is still raised — the images were received, and a patient
/// cannot be invented.
fn patient(m: &InstanceMetadata, authority: Option<&str>) -> Patient {
    let identifier = m
        .patient_id
        .as_ref()
        .map(|id| Identifier {
            type_: Some(CodeableConcept::coded(Coding::new(
                systems::V2_0203,
                "MR",
                Some("Medical record number"),
            ))),
            system: authority.map(systems::authority),
            value: Some(id.clone()),
            ..Identifier::default()
        })
        .into_iter()
        .collect();
    Patient {
        identifier,
        name: m.patient_name.as_deref().and_then(person_name).into_iter().collect(),
        ..Patient::default()
    }
}

/// Patient's Name (PN): `Family^Given^Middle^Prefix^Suffix`, the alphabetic
/// group only (before any `=`); None when it holds no family or given name.
pub fn person_name(pn: &str) -> Option<HumanName> {
    let alphabetic = pn.split('=').next().unwrap_or_default();
    let parts: Vec<Option<String>> = alphabetic
        .split('^')
        .map(|p| Some(p.trim().to_string()).filter(|p| !p.is_empty()))
        .collect();
    let part = |n: usize| parts.get(n).cloned().flatten();
    let name = HumanName {
        family: part(0),
        given: [part(1), part(2)].into_iter().flatten().collect(),
        prefix: part(3).into_iter().collect(),
        suffix: part(4).into_iter().collect(),
        ..HumanName::default()
    };
    (name.family.is_some() || !name.given.is_empty()).then_some(name)
}
