//! Folding a batch of `imaging.instance-stored` events into the stored
//! studies: each study's row is read once per batch, every instance of the
//! batch is folded into it in memory, and it is written once.
//!
//! **Which event carries the write.** The store applies an event's changes
//! only when the service had not applied that event yet (its ledger). The
//! study's one write rides on the LAST event of the batch that changed the
//! study in memory. That event cannot have been applied before: whatever an
//! applied event brought is in the stored row (its write committed with its
//! ledger mark, and folding never takes anything away), so folding it again
//! changes nothing. Events that change nothing carry no write; the ledger
//! still records them. So a redelivered batch writes nothing, and a batch
//! mixing redelivered and new events writes the study once, on a new event.
//!
//! **Another writer meanwhile.** The write is conditional on the version the
//! study was read at ([`ClinicalChange::UpsertIfVersion`]): when another
//! process folded into the same study, or a sweep completed it, between the
//! read and the commit, the batch fails with a conflict, nothing is written,
//! and the caller folds again from a fresh read.

use std::collections::HashMap;

use medbus_bus::canonical::{CanonicalEvent, ImagingEvent, ImagingStudy, ImagingStudyStatus};
use medbus_bus::store::clinical::ClinicalChange;
use medbus_bus::store::{EventRecord, SharedStore, StoreError};

use super::merge::StudyFold;
use super::RESOURCE_TYPE;
use crate::clinical::{self, status_code, tokens, Upsert};
use crate::feed::{Apply, ApplyError};

/// One study touched by the batch.
struct Touched {
    fold: StudyFold,
    /// The version it was read at; None when it was not stored.
    version: Option<i64>,
    patient_key: Option<String>,
    /// The index (in the batch) of the last event that changed it, if any did.
    carrier: Option<usize>,
}

/// The `(event, changes)` pairs for `apply_clinical`, in the batch's order:
/// every event, and each changed study's write on its carrier.
pub async fn fold_batch(
    store: &SharedStore,
    items: &[Apply],
) -> Result<Vec<(EventRecord, Vec<ClinicalChange>)>, ApplyError> {
    let mut studies: HashMap<String, Touched> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for (n, Apply { event, record }) in items.iter().enumerate() {
        let (key, incoming) = instance_of(event).map_err(clinical::naming(record))?;
        let touched = match studies.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let loaded = load(store, e.key(), incoming).await?;
                e.insert(loaded)
            }
        };
        if touched.patient_key.is_none() {
            touched.patient_key = event.patient_key();
        }
        if touched.fold.merge(incoming) {
            // New content: the study is receiving again, whatever it was.
            touched.fold.set_status(ImagingStudyStatus::Registered);
            touched.carrier = Some(n);
        }
        out.push((record.clone(), Vec::new()));
    }
    for (key, t) in studies {
        let Some(carrier) = t.carrier else { continue };
        let write = study_write(key, t.patient_key, t.fold.study(), t.version)?;
        if let Some((_, changes)) = out.get_mut(carrier) {
            changes.push(write);
        }
    }
    Ok(out)
}

/// The study key and the study an instance event carries; bad input when it
/// is not one or names no study or instance.
fn instance_of(event: &CanonicalEvent) -> Result<(String, &ImagingStudy), ApplyError> {
    let CanonicalEvent::ImagingInstanceStored(ImagingEvent { imaging_study, .. }) = event else {
        // Other events belong to other services (KINDS excludes them).
        return Err(ApplyError::BadInput(format!(
            "{} is not an imaging.instance-stored event",
            event.kind().as_str()
        )));
    };
    let key = imaging_study
        .key()
        .ok_or_else(|| ApplyError::BadInput("instance without a Study Instance UID".into()))?;
    let has_instance = imaging_study.series.iter().any(|s| !s.instance.is_empty());
    if !has_instance {
        return Err(ApplyError::BadInput("instance-stored event without an instance".into()));
    }
    Ok((key, imaging_study))
}

/// The stored study under `key`, or a new one shaped like `first`.
async fn load(store: &SharedStore, key: &str, first: &ImagingStudy) -> Result<Touched, ApplyError> {
    let Some(row) = store.clinical().resource(RESOURCE_TYPE, key).await? else {
        return Ok(Touched {
            fold: StudyFold::empty_like(first),
            version: None,
            patient_key: None,
            carrier: None,
        });
    };
    // Written by this service, so unreadable is a bug or a hand edit, not the
    // event's fault: retried (and logged), never dead-lettered with the event.
    let study: ImagingStudy = serde_json::from_value(row.resource)
        .map_err(|e| StoreError::Database(format!("stored ImagingStudy does not read back: {e}")))?;
    Ok(Touched {
        fold: StudyFold::new(study),
        version: Some(row.version),
        patient_key: row.patient_key,
        carrier: None,
    })
}

/// The store write of `study` under `key`, read at version `expected`
/// (None: not stored), and applied only if it is still there: indexed by its
/// identifiers, and naming its order by accession number so it links to the
/// ServiceRequest with that accession, now or when the order arrives.
pub fn study_write(
    key: String,
    patient_key: Option<String>,
    study: &ImagingStudy,
    expected: Option<i64>,
) -> Result<ClinicalChange, ApplyError> {
    let upsert = Upsert {
        resource_type: RESOURCE_TYPE,
        key,
        patient_key,
        status: status_code(&study.status),
        identifiers: tokens(&study.identifier),
        order_tokens: study
            .accession()
            .map(|a| vec![ImagingStudy::accession_token(a)])
            .unwrap_or_default(),
        resource: study,
    }
    .change()?;
    match upsert {
        ClinicalChange::Upsert(write) => Ok(ClinicalChange::UpsertIfVersion { write, expected }),
        other => Ok(other),
    }
}

#[cfg(test)]
#[path = "fold_tests.rs"]
mod tests;
