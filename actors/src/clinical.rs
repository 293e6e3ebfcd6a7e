//! What the clinical services (orders, results, billing) share: turning
//! canonical resources into store writes, follow-up event records, and one
//! event's trip through `apply_clinical`.

use medbus_bus::canonical::{EventKind, Identifier, Reference};
use medbus_bus::store::clinical::{ClinicalChange, ResourceWrite};
use medbus_bus::store::{EventRecord, SharedStore, StoreError};
use serde::Serialize;
use uuid::Uuid;

use crate::feed::ApplyError;

/// The FHIR code a status enum serialises to (`active`, `final`, `billable`).
pub fn status_code<T: Serialize>(status: &T) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// The `system|value` tokens of identifiers that have a value.
pub fn tokens(identifiers: &[Identifier]) -> Vec<String> {
    identifiers.iter().filter_map(Identifier::token).collect()
}

/// The tokens of the identifiers logical references carry (basedOn,
/// supportingInformation: the orders a resource belongs to).
pub fn reference_tokens(references: &[Reference]) -> Vec<String> {
    references
        .iter()
        .filter_map(|r| r.identifier.as_ref().and_then(Identifier::token))
        .collect()
}

/// A resource as JSON; a resource that does not serialise is bad input.
pub fn to_json<T: Serialize>(resource: &T) -> Result<serde_json::Value, ApplyError> {
    serde_json::to_value(resource).map_err(|e| ApplyError::BadInput(format!("does not serialise: {e}")))
}

/// An upsert of `resource` under `key`.
pub struct Upsert<'a, T> {
    /// FHIR resource type.
    pub resource_type: &'static str,
    /// Natural key.
    pub key: String,
    /// Patient key.
    pub patient_key: Option<String>,
    /// FHIR status code.
    pub status: String,
    /// Identifier tokens.
    pub identifiers: Vec<String>,
    /// Order identifier tokens it refers to.
    pub order_tokens: Vec<String>,
    /// The resource.
    pub resource: &'a T,
}

impl<T: Serialize> Upsert<'_, T> {
    /// The store change.
    pub fn change(self) -> Result<ClinicalChange, ApplyError> {
        Ok(ClinicalChange::Upsert(ResourceWrite {
            resource_type: self.resource_type.to_string(),
            key: self.key,
            patient_key: self.patient_key,
            status: self.status,
            identifiers: self.identifiers,
            order_tokens: self.order_tokens,
            resource: to_json(self.resource)?,
        }))
    }
}

/// A follow-up event `kind` with `body`, caused by `cause`: same correlation
/// id and patient, causation = the cause, and when it happened = the cause's.
/// `id` must be derived from what raised it, so re-deciding gives the same id.
pub fn follow_up<B: Serialize>(
    id: Uuid,
    cause: &EventRecord,
    kind: EventKind,
    body: &B,
) -> Result<ClinicalChange, ApplyError> {
    Ok(ClinicalChange::Emit(EventRecord {
        id,
        correlation_id: cause.correlation_id,
        causation_id: Some(cause.id),
        kind: kind.as_str().to_string(),
        subject: kind.subject().to_string(),
        patient_id: cause.patient_id.clone(),
        body: to_json(body)?,
        occurred_at: cause.occurred_at,
    }))
}

/// Names the event in a bad-input error, so the operator (and the log) can
/// tell which one of a batch it was.
pub fn naming(event: &EventRecord) -> impl FnOnce(ApplyError) -> ApplyError + '_ {
    move |e| match e {
        ApplyError::BadInput(why) => ApplyError::BadInput(format!("event {}: {why}", event.id)),
        other => other,
    }
}

/// Applies one event's changes for `service` in one transaction; false
/// when the service had applied it already.
pub async fn apply_one(
    store: &SharedStore,
    service: &str,
    record: EventRecord,
    changes: Vec<ClinicalChange>,
) -> Result<bool, ApplyError> {
    let flags = store.clinical().apply_clinical(service, &[(record, changes)]).await?;
    flags
        .first()
        .copied()
        .ok_or_else(|| ApplyError::Store(StoreError::Database("no answer for an applied event".into())))
}
