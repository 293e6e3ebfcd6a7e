//! EI (entity identifier: order numbers, appointment ids) → Identifier, and
//! HD given as a whole field (MSH-4) → identifier system.
//!
//! The system rule is the one `types::authority` applies to the HD inside a
//! CX: a universal id of type ISO, UUID or URI is used as itself, otherwise
//! the local name becomes `urn:medbus:authority:<name>`. It is written again
//! here because EI and MSH-4 carry the HD parts as components, not as the
//! sub-components `types::authority` reads.

use medbus_bus::canonical::{systems, Identifier, Reference};

use super::types::{code, comp, identifier_type};
use crate::hl7::parser::Repetition;

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

/// The identifier system and assigner name for an authority given as
/// namespace id, universal id and universal id type.
pub(super) fn authority_of(
    namespace: Option<String>,
    universal: Option<String>,
    kind: Option<String>,
) -> (Option<String>, Option<String>) {
    let kind = kind.map(|k| k.to_ascii_uppercase());
    let system = match (universal.as_deref(), kind.as_deref()) {
        (Some(u), Some("ISO")) if is_oid(u) => Some(format!("urn:oid:{u}")),
        (Some(u), Some("UUID")) if is_uuid(u) => Some(format!("urn:uuid:{}", u.to_ascii_lowercase())),
        (Some(u), Some("URI" | "URL")) if u.contains(':') && !u.contains(char::is_whitespace) => Some(u.to_string()),
        _ => namespace.as_deref().or(universal.as_deref()).map(systems::authority),
    };
    (system, namespace.or(universal))
}

/// An HD held in components `first`, `first + 1`, `first + 2` of a repetition
/// (EI-2..4, or MSH-4's own components with `first` 1).
pub(super) fn authority_at(rep: &Repetition<'_>, first: usize) -> (Option<String>, Option<String>) {
    authority_of(comp(rep, first), comp(rep, first + 1), comp(rep, first + 2))
}

/// EI → Identifier, of HL7 table 0203 type `type_code` (`PLAC`, `FILL`)
/// when given: EI-1 value, EI-2..4 authority. `None` when EI-1 is empty.
pub(super) fn ei(rep: &Repetition<'_>, type_code: Option<&str>) -> Option<Identifier> {
    let value = comp(rep, 1)?;
    let (system, assigner) = authority_at(rep, 2);
    Some(Identifier {
        type_: code(type_code.map(str::to_string)).map(|c| identifier_type(&c)),
        system,
        value: Some(value),
        assigner: assigner.map(|name| {
            Box::new(Reference {
                display: Some(name),
                ..Reference::default()
            })
        }),
        ..Identifier::default()
    })
}

/// An identifier derived from `base` by appending `/part`s: same system,
/// no type (it is not the base's kind of identifier any more).
pub(super) fn derived(base: &Identifier, parts: &[&str]) -> Identifier {
    let mut value = base.value.clone().unwrap_or_default();
    for p in parts {
        value.push('/');
        value.push_str(p);
    }
    Identifier {
        system: base.system.clone(),
        value: Some(value),
        ..Identifier::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systems_follow_the_cx_rule() {
        let of = |n: &str, u: &str, k: &str| {
            let s = |v: &str| (!v.is_empty()).then(|| v.to_string());
            authority_of(s(n), s(u), s(k)).0
        };
        assert_eq!(of("LAB", "", "").as_deref(), Some("urn:medbus:authority:LAB"));
        assert_eq!(of("LAB", "1.2.3", "ISO").as_deref(), Some("urn:oid:1.2.3"));
        assert_eq!(of("LAB", "1.02", "ISO").as_deref(), Some("urn:medbus:authority:LAB"));
        assert_eq!(
            of("", "6BA7B810-9DAD-11D1-80B4-00C04FD430C8", "UUID").as_deref(),
            Some("urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8")
        );
        assert_eq!(
            of("St Mary's", "", "").as_deref(),
            Some("urn:medbus:authority:St%20Mary%27s")
        );
        assert_eq!(of("", "", ""), None);
        assert!(is_oid("2.16.840.1.113883.4.6") && !is_oid("1") && !is_oid("1..2"));
        assert!(!is_uuid("6ba7b810-9dad-11d1-80b4"));
    }
}
