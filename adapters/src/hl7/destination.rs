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

use std::collections::VecDeque;
use std::time::Duration;

use medbus_bus::backbone::{open_consumer, BackboneError, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::config::destinations::consumer_name;
use medbus_bus::config::{BackboneConfig, DestinationConfig, RefusalPolicy};
use medbus_bus::envelope::{Body, Envelope};
use medbus_bus::subjects::Subject;
use tokio_util::sync::CancellationToken;

use super::sender::{MllpSender, OnError, SendError, SenderConfig};
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
    let spec = ConsumerSpec::new(consumer_name(&ctx.name), subject, &ctx.backbone_config);
    let mut consumer = open_consumer(&ctx.backbone, spec).await?;
    let config =
        sender_config(&ctx.config).map_err(|e| BackboneError::Invalid(format!("destination {}: {e}", ctx.name)))?;
    let mut sender = MllpSender::new(config);
    tracing::info!(destination = %ctx.name, addr = %ctx.config.addr, "hl7v2 destination delivering");
    let mut backoff = Duration::from_millis(100);
    loop {
        let batch = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            b = consumer.fetch(BATCH, Duration::from_secs(1)) => b,
        };
        match batch {
            Ok(batch) => {
                backoff = Duration::from_millis(100);
                if !deliver_in_order(&ctx, &mut sender, batch).await {
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
async fn deliver_in_order(ctx: &DestinationContext, sender: &mut MllpSender, batch: Vec<Delivery>) -> bool {
    let mut pending: VecDeque<Delivery> = batch.into();
    // Renew well inside the ack wait so a long retry never lets the backbone redeliver.
    let renew_every = (ctx.backbone_config.ack_wait / 3).max(Duration::from_millis(50));
    while let Some(d) = pending.pop_front() {
        let result = {
            let payload = match outbound_bytes(&d) {
                Ok(p) => p,
                Err(why) => {
                    settle(ctx, d, Err(SendError::BadMessage(why))).await;
                    continue;
                }
            };
            let deliver = sender.deliver(&payload, &ctx.shutdown);
            tokio::pin!(deliver);
            let mut renew = tokio::time::interval(renew_every);
            renew.tick().await;
            loop {
                tokio::select! {
                    r = &mut deliver => break r,
                    _ = renew.tick() => {
                        for held in std::iter::once(&d).chain(pending.iter()) {
                            if let Err(e) = held.in_progress().await {
                                tracing::debug!(destination = %ctx.name, error = %e, "could not renew a delivery");
                            }
                        }
                    }
                }
            }
        };
        if matches!(result, Err(SendError::Shutdown)) {
            // Give everything in hand back at once rather than after the ack wait.
            for d in std::iter::once(d).chain(pending) {
                let _ = d.nak(Duration::ZERO, "shutting down").await;
            }
            return false;
        }
        settle(ctx, d, result).await;
    }
    true
}

/// The bytes to send: the raw body of the outbound envelope.
fn outbound_bytes(d: &Delivery) -> Result<bytes::Bytes, String> {
    let env = Envelope::from_wire(&d.headers, d.payload.clone()).map_err(|e| format!("not a medbus envelope: {e}"))?;
    match env.body {
        Body::Raw { bytes, .. } => Ok(bytes),
        Body::Json { .. } => Err("an HL7 v2 destination needs a raw body, got JSON".into()),
    }
}

async fn settle(ctx: &DestinationContext, d: Delivery, result: Result<super::sender::AckOutcome, SendError>) {
    let name = ctx.name.as_str();
    let (label, settled) = match result {
        Ok(ack) => {
            tracing::debug!(destination = name, code = %ack.code, sequence = d.sequence, "delivered");
            ("accepted", d.ack().await)
        }
        Err(e) => {
            let why = e.to_string();
            tracing::warn!(destination = name, sequence = d.sequence, reason = %why, "not delivered: dead-lettered");
            ("dead_lettered", d.reject(&why).await)
        }
    };
    if let Err(e) = settled {
        // Unsettled: delivered again after the ack wait; the receiver may see it twice.
        tracing::warn!(destination = name, error = %e, "could not settle a delivery");
    }
    metrics::counter!("medbus_delivered_total", "destination" => name.to_string(), "outcome" => label).increment(1);
}
