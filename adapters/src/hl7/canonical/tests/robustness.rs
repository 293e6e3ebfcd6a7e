//! Mapping never panics, on any input, and whatever it maps is clean FHIR
//! JSON that reads back to the same event. Corpora: the samples, the parser
//! benchmark's generated ADT/ORU/ORM, the parser fuzz corpus (when checked
//! out), and mutations of the samples (truncations, field replacements,
//! dropped segments, flipped bytes).

use std::path::Path;

use medbus_bus::canonical::CanonicalEvent;
use serde_json::Value;

use super::samples;
use crate::hl7::canonical::map_adt;
use crate::hl7::parser::Message;

/// FHIR JSON rules the output must keep: no empty strings, arrays or objects;
/// no control characters but tab, CR, LF; no blanks around strings; URIs
/// without whitespace; codes without doubled whitespace.
fn check_clean(v: &Value, path: &str) {
    match v {
        Value::String(s) => {
            assert!(!s.is_empty(), "empty string at {path}");
            assert_eq!(s.trim(), s, "blanks around the string at {path}");
            assert!(
                !s.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n')),
                "control character at {path}"
            );
            if path.ends_with(".system") || path.ends_with(".reference") {
                assert!(!s.contains(char::is_whitespace), "whitespace in the URI at {path}");
            }
            if path.ends_with(".code") {
                assert!(
                    !s.contains("  ") && !s.contains(['\t', '\r', '\n']),
                    "bad code at {path}"
                );
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

/// Checks one event's invariants.
fn check_event(event: &CanonicalEvent) {
    let json = event.to_json().unwrap();
    check_clean(&json, event.kind().as_str());
    assert!(
        event.patient_key().is_some(),
        "{} without a patient key",
        event.kind().as_str()
    );
    let back = CanonicalEvent::from_json(event.kind(), json).unwrap();
    assert_eq!(&back, event, "round trip of {}", event.kind().as_str());
}

/// How a corpus fared.
#[derive(Debug, Default)]
struct Tally {
    unparsed: usize,
    mapped: usize,
    refused: usize,
}

/// Maps every input that parses, checking each event; returns the tally.
fn run<'a>(inputs: impl IntoIterator<Item = &'a [u8]>) -> Tally {
    let mut tally = Tally::default();
    for raw in inputs {
        let Ok(msg) = Message::parse(raw) else {
            tally.unparsed += 1;
            continue;
        };
        match map_adt(&msg) {
            Ok(events) => {
                tally.mapped += 1;
                events.iter().for_each(check_event);
            }
            Err(_) => tally.refused += 1,
        }
    }
    tally
}

#[test]
fn samples_map_cleanly() {
    let all = samples::all();
    let tally = run(all.iter().map(Vec::as_slice));
    assert_eq!(tally.mapped, all.len(), "{tally:?}");
}

/// The message with every PID cut after PID-28.
fn without_pid29_on(raw: &[u8]) -> Vec<u8> {
    let segments: Vec<Vec<u8>> = raw
        .split(|&b| b == b'\r')
        .map(|seg| match seg.starts_with(b"PID|") {
            true => seg.split(|&b| b == b'|').take(29).collect::<Vec<_>>().join(&b'|'),
            false => seg.to_vec(),
        })
        .collect();
    segments.join(&b'\r')
}

#[test]
fn the_bench_corpus_never_panics() {
    let corpus = super::bench_corpus::messages(500);
    let tally = run(corpus.iter().map(Vec::as_slice));
    // Its ADT put the death indicator `N` in PID-29 (a date/time), so they
    // are refused, naming PID-29; the rest are ORU/ORM, refused as not ADT.
    assert_eq!(tally.refused, corpus.len(), "{tally:?}");
    let repaired: Vec<Vec<u8>> = corpus.iter().map(|m| without_pid29_on(m)).collect();
    let tally = run(repaired.iter().map(Vec::as_slice));
    assert!(tally.mapped > 100 && tally.refused > 100, "{tally:?}");
}

#[test]
fn the_fuzz_corpus_never_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/hl7_parse");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("no fuzz corpus at {}: skipped", dir.display());
        return;
    };
    let inputs: Vec<Vec<u8>> = entries.filter_map(|e| std::fs::read(e.ok()?.path()).ok()).collect();
    let tally = run(inputs.iter().map(Vec::as_slice));
    eprintln!("fuzz corpus: {} inputs, {tally:?}", inputs.len());
}

/// Values that have broken mappers: nulls, bare separators, escapes, bad
/// dates, huge and non-UTF-8 values.
const NASTY: &[&str] = &[
    "",
    "\"\"",
    "^^^^",
    "~~~",
    "&&&",
    "^&^&~^",
    "\\X00\\\\X1F\\",
    "\\E\\\\F\\\\S\\",
    "\\",
    "99999999999999.99999+9999",
    "2024",
    "20240230",
    "  ",
    "A01",
    "N",
    "1^^^&1.2.3&ISO^MR~^^^^^^20240101",
    "\u{0}\u{7f}\u{85}",
];

#[test]
fn mutations_of_the_samples_never_panic() {
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for sample in samples::all() {
        // Truncations: before and after every delimiter, and every 5th byte between.
        let cuts = (0..sample.len()).filter(|&n| {
            let near = |i: usize| sample.get(i).is_some_and(|b| b"|^~&\r".contains(b));
            n % 5 == 0 || near(n) || n.checked_sub(1).is_some_and(near)
        });
        inputs.extend(cuts.map(|n| sample[..n].to_vec()));
        let segments: Vec<&[u8]> = sample.split(|&b| b == b'\r').filter(|s| !s.is_empty()).collect();
        for (i, seg) in segments.iter().enumerate() {
            // The segment dropped, and doubled.
            let mut without = segments.clone();
            without.remove(i);
            inputs.push(without.join(&b'\r'));
            let mut doubled = segments.clone();
            doubled.insert(i, seg);
            inputs.push(doubled.join(&b'\r'));
            // Each field (but MSH-1/2, which hold the delimiters) replaced by each nasty value.
            let Some(&sep) = seg.get(3) else { continue };
            let fields: Vec<&[u8]> = seg.split(|&b| b == sep).collect();
            let first = if seg.starts_with(b"MSH") { 2 } else { 1 };
            let nasty: Vec<&[u8]> = NASTY
                .iter()
                .map(|n| n.as_bytes())
                .chain([&[0xff, 0xfe, b'^', 0xc3][..], &[b'X'; 5000][..]])
                .collect();
            for f in first..fields.len() + 3 {
                // Six values per field, a different six for each: all of them everywhere takes too long.
                for nasty in nasty.iter().cycle().skip(f * 6 % nasty.len()).take(6) {
                    let mut fs = fields.clone();
                    fs.resize(fs.len().max(f + 1), b"");
                    fs[f] = nasty;
                    let mut segs = segments.clone();
                    let replaced = fs.join(&sep);
                    segs[i] = &replaced;
                    inputs.push(segs.join(&b'\r'));
                }
            }
        }
    }
    let tally = run(inputs.iter().map(Vec::as_slice));
    assert!(tally.mapped > 1000 && tally.refused > 1000, "{tally:?}");
}

#[test]
fn flipped_bytes_never_panic() {
    // xorshift64*: deterministic, so a failure reproduces.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let interesting = b"|^~\\&\r\"0123456789AMFNIOE+-.";
    let mut inputs = Vec::new();
    for sample in samples::all() {
        for _ in 0..500 {
            let mut m = sample.clone();
            for _ in 0..1 + next() % 4 {
                let at = (next() % m.len() as u64) as usize;
                m[at] = match next() % 3 {
                    0 => interesting[(next() % interesting.len() as u64) as usize],
                    _ => (next() % 256) as u8,
                };
            }
            inputs.push(m);
        }
    }
    let tally = run(inputs.iter().map(Vec::as_slice));
    assert!(tally.mapped > 100, "{tally:?}");
}
