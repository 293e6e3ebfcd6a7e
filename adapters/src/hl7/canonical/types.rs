//! HL7 v2 data types to FHIR data types: CX → Identifier, HD → identifier
//! system, XPN → HumanName, XAD → Address, XTN → ContactPoint, CWE →
//! CodeableConcept, and the text rules every value goes through.

use chrono::FixedOffset;
use medbus_bus::canonical::{
    systems, Address, AddressType, AddressUse, CodeableConcept, Coding, ContactPoint, ContactPointSystem,
    ContactPointUse, DateTime, HumanName, Identifier, NameUse, Period, Reference,
};

use super::error::{FieldLocation, MapError};
use super::time::Dtm;
use crate::hl7::parser::{Component, Repetition, Segment, Value};

/// FHIR strings may not be empty nor hold control characters other than tab,
/// CR and LF; leading and trailing blanks carry no meaning in HL7 either.
fn clean(s: &str) -> Option<String> {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let t = cleaned.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Decoded, cleaned text of a value; `None` when empty or the HL7 null `""`
/// (a snapshot cannot say "delete", so null reads as not sent).
pub(super) fn text(v: Value<'_>) -> Option<String> {
    if v.is_empty() || v.is_null() {
        return None;
    }
    clean(&v.text())
}

/// Component `n` of a repetition, first sub-component only (a leaf value).
pub(super) fn comp(rep: &Repetition<'_>, n: usize) -> Option<String> {
    sub(rep.component(n)?, 1)
}

/// Sub-component `n` of a component.
pub(super) fn sub(c: Component<'_>, n: usize) -> Option<String> {
    text(c.subcomponent(n)?.as_value())
}

/// A FHIR `code`: no leading, trailing or repeated whitespace.
pub(super) fn code(s: Option<String>) -> Option<String> {
    let joined = s?.split_whitespace().collect::<Vec<_>>().join(" ");
    (!joined.is_empty()).then_some(joined)
}

/// The non-empty repetitions of field `n`, numbered from 1.
pub(super) fn reps<'a>(seg: &Segment<'a>, n: usize) -> impl Iterator<Item = (usize, Repetition<'a>)> {
    seg.field(n)
        .into_iter()
        .flat_map(|f| f.repetitions().enumerate().map(|(i, r)| (i + 1, r)))
        .filter(|(_, r)| !r.is_empty() && !r.is_null())
}

/// Where field `n` of `seg` is, for errors.
pub(super) fn loc(seg: &Segment<'_>, segment: &'static str, n: usize) -> FieldLocation {
    FieldLocation::new(segment, seg.sequence(), n)
}

/// A DTM component as a FHIR dateTime; `None` when empty.
pub(super) fn date_time(
    value: Option<String>,
    at: FieldLocation,
    zone: FixedOffset,
) -> Result<Option<DateTime>, MapError> {
    let Some(value) = value else { return Ok(None) };
    let invalid = |why: &str| MapError::InvalidField {
        location: at.clone(),
        why: why.to_string(),
    };
    let dtm = Dtm::parse(&value).map_err(invalid)?;
    dtm.to_date_time(zone).map(Some).map_err(invalid)
}

/// Lower-case hex digits only, 8-4-4-4-12.
fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `[0-2](\.(0|[1-9][0-9]*))+`, the form FHIR requires after `urn:oid:`.
fn is_oid(s: &str) -> bool {
    let mut arcs = s.split('.');
    let first_ok = arcs.next().is_some_and(|a| matches!(a, "0" | "1" | "2"));
    let rest: Vec<&str> = arcs.collect();
    first_ok
        && !rest.is_empty()
        && rest
            .iter()
            .all(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) && (a.len() == 1 || !a.starts_with('0')))
}

/// HD (namespace & universal id & universal id type) → identifier system and
/// a display name for the assigner. A universal id of type ISO, UUID or URI
/// is used as itself; otherwise the local name becomes
/// `urn:medbus:authority:<name>`, deterministic and needing no configuration.
pub(super) fn authority(hd: Option<Component<'_>>) -> (Option<String>, Option<String>) {
    let Some(hd) = hd else { return (None, None) };
    let (namespace, universal) = (sub(hd, 1), sub(hd, 2));
    let kind = sub(hd, 3).map(|k| k.to_ascii_uppercase());
    let system = match (universal.as_deref(), kind.as_deref()) {
        (Some(u), Some("ISO")) if is_oid(u) => Some(format!("urn:oid:{u}")),
        (Some(u), Some("UUID")) if is_uuid(u) => Some(format!("urn:uuid:{}", u.to_ascii_lowercase())),
        (Some(u), Some("URI" | "URL")) if u.contains(':') && !u.contains(char::is_whitespace) => Some(u.to_string()),
        _ => namespace.as_deref().or(universal.as_deref()).map(systems::authority),
    };
    (system, namespace.or(universal))
}

/// Display names of the common HL7 table 0203 identifier types.
fn identifier_type_display(code: &str) -> Option<&'static str> {
    Some(match code {
        "AN" => "Account number",
        "DL" => "Driver's license number",
        "DN" => "Doctor number",
        "EN" => "Employer number",
        "MA" => "Patient Medicaid number",
        "MC" => "Patient's Medicare number",
        "MR" => "Medical record number",
        "NH" => "National Health Plan Identifier",
        "NI" => "National unique individual identifier",
        "NPI" => "National provider identifier",
        "PI" => "Patient internal identifier",
        "PN" => "Person number",
        "PPN" => "Passport number",
        "PRN" => "Provider number",
        "PT" => "Patient external identifier",
        "SS" => "Social Security number",
        "U" => "Unspecified identifier",
        "VN" => "Visit number",
        _ => return None,
    })
}

/// Identifier.type for a table 0203 code.
pub(super) fn identifier_type(code: &str) -> CodeableConcept {
    CodeableConcept::coded(Coding::new(systems::V2_0203, code, identifier_type_display(code)))
}

/// An identifier from its value, assigning authority (HD), type code and validity.
pub(super) fn identifier(
    value: Option<String>,
    hd: Option<Component<'_>>,
    type_code: Option<String>,
    period: Option<Period>,
) -> Option<Identifier> {
    let value = value?;
    let (system, assigner) = authority(hd);
    Some(Identifier {
        type_: code(type_code).map(|c| identifier_type(&c)),
        system,
        value: Some(value),
        period,
        assigner: assigner.map(|name| {
            Box::new(Reference {
                display: Some(name),
                ..Reference::default()
            })
        }),
        ..Identifier::default()
    })
}

/// CX (repetition `r` of the field at `at`) → Identifier: CX-1 value, CX-4
/// authority, CX-5 type (or `default_type`), CX-7/8 validity. `None` when CX-1 is empty.
pub(super) fn cx(
    rep: &Repetition<'_>,
    at: &FieldLocation,
    r: usize,
    default_type: Option<&str>,
    zone: FixedOffset,
) -> Result<Option<Identifier>, MapError> {
    let start = date_time(comp(rep, 7), at.clone().at(r, 7), zone)?;
    let end = date_time(comp(rep, 8), at.clone().at(r, 8), zone)?;
    let type_code = comp(rep, 5).or(default_type.map(str::to_string));
    Ok(identifier(
        comp(rep, 1),
        rep.component(4),
        type_code,
        Period::new(start, end),
    ))
}

/// HL7 table 0200 name type → FHIR NameUse; codes without a counterpart are left unset.
fn name_use(code: &str) -> Option<NameUse> {
    Some(match code {
        "L" => NameUse::Official,
        "D" | "A" | "T" => NameUse::Usual,
        "M" => NameUse::Maiden,
        "N" => NameUse::Nickname,
        "S" => NameUse::Anonymous,
        _ => return None,
    })
}

/// XPN (and the name part of XCN, shifted by `offset` components) → HumanName.
pub(super) fn name(rep: &Repetition<'_>, offset: usize) -> Option<HumanName> {
    let c = |n: usize| comp(rep, n + offset);
    let n = HumanName {
        use_: c(7).as_deref().and_then(name_use),
        family: rep.component(1 + offset).and_then(|f| sub(f, 1)),
        given: [c(2), c(3)].into_iter().flatten().collect(),
        prefix: c(5).into_iter().collect(),
        suffix: [c(4), c(6)].into_iter().flatten().collect(),
        ..HumanName::default()
    };
    (n.family.is_some() || !n.given.is_empty()).then_some(n)
}

/// Everything but the name: prefix, given, middle, family, suffix, degree — for a display.
pub(super) fn display_name(n: &HumanName) -> Option<String> {
    let parts: Vec<&str> = n
        .prefix
        .iter()
        .chain(&n.given)
        .chain(&n.family)
        .chain(&n.suffix)
        .map(String::as_str)
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// XAD → Address; XAD-7 address type gives use or type.
pub(super) fn address(rep: &Repetition<'_>) -> Option<Address> {
    let (use_, type_) = match comp(rep, 7).as_deref() {
        Some("H") => (Some(AddressUse::Home), None),
        Some("B" | "O") => (Some(AddressUse::Work), None),
        Some("C") => (Some(AddressUse::Temp), None),
        Some("BA") => (Some(AddressUse::Old), None),
        Some("BI") => (Some(AddressUse::Billing), None),
        Some("M") => (None, Some(AddressType::Postal)),
        _ => (None, None),
    };
    let a = Address {
        use_,
        type_,
        line: [rep.component(1).and_then(|c| sub(c, 1)), comp(rep, 2)]
            .into_iter()
            .flatten()
            .collect(),
        city: comp(rep, 3),
        state: comp(rep, 4),
        postal_code: comp(rep, 5),
        country: comp(rep, 6),
        district: comp(rep, 9),
        ..Address::default()
    };
    let has_content = !a.line.is_empty()
        || [&a.city, &a.state, &a.postal_code, &a.country, &a.district]
            .iter()
            .any(|v| v.is_some());
    has_content.then_some(a)
}

/// XTN → ContactPoint. E-mail when the equipment or use says so or XTN-4 is
/// set; the number is XTN-1, else built from country, area, local, extension.
pub(super) fn telecom(rep: &Repetition<'_>, default_use: ContactPointUse) -> Option<ContactPoint> {
    let use_code = comp(rep, 2);
    let equipment = comp(rep, 3);
    let email = comp(rep, 4);
    let is_email = email.is_some()
        || matches!(equipment.as_deref(), Some("Internet" | "X.400"))
        || use_code.as_deref() == Some("NET");
    let system = if is_email {
        ContactPointSystem::Email
    } else {
        match (equipment.as_deref(), use_code.as_deref()) {
            (Some("FX"), _) => ContactPointSystem::Fax,
            (Some("BP"), _) | (_, Some("BPN")) => ContactPointSystem::Pager,
            _ => ContactPointSystem::Phone,
        }
    };
    let value = if is_email {
        email.or_else(|| comp(rep, 1))
    } else {
        comp(rep, 1).or_else(|| composed_number(rep)).or_else(|| comp(rep, 12))
    };
    let use_ = match (use_code.as_deref(), equipment.as_deref()) {
        (_, Some("CP")) => ContactPointUse::Mobile,
        (Some("WPN"), _) => ContactPointUse::Work,
        (Some("PRN" | "ORN" | "VHN"), _) => ContactPointUse::Home,
        _ => default_use,
    };
    Some(ContactPoint {
        system: Some(system),
        value: Some(value?),
        use_: Some(use_),
        ..ContactPoint::default()
    })
}

/// `+1 (217) 5550101 x12` from XTN-5 country, XTN-6 area, XTN-7 local, XTN-8 extension.
fn composed_number(rep: &Repetition<'_>) -> Option<String> {
    let local = comp(rep, 7)?;
    let mut out = String::new();
    if let Some(country) = comp(rep, 5) {
        out.push_str(&format!("+{} ", country.trim_start_matches('+')));
    }
    if let Some(area) = comp(rep, 6) {
        out.push_str(&format!("({area}) "));
    }
    out.push_str(&local);
    if let Some(ext) = comp(rep, 8) {
        out.push_str(&format!(" x{ext}"));
    }
    Some(out)
}

/// CWE/CE/IS → CodeableConcept in `system`: code from component 1, display
/// from component 2; only text when there is no code.
pub(super) fn coded(rep: &Repetition<'_>, system: &str) -> Option<CodeableConcept> {
    let display = comp(rep, 2);
    match code(comp(rep, 1)) {
        Some(c) => Some(CodeableConcept::coded(Coding::new(system, c, display.as_deref()))),
        None => display.map(|text| CodeableConcept {
            coding: Vec::new(),
            text: Some(text),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_uuids_and_encoding() {
        assert!(is_oid("1.2.840.114350") && is_oid("2.16.840.1.113883.4.6"));
        assert!(!is_oid("1") && !is_oid("3.1") && !is_oid("1.02") && !is_oid("1..2") && !is_oid("UCH"));
        assert!(is_uuid("6ba7b810-9dad-11d1-80b4-00c04fd430c8"));
        assert!(!is_uuid("6ba7b810-9dad-11d1-80b4"));
        assert_eq!(systems::percent_encode("St Mary's/East"), "St%20Mary%27s%2FEast");
        assert_eq!(systems::percent_encode("GENERAL_HOSP"), "GENERAL_HOSP");
        assert_eq!(clean("  a\u{1}b  ").as_deref(), Some("a b"));
        assert_eq!(clean(" \t "), None);
        assert_eq!(code(Some(" M  R ".into())).as_deref(), Some("M R"));
    }
}
