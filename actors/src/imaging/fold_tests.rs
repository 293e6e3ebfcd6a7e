//! Which event of a batch carries the study's one write, on a real (SQLite) store.

use chrono::Utc;
use medbus_bus::canonical::{
    systems, CanonicalEvent, Coding, EventKind, ImagingEvent, ImagingStudy, ImagingStudyInstance, ImagingStudySeries,
    ImagingStudyStatus, Patient, Reference,
};
use medbus_bus::config::StoreConfig;
use medbus_bus::store::clinical::ClinicalChange;
use medbus_bus::store::{self, EventRecord, SharedStore};
use uuid::Uuid;

use super::fold_batch;
use crate::feed::Apply;

/// An `imaging.instance-stored` of instance `sop` of study 1.2.3, with event id `id`.
fn apply(id: Uuid, sop: &str) -> Apply {
    let study = ImagingStudy {
        resource_type: Default::default(),
        id: None,
        identifier: vec![ImagingStudy::study_uid_identifier("1.2.3")],
        status: ImagingStudyStatus::Registered,
        modality: Vec::new(),
        subject: Reference::default(),
        started: None,
        based_on: Vec::new(),
        number_of_series: None,
        number_of_instances: None,
        description: None,
        series: vec![ImagingStudySeries {
            uid: "1.2.3.1".into(),
            number: None,
            modality: Coding::new(systems::DICOM_DCM, "CT", None),
            body_site: None,
            number_of_instances: None,
            instance: vec![ImagingStudyInstance {
                uid: sop.into(),
                sop_class: Coding::new(systems::URI, "urn:oid:1.2.840.10008.5.1.4.1.1.2", None),
                number: None,
            }],
        }],
    };
    let body = ImagingEvent {
        imaging_study: study,
        patient: Patient::default(),
        instance: None,
        source_message_type: None,
        occurred: None,
    };
    let kind = EventKind::ImagingInstanceStored;
    Apply {
        record: EventRecord {
            id,
            correlation_id: id,
            causation_id: None,
            kind: kind.as_str().into(),
            subject: kind.subject().to_string(),
            patient_id: None,
            body: serde_json::to_value(&body).unwrap(),
            occurred_at: Utc::now(),
        },
        event: CanonicalEvent::ImagingInstanceStored(body),
    }
}

fn again(a: &Apply) -> Apply {
    Apply {
        event: a.event.clone(),
        record: a.record.clone(),
    }
}

/// Which events of a folded batch carry a write.
fn writers(batch: &[(EventRecord, Vec<ClinicalChange>)]) -> Vec<usize> {
    batch
        .iter()
        .enumerate()
        .filter(|(_, (_, c))| !c.is_empty())
        .map(|(n, _)| n)
        .collect()
}

async fn sqlite() -> (tempfile::TempDir, SharedStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = store::connect(&StoreConfig::default(), dir.path()).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn the_write_rides_on_the_last_event_that_added_something() {
    let (_dir, store) = sqlite().await;
    let (a, b) = (apply(Uuid::now_v7(), "1.2.3.1.1"), apply(Uuid::now_v7(), "1.2.3.1.2"));
    let first = fold_batch(&store, &[again(&a), again(&b)]).await.unwrap();
    assert_eq!(writers(&first), [1], "one write for the batch");
    store.clinical().apply_clinical("imaging", &first).await.unwrap();

    // Redelivered A and B around new C and D, and C resent under a new id.
    let (c, d) = (apply(Uuid::now_v7(), "1.2.3.1.3"), apply(Uuid::now_v7(), "1.2.3.1.4"));
    let resent_c = apply(Uuid::now_v7(), "1.2.3.1.3");
    let batch = vec![again(&a), again(&c), again(&b), again(&d), resent_c];
    let folded = fold_batch(&store, &batch).await.unwrap();
    assert_eq!(writers(&folded), [3], "on D, new, so never skipped by the ledger");
    let applied = store.clinical().apply_clinical("imaging", &folded).await.unwrap();
    assert_eq!(applied, [false, true, false, true, true]);
    let row = store
        .clinical()
        .resource("ImagingStudy", "urn:dicom:uid|urn:oid:1.2.3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.resource["numberOfInstances"], 4);
    assert_eq!(row.version, 2, "written once per batch");

    // Only redeliveries: nothing to write.
    let folded = fold_batch(&store, &[again(&a), again(&b), again(&c), again(&d)])
        .await
        .unwrap();
    assert!(writers(&folded).is_empty());
}

#[tokio::test]
async fn an_event_without_an_instance_is_bad_input_naming_it() {
    let (_dir, store) = sqlite().await;
    let mut bad = apply(Uuid::now_v7(), "1.2.3.1.1");
    if let CanonicalEvent::ImagingInstanceStored(b) = &mut bad.event {
        b.imaging_study.series.clear();
    }
    let id = bad.record.id;
    match fold_batch(&store, &[bad]).await {
        Err(crate::feed::ApplyError::BadInput(why)) => assert!(why.contains(&id.to_string()), "{why}"),
        other => panic!("wanted bad input, got {other:?}"),
    }
}
