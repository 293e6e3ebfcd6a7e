//! The durable consumer in front of a domain actor.
//!
//! It reads canonical events, hands each one the actor takes to it as
//! [`Apply`], and settles the delivery by the answer: ack after the actor's
//! commit, dead-letter bad input, nak with a delay otherwise — including when
//! the actor panicked (its supervisor restarts it and the event comes again).
//! A batch is spread over lanes by patient, so one patient's events are
//! applied in order while different patients proceed side by side.

use std::time::Duration;

use actix::{Actor, Addr, Context, Handler, MailboxError, Message};
use medbus_bus::backbone::{lanes, open_consumer, BackboneError, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::canonical::{CanonicalEvent, EventKind};
use medbus_bus::config::BackboneConfig;
use medbus_bus::envelope::{Body, Envelope};
use medbus_bus::store::{EventRecord, StoreError};
use tokio_util::sync::CancellationToken;

/// One event for a domain actor to apply in one store transaction.
#[derive(Debug)]
pub struct Apply {
    /// The typed event.
    pub event: CanonicalEvent,
    /// How it goes into the event log.
    pub record: EventRecord,
}

impl Message for Apply {
    type Result = Result<bool, ApplyError>;
}

/// Why an actor could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The event cannot be applied as it is: dead-letter it.
    #[error("cannot apply: {0}")]
    BadInput(String),
    /// The store failed; retry later.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The actor panicked; its supervisor restarted it.
    #[error("the service panicked and was restarted")]
    Panicked,
}

/// Which events a feed takes.
#[derive(Debug, Clone)]
pub struct FeedSpec {
    /// Durable consumer name (also the dead-letter stage).
    pub name: String,
    /// Subject filter, e.g. `medbus.events.>`.
    pub filter: String,
    /// The kinds handed to the actor; others are acked and skipped.
    pub kinds: Vec<EventKind>,
    /// Lanes per batch.
    pub lanes: usize,
}

/// Runs the feed until shutdown.
pub async fn run<A>(
    backbone: SharedBackbone,
    cfg: &BackboneConfig,
    spec: FeedSpec,
    addr: Addr<A>,
    shutdown: CancellationToken,
) -> Result<(), BackboneError>
where
    A: Actor<Context = Context<A>> + Handler<Apply>,
{
    let mut consumer = open_consumer(
        &backbone,
        ConsumerSpec::new(spec.name.clone(), spec.filter.clone(), cfg),
    )
    .await?;
    tracing::info!(consumer = %spec.name, "domain feed consuming");
    let mut backoff = Duration::from_millis(100);
    let blocked = Blocked::default();
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => break,
            b = consumer.fetch(256, Duration::from_secs(1)) => b,
        };
        let batch = match batch {
            Ok(b) => {
                backoff = Duration::from_millis(100);
                b
            }
            Err(e) => {
                tracing::warn!(consumer = %spec.name, error = %e, "fetch failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        let prepared: Vec<(Delivery, Prepared)> = batch
            .into_iter()
            .map(|d| {
                let p = prepare(&d, &spec.kinds);
                (d, p)
            })
            .collect();
        let lanes = lanes::split_by_key(prepared, spec.lanes, |(_, p)| match p {
            Prepared::Apply(a) => a.record.patient_id.clone(),
            _ => None,
        });
        let (addr, name, blocked) = (&addr, spec.name.as_str(), &blocked);
        futures::future::join_all(lanes.into_iter().map(|lane| async move {
            for (d, p) in lane {
                let key = match &p {
                    Prepared::Apply(a) => a.record.patient_id.clone(),
                    _ => None,
                };
                if let Some(k) = &key {
                    if blocked.holds(k, d.sequence) {
                        // An earlier event of this patient is still to be applied.
                        let _ = d
                            .nak(HOLD_DELAY, "held behind an earlier event of the same patient")
                            .await;
                        metrics::counter!("medbus_feed_settled_total", "consumer" => name.to_string(), "outcome" => "held")
                            .increment(1);
                        continue;
                    }
                }
                let sequence = d.sequence;
                let done = settle(name, addr, d, p).await;
                if let Some(k) = key {
                    blocked.record(k, sequence, done);
                }
            }
        }))
        .await;
    }
    tracing::info!(consumer = %spec.name, "domain feed stopped");
    Ok(())
}

enum Prepared {
    // Boxed: an event with its patient is large, and batches hold many.
    Apply(Box<Apply>),
    Skip,
    Bad(String),
}

fn prepare(d: &Delivery, kinds: &[EventKind]) -> Prepared {
    let env = match Envelope::from_wire(&d.headers, d.payload.clone()) {
        Ok(e) => e,
        Err(e) => return Prepared::Bad(format!("not a medbus envelope: {e}")),
    };
    let Some(kind) = EventKind::parse(&env.kind).filter(|k| kinds.contains(k)) else {
        return Prepared::Skip;
    };
    let Body::Json { value } = env.body else {
        return Prepared::Bad("event without a JSON body".into());
    };
    let event = match CanonicalEvent::from_json(kind, value.clone()) {
        Ok(e) => e,
        Err(e) => return Prepared::Bad(format!("{} body does not match its kind: {e}", env.kind)),
    };
    let record = EventRecord {
        id: env.id,
        correlation_id: env.correlation_id,
        causation_id: env.causation_id,
        kind: env.kind.clone(),
        subject: d.subject.clone(),
        patient_id: event.patient_key(),
        body: value,
        occurred_at: env.occurred_at,
    };
    Prepared::Apply(Box::new(Apply { event, record }))
}

/// Patients whose next event could not be applied yet, with its sequence:
/// later events of theirs wait, so order per patient holds across retries.
/// An entry lapses after [`BLOCK_LAPSE`], so an event that went to the
/// dead-letter stream elsewhere cannot block its patient for good.
#[derive(Default)]
struct Blocked(std::sync::Mutex<std::collections::HashMap<String, (u64, std::time::Instant)>>);

/// How long a failed event may hold back its patient's later events.
const BLOCK_LAPSE: Duration = Duration::from_secs(300);

impl Blocked {
    /// True when `sequence` must wait behind an earlier event of `key`.
    fn holds(&self, key: &str, sequence: u64) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some((blocking, since)) if since.elapsed() > BLOCK_LAPSE => {
                tracing::warn!(
                    sequence = blocking,
                    "an event held its patient too long; letting later ones through"
                );
                map.remove(key);
                false
            }
            Some((blocking, _)) => *blocking != sequence,
            None => false,
        }
    }

    /// Notes the outcome of `sequence` for `key`.
    fn record(&self, key: String, sequence: u64, settled: bool) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if settled {
            if map.get(&key).is_some_and(|(s, _)| *s == sequence) {
                map.remove(&key);
            }
        } else {
            map.entry(key).or_insert((sequence, std::time::Instant::now()));
        }
    }
}

/// Delay before events held behind a failed one come again.
const HOLD_DELAY: Duration = Duration::from_secs(1);
/// In-place attempts before an event is handed back to the backbone.
const ATTEMPTS: u32 = 5;

/// Applies and settles one delivery; false when it could not be applied and
/// the rest of its lane must wait.
async fn settle<A>(name: &str, addr: &Addr<A>, d: Delivery, p: Prepared) -> bool
where
    A: Actor<Context = Context<A>> + Handler<Apply>,
{
    let (result, applied, outcome) = match p {
        Prepared::Skip => (d.ack().await, true, "skipped"),
        Prepared::Bad(why) => (d.reject(&why).await, true, "dead_lettered"),
        Prepared::Apply(apply) => match apply_in_place(name, addr, *apply).await {
            Ok(()) => (d.ack().await, true, "applied"),
            Err(ApplyError::BadInput(why)) => (d.reject(&why).await, true, "dead_lettered"),
            Err(e) => {
                // Handed back: later events of this patient in the batch wait (see the caller).
                let delay = Duration::from_millis(500) * d.delivered.min(20);
                (d.nak(delay, &e.to_string()).await.map(|_| ()), false, "retrying")
            }
        },
    };
    metrics::counter!("medbus_feed_settled_total", "consumer" => name.to_string(), "outcome" => outcome).increment(1);
    if let Err(e) = result {
        // Unsettled deliveries come back after the ack wait; applying is idempotent.
        tracing::warn!(consumer = name, error = %e, "could not settle a delivery");
    }
    applied
}

/// Sends `apply`, retrying in place a few times when the service panicked
/// (its supervisor restarts it at once) or the store failed for the moment:
/// retrying here, rather than through the backbone, keeps the lane in order.
async fn apply_in_place<A>(name: &str, addr: &Addr<A>, apply: Apply) -> Result<(), ApplyError>
where
    A: Actor<Context = Context<A>> + Handler<Apply>,
{
    let Apply { event, record } = apply;
    let mut wait = Duration::from_millis(50);
    let mut last = ApplyError::Panicked;
    for attempt in 1..=ATTEMPTS {
        let msg = Apply {
            event: event.clone(),
            record: record.clone(),
        };
        let answer: Result<Result<bool, ApplyError>, MailboxError> = addr.send(msg).await;
        match answer {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(ApplyError::BadInput(why))) => return Err(ApplyError::BadInput(why)),
            Ok(Err(e)) => last = e,
            Err(e) => last = ApplyError::Store(StoreError::Unavailable(format!("service mailbox: {e}"))),
        }
        tracing::warn!(consumer = name, attempt, error = %last, "event not applied; retrying");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(2));
    }
    Err(last)
}
