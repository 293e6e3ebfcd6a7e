//! Completing studies: a timer sweep finds studies still `registered` whose
//! last change is older than the quiet time, marks each `available` and
//! raises `imaging.study-completed` with the whole study, in one store
//! transaction (the follow-up goes through the outbox and is published after
//! the commit).
//!
//! The completion's event id is derived from the study key and the version
//! the sweep completed, and it is the ledger entry of that transaction: a
//! sweep re-run after a crash, or a second process sweeping the same study,
//! derives the same id and the store skips it, so a study version completes
//! once. A study that receives a new instance afterwards is `registered`
//! again (a new version) and completes again, with a new id, after the next
//! quiet time.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use medbus_bus::canonical::{
    DateTime, EventKind, HumanName, ImagingEvent, ImagingStudy, ImagingStudyStatus, Patient, Reference,
};
use medbus_bus::store::clinical::{ClinicalChange, ResourceRow};
use medbus_bus::store::{EventRecord, SharedStore, StoreError};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::fold::study_write;
use super::{Imaging, RESOURCE_TYPE, SERVICE};
use crate::clinical::{to_json, StatusPages};
use crate::feed::ApplyError;
use crate::outbox;

/// Studies read per page; a sweep reads every page.
const PAGE: u32 = 200;

/// How often the sweep runs for `quiet_time`: a quarter of it, so a study
/// completes at most a quarter late, but never more often than every 100 ms
/// nor less often than every minute.
pub fn sweep_every(quiet_time: Duration) -> Duration {
    (quiet_time / 4).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// Runs the sweep until shutdown; a failed sweep is logged and tried again next time.
pub async fn run_sweeps(imaging: Arc<Imaging>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(sweep_every(imaging.quiet_time));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let Err(e) = sweep(&imaging).await {
            tracing::warn!(service = SERVICE, error = %e, "study completion sweep failed; trying again next time");
        }
    }
}

/// One sweep: completes every study quiet for the quiet time and publishes
/// the outbox; returns how many it completed. A study that fails is logged
/// and counted (`medbus_imaging_completion_failures_total`), and tried again
/// next sweep.
pub async fn sweep(imaging: &Imaging) -> Result<usize, ApplyError> {
    let quiet = chrono::Duration::from_std(imaging.quiet_time).unwrap_or(chrono::Duration::MAX);
    let before = Utc::now() - quiet;
    let mut pages = StatusPages::new(RESOURCE_TYPE, ImagingStudyStatus::Registered.code(), before, PAGE);
    let mut completed = 0;
    while let Some(rows) = pages.next(imaging.store.clinical()).await? {
        for row in rows {
            // One study that cannot be completed must not stop the others.
            match complete(imaging, &row).await {
                Ok(true) => completed += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(service = SERVICE, version = row.version, error = %e, "a study could not be completed; trying again next sweep");
                    metrics::counter!("medbus_imaging_completion_failures_total").increment(1);
                }
            }
        }
    }
    // Also when nothing completed now: what a crash left in the outbox goes out.
    outbox::publish_pending(&imaging.store, &imaging.backbone, SERVICE).await?;
    if completed > 0 {
        metrics::counter!("medbus_imaging_studies_completed_total").increment(completed as u64);
    }
    Ok(completed)
}

/// Completes the study of `seen` unless it changed since the sweep read it;
/// true when this call completed it.
async fn complete(imaging: &Imaging, seen: &ResourceRow) -> Result<bool, ApplyError> {
    // Held across read and write: a batch folding into this study waits, so
    // its new instances are never overwritten by this (older) copy.
    let _guard = imaging.study_lock.lock().await;
    let store = &imaging.store;
    let Some(row) = store.clinical().resource(RESOURCE_TYPE, &seen.key).await? else {
        return Ok(false);
    };
    if row.version != seen.version || row.status != ImagingStudyStatus::Registered.code() {
        // An instance arrived (it completes after the next quiet time) or another sweep was first.
        return Ok(false);
    }
    let mut study: ImagingStudy = match serde_json::from_value(row.resource.clone()) {
        Ok(s) => s,
        Err(e) => {
            // Written by this service: a bug or a hand edit. Left registered for an operator.
            tracing::error!(service = SERVICE, version = row.version, error = %e, "stored ImagingStudy does not read back; not completed");
            return Ok(false);
        }
    };
    study.status = ImagingStudyStatus::Available;
    let now = Utc::now();
    let body = ImagingEvent {
        imaging_study: study.clone(),
        patient: patient_of(store, row.patient_key.as_deref(), &study.subject).await?,
        instance: None,
        source_message_type: None,
        occurred: DateTime::parse(&now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)).ok(),
    };
    let kind = EventKind::ImagingStudyCompleted;
    let id = completion_id(&row.key, row.version);
    let event = EventRecord {
        id,
        // A completion starts its own story: no one inbound message caused it.
        correlation_id: id,
        causation_id: None,
        kind: kind.as_str().to_string(),
        subject: kind.subject().to_string(),
        patient_id: row.patient_key.clone(),
        body: to_json(&body)?,
        occurred_at: now,
    };
    let changes = vec![
        study_write(row.key.clone(), row.patient_key.clone(), &study, Some(row.version))?,
        ClinicalChange::Emit(event.clone()),
    ];
    match store.clinical().apply_clinical(SERVICE, &[(event, changes)]).await {
        Ok(applied) => Ok(applied.first().copied().unwrap_or(false)),
        // Another process folded an instance in since the read: not quiet after all.
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The id of the `imaging.study-completed` that completes version `version`
/// of the study `key`: the same however often that version is swept.
pub fn completion_id(key: &str, version: i64) -> Uuid {
    Uuid::new_v5(&COMPLETION_NAMESPACE, format!("{key}@{version}").as_bytes())
}

/// The namespace of completion ids (a fixed v4 UUID, only ever used for them).
const COMPLETION_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2b0e_94d3_4c57_a8e2_51b7_0d3c_9e41);

/// The patient of the completion: as registration holds them when it does
/// (the fullest record), else as the study names them (identifier and name).
async fn patient_of(store: &SharedStore, key: Option<&str>, subject: &Reference) -> Result<Patient, ApplyError> {
    if let Some(key) = key {
        if let Some(row) = store.registration().patient(key).await? {
            if let Ok(p) = serde_json::from_value::<Patient>(row.resource) {
                return Ok(p);
            }
        }
    }
    Ok(Patient {
        identifier: subject.identifier.clone().into_iter().collect(),
        name: subject
            .display
            .as_ref()
            .map(|d| HumanName {
                text: Some(d.clone()),
                ..HumanName::default()
            })
            .into_iter()
            .collect(),
        ..Patient::default()
    })
}
