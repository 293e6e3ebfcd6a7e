//! Webhook subscriptions: every event on a subscription's subject pattern is
//! POSTed, signed, to the subscriber's URL (`[subscriptions.<name>]`, see
//! docs/topics.md).
//!
//! Each subscription reads `medbus.events.…` with its own durable consumer
//! `subscription_<name>` and delivers one event at a time, in backbone order.
//! An event is acked only after a 2xx. A 5xx, 408, 429, timeout or refused
//! connection is retried here with backoff while the deliveries in hand are
//! kept alive (in-progress), so the backbone never hands a later event to
//! another medbus instance sharing the consumer and the order holds. Any other
//! 4xx, a message that is not an event, or `max_attempts` used up sends the
//! event to `medbus.dlq.subscription_<name>` with the receiver's status and
//! the start of its answer, and the next event is delivered.
//!
//! - `body`: the JSON the subscriber receives;
//! - `sign`: the `Medbus-Signature` HMAC;
//! - `send`: one POST and what its answer means.

pub mod body;
pub mod send;
pub mod sign;

use medbus_bus::backbone::handback::{CrashGuard, NO_BACKBONE_LIMIT};
use medbus_bus::backbone::renew::{renew_interval, renewing};
use std::collections::VecDeque;
use std::time::Duration;

use medbus_bus::backbone::{open_consumer, BackboneError, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::config::subscriptions::{check_pattern, consumer_name, SubscriptionConfig};
use medbus_bus::config::BackboneConfig;
use tokio_util::sync::CancellationToken;

use self::send::Failure;

/// What a subscription's delivery loop needs.
#[derive(Clone)]
pub struct SubscriptionContext {
    /// Subscription name (a subject token).
    pub name: String,
    /// Its settings.
    pub config: SubscriptionConfig,
    /// Where the events are.
    pub backbone: SharedBackbone,
    /// Consumer settings (ack wait, max deliver).
    pub backbone_config: BackboneConfig,
    /// Cancelled at shutdown: the events in hand are given back, not lost.
    pub shutdown: CancellationToken,
}

/// Events taken from the backbone at once; all of them are kept alive while the first is retried.
const BATCH: usize = 32;

/// How one event ended.
enum Outcome {
    Delivered(u16),
    Refused(String),
    Shutdown,
}

/// Delivers until shutdown.
pub async fn run(ctx: SubscriptionContext) -> Result<(), BackboneError> {
    check_pattern(&ctx.config.subject)
        .map_err(|e| BackboneError::Invalid(format!("subscription {}: {e}", ctx.name)))?;
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| BackboneError::Invalid(format!("subscription {}: http client: {e}", ctx.name)))?;
    // No backbone limit: the subscription retries in place, and the guard applies
    // the limit leaving out deliveries given back at shutdown (see `CrashGuard`).
    let spec = ConsumerSpec {
        max_deliver: NO_BACKBONE_LIMIT,
        ..ConsumerSpec::new(
            consumer_name(&ctx.name),
            ctx.config.subject.clone(),
            &ctx.backbone_config,
        )
    };
    let mut consumer = open_consumer(&ctx.backbone, spec).await?;
    let guard = CrashGuard::new("webhook", &ctx.name, ctx.backbone_config.max_deliver)?;
    tracing::info!(subscription = %ctx.name, subject = %ctx.config.subject, "webhook subscription delivering");
    let (name, shutdown) = (format!("subscription_{}", ctx.name), ctx.shutdown.clone());
    consumer
        .run_batches(&name, BATCH, Duration::from_secs(1), &shutdown, |batch| {
            deliver_in_order(&ctx, &http, &guard, batch)
        })
        .await;
    tracing::info!(subscription = %ctx.name, "webhook subscription stopped");
    Ok(())
}

/// Delivers a batch one event at a time; false when shutdown interrupted it.
async fn deliver_in_order(
    ctx: &SubscriptionContext,
    http: &reqwest::Client,
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
        let outcome = {
            let held: Vec<&Delivery> = std::iter::once(&d).chain(pending.iter()).collect();
            renewing(deliver_one(ctx, http, &d), &held, renew_every).await
        };
        if matches!(outcome, Outcome::Shutdown) {
            guard.give_back(&ctx.backbone, std::iter::once(d).chain(pending)).await;
            return false;
        }
        settle(ctx, d, outcome).await;
    }
    true
}

/// Attempts one event until it is delivered, refused for good, or shutdown comes.
async fn deliver_one(ctx: &SubscriptionContext, http: &reqwest::Client, d: &Delivery) -> Outcome {
    let cfg = &ctx.config;
    let (body, event_id) = match body::event_json(&d.subject, &d.headers, &d.payload) {
        Ok(b) => b,
        Err(why) => return Outcome::Refused(why),
    };
    let mut wait = cfg.initial_backoff;
    let mut attempt = 1;
    loop {
        let failure: Failure = tokio::select! {
            _ = ctx.shutdown.cancelled() => return Outcome::Shutdown,
            r = send::post(http, &ctx.name, cfg, &event_id, &body) => match r {
                Ok(status) => return Outcome::Delivered(status),
                Err(f) => f,
            },
        };
        let status = failure.status.map_or("none".to_string(), |s| s.to_string());
        if !failure.retryable {
            return Outcome::Refused(format!(
                "refused by the receiver (status {status}): {}",
                failure.message
            ));
        }
        if attempt >= cfg.max_attempts {
            return Outcome::Refused(format!(
                "not delivered after {attempt} attempts (last status {status}): {}",
                failure.message
            ));
        }
        tracing::debug!(subscription = %ctx.name, attempt, status = %status, retry_in = ?wait, "webhook attempt failed");
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return Outcome::Shutdown,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = wait.saturating_mul(2).min(cfg.max_backoff);
        attempt += 1;
    }
}

async fn settle(ctx: &SubscriptionContext, d: Delivery, outcome: Outcome) {
    let name = ctx.name.as_str();
    let (label, settled) = match outcome {
        Outcome::Delivered(status) => {
            tracing::debug!(subscription = name, status, sequence = d.sequence, "delivered");
            ("delivered", d.ack().await)
        }
        Outcome::Refused(why) => {
            tracing::warn!(subscription = name, sequence = d.sequence, reason = %why, "not delivered: dead-lettered");
            ("dead_lettered", d.reject(&why).await)
        }
        Outcome::Shutdown => return,
    };
    if let Err(e) = settled {
        // Unsettled: delivered again after the ack wait; the receiver may see it twice (same Medbus-Event-Id).
        tracing::warn!(subscription = name, error = %e, "could not settle a delivery");
    }
    metrics::counter!("medbus_subscription_deliveries_total", "subscription" => name.to_string(), "outcome" => label)
        .increment(1);
}
