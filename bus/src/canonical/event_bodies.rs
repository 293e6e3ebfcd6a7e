//! Bodies of the order, appointment, result and billing events. Each carries
//! the patient as the source sent it, like the encounter events: a consumer
//! of one domain needs nothing else, and per-patient ordering uses its key.

use serde::{Deserialize, Serialize};

use super::appointment::Appointment;
use super::charge_item::ChargeItem;
use super::diagnostic_report::DiagnosticReport;
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
