//! FHIR R4 `ChargeItem`: one billable item (a lab test, a venipuncture) for
//! a patient in a visit, with its quantity and price.

use serde::{Deserialize, Serialize};

use super::datatypes::{CodeableConcept, Identifier, Period, Reference};
use super::primitives::DateTime;
use super::quantity::{Money, Quantity};
use super::resource::{Resource, ResourceType};

/// FHIR `ChargeItem.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChargeItemStatus {
    /// Not yet ready to bill.
    Planned,
    /// Ready to bill.
    Billable,
    /// Not to be billed.
    NotBillable,
    /// Reversed: no longer to be billed (a credit against the charge).
    Aborted,
    /// Billed.
    Billed,
    /// Should never have existed.
    EnteredInError,
    /// The source did not say.
    Unknown,
}

/// FHIR `ChargeItem.occurrence[x]`: when the charged service happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChargeOccurrence {
    /// `occurrenceDateTime`.
    #[serde(rename = "occurrenceDateTime")]
    DateTime(DateTime),
    /// `occurrencePeriod`.
    #[serde(rename = "occurrencePeriod")]
    Period(Period),
}

/// FHIR R4 `ChargeItem`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeItem {
    /// Always `ChargeItem`; refuses any other type when read.
    pub resource_type: ResourceType<ChargeItem>,
    /// Resource id, when a store has assigned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The source's transaction id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// Billable, or reversed (`aborted`).
    pub status: ChargeItemStatus,
    /// What is charged: the charge-master code, and its CPT code when sent.
    pub code: CodeableConcept,
    /// The patient (FHIR requires it).
    pub subject: Reference,
    /// The visit it is charged to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Reference>,
    /// When the service happened.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub occurrence: Option<ChargeOccurrence>,
    /// How many (negative on some credits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    /// The total price of this item as the source charged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_override: Option<Money>,
    /// When the charge was posted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entered_date: Option<DateTime>,
    /// Why (diagnosis codes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason: Vec<CodeableConcept>,
    /// What the charge is for: the order (a ServiceRequest by filler number).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supporting_information: Vec<Reference>,
}

impl Resource for ChargeItem {
    const TYPE: &'static str = "ChargeItem";
}

impl ChargeItem {
    /// A new charge with its required elements.
    pub fn new(status: ChargeItemStatus, code: CodeableConcept, subject: Reference) -> Self {
        ChargeItem {
            resource_type: ResourceType::new(),
            id: None,
            identifier: Vec::new(),
            status,
            code,
            subject,
            context: None,
            occurrence: None,
            quantity: None,
            price_override: None,
            entered_date: None,
            reason: Vec::new(),
            supporting_information: Vec::new(),
        }
    }

    /// The natural key, `system|value` of the first identifier with a value.
    pub fn key(&self) -> Option<String> {
        self.identifier.iter().find_map(Identifier::token)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::canonical::datatypes::Coding;
    use crate::canonical::quantity::Decimal;
    use crate::canonical::systems;

    #[test]
    fn json_is_a_fhir_charge_item() {
        let mut c = ChargeItem::new(
            ChargeItemStatus::Billable,
            CodeableConcept::coded(Coding::new(systems::CPT, "84484", None)),
            Reference {
                type_: Some("Patient".into()),
                display: Some("DOE, JANE".into()),
                ..Reference::default()
            },
        );
        c.occurrence = DateTime::parse("2024-03-01T08:02:21Z")
            .ok()
            .map(ChargeOccurrence::DateTime);
        c.quantity = Some(Quantity {
            value: Decimal::parse("1"),
            ..Quantity::default()
        });
        c.price_override = Some(Money {
            value: Decimal::parse("79.50"),
            currency: Some("USD".into()),
        });
        let expected = json!({
            "resourceType": "ChargeItem",
            "status": "billable",
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "84484"}]},
            "subject": {"type": "Patient", "display": "DOE, JANE"},
            "occurrenceDateTime": "2024-03-01T08:02:21Z",
            "quantity": {"value": 1},
            "priceOverride": {"value": 79.5, "currency": "USD"}
        });
        assert_eq!(serde_json::to_value(&c).unwrap(), expected);
        assert_eq!(serde_json::from_value::<ChargeItem>(expected).unwrap(), c);
        c.occurrence = Period::new(DateTime::parse("2024-03-01").ok(), DateTime::parse("2024-03-02").ok())
            .map(ChargeOccurrence::Period);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["occurrencePeriod"]["end"], json!("2024-03-02"));
        assert_eq!(serde_json::from_value::<ChargeItem>(v).unwrap(), c);
        assert_eq!(
            serde_json::to_value(ChargeItemStatus::NotBillable).unwrap(),
            json!("not-billable")
        );
    }
}
