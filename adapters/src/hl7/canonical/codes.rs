//! CWE/CE/CNE with their coding systems → CodeableConcept: `LN` becomes
//! LOINC, `C4` CPT, `HL70078` the v2 table's URI, and a local system (`99zzz`,
//! `L`, a charge master) `urn:medbus:codesystem:<name>`.

use medbus_bus::canonical::{systems, CodeableConcept, Coding};

use super::types::{code, comp};
use crate::hl7::parser::Repetition;

/// HL7 table 0396 coding system name → code system URI.
pub(super) fn system_uri(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    let known = match upper.as_str() {
        "LN" | "LOINC" => Some(systems::LOINC),
        "SCT" | "SNOMEDCT" | "SNOMED-CT" => Some(systems::SNOMED_CT),
        "C4" | "C5" | "CPT" | "CPT4" | "CPT-4" => Some(systems::CPT),
        "I10" | "ICD10" => Some(systems::ICD_10),
        "I10C" | "ICD10CM" => Some(systems::ICD_10_CM),
        "I9C" | "I9CM" | "ICD9CM" => Some(systems::ICD_9_CM),
        "UCUM" => Some(systems::UCUM),
        _ => None,
    };
    if let Some(uri) = known {
        return uri.to_string();
    }
    match upper.strip_prefix("HL7") {
        // HL7nnnn: an HL7-defined table, e.g. HL70078 abnormal flags.
        Some(table) if table.len() == 4 && table.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}{table}", systems::V2_TABLE_PREFIX)
        }
        _ => format!(
            "{}{}",
            systems::MEDBUS_CODE_SYSTEM_PREFIX,
            systems::percent_encode(name)
        ),
    }
}

/// One coding from a code, text and system-name triplet at `first`, `first + 1`, `first + 2`.
fn triplet(rep: &Repetition<'_>, first: usize, default_system: Option<&str>) -> Option<Coding> {
    let c = code(comp(rep, first))?;
    let system = comp(rep, first + 2)
        .map(|name| system_uri(&name))
        .or(default_system.map(str::to_string));
    Some(Coding {
        system,
        version: None,
        code: Some(c),
        display: comp(rep, first + 1),
    })
}

/// CWE → CodeableConcept: the primary (CWE-1..3) and alternate (CWE-4..6)
/// codings, and CWE-9 original text (or CWE-2 when nothing is coded).
/// `default_system` applies when a code comes without a coding system (an
/// HL7 table field); otherwise such a coding has no system. `None` when empty.
pub(super) fn cwe(rep: &Repetition<'_>, default_system: Option<&str>) -> Option<CodeableConcept> {
    let coding: Vec<Coding> = [triplet(rep, 1, default_system), triplet(rep, 4, default_system)]
        .into_iter()
        .flatten()
        .collect();
    let text = comp(rep, 9).or_else(|| coding.is_empty().then(|| comp(rep, 2)).flatten());
    (!coding.is_empty() || text.is_some()).then_some(CodeableConcept { coding, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coding_system_names() {
        assert_eq!(system_uri("LN"), "http://loinc.org");
        assert_eq!(system_uri("c4"), "http://www.ama-assn.org/go/cpt");
        assert_eq!(system_uri("HL70078"), "http://terminology.hl7.org/CodeSystem/v2-0078");
        assert_eq!(system_uri("99CDM"), "urn:medbus:codesystem:99CDM");
        assert_eq!(system_uri("L"), "urn:medbus:codesystem:L");
        assert_eq!(system_uri("MY LAB"), "urn:medbus:codesystem:MY%20LAB");
        assert_eq!(system_uri("HL7X"), "urn:medbus:codesystem:HL7X");
    }
}
