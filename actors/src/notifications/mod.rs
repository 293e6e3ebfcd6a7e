//! The notifications service: critical results, dead letters and long
//! destination outages become webhook calls and e-mails, by the rules of
//! `[notifications]` (see docs/notifications.md).
//!
//! - `result.critical` events come through the domain feed ([`feed_spec`],
//!   [`NotificationsActor`]): one store transaction records the notifications
//!   of a batch (with the event in the service's applied ledger, so a
//!   redelivered event records and sends nothing again), then delivery
//!   starts at once in its own task — no sweep between the event and the call.
//! - Dead letters ([`run_dead_letters`]) and destination outages
//!   ([`run_destination_watch`]) come from their own durable consumers.
//! - [`run_sweeps`] escalates notifications nobody acknowledged and resumes
//!   ones a crash left pending; [`acknowledge`] serves the HTTP endpoint.
//!
//! Files: `rules` (what fires what), `throttle`, `record` (the Communication
//! shape), `ledger` (record changes, acknowledge), `service` ([`Notifier`],
//! delivery with retries), `webhook`, `smtp`, `escalation`, `dead_letters`,
//! `destinations`.

mod dead_letters;
mod destinations;
mod escalation;
mod ledger;
pub mod record;
pub mod rules;
mod service;
mod smtp;
mod throttle;
mod webhook;

use std::sync::Arc;

use actix::{Actor, Context, Handler, ResponseActFuture, Supervised};
use chrono::Utc;
use medbus_bus::backbone::{BackboneError, SharedBackbone};
use medbus_bus::canonical::{CanonicalEvent, EventKind};
use medbus_bus::config::BackboneConfig;
use medbus_bus::store::{ClinicalChange, EventRecord, StoreError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::faults::FaultInjector;
use crate::feed::{self, Apply, ApplyBatch, ApplyError, FeedSpec};

pub use dead_letters::run_dead_letters;
pub use destinations::run_destination_watch;
pub use escalation::{run_sweeps, sweep};
pub use ledger::acknowledge;
pub use record::{NotificationRecord, Status};
pub use service::Notifier;

/// The service name: its feed's durable consumer and its applied ledger.
pub const SERVICE: &str = "notifications";
/// Durable consumer of the dead letters.
pub const DEAD_LETTER_CONSUMER: &str = "notifications_dlq";
/// Durable consumer of the destination status events.
pub const DESTINATION_CONSUMER: &str = "notifications_destinations";

/// The event kinds the feed hands to this service.
pub const KINDS: [EventKind; 1] = [EventKind::ResultCritical];

/// Its feed: durable consumer `notifications` on `medbus.events.result.critical`.
pub fn feed_spec() -> FeedSpec {
    FeedSpec {
        name: SERVICE.into(),
        filter: EventKind::ResultCritical.subject().to_string(),
        kinds: KINDS.to_vec(),
        lanes: 4,
        linger: std::time::Duration::ZERO,
    }
}

/// Why the notifications service could not do something.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The service cannot be set up (no runtime, no HTTP client).
    #[error("notifications: {0}")]
    Setup(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why one delivery attempt failed.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// What went wrong, for the record (no PHI: status lines and transport errors).
    pub message: String,
    /// True when a later attempt may succeed.
    pub retryable: bool,
}

/// Runs the dead-letter consumer, the destination watch and the sweep until
/// shutdown (the feed is run apart, with [`feed::run`] and [`feed_spec`]).
pub async fn run_background(
    notifier: Arc<Notifier>,
    backbone: SharedBackbone,
    cfg: BackboneConfig,
    shutdown: CancellationToken,
) -> Result<(), BackboneError> {
    let (dlq, watch, ()) = tokio::join!(
        run_dead_letters(notifier.clone(), backbone.clone(), cfg.clone(), shutdown.clone()),
        run_destination_watch(notifier.clone(), backbone, cfg, shutdown.clone()),
        run_sweeps(notifier, shutdown),
    );
    dlq.and(watch)
}

/// The actor the feed drives with `result.critical` events.
pub struct NotificationsActor {
    notifier: Arc<Notifier>,
    faults: FaultInjector,
}

impl NotificationsActor {
    /// The service over `notifier`; `faults` is the test switch (default: never).
    pub fn new(notifier: Arc<Notifier>, faults: FaultInjector) -> Self {
        NotificationsActor { notifier, faults }
    }
}

impl Actor for NotificationsActor {
    type Context = Context<Self>;
}

impl Supervised for NotificationsActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(service = SERVICE, "restarting after a failure");
        metrics::counter!("medbus_service_restarts_total", "service" => SERVICE).increment(1);
    }
}

impl Handler<Apply> for NotificationsActor {
    type Result = ResponseActFuture<Self, Result<bool, ApplyError>>;

    fn handle(&mut self, msg: Apply, _ctx: &mut Self::Context) -> Self::Result {
        let (notifier, faults) = (self.notifier.clone(), self.faults.clone());
        feed::guarded(SERVICE, self, async move {
            faults.maybe_panic(SERVICE);
            let mut flags = apply_events(&notifier, vec![msg]).await?;
            Ok(flags.pop().unwrap_or(false))
        })
    }
}

impl Handler<ApplyBatch> for NotificationsActor {
    type Result = ResponseActFuture<Self, Result<Vec<bool>, ApplyError>>;

    fn handle(&mut self, msg: ApplyBatch, _ctx: &mut Self::Context) -> Self::Result {
        let (notifier, faults) = (self.notifier.clone(), self.faults.clone());
        feed::guarded(SERVICE, self, async move {
            faults.maybe_panic(SERVICE);
            apply_events(&notifier, msg.items).await
        })
    }
}

/// Records the notifications of `items` in one transaction (with each event
/// in the applied ledger), then starts delivering those of the events that
/// were new. One flag per event: false when it was applied before.
async fn apply_events(notifier: &Arc<Notifier>, items: Vec<Apply>) -> Result<Vec<bool>, ApplyError> {
    let store = notifier.store().clone();
    let (flags, sends) = {
        let _guard = notifier.decision_lock().await;
        let mut throttle = throttle::Throttle::new();
        let mut batch: Vec<(EventRecord, Vec<ClinicalChange>)> = Vec::with_capacity(items.len());
        let mut sends: Vec<Vec<Uuid>> = Vec::with_capacity(items.len());
        let now = Utc::now();
        for Apply { event, record } in items {
            let CanonicalEvent::ResultCritical(body) = &event else {
                return Err(ApplyError::BadInput(format!(
                    "event {}: {} is not a notifications event",
                    record.id,
                    event.kind().as_str()
                )));
            };
            let occ = rules::Occurrence::critical(&record.id.to_string(), body);
            let mut changes = Vec::new();
            let mut ids = Vec::new();
            for mut rec in rules::plan(notifier.config(), &occ, None, now) {
                let token = throttle.decide(&*store, notifier.config(), &mut rec).await?;
                if rec.status == Status::Pending {
                    ids.push(rec.id);
                }
                changes.push(ClinicalChange::Upsert(rec.to_write(token)));
            }
            batch.push((record, changes));
            sends.push(ids);
        }
        let flags = store.clinical().apply_clinical(SERVICE, &batch).await?;
        (flags, sends)
    };
    // Only after the commit, and only for events new to the ledger: a
    // redelivery sends nothing (a crash before this is the sweep's to resume).
    for (applied, ids) in flags.iter().zip(sends) {
        if *applied {
            for id in ids {
                notifier.spawn_delivery(id);
            }
        }
    }
    Ok(flags)
}
