//! Conformance cases about the registration store: patients, identifiers,
//! encounters, merges, and their transaction with the event log.

use super::*;

/// An event of `kind` in a correlation of its own.
fn ev(kind: &str) -> EventRecord {
    EventRecord {
        id: Uuid::now_v7(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        kind: kind.into(),
        subject: format!("medbus.events.{kind}"),
        patient_id: Some("urn:mrn|P1".into()),
        body: json!({"kind": kind}),
        occurred_at: base(),
    }
}

fn upsert_patient(key: &str, identifiers: &[(Option<&str>, &str)], family: &str) -> RegistrationChange {
    RegistrationChange::UpsertPatient {
        key: key.into(),
        identifiers: identifiers
            .iter()
            .map(|(s, v)| (s.map(Into::into), (*v).to_string()))
            .collect(),
        resource: json!({"resourceType": "Patient", "name": [{"family": family}]}),
    }
}

fn upsert_encounter(key: &str, patient_key: &str, status: &str) -> RegistrationChange {
    RegistrationChange::UpsertEncounter {
        key: key.into(),
        patient_key: patient_key.into(),
        status: status.into(),
        resource: json!({"resourceType": "Encounter", "status": status}),
    }
}

fn merge(surviving: &str, merged: &[&str]) -> RegistrationChange {
    RegistrationChange::MergePatients {
        surviving: surviving.into(),
        merged: merged.iter().map(|m| (*m).to_string()).collect(),
    }
}

/// Applies `changes` under a fresh event and asserts it was new.
async fn apply(h: &Harness, changes: &[RegistrationChange]) -> EventRecord {
    let e = ev("patient.updated");
    assert!(h
        .store
        .registration()
        .apply_registration(&e, changes)
        .await
        .expect("apply"));
    e
}

async fn key_of(h: &Harness, system: Option<&str>, value: &str) -> Option<String> {
    let found = h.store.registration().find_patient(system, value).await.expect("find");
    found.map(|p| p.key)
}

pub async fn registration_upsert_reads_back(h: &Harness) {
    let r = h.store.registration();
    let before = now_us();
    apply(h, &[upsert_patient("urn:mrn|P1", &[(Some("urn:mrn"), "P1")], "Ørsted")]).await;
    let p = r.patient("urn:mrn|P1").await.expect("patient").expect("stored");
    assert_eq!(p.key, "urn:mrn|P1");
    assert_eq!(
        p.resource,
        json!({"resourceType": "Patient", "name": [{"family": "Ørsted"}]})
    );
    assert_eq!((p.merged_into, p.version), (None, 1));
    assert!(p.updated_at >= before && p.updated_at <= now_us(), "{:?}", p.updated_at);
    assert!(r.patient("urn:mrn|P2").await.expect("patient").is_none());
    assert_eq!(r.registration_counts().await.expect("counts"), (1, 0));
}

pub async fn registration_redelivery_changes_nothing(h: &Harness) {
    let r = h.store.registration();
    let e = ev("patient.registered");
    let first = [upsert_patient("urn:mrn|P1", &[(Some("urn:mrn"), "P1")], "One")];
    assert!(r.apply_registration(&e, &first).await.expect("apply"));
    let stored = r.patient("urn:mrn|P1").await.expect("patient");
    // The same event id again, even with other changes: nothing happens.
    let again = [
        upsert_patient("urn:mrn|P1", &[(Some("urn:mrn"), "X9")], "Two"),
        upsert_encounter("V1", "urn:mrn|P1", "in-progress"),
    ];
    assert!(!r.apply_registration(&e, &again).await.expect("apply again"));
    assert!(!r.apply_registration(&e, &first).await.expect("apply third"));
    assert_eq!(r.patient("urn:mrn|P1").await.expect("patient"), stored);
    assert_eq!(stored.map(|p| p.version), Some(1));
    assert_eq!(key_of(h, Some("urn:mrn"), "X9").await, None);
    assert_eq!(r.registration_counts().await.expect("counts"), (1, 0));
    assert_eq!(h.store.events_for(e.correlation_id).await.expect("events").len(), 1);
    // An event recorded on its own counts as applied too.
    let recorded = ev("patient.registered");
    assert!(h.store.record_event(&recorded).await.expect("record"));
    assert!(!r.apply_registration(&recorded, &again).await.expect("apply recorded"));
    assert_eq!(r.registration_counts().await.expect("counts"), (1, 0));
}

pub async fn registration_version_increments_on_replace(h: &Harness) {
    let r = h.store.registration();
    for (n, family) in ["One", "Two", "Three"].into_iter().enumerate() {
        apply(h, &[upsert_patient("urn:mrn|P1", &[], family)]).await;
        let p = r.patient("urn:mrn|P1").await.expect("patient").expect("stored");
        assert_eq!(p.version, i64::try_from(n + 1).expect("small"));
        assert_eq!(p.resource["name"][0]["family"], family);
    }
    // Two upserts in one event are two replaces.
    apply(
        h,
        &[
            upsert_patient("urn:mrn|P1", &[], "4"),
            upsert_patient("urn:mrn|P1", &[], "5"),
        ],
    )
    .await;
    let p = r.patient("urn:mrn|P1").await.expect("patient").expect("stored");
    assert_eq!((p.version, p.resource["name"][0]["family"].clone()), (5, json!("5")));
}

pub async fn registration_identifier_lookup(h: &Harness) {
    apply(
        h,
        &[
            upsert_patient(
                "urn:mrn|P1",
                &[(Some("urn:mrn"), "P1"), (None, "123-45"), (Some("urn:nhs"), "9")],
                "A",
            ),
            upsert_patient("urn:mrn|P2", &[(Some("urn:mrn"), "P2")], "B"),
        ],
    )
    .await;
    assert_eq!(key_of(h, Some("urn:mrn"), "P1").await.as_deref(), Some("urn:mrn|P1"));
    assert_eq!(key_of(h, Some("urn:nhs"), "9").await.as_deref(), Some("urn:mrn|P1"));
    assert_eq!(key_of(h, Some("urn:mrn"), "P2").await.as_deref(), Some("urn:mrn|P2"));
    // No system is its own system ('').
    assert_eq!(key_of(h, None, "123-45").await.as_deref(), Some("urn:mrn|P1"));
    assert_eq!(key_of(h, Some(""), "123-45").await.as_deref(), Some("urn:mrn|P1"));
    assert_eq!(key_of(h, Some("urn:mrn"), "123-45").await, None);
    assert_eq!(key_of(h, None, "P1").await, None);
    assert_eq!(key_of(h, Some("urn:mrn"), "P3").await, None);
    // An identifier claimed by another patient moves to it; others stay.
    apply(h, &[upsert_patient("urn:mrn|P2", &[(Some("urn:nhs"), "9")], "B")]).await;
    assert_eq!(key_of(h, Some("urn:nhs"), "9").await.as_deref(), Some("urn:mrn|P2"));
    assert_eq!(key_of(h, Some("urn:mrn"), "P2").await.as_deref(), Some("urn:mrn|P2"));
    assert_eq!(key_of(h, Some("urn:mrn"), "P1").await.as_deref(), Some("urn:mrn|P1"));
}

pub async fn registration_merge_moves_identifiers_and_encounters(h: &Harness) {
    let r = h.store.registration();
    apply(
        h,
        &[
            upsert_patient("urn:mrn|A", &[(Some("urn:mrn"), "A")], "Alpha"),
            upsert_patient("urn:mrn|B", &[(Some("urn:mrn"), "B"), (None, "b-ssn")], "Beta"),
            upsert_encounter("VA", "urn:mrn|A", "finished"),
            upsert_encounter("VB1", "urn:mrn|B", "finished"),
            upsert_encounter("VB2", "urn:mrn|B", "in-progress"),
        ],
    )
    .await;
    let e = apply(h, &[merge("urn:mrn|A", &["urn:mrn|B"])]).await;
    let b = r.patient("urn:mrn|B").await.expect("patient").expect("kept");
    assert_eq!(b.merged_into.as_deref(), Some("urn:mrn|A"));
    assert_eq!(
        b.resource["name"][0]["family"], "Beta",
        "a merged patient keeps its resource"
    );
    let a = r.patient("urn:mrn|A").await.expect("patient").expect("kept");
    assert_eq!((a.merged_into, a.version), (None, 1));
    for (system, value) in [(Some("urn:mrn"), "A"), (Some("urn:mrn"), "B"), (None, "b-ssn")] {
        assert_eq!(key_of(h, system, value).await.as_deref(), Some("urn:mrn|A"), "{value}");
    }
    let keys = |v: Vec<EncounterRow>| v.into_iter().map(|e| (e.key, e.patient_key)).collect::<Vec<_>>();
    assert_eq!(
        keys(r.encounters_of("urn:mrn|A").await.expect("encounters")),
        [("VA", "urn:mrn|A"), ("VB1", "urn:mrn|A"), ("VB2", "urn:mrn|A")].map(|(k, p)| (k.to_string(), p.to_string()))
    );
    assert!(r.encounters_of("urn:mrn|B").await.expect("encounters").is_empty());
    assert_eq!(r.registration_counts().await.expect("counts"), (2, 3));
    assert_eq!(h.store.events_for(e.correlation_id).await.expect("events"), [e]);

    // A chain: A is merged into C later; B (via A) and A resolve to C.
    apply(h, &[upsert_patient("urn:mrn|C", &[(Some("urn:mrn"), "C")], "Gamma")]).await;
    apply(h, &[merge("urn:mrn|C", &["urn:mrn|A", "urn:mrn|C", "urn:mrn|A"])]).await;
    for value in ["A", "B", "C"] {
        assert_eq!(
            key_of(h, Some("urn:mrn"), value).await.as_deref(),
            Some("urn:mrn|C"),
            "{value}"
        );
    }
    let b = r.patient("urn:mrn|B").await.expect("patient").expect("kept");
    assert_eq!(
        b.merged_into.as_deref(),
        Some("urn:mrn|A"),
        "patient() does not follow merges"
    );
    assert_eq!(r.encounters_of("urn:mrn|C").await.expect("encounters").len(), 3);
    // B re-indexed under its own key (an old message) still resolves through the chain.
    apply(h, &[upsert_patient("urn:mrn|B", &[(Some("urn:old"), "b")], "Beta")]).await;
    let found = r
        .find_patient(Some("urn:old"), "b")
        .await
        .expect("find")
        .expect("found");
    assert_eq!((found.key.as_str(), found.merged_into), ("urn:mrn|C", None));
    // A merge naming a merged-away patient as survivor makes it live again.
    apply(h, &[merge("urn:mrn|A", &["urn:mrn|C"])]).await;
    assert_eq!(key_of(h, Some("urn:mrn"), "C").await.as_deref(), Some("urn:mrn|A"));
    assert_eq!(key_of(h, Some("urn:old"), "b").await.as_deref(), Some("urn:mrn|A"));
    assert_eq!(
        r.patient("urn:mrn|A")
            .await
            .expect("patient")
            .and_then(|p| p.merged_into),
        None
    );
}

pub async fn registration_merge_of_unknown_creates_stub(h: &Harness) {
    let r = h.store.registration();
    apply(h, &[upsert_patient("urn:mrn|S", &[(Some("urn:mrn"), "S")], "Survivor")]).await;
    apply(h, &[merge("urn:mrn|S", &["urn:mrn|GONE"])]).await;
    let stub = r.patient("urn:mrn|GONE").await.expect("patient").expect("stub");
    assert_eq!(
        (stub.resource, stub.merged_into.as_deref(), stub.version),
        (json!({}), Some("urn:mrn|S"), 0)
    );
    // A later message about the merged patient indexes it and resolves to the survivor.
    apply(
        h,
        &[upsert_patient("urn:mrn|GONE", &[(Some("urn:mrn"), "GONE")], "Late")],
    )
    .await;
    let late = r.patient("urn:mrn|GONE").await.expect("patient").expect("kept");
    assert_eq!((late.version, late.merged_into.as_deref()), (1, Some("urn:mrn|S")));
    assert_eq!(key_of(h, Some("urn:mrn"), "GONE").await.as_deref(), Some("urn:mrn|S"));
    // An unknown survivor is a live stub.
    apply(h, &[merge("urn:mrn|NEW", &["urn:mrn|S"])]).await;
    let new = r.patient("urn:mrn|NEW").await.expect("patient").expect("stub");
    assert_eq!((new.resource, new.merged_into, new.version), (json!({}), None, 0));
    assert_eq!(key_of(h, Some("urn:mrn"), "S").await.as_deref(), Some("urn:mrn|NEW"));
    assert_eq!(r.registration_counts().await.expect("counts"), (3, 0));
}

pub async fn registration_encounters_oldest_first(h: &Harness) {
    let r = h.store.registration();
    apply(
        h,
        &[
            upsert_patient("urn:mrn|P1", &[], "A"),
            upsert_patient("urn:mrn|P2", &[], "B"),
        ],
    )
    .await;
    // Keys deliberately out of alphabetical order.
    for key in ["V9", "V1", "V5"] {
        apply(h, &[upsert_encounter(key, "urn:mrn|P1", "planned")]).await;
    }
    apply(h, &[upsert_encounter("V0", "urn:mrn|P2", "planned")]).await;
    // Replacing an encounter keeps its place.
    let before = now_us();
    apply(h, &[upsert_encounter("V9", "urn:mrn|P1", "finished")]).await;
    let got = r.encounters_of("urn:mrn|P1").await.expect("encounters");
    let keys: Vec<_> = got.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["V9", "V1", "V5"]);
    assert_eq!(got[0].status, "finished");
    assert_eq!(
        got[0].resource,
        json!({"resourceType": "Encounter", "status": "finished"})
    );
    assert!(got[0].updated_at >= before);
    assert_eq!(got[1].status, "planned");
    assert_eq!(r.encounters_of("urn:mrn|P2").await.expect("encounters").len(), 1);
    assert!(r.encounters_of("urn:mrn|P3").await.expect("encounters").is_empty());
    assert_eq!(r.registration_counts().await.expect("counts"), (2, 4));
}

pub async fn registration_event_in_log(h: &Harness) {
    let mut e = ev("patient.registered");
    e.body = json!({"patient": {"id": "P1"}, "n": 1});
    let changes = [upsert_patient("urn:mrn|P1", &[(Some("urn:mrn"), "P1")], "A")];
    assert!(h
        .store
        .registration()
        .apply_registration(&e, &changes)
        .await
        .expect("apply"));
    assert_eq!(h.store.events_for(e.correlation_id).await.expect("events"), [e.clone()]);
    // No changes at all still records the event, once.
    let empty = ev("patient.updated");
    assert!(h
        .store
        .registration()
        .apply_registration(&empty, &[])
        .await
        .expect("apply"));
    assert!(!h
        .store
        .registration()
        .apply_registration(&empty, &[])
        .await
        .expect("again"));
    assert_eq!(h.store.events_for(empty.correlation_id).await.expect("events"), [empty]);
}

pub async fn registration_failure_rolls_back_event(h: &Harness) {
    let r = h.store.registration();
    let e = ev("encounter.started");
    // The patient is upserted first, then an encounter of an unknown patient
    // violates the foreign key: nothing of the event is kept.
    let changes = [
        upsert_patient("urn:mrn|P1", &[(Some("urn:mrn"), "P1")], "A"),
        upsert_encounter("V1", "urn:mrn|NOBODY", "in-progress"),
    ];
    let err = r.apply_registration(&e, &changes).await.expect_err("refused");
    assert!(matches!(err, StoreError::Invalid(_)) && !err.is_retryable(), "{err:?}");
    assert!(h.store.events_for(e.correlation_id).await.expect("events").is_empty());
    assert!(r.patient("urn:mrn|P1").await.expect("patient").is_none());
    assert_eq!(key_of(h, Some("urn:mrn"), "P1").await, None);
    assert_eq!(r.registration_counts().await.expect("counts"), (0, 0));
    // The store is still usable, and the same event applies once fixed.
    let fixed = [changes[0].clone(), upsert_encounter("V1", "urn:mrn|P1", "in-progress")];
    assert!(r.apply_registration(&e, &fixed).await.expect("apply fixed"));
    assert_eq!(r.registration_counts().await.expect("counts"), (1, 1));
    assert_eq!(h.store.events_for(e.correlation_id).await.expect("events"), [e]);
}

pub async fn registration_concurrent_redelivery_applies_once(h: &Harness) {
    let e = ev("patient.registered");
    let tasks = (0..8).map(|_| {
        let (s, e) = (h.store.clone(), e.clone());
        tokio::spawn(async move {
            let changes = [upsert_patient("urn:mrn|P1", &[(Some("urn:mrn"), "P1")], "A")];
            s.registration().apply_registration(&e, &changes).await
        })
    });
    let mut applied = 0;
    for r in futures::future::join_all(tasks).await {
        applied += usize::from(r.expect("task").expect("apply"));
    }
    assert_eq!(applied, 1);
    let p = h.store.registration().patient("urn:mrn|P1").await.expect("patient");
    assert_eq!(p.map(|p| p.version), Some(1));
}

// The batch cases keep their list here, next to them; they run as
// `registration::sqlite::<case>` and `registration::postgres::<case>`.
conformance!(
    registration_batch_applies_in_order_like_one_by_one,
    registration_batch_skips_events_already_applied,
    registration_batch_failure_rolls_back_the_whole_batch,
    registration_concurrent_overlapping_batches_apply_each_event_once,
);

/// Another empty store of the same kind as `h`, to compare against.
async fn twin(h: &Harness) -> Harness {
    match h.kind {
        "sqlite" => Harness::sqlite().await,
        // `h` exists, so PostgreSQL is there.
        _ => Harness::postgres().await.expect("a second PostgreSQL database"),
    }
}

/// What the registration rows of `keys` look like, without change times.
async fn snapshot(h: &Harness, keys: &[&str]) -> Vec<String> {
    let r = h.store.registration();
    let mut out = vec![format!("counts {:?}", r.registration_counts().await.expect("counts"))];
    for key in keys {
        let p = r.patient(key).await.expect("patient");
        out.push(format!(
            "{key}: {:?}",
            p.map(|p| (p.resource, p.merged_into, p.version))
        ));
        let encs = r.encounters_of(key).await.expect("encounters");
        out.push(format!(
            "{key} encounters: {:?}",
            encs.into_iter()
                .map(|e| (e.key, e.patient_key, e.status, e.resource))
                .collect::<Vec<_>>()
        ));
    }
    for value in ["P1", "P2", "P3"] {
        out.push(format!(
            "urn:mrn|{value} -> {:?}",
            key_of(h, Some("urn:mrn"), value).await
        ));
    }
    out
}

pub async fn registration_batch_applies_in_order_like_one_by_one(h: &Harness) {
    // Register, update, admit, discharge, register another, merge it in: one
    // patient's story, where each step depends on the one before.
    let batch: Vec<(EventRecord, Vec<RegistrationChange>)> = vec![
        (
            ev("patient.registered"),
            vec![upsert_patient("urn:mrn|P1", &[(Some("urn:mrn"), "P1")], "One")],
        ),
        (
            ev("patient.updated"),
            vec![upsert_patient("urn:mrn|P1", &[(Some("urn:mrn"), "P1")], "Two")],
        ),
        (
            ev("encounter.started"),
            vec![
                upsert_patient("urn:mrn|P1", &[(Some("urn:mrn"), "P1")], "Two"),
                upsert_encounter("V1", "urn:mrn|P1", "in-progress"),
            ],
        ),
        (
            ev("encounter.finished"),
            vec![
                upsert_patient("urn:mrn|P1", &[(Some("urn:mrn"), "P1")], "Two"),
                upsert_encounter("V1", "urn:mrn|P1", "finished"),
            ],
        ),
        (
            ev("encounter.started"),
            vec![
                upsert_patient("urn:mrn|P2", &[(Some("urn:mrn"), "P2")], "Dup"),
                upsert_encounter("V2", "urn:mrn|P2", "in-progress"),
            ],
        ),
        (
            ev("patient.merged"),
            vec![
                upsert_patient("urn:mrn|P1", &[(Some("urn:mrn"), "P1")], "Three"),
                merge("urn:mrn|P1", &["urn:mrn|P2", "urn:mrn|P3"]),
            ],
        ),
        // Patients of different events written together: an identifier
        // moving to another patient, the same patient again.
        (
            ev("patient.registered"),
            vec![upsert_patient("urn:mrn|P4", &[(Some("urn:mrn"), "X")], "Four")],
        ),
        (
            ev("patient.registered"),
            vec![upsert_patient(
                "urn:mrn|P5",
                &[(Some("urn:mrn"), "X"), (None, "Y")],
                "Five",
            )],
        ),
        (
            ev("patient.updated"),
            vec![upsert_patient("urn:mrn|P4", &[(Some("urn:mrn"), "Z")], "Four again")],
        ),
    ];
    let r = h.store.registration();
    assert_eq!(r.apply_registrations(&batch).await.expect("batch"), [true; 9]);

    let one_by_one = twin(h).await;
    for (e, changes) in &batch {
        assert!(one_by_one
            .store
            .registration()
            .apply_registration(e, changes)
            .await
            .expect("apply"));
    }
    let keys = ["urn:mrn|P1", "urn:mrn|P2", "urn:mrn|P3", "urn:mrn|P4", "urn:mrn|P5"];
    let got = snapshot(h, &keys).await;
    assert_eq!(got, snapshot(&one_by_one, &keys).await);
    one_by_one.store.close().await;

    // And the state is the story's end, not just the same as one by one.
    let p1 = r.patient("urn:mrn|P1").await.expect("patient").expect("stored");
    assert_eq!(
        (p1.version, p1.resource["name"][0]["family"].clone()),
        (5, json!("Three"))
    );
    let encs = r.encounters_of("urn:mrn|P1").await.expect("encounters");
    let encs: Vec<_> = encs.iter().map(|e| (e.key.as_str(), e.status.as_str())).collect();
    assert_eq!(encs, [("V1", "finished"), ("V2", "in-progress")]);
    assert_eq!(key_of(h, Some("urn:mrn"), "P2").await.as_deref(), Some("urn:mrn|P1"));
    assert_eq!(key_of(h, Some("urn:mrn"), "X").await.as_deref(), Some("urn:mrn|P5"));
    assert_eq!(key_of(h, None, "Y").await.as_deref(), Some("urn:mrn|P5"));
    assert_eq!(key_of(h, Some("urn:mrn"), "Z").await.as_deref(), Some("urn:mrn|P4"));
    let p4 = r.patient("urn:mrn|P4").await.expect("patient").expect("stored");
    assert_eq!(
        (p4.version, p4.resource["name"][0]["family"].clone()),
        (2, json!("Four again"))
    );
    for (e, _) in &batch {
        assert_eq!(
            h.store.events_for(e.correlation_id).await.expect("events"),
            std::slice::from_ref(e)
        );
    }
    // An empty batch is a no-op.
    assert!(r.apply_registrations(&[]).await.expect("empty").is_empty());
}

pub async fn registration_batch_skips_events_already_applied(h: &Harness) {
    let r = h.store.registration();
    let earlier = ev("patient.registered");
    let p1 = [upsert_patient("urn:mrn|P1", &[(Some("urn:mrn"), "P1")], "One")];
    assert!(r.apply_registration(&earlier, &p1).await.expect("apply"));
    let recorded = ev("patient.registered");
    assert!(h.store.record_event(&recorded).await.expect("record"));

    let fresh = ev("patient.updated");
    let later = ev("patient.updated");
    let batch = vec![
        (fresh.clone(), vec![upsert_patient("urn:mrn|P1", &[], "Two")]),
        // Applied before the batch: skipped, even with other changes.
        (
            earlier.clone(),
            vec![upsert_patient("urn:mrn|P1", &[(Some("urn:mrn"), "X9")], "Nope")],
        ),
        // Applied earlier in this batch: skipped.
        (fresh.clone(), vec![upsert_patient("urn:mrn|P1", &[], "Nope")]),
        // Only recorded in the log: counts as applied.
        (recorded.clone(), vec![upsert_encounter("V1", "urn:mrn|P1", "planned")]),
        (later.clone(), vec![upsert_patient("urn:mrn|P1", &[], "Three")]),
    ];
    assert_eq!(
        r.apply_registrations(&batch).await.expect("batch"),
        [true, false, false, false, true]
    );
    let p = r.patient("urn:mrn|P1").await.expect("patient").expect("stored");
    assert_eq!(
        (p.version, p.resource["name"][0]["family"].clone()),
        (3, json!("Three"))
    );
    assert_eq!(key_of(h, Some("urn:mrn"), "X9").await, None);
    assert_eq!(r.registration_counts().await.expect("counts"), (1, 0));
    for e in [&earlier, &recorded, &fresh, &later] {
        assert_eq!(h.store.events_for(e.correlation_id).await.expect("events").len(), 1);
    }
    // The whole batch again: every event is skipped, nothing changes.
    assert_eq!(r.apply_registrations(&batch).await.expect("again"), [false; 5]);
    assert_eq!(
        r.patient("urn:mrn|P1").await.expect("patient").map(|p| p.version),
        Some(3)
    );
}

pub async fn registration_batch_failure_rolls_back_the_whole_batch(h: &Harness) {
    let r = h.store.registration();
    let before = ev("patient.registered");
    let p0 = [upsert_patient("urn:mrn|P0", &[(Some("urn:mrn"), "P0")], "Zero")];
    assert!(r.apply_registration(&before, &p0).await.expect("apply"));

    fn good(kind: &str, key: &str, value: &str) -> (EventRecord, Vec<RegistrationChange>) {
        (ev(kind), vec![upsert_patient(key, &[(Some("urn:mrn"), value)], "Fine")])
    }
    let mut batch = vec![
        good("patient.registered", "urn:mrn|P1", "P1"),
        good("patient.updated", "urn:mrn|P0", "P0"),
        // An encounter of a patient nobody stored violates the foreign key.
        (
            ev("encounter.started"),
            vec![
                upsert_patient("urn:mrn|P2", &[(Some("urn:mrn"), "P2")], "Two"),
                upsert_encounter("V1", "urn:mrn|NOBODY", "in-progress"),
            ],
        ),
        good("patient.registered", "urn:mrn|P3", "P3"),
    ];
    let err = r.apply_registrations(&batch).await.expect_err("refused");
    assert!(matches!(err, StoreError::Invalid(_)) && !err.is_retryable(), "{err:?}");
    // Nothing of the batch, before or after the failing event, is visible.
    for (e, _) in &batch {
        assert!(h.store.events_for(e.correlation_id).await.expect("events").is_empty());
    }
    assert_eq!(r.registration_counts().await.expect("counts"), (1, 0));
    let p0_row = r.patient("urn:mrn|P0").await.expect("patient").expect("kept");
    assert_eq!(
        (p0_row.version, p0_row.resource["name"][0]["family"].clone()),
        (1, json!("Zero"))
    );
    for value in ["P1", "P2", "P3"] {
        assert_eq!(key_of(h, Some("urn:mrn"), value).await, None, "{value}");
    }
    // The store is still usable, and the batch applies once the event is fixed.
    batch[2].1[1] = upsert_encounter("V1", "urn:mrn|P2", "in-progress");
    assert_eq!(r.apply_registrations(&batch).await.expect("fixed"), [true; 4]);
    assert_eq!(r.registration_counts().await.expect("counts"), (4, 1));
    assert_eq!(
        r.patient("urn:mrn|P0").await.expect("patient").map(|p| p.version),
        Some(2)
    );
}

pub async fn registration_concurrent_overlapping_batches_apply_each_event_once(h: &Harness) {
    // The same events in batches of different order, at once: a redelivery
    // racing the first delivery, or two consumers. Each event applies once.
    let events: Vec<(EventRecord, Vec<RegistrationChange>)> = (0..20)
        .map(|i| {
            let key = format!("urn:mrn|C{i}");
            (ev("patient.registered"), vec![upsert_patient(&key, &[], "Same")])
        })
        .collect();
    let tasks = (0..4).map(|t| {
        let s = h.store.clone();
        let mut batch = events.clone();
        if t % 2 == 1 {
            batch.reverse();
        }
        batch.rotate_left(t * 3);
        tokio::spawn(async move {
            let flags = s.registration().apply_registrations(&batch).await?;
            Ok::<_, StoreError>(batch.into_iter().map(|(e, _)| e.id).zip(flags).collect::<Vec<_>>())
        })
    });
    let mut applied: BTreeMap<Uuid, usize> = BTreeMap::new();
    for r in futures::future::join_all(tasks).await {
        for (id, new) in r.expect("task").expect("apply") {
            *applied.entry(id).or_default() += usize::from(new);
        }
    }
    assert_eq!(applied.len(), 20);
    assert!(applied.values().all(|n| *n == 1), "{applied:?}");
    for i in 0..20 {
        let p = h
            .store
            .registration()
            .patient(&format!("urn:mrn|C{i}"))
            .await
            .expect("patient");
        assert_eq!(p.map(|p| p.version), Some(1), "C{i}");
    }
}
