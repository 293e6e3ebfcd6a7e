use std::io::Write;

use medbus_bus::canonical::{systems, CodeableConcept, Coding};

use super::*;

const TABLE: &str = "system,code,low,high,unit\n\
    http://loinc.org,2823-3,2.5,6.5,mmol/L\n\
    http://loinc.org,10839-9,,0.5,ng/mL\n";

fn limits() -> CriticalLimits {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(TABLE.as_bytes()).unwrap();
    CriticalLimits::load(f.path()).unwrap()
}

fn potassium(value: &str, unit: &str) -> Observation {
    let mut o = Observation::new(
        ObservationStatus::Final,
        CodeableConcept::coded(Coding::new(systems::LOINC, "2823-3", None)),
    );
    o.value = Some(ObservationValue::Quantity(Quantity {
        value: Decimal::parse(value),
        unit: Some(unit.into()),
        ..Quantity::default()
    }));
    o
}

fn threshold(low: Option<&str>, high: &str) -> Option<CriticalReason> {
    Some(CriticalReason::Threshold {
        low: low.and_then(Decimal::parse),
        high: Decimal::parse(high),
    })
}

#[test]
fn values_beyond_the_limits_are_critical() {
    let l = limits();
    assert_eq!(l.len(), 2);
    assert_eq!(judge(&potassium("6.8", "mmol/L"), &l), threshold(Some("2.5"), "6.5"));
    assert_eq!(judge(&potassium("2.1", "mmol/L"), &l), threshold(Some("2.5"), "6.5"));
    for normal in ["6.5", "2.5", "4.2"] {
        assert_eq!(judge(&potassium(normal, "mmol/L"), &l), None, "{normal}");
    }
    assert_eq!(
        judge(&potassium("6.8", "mg/dL"), &l),
        None,
        "another unit is not compared"
    );
    assert_eq!(judge(&potassium("6.8", "mmol/L"), &CriticalLimits::none()), None);
}

#[test]
fn bounds_count_only_when_every_value_they_stand_for_is_beyond() {
    let l = limits();
    let mut o = potassium("6.5", "mmol/L");
    let set = |o: &mut Observation, c| {
        if let Some(ObservationValue::Quantity(q)) = &mut o.value {
            q.comparator = Some(c);
        }
    };
    set(&mut o, QuantityComparator::Greater);
    assert!(judge(&o, &l).is_some(), ">6.5 is above 6.5");
    set(&mut o, QuantityComparator::Less);
    assert_eq!(judge(&o, &l), None, "<6.5 says nothing");
    let mut low = potassium("2.5", "mmol/L");
    set(&mut low, QuantityComparator::Less);
    assert!(judge(&low, &l).is_some(), "<2.5 is below 2.5");
}

#[test]
fn the_senders_flag_wins_and_withdrawn_values_never_count() {
    let l = limits();
    let mut o = potassium("6.8", "mmol/L");
    o.interpretation.push(CodeableConcept::coded(Coding::new(
        systems::V3_OBSERVATION_INTERPRETATION,
        "HH",
        None,
    )));
    assert_eq!(judge(&o, &l), Some(CriticalReason::Flag("HH".into())));
    let mut flagged_only = potassium("5.0", "mmol/L");
    flagged_only.interpretation = o.interpretation.clone();
    assert_eq!(
        judge(&flagged_only, &CriticalLimits::none()),
        Some(CriticalReason::Flag("HH".into()))
    );
    o.status = ObservationStatus::EnteredInError;
    assert_eq!(judge(&o, &l), None);
}

#[test]
fn bad_lines_are_refused_with_file_and_line() {
    for (row, why) in [
        ("http://loinc.org,2823-3,low,6.5,mmol/L", "not a decimal"),
        ("http://loinc.org,2823-3,,,mmol/L", "low, high or both"),
        ("http://loinc.org,2823-3,7,6.5,mmol/L", "above high"),
        (",2823-3,1,2,", "must not be empty"),
        ("http://loinc.org,2823-3,1,2", "fields"),
        ("http://loinc.org,10839-9,,1,ng/mL", "already in the table (line 3)"),
    ] {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "{TABLE}{row}").unwrap();
        let e = CriticalLimits::load(f.path()).unwrap_err();
        assert_eq!(e.line, Some(4), "{row}: {e}");
        assert!(e.message.contains(why), "{row}: {e}");
        assert!(e.to_string().starts_with(&f.path().display().to_string()), "{e}");
    }
}

#[test]
fn the_config_names_the_file_relative_to_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tables")).unwrap();
    std::fs::write(dir.path().join("tables/crit.csv"), TABLE).unwrap();
    let cfg = ResultsServiceConfig {
        enabled: true,
        critical_values: "tables/crit.csv".into(),
    };
    assert_eq!(CriticalLimits::from_config(&cfg, dir.path()).unwrap().len(), 2);
    let none = ResultsServiceConfig::default();
    assert!(CriticalLimits::from_config(&none, dir.path()).unwrap().is_empty());
}
