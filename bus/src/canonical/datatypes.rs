//! FHIR R4 general-purpose data types: [`Identifier`], [`HumanName`],
//! [`Address`], [`ContactPoint`], [`CodeableConcept`], [`Coding`],
//! [`Reference`], [`Period`].
//!
//! Element names and codes are FHIR's, so each serialises to valid FHIR JSON:
//! camelCase names, empty and absent elements left out (FHIR forbids `""`,
//! `[]` and `{}`). Only the elements medbus fills are modelled; more are added
//! as mappings need them.

use serde::{Deserialize, Serialize};

use super::primitives::DateTime;

/// FHIR `Identifier.use`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentifierUse {
    /// The identifier recommended for display and use.
    Usual,
    /// Considered permanent and trusted.
    Official,
    /// A temporary identifier.
    Temp,
    /// Assigned for a secondary purpose.
    Secondary,
    /// No longer valid (e.g. replaced by a merge).
    Old,
}

/// FHIR `Identifier`: a business identifier (MRN, visit number, NPI …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identifier {
    /// How the identifier is used.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<IdentifierUse>,
    /// Kind of identifier (HL7 table 0203 codes: MR, PI, AN, VN …).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<CodeableConcept>,
    /// The namespace of the value (`urn:oid:…`, `urn:medbus:authority:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The value, unique within the system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// When the identifier is valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Organisation that issued it (boxed: a Reference holds an Identifier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigner: Option<Box<Reference>>,
}

impl Identifier {
    /// The FHIR search token `system|value` (`|value` without a system), the
    /// form natural keys take; `None` without a value.
    pub fn token(&self) -> Option<String> {
        let value = self.value.as_deref()?;
        Some(format!("{}|{value}", self.system.as_deref().unwrap_or_default()))
    }

    /// True when the type carries `code` of HL7 table 0203 (`MR`, `VN` …).
    pub fn has_type(&self, code: &str) -> bool {
        self.type_
            .as_ref()
            .is_some_and(|t| t.has_code(super::systems::V2_0203, code))
    }
}

/// FHIR `HumanName.use`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NameUse {
    /// Known as, conventional or the one normally used.
    Usual,
    /// The formal name as registered in an official registry.
    Official,
    /// A temporary name.
    Temp,
    /// A name used informally.
    Nickname,
    /// An anonymous name used for privacy.
    Anonymous,
    /// No longer in use.
    Old,
    /// A name used prior to changing name because of marriage.
    Maiden,
}

/// FHIR `HumanName`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HumanName {
    /// Purpose of the name.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<NameUse>,
    /// The full name as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Family name (surname).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Given names, first name first (middle names follow).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub given: Vec<String>,
    /// Parts before the name (`DR`, `MS`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix: Vec<String>,
    /// Parts after the name (`JR`, `MD`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suffix: Vec<String>,
    /// When the name was in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
}

impl HumanName {
    /// `Family, Given Middle` (or whatever parts there are), for `Reference.display`.
    pub fn display(&self) -> Option<String> {
        if let Some(text) = &self.text {
            return Some(text.clone());
        }
        let given = self.given.join(" ");
        match (self.family.as_deref(), given.is_empty()) {
            (Some(f), false) => Some(format!("{f}, {given}")),
            (Some(f), true) => Some(f.to_string()),
            (None, false) => Some(given),
            (None, true) => None,
        }
    }
}

/// FHIR `Address.use`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressUse {
    /// A communication address at a home.
    Home,
    /// An office address.
    Work,
    /// A temporary address.
    Temp,
    /// No longer in use.
    Old,
    /// For sending bills.
    Billing,
}

/// FHIR `Address.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressType {
    /// Mailing address.
    Postal,
    /// Where one can visit.
    Physical,
    /// Both.
    Both,
}

/// FHIR `Address`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// Purpose of the address.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<AddressUse>,
    /// Postal, physical or both.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<AddressType>,
    /// Street name, number, apartment …, one entry per line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub line: Vec<String>,
    /// City or town.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// District or county.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    /// State, province or region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Country (ISO 3166 code or name, as sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// When the address was in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
}

/// FHIR `ContactPoint.system`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactPointSystem {
    /// Telephone.
    Phone,
    /// Fax machine.
    Fax,
    /// E-mail.
    Email,
    /// Pager.
    Pager,
    /// A URL.
    Url,
    /// SMS.
    Sms,
    /// Anything else.
    Other,
}

/// FHIR `ContactPoint.use`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactPointUse {
    /// At home.
    Home,
    /// At work.
    Work,
    /// Temporary.
    Temp,
    /// No longer in use.
    Old,
    /// A mobile device.
    Mobile,
}

/// FHIR `ContactPoint`: a phone number, e-mail address …
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactPoint {
    /// Kind of contact point (FHIR requires it whenever a value is present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<ContactPointSystem>,
    /// The number or address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Purpose.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<ContactPointUse>,
    /// Preference order, 1 = highest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<u32>,
    /// When it was in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
}

/// FHIR `Coding`: one code from one code system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coding {
    /// The code system URI (see [`systems`](super::systems)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Version of the code system, when it matters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Human-readable meaning of the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Coding {
    /// A coding with system, code and optional display.
    pub fn new(system: &str, code: impl Into<String>, display: Option<&str>) -> Self {
        Coding {
            system: Some(system.to_string()),
            version: None,
            code: Some(code.into()),
            display: display.map(str::to_string),
        }
    }

    /// True when this is `code` in `system`.
    pub fn is(&self, system: &str, code: &str) -> bool {
        self.system.as_deref() == Some(system) && self.code.as_deref() == Some(code)
    }
}

/// FHIR `CodeableConcept`: codings for one concept, and/or text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeableConcept {
    /// Codes, possibly from several systems, for the same concept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coding: Vec<Coding>,
    /// The concept as the user saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl CodeableConcept {
    /// A concept with one coding.
    pub fn coded(coding: Coding) -> Self {
        CodeableConcept {
            coding: vec![coding],
            text: None,
        }
    }

    /// True when a coding is `code` in `system`.
    pub fn has_code(&self, system: &str, code: &str) -> bool {
        self.coding.iter().any(|c| c.is(system, code))
    }
}

/// FHIR `Reference`: a literal reference, a logical one (by identifier) and/or a display.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    /// Literal reference (`Patient/123`) — medbus fills it only when it knows the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Type the reference refers to (`Patient`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Logical reference: the target's business identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    /// Text for the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

/// FHIR `Period`: start and/or end, inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Period {
    /// Start (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime>,
    /// End (inclusive); absent while ongoing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime>,
}

impl Period {
    /// `None` when both ends are absent, so that no `{}` is written.
    pub fn new(start: Option<DateTime>, end: Option<DateTime>) -> Option<Self> {
        (start.is_some() || end.is_some()).then_some(Period { start, end })
    }
}

#[cfg(test)]
#[path = "datatypes_tests.rs"]
mod tests;
