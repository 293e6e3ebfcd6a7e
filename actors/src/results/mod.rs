//! The results service: reports (DiagnosticReport) and their observations
//! from `result.reported` and `result.corrected`, and `result.critical` for
//! each critical value.
//!
//! The report and each observation are upserted under their natural keys and
//! name their order by the tokens of their basedOn identifiers, so a result
//! that came before its order is linked when the order is stored. A
//! correction carries the same observation keys, so it replaces the value it
//! corrects (version + 1). A critical value ([`critical::judge`]) raises one
//! `result.critical`, written to the outbox in the same transaction and
//! published after the commit; its id is derived from the cause event and the
//! observation key, so applying the event again cannot raise a second one.

pub mod critical;

use std::sync::Arc;

use actix::{Actor, AsyncContext, Context, Handler, ResponseActFuture, Supervised, WrapFuture};
use medbus_bus::backbone::SharedBackbone;
use medbus_bus::canonical::{CanonicalEvent, CriticalResultEvent, EventBody, EventKind};
use medbus_bus::store::clinical::ClinicalChange;
use medbus_bus::store::{EventRecord, SharedStore};
use uuid::Uuid;

use self::critical::CriticalLimits;
use crate::clinical::{self, reference_tokens, status_code, tokens, Upsert};
use crate::faults::FaultInjector;
use crate::feed::{self, Apply, ApplyBatch, ApplyError, FeedSpec};
use crate::outbox;

/// The service name: its durable consumer, its ledger and its outbox.
pub const SERVICE: &str = "results";

/// The event kinds this service applies.
pub const KINDS: [EventKind; 2] = [EventKind::ResultReported, EventKind::ResultCorrected];

/// Its feed: durable consumer `results` on the result events only (every
/// other event would be delivered, skipped and acked: backbone work for nothing).
pub fn feed_spec() -> FeedSpec {
    FeedSpec {
        name: SERVICE.into(),
        filter: "medbus.events.result.>".into(),
        kinds: KINDS.to_vec(),
        lanes: 16,
        linger: std::time::Duration::ZERO,
    }
}

/// The actor.
pub struct ResultsActor {
    store: SharedStore,
    backbone: SharedBackbone,
    limits: Arc<CriticalLimits>,
    faults: FaultInjector,
}

impl ResultsActor {
    /// A service writing to `store` and publishing its critical-value events
    /// to `backbone`, judging values by `limits`; `faults` is the test switch.
    pub fn new(store: SharedStore, backbone: SharedBackbone, limits: CriticalLimits, faults: FaultInjector) -> Self {
        ResultsActor {
            store,
            backbone,
            limits: Arc::new(limits),
            faults,
        }
    }
}

impl Actor for ResultsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let (store, backbone) = (self.store.clone(), self.backbone.clone());
        ctx.spawn(outbox::publish_at_start(store, backbone, SERVICE).into_actor(self));
    }
}

impl Supervised for ResultsActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(service = SERVICE, "restarting after a failure");
        metrics::counter!("medbus_service_restarts_total", "service" => SERVICE).increment(1);
    }
}

impl Handler<Apply> for ResultsActor {
    type Result = ResponseActFuture<Self, Result<bool, ApplyError>>;

    fn handle(&mut self, msg: Apply, _ctx: &mut Self::Context) -> Self::Result {
        let (store, backbone, limits, faults) = self.parts();
        feed::guarded(SERVICE, self, async move {
            faults.maybe_panic(SERVICE);
            let changes = changes_for(&msg.event, &msg.record, &limits)?;
            let applied = clinical::apply_one(&store, SERVICE, msg.record, changes).await?;
            // Also when already applied: a retry after a failed publish publishes now.
            outbox::publish_pending(&store, &backbone, SERVICE).await?;
            Ok(applied)
        })
    }
}

impl Handler<ApplyBatch> for ResultsActor {
    type Result = ResponseActFuture<Self, Result<Vec<bool>, ApplyError>>;

    fn handle(&mut self, msg: ApplyBatch, _ctx: &mut Self::Context) -> Self::Result {
        let (store, backbone, limits, faults) = self.parts();
        feed::guarded(SERVICE, self, async move {
            faults.maybe_panic(SERVICE);
            let mut batch = Vec::with_capacity(msg.items.len());
            for Apply { event, record } in msg.items {
                let changes = changes_for(&event, &record, &limits).map_err(clinical::naming(&record))?;
                batch.push((record, changes));
            }
            let applied = store.clinical().apply_clinical(SERVICE, &batch).await?;
            outbox::publish_pending(&store, &backbone, SERVICE).await?;
            Ok(applied)
        })
    }
}

impl ResultsActor {
    fn parts(&self) -> (SharedStore, SharedBackbone, Arc<CriticalLimits>, FaultInjector) {
        (
            self.store.clone(),
            self.backbone.clone(),
            self.limits.clone(),
            self.faults.clone(),
        )
    }
}

/// The store changes one event makes: the report, each observation, and a
/// `result.critical` follow-up for each critical value.
pub fn changes_for(
    event: &CanonicalEvent,
    record: &EventRecord,
    limits: &CriticalLimits,
) -> Result<Vec<ClinicalChange>, ApplyError> {
    let EventBody::Result(body) = event.body() else {
        // Other events belong to other services (KINDS excludes them).
        return Err(ApplyError::BadInput(format!(
            "{} is not a result event",
            event.kind().as_str()
        )));
    };
    let report = &body.report;
    let patient_key = event.patient_key();
    let report_orders = reference_tokens(&report.based_on);
    let mut changes = Vec::with_capacity(1 + body.observations.len());
    changes.push(
        Upsert {
            resource_type: "DiagnosticReport",
            key: report
                .key()
                .ok_or_else(|| ApplyError::BadInput("report without a filler or placer number".into()))?,
            patient_key: patient_key.clone(),
            status: status_code(&report.status),
            identifiers: tokens(&report.identifier),
            order_tokens: report_orders.clone(),
            resource: report,
        }
        .change()?,
    );
    for (n, obs) in body.observations.iter().enumerate() {
        let key = obs
            .key()
            .ok_or_else(|| ApplyError::BadInput(format!("observation {} has no identifier", n + 1)))?;
        let own = reference_tokens(&obs.based_on);
        changes.push(
            Upsert {
                resource_type: "Observation",
                key: key.clone(),
                patient_key: patient_key.clone(),
                status: status_code(&obs.status),
                identifiers: tokens(&obs.identifier),
                order_tokens: if own.is_empty() { report_orders.clone() } else { own },
                resource: obs,
            }
            .change()?,
        );
        if let Some(reason) = critical::judge(obs, limits) {
            let alert = CriticalResultEvent {
                observation: obs.clone(),
                report: report.clone(),
                reason,
                patient: body.patient.clone(),
                source_message_type: body.source_message_type.clone(),
                occurred: body.occurred.clone(),
            };
            changes.push(clinical::follow_up(
                critical_event_id(record.id, &key),
                record,
                EventKind::ResultCritical,
                &alert,
            )?);
        }
    }
    Ok(changes)
}

/// The id of the `result.critical` that `cause` raises for the observation
/// `key`: the same whenever that event is applied.
pub fn critical_event_id(cause: Uuid, key: &str) -> Uuid {
    Uuid::new_v5(&cause, key.as_bytes())
}
