//! Every FHIR resource medbus produces from the simulator's full HL7 v2 mix
//! (ADT, ORM, ORU, DFT, SIU), from the modality simulator's DICOM instances
//! (`imaging.instance-stored`, and `imaging.study-completed` with several
//! series: see `imaging_events`), and from hand-written edge cases, validates
//! with a validator nobody here wrote: PyPI `fhir.resources` 6.2.2 (R4), run
//! by scripts/fhir_validate.py from the venv scripts/test.sh creates. The
//! transaction Bundles of the same events validate too.
//!
//! The validator's python is `$MEDBUS_TEST_FHIR_PYTHON`, else
//! `~/.cache/medbus/fhir-venv/bin/python`; without it the test skips, or
//! fails under `MEDBUS_REQUIRE_SERVICES=1`. `MEDBUS_TEST_FHIR_OUT=<dir>` keeps the
//! NDJSON files it validated.

mod imaging_events;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use medbus_adapters::fhir::{to_bundle, to_fhir};
use medbus_adapters::hl7::canonical::map_message;
use medbus_adapters::hl7::parser::Message;
use medbus_bus::canonical::{CanonicalEvent, CriticalReason, CriticalResultEvent, EventKind, Observation};
use serde_json::Value;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    std::env::var_os("MEDBUS_TEST_FHIR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/medbus/fhir-venv/bin/python")
        })
}

fn script() -> PathBuf {
    manifest().join("../scripts/fhir_validate.py")
}

/// The simulator corpus: one message a line, CR between segments.
fn corpus() -> Vec<Vec<u8>> {
    let raw = std::fs::read(manifest().join("src/hl7/canonical/message_tests/sim_full_600.hl7")).unwrap();
    raw.split(|&b| b == b'\n')
        .filter(|m| !m.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// The edge cases: blank-line-separated blocks, a segment a line, `#` comments.
fn edge_cases() -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(manifest().join("src/fhir/edge_cases.hl7")).unwrap();
    text.split("\n\n")
        .map(|block| {
            let segments: Vec<&str> = block.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
            segments.join("\r").into_bytes()
        })
        .filter(|m| !m.is_empty())
        .collect()
}

/// What the results service would raise: one `result.critical` per value
/// flagged critical (HH, LL, AA), and for the rest of a report's numeric
/// values one threshold case, so that both reasons are covered.
fn criticals(event: &CanonicalEvent) -> Vec<CanonicalEvent> {
    let (CanonicalEvent::ResultReported(b) | CanonicalEvent::ResultCorrected(b)) = event else {
        return Vec::new();
    };
    let raise = |o: &Observation, reason: CriticalReason| {
        CanonicalEvent::ResultCritical(Box::new(CriticalResultEvent {
            observation: o.clone(),
            report: b.report.clone(),
            reason,
            patient: b.patient.clone(),
            source_message_type: b.source_message_type.clone(),
            occurred: b.occurred.clone(),
        }))
    };
    let mut out = Vec::new();
    for o in &b.observations {
        if let Some(flag) = ["HH", "LL", "AA"].into_iter().find(|f| o.has_interpretation(f)) {
            out.push(raise(o, CriticalReason::Flag(flag.into())));
        }
    }
    if let Some(o) = b.observations.first() {
        let limit = medbus_bus::canonical::Decimal::parse("1");
        out.push(raise(o, CriticalReason::Threshold { low: limit, high: None }));
    }
    out
}

fn events_of(messages: &[Vec<u8>]) -> Vec<CanonicalEvent> {
    let mut out = Vec::new();
    for raw in messages {
        let msg = Message::parse(raw).unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(raw)));
        let events = map_message(&msg).unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(raw)));
        for e in events {
            out.extend(criticals(&e));
            out.push(e);
        }
    }
    out
}

/// The validator's python, or None (skip) / panic (MEDBUS_REQUIRE_SERVICES=1) without it.
fn validator() -> Option<PathBuf> {
    let py = python();
    let install = "python3 -m venv ~/.cache/medbus/fhir-venv && \
                   ~/.cache/medbus/fhir-venv/bin/pip install 'fhir.resources==6.2.2' 'pydantic[email]<2'";
    let script = script();
    let script = script.to_string_lossy();
    let args = [script.as_ref(), "--check"];
    medbus_testkit::peers::tool(
        "fhir.resources 6.2.2 (R4 validator)",
        &py.to_string_lossy(),
        &args,
        install,
    )?;
    Some(py)
}

/// Runs the validator on `lines`: its exit status and report.
fn run(py: &Path, what: &str, lines: &[Value]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{what}.ndjson"));
    let mut f = std::fs::File::create(&path).unwrap();
    for v in lines {
        writeln!(f, "{}", serde_json::to_string(v).unwrap()).unwrap();
    }
    drop(f);
    // MEDBUS_TEST_FHIR_OUT=<dir> keeps a copy, to read or to feed another validator.
    if let Some(keep) = std::env::var_os("MEDBUS_TEST_FHIR_OUT") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&path, Path::new(&keep).join(format!("{what}.ndjson"))).unwrap();
    }
    let out = Command::new(py).arg(script()).arg(&path).output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("--- fhir.resources on {} {what}:\n{report}", lines.len());
    (out.status.success(), report)
}

/// Runs the validator on `lines`; panics with its report unless all are valid.
fn validate(py: &Path, what: &str, lines: &[Value]) -> String {
    let (ok, report) = run(py, what, lines);
    assert!(ok, "{what}: the validator refused some:\n{report}");
    assert!(
        report.contains(&format!("{} valid, 0 invalid", lines.len())),
        "{what}: not all counted:\n{report}"
    );
    report
}

#[test]
fn every_resource_and_bundle_from_the_corpus_and_edge_cases_validates() {
    let Some(py) = validator() else { return };

    let mut events = events_of(&corpus());
    let from_corpus = events.len();
    events.extend(events_of(&edge_cases()));
    events.extend(imaging_events::imaging_events());
    let kinds: BTreeSet<&str> = events.iter().map(|e| e.kind().as_str()).collect();
    let missing: Vec<&str> = EventKind::ALL
        .iter()
        .map(|k| k.as_str())
        .filter(|k| !kinds.contains(k))
        .collect();
    assert!(missing.is_empty(), "kinds never produced: {missing:?}");

    let mut resources = Vec::new();
    let mut bundles = Vec::new();
    let mut per_type: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        let kind = e.kind().as_str();
        let rs = to_fhir(e).unwrap_or_else(|err| panic!("{kind}: {err}"));
        assert!(!rs.is_empty(), "{kind}: no resource");
        for r in &rs {
            *per_type
                .entry(r["resourceType"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
        }
        resources.extend(rs);
        bundles.push(to_bundle(e).unwrap_or_else(|err| panic!("{kind}: {err}")));
    }
    eprintln!(
        "{} events ({from_corpus} from the corpus, {} kinds) -> {} resources: {per_type:?}",
        events.len(),
        kinds.len(),
        resources.len()
    );
    validate(&py, "resources", &resources);
    validate(&py, "bundles", &bundles);
}

/// The check has teeth: what R4 forbids, in resources we produce, is refused.
#[test]
fn the_validator_refuses_what_r4_forbids() {
    let Some(py) = validator() else { return };
    let events = events_of(&edge_cases());
    let result = events.iter().find(|e| e.kind() == EventKind::ResultReported).unwrap();
    let rs = to_fhir(result).unwrap();
    let (patient, observation) = (&rs[0], &rs[1]);
    let imaging = imaging_events::imaging_events();
    let study = to_fhir(&imaging[0]).unwrap().remove(1);
    assert_eq!(study["resourceType"], "ImagingStudy");
    let broken = |base: &Value, edit: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut v = base.clone();
        edit(v.as_object_mut().unwrap());
        v
    };
    let cases = [
        broken(observation, &|o| drop(o.remove("code"))),
        broken(observation, &|o| drop(o.remove("status"))),
        broken(observation, &|o| drop(o.insert("issued".into(), "2024-03-01".into()))),
        broken(patient, &|p| drop(p.insert("id".into(), "not_an_id".into()))),
        broken(patient, &|p| drop(p.insert("favouriteColour".into(), "blue".into()))),
        broken(patient, &|p| drop(p.insert("gender".into(), "".into()))),
        broken(patient, &|p| drop(p.insert("birthDate".into(), "1980-13-45".into()))),
        broken(&study, &|s| drop(s.remove("subject"))),
        broken(&study, &|s| {
            drop(s["series"][0].as_object_mut().map(|x| x.remove("modality")))
        }),
        broken(&study, &|s| {
            drop(
                s["series"][0]
                    .as_object_mut()
                    .map(|x| x.insert("uid".into(), "1.2 3".into())),
            )
        }),
    ];
    let (ok, report) = run(&py, "broken", &cases);
    assert!(!ok, "the validator accepted broken resources:\n{report}");
    assert!(
        report.contains(&format!("0 valid, {} invalid", cases.len())),
        "{report}"
    );
}
