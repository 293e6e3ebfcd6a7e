//! The FHIR resource store behind the inbound FHIR R4 REST server (`/fhir`):
//! resources as clients create and update them, by (resource type, logical
//! id), with a version per id and an index of their business identifiers.
//!
//! Unlike the clinical store, which keeps canonical resources the domain
//! services derive, this one keeps what a FHIR client sent, and a write can
//! fail on what is stored (an id taken, a version moved on, an identifier
//! held by another resource): those failures are [`StoreError::Conflict`]
//! (HTTP 409/412), never retried. Identifiers are unique per resource type,
//! so two clients creating the same patient at once end with one resource.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;

/// How a write treats what is stored under its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Insert as version 1; [`StoreError::Conflict`] when the id exists.
    Create,
    /// Insert (version 1) or replace (version + 1).
    Update,
    /// Replace only when the stored version is exactly this one (FHIR
    /// `If-Match`); [`StoreError::Conflict`] otherwise, also when the id is absent.
    UpdateIfVersion(i64),
}

/// A business identifier of a resource (FHIR `Identifier.system` + `value`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FhirIdentifier {
    /// The namespace URI; `None` when the identifier has none (its own
    /// value: `(None, "x")` and `(Some("s"), "x")` are different identifiers).
    /// `Some("")` is refused: FHIR has no empty strings.
    pub system: Option<String>,
    /// The value; never empty.
    pub value: String,
}

/// One resource to write.
#[derive(Debug, Clone, PartialEq)]
pub struct FhirWrite {
    /// FHIR resource type: `Patient`, `Observation`, …
    pub resource_type: String,
    /// Logical id chosen by the caller.
    pub id: String,
    /// Business identifiers to index; they replace the stored set on update.
    pub identifiers: Vec<FhirIdentifier>,
    /// The resource JSON as given (the store adds no `meta`).
    pub resource: serde_json::Value,
    /// What to do with what is stored under the id.
    pub mode: WriteMode,
}

/// A resource as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct FhirRow {
    /// FHIR resource type.
    pub resource_type: String,
    /// Logical id.
    pub id: String,
    /// 1 on create, + 1 on each replace (FHIR `meta.versionId`).
    pub version: i64,
    /// Last change, in microseconds; never earlier than the previous
    /// version's (FHIR `meta.lastUpdated`).
    pub last_updated: DateTime<Utc>,
    /// The resource JSON as written.
    pub resource: serde_json::Value,
}

/// One request's writes, for [`FhirStore::fhir_commit_many`].
#[derive(Debug, Clone, PartialEq)]
pub struct FhirCommit {
    /// The id of the request kept on the backbone, marked committed with the writes.
    pub request: String,
    /// Its writes, in order.
    pub writes: Vec<FhirWrite>,
}

/// What became of a request the FHIR server kept on the backbone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FhirRequestState {
    /// Its resources were written.
    Committed,
    /// The store refused its writes; the client was answered with an error.
    Refused(String),
}

/// Resources written through the FHIR REST server.
#[async_trait]
pub trait FhirStore: Send + Sync {
    /// Applies `writes` in ONE transaction, in order, all or nothing (a
    /// later write of the same id sees the earlier one); returns the rows as
    /// stored, in the same order.
    ///
    /// [`StoreError::Conflict`], naming the resource type and the id that
    /// holds what was asked for (never an identifier value: PHI), when a
    /// `Create` finds its id taken, an `UpdateIfVersion` finds another
    /// version (or none), or an identifier of the write is held by another
    /// id of the same resource type. [`StoreError::Invalid`] for an empty
    /// resource type, id, identifier value or identifier system.
    async fn fhir_write(&self, writes: &[FhirWrite]) -> Result<Vec<FhirRow>, StoreError>;

    /// [`fhir_write`](Self::fhir_write), and in the same transaction marks
    /// `request` (the id of the request kept on the backbone) committed, so
    /// the FHIR router can tell a request that was stored from one that was
    /// not. [`StoreError::Conflict`] when the request id is marked already.
    async fn fhir_commit(&self, request: &str, writes: &[FhirWrite]) -> Result<Vec<FhirRow>, StoreError>;

    /// Several requests' [`fhir_commit`](Self::fhir_commit)s in ONE
    /// transaction, all or nothing (one commit, one log flush for all of
    /// them); [`fhir_commit_many`](Self::fhir_commit_many) is what callers use.
    async fn fhir_commit_all(&self, requests: &[FhirCommit]) -> Result<Vec<Vec<FhirRow>>, StoreError>;

    /// Commits each request as [`fhir_commit`](Self::fhir_commit) would, one
    /// result per request in order: first all in one transaction, and when
    /// that fails (a conflict, an invalid write, a deadlock between batches)
    /// each on its own, so one request's failure is its own.
    async fn fhir_commit_many(&self, requests: &[FhirCommit]) -> Vec<Result<Vec<FhirRow>, StoreError>> {
        if requests.len() > 1 {
            match self.fhir_commit_all(requests).await {
                Ok(all) => return all.into_iter().map(Ok).collect(),
                Err(e) => {
                    tracing::debug!(error = %e, requests = requests.len(), "batched FHIR commit failed; one by one")
                }
            }
        }
        let mut out = Vec::with_capacity(requests.len());
        for r in requests {
            out.push(self.fhir_commit(&r.request, &r.writes).await);
        }
        out
    }

    /// Marks `request` refused with `reason` (the store refused its writes
    /// after it was kept). Does nothing when it was committed or refused already.
    async fn fhir_refuse(&self, request: &str, reason: &str) -> Result<(), StoreError>;

    /// What became of `request`; None when nothing is known (yet).
    async fn fhir_request(&self, request: &str) -> Result<Option<FhirRequestState>, StoreError>;

    /// What became of each of `requests` that something is known about, by
    /// id (as [`fhir_request`](Self::fhir_request) for each).
    async fn fhir_requests(&self, requests: &[String]) -> Result<HashMap<String, FhirRequestState>, StoreError> {
        let mut out = HashMap::with_capacity(requests.len());
        for r in requests {
            if let Some(state) = self.fhir_request(r).await? {
                out.insert(r.clone(), state);
            }
        }
        Ok(out)
    }

    /// The current version of the resource, or None.
    async fn fhir_read(&self, resource_type: &str, id: &str) -> Result<Option<FhirRow>, StoreError>;

    /// Resources of the type holding the identifier, oldest (first created)
    /// first, at most `limit`. `system: None` matches any system;
    /// `Some("")` matches identifiers without one (FHIR `identifier=|value`).
    async fn fhir_search_identifier(
        &self,
        resource_type: &str,
        system: Option<&str>,
        value: &str,
        limit: u32,
    ) -> Result<Vec<FhirRow>, StoreError>;

    /// How many resources of the type are stored.
    async fn fhir_count(&self, resource_type: &str) -> Result<u64, StoreError>;
}

/// Refuses writes the store could not find again, before any transaction.
/// Names the resource type and id, never an identifier value (PHI).
pub(crate) fn validate(writes: &[FhirWrite]) -> Result<(), StoreError> {
    for w in writes {
        if w.resource_type.is_empty() {
            return Err(StoreError::Invalid("a FHIR resource needs a resource type".into()));
        }
        if w.id.is_empty() {
            return Err(StoreError::Invalid(format!(
                "a {} resource needs a non-empty id",
                w.resource_type
            )));
        }
        for i in &w.identifiers {
            if i.value.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "an identifier of {}/{} has an empty value",
                    w.resource_type, w.id
                )));
            }
            // '' is how an absent system is stored: an empty one would alias it.
            if i.system.as_deref() == Some("") {
                return Err(StoreError::Invalid(format!(
                    "an identifier of {}/{} has an empty system",
                    w.resource_type, w.id
                )));
            }
        }
    }
    Ok(())
}

/// The identifiers of `w` as stored (`''` for no system), sorted without
/// repeats: one statement may not insert a key twice, and concurrent writers
/// taking keys in one order wait on each other instead of deadlocking.
pub(crate) fn stored_identifiers(w: &FhirWrite) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = w
        .identifiers
        .iter()
        .map(|i| (i.system.as_deref().unwrap_or(""), i.value.as_str()))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The rows a batch of creating requests wrote (version 1, `last_updated`),
/// per request in order.
pub(crate) fn created_rows(
    requests: &[(Option<&str>, &[FhirWrite])],
    last_updated: DateTime<Utc>,
) -> Vec<Vec<FhirRow>> {
    requests
        .iter()
        .map(|(_, writes)| {
            writes
                .iter()
                .map(|w| FhirRow {
                    resource_type: w.resource_type.clone(),
                    id: w.id.clone(),
                    version: 1,
                    last_updated,
                    resource: w.resource.clone(),
                })
                .collect()
        })
        .collect()
}

/// Counts a batch of several create-only requests by the path it took:
/// `batched` (the set-based statements) or `fallback` (something differed
/// from the plan, so it was redone statement by statement). The results are
/// the same either way; only this tells a fast path that works from one that
/// always falls back. A lone request is no batch and is not counted.
pub(crate) fn count_create_batch(store: &'static str, requests: usize, batched: bool) {
    if requests > 1 {
        let path = if batched { "batched" } else { "fallback" };
        metrics::counter!("medbus_store_fhir_create_batches_total", "store" => store, "path" => path).increment(1);
    }
}

/// The conflict of a request marked a second time.
pub(crate) fn request_marked(request: &str) -> StoreError {
    StoreError::Conflict(format!("FHIR request {request} is marked committed or refused already"))
}

/// A `fhir_request` row as its state.
pub(crate) fn request_state(committed: bool, reason: Option<String>) -> FhirRequestState {
    if committed {
        FhirRequestState::Committed
    } else {
        FhirRequestState::Refused(reason.unwrap_or_default())
    }
}

/// The conflict of a `Create` whose id is taken.
pub(crate) fn id_taken(w: &FhirWrite) -> StoreError {
    StoreError::Conflict(format!("{}/{} already exists", w.resource_type, w.id))
}

/// The conflict of an `UpdateIfVersion` that found `stored` instead.
pub(crate) fn version_moved(w: &FhirWrite, expected: i64, stored: Option<i64>) -> StoreError {
    StoreError::Conflict(match stored {
        Some(v) => format!("{}/{} is at version {v}, not {expected}", w.resource_type, w.id),
        None => format!(
            "{}/{} does not exist (expected version {expected})",
            w.resource_type, w.id
        ),
    })
}

/// The conflict of an identifier held by `holder` (None when the holder let
/// go of it before it could be named).
pub(crate) fn identifier_held(w: &FhirWrite, holder: Option<&str>) -> StoreError {
    StoreError::Conflict(match holder {
        Some(h) => format!(
            "an identifier of {}/{} is already held by {}/{h}",
            w.resource_type, w.id, w.resource_type
        ),
        None => format!(
            "an identifier of {}/{} is already held by another {}",
            w.resource_type, w.id, w.resource_type
        ),
    })
}

/// The conflict of a unique violation the statements did not expect (their
/// `ON CONFLICT` or write lock should have turned it into one of the above):
/// the database cannot say who holds the key without naming its value.
pub(crate) fn unique_violation(w: &FhirWrite) -> StoreError {
    StoreError::Conflict(format!(
        "{}/{}: its id or an identifier is already held by another {}",
        w.resource_type, w.id, w.resource_type
    ))
}
