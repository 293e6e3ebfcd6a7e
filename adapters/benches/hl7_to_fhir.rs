//! HL7 v2 → FHIR R4 conversion benchmark, over the simulator's full mix
//! (ADT, ORM, ORU, DFT, SIU; `src/hl7/canonical/message_tests/sim_full_600.hl7`):
//! parse, map to canonical events, build each event's transaction Bundle and
//! encode it as JSON — what the FHIR destination does per message, on one
//! thread.
//!
//! `cargo bench -p medbus-adapters --bench hl7_to_fhir` prints criterion's
//! figures (messages/s) for the two stages apart and together, then a plain
//! timed pass: messages/s, events/s and Bundle MB/s.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use medbus_adapters::fhir::to_bundle;
use medbus_adapters::hl7::canonical::map_message;
use medbus_adapters::hl7::parser::Message;
use medbus_bus::canonical::CanonicalEvent;

/// The simulator corpus: one message a line, CR between segments.
fn corpus() -> Vec<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/hl7/canonical/message_tests/sim_full_600.hl7");
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    raw.split(|&b| b == b'\n')
        .filter(|m| !m.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// HL7 bytes → canonical events (messages that do not map give none).
fn to_events(raw: &[u8]) -> Vec<CanonicalEvent> {
    Message::parse(raw)
        .ok()
        .and_then(|m| map_message(&m).ok())
        .unwrap_or_default()
}

/// Canonical events → encoded transaction Bundles; the bytes written.
fn to_bundles(events: &[CanonicalEvent]) -> usize {
    events
        .iter()
        .filter_map(|e| to_bundle(e).ok())
        .map(|b| serde_json::to_vec(&b).map_or(0, |v| v.len()))
        .sum()
}

fn main() {
    let corpus = corpus();
    let events: Vec<Vec<CanonicalEvent>> = corpus.iter().map(|m| to_events(m)).collect();
    let n_events: usize = events.iter().map(Vec::len).sum();
    assert!(n_events > corpus.len(), "the corpus maps to events");

    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    let mut g = c.benchmark_group("hl7_to_fhir");
    g.throughput(Throughput::Elements(corpus.len() as u64));
    g.bench_function("parse+map (HL7 → canonical)", |b| {
        b.iter(|| corpus.iter().map(|m| to_events(black_box(m)).len()).sum::<usize>())
    });
    g.bench_function("canonical → FHIR Bundle JSON", |b| {
        b.iter(|| events.iter().map(|e| to_bundles(black_box(e))).sum::<usize>())
    });
    g.bench_function("HL7 → FHIR Bundle JSON", |b| {
        b.iter(|| {
            corpus
                .iter()
                .map(|m| to_bundles(&to_events(black_box(m))))
                .sum::<usize>()
        })
    });
    g.finish();
    c.final_summary();

    // A plain timed pass for docs/perf.md.
    let rounds = 20;
    let start = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..rounds {
        for m in &corpus {
            bytes += to_bundles(&to_events(black_box(m)));
        }
    }
    let s = start.elapsed().as_secs_f64();
    let msgs = (corpus.len() * rounds) as f64;
    println!(
        "HL7 → FHIR, one thread: {} messages ({} events) × {rounds} in {s:.2} s = {:.0} messages/s, {:.0} events/s, {:.1} MB/s of Bundle JSON",
        corpus.len(),
        n_events,
        msgs / s,
        (n_events * rounds) as f64 / s,
        bytes as f64 / s / 1e6
    );
}
