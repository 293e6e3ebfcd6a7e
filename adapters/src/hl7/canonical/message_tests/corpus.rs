//! Whole corpora through [`map_message`]: the simulator's full mix maps
//! completely, with results and charges linked to orders placed before them,
//! and mutations of the samples never panic. Whatever maps is clean FHIR
//! JSON that reads back to the same event and has a patient key.

use std::collections::{BTreeMap, HashSet};

use medbus_bus::canonical::{CanonicalEvent, EventBody, Identifier};
use serde_json::Value;

use super::samples;
use crate::hl7::canonical::map_message;
use crate::hl7::parser::Message;

/// `medbus-sim hl7 generate --mix full --count 600 --seed 7 --framing cr --out sim_full_600.hl7`:
/// ADT, ORM, ORU, DFT and SIU of a few hundred patients, one message a line.
const SIMULATED: &[u8] = include_bytes!("sim_full_600.hl7");

/// FHIR JSON rules: no empty strings, arrays or objects, no nulls, no blanks
/// around strings, no whitespace in URIs.
fn check_clean(v: &Value, path: &str) {
    match v {
        Value::String(s) => {
            assert!(!s.is_empty() && s.trim() == s, "empty or padded string at {path}");
            if path.ends_with(".system") || path.ends_with(".reference") {
                assert!(!s.contains(char::is_whitespace), "whitespace in the URI at {path}");
            }
        }
        Value::Array(items) => {
            assert!(!items.is_empty(), "empty array at {path}");
            for (i, item) in items.iter().enumerate() {
                check_clean(item, &format!("{path}[{i}]"));
            }
        }
        Value::Object(map) => {
            assert!(!map.is_empty(), "empty object at {path}");
            for (k, item) in map {
                check_clean(item, &format!("{path}.{k}"));
            }
        }
        Value::Null => panic!("null at {path}"),
        Value::Bool(_) | Value::Number(_) => {}
    }
}

/// One event's invariants.
fn check_event(event: &CanonicalEvent) {
    let kind = event.kind().as_str();
    let json = event.to_json().unwrap();
    check_clean(&json, kind);
    assert!(event.patient_key().is_some(), "{kind} without a patient key");
    assert_eq!(
        &CanonicalEvent::from_json(event.kind(), json).unwrap(),
        event,
        "round trip of {kind}"
    );
}

fn tokens<'a>(ids: impl IntoIterator<Item = &'a Identifier>) -> Vec<String> {
    ids.into_iter().filter_map(Identifier::token).collect()
}

#[test]
fn the_simulators_full_mix_maps_completely_and_links_up() {
    let mut types: BTreeMap<String, usize> = BTreeMap::new();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut placed: HashSet<String> = HashSet::new();
    let mut reported: HashSet<String> = HashSet::new();
    for raw in SIMULATED.split(|&b| b == b'\n').filter(|m| !m.is_empty()) {
        let msg = Message::parse(raw).unwrap();
        let control = msg
            .control_id()
            .map(|c| c.first().text().into_owned())
            .unwrap_or_default();
        let events = map_message(&msg).unwrap_or_else(|e| panic!("{control}: {e}"));
        let code = msg.message_type().map(|t| t.code.into_owned()).unwrap_or_default();
        *types.entry(code).or_default() += 1;
        assert!(!events.is_empty(), "{control}: no event");
        for event in &events {
            check_event(event);
            *kinds.entry(event.kind().as_str()).or_default() += 1;
            match event.body() {
                EventBody::Order(o) if event.kind().as_str() == "order.placed" => {
                    placed.extend(tokens(&o.service_request.identifier));
                }
                EventBody::Order(o) => {
                    let known = tokens(&o.service_request.identifier).iter().any(|t| placed.contains(t));
                    assert!(known, "{control}: a change to an order never placed");
                }
                EventBody::Result(r) => {
                    let orders = tokens(r.report.based_on.iter().filter_map(|b| b.identifier.as_ref()));
                    assert!(
                        !orders.is_empty() && orders.iter().all(|t| placed.contains(t)),
                        "{control}: result of an unknown order"
                    );
                    let keys: Vec<String> = r.observations.iter().filter_map(|o| o.key()).collect();
                    assert_eq!(keys.len(), r.observations.len(), "{control}: observation without a key");
                    assert_eq!(
                        keys.iter().collect::<HashSet<_>>().len(),
                        keys.len(),
                        "{control}: duplicate observation keys"
                    );
                    if event.kind().as_str() == "result.corrected" {
                        // A correction replaces values reported before, by the same keys.
                        assert!(
                            keys.iter().all(|k| reported.contains(k)),
                            "{control}: corrects nothing known"
                        );
                    }
                    reported.extend(keys);
                }
                EventBody::Charge(c) => {
                    let orders = tokens(
                        c.charge_item
                            .supporting_information
                            .iter()
                            .filter_map(|r| r.identifier.as_ref()),
                    );
                    assert!(
                        orders.iter().all(|t| placed.contains(t)),
                        "{control}: charge for an unknown order"
                    );
                    assert!(c.charge_item.key().is_some() && c.charge_item.price_override.is_some());
                }
                _ => {}
            }
        }
    }
    eprintln!("simulated corpus: {types:?}\n{kinds:?}");
    assert_eq!(types.values().sum::<usize>(), 600);
    for t in ["ADT", "ORM", "ORU", "SIU", "DFT"] {
        assert!(types.get(t).copied().unwrap_or(0) > 20, "{t}: {types:?}");
    }
    for k in [
        "order.placed",
        "order.updated",
        "order.cancelled",
        "result.reported",
        "result.corrected",
        "appointment.booked",
        "appointment.rescheduled",
        "appointment.cancelled",
        "billing.charge-posted",
    ] {
        assert!(kinds.contains_key(k), "{k} never produced: {kinds:?}");
    }
}

/// Values that break mappers: nulls, bare separators, escapes, signs, huge values.
const NASTY: &[&str] = &[
    "",
    "\"\"",
    "^^^^",
    "~~~",
    "&&&",
    "\\X00\\",
    "-",
    "<",
    ">=",
    "1e9",
    "99999999999999999999999999.5",
    "-0",
    "20240230",
    "NW",
    "C",
    "CD",
];

#[test]
fn mutations_of_the_samples_never_panic() {
    let all = [
        samples::orm("NW", ""),
        samples::orm_two_orders(),
        samples::oml(),
        samples::oru_final(),
        samples::oru_corrected(),
        samples::oru_two_patients(),
        samples::siu("S12", "Booked"),
        samples::siu("S15", ""),
        samples::siu_tq1(),
        samples::dft(),
    ];
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for sample in &all {
        let near = |i: usize| sample.get(i).is_some_and(|b| b"|^~&\r".contains(b));
        inputs.extend((0..sample.len()).filter(|&n| near(n)).map(|n| sample[..n].to_vec()));
        let segments: Vec<&[u8]> = sample.split(|&b| b == b'\r').filter(|s| !s.is_empty()).collect();
        for (i, seg) in segments.iter().enumerate() {
            let mut without = segments.clone();
            without.remove(i);
            inputs.push(without.join(&b'\r'));
            let fields: Vec<&[u8]> = seg.split(|&b| b == b'|').collect();
            let first = if seg.starts_with(b"MSH") { 2 } else { 1 };
            for f in first..fields.len() + 2 {
                for nasty in NASTY.iter().cycle().skip(f * 3 % NASTY.len()).take(4) {
                    let mut fs = fields.clone();
                    fs.resize(fs.len().max(f + 1), b"");
                    fs[f] = nasty.as_bytes();
                    let replaced = fs.join(&b'|');
                    let mut segs = segments.clone();
                    segs[i] = &replaced;
                    inputs.push(segs.join(&b'\r'));
                }
            }
        }
    }
    let (mut mapped, mut refused) = (0, 0);
    for raw in &inputs {
        let Ok(msg) = Message::parse(raw) else { continue };
        match map_message(&msg) {
            Ok(events) => {
                mapped += 1;
                events.iter().for_each(check_event);
            }
            Err(_) => refused += 1,
        }
    }
    assert!(mapped > 500 && refused > 500, "mapped {mapped}, refused {refused}");
}
