//! The billing service: charges sent as DFT, charges derived from completed
//! orders and final results through the charge master, and reversals when an
//! order is cancelled or its test changes (see [`rules`]).
//!
//! Billing reads the store before deciding, so an event is decided only
//! after every earlier event about the same order is committed. In a batch,
//! events are decided in order and committed together until one concerns an
//! order (by any of its numbers) that a pending one changed; the pending
//! ones are committed first. Events that change nothing (most order updates,
//! preliminary results) thus share one transaction, and an event is never
//! decided on a state that misses an earlier change to its order. An event it
//! already applied is skipped by its ledger, so a batch that failed halfway
//! and is retried one by one changes nothing twice. Derived charges and reversals raise `billing.charge-posted` and
//! `billing.charge-reversed`, written to the outbox with the charge and
//! published after the commit.

pub mod charge_master;
pub mod rules;

use std::collections::HashSet;
use std::sync::Arc;

use actix::{Actor, AsyncContext, Context, Handler, ResponseActFuture, Supervised, WrapFuture};
use medbus_bus::backbone::SharedBackbone;
use medbus_bus::canonical::EventKind;
use medbus_bus::store::clinical::ClinicalChange;
use medbus_bus::store::{EventRecord, SharedStore};

use self::charge_master::ChargeMaster;
use crate::clinical;
use crate::faults::FaultInjector;
use crate::feed::{self, Apply, ApplyBatch, ApplyError, FeedSpec};
use crate::outbox;

/// The service name: its durable consumer, its ledger and its outbox.
pub const SERVICE: &str = "billing";

/// The event kinds this service applies.
pub const KINDS: [EventKind; 6] = [
    EventKind::ChargePosted,
    EventKind::ChargeReversed,
    EventKind::OrderCompleted,
    EventKind::OrderCancelled,
    EventKind::OrderUpdated,
    EventKind::ResultReported,
];

/// Its feed: durable consumer `billing` on every event, keeping the kinds above.
pub fn feed_spec() -> FeedSpec {
    FeedSpec {
        name: SERVICE.into(),
        filter: "medbus.events.>".into(),
        kinds: KINDS.to_vec(),
        lanes: 16,
        linger: std::time::Duration::ZERO,
    }
}

/// The actor.
pub struct BillingActor {
    store: SharedStore,
    backbone: SharedBackbone,
    master: Arc<ChargeMaster>,
    faults: FaultInjector,
}

impl BillingActor {
    /// A service writing to `store` and publishing the charges it derives or
    /// reverses to `backbone`, pricing by `master`; `faults` is the test switch.
    pub fn new(store: SharedStore, backbone: SharedBackbone, master: ChargeMaster, faults: FaultInjector) -> Self {
        BillingActor {
            store,
            backbone,
            master: Arc::new(master),
            faults,
        }
    }

    fn parts(&self) -> Parts {
        Parts {
            store: self.store.clone(),
            backbone: self.backbone.clone(),
            master: self.master.clone(),
        }
    }
}

/// What a handler's future needs of the actor.
struct Parts {
    store: SharedStore,
    backbone: SharedBackbone,
    master: Arc<ChargeMaster>,
}

impl Parts {
    /// Decides and commits one event in its own transaction.
    async fn apply(&self, Apply { event, record }: Apply) -> Result<bool, ApplyError> {
        let changes = rules::changes_for(self.store.clinical(), &self.master, &event, &record)
            .await
            .map_err(clinical::naming(&record))?;
        clinical::apply_one(&self.store, SERVICE, record, changes).await
    }

    /// Commits decided events in one transaction; one flag each.
    async fn commit(&self, group: Vec<(EventRecord, Vec<ClinicalChange>)>) -> Result<Vec<bool>, ApplyError> {
        if group.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.store.clinical().apply_clinical(SERVICE, &group).await?)
    }

    async fn publish(&self) -> Result<(), ApplyError> {
        outbox::publish_pending(&self.store, &self.backbone, SERVICE).await?;
        Ok(())
    }
}

impl Actor for BillingActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let (store, backbone) = (self.store.clone(), self.backbone.clone());
        ctx.spawn(outbox::publish_at_start(store, backbone, SERVICE).into_actor(self));
    }
}

impl Supervised for BillingActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(service = SERVICE, "restarting after a failure");
        metrics::counter!("medbus_service_restarts_total", "service" => SERVICE).increment(1);
    }
}

impl Handler<Apply> for BillingActor {
    type Result = ResponseActFuture<Self, Result<bool, ApplyError>>;

    fn handle(&mut self, msg: Apply, _ctx: &mut Self::Context) -> Self::Result {
        let parts = self.parts();
        let faults = self.faults.clone();
        feed::guarded(SERVICE, self, async move {
            faults.maybe_panic(SERVICE);
            let applied = parts.apply(msg).await?;
            // Also when already applied: a retry after a failed publish publishes now.
            parts.publish().await?;
            Ok(applied)
        })
    }
}

impl Handler<ApplyBatch> for BillingActor {
    type Result = ResponseActFuture<Self, Result<Vec<bool>, ApplyError>>;

    fn handle(&mut self, msg: ApplyBatch, _ctx: &mut Self::Context) -> Self::Result {
        let parts = self.parts();
        let faults = self.faults.clone();
        feed::guarded(SERVICE, self, async move {
            faults.maybe_panic(SERVICE);
            let mut flags = Vec::with_capacity(msg.items.len());
            let mut group = Vec::new();
            let mut changed: HashSet<String> = HashSet::new();
            for Apply { event, record } in msg.items {
                let tokens = rules::order_tokens_of(&event);
                if tokens.iter().any(|t| changed.contains(t)) {
                    // Its decision must see what the pending events changed.
                    flags.extend(parts.commit(std::mem::take(&mut group)).await?);
                    changed.clear();
                }
                let changes = rules::changes_for(parts.store.clinical(), &parts.master, &event, &record)
                    .await
                    .map_err(clinical::naming(&record))?;
                if changes.iter().any(|c| matches!(c, ClinicalChange::Upsert(_))) {
                    changed.extend(tokens);
                    for c in &changes {
                        if let ClinicalChange::Upsert(w) = c {
                            changed.extend(w.order_tokens.iter().cloned());
                        }
                    }
                }
                group.push((record, changes));
            }
            let committed = parts.commit(group).await;
            // What committed still goes out, also when the last group failed.
            let published = parts.publish().await;
            flags.extend(committed?);
            published?;
            Ok(flags)
        })
    }
}
