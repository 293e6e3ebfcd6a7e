//! The outbound FHIR destination (`[fhir_destinations.<name>]`): canonical
//! events pushed to a downstream FHIR R4 server as transaction Bundles
//! ([`super::to_bundle`]: conditional updates by key identifier, so a resend
//! updates what the first send created).
//!
//! Each destination reads `medbus.events.>` with its own durable consumer
//! `fhir_<name>`; events outside its `events` patterns, system events and
//! kinds with no FHIR mapping are acked and skipped. One event is pushed at a
//! time, in backbone order: events are published per patient in the order
//! they were received, so per-patient order holds downstream (a later
//! `patient.updated` never overtakes the `patient.registered` before it). For
//! that reason a failure that may pass (no connection, timeout, 408, 429, 5xx)
//! is retried here, with backoff or the server's `Retry-After` (at most
//! `max_backoff`), while the deliveries in hand are kept alive (in-progress),
//! rather than nak'ed: a nak would let the next event go first. Any other
//! 4xx, an entry of the response Bundle that is not 2xx, an event that cannot
//! become FHIR, or `max_attempts` used up sends the event to
//! `medbus.dlq.fhir_<name>` with the HTTP status and the server's
//! OperationOutcome, and the next event is pushed.
//!
//! Limits: with several medbus instances sharing the consumer each pushes its
//! own batches, so order per patient holds only with one instance per
//! destination; and an event whose ack is lost is pushed again after the ack
//! wait, possibly after later ones (at-least-once).
//!
//! When delivery starts failing with a passing failure the destination
//! publishes `system.destination-unreachable`, once, and
//! `system.destination-recovered` when the server answers again, as the HL7
//! destination does (best effort).
//!
//! - `push`: one POST and what its answer means;
//! - `outcome`: the server's OperationOutcome as one line.

pub mod outcome;
pub mod push;

use medbus_bus::backbone::handback::{CrashGuard, NO_BACKBONE_LIMIT};
use medbus_bus::backbone::renew::{renew_interval, renewing};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use medbus_bus::backbone::{open_consumer, BackboneError, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::canonical::{CanonicalEvent, EventKind, SystemEventKind};
use medbus_bus::config::fhir_destinations::{consumer_name, FhirDestinationConfig};
use medbus_bus::config::{redact_url, BackboneConfig};
use medbus_bus::envelope::{Body, Envelope};
use tokio_util::sync::CancellationToken;

use crate::destination_status::Health;

/// The consumer's filter: every event; the configured patterns select among them.
const FILTER: &str = "medbus.events.>";

/// Events taken from the backbone at once; all of them are kept alive while the first is retried.
const BATCH: usize = 32;

/// What a FHIR destination's delivery loop needs.
#[derive(Clone)]
pub struct FhirDestinationContext {
    /// Destination name (a subject token).
    pub name: String,
    /// Its settings.
    pub config: FhirDestinationConfig,
    /// Where the events are.
    pub backbone: SharedBackbone,
    /// Consumer settings (ack wait, max deliver).
    pub backbone_config: BackboneConfig,
    /// Cancelled at shutdown: the events in hand are given back, not lost.
    pub shutdown: CancellationToken,
}

/// What one delivery is.
enum Decoded {
    /// A canonical event to push, as an encoded transaction Bundle.
    Push(Vec<u8>),
    /// Not for this destination: acked and forgotten.
    Skip(&'static str),
    /// Cannot be pushed, ever: dead-lettered with the reason.
    Bad(String),
}

/// How one event ended.
enum Outcome {
    Delivered { status: u16, attempts: u32 },
    Skipped(&'static str),
    Refused(String),
    Shutdown,
}

/// Pushes until shutdown.
pub async fn run(ctx: FhirDestinationContext) -> Result<(), BackboneError> {
    // Redirects are not followed: reqwest would turn the POST into a GET whose 200 looks delivered.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| BackboneError::Invalid(format!("FHIR destination {}: http client: {e}", ctx.name)))?;
    // No backbone limit: the destination retries in place, and the guard applies
    // the limit leaving out deliveries given back at shutdown (see `CrashGuard`).
    let spec = ConsumerSpec {
        max_deliver: NO_BACKBONE_LIMIT,
        ..ConsumerSpec::new(consumer_name(&ctx.name), FILTER, &ctx.backbone_config)
    };
    let mut consumer = open_consumer(&ctx.backbone, spec).await?;
    let guard = CrashGuard::new("fhir", &ctx.name, ctx.backbone_config.max_deliver)?;
    tracing::info!(destination = %ctx.name, url = %redact_url(&ctx.config.url), "FHIR destination pushing");
    let (name, shutdown) = (consumer_name(&ctx.name), ctx.shutdown.clone());
    let health = Health::new(&ctx.name, "fhir", redact_url(&ctx.config.url));
    consumer
        .run_batches(&name, BATCH, Duration::from_secs(1), &shutdown, |batch| {
            deliver_in_order(&ctx, &http, &health, &guard, batch)
        })
        .await;
    tracing::info!(destination = %ctx.name, "FHIR destination stopped");
    Ok(())
}

/// Pushes a batch one event at a time; false when shutdown interrupted it.
async fn deliver_in_order(
    ctx: &FhirDestinationContext,
    http: &reqwest::Client,
    health: &Health,
    guard: &CrashGuard,
    batch: Vec<Delivery>,
) -> bool {
    let mut pending: VecDeque<Delivery> = batch.into();
    let renew_every = renew_interval(ctx.backbone_config.ack_wait);
    while let Some(d) = pending.pop_front() {
        if d.delivered > 1 {
            if let Some(why) = guard.crashed_too_often(&ctx.backbone, &d).await {
                settle(ctx, d, Outcome::Refused(why)).await;
                continue;
            }
        }
        let outcome = match decode(&ctx.config, &d) {
            Decoded::Skip(why) => Outcome::Skipped(why),
            Decoded::Bad(why) => Outcome::Refused(why),
            Decoded::Push(bundle) => {
                let held: Vec<&Delivery> = std::iter::once(&d).chain(pending.iter()).collect();
                renewing(deliver_one(ctx, http, health, &bundle), &held, renew_every).await
            }
        };
        if matches!(outcome, Outcome::Shutdown) {
            guard.give_back(&ctx.backbone, std::iter::once(d).chain(pending)).await;
            return false;
        }
        settle(ctx, d, outcome).await;
    }
    true
}

/// The Bundle to push for `d`, or why it is skipped or cannot be pushed.
fn decode(cfg: &FhirDestinationConfig, d: &Delivery) -> Decoded {
    if !cfg.wants(&d.subject) {
        return Decoded::Skip("not selected by events");
    }
    if d.subject.starts_with("medbus.events.system.") {
        return Decoded::Skip("a system event");
    }
    let env = match Envelope::from_wire(&d.headers, d.payload.clone()) {
        Ok(e) => e,
        Err(e) => return Decoded::Bad(format!("not a medbus event: {e}")),
    };
    if SystemEventKind::parse(&env.kind).is_some() {
        return Decoded::Skip("a system event");
    }
    let Some(kind) = EventKind::parse(&env.kind) else {
        // A kind this version does not know (a newer publisher): nothing to map it with.
        return Decoded::Skip("not a canonical event kind");
    };
    let Body::Json { value } = env.body else {
        return Decoded::Bad(format!("{} event without a JSON body", env.kind));
    };
    let event = match CanonicalEvent::from_json(kind, value) {
        Ok(e) => e,
        Err(e) => return Decoded::Bad(format!("{} body does not match its kind: {e}", env.kind)),
    };
    match super::to_bundle(&event).map(|b| serde_json::to_vec(&b)) {
        Ok(Ok(bytes)) => Decoded::Push(bytes),
        Ok(Err(e)) => Decoded::Bad(format!("the Bundle did not encode: {e}")),
        Err(e) => Decoded::Bad(format!("{} cannot become FHIR: {e}", env.kind)),
    }
}

/// Attempts one Bundle until the server takes it, refuses it for good, or shutdown comes.
async fn deliver_one(ctx: &FhirDestinationContext, http: &reqwest::Client, health: &Health, bundle: &[u8]) -> Outcome {
    let cfg = &ctx.config;
    let name = ctx.name.as_str();
    let mut wait = cfg.initial_backoff;
    let mut attempt = 1;
    loop {
        let started = Instant::now();
        let result = tokio::select! {
            _ = ctx.shutdown.cancelled() => return Outcome::Shutdown,
            r = push::post(http, cfg, bundle) => r,
        };
        metrics::histogram!("medbus_fhir_push_latency_seconds", "destination" => name.to_string())
            .record(started.elapsed().as_secs_f64());
        let failure = match result {
            Ok(status) => {
                health.answered(&ctx.backbone, &ctx.backbone_config).await;
                return Outcome::Delivered {
                    status,
                    attempts: attempt,
                };
            }
            Err(f) => f,
        };
        let status = failure.status.map_or("none".to_string(), |s| s.to_string());
        if !failure.retryable {
            // It answered, so it is reachable; the content is what it refuses.
            health.answered(&ctx.backbone, &ctx.backbone_config).await;
            return Outcome::Refused(format!(
                "refused by the FHIR server (status {status}, attempt {attempt}): {}",
                failure.message
            ));
        }
        health
            .failed(&ctx.backbone, &ctx.backbone_config, &failure.message)
            .await;
        if attempt >= cfg.max_attempts {
            return Outcome::Refused(format!(
                "not accepted after {attempt} attempts (last status {status}): {}",
                failure.message
            ));
        }
        // The server may ask for longer than our backoff, never for less (`Retry-After: 0` is no licence to hammer).
        let delay = failure
            .retry_after
            .map_or(wait, |asked| asked.max(wait).min(cfg.max_backoff));
        tracing::debug!(destination = name, attempt, status = %status, retry_in = ?delay, "FHIR push failed");
        metrics::counter!("medbus_fhir_push_total", "destination" => name.to_string(), "outcome" => "retried")
            .increment(1);
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return Outcome::Shutdown,
            _ = tokio::time::sleep(delay) => {}
        }
        wait = wait.saturating_mul(2).min(cfg.max_backoff);
        attempt += 1;
    }
}

async fn settle(ctx: &FhirDestinationContext, d: Delivery, outcome: Outcome) {
    let name = ctx.name.as_str();
    let (label, settled) = match outcome {
        Outcome::Delivered { status, attempts } => {
            tracing::debug!(destination = name, status, attempts, sequence = d.sequence, "pushed");
            ("delivered", d.ack().await)
        }
        Outcome::Skipped(why) => {
            tracing::trace!(destination = name, subject = %d.subject, why, "skipped");
            ("skipped", d.ack().await)
        }
        Outcome::Refused(why) => {
            // The reason (the server's diagnostics may name the patient) is in the dead letter.
            tracing::warn!(destination = name, sequence = d.sequence, "not pushed: dead-lettered");
            ("dead_lettered", d.reject(&why).await)
        }
        Outcome::Shutdown => return,
    };
    if let Err(e) = settled {
        // Unsettled: delivered again after the ack wait; the conditional update makes a repeat harmless.
        tracing::warn!(destination = name, error = %e, "could not settle a delivery");
    }
    metrics::counter!("medbus_fhir_push_total", "destination" => name.to_string(), "outcome" => label).increment(1);
}
