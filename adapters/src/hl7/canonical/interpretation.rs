//! OBX-8 abnormal flags (HL7 table 0078) → FHIR interpretation (v3
//! ObservationInterpretation). HL7's v2-to-FHIR map is the identity for every
//! code v3 has; a flag v3 lacks keeps its v2 table 0078 coding.

use medbus_bus::canonical::{systems, CodeableConcept, Coding};

/// The v3 ObservationInterpretation codes and their displays (R4).
const V3: &[(&str, &str)] = &[
    ("<", "Off scale low"),
    (">", "Off scale high"),
    ("A", "Abnormal"),
    ("AA", "Critical abnormal"),
    ("AC", "Anti-complementary substances present"),
    ("B", "Better"),
    ("D", "Significant change down"),
    ("DET", "Detected"),
    ("E", "Equivocal"),
    ("EX", "outside threshold"),
    ("H", "High"),
    ("HH", "Critical high"),
    ("HM", "Hold for Medical Review"),
    ("HU", "Significantly high"),
    ("HX", "above high threshold"),
    ("I", "Intermediate"),
    ("IE", "Insufficient evidence"),
    ("IND", "Indeterminate"),
    ("L", "Low"),
    ("LL", "Critical low"),
    ("LU", "Significantly low"),
    ("LX", "below low threshold"),
    ("MS", "moderately susceptible"),
    ("N", "Normal"),
    ("NCL", "No CLSI defined breakpoint"),
    ("ND", "Not detected"),
    ("NEG", "Negative"),
    ("NR", "Non-reactive"),
    ("NS", "Non-susceptible"),
    ("POS", "Positive"),
    ("QCF", "Quality control failure"),
    ("R", "Resistant"),
    ("RR", "Reactive"),
    ("S", "Susceptible"),
    ("SDD", "Susceptible-dose dependent"),
    ("SYN-R", "Synergy - resistant"),
    ("SYN-S", "Synergy - susceptible"),
    ("TOX", "Cytotoxic substance present"),
    ("U", "Significant change up"),
    ("UNE", "Unexpected result"),
    ("VS", "very susceptible"),
    ("W", "Worse"),
    ("WR", "Weakly reactive"),
];

/// One abnormal flag → interpretation.
pub(super) fn interpretation(flag: &str) -> CodeableConcept {
    match V3.iter().find(|(code, _)| *code == flag) {
        Some((code, display)) => CodeableConcept::coded(Coding::new(
            systems::V3_OBSERVATION_INTERPRETATION,
            *code,
            Some(display),
        )),
        None => CodeableConcept::coded(Coding::new(systems::V2_0078, flag, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_flags_are_v3_codes() {
        for flag in ["HH", "LL", "AA", "H", "L", "N", "<", ">"] {
            assert!(
                interpretation(flag).has_code(systems::V3_OBSERVATION_INTERPRETATION, flag),
                "{flag}"
            );
        }
        assert_eq!(interpretation("HH").coding[0].display.as_deref(), Some("Critical high"));
        assert!(interpretation("ZZ").has_code(systems::V2_0078, "ZZ"));
    }
}
