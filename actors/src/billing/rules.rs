//! What billing does with each event. It reads the store before deciding
//! (is this charge already posted? which charges belong to this order?), so
//! its caller applies one event per transaction.
//!
//! - `billing.charge-posted|charge-reversed` (DFT): the charge as sent.
//! - `order.completed`, and `result.reported` with a final report: a derived
//!   charge `derived|<order token>|<code>` from the charge master, posted once
//!   per order and code whichever of the two comes first.
//! - `order.cancelled`: every billable charge of the order is reversed.
//! - `order.updated` whose code no longer matches a derived charge of the
//!   order: every billable charge of the order is reversed (a changed test is
//!   a different charge; the new one is derived when it completes).
//! - The department's own charge wins: no charge is derived for an order that
//!   already has a sent (DFT) charge with the same CPT code, and a sent charge
//!   arriving later reverses a derived one with its CPT code. So a site whose
//!   lab sends DFTs for some tests is not charged twice for them.

use medbus_bus::canonical::{systems, Decimal};
use medbus_bus::canonical::{
    CanonicalEvent, ChargeEvent, ChargeItem, ChargeItemStatus, ChargeOccurrence, CodeableConcept, Coding, DateTime,
    DiagnosticReportStatus, EventBody, EventKind, Identifier, Money, OrderEvent, Patient, Quantity, Reference,
    ResultEvent, ServiceRequest,
};
use medbus_bus::store::clinical::{ClinicalChange, ClinicalStore, ResourceRow};
use medbus_bus::store::{EventRecord, StoreError};
use uuid::Uuid;

use super::charge_master::{ChargeEntry, ChargeMaster};
use crate::clinical::{self, reference_tokens, status_code, tokens, Upsert};
use crate::feed::ApplyError;

/// The system of a derived charge's identifier: its token is then its key.
pub const DERIVED: &str = "derived";

/// Namespace of billing's follow-up event ids (UUID v5 of what raised them).
const FOLLOW_UP_NS: Uuid = Uuid::from_u128(0x6d65_6462_7573_4000_8000_6269_6c6c_696e);

/// The key of the charge derived for the order known by `order_token` and the charge-master `code`.
pub fn derived_key(order_token: &str, code: &str) -> String {
    format!("{DERIVED}|{order_token}|{code}")
}

/// The event that is being applied, and what follow-ups copy from it.
struct Cause<'a> {
    record: &'a EventRecord,
    patient: &'a Patient,
    source_message_type: &'a Option<String>,
    occurred: &'a Option<DateTime>,
}

impl Cause<'_> {
    fn charge_event(&self, kind: EventKind, id: Uuid, item: ChargeItem) -> Result<ClinicalChange, ApplyError> {
        let body = ChargeEvent {
            charge_item: item,
            patient: self.patient.clone(),
            source_message_type: self.source_message_type.clone(),
            occurred: self.occurred.clone(),
        };
        clinical::follow_up(id, self.record, kind, &body)
    }
}

/// The store changes one event makes, after reading what it needs.
pub async fn changes_for(
    store: &dyn ClinicalStore,
    master: &ChargeMaster,
    event: &CanonicalEvent,
    record: &EventRecord,
) -> Result<Vec<ClinicalChange>, ApplyError> {
    match (event.kind(), event.body()) {
        (EventKind::ChargePosted | EventKind::ChargeReversed, EventBody::Charge(b)) => {
            let mut changes = vec![sent_charge(&b.charge_item, event.patient_key())?];
            if b.charge_item.status == ChargeItemStatus::Billable {
                let cause = Cause {
                    record,
                    patient: &b.patient,
                    source_message_type: &b.source_message_type,
                    occurred: &b.occurred,
                };
                changes.extend(supersede_derived(store, &b.charge_item, &cause).await?);
            }
            Ok(changes)
        }
        (EventKind::OrderCompleted, EventBody::Order(b)) => order_completed(store, master, b, record).await,
        (EventKind::OrderCancelled, EventBody::Order(b)) => {
            let cause = order_cause(b, record);
            let rows = charges_of_order(store, master, &b.service_request).await?;
            reverse(rows, &cause)
        }
        (EventKind::OrderUpdated, EventBody::Order(b)) => order_updated(store, master, b, record).await,
        (EventKind::ResultReported, EventBody::Result(b)) => result_reported(store, master, b, record).await,
        // Other events belong to other services (KINDS excludes them).
        (kind, _) => Err(ApplyError::BadInput(format!(
            "{} is not a billing event",
            kind.as_str()
        ))),
    }
}

/// The order tokens an event's decision reads and writes charges under: two
/// events with none in common can be decided against the same store state
/// and committed together.
pub fn order_tokens_of(event: &CanonicalEvent) -> Vec<String> {
    match event.body() {
        EventBody::Order(b) => tokens(&b.service_request.identifier),
        EventBody::Result(b) => reference_tokens(&b.report.based_on),
        EventBody::Charge(b) => {
            let mut t = reference_tokens(&b.charge_item.supporting_information);
            t.extend(b.charge_item.key());
            t
        }
        _ => Vec::new(),
    }
}

/// A charge as the source sent it (DFT), with its status.
fn sent_charge(item: &ChargeItem, patient_key: Option<String>) -> Result<ClinicalChange, ApplyError> {
    Upsert {
        resource_type: "ChargeItem",
        key: item
            .key()
            .ok_or_else(|| ApplyError::BadInput("charge without a transaction id".into()))?,
        patient_key,
        status: status_code(&item.status),
        identifiers: tokens(&item.identifier),
        order_tokens: reference_tokens(&item.supporting_information),
        resource: item,
    }
    .change()
}

fn order_cause<'a>(b: &'a OrderEvent, record: &'a EventRecord) -> Cause<'a> {
    Cause {
        record,
        patient: &b.patient,
        source_message_type: &b.source_message_type,
        occurred: &b.occurred,
    }
}

fn order_key(sr: &ServiceRequest) -> Result<String, ApplyError> {
    sr.key()
        .ok_or_else(|| ApplyError::BadInput("order without a placer or filler number".into()))
}

/// What a derived charge is for.
struct Derivation<'a> {
    /// The order's key (placer token first), the one in the charge key.
    order_key: String,
    /// Every token the order is known by: a charge under any of them is this charge.
    order_tokens: Vec<String>,
    /// The order, by each of its identifiers.
    order_refs: Vec<Reference>,
    coding: &'a Coding,
    entry: &'a ChargeEntry,
    subject: Reference,
    context: Option<Reference>,
}

async fn order_completed(
    store: &dyn ClinicalStore,
    master: &ChargeMaster,
    b: &OrderEvent,
    record: &EventRecord,
) -> Result<Vec<ClinicalChange>, ApplyError> {
    let sr = &b.service_request;
    let key = order_key(sr)?;
    let Some((coding, entry)) = sr.code.as_ref().and_then(|c| master.find(c)) else {
        return Ok(Vec::new());
    };
    let d = Derivation {
        order_key: key,
        order_tokens: tokens(&sr.identifier),
        order_refs: sr
            .identifier
            .iter()
            .filter(|i| i.value.is_some())
            .map(ServiceRequest::reference_by)
            .collect(),
        coding,
        entry,
        subject: sr.subject.clone(),
        context: sr.encounter.clone(),
    };
    post_derived(store, d, &order_cause(b, record)).await
}

async fn result_reported(
    store: &dyn ClinicalStore,
    master: &ChargeMaster,
    b: &ResultEvent,
    record: &EventRecord,
) -> Result<Vec<ClinicalChange>, ApplyError> {
    let report = &b.report;
    if report.status != DiagnosticReportStatus::Final {
        return Ok(Vec::new());
    }
    let Some((coding, entry)) = master.find(&report.code) else {
        return Ok(Vec::new());
    };
    let mut order_tokens = reference_tokens(&report.based_on);
    let Some(first) = order_tokens.first().cloned() else {
        // Without an order number the charge could not be matched to its order's.
        tracing::debug!(event = %record.id, "final result without an order: no derived charge");
        return Ok(Vec::new());
    };
    let mut key = first;
    if let Some(order) = stored_order(store, &order_tokens).await? {
        if matches!(order.status.as_str(), "revoked" | "entered-in-error") {
            return Ok(Vec::new());
        }
        // Known under other numbers too: a charge derived under any of them counts.
        if let Ok(sr) = serde_json::from_value::<ServiceRequest>(order.resource.clone()) {
            order_tokens.extend(tokens(&sr.identifier));
        }
        key = order.key;
    }
    let d = Derivation {
        order_key: key,
        order_tokens,
        order_refs: report.based_on.clone(),
        coding,
        entry,
        subject: report.subject.clone().unwrap_or_else(|| b.patient.reference()),
        context: report.encounter.clone(),
    };
    let cause = Cause {
        record,
        patient: &b.patient,
        source_message_type: &b.source_message_type,
        occurred: &b.occurred,
    };
    post_derived(store, d, &cause).await
}

/// The stored order one of `tokens` names.
async fn stored_order(store: &dyn ClinicalStore, tokens: &[String]) -> Result<Option<ResourceRow>, StoreError> {
    for t in tokens {
        if let Some(row) = store.find_by_identifier("ServiceRequest", t).await? {
            return Ok(Some(row));
        }
    }
    Ok(None)
}

/// The CPT code of a stored charge, if it has one.
fn cpt_of(resource: &serde_json::Value) -> Option<&str> {
    resource["code"]["coding"]
        .as_array()?
        .iter()
        .find(|c| c["system"] == systems::CPT)
        .and_then(|c| c["code"].as_str())
}

fn is_derived(row: &ResourceRow) -> bool {
    row.key.starts_with(&format!("{DERIVED}|"))
}

/// A sent charge (DFT) for an order reverses the billable derived charges of
/// that order with its CPT code: the department's charge wins.
async fn supersede_derived(
    store: &dyn ClinicalStore,
    item: &ChargeItem,
    cause: &Cause<'_>,
) -> Result<Vec<ClinicalChange>, ApplyError> {
    let Some(cpt) = item
        .code
        .coding
        .iter()
        .find(|c| c.system.as_deref() == Some(systems::CPT))
        .and_then(|c| c.code.clone())
    else {
        return Ok(Vec::new());
    };
    let Some(order) = stored_order(store, &reference_tokens(&item.supporting_information)).await? else {
        return Ok(Vec::new());
    };
    let derived: Vec<ResourceRow> = store
        .resources_of_order("ChargeItem", &order.key)
        .await?
        .into_iter()
        .filter(|r| is_derived(r) && cpt_of(&r.resource) == Some(cpt.as_str()))
        .collect();
    reverse(derived, cause)
}

/// Posts the derived charge unless it is stored under any of the order's
/// tokens, or the order already has a sent charge with its CPT code.
async fn post_derived(
    store: &dyn ClinicalStore,
    d: Derivation<'_>,
    cause: &Cause<'_>,
) -> Result<Vec<ClinicalChange>, ApplyError> {
    let code = d.entry.code.as_str();
    for t in d.order_tokens.iter().chain([&d.order_key]) {
        if store.resource("ChargeItem", &derived_key(t, code)).await?.is_some() {
            return Ok(Vec::new());
        }
    }
    if let Some(cpt) = &d.entry.cpt {
        let sent = store.resources_of_order("ChargeItem", &d.order_key).await?;
        let charged = sent
            .iter()
            .any(|r| r.status == "billable" && !is_derived(r) && cpt_of(&r.resource) == Some(cpt.as_str()));
        if charged {
            tracing::debug!(event = %cause.record.id, "the department charged this test already: no derived charge");
            return Ok(Vec::new());
        }
    }
    let key = derived_key(&d.order_key, code);
    let mut coding = d.coding.clone();
    coding.display = coding.display.or_else(|| Some(d.entry.description.clone()));
    let mut concept = CodeableConcept::coded(coding);
    if let Some(cpt) = &d.entry.cpt {
        concept
            .coding
            .push(Coding::new(systems::CPT, cpt.clone(), Some(&d.entry.description)));
    }
    let mut item = ChargeItem::new(ChargeItemStatus::Billable, concept, d.subject);
    item.identifier.push(Identifier {
        system: Some(DERIVED.into()),
        value: Some(format!("{}|{code}", d.order_key)),
        ..Identifier::default()
    });
    item.context = d.context;
    item.occurrence = cause.occurred.clone().map(ChargeOccurrence::DateTime);
    item.quantity = Some(Quantity {
        value: Decimal::new(1.0),
        ..Quantity::default()
    });
    item.price_override = Some(Money {
        value: Some(d.entry.price),
        currency: Some(d.entry.currency.clone()),
    });
    item.supporting_information = d.order_refs;
    let upsert = Upsert {
        resource_type: "ChargeItem",
        key: key.clone(),
        patient_key: cause.record.patient_id.clone(),
        status: status_code(&item.status),
        identifiers: tokens(&item.identifier),
        order_tokens: reference_tokens(&item.supporting_information),
        resource: &item,
    }
    .change()?;
    // From the key alone: posted once per key, so the id is unique, and the
    // same whichever event (or racing process) decided to post it.
    let id = Uuid::new_v5(
        &FOLLOW_UP_NS,
        format!("{}|{key}", EventKind::ChargePosted.as_str()).as_bytes(),
    );
    Ok(vec![upsert, cause.charge_event(EventKind::ChargePosted, id, item)?])
}

/// The charges of an order: those linked to it, and derived ones under any
/// of its numbers that are not linked yet (the orders service may not have
/// stored the order when billing hears of it).
async fn charges_of_order(
    store: &dyn ClinicalStore,
    master: &ChargeMaster,
    sr: &ServiceRequest,
) -> Result<Vec<ResourceRow>, ApplyError> {
    let key = order_key(sr)?;
    let mut rows = store.resources_of_order("ChargeItem", &key).await?;
    if let Some((_, entry)) = sr.code.as_ref().and_then(|c| master.find(c)) {
        for t in tokens(&sr.identifier) {
            let k = derived_key(&t, &entry.code);
            if rows.iter().all(|r| r.key != k) {
                rows.extend(store.resource("ChargeItem", &k).await?);
            }
        }
    }
    Ok(rows)
}

async fn order_updated(
    store: &dyn ClinicalStore,
    master: &ChargeMaster,
    b: &OrderEvent,
    record: &EventRecord,
) -> Result<Vec<ClinicalChange>, ApplyError> {
    // An update without a code did not send it; it did not change it.
    let Some(code) = &b.service_request.code else {
        return Ok(Vec::new());
    };
    let rows = charges_of_order(store, master, &b.service_request).await?;
    let stale = rows.iter().any(|r| {
        r.status == "billable"
            && r.key.starts_with(&format!("{DERIVED}|"))
            && r.key
                .rsplit_once('|')
                .is_some_and(|(_, c)| !code.coding.iter().any(|x| x.code.as_deref() == Some(c)))
    });
    if !stale {
        return Ok(Vec::new());
    }
    reverse(rows, &order_cause(b, record))
}

/// Reverses the billable ones of `rows`: each is set `aborted` and a
/// `billing.charge-reversed` is raised for it.
fn reverse(rows: Vec<ResourceRow>, cause: &Cause<'_>) -> Result<Vec<ClinicalChange>, ApplyError> {
    let mut changes = Vec::new();
    for row in rows.into_iter().filter(|r| r.status == "billable") {
        let mut item: ChargeItem = serde_json::from_value(row.resource).map_err(|e| {
            ApplyError::Store(StoreError::Database(format!(
                "stored ChargeItem {} does not read back: {e}",
                row.key
            )))
        })?;
        item.status = ChargeItemStatus::Aborted;
        changes.push(
            Upsert {
                resource_type: "ChargeItem",
                key: row.key.clone(),
                patient_key: row.patient_key,
                status: status_code(&item.status),
                identifiers: tokens(&item.identifier),
                order_tokens: reference_tokens(&item.supporting_information),
                resource: &item,
            }
            .change()?,
        );
        // The version reversed is part of the id: a charge posted again and
        // reversed again is a new reversal.
        let name = format!("{}|{}|{}", EventKind::ChargeReversed.as_str(), row.key, row.version);
        let id = Uuid::new_v5(&FOLLOW_UP_NS, name.as_bytes());
        changes.push(cause.charge_event(EventKind::ChargeReversed, id, item)?);
    }
    Ok(changes)
}
