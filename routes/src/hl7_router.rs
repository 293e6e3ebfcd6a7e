//! The HL7 v2 router stage.
//!
//! For each ingress delivery, in order:
//! 1. read the envelope; unreadable → dead-letter (a bug upstream, not the sender's);
//! 2. record the message in the store (raw bytes, channel, control id, type, patient).
//!    A message kept under another id with the same channel + control id is a
//!    resend seen after the backbone's dedupe window: acknowledged, not processed twice;
//! 3. a message the listener already refused is recorded as rejected and acked;
//! 4. parse and map: ADT becomes canonical events; other types are recorded as
//!    filtered (no route yet); a mapping error is the sender's: the message is
//!    recorded as errored and dead-lettered with the reason;
//! 5. publish each event with dedupe id `<ingress id>:<n>`, so a redelivery
//!    publishes nothing new; then record the stage and ack.
//!
//! In enhanced mode (MSH-15/MSH-16 valued) the outcome of steps 4–5 is also
//! reported to the sender as an application ACK (AA, or AE with ERR for a
//! message that cannot be mapped), published to the egress subject of the
//! channel's `application_acks` destination before the ingress is acked.
//!
//! Store or backbone trouble naks with a delay (retry); nothing is acked
//! before its events are durable. Each fetched batch is spread over lanes by
//! patient (PID-3): a lane is handled in order, which keeps events about one
//! patient in the order their messages were received; lanes run side by side.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use medbus_adapters::hl7::application_ack::{self, Processed};
use medbus_adapters::hl7::canonical::{map_adt, MapError};
use medbus_adapters::hl7::listener::raw_header;
use medbus_adapters::hl7::parser::Message;
use medbus_bus::backbone::{open_consumer, BackboneError, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::config::BackboneConfig;
use medbus_bus::envelope::{Body, Envelope};
use medbus_bus::store::{InsertOutcome, MessageStatus, NewMessage, SharedStore, StoreError};
use medbus_bus::subjects::Subject;
use tokio_util::sync::CancellationToken;

/// Durable consumer name, also the dead-letter stage (`medbus.dlq.router_hl7v2`).
pub const CONSUMER: &str = "router_hl7v2";
/// Stage name recorded in the store.
pub const STAGE: &str = "router";

/// What the router needs.
#[derive(Clone)]
pub struct RouterContext {
    /// Backbone to consume from and publish to.
    pub backbone: SharedBackbone,
    /// Store for message records.
    pub store: SharedStore,
    /// Consumer settings (ack wait, max deliver).
    pub backbone_config: BackboneConfig,
    /// Channel name → destination that receives its enhanced-mode application ACKs.
    pub application_acks: Arc<BTreeMap<String, String>>,
    /// Cancelled at shutdown: finish the delivery in hand, then stop.
    pub shutdown: CancellationToken,
}

/// How one delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Events published (how many).
    Routed(usize),
    /// Recorded; no route for this message type.
    Filtered,
    /// Refused at the door by the listener; recorded.
    Rejected,
    /// Same channel + control id already kept under another id: skipped.
    Resend,
    /// Bad input: dead-lettered.
    DeadLettered,
    /// Trouble downstream: will be delivered again.
    Retrying,
}

impl Outcome {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Routed(_) => "routed",
            Outcome::Filtered => "filtered",
            Outcome::Rejected => "rejected",
            Outcome::Resend => "resend",
            Outcome::DeadLettered => "dead_lettered",
            Outcome::Retrying => "retrying",
        }
    }
}

/// Runs the router until shutdown.
pub async fn run(ctx: RouterContext) -> Result<(), BackboneError> {
    let spec = ConsumerSpec::new(CONSUMER, "medbus.ingress.hl7v2.>", &ctx.backbone_config);
    let mut consumer = open_consumer(&ctx.backbone, spec).await?;
    tracing::info!(consumer = CONSUMER, "hl7v2 router consuming");
    let mut backoff = Duration::from_millis(100);
    loop {
        let batch = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            b = consumer.fetch(256, Duration::from_secs(1)) => b,
        };
        match batch {
            Ok(batch) => {
                backoff = Duration::from_millis(100);
                // Lanes by patient: order holds within a lane, lanes run side by side.
                let lanes = split_into_lanes(batch);
                futures::future::join_all(lanes.into_iter().map(|lane| {
                    let ctx = &ctx;
                    async move {
                        for d in lane {
                            route(ctx, d).await;
                        }
                    }
                }))
                .await;
            }
            Err(e) => {
                tracing::warn!(consumer = CONSUMER, error = %e, retry_in = ?backoff, "fetch failed");
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    tracing::info!(consumer = CONSUMER, "hl7v2 router stopped");
    Ok(())
}

/// Lanes a batch is spread over.
const LANES: usize = 16;

/// Groups deliveries by patient (PID-3, first identifier), keeping their order
/// within each group. A message without a readable PID-3 goes by position.
fn split_into_lanes(batch: Vec<Delivery>) -> Vec<Vec<Delivery>> {
    medbus_bus::backbone::lanes::split_by_key(batch, LANES, |d| {
        Message::parse(&d.payload)
            .ok()
            .and_then(|m| m.get("PID-3.1").ok().flatten().map(|v| v.text().into_owned()))
            .filter(|id| !id.is_empty())
    })
}

/// Why a delivery could not be finished now.
enum Failure {
    /// Worth retrying later.
    Transient(String),
    /// Will never work: dead-letter.
    Permanent(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        if e.is_retryable() {
            Failure::Transient(e.to_string())
        } else {
            Failure::Permanent(e.to_string())
        }
    }
}

impl From<BackboneError> for Failure {
    fn from(e: BackboneError) -> Self {
        if e.is_retryable() {
            Failure::Transient(e.to_string())
        } else {
            Failure::Permanent(e.to_string())
        }
    }
}

/// Routes one delivery and settles it; returns what happened.
pub async fn route(ctx: &RouterContext, d: Delivery) -> Outcome {
    let result = process(ctx, &d).await;
    let channel = d.subject.rsplit('.').next().unwrap_or_default().to_string();
    let (outcome, settle) = match result {
        Ok(o) => (o, d.ack().await.map(|_| ())),
        Err(Failure::Transient(why)) => {
            tracing::warn!(subject = %d.subject, sequence = d.sequence, reason = %why, "routing failed; will retry");
            let delay = Duration::from_millis(500) * d.delivered.min(20);
            (Outcome::Retrying, d.nak(delay, &why).await.map(|_| ()))
        }
        Err(Failure::Permanent(why)) => (Outcome::DeadLettered, d.reject(&why).await),
    };
    if let Err(e) = settle {
        // Not settled: the backbone delivers it again after the ack wait; processing is idempotent.
        tracing::warn!(error = %e, "could not settle a delivery");
    }
    metrics::counter!("medbus_routed_total", "channel" => channel, "outcome" => outcome.label()).increment(1);
    outcome
}

async fn process(ctx: &RouterContext, d: &Delivery) -> Result<Outcome, Failure> {
    let env = Envelope::from_wire(&d.headers, d.payload.clone())
        .map_err(|e| Failure::Permanent(format!("not a medbus envelope: {e}")))?;
    let Body::Raw { headers, bytes } = &env.body else {
        return Err(Failure::Permanent("ingress envelope without a raw body".into()));
    };
    let rejected = headers.get(raw_header::REJECTED).cloned();
    let parsed = Message::parse(bytes);
    let mapped = parsed.as_ref().ok().map(map_adt);
    let patient_id = mapped
        .as_ref()
        .and_then(|m| m.as_ref().ok())
        .and_then(|events| events.first())
        .and_then(|e| e.patient_key());
    let record = NewMessage {
        id: env.id,
        correlation_id: env.correlation_id,
        channel: env.source.channel.clone(),
        protocol: env.source.protocol.clone(),
        control_id: headers.get(raw_header::CONTROL_ID).cloned(),
        message_type: headers.get(raw_header::MESSAGE_TYPE).cloned(),
        patient_id,
        peer: env.source.peer.clone(),
        raw: bytes.clone(),
        headers: headers.clone(),
        received_at: env.received_at,
        status: if rejected.is_some() {
            MessageStatus::Rejected
        } else {
            MessageStatus::Received
        },
        error: rejected.clone(),
    };
    match ctx.store.insert_message(&record).await? {
        InsertOutcome::Duplicate { existing } if existing != env.id => {
            tracing::info!(correlation_id = %env.id, %existing, "resend of a message already kept; not processed again");
            return Ok(Outcome::Resend);
        }
        _ => {}
    }
    if let Some(why) = rejected {
        ctx.store
            .record_stage(env.id, STAGE, MessageStatus::Rejected, Some(&why))
            .await?;
        return Ok(Outcome::Rejected);
    }
    let events = match mapped {
        Some(Ok(events)) => events,
        Some(Err(MapError::NotAdt { .. })) => {
            let why = "no route for this message type yet";
            if let Ok(msg) = &parsed {
                send_application_ack(ctx, &env, msg, &Processed::Accepted).await?;
            }
            ctx.store
                .record_stage(env.id, STAGE, MessageStatus::Filtered, Some(why))
                .await?;
            return Ok(Outcome::Filtered);
        }
        Some(Err(e)) => {
            let why = e.to_string();
            if let Ok(msg) = &parsed {
                send_application_ack(ctx, &env, msg, &Processed::Error(e.to_ack_error())).await?;
            }
            ctx.store
                .record_stage(env.id, STAGE, MessageStatus::DeadLettered, Some(&why))
                .await?;
            return Err(Failure::Permanent(why));
        }
        None => {
            let why = parsed.err().map(|e| e.to_string()).unwrap_or_default();
            ctx.store
                .record_stage(env.id, STAGE, MessageStatus::DeadLettered, Some(&why))
                .await?;
            return Err(Failure::Permanent(why));
        }
    };
    for (n, event) in events.iter().enumerate() {
        let (subject, body) = event
            .to_message()
            .map_err(|e| Failure::Permanent(format!("event does not serialise: {e}")))?;
        let mut out = env.derive_event(event.kind().as_str(), body);
        if let Some(at) = event
            .occurred()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.as_str()).ok())
        {
            out.occurred_at = at.with_timezone(&chrono::Utc);
        }
        let wire = out
            .to_outgoing(subject.to_string(), format!("{}:{n}", env.id))
            .map_err(|e| Failure::Permanent(format!("event does not serialise: {e}")))?;
        ctx.backbone.publish(wire).await?;
    }
    if let Ok(msg) = &parsed {
        send_application_ack(ctx, &env, msg, &Processed::Accepted).await?;
    }
    ctx.store
        .record_stage(env.id, STAGE, MessageStatus::Processed, None)
        .await?;
    Ok(Outcome::Routed(events.len()))
}

/// Publishes the application ACK `msg` asks for (if any) to the channel's
/// `application_acks` destination. The dedupe id is fixed per ingress message,
/// so a redelivery does not queue a second ACK.
async fn send_application_ack(
    ctx: &RouterContext,
    env: &Envelope,
    msg: &Message<'_>,
    outcome: &Processed,
) -> Result<(), Failure> {
    let channel = env.source.channel.as_str();
    let ack_id = uuid::Uuid::now_v7().simple().to_string();
    let Some(ack) = application_ack::build(msg, outcome, &ack_id) else {
        return Ok(());
    };
    let Some(destination) = ctx.application_acks.get(channel) else {
        tracing::warn!(
            channel,
            correlation_id = %env.correlation_id,
            "the sender asked for an application ACK (MSH-16) but the channel has no application_acks destination; not sent"
        );
        metrics::counter!("medbus_application_acks_total", "channel" => channel.to_string(), "outcome" => "no_destination")
            .increment(1);
        return Ok(());
    };
    let subject = Subject::egress("hl7v2", destination)
        .map_err(|e| Failure::Permanent(format!("application ACK destination {destination:?}: {e}")))?;
    let mut headers = BTreeMap::new();
    headers.insert(raw_header::CONTROL_ID.to_string(), ack_id);
    headers.insert(raw_header::ACK_CODE.to_string(), outcome.code().as_str().to_string());
    let out = env.derive_raw("hl7v2.application-ack", headers, ack.into());
    let wire = out
        .to_outgoing(subject.to_string(), format!("{}:application-ack", env.id))
        .map_err(|e| Failure::Permanent(format!("application ACK does not serialise: {e}")))?;
    ctx.backbone.publish(wire).await?;
    metrics::counter!("medbus_application_acks_total", "channel" => channel.to_string(), "outcome" => outcome.code().as_str())
        .increment(1);
    Ok(())
}
