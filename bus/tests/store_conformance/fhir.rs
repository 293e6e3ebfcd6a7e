//! Conformance cases about the FHIR resource store: versions, the identifier
//! index (unique per resource type), the write modes and their conflicts,
//! one transaction per batch, and concurrent claims of one identifier.

use super::*;

const PATIENT: &str = "Patient";
const MRN: &str = "urn:oid:1.2.36.146.595.217.0.1";

fn ident(system: Option<&str>, value: &str) -> FhirIdentifier {
    FhirIdentifier {
        system: system.map(Into::into),
        value: value.into(),
    }
}

/// A write of `ty`/`id` in `mode` with `identifiers` and a small resource.
fn write(ty: &str, id: &str, mode: WriteMode, identifiers: Vec<FhirIdentifier>) -> FhirWrite {
    FhirWrite {
        resource_type: ty.into(),
        id: id.into(),
        identifiers,
        resource: json!({"resourceType": ty, "id": id, "active": true}),
        mode,
    }
}

/// A Patient create with one MRN.
fn patient(id: &str, mrn: &str) -> FhirWrite {
    write(PATIENT, id, WriteMode::Create, vec![ident(Some(MRN), mrn)])
}

/// Writes one resource and returns its row.
async fn put(h: &Harness, w: FhirWrite) -> FhirRow {
    let mut rows = h.store.fhir().fhir_write(&[w]).await.expect("write");
    assert_eq!(rows.len(), 1);
    rows.remove(0)
}

/// Writes and returns the conflict's message (and fails on anything else).
async fn conflict(h: &Harness, writes: &[FhirWrite]) -> String {
    match h.store.fhir().fhir_write(writes).await {
        Err(StoreError::Conflict(m)) => {
            assert!(!StoreError::Conflict(m.clone()).is_retryable());
            m
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn read(h: &Harness, ty: &str, id: &str) -> Option<FhirRow> {
    h.store.fhir().fhir_read(ty, id).await.expect("read")
}

/// Ids of the resources of `ty` found by the identifier.
async fn search(h: &Harness, ty: &str, system: Option<&str>, value: &str, limit: u32) -> Vec<String> {
    let rows = h
        .store
        .fhir()
        .fhir_search_identifier(ty, system, value, limit)
        .await
        .expect("search");
    rows.into_iter().map(|r| r.id).collect()
}

pub async fn fhir_create_read_round_trip(h: &Harness) {
    let before = now_us();
    let resource = json!({
        "resourceType": "Patient", "id": "p1",
        "name": [{"family": "Chalmers", "given": ["Peter", "James"]}],
        "birthDate": "1974-12-25", "multipleBirthInteger": 2, "weight": 72.5, "deceasedBoolean": false,
    });
    let w = FhirWrite {
        resource: resource.clone(),
        ..patient("p1", "12345")
    };
    let row = put(h, w).await;
    assert_eq!(
        (row.resource_type.as_str(), row.id.as_str(), row.version),
        (PATIENT, "p1", 1)
    );
    assert_eq!(row.resource, resource);
    assert!(
        row.last_updated >= before && row.last_updated <= now_us(),
        "{:?}",
        row.last_updated
    );
    // What the write returned is what is stored.
    assert_eq!(read(h, PATIENT, "p1").await, Some(row));
    // The same id of another type, or another id, is absent.
    assert_eq!(read(h, "Practitioner", "p1").await, None);
    assert_eq!(read(h, PATIENT, "p2").await, None);
    assert_eq!(
        h.store.fhir().fhir_write(&[]).await.expect("empty batch"),
        Vec::<FhirRow>::new()
    );
}

pub async fn fhir_update_bumps_version_and_replaces_identifiers(h: &Harness) {
    let first = put(h, patient("p1", "OLD")).await;
    let replacement = FhirWrite {
        resource: json!({"resourceType": "Patient", "id": "p1", "active": false}),
        ..write(
            PATIENT,
            "p1",
            WriteMode::Update,
            vec![ident(Some(MRN), "NEW"), ident(None, "NEW")],
        )
    };
    let second = put(h, replacement.clone()).await;
    assert_eq!(second.version, 2);
    assert!(second.last_updated >= first.last_updated);
    assert_eq!(second.resource, replacement.resource);
    assert_eq!(read(h, PATIENT, "p1").await, Some(second));
    // The old identifier no longer finds it; the new ones do.
    assert!(search(h, PATIENT, Some(MRN), "OLD", 10).await.is_empty());
    assert!(search(h, PATIENT, None, "OLD", 10).await.is_empty());
    assert_eq!(search(h, PATIENT, Some(MRN), "NEW", 10).await, ["p1"]);
    // The old identifier is free for another resource.
    put(h, patient("p2", "OLD")).await;
    assert_eq!(search(h, PATIENT, Some(MRN), "OLD", 10).await, ["p2"]);
    // An update without identifiers drops them all.
    let third = put(h, write(PATIENT, "p1", WriteMode::Update, Vec::new())).await;
    assert_eq!(third.version, 3);
    assert!(search(h, PATIENT, None, "NEW", 10).await.is_empty());
    // Update of an absent id creates it (version 1), identifiers and all.
    let created = put(h, write(PATIENT, "p3", WriteMode::Update, vec![ident(Some(MRN), "P3")])).await;
    assert_eq!(created.version, 1);
    assert_eq!(search(h, PATIENT, Some(MRN), "P3", 10).await, ["p3"]);
    assert_eq!(h.store.fhir().fhir_count(PATIENT).await.expect("count"), 3);
}

pub async fn fhir_same_id_twice_in_one_batch(h: &Harness) {
    let rows = h
        .store
        .fhir()
        .fhir_write(&[
            patient("p1", "A"),
            write(
                PATIENT,
                "p1",
                WriteMode::UpdateIfVersion(1),
                vec![ident(Some(MRN), "B")],
            ),
            write(PATIENT, "p2", WriteMode::Create, vec![ident(Some(MRN), "A")]),
        ])
        .await
        .expect("write");
    let versions: Vec<(&str, i64)> = rows.iter().map(|r| (r.id.as_str(), r.version)).collect();
    assert_eq!(versions, [("p1", 1), ("p1", 2), ("p2", 1)]);
    assert_eq!(read(h, PATIENT, "p1").await.map(|r| r.version), Some(2));
    // p1 let go of A earlier in the batch, so p2 could take it.
    assert_eq!(search(h, PATIENT, None, "A", 10).await, ["p2"]);
    assert_eq!(search(h, PATIENT, None, "B", 10).await, ["p1"]);
}

pub async fn fhir_create_on_existing_id_conflicts(h: &Harness) {
    let stored = put(h, patient("p1", "A")).await;
    let again = FhirWrite {
        resource: json!({"resourceType": "Patient", "id": "p1", "active": false}),
        ..patient("p1", "B")
    };
    let m = conflict(h, &[again]).await;
    assert!(m.contains("Patient/p1"), "{m}");
    // Nothing changed: row, version, identifiers.
    assert_eq!(read(h, PATIENT, "p1").await, Some(stored));
    assert!(search(h, PATIENT, None, "B", 10).await.is_empty());
    assert_eq!(search(h, PATIENT, None, "A", 10).await, ["p1"]);
    // The same id under another type is another resource.
    put(h, write("Practitioner", "p1", WriteMode::Create, Vec::new())).await;
}

pub async fn fhir_identifier_held_by_another_id_rolls_back_batch(h: &Harness) {
    let holder = put(h, patient("holder", "SECRET-MRN-77")).await;
    let batch = [
        write("Observation", "o1", WriteMode::Create, Vec::new()),
        write(PATIENT, "holder", WriteMode::Update, Vec::new()),
        write(PATIENT, "p2", WriteMode::Create, vec![ident(Some(MRN), "FREE")]),
        patient("p3", "SECRET-MRN-77"),
    ];
    // The holder gives its identifier up in write 2, so the batch passes…
    let rows = h.store.fhir().fhir_write(&batch).await.expect("write");
    assert_eq!(rows.len(), 4);
    assert_eq!(search(h, PATIENT, Some(MRN), "SECRET-MRN-77", 10).await, ["p3"]);
    // …and a batch whose last write claims an identifier another id holds
    // fails as a whole.
    let batch = [
        write("Observation", "o2", WriteMode::Create, Vec::new()),
        write(PATIENT, "holder", WriteMode::Update, vec![ident(Some(MRN), "H2")]),
        write(PATIENT, "p4", WriteMode::Create, vec![ident(Some(MRN), "P4")]),
        write(
            PATIENT,
            "p5",
            WriteMode::Create,
            vec![ident(None, "X"), ident(Some(MRN), "SECRET-MRN-77")],
        ),
    ];
    let m = conflict(h, &batch).await;
    // It names the type and the id holding it, never the value (PHI).
    assert!(m.contains("Patient/p3"), "{m}");
    assert!(!m.contains("SECRET"), "{m}");
    assert_eq!(read(h, "Observation", "o2").await, None);
    assert_eq!(read(h, PATIENT, "p4").await, None);
    assert_eq!(read(h, PATIENT, "p5").await, None);
    assert_eq!(
        read(h, PATIENT, "holder").await.map(|r| r.version),
        Some(holder.version + 1)
    );
    assert!(search(h, PATIENT, None, "H2", 10).await.is_empty());
    assert!(search(h, PATIENT, None, "P4", 10).await.is_empty());
    assert!(search(h, PATIENT, None, "X", 10).await.is_empty());
    assert_eq!(search(h, PATIENT, None, "SECRET-MRN-77", 10).await, ["p3"]);
    // An update of the holder may keep its own identifier; another id may not.
    let kept = put(
        h,
        write(
            PATIENT,
            "p3",
            WriteMode::Update,
            vec![ident(Some(MRN), "SECRET-MRN-77")],
        ),
    )
    .await;
    assert_eq!(kept.version, 2);
    let m = conflict(
        h,
        &[write(
            PATIENT,
            "holder",
            WriteMode::Update,
            vec![ident(Some(MRN), "SECRET-MRN-77")],
        )],
    )
    .await;
    assert!(m.contains("Patient/p3") && !m.contains("SECRET"), "{m}");
    // Two writes of one batch claiming one identifier: the second conflicts.
    let m = conflict(h, &[patient("p6", "TWICE"), patient("p7", "TWICE")]).await;
    assert!(m.contains("Patient/p6"), "{m}");
    assert_eq!(read(h, PATIENT, "p6").await, None);
    assert_eq!(h.store.fhir().fhir_count("Observation").await.expect("count"), 1);
    assert_eq!(h.store.fhir().fhir_count(PATIENT).await.expect("count"), 3);
}

pub async fn fhir_identifiers_are_per_type_and_system(h: &Harness) {
    // (None, x), (s, x) and (t, x) are three identifiers; one resource may hold all.
    put(
        h,
        write(
            PATIENT,
            "p1",
            WriteMode::Create,
            vec![ident(Some(MRN), "x"), ident(None, "x"), ident(Some(MRN), "x")],
        ),
    )
    .await;
    put(
        h,
        write(PATIENT, "p2", WriteMode::Create, vec![ident(Some("urn:other"), "x")]),
    )
    .await;
    // The same identifier under another resource type is no conflict.
    put(
        h,
        write("Practitioner", "d1", WriteMode::Create, vec![ident(Some(MRN), "x")]),
    )
    .await;
    assert_eq!(search(h, PATIENT, Some(MRN), "x", 10).await, ["p1"]);
    assert_eq!(search(h, PATIENT, Some("urn:other"), "x", 10).await, ["p2"]);
    // Some("") finds identifiers without a system.
    assert_eq!(search(h, PATIENT, Some(""), "x", 10).await, ["p1"]);
    // Without a system: every holder, once each.
    assert_eq!(search(h, PATIENT, None, "x", 10).await, ["p1", "p2"]);
    assert_eq!(search(h, "Practitioner", None, "x", 10).await, ["d1"]);
    // No system is its own value: another id may not take it.
    let m = conflict(h, &[write(PATIENT, "p3", WriteMode::Create, vec![ident(None, "x")])]).await;
    assert!(m.contains("Patient/p1"), "{m}");
    // The holder named is of the same type (not Practitioner d1).
    let m = conflict(
        h,
        &[write(PATIENT, "p3", WriteMode::Create, vec![ident(Some(MRN), "x")])],
    )
    .await;
    assert!(m.contains("Patient/p1") && !m.contains("d1"), "{m}");
}

pub async fn fhir_update_if_version(h: &Harness) {
    put(h, patient("p1", "A")).await;
    let v2 = put(
        h,
        write(
            PATIENT,
            "p1",
            WriteMode::UpdateIfVersion(1),
            vec![ident(Some(MRN), "B")],
        ),
    )
    .await;
    assert_eq!(v2.version, 2);
    assert_eq!(search(h, PATIENT, None, "B", 10).await, ["p1"]);
    // A stale version: conflict, nothing changed.
    let stale = FhirWrite {
        resource: json!({"resourceType": "Patient", "id": "p1", "active": false}),
        ..write(
            PATIENT,
            "p1",
            WriteMode::UpdateIfVersion(1),
            vec![ident(Some(MRN), "C")],
        )
    };
    let m = conflict(h, &[stale]).await;
    assert!(m.contains("Patient/p1") && m.contains('2'), "{m}");
    assert_eq!(read(h, PATIENT, "p1").await, Some(v2));
    assert!(search(h, PATIENT, None, "C", 10).await.is_empty());
    // A version ahead of the stored one, and an absent id, conflict too.
    conflict(h, &[write(PATIENT, "p1", WriteMode::UpdateIfVersion(3), Vec::new())]).await;
    let m = conflict(h, &[write(PATIENT, "nope", WriteMode::UpdateIfVersion(1), Vec::new())]).await;
    assert!(m.contains("Patient/nope"), "{m}");
    assert_eq!(read(h, PATIENT, "nope").await, None);
    let v3 = put(h, write(PATIENT, "p1", WriteMode::UpdateIfVersion(2), Vec::new())).await;
    assert_eq!(v3.version, 3);
}

pub async fn fhir_search_oldest_first_with_limit(h: &Harness) {
    for (id, system) in [("p1", "urn:a"), ("p2", "urn:b"), ("p3", "urn:c"), ("p4", "urn:d")] {
        put(
            h,
            write(PATIENT, id, WriteMode::Create, vec![ident(Some(system), "shared")]),
        )
        .await;
    }
    // Changed last, created first: still first.
    put(
        h,
        write(PATIENT, "p1", WriteMode::Update, vec![ident(Some("urn:a"), "shared")]),
    )
    .await;
    assert_eq!(search(h, PATIENT, None, "shared", 10).await, ["p1", "p2", "p3", "p4"]);
    assert_eq!(search(h, PATIENT, None, "shared", 2).await, ["p1", "p2"]);
    assert!(search(h, PATIENT, None, "shared", 0).await.is_empty());
    assert_eq!(search(h, PATIENT, Some("urn:c"), "shared", 10).await, ["p3"]);
    assert!(search(h, PATIENT, Some("urn:e"), "shared", 10).await.is_empty());
    assert!(search(h, PATIENT, None, "other", 10).await.is_empty());
    assert!(search(h, "Observation", None, "shared", 10).await.is_empty());
    // The rows found are the stored rows.
    let rows = h
        .store
        .fhir()
        .fhir_search_identifier(PATIENT, Some("urn:a"), "shared", 10)
        .await
        .expect("search");
    assert_eq!(rows, vec![read(h, PATIENT, "p1").await.expect("stored")]);
    assert_eq!(rows[0].version, 2);
}

pub async fn fhir_count_per_type(h: &Harness) {
    let f = h.store.fhir();
    assert_eq!(f.fhir_count(PATIENT).await.expect("count"), 0);
    put(h, patient("p1", "A")).await;
    put(h, patient("p2", "B")).await;
    put(h, write(PATIENT, "p1", WriteMode::Update, Vec::new())).await;
    put(h, write("Observation", "o1", WriteMode::Create, Vec::new())).await;
    assert_eq!(f.fhir_count(PATIENT).await.expect("count"), 2);
    assert_eq!(f.fhir_count("Observation").await.expect("count"), 1);
    assert_eq!(f.fhir_count("Encounter").await.expect("count"), 0);
}

pub async fn fhir_invalid_writes(h: &Harness) {
    let cases = [
        write("", "p1", WriteMode::Create, Vec::new()),
        write(PATIENT, "", WriteMode::Create, Vec::new()),
        write(PATIENT, "p1", WriteMode::Create, vec![ident(Some(MRN), "")]),
        write(PATIENT, "p1", WriteMode::Create, vec![ident(Some(""), "x")]),
    ];
    for bad in cases {
        // After a valid write in the same batch: nothing of it is kept.
        let batch = [write(PATIENT, "ok", WriteMode::Create, Vec::new()), bad.clone()];
        let err = h.store.fhir().fhir_write(&batch).await.expect_err("invalid");
        assert!(
            matches!(err, StoreError::Invalid(_)) && !err.is_retryable(),
            "{bad:?}: {err:?}"
        );
    }
    assert_eq!(h.store.fhir().fhir_count(PATIENT).await.expect("count"), 0);
}

/// Eight clients create a patient with the same MRN at once: one resource.
pub async fn fhir_concurrent_creates_of_one_identifier(h: &Harness) {
    for round in 0..5 {
        let mrn = format!("RACE-{round}");
        let tasks = (0..8).map(|i| {
            let (s, w) = (h.store.clone(), patient(&format!("r{round}-{i}"), &mrn));
            tokio::spawn(async move { s.fhir().fhir_write(&[w]).await })
        });
        let mut ok = 0;
        for r in futures::future::join_all(tasks).await {
            match r.expect("task") {
                Ok(_) => ok += 1,
                Err(StoreError::Conflict(m)) => assert!(!m.contains(&mrn), "{m}"),
                Err(e) => panic!("expected Ok or Conflict, got {e:?}"),
            }
        }
        assert_eq!(ok, 1, "round {round}");
        assert_eq!(search(h, PATIENT, Some(MRN), &mrn, 10).await.len(), 1);
    }
    assert_eq!(h.store.fhir().fhir_count(PATIENT).await.expect("count"), 5);
}

/// Eight clients create the same id at once: one wins, version 1.
pub async fn fhir_concurrent_creates_of_one_id(h: &Harness) {
    let tasks = (0..8).map(|i| {
        let (s, w) = (h.store.clone(), patient("same", &format!("M{i}")));
        tokio::spawn(async move { s.fhir().fhir_write(&[w]).await })
    });
    let mut ok = 0;
    for r in futures::future::join_all(tasks).await {
        match r.expect("task") {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("expected Ok or Conflict, got {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(read(h, PATIENT, "same").await.map(|r| r.version), Some(1));
    assert_eq!(h.store.fhir().fhir_count(PATIENT).await.expect("count"), 1);
}

pub async fn fhir_request_marks_follow_the_transaction(h: &Harness) {
    let fhir = h.store.fhir();
    assert_eq!(fhir.fhir_request("r1").await.expect("read"), None);
    // Committed with its writes.
    let rows = fhir.fhir_commit("r1", &[patient("p1", "M1")]).await.expect("commit");
    assert_eq!(rows[0].version, 1);
    assert_eq!(
        fhir.fhir_request("r1").await.expect("read"),
        Some(FhirRequestState::Committed)
    );
    // A refusal later does not change a committed request.
    fhir.fhir_refuse("r1", "late").await.expect("refuse");
    assert_eq!(
        fhir.fhir_request("r1").await.expect("read"),
        Some(FhirRequestState::Committed)
    );
    // A request whose writes conflict leaves no mark and nothing written...
    match fhir
        .fhir_commit("r2", &[patient("p2", "M2"), patient("p1", "M3")])
        .await
    {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(fhir.fhir_request("r2").await.expect("read"), None);
    assert_eq!(read(h, PATIENT, "p2").await, None);
    // ...until the server marks it refused; the first reason stays.
    fhir.fhir_refuse("r2", "Patient/p1 already exists")
        .await
        .expect("refuse");
    fhir.fhir_refuse("r2", "again").await.expect("refuse");
    assert_eq!(
        fhir.fhir_request("r2").await.expect("read"),
        Some(FhirRequestState::Refused("Patient/p1 already exists".into()))
    );
    // One mark per request: a second commit of r1 is refused and writes nothing.
    match fhir.fhir_commit("r1", &[patient("p3", "M4")]).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("r1"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(read(h, PATIENT, "p3").await, None);
    // A commit with no writes still marks the request.
    fhir.fhir_commit("r3", &[]).await.expect("commit");
    assert_eq!(
        fhir.fhir_request("r3").await.expect("read"),
        Some(FhirRequestState::Committed)
    );
    // Read together: what each single read says, nothing for an unknown id.
    let ids: Vec<String> = ["r1", "r2", "r3", "unknown"].iter().map(|r| r.to_string()).collect();
    let marks = fhir.fhir_requests(&ids).await.expect("read marks");
    assert_eq!(marks.len(), 3, "{marks:?}");
    assert_eq!(marks.get("r1"), Some(&FhirRequestState::Committed));
    assert_eq!(
        marks.get("r2"),
        Some(&FhirRequestState::Refused("Patient/p1 already exists".into()))
    );
    assert_eq!(marks.get("r3"), Some(&FhirRequestState::Committed));
    assert!(fhir.fhir_requests(&[]).await.expect("read none").is_empty());
}

pub async fn fhir_commit_many_isolates_a_failing_request(h: &Harness) {
    let fhir = h.store.fhir();
    let commit = |request: &str, writes: Vec<FhirWrite>| FhirCommit {
        request: request.into(),
        writes,
    };
    // All fine: one transaction, every request marked.
    let out = fhir
        .fhir_commit_many(&[
            commit("a1", vec![patient("p1", "M1")]),
            commit("a2", vec![patient("p2", "M2")]),
        ])
        .await;
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    assert_eq!(
        out[1].as_ref().map(|rows| rows[0].id.clone()).ok(),
        Some("p2".to_string())
    );
    for r in ["a1", "a2"] {
        assert_eq!(
            fhir.fhir_request(r).await.expect("read"),
            Some(FhirRequestState::Committed)
        );
    }
    // Their identifiers are claimed with them.
    assert_eq!(search(h, PATIENT, Some(MRN), "M2", 10).await, vec!["p2".to_string()]);
    assert_eq!(
        conflict(h, &[patient("other", "M1")]).await,
        "an identifier of Patient/other is already held by Patient/p1"
    );
    // The middle one claims an MRN p1 holds: it alone fails, the others are written and marked.
    let out = fhir
        .fhir_commit_many(&[
            commit("b1", vec![patient("p3", "M3")]),
            commit("b2", vec![patient("p4", "M1")]),
            commit("b3", vec![patient("p5", "M5")]),
        ])
        .await;
    assert!(out[0].is_ok() && out[2].is_ok(), "{out:?}");
    assert!(
        matches!(&out[1], Err(StoreError::Conflict(m)) if m.contains("Patient/p1")),
        "{out:?}"
    );
    assert_eq!(fhir.fhir_request("b2").await.expect("read"), None);
    assert_eq!(read(h, PATIENT, "p4").await, None);
    for (r, id) in [("b1", "p3"), ("b3", "p5")] {
        assert_eq!(
            fhir.fhir_request(r).await.expect("read"),
            Some(FhirRequestState::Committed)
        );
        assert!(read(h, PATIENT, id).await.is_some(), "{id}");
    }
    // Two requests of one batch claiming one MRN: the first wins.
    let out = fhir
        .fhir_commit_many(&[
            commit("c1", vec![patient("p6", "M6")]),
            commit("c2", vec![patient("p7", "M6")]),
        ])
        .await;
    assert!(
        out[0].is_ok() && matches!(out[1], Err(StoreError::Conflict(_))),
        "{out:?}"
    );
    assert_eq!(read(h, PATIENT, "p7").await, None);
    // Two requests of one batch creating one id, and a request marked already:
    // each fails alone, the rest is written with its identifiers.
    let out = fhir
        .fhir_commit_many(&[
            commit("d1", vec![patient("p8", "M8")]),
            commit("d2", vec![patient("p8", "M9")]),
            commit("a1", vec![patient("p10", "M10")]),
            commit("d4", vec![patient("p11", "M11"), patient("p12", "M12")]),
        ])
        .await;
    assert!(out[0].is_ok() && out[3].is_ok(), "{out:?}");
    assert!(
        matches!(&out[1], Err(StoreError::Conflict(m)) if m.contains("p8")),
        "{out:?}"
    );
    assert!(
        matches!(&out[2], Err(StoreError::Conflict(m)) if m.contains("a1")),
        "{out:?}"
    );
    assert_eq!(read(h, PATIENT, "p10").await, None);
    assert_eq!(search(h, PATIENT, Some(MRN), "M9", 10).await, Vec::<String>::new());
    assert_eq!(search(h, PATIENT, Some(MRN), "M12", 10).await, vec!["p12".to_string()]);
    assert_eq!(fhir.fhir_request("d2").await.expect("read"), None);
}

/// The create batches of one store by the path they took, read from a
/// recorder local to the case: cases run side by side in one process, so a
/// global recorder would mix their counts.
struct Batches {
    recorder: metrics_util::debugging::DebuggingRecorder,
    snapshots: metrics_util::debugging::Snapshotter,
    store: &'static str,
}

impl Batches {
    fn new(h: &Harness) -> Batches {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshots = recorder.snapshotter();
        Batches {
            recorder,
            snapshots,
            store: h.kind,
        }
    }

    /// Runs `fut` with this recorder as the local recorder of whichever
    /// thread polls it (the harness's runtime has several).
    async fn run<F: std::future::Future>(&self, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| metrics::with_local_recorder(&self.recorder, || fut.as_mut().poll(cx))).await
    }

    /// (batched, fallback) since the last call (a snapshot resets counters).
    fn taken(&self) -> (u64, u64) {
        let (mut batched, mut fallback) = (0, 0);
        for (key, _, _, value) in self.snapshots.snapshot().into_vec() {
            let key = key.key();
            if key.name() != "medbus_store_fhir_create_batches_total" {
                continue;
            }
            let label = |name: &str| key.labels().find(|l| l.key() == name).map(|l| l.value().to_string());
            assert_eq!(label("store").as_deref(), Some(self.store), "{key:?}");
            let metrics_util::debugging::DebugValue::Counter(n) = value else {
                panic!("{key:?} is not a counter");
            };
            match label("path").as_deref() {
                Some("batched") => batched += n,
                Some("fallback") => fallback += n,
                other => panic!("unexpected path {other:?}"),
            }
        }
        (batched, fallback)
    }
}

fn commit(request: &str, writes: Vec<FhirWrite>) -> FhirCommit {
    FhirCommit {
        request: request.into(),
        writes,
    }
}

/// Fresh creates with identifiers go in the set-based statements, not
/// statement by statement: the results alone cannot tell the two apart.
pub async fn fhir_fresh_create_batch_takes_the_batched_path(h: &Harness) {
    let fhir = h.store.fhir();
    let batches = Batches::new(h);
    let out = batches
        .run(fhir.fhir_commit_many(&[
            commit("a1", vec![patient("p1", "M1")]),
            commit(
                "a2",
                vec![
                    write(
                        PATIENT,
                        "p2",
                        WriteMode::Create,
                        vec![ident(Some(MRN), "M2"), ident(None, "M2")],
                    ),
                    write("Observation", "o2", WriteMode::Create, Vec::new()),
                ],
            ),
            commit("a3", vec![patient("p3", "M3")]),
        ]))
        .await;
    assert_eq!(batches.taken(), (1, 0), "{out:?}");
    let ids: Vec<Vec<(String, i64)>> = out
        .into_iter()
        .map(|r| {
            r.expect("commit")
                .into_iter()
                .map(|row| (row.id, row.version))
                .collect()
        })
        .collect();
    let v1 = |id: &str| (id.to_string(), 1);
    assert_eq!(ids, vec![vec![v1("p1")], vec![v1("p2"), v1("o2")], vec![v1("p3")]]);
    // Written as by the statement-per-write path: rows, identifiers, marks.
    for (r, id, mrn) in [("a1", "p1", "M1"), ("a2", "p2", "M2"), ("a3", "p3", "M3")] {
        assert_eq!(
            fhir.fhir_request(r).await.expect("read"),
            Some(FhirRequestState::Committed)
        );
        assert_eq!(read(h, PATIENT, id).await.map(|row| row.version), Some(1));
        assert_eq!(search(h, PATIENT, Some(MRN), mrn, 10).await, [id]);
    }
    assert_eq!(search(h, PATIENT, Some(""), "M2", 10).await, ["p2"]);
    assert!(read(h, "Observation", "o2").await.is_some());
    // A lone request is no batch: not counted.
    batches
        .run(fhir.fhir_commit_many(&[commit("a4", vec![patient("p4", "M4")])]))
        .await
        .into_iter()
        .for_each(|r| assert!(r.is_ok(), "{r:?}"));
    assert_eq!(batches.taken(), (0, 0));
}

/// A batch that differs from the plan (an identifier held, one id created
/// twice, a request marked already) falls back, with the results of before;
/// the next fresh batch takes the batched path again.
pub async fn fhir_conflicting_create_batch_falls_back(h: &Harness) {
    let fhir = h.store.fhir();
    let batches = Batches::new(h);
    fhir.fhir_commit("a1", &[patient("p1", "M1")]).await.expect("commit");
    // An identifier p1 holds.
    let out = batches
        .run(fhir.fhir_commit_many(&[
            commit("b1", vec![patient("p2", "M2")]),
            commit("b2", vec![patient("p3", "M1")]),
        ]))
        .await;
    assert_eq!(batches.taken(), (0, 1), "{out:?}");
    assert!(out[0].is_ok(), "{out:?}");
    assert!(
        matches!(&out[1], Err(StoreError::Conflict(m)) if m.contains("Patient/p1")),
        "{out:?}"
    );
    assert_eq!(read(h, PATIENT, "p3").await, None);
    assert_eq!(fhir.fhir_request("b2").await.expect("read"), None);
    // One id created by two requests of the batch: the first wins.
    let out = batches
        .run(fhir.fhir_commit_many(&[
            commit("c1", vec![patient("p4", "M4")]),
            commit("c2", vec![patient("p4", "M5")]),
        ]))
        .await;
    assert_eq!(batches.taken(), (0, 1), "{out:?}");
    assert!(out[0].is_ok(), "{out:?}");
    assert!(
        matches!(&out[1], Err(StoreError::Conflict(m)) if m.contains("Patient/p4")),
        "{out:?}"
    );
    assert_eq!(search(h, PATIENT, Some(MRN), "M4", 10).await, ["p4"]);
    assert!(search(h, PATIENT, Some(MRN), "M5", 10).await.is_empty());
    // A request marked already.
    let out = batches
        .run(fhir.fhir_commit_many(&[
            commit("a1", vec![patient("p6", "M6")]),
            commit("d2", vec![patient("p7", "M7")]),
        ]))
        .await;
    assert_eq!(batches.taken(), (0, 1), "{out:?}");
    assert!(
        matches!(&out[0], Err(StoreError::Conflict(m)) if m.contains("a1")),
        "{out:?}"
    );
    assert!(out[1].is_ok(), "{out:?}");
    assert_eq!(read(h, PATIENT, "p6").await, None);
    // The fallback leaves nothing behind that stops the next batch.
    let out = batches
        .run(fhir.fhir_commit_many(&[
            commit("e1", vec![patient("p8", "M8")]),
            commit("e2", vec![patient("p9", "M9")]),
        ]))
        .await;
    assert_eq!(batches.taken(), (1, 0), "{out:?}");
    assert!(out.iter().all(Result::is_ok), "{out:?}");
}
