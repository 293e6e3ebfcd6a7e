//! The registration domain store: patients, their identifiers and encounters,
//! kept by the registration service.
//!
//! Every change arrives with the canonical event that caused it and is applied
//! in one transaction with that event's insertion into the event log, so a
//! redelivered event (same envelope id) changes nothing and the log never
//! records an event whose changes were lost, or the other way round.
//!
//! Keys are opaque text chosen by the caller (`Patient::key()` gives
//! `system|value`). The store does not resolve merged keys on write: callers
//! look the patient up with [`RegistrationStore::find_patient`] first.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{EventRecord, StoreError};

/// How many `merged_into` links [`RegistrationStore::find_patient`] follows
/// before it reports the chain as broken.
pub const MAX_MERGE_HOPS: usize = 16;

/// A patient as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientRow {
    /// Patient key (`system|value`).
    pub key: String,
    /// The canonical Patient resource; `{}` for a stub created by a merge.
    pub resource: serde_json::Value,
    /// The surviving patient this one was merged into, if it was.
    pub merged_into: Option<String>,
    /// 1 on first upsert, +1 on each replace; 0 for a stub never upserted.
    pub version: i64,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// An encounter as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EncounterRow {
    /// Encounter key.
    pub key: String,
    /// The patient it belongs to.
    pub patient_key: String,
    /// FHIR encounter status (`in-progress`, `finished`, …).
    pub status: String,
    /// The canonical Encounter resource.
    pub resource: serde_json::Value,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One change to registration data.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistrationChange {
    /// Insert or replace the patient `key` (version += 1 on replace) and index
    /// its identifiers. Identifiers are added (an identifier already indexed
    /// for another patient moves to this one), never removed, so identifiers
    /// gained by merges keep resolving. `merged_into` is left as it was.
    UpsertPatient {
        /// Patient key.
        key: String,
        /// (system, value) pairs; a `None` system is stored as `''`.
        identifiers: Vec<(Option<String>, String)>,
        /// The canonical Patient resource.
        resource: serde_json::Value,
    },
    /// Insert or replace the encounter `key` of `patient_key`, which must be
    /// stored (a foreign key): otherwise the whole apply fails with
    /// [`StoreError::Invalid`].
    UpsertEncounter {
        /// Encounter key.
        key: String,
        /// Owning patient key, as stored (not resolved through merges).
        patient_key: String,
        /// FHIR encounter status.
        status: String,
        /// The canonical Encounter resource.
        resource: serde_json::Value,
    },
    /// Patients `merged` now belong to `surviving`: each gets merged_into =
    /// surviving; their identifiers and encounters move to the survivor. A
    /// merged key not stored yet is created as a stub row with merged_into set
    /// (resource = {}), so a later message about it resolves to the survivor.
    ///
    /// An unknown survivor is created as a stub too (merged_into unset), and a
    /// survivor that had itself been merged away becomes live again
    /// (merged_into cleared), so merge links never form a cycle. `surviving`
    /// listed among `merged` is ignored.
    MergePatients {
        /// The patient that remains.
        surviving: String,
        /// The patients merged into it.
        merged: Vec<String>,
    },
}

/// Registration data: patients, identifiers, encounters.
#[async_trait]
pub trait RegistrationStore: Send + Sync {
    /// In ONE transaction: append `event` to the event log (events table) and
    /// apply `changes` in order. When the event id is already in the log,
    /// changes nothing and returns Ok(false) (idempotent redelivery). When a
    /// change fails, nothing is kept, not even the event.
    async fn apply_registration(
        &self,
        event: &EventRecord,
        changes: &[RegistrationChange],
    ) -> Result<bool, StoreError> {
        let mut out = self.apply_registrations(&[(event.clone(), changes.to_vec())]).await?;
        out.pop()
            .ok_or_else(|| StoreError::Database("no outcome for an applied registration event".into()))
    }

    /// In ONE transaction (one commit): each event of `batch` in the given
    /// order, exactly as [`RegistrationStore::apply_registration`] applies it —
    /// appended to the event log and its changes applied, or, when its id is
    /// already in the log (earlier, or earlier in this batch), its changes
    /// skipped. Returns one flag per event, in order: true when applied, false
    /// when skipped. Any error rolls back the whole batch: nothing of it is kept.
    async fn apply_registrations(
        &self,
        batch: &[(EventRecord, Vec<RegistrationChange>)],
    ) -> Result<Vec<bool>, StoreError>;

    /// The patient by key (as stored; does not follow merged_into).
    async fn patient(&self, key: &str) -> Result<Option<PatientRow>, StoreError>;

    /// The patient an identifier belongs to, following merged_into to the
    /// survivor (at most [`MAX_MERGE_HOPS`] hops; a longer chain is an error).
    async fn find_patient(&self, system: Option<&str>, value: &str) -> Result<Option<PatientRow>, StoreError>;

    /// Encounters of a patient, oldest (first stored) first.
    async fn encounters_of(&self, patient_key: &str) -> Result<Vec<EncounterRow>, StoreError>;

    /// Counts (patients incl. merged stubs, encounters), for tests and operators.
    async fn registration_counts(&self) -> Result<(u64, u64), StoreError>;
}

/// Patient upserts gathered to be written in one statement: consecutive
/// ones with distinct keys and distinct identifiers (one statement may not
/// update the same row twice), so the result is the one-by-one result.
#[derive(Default)]
pub(crate) struct PatientUpserts<'a> {
    /// Patient keys, in order.
    pub keys: Vec<&'a str>,
    /// Their resources, in the same order.
    pub resources: Vec<&'a serde_json::Value>,
    /// (patient key, system as stored, value) of every identifier.
    pub identifiers: Vec<(&'a str, &'a str, &'a str)>,
}

impl<'a> PatientUpserts<'a> {
    /// False when `key` or one of `identifiers` (held by another key) is in the group already.
    pub fn fits(&self, key: &str, identifiers: &[(Option<String>, String)]) -> bool {
        !self.keys.contains(&key)
            && identifiers.iter().all(|(s, v)| {
                let s = system_text(s.as_deref());
                !self
                    .identifiers
                    .iter()
                    .any(|(k, gs, gv)| *k != key && *gs == s && *gv == v)
            })
    }

    /// Adds one upsert (each identifier once).
    pub fn push(&mut self, key: &'a str, resource: &'a serde_json::Value, identifiers: &'a [(Option<String>, String)]) {
        self.keys.push(key);
        self.resources.push(resource);
        for (system, value) in identifiers {
            let system = system_text(system.as_deref());
            if !self
                .identifiers
                .iter()
                .any(|(k, s, v)| *k == key && *s == system && *v == value)
            {
                self.identifiers.push((key, system, value));
            }
        }
    }

    /// True when nothing is gathered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// True when the group must be written before `change` (which does not
    /// fit in it, or is not a patient upsert).
    pub fn must_flush_before(&self, change: &RegistrationChange) -> bool {
        match change {
            RegistrationChange::UpsertPatient { key, identifiers, .. } => !self.fits(key, identifiers),
            _ => !self.is_empty(),
        }
    }

    /// Takes `change` into the group when it is a patient upsert (true);
    /// any other change is the caller's to apply (false).
    pub fn absorb(&mut self, change: &'a RegistrationChange) -> bool {
        match change {
            RegistrationChange::UpsertPatient {
                key,
                identifiers,
                resource,
            } => {
                self.push(key, resource, identifiers);
                true
            }
            _ => false,
        }
    }
}

/// The identifier system as stored: `None` is `''`.
pub(crate) fn system_text(system: Option<&str>) -> &str {
    system.unwrap_or("")
}

/// The merged keys of a merge, without the survivor and without repeats, in order.
pub(crate) fn merged_keys<'a>(surviving: &str, merged: &'a [String]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::with_capacity(merged.len());
    for key in merged {
        if key != surviving && !out.contains(&key.as_str()) {
            out.push(key);
        }
    }
    out
}

/// A stored count as u64.
pub(crate) fn count(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Database(format!("{what} out of range in the store: {v}")))
}

/// The error for a merge chain longer than [`MAX_MERGE_HOPS`] (or a cycle).
/// Names no patient: keys carry identifiers (PHI).
pub(crate) fn chain_too_long() -> StoreError {
    StoreError::Database(format!(
        "a patient's merged_into chain is longer than {MAX_MERGE_HOPS} hops (a cycle?)"
    ))
}
