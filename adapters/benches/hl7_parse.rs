//! HL7 v2 parse benchmark: parse + read MSH-9, MSH-10, PID-3.1 and every
//! OBX-5 over a deterministic corpus of ADT, ORU and ORM messages.
//!
//! `cargo bench -p medbus-adapters --bench hl7_parse` runs the criterion
//! groups (MB/s and messages/s), then a plain timed pass of the same routine
//! and, in the same run, `benches/hl7_python.py` on the same corpus file, and
//! prints the ratio. `HL7_BENCH_PYTHON=0` skips Python; `HL7_BENCH_CORPUS`
//! sets where the corpus file is written.

#[path = "hl7_corpus/mod.rs"]
mod hl7_corpus;

use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use medbus_adapters::hl7::parser::Message;

const MESSAGES: usize = 2000;

/// What the listener and router read from every message.
fn parse_and_read(raw: &[u8]) -> usize {
    let Ok(msg) = Message::parse(raw) else { return 0 };
    let mut acc = 0;
    if let Some(t) = msg.message_type() {
        acc += t.code.len() + t.trigger.map_or(0, |t| t.len());
    }
    acc += msg.control_id().map_or(0, |f| f.text().len());
    acc += msg
        .segment("PID", 1)
        .and_then(|s| s.field(3)?.component(1))
        .map_or(0, |c| c.text().len());
    for obx in msg.segments_named("OBX") {
        acc += obx.field(5).map_or(0, |f| f.text().len());
    }
    acc
}

/// The alternative design, for comparison: index every field boundary at parse time.
fn parse_and_index_fields(raw: &[u8]) -> usize {
    let Ok(msg) = Message::parse(raw) else { return 0 };
    let sep = msg.delimiters().field();
    let mut index: Vec<u32> = Vec::with_capacity(raw.len() / 8);
    for seg in msg.segments() {
        let base = seg.offset() as u32;
        index.extend(memchr::memchr_iter(sep, seg.raw()).map(|i| base + i as u32));
    }
    index.len()
}

fn corpus_path() -> PathBuf {
    std::env::var_os("HL7_BENCH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/hl7-bench/corpus.hl7"))
}

fn bench(c: &mut Criterion, corpus: &[Vec<u8>]) {
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    let run = |f: fn(&[u8]) -> usize| move || corpus.iter().map(|m| f(black_box(m))).sum::<usize>();

    let mut g = c.benchmark_group("hl7_parse_read_bytes");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("parse+read", |b| b.iter(run(parse_and_read)));
    g.bench_function("parse_only", |b| {
        b.iter(|| {
            corpus
                .iter()
                .map(|m| Message::parse(black_box(m)).map_or(0, |m| m.segment_count()))
                .sum::<usize>()
        })
    });
    g.bench_function("parse+index_all_fields", |b| b.iter(run(parse_and_index_fields)));
    g.finish();

    let mut g = c.benchmark_group("hl7_parse_read_messages");
    g.throughput(Throughput::Elements(corpus.len() as u64));
    g.bench_function("parse+read", |b| b.iter(run(parse_and_read)));
    g.finish();
}

/// A plain best-of-N timing, so that the Rust and Python figures printed
/// together come from the same definition of a pass.
fn timed_pass(corpus: &[Vec<u8>]) -> Duration {
    (0..20)
        .map(|_| {
            let start = Instant::now();
            black_box(corpus.iter().map(|m| parse_and_read(black_box(m))).sum::<usize>());
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn side_by_side(corpus: &[Vec<u8>], path: &PathBuf) {
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    let best = timed_pass(corpus).as_secs_f64();
    let rust_mb = bytes as f64 / 1e6 / best;
    let rust_msgs = corpus.len() as f64 / best;
    println!(
        "\nside by side ({} messages, {:.2} MB, one core)\n  medbus parser: {rust_mb:>9.1} MB/s {rust_msgs:>11.0} msg/s",
        corpus.len(),
        bytes as f64 / 1e6
    );
    if std::env::var("HL7_BENCH_PYTHON").is_ok_and(|v| v == "0") {
        return;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/hl7_python.py");
    match Command::new("python3").arg(&script).arg(path).output() {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let field = |key: &str| {
                text.split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .and_then(|v| v.parse::<f64>().ok())
            };
            match (field("mb_per_s="), field("msg_per_s=")) {
                (Some(py_mb), Some(py_msgs)) => println!(
                    "  python hl7:    {py_mb:>9.2} MB/s {py_msgs:>11.0} msg/s\n  ratio:         {:>9.0}x",
                    rust_mb / py_mb
                ),
                _ => println!("  python output not understood: {text}"),
            }
        }
        Ok(out) => println!(
            "  python run failed (pip install hl7?): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => println!("  python3 not runnable: {e}"),
    }
}

fn main() {
    let corpus = hl7_corpus::messages(MESSAGES);
    let path = corpus_path();
    let mut file = Vec::new();
    for m in &corpus {
        file.extend_from_slice(m);
        file.push(b'\n');
    }
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(&path, &file) {
        eprintln!("cannot write the corpus to {}: {e}", path.display());
    }
    let mut c = Criterion::default().sample_size(30).configure_from_args();
    bench(&mut c, &corpus);
    c.final_summary();
    // `cargo bench` passes --bench; `cargo test --benches` and `-- --test` run each bench once only.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test") {
        side_by_side(&corpus, &path);
    }
}
