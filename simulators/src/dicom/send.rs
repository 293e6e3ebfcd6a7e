//! The run: the generated instances split into N contiguous shares (so a series mostly
//! travels over one association, as from a real modality), each share sent over ONE
//! association by its own task, one C-STORE at a time.
//!
//! Each association has a generator thread that makes and encodes its instances a few ahead
//! of the network, so generating 512 KiB of pixels does not sit between two requests (and
//! memory stays bounded: a few instances per association, not the whole run).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use medbus_adapters::dicom::scu::{self, Association, Context, Outcome, ScuConfig};

use super::generate::{GenerateError, Generator};
use super::report::{SendReport, MAX_FAILURES};
use crate::hl7::latency::Latencies;

/// How the run is sent.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// Where, as whom, and the timeouts.
    pub scu: ScuConfig,
    /// Associations in parallel (at least 1; never more than there are instances).
    pub associations: usize,
    /// Stop sending after this long; what is left is reported unsent.
    pub max_duration: Duration,
}

/// An encoded instance ready to send.
struct Ready {
    index: u64,
    sop_instance_uid: String,
    dataset: Result<Vec<u8>, GenerateError>,
}

/// Buffers in flight per association: one being sent, the rest encoded ahead.
const AHEAD: usize = 3;

/// What one association did.
#[derive(Default)]
struct Tally {
    sent: u64,
    succeeded: u64,
    warnings: u64,
    failed: u64,
    unsent: u64,
    association_failed: bool,
    failures: Vec<String>,
    payload_bytes: u64,
    peer_max_pdu: Option<u32>,
    latencies: Latencies,
    generate: Duration,
}

impl Tally {
    fn fail(&mut self, what: String) {
        if self.failures.len() < MAX_FAILURES {
            self.failures.push(what);
        }
    }
}

/// Sends every instance of `gen` and reports. Never fails as a whole: connection and
/// protocol errors are counted and described in the report.
pub async fn run(cfg: &SendConfig, gen: Arc<Generator>, cancel: CancellationToken) -> SendReport {
    let n = gen.len();
    let shares = (cfg.associations.max(1) as u64).min(n.max(1));
    let started = Instant::now();
    let deadline = started + cfg.max_duration;
    let mut tasks = Vec::new();
    for k in 0..shares {
        let range = (k * n / shares)..((k + 1) * n / shares);
        let (gen, scu, cancel) = (gen.clone(), cfg.scu.clone(), cancel.clone());
        tasks.push(tokio::spawn(association(scu, gen, range, deadline, cancel)));
    }
    let mut report = SendReport {
        target: cfg.scu.addr.to_string(),
        called_ae: cfg.scu.called_ae.clone(),
        calling_ae: cfg.scu.calling_ae.clone(),
        associations: shares as usize,
        modality: gen.config().modality.code().into(),
        transfer_syntax: gen.config().syntax.uid().into(),
        pixel_bytes: gen.config().pixel_bytes,
        planned: n,
        ..SendReport::default()
    };
    let mut latencies = Latencies::default();
    let mut generate = Duration::ZERO;
    for task in tasks {
        let t = match task.await {
            Ok(t) => t,
            Err(e) => {
                // A panicking task is a bug here; still report rather than take the run down.
                report.failures.push(format!("association task failed: {e}"));
                continue;
            }
        };
        report.sent += t.sent;
        report.succeeded += t.succeeded;
        report.warnings += t.warnings;
        report.failed += t.failed;
        report.unsent += t.unsent;
        report.associations_failed += u64::from(t.association_failed);
        report.payload_bytes += t.payload_bytes;
        report.peer_max_pdu = report.peer_max_pdu.or(t.peer_max_pdu);
        for f in t.failures {
            if report.failures.len() < MAX_FAILURES {
                report.failures.push(f);
            }
        }
        latencies.merge(t.latencies);
        generate += t.generate;
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    report.elapsed_s = elapsed;
    report.instances_per_s = report.succeeded as f64 / elapsed;
    report.mb_per_s = report.payload_bytes as f64 / 1e6 / elapsed;
    report.generate_s = generate.as_secs_f64();
    report.latency = latencies.summary();
    report
}

/// One association sending the instances in `range`.
async fn association(
    scu: ScuConfig,
    gen: Arc<Generator>,
    range: std::ops::Range<u64>,
    deadline: Instant,
    cancel: CancellationToken,
) -> Tally {
    let mut t = Tally::default();
    let share = range.end - range.start;
    let syntax = gen.config().syntax;
    let sop_class = gen.config().modality.sop_class_uid();

    // The generator runs ahead on a blocking thread; dropping `rx` stops it. Sent buffers
    // come back through `spare` to be filled again.
    let (tx, mut rx) = mpsc::channel::<Ready>(AHEAD);
    let (spare_tx, spare_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let producer_gen = gen.clone();
    let producer = tokio::task::spawn_blocking(move || {
        let mut busy = Duration::ZERO;
        for index in range {
            let t0 = Instant::now();
            let mut buf = spare_rx.try_recv().unwrap_or_default();
            let ready = match producer_gen.encode_dataset_into(index, &mut buf) {
                Ok(instance) => Ready {
                    index,
                    dataset: Ok(buf),
                    sop_instance_uid: instance.sop_instance_uid,
                },
                Err(e) => Ready {
                    index,
                    dataset: Err(e),
                    sop_instance_uid: String::new(),
                },
            };
            busy += t0.elapsed();
            if tx.blocking_send(ready).is_err() {
                break;
            }
        }
        busy
    });

    let mut assoc = match Association::establish(&scu, &[Context::new(sop_class, syntax.uid())]).await {
        Ok(a) => a,
        Err(e) => {
            t.association_failed = true;
            t.unsent = share;
            t.fail(e.to_string());
            drop(rx);
            t.generate = producer.await.unwrap_or_default();
            return t;
        }
    };
    t.peer_max_pdu = Some(assoc.peer_max_pdu());
    let mut done = 0u64;
    let mut alive = true;
    while let Some(ready) = rx.recv().await {
        if cancel.is_cancelled() || Instant::now() >= deadline {
            break;
        }
        done += 1;
        let dataset = match ready.dataset {
            Ok(d) => d,
            Err(e) => {
                t.failed += 1;
                t.fail(e.to_string());
                continue;
            }
        };
        t.sent += 1;
        let sent_at = Instant::now();
        match assoc
            .store(sop_class, syntax.uid(), &ready.sop_instance_uid, &dataset)
            .await
        {
            Ok(rsp) => {
                t.latencies.record(sent_at.elapsed());
                match scu::outcome(rsp.status) {
                    Outcome::Success | Outcome::Warning => {
                        t.succeeded += 1;
                        t.payload_bytes += dataset.len() as u64;
                        if scu::outcome(rsp.status) == Outcome::Warning {
                            t.warnings += 1;
                        }
                    }
                    Outcome::Failure => {
                        t.failed += 1;
                        t.fail(format!(
                            "instance {} ({}): status {}{}",
                            ready.index,
                            ready.sop_instance_uid,
                            scu::describe(rsp.status),
                            rsp.error_comment.map(|c| format!(", {c}")).unwrap_or_default()
                        ));
                    }
                }
            }
            Err(e) => {
                t.failed += 1;
                t.fail(format!("instance {} ({}): {e}", ready.index, ready.sop_instance_uid));
                alive = false;
                break;
            }
        }
        let _ = spare_tx.send(dataset);
    }
    t.unsent = share - done;
    drop(rx);
    if alive {
        if let Err(e) = assoc.release().await {
            t.fail(format!("release: {e}"));
        }
    } else {
        assoc.abort().await;
    }
    t.generate = producer.await.unwrap_or_default();
    t
}
