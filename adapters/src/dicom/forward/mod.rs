//! The DICOM destination (`[dicom_destinations.<name>]`): instances received
//! on DICOM channels sent on to a PACS with C-STORE.
//!
//! Each destination reads `medbus.ingress.dicom.>` with its own durable
//! consumer `dicom_<name>`; instances of channels outside its `channels` are
//! acked and skipped. (One filter whatever `channels` says: a durable
//! consumer's filter cannot change under it when `channels` is edited.) The file each
//! envelope names is read from the channel's storage directory and its data
//! set sent as stored, over one association kept open between instances
//! (see `session`).
//!
//! One instance is sent at a time, in backbone order, so the instances of a
//! study reach the PACS in the order medbus received them. For that reason a
//! failure that may pass (no connection, timeout, 0xA7xx, 0xA9xx) is retried
//! here, with exponential backoff from `backoff_initial` to `backoff_max`,
//! while the deliveries in hand are kept alive (in progress) rather than
//! nak'ed: a nak would let the next instance go first. A failure that will
//! not pass (0xCxxx, a refused SOP class, a permanent association
//! rejection), a missing or unreadable file, or `max_attempts` used up sends
//! the instance to `medbus.dlq.dicom_<name>` with the reason, and the PACS's
//! status and Error Comment in the headers `Medbus-Dlq-Dicom-Status` and
//! `Medbus-Dlq-Dicom-Error-Comment`; then the next instance is sent. See
//! `verdict` for every status.
//!
//! When sending starts failing in a way that may pass the destination
//! publishes `system.destination-unreachable`, once, and
//! `system.destination-recovered` when the PACS answers again, as the HL7 and
//! FHIR destinations do (best effort).
//!
//! Limits: files are read whole into memory, one instance at a time; with
//! several medbus instances sharing the consumer each sends its own batches,
//! so order holds only with one instance per destination; an instance whose
//! ack is lost is sent again (the PACS keeps one copy per SOP Instance UID).
//!
//! Shutdown gives the deliveries in hand back at once, and records that it did
//! (`medbus_bus::backbone::handback`): the backbone counts each delivery, and a restart must not
//! bring an instance closer to the dead letter. The guard against a handler
//! that crashes or hangs on the same instance every time (`backbone.max_deliver`
//! unsettled deliveries) is kept, counting only deliveries not given back.
//!
//! - `job`: a delivery decoded and its file read;
//! - `session`: the kept-open association;
//! - `verdict`: what a C-STORE status or error means.

mod job;
mod session;
mod verdict;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use medbus_bus::backbone::handback::{CrashGuard, NO_BACKBONE_LIMIT};
use medbus_bus::backbone::renew::{renew_interval, renewing};
use medbus_bus::backbone::{open_consumer, BackboneError, ConsumerSpec, Delivery, Headers, SharedBackbone};
use medbus_bus::config::dicom_destinations::{consumer_name, DicomDestinationConfig};
use medbus_bus::config::BackboneConfig;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::destination_status::Health;
use job::{Decoded, Job};
use session::Session;
use verdict::{Failure, Verdict};

/// Dead-letter header: the PACS's C-STORE status, as `0xC000`.
pub const DLQ_STATUS: &str = "Medbus-Dlq-Dicom-Status";
/// Dead-letter header: the PACS's Error Comment (0000,0902).
pub const DLQ_ERROR_COMMENT: &str = "Medbus-Dlq-Dicom-Error-Comment";

/// The consumer's filter: every DICOM channel's instances.
const ALL_CHANNELS: &str = "medbus.ingress.dicom.>";

/// Instances taken from the backbone at once; all are kept alive while the first is retried.
const BATCH: usize = 16;

/// What a DICOM destination's forwarding loop needs.
#[derive(Clone)]
pub struct DicomForwardContext {
    /// Destination name (a subject token).
    pub name: String,
    /// Its settings.
    pub config: DicomDestinationConfig,
    /// The storage directory of each DICOM channel, by channel name: where the
    /// files the envelopes name are.
    pub storage_roots: BTreeMap<String, PathBuf>,
    /// Where the instances are.
    pub backbone: SharedBackbone,
    /// Consumer settings (ack wait, max deliver).
    pub backbone_config: BackboneConfig,
    /// Cancelled at shutdown: the instances in hand are given back, not lost.
    pub shutdown: CancellationToken,
}

/// How one instance ended.
enum Outcome {
    Delivered { status: u16, attempts: u32 },
    Skipped(&'static str),
    Refused(Failure),
    Shutdown,
}

/// Forwards until shutdown.
pub async fn run(ctx: DicomForwardContext) -> Result<(), BackboneError> {
    let name = consumer_name(&ctx.name);
    let spec = ConsumerSpec {
        max_deliver: NO_BACKBONE_LIMIT,
        ..ConsumerSpec::new(name.clone(), ALL_CHANNELS, &ctx.backbone_config)
    };
    let mut consumer = open_consumer(&ctx.backbone, spec).await?;
    let peer = format!("{}:{}", ctx.config.host.trim(), ctx.config.port);
    tracing::info!(destination = %ctx.name, %peer, called_ae = %ctx.config.called_ae, "DICOM destination forwarding");
    let session = Mutex::new(Session::new(&ctx.name, &ctx.config));
    let health = Health::new(&ctx.name, "dicom", peer);
    // The consumer has no backbone limit: the forwarder retries in place and applies
    // the crash guard itself, leaving out deliveries given back at shutdown.
    let guard = CrashGuard::new("dicom", &ctx.name, ctx.backbone_config.max_deliver)?;
    let shutdown = ctx.shutdown.clone();
    consumer
        .run_batches(&name, BATCH, Duration::from_secs(1), &shutdown, |batch| {
            forward_in_order(&ctx, &session, &health, &guard, batch)
        })
        .await;
    session.lock().await.release().await;
    tracing::info!(destination = %ctx.name, "DICOM destination stopped");
    Ok(())
}

/// Sends a batch one instance at a time; false when shutdown interrupted it.
async fn forward_in_order(
    ctx: &DicomForwardContext,
    session: &Mutex<Session>,
    health: &Health,
    guard: &CrashGuard,
    batch: Vec<Delivery>,
) -> bool {
    let mut session = session.lock().await;
    // Every batch, not only empty ones: a steady flow of other channels'
    // instances (skipped) must not keep an idle association open for ever.
    session.close_if_idle().await;
    if batch.is_empty() {
        return true;
    }
    let mut pending: VecDeque<Delivery> = batch.into();
    let renew_every = renew_interval(ctx.backbone_config.ack_wait);
    while let Some(d) = pending.pop_front() {
        if d.delivered > 1 {
            if let Some(why) = guard.crashed_too_often(&ctx.backbone, &d).await {
                tracing::warn!(destination = %ctx.name, sequence = d.sequence, "unsettled too often: dead-lettered");
                let outcome = Outcome::Refused(Failure {
                    why,
                    status: None,
                    comment: None,
                });
                settle(ctx, d, outcome).await;
                continue;
            }
        }
        let held: Vec<&Delivery> = std::iter::once(&d).chain(pending.iter()).collect();
        let work = async {
            match job::decode(&ctx.config, &ctx.storage_roots, &d).await {
                Decoded::Skip(why) => Outcome::Skipped(why),
                Decoded::Bad(why) => Outcome::Refused(Failure {
                    why,
                    status: None,
                    comment: None,
                }),
                Decoded::Send(job) => forward_one(ctx, &mut session, health, &job).await,
            }
        };
        let outcome = renewing(work, &held, renew_every).await;
        drop(held);
        if matches!(outcome, Outcome::Shutdown) {
            guard.give_back(&ctx.backbone, std::iter::once(d).chain(pending)).await;
            return false;
        }
        settle(ctx, d, outcome).await;
    }
    true
}

/// Attempts one instance until the PACS stores it, refuses it for good, the
/// attempts run out, or shutdown comes.
async fn forward_one(ctx: &DicomForwardContext, session: &mut Session, health: &Health, job: &Job) -> Outcome {
    let cfg = &ctx.config;
    let name = ctx.name.as_str();
    let mut wait = cfg.backoff_initial;
    let mut attempt = 1;
    loop {
        let started = Instant::now();
        let outbound = job.outbound();
        let result = tokio::select! {
            _ = ctx.shutdown.cancelled() => None,
            r = session.store(&outbound) => Some(r),
        };
        let Some(result) = result else {
            // Cut off mid-message: the association's state is unknown.
            session.abort().await;
            return Outcome::Shutdown;
        };
        metrics::histogram!("medbus_dicom_forward_latency_seconds", "destination" => name.to_string())
            .record(started.elapsed().as_secs_f64());
        let failure = match verdict::judge(result) {
            Verdict::Delivered { status } => {
                health.answered(&ctx.backbone, &ctx.backbone_config).await;
                metrics::counter!("medbus_dicom_forward_bytes_total", "destination" => name.to_string())
                    .increment(job.dataset_len() as u64);
                return Outcome::Delivered {
                    status,
                    attempts: attempt,
                };
            }
            Verdict::Refuse(f) => {
                // It answered, so it is reachable; it is the instance it refuses.
                health.answered(&ctx.backbone, &ctx.backbone_config).await;
                return Outcome::Refused(Failure {
                    why: format!("refused by the PACS (attempt {attempt}): {}", f.why),
                    ..f
                });
            }
            Verdict::Retry(f) => f,
            Verdict::Unreachable(f) => {
                health.failed(&ctx.backbone, &ctx.backbone_config, &f.why).await;
                tracing::debug!(destination = name, retry_in = ?wait, error = %f.why, "no association with the PACS");
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => return Outcome::Shutdown,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = wait.saturating_mul(2).min(cfg.backoff_max);
                continue;
            }
        };
        health.failed(&ctx.backbone, &ctx.backbone_config, &failure.why).await;
        if attempt >= cfg.max_attempts {
            return Outcome::Refused(Failure {
                why: format!("not stored after {attempt} attempts; last: {}", failure.why),
                ..failure
            });
        }
        tracing::debug!(destination = name, channel = %job.channel, attempt, retry_in = ?wait, error = %failure.why, "C-STORE failed");
        metrics::counter!("medbus_dicom_forward_total", "destination" => name.to_string(), "outcome" => "retried")
            .increment(1);
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return Outcome::Shutdown,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = wait.saturating_mul(2).min(cfg.backoff_max);
        attempt += 1;
    }
}

async fn settle(ctx: &DicomForwardContext, d: Delivery, outcome: Outcome) {
    let name = ctx.name.as_str();
    let (label, settled) = match outcome {
        Outcome::Delivered { status, attempts } => {
            tracing::debug!(destination = name, status, attempts, sequence = d.sequence, "forwarded");
            ("delivered", d.ack().await)
        }
        Outcome::Skipped(why) => {
            tracing::trace!(destination = name, subject = %d.subject, why, "skipped");
            ("skipped", d.ack().await)
        }
        Outcome::Refused(f) => {
            // The reason and the PACS's comment (which may name the patient) are in the dead letter only.
            tracing::warn!(destination = name, sequence = d.sequence, status = ?f.status.map(|s| format!("0x{s:04X}")), "not forwarded: dead-lettered");
            let mut extra = Headers::new();
            if let Some(s) = f.status {
                extra.insert(DLQ_STATUS.into(), format!("0x{s:04X}"));
            }
            if let Some(c) = &f.comment {
                extra.insert(DLQ_ERROR_COMMENT.into(), c.clone());
            }
            let why = match &f.comment {
                Some(c) => format!("{}; error comment: {c}", f.why),
                None => f.why,
            };
            ("dead_lettered", d.reject_with(&why, extra).await)
        }
        Outcome::Shutdown => return,
    };
    if let Err(e) = settled {
        // Unsettled: delivered again after the ack wait; the PACS keeps one copy per instance.
        tracing::warn!(destination = name, error = %e, "could not settle a delivery");
    }
    metrics::counter!("medbus_dicom_forward_total", "destination" => name.to_string(), "outcome" => label).increment(1);
}
