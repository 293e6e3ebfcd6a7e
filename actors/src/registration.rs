//! The registration service: patients and encounters from ADT events.
//!
//! `patient.registered|updated` upsert the patient; `encounter.*` upsert the
//! patient as sent with the visit and the encounter with its new status;
//! `patient.merged` upserts the survivor and folds the merged records into it.
//! Each event is one store transaction (domain rows + event log); an event
//! already in the log changes nothing, so redeliveries and resends are harmless.

use std::panic::AssertUnwindSafe;

use actix::{Actor, ActorContext, ActorFutureExt, Context, Handler, ResponseActFuture, Supervised, WrapFuture};
use futures::FutureExt;
use medbus_bus::canonical::{CanonicalEvent, EventBody, EventKind, Patient};
use medbus_bus::store::registration::RegistrationChange;
use medbus_bus::store::SharedStore;

use crate::faults::FaultInjector;
use crate::feed::{Apply, ApplyError, FeedSpec};

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
        let work = async move {
            faults.maybe_panic("registration");
            let changes = changes_for(&msg.event)?;
            Ok(store.registration().apply_registration(&msg.record, &changes).await?)
        };
        // A panic must not take the event with it: stop, so the supervisor
        // restarts the actor, and answer so the feed naks (the event comes again).
        Box::pin(
            AssertUnwindSafe(work)
                .catch_unwind()
                .into_actor(self)
                .map(|result, _act, ctx| match result {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::error!(service = "registration", "panicked while applying an event");
                        ctx.stop();
                        Err(ApplyError::Panicked)
                    }
                }),
        )
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
    }
}
