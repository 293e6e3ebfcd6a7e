//! FHIR R4 `ServiceRequest`: an order for a test or procedure (a lab panel,
//! an imaging study), known by its placer and filler order numbers.

use serde::{Deserialize, Serialize};

use super::datatypes::{CodeableConcept, Identifier, Reference};
use super::primitives::DateTime;
use super::resource::{Resource, ResourceType};

/// FHIR `ServiceRequest.status` (RequestStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceRequestStatus {
    /// Not yet actionable.
    Draft,
    /// Ordered and actionable (placed, accepted, in process).
    Active,
    /// Suspended for now.
    OnHold,
    /// Cancelled or discontinued before it was done.
    Revoked,
    /// Done.
    Completed,
    /// Should never have existed.
    EnteredInError,
    /// The source did not say.
    Unknown,
}

/// FHIR `ServiceRequest.intent` (RequestIntent): the codes medbus uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceRequestIntent {
    /// A suggestion, not an order.
    Proposal,
    /// An intention, not yet ordered.
    Plan,
    /// A request that is an order (what HL7 v2 orders are).
    Order,
    /// The order as the placer first wrote it.
    OriginalOrder,
    /// An order the filler added (reflex testing).
    ReflexOrder,
    /// The filler's view of an order.
    FillerOrder,
}

/// FHIR `ServiceRequest.priority` (RequestPriority).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestPriority {
    /// Normal priority.
    Routine,
    /// Sooner than routine.
    Urgent,
    /// As soon as possible, before urgent.
    Asap,
    /// Immediately (emergency).
    Stat,
}

/// FHIR R4 `ServiceRequest`.
///
/// In events it is a snapshot of what the source sent: an absent element
/// means "not sent", not "removed" (an update may leave out `authoredOn`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRequest {
    /// Always `ServiceRequest`; refuses any other type when read.
    pub resource_type: ResourceType<ServiceRequest>,
    /// Resource id, when a store has assigned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The placer order number (type `PLAC`) first, then the filler's (`FILL`),
    /// each in the system of its assigning authority.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Where the order is in its life.
    pub status: ServiceRequestStatus,
    /// What kind of request it is (always `order` from HL7 v2).
    pub intent: ServiceRequestIntent,
    /// How urgent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<RequestPriority>,
    /// What is ordered (LOINC, or the sender's local code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
    /// The patient (FHIR requires it; HL7 v2 orders always have a PID).
    pub subject: Reference,
    /// The visit the order was placed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encounter: Option<Reference>,
    /// When the order was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authored_on: Option<DateTime>,
    /// Who ordered it (a Practitioner, by identifier and name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<Reference>,
}

impl Resource for ServiceRequest {
    const TYPE: &'static str = "ServiceRequest";
}

impl ServiceRequest {
    /// A new order with its required elements.
    pub fn new(status: ServiceRequestStatus, intent: ServiceRequestIntent, subject: Reference) -> Self {
        ServiceRequest {
            resource_type: ResourceType::new(),
            id: None,
            identifier: Vec::new(),
            status,
            intent,
            priority: None,
            code: None,
            subject,
            encounter: None,
            authored_on: None,
            requester: None,
        }
    }

    /// The natural key, `system|value` of the first identifier with a value
    /// (the placer order number when mapped from HL7 v2, else the filler's).
    pub fn key(&self) -> Option<String> {
        self.identifier.iter().find_map(Identifier::token)
    }

    /// A logical reference to this order by `identifier` (each of the order's
    /// identifiers makes one; results name the order by placer and by filler).
    pub fn reference_by(identifier: &Identifier) -> Reference {
        Reference {
            type_: Some(Self::TYPE.into()),
            identifier: Some(Identifier {
                assigner: None,
                period: None,
                ..identifier.clone()
            }),
            ..Reference::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::canonical::datatypes::Coding;
    use crate::canonical::systems;

    fn sample() -> ServiceRequest {
        let mut sr = ServiceRequest::new(
            ServiceRequestStatus::Active,
            ServiceRequestIntent::Order,
            Reference {
                type_: Some("Patient".into()),
                display: Some("DOE, JANE".into()),
                ..Reference::default()
            },
        );
        sr.identifier.push(Identifier {
            type_: Some(CodeableConcept::coded(Coding::new(systems::V2_0203, "PLAC", None))),
            system: Some("urn:medbus:authority:CPOE".into()),
            value: Some("PL1".into()),
            ..Identifier::default()
        });
        sr.priority = Some(RequestPriority::Stat);
        sr.code = Some(CodeableConcept::coded(Coding::new(systems::LOINC, "2823-3", None)));
        sr.authored_on = DateTime::parse("2024-03-15T08:30:00Z").ok();
        sr
    }

    #[test]
    fn json_is_a_fhir_service_request() {
        let expected = json!({
            "resourceType": "ServiceRequest",
            "identifier": [{
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}]},
                "system": "urn:medbus:authority:CPOE",
                "value": "PL1"
            }],
            "status": "active",
            "intent": "order",
            "priority": "stat",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
            "subject": {"type": "Patient", "display": "DOE, JANE"},
            "authoredOn": "2024-03-15T08:30:00Z"
        });
        assert_eq!(serde_json::to_value(sample()).unwrap(), expected);
        assert_eq!(serde_json::from_value::<ServiceRequest>(expected).unwrap(), sample());
        assert_eq!(sample().key().as_deref(), Some("urn:medbus:authority:CPOE|PL1"));
        let r = ServiceRequest::reference_by(&sample().identifier[0]);
        assert_eq!(r.type_.as_deref(), Some("ServiceRequest"));
    }

    #[test]
    fn status_codes_are_fhir_codes() {
        for (s, code) in [
            (ServiceRequestStatus::OnHold, "on-hold"),
            (ServiceRequestStatus::Revoked, "revoked"),
            (ServiceRequestStatus::EnteredInError, "entered-in-error"),
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), json!(code));
        }
        assert_eq!(
            serde_json::to_value(ServiceRequestIntent::OriginalOrder).unwrap(),
            json!("original-order")
        );
    }

    #[test]
    fn status_intent_and_subject_are_required_on_the_way_in() {
        let v = json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order"});
        assert!(serde_json::from_value::<ServiceRequest>(v).is_err());
    }
}
