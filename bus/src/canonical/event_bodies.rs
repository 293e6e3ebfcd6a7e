//! Bodies of the order, appointment, result and billing events. Each carries
//! the patient as the source sent it, like the encounter events: a consumer
//! of one domain needs nothing else, and per-patient ordering uses its key.

use serde::{Deserialize, Serialize};

use super::appointment::Appointment;
use super::charge_item::ChargeItem;
use super::diagnostic_report::DiagnosticReport;
use super::imaging_study::ImagingStudy;
use super::observation::Observation;
use super::patient::Patient;
use super::primitives::DateTime;
use super::quantity::Decimal;
use super::service_request::ServiceRequest;

/// Body of the `order.*` events: one order (one ORC/OBR group of HL7 v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderEvent {
    /// The order; its `status` says where it is now.
    pub service_request: ServiceRequest,
    /// The patient as the source sent it with this event.
    pub patient: Patient,
    /// The source message type, e.g. `ORM^O01`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_message_type: Option<String>,
    /// When it happened in the source system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred: Option<DateTime>,
}

/// Body of the `appointment.*` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentEvent {
    /// The appointment as it now stands.
    pub appointment: Appointment,
    /// The patient as the source sent it with this event.
    pub patient: Patient,
    /// The source message type, e.g. `SIU^S12`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_message_type: Option<String>,
    /// When it happened in the source system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred: Option<DateTime>,
}

/// Body of `result.reported` and `result.corrected`: one report (one OBR of
/// HL7 v2) and all its observations, which `report.result` lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultEvent {
    /// The report.
    pub report: DiagnosticReport,
    /// Its observations, in the order sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observations: Vec<Observation>,
    /// The patient as the source sent it with this event.
    pub patient: Patient,
    /// The source message type, e.g. `ORU^R01`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_message_type: Option<String>,
    /// When it happened in the source system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred: Option<DateTime>,
}

/// Why a value is critical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CriticalReason {
    /// The source flagged it: the v3 ObservationInterpretation code (`HH`, `LL`, `AA`).
    Flag(String),
    /// A threshold configured for its code was crossed (critical below `low`
    /// or above `high`).
    Threshold {
        /// Critical below this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        low: Option<Decimal>,
        /// Critical above this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        high: Option<Decimal>,
    },
}

/// Body of `result.critical`: one critical value, with the report it belongs
/// to. The results service decides which values are critical and raises one
/// event for each, so each can be acknowledged and escalated on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CriticalResultEvent {
    /// The critical observation.
    pub observation: Observation,
    /// The report it was part of (order, panel, status).
    pub report: DiagnosticReport,
    /// Why it is critical.
    pub reason: CriticalReason,
    /// The patient.
    pub patient: Patient,
    /// The source message type of the result, e.g. `ORU^R01`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_message_type: Option<String>,
    /// When the result was reported in the source system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred: Option<DateTime>,
}

/// Body of `billing.charge-posted` and `billing.charge-reversed`: one charge
/// line (one FT1 of HL7 v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeEvent {
    /// The charge; `billable` when posted, `aborted` when reversed.
    pub charge_item: ChargeItem,
    /// The patient as the source sent it with this event.
    pub patient: Patient,
    /// The source message type, e.g. `DFT^P03`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_message_type: Option<String>,
    /// When it happened in the source system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred: Option<DateTime>,
}

/// Where a received instance is kept (`imaging.instance-stored` only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredInstance {
    /// The DICOM channel that received it (`[dicom.<name>]`).
    pub channel: String,
    /// The Part-10 file, relative to the channel's storage directory
    /// (`<study>/<series>/<sop>.dcm`).
    pub file: String,
    /// Its size in bytes.
    pub file_bytes: u64,
    /// The transfer syntax UID it was received and stored in.
    pub transfer_syntax: String,
    /// The sender's (calling) AE title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calling_ae: Option<String>,
    /// Number of Frames (0028,0008), when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_frames: Option<u32>,
}

/// Body of `imaging.instance-stored` and `imaging.study-completed`.
///
/// - `instance-stored`: one instance was received and kept; `imaging_study`
///   holds that one series and instance, `instance` says where the file is.
/// - `study-completed`: the study has had no new instance for the configured
///   quiet time; `imaging_study` is the whole study as the imaging service
///   holds it (every series and instance, the counts), `instance` is absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagingEvent {
    /// The study (see above for how much of it).
    pub imaging_study: ImagingStudy,
    /// The patient as the data set named it (Patient ID, Patient's Name).
    pub patient: Patient,
    /// The received instance's file (`instance-stored` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<StoredInstance>,
    /// `C-STORE` for instances received over DICOM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_message_type: Option<String>,
    /// When it happened: the receipt, or the study's completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred: Option<DateTime>,
}
