//! The clinical resource store: orders, appointments, results, charges and
//! notification records, kept by the orders, results, billing and
//! notifications services (and later FHIR and imaging).
//!
//! One generic shape for every resource type, as FHIR servers keep them: a
//! row per (resource type, natural key) with the canonical FHIR JSON, its
//! status, its patient and the order it belongs to; an index of the business
//! identifiers it can be found by; and the order identifiers it refers to.
//! A result or charge names its order by placer/filler number; the store
//! resolves that to `order_key` when it is written, or later when the order
//! arrives — so a result that came first is linked when its order comes.
//!
//! **A link never crosses patients.** Order tokens are not unique across
//! senders: an imaging study names its order by accession number alone
//! (`urn:medbus:accession|<value>`, no issuer), and two departments may reuse
//! an accession or placer number for different patients. So a resource is
//! linked to an order (at write or late) only when the resource's
//! `patient_key` equals the order's, or either is unknown (NULL), or one has
//! no system (`|value`, a Patient ID without an issuer) and the values are
//! equal; two systems with one value are two patients. At write,
//! orders of another patient are passed over and the first of its tokens
//! naming an order of the right patient wins; a resource refused that way
//! stays unlinked until an order of its patient with one of its tokens is
//! stored (the token then moves to that order, and the late link takes it).
//! A replace whose tokens resolve to nothing keeps its link unless its new
//! patient differs from the kept order's, then it is unlinked. An order
//! replaced under another patient (a correction) lets go of the resources
//! linked to it under another known patient; its own patient's are linked
//! late as usual.
//!
//! Patient keys are stored as the events name them; a merge (registration)
//! rewrites none of them. After a merge, an order under the merged key and a
//! result or study under the surviving key (or the other way round) are not
//! linked until one is written again under the other's key: an order or
//! result event under that key links them. A study keeps the patient of its
//! first instance, so only its order, rewritten under that key, links it. A
//! result linked before the merge and corrected under the surviving key loses
//! its link while its order is still under the merged key.
//!
//! Idempotency is per service: several services apply the same event
//! (billing and orders both take `order.completed`), so "already applied" is
//! the pair (service, event id), not the event id alone. Follow-up events a
//! service raises (a critical result, a derived charge) are written to an
//! outbox in the same transaction and published after the commit; they are
//! also marked applied for the service that raised them, so it never applies
//! its own follow-ups again.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{EventRecord, StoreError};

/// A resource to insert or replace.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceWrite {
    /// FHIR resource type: `ServiceRequest`, `Appointment`, `Observation`,
    /// `DiagnosticReport`, `ChargeItem`, `Communication`, …
    pub resource_type: String,
    /// Natural key (`system|value` of its first identifier, or a key the service derives).
    pub key: String,
    /// The patient it concerns (registration's patient key), if any.
    pub patient_key: Option<String>,
    /// Its FHIR status code (`active`, `final`, `billable`, …).
    pub status: String,
    /// Identifier tokens (`system|value`) it can be found by. Within one
    /// resource type a token belongs to one key: indexing it for another key
    /// moves it. Tokens are added on replace, never removed.
    pub identifiers: Vec<String>,
    /// Tokens of the ServiceRequest identifiers it refers to (basedOn,
    /// supportingInformation). Resolved to `order_key` when an order with
    /// one of those identifiers is stored, now or later, if the patients
    /// agree (see the module doc). Replaced on replace.
    pub order_tokens: Vec<String>,
    /// The canonical FHIR JSON.
    pub resource: serde_json::Value,
}

/// A resource as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRow {
    /// FHIR resource type.
    pub resource_type: String,
    /// Natural key.
    pub key: String,
    /// Patient key.
    pub patient_key: Option<String>,
    /// FHIR status code.
    pub status: String,
    /// The key of the ServiceRequest it belongs to, once one of its
    /// `order_tokens` matched the identifier of a stored order of the same
    /// patient (or where either patient is unknown).
    pub order_key: Option<String>,
    /// The canonical FHIR JSON.
    pub resource: serde_json::Value,
    /// 1 on insert, +1 on each replace.
    pub version: i64,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One change a service makes while applying one event.
#[derive(Debug, Clone, PartialEq)]
pub enum ClinicalChange {
    /// Insert the resource (version 1) or replace it (version + 1, same
    /// order_key unless its new order_tokens resolve to another order, or
    /// its new patient is not the kept order's: then none).
    /// For a `ServiceRequest`, every stored resource whose order_tokens
    /// include one of its identifiers, whose order_key is unset and whose
    /// patient agrees gets order_key = this key (the late link). Patients
    /// agree when equal or when either is unknown (see the module doc).
    Upsert(ResourceWrite),
    /// [`ClinicalChange::Upsert`], but only if the resource is still at
    /// version `expected` (`None`: not stored yet) — for a service that read
    /// the resource before the transaction and wrote back what it made of it.
    /// When another writer moved it on meanwhile, the whole batch fails with
    /// [`StoreError::Conflict`] and nothing is written: read again and redo.
    /// It fails the same way when it rides on an event already applied: the
    /// write may carry other events' changes (a fold of several), which a
    /// skipped event would drop without a word.
    UpsertIfVersion {
        /// The resource.
        write: ResourceWrite,
        /// The version it was read at; `None` when it was not stored.
        expected: Option<i64>,
    },
    /// A follow-up event: appended to the event log and to the outbox (to be
    /// published after the commit), and marked applied for the service.
    Emit(EventRecord),
}

/// A follow-up event waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    /// The service that raised it.
    pub service: String,
    /// The event (its id is the backbone dedupe id).
    pub event: EventRecord,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// Clinical resources, the per-service applied ledger and the outbox.
#[async_trait]
pub trait ClinicalStore: Send + Sync {
    /// In ONE transaction (one commit), for each `(event, changes)` in order:
    /// when (service, event.id) is already applied — earlier, or earlier in
    /// this batch — skip it (false); otherwise append the event to the event
    /// log if its id is not there yet (another service may have logged it),
    /// mark (service, event.id) applied and apply `changes` in order (true).
    /// Any error rolls back the whole batch.
    async fn apply_clinical(
        &self,
        service: &str,
        batch: &[(EventRecord, Vec<ClinicalChange>)],
    ) -> Result<Vec<bool>, StoreError>;

    /// Inserts or replaces one resource outside any event (operators'
    /// changes, notification delivery status), as [`ClinicalChange::Upsert`];
    /// returns the new version.
    async fn upsert_resource(&self, write: &ResourceWrite) -> Result<i64, StoreError>;

    /// The resource by type and key.
    async fn resource(&self, resource_type: &str, key: &str) -> Result<Option<ResourceRow>, StoreError>;

    /// The resource of a type that has the identifier token.
    async fn find_by_identifier(&self, resource_type: &str, token: &str) -> Result<Option<ResourceRow>, StoreError>;

    /// Resources of a type linked to the order `order_key`, oldest first.
    async fn resources_of_order(&self, resource_type: &str, order_key: &str) -> Result<Vec<ResourceRow>, StoreError>;

    /// Resources of a type about a patient, oldest first.
    async fn resources_of_patient(
        &self,
        resource_type: &str,
        patient_key: &str,
    ) -> Result<Vec<ResourceRow>, StoreError>;

    /// Resources of a type with `status` last changed before `before`,
    /// oldest change first (then by key), at most `limit`, starting after the
    /// (`updated_at`, `key`) of the last row of the previous page when `after`
    /// is given (escalation and completion sweeps, which must reach every row:
    /// rows a sweep leaves as they are would otherwise hide the rest).
    async fn resources_with_status(
        &self,
        resource_type: &str,
        status: &str,
        before: DateTime<Utc>,
        after: Option<(DateTime<Utc>, &str)>,
        limit: u32,
    ) -> Result<Vec<ResourceRow>, StoreError>;

    /// How many resources of a type are stored.
    async fn count_resources(&self, resource_type: &str) -> Result<u64, StoreError>;

    /// Follow-up events of `service` not yet marked published, oldest first, at most `limit`.
    async fn pending_outbox(&self, service: &str, limit: u32) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Marks outbox events published; unknown ids are ignored.
    async fn mark_published(&self, ids: &[Uuid]) -> Result<(), StoreError>;
}

/// Refuses a conditional write whose upsert gave `version`: the resource was
/// not at `expected` any more. Names neither the key nor the resource (they
/// can carry PHI).
pub(crate) fn check_version(write: &ResourceWrite, expected: Option<i64>, version: i64) -> Result<(), StoreError> {
    if version == expected.map_or(1, |v| v + 1) {
        return Ok(());
    }
    Err(StoreError::Conflict(format!(
        "a {} resource changed since it was read (version {version} written, {} expected)",
        write.resource_type,
        expected.map_or(1, |v| v + 1)
    )))
}

/// Refuses to skip an already-applied event that carries a conditional write:
/// the writer folded it together with others from a read that may now be
/// stale, so the batch must be read and folded again (see
/// [`ClinicalChange::UpsertIfVersion`]).
pub(crate) fn refuse_skipped_conditional(changes: &[ClinicalChange]) -> Result<(), StoreError> {
    match changes.iter().find_map(|c| match c {
        ClinicalChange::UpsertIfVersion { write, .. } => Some(write),
        _ => None,
    }) {
        Some(write) => Err(StoreError::Conflict(format!(
            "a {} write rides on an event already applied; read again and redo",
            write.resource_type
        ))),
        None => Ok(()),
    }
}

/// The resource type whose identifiers `order_tokens` resolve against.
pub(crate) const ORDER_TYPE: &str = "ServiceRequest";

/// Refuses a write the store could not find again: an empty resource type or
/// key. Names neither the key nor the resource (they can carry PHI).
pub(crate) fn validate(write: &ResourceWrite) -> Result<(), StoreError> {
    if write.resource_type.is_empty() {
        return Err(StoreError::Invalid("a clinical resource needs a resource type".into()));
    }
    if write.key.is_empty() {
        return Err(StoreError::Invalid(format!(
            "a {} resource needs a non-empty key",
            write.resource_type
        )));
    }
    Ok(())
}

/// Refuses an empty service name: the ledger would mix it with every other.
pub(crate) fn validate_service(service: &str) -> Result<(), StoreError> {
    if service.is_empty() {
        return Err(StoreError::Invalid(
            "applying clinical changes needs a service name".into(),
        ));
    }
    Ok(())
}

/// Tokens without repeats, in first-seen order (one statement may not touch
/// the same row twice, and the first order token that resolves wins).
pub(crate) fn unique_tokens(tokens: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::with_capacity(tokens.len());
    for token in tokens {
        if !out.contains(&token.as_str()) {
            out.push(token);
        }
    }
    out
}

/// The advisory-lock keys (PostgreSQL) of the link tokens `writes` read or
/// write: an order's identifiers, and the order tokens of everything else.
/// An order and a result naming it, written at the same moment by two
/// services, would otherwise each miss the other (neither sees the other's
/// uncommitted row) and never be linked. Sorted without repeats, so
/// transactions take them in one order and never wait in a cycle.
pub(crate) fn link_lock_keys<'a>(writes: impl Iterator<Item = &'a ResourceWrite>) -> Vec<i32> {
    let mut keys: Vec<i32> = writes
        .flat_map(|w| {
            if w.resource_type == ORDER_TYPE {
                w.identifiers.iter()
            } else {
                w.order_tokens.iter()
            }
        })
        .map(|t| fnv1a(t.as_bytes()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// 32-bit FNV-1a, as a lock key (collisions only make two writes wait for each other).
fn fnv1a(bytes: &[u8]) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    i32::from_ne_bytes(h.to_ne_bytes())
}
