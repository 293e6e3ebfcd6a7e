//! The HL7 v2 router stage.
//!
//! What happens to each ingress delivery:
//! 1. read the envelope; unreadable → dead-letter (a bug upstream, not the sender's);
//! 2. record the message in the store (raw bytes, channel, control id, type, patient).
//!    A message kept under another id with the same channel + control id is a
//!    resend seen after the backbone's dedupe window: acknowledged, not processed twice;
//! 3. a message the listener already refused is recorded as rejected and acked;
//! 4. run the routes in force ([`crate::hl7_plan`]): a message no route takes is
//!    recorded as filtered; the routes that take it change it and name the
//!    services and destinations; a mapping error is the sender's: the message is
//!    recorded as dead-lettered and goes to the dead-letter subject with the reason;
//! 5. publish each event with dedupe id `<ingress id>:<n>` (header
//!    `Medbus-Services` naming the services that take it) and each changed
//!    message for a destination with `<ingress id>:<k>:<destination>`, so a
//!    redelivery publishes nothing new; then record the outcome and ack.
//!
//! A batch is routed with one snapshot of the routes, so a reload takes
//! effect between messages.
//!
//! In enhanced mode (MSH-15/MSH-16 valued) the outcome of steps 4–5 is also
//! reported to the sender as an application ACK (AA, or AE with ERR for a
//! message that cannot be mapped), published to the egress subject of the
//! channel's `application_acks` destination before the ingress is acked.
//!
//! A fetched batch costs two store transactions, not two per message: step 2
//! for the whole batch at once, then the publishing lane by lane (lanes by
//! patient, PID-3: one patient's messages in order, lanes side by side; a lane
//! stops at its first failure so nothing overtakes a message to be retried),
//! then every outcome at once. If the first transaction fails, each message
//! goes the same steps on its own. Store or backbone trouble naks with a
//! delay (retry); nothing is acked before its events are durable and its
//! outcome recorded.

use crate::failure::Failure;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use medbus_adapters::hl7::ack::AckError;
use medbus_adapters::hl7::application_ack::{self, Processed};
use medbus_adapters::hl7::listener::raw_header;
use medbus_adapters::hl7::parser::Message;
use medbus_bus::backbone::{open_consumer, BackboneError, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::config::BackboneConfig;
use medbus_bus::envelope::{Body, Envelope};
use medbus_bus::store::{InsertOutcome, MessageStatus, NewMessage, SharedStore, StageOutcome};
use medbus_bus::subjects::Subject;
use tokio_util::sync::CancellationToken;

use crate::config::Routes;
use crate::hl7_plan::{self, Output, RoutePlan};
use crate::live::LiveRoutes;

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
    /// The routes in force (replaced by reloads).
    pub routes: Arc<LiveRoutes>,
    /// Cancelled at shutdown: finish the delivery in hand, then stop.
    pub shutdown: CancellationToken,
}

/// How one delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Events published (how many).
    Routed(usize),
    /// Recorded; no route takes it, or it produced nothing.
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
    let shutdown = ctx.shutdown.clone();
    consumer
        .run_batches(CONSUMER, BATCH, Duration::from_secs(1), &shutdown, |batch| async {
            route_batch(&ctx, batch).await;
            true
        })
        .await;
    tracing::info!(consumer = CONSUMER, "hl7v2 router stopped");
    Ok(())
}

/// Deliveries taken at once: their store writes share two transactions.
const BATCH: usize = 256;
/// Lanes a batch is spread over for publishing.
const LANES: usize = 32;

/// Routes a fetched batch with two store transactions in all: every message
/// recorded at once, then events published lane by lane (one patient's in
/// order), then every outcome recorded at once, then the deliveries settled.
/// When the first transaction fails, each delivery goes the one-by-one way.
pub async fn route_batch(ctx: &RouterContext, batch: Vec<Delivery>) {
    let routes = ctx.routes.snapshot();
    let mut ready = Vec::with_capacity(batch.len());
    for d in batch {
        match prepare(&d, &routes) {
            Ok(r) => ready.push((d, r)),
            Err(why) => {
                settle(d, Err(Failure::Permanent(why))).await;
            }
        }
    }
    if ready.is_empty() {
        return;
    }
    let records: Vec<NewMessage> = ready.iter().map(|(_, r)| r.record.clone()).collect();
    let inserted = match ctx.store.insert_messages(&records).await {
        Ok(out) => out,
        Err(e) => {
            tracing::warn!(error = %e, messages = ready.len(), "batch insert failed; routing one by one");
            let lanes = split_into_lanes(ready);
            futures::future::join_all(lanes.into_iter().map(|lane| async move {
                for (d, r) in lane {
                    let result = process(ctx, r).await;
                    settle(d, result).await;
                }
            }))
            .await;
            return;
        }
    };
    let mut fresh = Vec::with_capacity(ready.len());
    for ((d, r), outcome) in ready.into_iter().zip(inserted) {
        match outcome {
            InsertOutcome::Duplicate { existing } if existing != r.env.id => {
                tracing::info!(correlation_id = %r.env.id, %existing, "resend of a message already kept; not processed again");
                settle(d, Ok(Decision::settled(Outcome::Resend))).await;
            }
            _ => fresh.push((d, r)),
        }
    }
    // Publish lane by lane; a lane stops at its first failure so a patient's later
    // messages never overtake an earlier one that will be retried.
    let lanes = split_into_lanes(fresh);
    let decided: Vec<Vec<(Delivery, Result<Decision, Failure>)>> =
        futures::future::join_all(lanes.into_iter().map(|lane| async move {
            let mut out = Vec::with_capacity(lane.len());
            let mut stopped: Option<String> = None;
            for (d, r) in lane {
                let result = match &stopped {
                    Some(why) => Err(Failure::Transient(format!(
                        "behind an earlier failure in its lane: {why}"
                    ))),
                    None => decide(ctx, r).await,
                };
                if let Err(Failure::Transient(why)) = &result {
                    stopped.get_or_insert_with(|| why.clone());
                }
                out.push((d, result));
            }
            out
        }))
        .await;
    let decided: Vec<(Delivery, Result<Decision, Failure>)> = decided.into_iter().flatten().collect();
    let stages: Vec<StageOutcome> = decided
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().and_then(|d| d.stage.clone()))
        .collect();
    let recorded = if stages.is_empty() {
        Ok(())
    } else {
        ctx.store.record_stages(&stages).await
    };
    let recorded = recorded.map_err(|e| e.to_string());
    futures::future::join_all(decided.into_iter().map(|(d, result)| {
        let result = match (&recorded, result) {
            // Events are out but the outcome is not recorded: deliver again (publishing is idempotent).
            (Err(why), Ok(decision)) if decision.stage.is_some() => Err(Failure::Transient(why.clone())),
            (_, result) => result,
        };
        settle(d, result)
    }))
    .await;
}

/// Groups deliveries by patient (PID-3, first identifier), keeping their order
/// within each group. A message without a readable PID-3 goes by position.
fn split_into_lanes(batch: Vec<(Delivery, Ready)>) -> Vec<Vec<(Delivery, Ready)>> {
    medbus_bus::backbone::lanes::split_by_key(batch, LANES, |(_, r)| r.record.patient_id.clone())
}

/// A delivery read and mapped, before anything is written.
struct Ready {
    env: Envelope,
    record: NewMessage,
    plan: Plan,
}

/// What routing will do with a message.
enum Plan {
    /// The listener refused it: record why.
    Rejected(String),
    /// Publish these events and messages.
    Route(Vec<Output>),
    /// No route takes it, or it produces nothing; why.
    Filtered(String),
    /// Cannot be mapped (the sender's to fix): dead-letter, answering AE when asked.
    Invalid { why: String, ack: Option<AckError> },
}

/// How a message ended, and the stage outcome to record for it (none for a resend).
struct Decision {
    outcome: Outcome,
    stage: Option<StageOutcome>,
    dead_letter: Option<String>,
}

impl Decision {
    fn settled(outcome: Outcome) -> Self {
        Decision {
            outcome,
            stage: None,
            dead_letter: None,
        }
    }
}

/// Reads the envelope and plans the message; an error is a reason to dead-letter.
fn prepare(d: &Delivery, routes: &Routes) -> Result<Ready, String> {
    let env = Envelope::from_wire(&d.headers, d.payload.clone()).map_err(|e| format!("not a medbus envelope: {e}"))?;
    let Body::Raw { headers, bytes } = &env.body else {
        return Err("ingress envelope without a raw body".into());
    };
    let rejected = headers.get(raw_header::REJECTED).cloned();
    let parsed = Message::parse(bytes);
    let planned = match (&rejected, &parsed) {
        (None, Ok(msg)) => Some(hl7_plan::plan(routes, msg, bytes, &env.source.channel)),
        _ => None,
    };
    let first_event_patient = match &planned {
        Some(RoutePlan::Outputs(outputs)) => outputs
            .iter()
            .flat_map(|o| o.events.first())
            .next()
            .and_then(|e| e.patient_key()),
        _ => None,
    };
    // Messages without events still go by patient when PID-3 can be read, to keep lanes honest.
    let patient_id = first_event_patient.or_else(|| {
        parsed
            .as_ref()
            .ok()
            .and_then(|m| m.get("PID-3.1").ok().flatten().map(|v| v.text().into_owned()))
            .filter(|id| !id.is_empty())
    });
    let plan = match (rejected.clone(), planned) {
        (Some(why), _) => Plan::Rejected(why),
        (None, Some(RoutePlan::Outputs(outputs))) => Plan::Route(outputs),
        (None, Some(RoutePlan::Filtered(why))) => Plan::Filtered(why),
        (None, Some(RoutePlan::Invalid { why, ack })) => Plan::Invalid { why, ack },
        (None, None) => Plan::Invalid {
            why: parsed.err().map(|e| e.to_string()).unwrap_or_default(),
            ack: None,
        },
    };
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
        error: rejected,
    };
    Ok(Ready { env, record, plan })
}

/// Routes one delivery on its own (the fallback when a batch cannot be
/// recorded at once) and settles it; returns what happened.
pub async fn route(ctx: &RouterContext, d: Delivery) -> Outcome {
    let routes = ctx.routes.snapshot();
    let result = match prepare(&d, &routes) {
        Ok(r) => process(ctx, r).await,
        Err(why) => Err(Failure::Permanent(why)),
    };
    settle(d, result).await
}

/// One message, one transaction at a time: record, decide, record the outcome.
async fn process(ctx: &RouterContext, r: Ready) -> Result<Decision, Failure> {
    match ctx.store.insert_message(&r.record).await? {
        InsertOutcome::Duplicate { existing } if existing != r.env.id => {
            tracing::info!(correlation_id = %r.env.id, %existing, "resend of a message already kept; not processed again");
            return Ok(Decision::settled(Outcome::Resend));
        }
        _ => {}
    }
    let decision = decide(ctx, r).await?;
    if let Some(stage) = &decision.stage {
        ctx.store.record_stages(std::slice::from_ref(stage)).await?;
    }
    Ok(decision)
}

/// Publishes what a recorded message produces (events, application ACK) and
/// says how it ended. Nothing here touches the store.
async fn decide(ctx: &RouterContext, r: Ready) -> Result<Decision, Failure> {
    let Ready { env, plan, .. } = r;
    let stage = |status, error: Option<&str>| StageOutcome {
        message_id: env.id,
        stage: STAGE.to_string(),
        status,
        error: error.map(str::to_string),
    };
    let raw = match &env.body {
        Body::Raw { bytes, .. } => bytes.clone(),
        Body::Json { .. } => bytes::Bytes::new(),
    };
    let parsed = Message::parse(&raw);
    match plan {
        Plan::Rejected(why) => Ok(Decision {
            outcome: Outcome::Rejected,
            stage: Some(stage(MessageStatus::Rejected, Some(&why))),
            dead_letter: None,
        }),
        Plan::Filtered(why) => {
            if let Ok(msg) = &parsed {
                send_application_ack(ctx, &env, msg, &Processed::Accepted).await?;
            }
            Ok(Decision {
                outcome: Outcome::Filtered,
                stage: Some(stage(MessageStatus::Filtered, Some(&why))),
                dead_letter: None,
            })
        }
        Plan::Invalid { why, ack } => {
            if let (Ok(msg), Some(ack)) = (&parsed, ack) {
                send_application_ack(ctx, &env, msg, &Processed::Error(ack)).await?;
            }
            Ok(Decision {
                outcome: Outcome::DeadLettered,
                stage: Some(stage(MessageStatus::DeadLettered, Some(&why))),
                dead_letter: Some(why),
            })
        }
        Plan::Route(outputs) => {
            let published = publish_outputs(ctx, &env, &outputs).await?;
            if let Ok(msg) = &parsed {
                send_application_ack(ctx, &env, msg, &Processed::Accepted).await?;
            }
            Ok(Decision {
                outcome: Outcome::Routed(published),
                stage: Some(stage(MessageStatus::Processed, None)),
                dead_letter: None,
            })
        }
    }
}

/// Publishes every output's events (tagged with their services) and its
/// message to each of its destinations; returns how many events.
async fn publish_outputs(ctx: &RouterContext, env: &Envelope, outputs: &[Output]) -> Result<usize, Failure> {
    let mut n = 0;
    for (k, output) in outputs.iter().enumerate() {
        let services = output.services_header();
        for event in &output.events {
            crate::publish::publish_event(
                &ctx.backbone,
                env,
                event,
                format!("{}:{n}", env.id),
                services.as_deref(),
            )
            .await?;
            n += 1;
        }
        let raw_headers = match &env.body {
            Body::Raw { headers, .. } => headers.clone(),
            Body::Json { .. } => BTreeMap::new(),
        };
        for destination in &output.destinations {
            let subject = Subject::egress("hl7v2", destination)
                .map_err(|e| Failure::Permanent(format!("destination {destination:?}: {e}")))?;
            let out = env.derive_raw("hl7v2.raw", raw_headers.clone(), output.bytes.clone());
            let wire = out
                .to_outgoing(subject.to_string(), format!("{}:{k}:{destination}", env.id))
                .map_err(|e| Failure::Permanent(format!("message for {destination} does not serialise: {e}")))?;
            ctx.backbone.publish(wire).await?;
        }
    }
    Ok(n)
}

/// Acks, dead-letters or naks a delivery by its result; counts it.
async fn settle(d: Delivery, result: Result<Decision, Failure>) -> Outcome {
    let channel = d.subject.rsplit('.').next().unwrap_or_default().to_string();
    let (outcome, settled) = match result {
        Ok(Decision {
            outcome,
            dead_letter: Some(why),
            ..
        }) => (outcome, d.reject(&why).await),
        Ok(decision) => (decision.outcome, d.ack().await),
        Err(Failure::Transient(why)) => {
            tracing::warn!(subject = %d.subject, sequence = d.sequence, reason = %why, "routing failed; will retry");
            let delay = Duration::from_millis(500) * d.delivered.min(20);
            (Outcome::Retrying, d.nak(delay, &why).await.map(|_| ()))
        }
        Err(Failure::Permanent(why)) => (Outcome::DeadLettered, d.reject(&why).await),
    };
    if let Err(e) = settled {
        // Not settled: the backbone delivers it again after the ack wait; processing is idempotent.
        tracing::warn!(error = %e, "could not settle a delivery");
    }
    metrics::counter!("medbus_routed_total", "channel" => channel, "outcome" => outcome.label()).increment(1);
    outcome
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
