//! The registration service: patients and encounters from ADT events.
//!
//! `patient.registered|updated` upsert the patient; `encounter.*` upsert the
//! patient as sent with the visit and the encounter with its new status;
//! `patient.merged` upserts the survivor and folds the merged records into it.
//! A batch of events is one store transaction (domain rows + event log, in
//! order), or one event is, when the feed falls back to one by one; an event
//! already in the log changes nothing, so redeliveries and resends are harmless.

use actix::{Actor, Context, Handler, ResponseActFuture, Supervised};
use medbus_bus::canonical::{CanonicalEvent, EventBody, EventKind, Patient};
use medbus_bus::store::registration::RegistrationChange;
use medbus_bus::store::SharedStore;

use crate::faults::FaultInjector;
use crate::feed::{self, Apply, ApplyBatch, ApplyError, FeedSpec};

/// The event kinds this service applies.
pub const KINDS: [EventKind; 9] = [
    EventKind::PatientRegistered,
    EventKind::PatientUpdated,
    EventKind::PatientMerged,
    EventKind::EncounterPlanned,
    EventKind::EncounterStarted,
    EventKind::EncounterUpdated,
    EventKind::EncounterFinished,
    EventKind::EncounterCancelled,
    EventKind::EncounterReopened,
];

/// Its feed: durable consumer `registration` on every event, keeping the kinds above.
pub fn feed_spec() -> FeedSpec {
    FeedSpec {
        name: "registration".into(),
        filter: "medbus.events.>".into(),
        kinds: KINDS.to_vec(),
        lanes: 16,
        linger: std::time::Duration::ZERO,
    }
}

/// The actor.
pub struct RegistrationActor {
    store: SharedStore,
    faults: FaultInjector,
}

impl RegistrationActor {
    /// A service writing to `store`; `faults` is the test switch (default: never).
    pub fn new(store: SharedStore, faults: FaultInjector) -> Self {
        RegistrationActor { store, faults }
    }
}

impl Actor for RegistrationActor {
    type Context = Context<Self>;
}

impl Supervised for RegistrationActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(service = "registration", "restarting after a failure");
        metrics::counter!("medbus_service_restarts_total", "service" => "registration").increment(1);
    }
}

impl Handler<Apply> for RegistrationActor {
    type Result = ResponseActFuture<Self, Result<bool, ApplyError>>;

    fn handle(&mut self, msg: Apply, _ctx: &mut Self::Context) -> Self::Result {
        let store = self.store.clone();
        let faults = self.faults.clone();
        feed::guarded("registration", self, async move {
            faults.maybe_panic("registration");
            let changes = changes_for(&msg.event)?;
            Ok(store.registration().apply_registration(&msg.record, &changes).await?)
        })
    }
}

impl Handler<ApplyBatch> for RegistrationActor {
    type Result = ResponseActFuture<Self, Result<Vec<bool>, ApplyError>>;

    fn handle(&mut self, msg: ApplyBatch, _ctx: &mut Self::Context) -> Self::Result {
        let store = self.store.clone();
        let faults = self.faults.clone();
        feed::guarded("registration", self, async move {
            faults.maybe_panic("registration");
            let mut batch = Vec::with_capacity(msg.items.len());
            for Apply { event, record } in msg.items {
                // Named, so the operator (and the log) can tell which one; the
                // feed then applies the batch event by event.
                let changes = changes_for(&event).map_err(|e| match e {
                    ApplyError::BadInput(why) => ApplyError::BadInput(format!("event {}: {why}", record.id)),
                    other => other,
                })?;
                batch.push((record, changes));
            }
            Ok(store.registration().apply_registrations(&batch).await?)
        })
    }
}

fn patient_change(p: &Patient) -> Result<(String, RegistrationChange), ApplyError> {
    let key = p
        .key()
        .ok_or_else(|| ApplyError::BadInput("patient without an identifier value".into()))?;
    let identifiers = p
        .identifier
        .iter()
        .filter_map(|i| i.value.clone().map(|v| (i.system.clone(), v)))
        .collect();
    let resource = serde_json::to_value(p).map_err(|e| ApplyError::BadInput(e.to_string()))?;
    Ok((
        key.clone(),
        RegistrationChange::UpsertPatient {
            key,
            identifiers,
            resource,
        },
    ))
}

/// The store changes one event makes, in order.
pub fn changes_for(event: &CanonicalEvent) -> Result<Vec<RegistrationChange>, ApplyError> {
    match event.body() {
        EventBody::Patient(b) => Ok(vec![patient_change(&b.patient)?.1]),
        EventBody::Merge(b) => {
            let (surviving, upsert) = patient_change(&b.surviving)?;
            let merged = b
                .merged
                .iter()
                .filter_map(|i| i.token())
                .filter(|k| *k != surviving)
                .collect();
            Ok(vec![upsert, RegistrationChange::MergePatients { surviving, merged }])
        }
        EventBody::Encounter(b) => {
            let (patient_key, upsert) = patient_change(&b.patient)?;
            let key = b
                .encounter
                .key()
                .ok_or_else(|| ApplyError::BadInput("encounter without a visit identifier".into()))?;
            let status = serde_json::to_value(b.encounter.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "unknown".into());
            let resource = serde_json::to_value(&b.encounter).map_err(|e| ApplyError::BadInput(e.to_string()))?;
            Ok(vec![
                upsert,
                RegistrationChange::UpsertEncounter {
                    key,
                    patient_key,
                    status,
                    resource,
                },
            ])
        }
        // Order, result, appointment and billing events belong to other services (KINDS excludes them).
        _ => Err(ApplyError::BadInput(format!(
            "{} is not a registration event",
            event.kind().as_str()
        ))),
    }
}
