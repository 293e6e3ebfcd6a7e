//! The orders service: orders (ServiceRequest) and appointments from
//! `order.*` and `appointment.*` events.
//!
//! Each event upserts the resource under its natural key (placer number
//! first), with its FHIR status and every identifier token, so a later event
//! about the same order replaces its state and results or charges that named
//! it by placer or filler number are linked to it (the store's late link).
//! An accession number (`ACSN`) is indexed under `urn:medbus:accession` too,
//! so an imaging study that names the order by accession links to it. That
//! token has no issuer, so two departments reusing an accession number for
//! different patients share it: the store links a study (or result, or
//! charge) to an order only when their patient keys agree (equal, or the same
//! value where one has no issuer) or either is unknown, so another patient's
//! order is never linked. Patient keys are
//! those the events name, not resolved through merges: after a merge, a study
//! under the surviving key is linked only once the order is stored under it
//! too (see `medbus_bus::store::clinical`).
//! A batch of events is one store transaction; an event this service already
//! applied changes nothing, so redeliveries and resends are harmless.

use actix::{Actor, Context, Handler, ResponseActFuture, Supervised};
use medbus_bus::canonical::{CanonicalEvent, EventBody, EventKind, Identifier, ImagingStudy};
use medbus_bus::store::clinical::ClinicalChange;
use medbus_bus::store::SharedStore;

use crate::clinical::{self, status_code, tokens, Upsert};
use crate::faults::FaultInjector;
use crate::feed::{self, Apply, ApplyBatch, ApplyError, FeedSpec};

/// The service name: its durable consumer, its ledger and its log lines.
pub const SERVICE: &str = "orders";

/// The event kinds this service applies.
pub const KINDS: [EventKind; 8] = [
    EventKind::OrderPlaced,
    EventKind::OrderUpdated,
    EventKind::OrderCancelled,
    EventKind::OrderCompleted,
    EventKind::AppointmentBooked,
    EventKind::AppointmentRescheduled,
    EventKind::AppointmentCancelled,
    EventKind::AppointmentNoshow,
];

/// Its feed: durable consumer `orders` on every event, keeping the kinds above.
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
pub struct OrdersActor {
    store: SharedStore,
    faults: FaultInjector,
}

impl OrdersActor {
    /// A service writing to `store`; `faults` is the test switch (default: never).
    pub fn new(store: SharedStore, faults: FaultInjector) -> Self {
        OrdersActor { store, faults }
    }
}

impl Actor for OrdersActor {
    type Context = Context<Self>;
}

impl Supervised for OrdersActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(service = SERVICE, "restarting after a failure");
        metrics::counter!("medbus_service_restarts_total", "service" => SERVICE).increment(1);
    }
}

impl Handler<Apply> for OrdersActor {
    type Result = ResponseActFuture<Self, Result<bool, ApplyError>>;

    fn handle(&mut self, msg: Apply, _ctx: &mut Self::Context) -> Self::Result {
        let store = self.store.clone();
        let faults = self.faults.clone();
        feed::guarded(SERVICE, self, async move {
            faults.maybe_panic(SERVICE);
            let changes = changes_for(&msg.event)?;
            clinical::apply_one(&store, SERVICE, msg.record, changes).await
        })
    }
}

impl Handler<ApplyBatch> for OrdersActor {
    type Result = ResponseActFuture<Self, Result<Vec<bool>, ApplyError>>;

    fn handle(&mut self, msg: ApplyBatch, _ctx: &mut Self::Context) -> Self::Result {
        let store = self.store.clone();
        let faults = self.faults.clone();
        feed::guarded(SERVICE, self, async move {
            faults.maybe_panic(SERVICE);
            let mut batch = Vec::with_capacity(msg.items.len());
            for Apply { event, record } in msg.items {
                let changes = changes_for(&event).map_err(clinical::naming(&record))?;
                batch.push((record, changes));
            }
            Ok(store.clinical().apply_clinical(SERVICE, &batch).await?)
        })
    }
}

/// An order's identifier tokens, and for each accession number (type `ACSN`)
/// also [`ImagingStudy::accession_token`]: a study names its order by
/// accession alone (the modality knows no issuer), so the order must be
/// found by it whatever system the RIS or EMR gave the number.
fn order_tokens(identifiers: &[Identifier]) -> Vec<String> {
    let mut out = tokens(identifiers);
    for i in identifiers.iter().filter(|i| i.has_type("ACSN")) {
        if let Some(token) = i.value.as_deref().map(ImagingStudy::accession_token) {
            if !out.contains(&token) {
                out.push(token);
            }
        }
    }
    out
}

/// The store changes one event makes: one upsert of its order or appointment.
pub fn changes_for(event: &CanonicalEvent) -> Result<Vec<ClinicalChange>, ApplyError> {
    let patient_key = event.patient_key();
    let change = match event.body() {
        EventBody::Order(b) => {
            let sr = &b.service_request;
            Upsert {
                resource_type: "ServiceRequest",
                key: sr
                    .key()
                    .ok_or_else(|| ApplyError::BadInput("order without a placer or filler number".into()))?,
                patient_key,
                status: status_code(&sr.status),
                identifiers: order_tokens(&sr.identifier),
                order_tokens: Vec::new(),
                resource: sr,
            }
            .change()?
        }
        EventBody::Appointment(b) => {
            let a = &b.appointment;
            Upsert {
                resource_type: "Appointment",
                key: a
                    .key()
                    .ok_or_else(|| ApplyError::BadInput("appointment without a placer or filler id".into()))?,
                patient_key,
                status: status_code(&a.status),
                identifiers: tokens(&a.identifier),
                order_tokens: Vec::new(),
                resource: a,
            }
            .change()?
        }
        // Other events belong to other services (KINDS excludes them).
        _ => {
            return Err(ApplyError::BadInput(format!(
                "{} is not an order or appointment event",
                event.kind().as_str()
            )))
        }
    };
    Ok(vec![change])
}

#[cfg(test)]
mod tests {
    use medbus_bus::canonical::{Identifier, ImagingStudy};

    #[test]
    fn an_accession_is_indexed_under_the_accession_system_too() {
        let placer = Identifier {
            system: Some("urn:medbus:authority:RIS".into()),
            value: Some("PL1".into()),
            ..Identifier::default()
        };
        let issued = ImagingStudy::accession_identifier("ACC1", Some("urn:oid:1.2.3"));
        let ours = ImagingStudy::accession_identifier("ACC2", Some(medbus_bus::canonical::systems::MEDBUS_ACCESSION));
        assert_eq!(
            super::order_tokens(&[placer, issued, ours]),
            [
                "urn:medbus:authority:RIS|PL1",
                "urn:oid:1.2.3|ACC1",
                "urn:medbus:accession|ACC2",
                "urn:medbus:accession|ACC1",
            ]
        );
    }
}
