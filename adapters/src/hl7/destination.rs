//! The delivery consumer of one HL7 v2 destination.
//!
//! Reads `medbus.egress.hl7v2.<name>` with the durable consumer
//! `deliver_<name>` and hands each message, in backbone order, to one
//! [`MllpSender`]. A message is acked only after the receiver accepted it
//! (AA/CA). While the sender retries with backoff the deliveries in hand are
//! kept alive (in-progress) so the backbone does not hand them to another
//! medbus instance sharing the durable consumer, which would break the order. A final refusal (AE/AR by policy) or a message that cannot
//! be sent at all goes to `medbus.dlq.deliver_<name>` with the receiver's text,
//! and the next one is delivered.
//!
//! When a first attempt finds the receiver unreachable (no connection, no
//! answer) the destination publishes `system.destination-unreachable`, once,
//! and `system.destination-recovered` when the receiver answers again (the
//! notifications service turns a long outage into an alert). Best effort: a
//! failed publish is logged and delivery goes on. At start the receiver is
//! taken to be reachable, so one that is down from the start is reported too.
//!
//! The sender retries in place for as long as the receiver is down, so a
//! restart meanwhile must not bring the messages in hand closer to the dead
//! letter: shutdown records that it gave them back
//! (`medbus.egress.hl7v2-handback.<name>`), and the guard against a destination
//! that crashes or hangs on the same message every time (`backbone.max_deliver`
//! unsettled deliveries) counts only deliveries not given back
//! ([`CrashGuard`]).

use medbus_bus::backbone::handback::{CrashGuard, NO_BACKBONE_LIMIT};
use medbus_bus::backbone::renew::{renew_interval, renewing};
use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use medbus_bus::backbone::{open_consumer, BackboneError, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::canonical::{DestinationStatusEvent, SystemEventKind};
use medbus_bus::config::destinations::consumer_name;
use medbus_bus::config::{BackboneConfig, DestinationConfig, RefusalPolicy};
use medbus_bus::envelope::{Body, Envelope};
use medbus_bus::subjects::Subject;
use tokio_util::sync::CancellationToken;

use super::sender::{AckOutcome, MllpSender, OnError, SendError, SenderConfig};
use super::tls::{ClientTls, TlsError};

/// What a destination's delivery loop needs.
#[derive(Clone)]
pub struct DestinationContext {
    /// Destination name (a subject token).
    pub name: String,
    /// Its settings.
    pub config: DestinationConfig,
    /// Where the outbound messages wait.
    pub backbone: SharedBackbone,
    /// Consumer settings (ack wait, max deliver).
    pub backbone_config: BackboneConfig,
    /// Cancelled at shutdown: the message in hand is given back, not lost.
    pub shutdown: CancellationToken,
}

/// Messages taken from the backbone at once; all of them are kept alive while the first is retried.
const BATCH: usize = 32;

/// The sender settings of a configured destination; fails when its TLS files are unusable.
pub fn sender_config(cfg: &DestinationConfig) -> Result<SenderConfig, TlsError> {
    let policy = |p: RefusalPolicy| match p {
        RefusalPolicy::Retry => OnError::Retry,
        RefusalPolicy::DeadLetter => OnError::DeadLetter,
    };
    let mut s = SenderConfig::new(cfg.addr.clone());
    s.connect_timeout = cfg.connect_timeout;
    s.ack_timeout = cfg.ack_timeout;
    s.initial_backoff = cfg.initial_backoff;
    s.max_backoff = cfg.max_backoff;
    s.on_ae = policy(cfg.on_ae);
    s.on_ar = policy(cfg.on_ar);
    s.max_frame_bytes = cfg.max_frame_bytes;
    s.tls = cfg.tls.as_ref().map(|f| ClientTls::new(f, &cfg.addr)).transpose()?;
    Ok(s)
}

/// Delivers until shutdown.
pub async fn run(ctx: DestinationContext) -> Result<(), BackboneError> {
    let subject = Subject::egress("hl7v2", &ctx.name)
        .map_err(|e| BackboneError::Invalid(e.to_string()))?
        .to_string();
    // No backbone limit: the guard applies it, leaving out shutdown hand-backs.
    let spec = ConsumerSpec {
        max_deliver: NO_BACKBONE_LIMIT,
        ..ConsumerSpec::new(consumer_name(&ctx.name), subject, &ctx.backbone_config)
    };
    let mut consumer = open_consumer(&ctx.backbone, spec).await?;
    let guard = CrashGuard::new("hl7v2", &ctx.name, ctx.backbone_config.max_deliver)?;
    let config =
        sender_config(&ctx.config).map_err(|e| BackboneError::Invalid(format!("destination {}: {e}", ctx.name)))?;
    let mut sender = MllpSender::new(config);
    tracing::info!(destination = %ctx.name, addr = %ctx.config.addr, "hl7v2 destination delivering");
    let mut backoff = Duration::from_millis(100);
    let mut health = Health::default();
    loop {
        let batch = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            b = consumer.fetch(BATCH, Duration::from_secs(1)) => b,
        };
        match batch {
            Ok(batch) => {
                backoff = Duration::from_millis(100);
                if !deliver_in_order(&ctx, &mut sender, &mut health, &guard, batch).await {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(destination = %ctx.name, error = %e, retry_in = ?backoff, "fetch failed");
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    tracing::info!(destination = %ctx.name, "hl7v2 destination stopped");
    Ok(())
}

/// Delivers a batch one message at a time; false when shutdown interrupted it.
async fn deliver_in_order(
    ctx: &DestinationContext,
    sender: &mut MllpSender,
    health: &mut Health,
    guard: &CrashGuard,
    batch: Vec<Delivery>,
) -> bool {
    let mut pending: VecDeque<Delivery> = batch.into();
    let renew_every = renew_interval(ctx.backbone_config.ack_wait);
    while let Some(d) = pending.pop_front() {
        if d.delivered > 1 {
            if let Some(why) = guard.crashed_too_often(&ctx.backbone, &d).await {
                dead_letter(ctx, d, &why).await;
                continue;
            }
        }
        let result = {
            let payload = match outbound_bytes(&d) {
                Ok(p) => p,
                Err(why) => {
                    settle(ctx, d, Err(SendError::BadMessage(why))).await;
                    continue;
                }
            };
            let held: Vec<&Delivery> = std::iter::once(&d).chain(pending.iter()).collect();
            renewing(deliver_watched(ctx, sender, health, &payload), &held, renew_every).await
        };
        if matches!(result, Err(SendError::Shutdown)) {
            guard.give_back(&ctx.backbone, std::iter::once(d).chain(pending)).await;
            return false;
        }
        settle(ctx, d, result).await;
    }
    true
}

/// Whether the receiver has been answering, so each change is reported once.
#[derive(Default)]
struct Health {
    /// When delivery first failed, while it keeps failing.
    down_since: Option<DateTime<Utc>>,
}

/// Delivers `payload` as [`MllpSender::deliver`] does, but makes the first
/// attempt itself while the receiver is up, so that a failure is seen (and
/// reported) at once rather than after the sender's retries.
async fn deliver_watched(
    ctx: &DestinationContext,
    sender: &mut MllpSender,
    health: &mut Health,
    payload: &[u8],
) -> Result<AckOutcome, SendError> {
    if health.down_since.is_none() {
        match sender.send(payload).await {
            Ok(ack) if ack.is_accept() => return Ok(ack),
            Ok(ack) => {
                // The receiver answered, so it is reachable; its policy decides.
                let policy = if ack.code.ends_with('E') {
                    ctx.config.on_ae
                } else {
                    ctx.config.on_ar
                };
                if policy == RefusalPolicy::DeadLetter {
                    return Err(SendError::Refused(ack));
                }
            }
            Err(e) if e.is_retryable() => {
                let now = Utc::now();
                health.down_since = Some(now);
                report(
                    ctx,
                    SystemEventKind::DestinationUnreachable,
                    now,
                    Some(e.to_string()),
                    None,
                )
                .await;
            }
            Err(e) => return Err(e),
        }
        // The sender's retries start at once: wait the first backoff here.
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return Err(SendError::Shutdown),
            _ = tokio::time::sleep(ctx.config.initial_backoff) => {}
        }
    }
    let result = sender.deliver(payload, &ctx.shutdown).await;
    if let (Some(since), Ok(_) | Err(SendError::Refused(_))) = (health.down_since, &result) {
        health.down_since = None;
        report(
            ctx,
            SystemEventKind::DestinationRecovered,
            since,
            None,
            Some(Utc::now()),
        )
        .await;
    }
    result
}

/// Publishes a destination status event; best effort (logged when it fails).
async fn report(
    ctx: &DestinationContext,
    kind: SystemEventKind,
    since: DateTime<Utc>,
    reason: Option<String>,
    recovered_at: Option<DateTime<Utc>>,
) {
    let up = recovered_at.is_some();
    if up {
        tracing::info!(destination = %ctx.name, down_since = %since, "destination reachable again");
    } else {
        tracing::warn!(destination = %ctx.name, reason = reason.as_deref().unwrap_or(""), "destination unreachable");
    }
    let body = DestinationStatusEvent {
        destination: ctx.name.clone(),
        protocol: ctx.config.protocol.token().into(),
        addr: ctx.config.addr.clone(),
        since,
        reason,
        recovered_at,
    };
    crate::destination_status::publish(&ctx.backbone, &ctx.backbone_config, kind, body).await;
}

/// The bytes to send: the raw body of the outbound envelope.
fn outbound_bytes(d: &Delivery) -> Result<bytes::Bytes, String> {
    let env = Envelope::from_wire(&d.headers, d.payload.clone()).map_err(|e| format!("not a medbus envelope: {e}"))?;
    match env.body {
        Body::Raw { bytes, .. } => Ok(bytes),
        Body::Json { .. } => Err("an HL7 v2 destination needs a raw body, got JSON".into()),
    }
}

async fn settle(ctx: &DestinationContext, d: Delivery, result: Result<AckOutcome, SendError>) {
    match result {
        Ok(ack) => {
            tracing::debug!(destination = %ctx.name, code = %ack.code, sequence = d.sequence, "delivered");
            let settled = d.ack().await;
            record(&ctx.name, "accepted", settled);
        }
        Err(e) => dead_letter(ctx, d, &e.to_string()).await,
    }
}

/// Sends `d` to the dead letter with `why`.
async fn dead_letter(ctx: &DestinationContext, d: Delivery, why: &str) {
    let name = ctx.name.as_str();
    tracing::warn!(destination = name, sequence = d.sequence, reason = %why, "not delivered: dead-lettered");
    let settled = d.reject(why).await;
    record(name, "dead_lettered", settled);
}

/// Logs a failed settle and counts the outcome.
fn record(name: &str, label: &'static str, settled: Result<(), BackboneError>) {
    if let Err(e) = settled {
        // Unsettled: delivered again after the ack wait; the receiver may see it twice.
        tracing::warn!(destination = name, error = %e, "could not settle a delivery");
    }
    metrics::counter!("medbus_delivered_total", "destination" => name.to_string(), "outcome" => label).increment(1);
}
