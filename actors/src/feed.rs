//! The durable consumer in front of a domain actor.
//!
//! It reads canonical events a batch at a time. The events the actor takes go
//! to it as ONE [`ApplyBatch`] — one store transaction, applied in backbone
//! order, so one patient's events keep their order — and are acked together
//! once it committed. When that fails (bad input in one event, the store, a
//! panic: the actor's supervisor restarts it) the feed falls back to one
//! [`Apply`] per event for exactly those deliveries, and settles each by the
//! answer: ack after the actor's commit, dead-letter bad input, nak with a
//! delay otherwise. That path spreads the events over lanes by patient, so one
//! patient's events are applied in order while different patients proceed
//! side by side, and holds a patient's later events behind one that failed.

use std::collections::HashSet;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, Context, Handler, MailboxError, Message, ResponseActFuture, WrapFuture,
};
use futures::FutureExt;
use medbus_bus::backbone::{lanes, open_consumer, BackboneError, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::canonical::{CanonicalEvent, EventKind};
use medbus_bus::config::BackboneConfig;
use medbus_bus::envelope::{header, Body, Envelope};
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

/// Events for a domain actor to apply in ONE store transaction, in order,
/// each as [`Apply`] would; all or nothing. The answer has one flag per event,
/// in order: true when applied, false when it was already in the event log.
/// [`ApplyError::BadInput`] names the event that cannot be applied.
#[derive(Debug)]
pub struct ApplyBatch {
    /// The events, in backbone order.
    pub items: Vec<Apply>,
}

impl Message for ApplyBatch {
    type Result = Result<Vec<bool>, ApplyError>;
}

/// A domain actor a feed can drive: it applies one event ([`Apply`]) and a
/// batch in one transaction ([`ApplyBatch`]). Implemented for every such actor.
pub trait DomainActor: Actor<Context = Context<Self>> + Handler<Apply> + Handler<ApplyBatch> {}

impl<A> DomainActor for A where A: Actor<Context = Context<A>> + Handler<Apply> + Handler<ApplyBatch> {}

/// Runs a domain actor's handler `work` so that a panic in it answers
/// [`ApplyError::Panicked`] and stops the actor (its supervisor restarts it)
/// instead of taking the events with it; the feed then retries them.
/// `service` names the actor in the log.
pub fn guarded<A, T>(
    service: &'static str,
    actor: &A,
    work: impl Future<Output = Result<T, ApplyError>> + 'static,
) -> ResponseActFuture<A, Result<T, ApplyError>>
where
    A: Actor<Context = Context<A>>,
    T: 'static,
{
    Box::pin(
        AssertUnwindSafe(work)
            .catch_unwind()
            .into_actor(actor)
            .map(move |result, _act, ctx| match result {
                Ok(r) => r,
                Err(_) => {
                    tracing::error!(service, "panicked while applying events");
                    ctx.stop();
                    Err(ApplyError::Panicked)
                }
            }),
    )
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
    /// Durable consumer name (also the dead-letter stage), and the service
    /// name routes use (`to.services`): an event whose `Medbus-Services`
    /// header does not list it is skipped.
    pub name: String,
    /// Subject filter, e.g. `medbus.events.>`.
    pub filter: String,
    /// The kinds handed to the actor; others are acked and skipped.
    pub kinds: Vec<EventKind>,
    /// Lanes per batch.
    pub lanes: usize,
    /// How long a batch that has started to come waits for more before it
    /// is applied ([`Consumer::linger`](medbus_bus::backbone::Consumer::linger)); zero for none.
    pub linger: Duration,
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
    A: DomainActor,
{
    let mut consumer = open_consumer(
        &backbone,
        ConsumerSpec::new(spec.name.clone(), spec.filter.clone(), cfg),
    )
    .await?
    .linger(spec.linger);
    tracing::info!(consumer = %spec.name, "domain feed consuming");
    let blocked = Blocked::default();
    let name = spec.name.clone();
    consumer
        .run_batches(&name, 256, Duration::from_secs(1), &shutdown, |batch| async {
            let prepared = batch.into_iter().map(|d| {
                let p = prepare(&d, &spec.name, &spec.kinds);
                (d, p)
            });
            settle_batch(&spec, &addr, &blocked, prepared).await;
            true
        })
        .await;
    tracing::info!(consumer = %spec.name, "domain feed stopped");
    Ok(())
}

enum Prepared {
    // Boxed: an event with its patient is large, and batches hold many.
    Apply(Box<Apply>),
    Skip,
    Bad(String),
}

fn prepare(d: &Delivery, service: &str, kinds: &[EventKind]) -> Prepared {
    // Routes name the services that take their events; other services skip them.
    let routed_elsewhere = d
        .headers
        .get(header::SERVICES)
        .is_some_and(|list| !list.split(',').any(|s| s.trim() == service));
    if routed_elsewhere {
        return Prepared::Skip;
    }
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

/// Settles one fetched batch: skipped and bad deliveries at once, those of a
/// held patient nak'ed, and the rest applied as one [`ApplyBatch`] (or, when
/// that fails, one by one in lanes).
async fn settle_batch<A: DomainActor>(
    spec: &FeedSpec,
    addr: &Addr<A>,
    blocked: &Blocked,
    prepared: impl Iterator<Item = (Delivery, Prepared)>,
) {
    let name = spec.name.as_str();
    let mut others = Vec::new();
    let mut held = Vec::new();
    let mut applies: Vec<(Delivery, Box<Apply>)> = Vec::new();
    for (d, p) in prepared {
        match p {
            Prepared::Apply(a) => applies.push((d, a)),
            p => others.push((d, p)),
        }
    }
    // Backbone order is the order the transaction applies them in.
    applies.sort_by_key(|(d, _)| d.sequence);
    let mut batch = Vec::with_capacity(applies.len());
    // Patients whose blocking event is in this batch: their later events may
    // follow it into the same transaction, which applies them after it.
    let mut released: HashSet<String> = HashSet::new();
    for (d, a) in applies {
        if let Some(k) = &a.record.patient_id {
            match blocked.blocking(k) {
                Some(s) if s == d.sequence => {
                    released.insert(k.clone());
                }
                Some(_) if !released.contains(k) => {
                    held.push(d);
                    continue;
                }
                _ => {}
            }
        }
        batch.push((d, a));
    }
    let skipped = futures::future::join_all(others.into_iter().map(|(d, p)| settle(name, addr, d, p)));
    let held = futures::future::join_all(held.into_iter().map(|d| hold(name, d)));
    futures::join!(skipped, held, apply_batch(spec, addr, blocked, batch));
}

/// Naks a delivery whose patient waits for an earlier event of theirs.
async fn hold(name: &str, d: Delivery) {
    if let Err(e) = d
        .nak(HOLD_DELAY, "held behind an earlier event of the same patient")
        .await
    {
        tracing::warn!(consumer = name, error = %e, "could not settle a delivery");
    }
    metrics::counter!("medbus_feed_settled_total", "consumer" => name.to_string(), "outcome" => "held").increment(1);
}

/// Applies `batch` (in backbone order) in one transaction and acks it all,
/// or, when that fails, applies and settles its deliveries one by one.
async fn apply_batch<A: DomainActor>(
    spec: &FeedSpec,
    addr: &Addr<A>,
    blocked: &Blocked,
    batch: Vec<(Delivery, Box<Apply>)>,
) {
    if batch.is_empty() {
        return;
    }
    let name = spec.name.as_str();
    // Cloned: on failure the events are applied again one by one.
    let items = batch
        .iter()
        .map(|(_, a)| Apply {
            event: a.event.clone(),
            record: a.record.clone(),
        })
        .collect();
    let answer: Result<Result<Vec<bool>, ApplyError>, MailboxError> = addr.send(ApplyBatch { items }).await;
    let failure = match answer {
        Ok(Ok(flags)) if flags.len() == batch.len() => None,
        Ok(Ok(flags)) => Some(format!(
            "{} answers for a batch of {} (applying one by one, which is idempotent)",
            flags.len(),
            batch.len()
        )),
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(format!("service mailbox: {e}")),
    };
    if let Some(why) = failure {
        tracing::warn!(
            consumer = name,
            events = batch.len(),
            error = %why,
            "batch not applied; applying its events one by one"
        );
        metrics::counter!("medbus_feed_batch_fallbacks_total", "consumer" => name.to_string()).increment(1);
        let lanes = lanes::split_by_key(batch, spec.lanes, |(_, a)| a.record.patient_id.clone());
        futures::future::join_all(lanes.into_iter().map(|lane| settle_lane(name, addr, blocked, lane))).await;
        return;
    }
    // Committed: only now may the deliveries be acked.
    let acks = batch.into_iter().map(|(d, a)| async move {
        if let Some(k) = a.record.patient_id.clone() {
            blocked.record(k, d.sequence, true);
        }
        if let Err(e) = d.ack().await {
            // Unsettled deliveries come back after the ack wait; applying is idempotent.
            tracing::warn!(consumer = name, error = %e, "could not settle a delivery");
        }
        metrics::counter!("medbus_feed_settled_total", "consumer" => name.to_string(), "outcome" => "applied")
            .increment(1);
    });
    futures::future::join_all(acks).await;
}

/// Applies and settles one lane's deliveries in order, one at a time; a
/// patient whose event could not be applied holds back their later ones.
async fn settle_lane<A: DomainActor>(name: &str, addr: &Addr<A>, blocked: &Blocked, lane: Vec<(Delivery, Box<Apply>)>) {
    for (d, a) in lane {
        let key = a.record.patient_id.clone();
        if let Some(k) = &key {
            if blocked.holds(k, d.sequence) {
                // An earlier event of this patient is still to be applied.
                hold(name, d).await;
                continue;
            }
        }
        let sequence = d.sequence;
        let done = settle(name, addr, d, Prepared::Apply(a)).await;
        if let Some(k) = key {
            blocked.record(k, sequence, done);
        }
    }
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
    /// The sequence of the event holding back `key`'s later ones, if any.
    fn blocking(&self, key: &str) -> Option<u64> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some((blocking, since)) if since.elapsed() > BLOCK_LAPSE => {
                tracing::warn!(
                    sequence = blocking,
                    "an event held its patient too long; letting later ones through"
                );
                map.remove(key);
                None
            }
            Some((blocking, _)) => Some(*blocking),
            None => None,
        }
    }

    /// True when `sequence` must wait behind an earlier event of `key`.
    fn holds(&self, key: &str, sequence: u64) -> bool {
        self.blocking(key).is_some_and(|b| b != sequence)
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
async fn settle<A: DomainActor>(name: &str, addr: &Addr<A>, d: Delivery, p: Prepared) -> bool {
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
async fn apply_in_place<A: DomainActor>(name: &str, addr: &Addr<A>, apply: Apply) -> Result<(), ApplyError> {
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

#[cfg(test)]
mod filter_tests {
    use crate::{billing, imaging, orders, registration, results};

    /// True when the concrete `subject` lies under `filter` (an exact subject
    /// or a prefix ending in `>`: the only shapes the services use).
    fn under(filter: &str, subject: &str) -> bool {
        match filter.strip_suffix('>') {
            Some(prefix) => subject.starts_with(prefix) && subject.len() > prefix.len(),
            None => subject == filter,
        }
    }

    #[test]
    fn every_service_filter_takes_every_kind_it_applies() {
        let services = [
            (registration::feed_spec(), registration::KINDS.to_vec()),
            (orders::feed_spec(), orders::KINDS.to_vec()),
            (results::feed_spec(), results::KINDS.to_vec()),
            (billing::feed_spec(), billing::KINDS.to_vec()),
            (imaging::feed_spec(), imaging::KINDS.to_vec()),
        ];
        for (spec, kinds) in services {
            assert_eq!(spec.kinds, kinds, "{}", spec.name);
            for kind in kinds {
                let subject = kind.subject().to_string();
                assert!(
                    under(&spec.filter, &subject),
                    "{}: filter {} misses {subject}",
                    spec.name,
                    spec.filter
                );
            }
        }
        // Narrowed where one filter can say it (one filter per consumer before NATS 2.10).
        assert_eq!(results::feed_spec().filter, "medbus.events.result.>");
        assert_eq!(imaging::feed_spec().filter, "medbus.events.imaging.instance-stored");
    }
}
