//! Conformance cases about the clinical store: generic resources, the
//! identifier index, order links (at write and late), the per-service applied
//! ledger, the outbox, and the one transaction per batch.

use super::*;

const ORDER: &str = "ServiceRequest";

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

fn tokens(ts: &[&str]) -> Vec<String> {
    ts.iter().map(|t| (*t).to_string()).collect()
}

/// A resource of `ty` keyed `key`, about patient P1, `active`, with no tokens.
fn res(ty: &str, key: &str) -> ResourceWrite {
    ResourceWrite {
        resource_type: ty.into(),
        key: key.into(),
        patient_key: Some("urn:mrn|P1".into()),
        status: "active".into(),
        identifiers: Vec::new(),
        order_tokens: Vec::new(),
        resource: json!({"resourceType": ty, "id": key}),
    }
}

/// An order keyed `key` found by `ids`.
fn order(key: &str, ids: &[&str]) -> ResourceWrite {
    ResourceWrite {
        identifiers: tokens(ids),
        ..res(ORDER, key)
    }
}

/// A resource of `ty` naming its order by `order_tokens`.
fn result_of(ty: &str, key: &str, order_tokens: &[&str]) -> ResourceWrite {
    ResourceWrite {
        order_tokens: tokens(order_tokens),
        ..res(ty, key)
    }
}

/// Applies one event for `service` and returns its flag.
async fn apply_one(h: &Harness, service: &str, e: &EventRecord, changes: Vec<ClinicalChange>) -> bool {
    let out = h
        .store
        .clinical()
        .apply_clinical(service, &[(e.clone(), changes)])
        .await
        .expect("apply");
    assert_eq!(out.len(), 1);
    out[0]
}

/// Upserts under a fresh event for `orders` and asserts it was new.
async fn upsert(h: &Harness, w: ResourceWrite) {
    assert!(apply_one(h, "orders", &ev("order.updated"), vec![ClinicalChange::Upsert(w)]).await);
}

async fn get(h: &Harness, ty: &str, key: &str) -> Option<ResourceRow> {
    h.store.clinical().resource(ty, key).await.expect("resource")
}

async fn order_key_of(h: &Harness, ty: &str, key: &str) -> Option<String> {
    get(h, ty, key).await.expect("stored").order_key
}

fn keys(rows: &[ResourceRow]) -> Vec<&str> {
    rows.iter().map(|r| r.key.as_str()).collect()
}

pub async fn clinical_insert_then_replace(h: &Harness) {
    let c = h.store.clinical();
    let before = now_us();
    upsert(h, res("Observation", "obs-1")).await;
    let first = get(h, "Observation", "obs-1").await.expect("stored");
    assert_eq!(
        first,
        ResourceRow {
            resource_type: "Observation".into(),
            key: "obs-1".into(),
            patient_key: Some("urn:mrn|P1".into()),
            status: "active".into(),
            order_key: None,
            resource: json!({"resourceType": "Observation", "id": "obs-1"}),
            version: 1,
            updated_at: first.updated_at,
        }
    );
    assert!(
        first.updated_at >= before && first.updated_at <= now_us(),
        "{:?}",
        first.updated_at
    );
    // Same key of another type is another resource.
    assert!(get(h, "DiagnosticReport", "obs-1").await.is_none());
    let replacement = ResourceWrite {
        patient_key: None,
        status: "final".into(),
        resource: json!({"resourceType": "Observation", "valueQuantity": {"value": 7.2}}),
        ..res("Observation", "obs-1")
    };
    upsert(h, replacement.clone()).await;
    let second = get(h, "Observation", "obs-1").await.expect("stored");
    assert_eq!(second.version, 2);
    assert_eq!(second.status, "final");
    assert_eq!(second.patient_key, None);
    assert_eq!(second.resource, replacement.resource);
    assert!(second.updated_at >= first.updated_at);
    // Outside any event, the same upsert.
    assert_eq!(c.upsert_resource(&replacement).await.expect("upsert"), 3);
    assert_eq!(get(h, "Observation", "obs-1").await.map(|r| r.version), Some(3));
    assert_eq!(c.count_resources("Observation").await.expect("count"), 1);
}

pub async fn clinical_same_event_twice_changes_nothing(h: &Harness) {
    let e = ev("result.received");
    let first = vec![ClinicalChange::Upsert(res("Observation", "obs-1"))];
    assert!(apply_one(h, "results", &e, first.clone()).await);
    let stored = get(h, "Observation", "obs-1").await;
    // The same (service, event) again, even with other changes: nothing happens.
    let other = vec![
        ClinicalChange::Upsert(ResourceWrite {
            status: "final".into(),
            ..res("Observation", "obs-1")
        }),
        ClinicalChange::Upsert(res("Observation", "obs-2")),
        ClinicalChange::Emit(ev("result.critical")),
    ];
    assert!(!apply_one(h, "results", &e, other).await);
    assert!(!apply_one(h, "results", &e, first).await);
    assert_eq!(get(h, "Observation", "obs-1").await, stored);
    assert_eq!(stored.map(|r| r.version), Some(1));
    assert!(get(h, "Observation", "obs-2").await.is_none());
    assert!(h
        .store
        .clinical()
        .pending_outbox("results", 10)
        .await
        .expect("outbox")
        .is_empty());
    assert_eq!(h.store.events_for(e.correlation_id).await.expect("events").len(), 1);
}

pub async fn clinical_two_services_apply_one_event_once_each(h: &Harness) {
    let e = ev("order.completed");
    // Logged by someone else first: the services still apply it.
    assert!(h.store.record_event(&e).await.expect("record"));
    let charge = vec![ClinicalChange::Upsert(res("ChargeItem", "ch-1"))];
    let done = vec![ClinicalChange::Upsert(ResourceWrite {
        status: "completed".into(),
        ..res(ORDER, "o-1")
    })];
    assert!(apply_one(h, "billing", &e, charge.clone()).await);
    assert!(apply_one(h, "orders", &e, done.clone()).await);
    assert!(!apply_one(h, "billing", &e, charge).await);
    assert!(!apply_one(h, "orders", &e, done).await);
    assert_eq!(get(h, "ChargeItem", "ch-1").await.map(|r| r.version), Some(1));
    assert_eq!(get(h, ORDER, "o-1").await.map(|r| r.version), Some(1));
    assert_eq!(h.store.events_for(e.correlation_id).await.expect("events"), vec![e]);
}

pub async fn clinical_duplicate_within_one_batch(h: &Harness) {
    let c = h.store.clinical();
    let e = ev("result.received");
    let follow_up = ev("result.critical");
    let batch = vec![
        (e.clone(), vec![ClinicalChange::Upsert(res("Observation", "obs-1"))]),
        (e.clone(), vec![ClinicalChange::Upsert(res("Observation", "obs-2"))]),
        (ev("result.received"), vec![ClinicalChange::Emit(follow_up.clone())]),
        // Its own follow-up is applied already (raised earlier in the batch).
        (
            follow_up.clone(),
            vec![ClinicalChange::Upsert(res("Observation", "obs-3"))],
        ),
    ];
    let out = c.apply_clinical("results", &batch).await.expect("apply");
    assert_eq!(out, vec![true, false, true, false]);
    assert_eq!(get(h, "Observation", "obs-1").await.map(|r| r.version), Some(1));
    assert!(get(h, "Observation", "obs-2").await.is_none());
    assert!(get(h, "Observation", "obs-3").await.is_none());
    assert_eq!(c.count_resources("Observation").await.expect("count"), 1);
    // The whole batch again: all skipped.
    let again = c.apply_clinical("results", &batch).await.expect("apply again");
    assert_eq!(again, vec![false; 4]);
    assert_eq!(
        c.apply_clinical("results", &[]).await.expect("empty"),
        Vec::<bool>::new()
    );
}

pub async fn clinical_result_before_order_is_linked_late(h: &Harness) {
    let c = h.store.clinical();
    upsert(h, result_of("Observation", "obs-1", &["urn:placer|O1"])).await;
    upsert(
        h,
        result_of("DiagnosticReport", "dr-1", &["urn:other|X", "urn:filler|F1"]),
    )
    .await;
    upsert(h, result_of("Observation", "obs-2", &["urn:placer|O2"])).await;
    let obs1 = get(h, "Observation", "obs-1").await.expect("stored");
    assert_eq!(obs1.order_key, None);
    // An order already linked elsewhere is not relinked by a later one.
    upsert(h, order("urn:placer|O9", &["urn:placer|O9", "urn:shared|S"])).await;
    upsert(h, result_of("Observation", "obs-9", &["urn:shared|S"])).await;
    assert_eq!(
        order_key_of(h, "Observation", "obs-9").await.as_deref(),
        Some("urn:placer|O9")
    );
    // The order comes: every resource naming one of its identifiers is linked.
    upsert(
        h,
        order("urn:placer|O1", &["urn:placer|O1", "urn:filler|F1", "urn:shared|S"]),
    )
    .await;
    let linked = get(h, "Observation", "obs-1").await.expect("stored");
    assert_eq!(linked.order_key.as_deref(), Some("urn:placer|O1"));
    // A link is not a replace.
    assert_eq!((linked.version, linked.resource), (obs1.version, obs1.resource));
    assert_eq!(
        order_key_of(h, "DiagnosticReport", "dr-1").await.as_deref(),
        Some("urn:placer|O1")
    );
    assert_eq!(order_key_of(h, "Observation", "obs-2").await, None);
    assert_eq!(
        order_key_of(h, "Observation", "obs-9").await.as_deref(),
        Some("urn:placer|O9")
    );
    let of_order = c
        .resources_of_order("Observation", "urn:placer|O1")
        .await
        .expect("of order");
    assert_eq!(keys(&of_order), ["obs-1"]);
    let reports = c
        .resources_of_order("DiagnosticReport", "urn:placer|O1")
        .await
        .expect("of order");
    assert_eq!(keys(&reports), ["dr-1"]);
    // The late link in the same batch as the result that needs it.
    let batch = vec![(
        ev("order.placed"),
        vec![
            ClinicalChange::Upsert(result_of("Observation", "obs-3", &["urn:placer|O3"])),
            ClinicalChange::Upsert(order("urn:placer|O3", &["urn:placer|O3"])),
        ],
    )];
    assert_eq!(c.apply_clinical("orders", &batch).await.expect("apply"), vec![true]);
    assert_eq!(
        order_key_of(h, "Observation", "obs-3").await.as_deref(),
        Some("urn:placer|O3")
    );
}

pub async fn clinical_result_after_order_is_linked_at_write(h: &Harness) {
    upsert(h, order("urn:placer|O1", &["urn:placer|O1", "urn:filler|F1"])).await;
    upsert(h, order("urn:placer|O2", &["urn:placer|O2"])).await;
    // Unresolved tokens are passed over; the first that resolves wins.
    upsert(h, result_of("Observation", "obs-1", &["urn:none|Z", "urn:filler|F1"])).await;
    assert_eq!(
        order_key_of(h, "Observation", "obs-1").await.as_deref(),
        Some("urn:placer|O1")
    );
    upsert(
        h,
        result_of("Observation", "obs-2", &["urn:placer|O2", "urn:placer|O1"]),
    )
    .await;
    assert_eq!(
        order_key_of(h, "Observation", "obs-2").await.as_deref(),
        Some("urn:placer|O2")
    );
    // A replace whose tokens resolve to nothing keeps its order; one that
    // resolves to another order moves it.
    upsert(h, result_of("Observation", "obs-2", &["urn:none|Z"])).await;
    assert_eq!(
        order_key_of(h, "Observation", "obs-2").await.as_deref(),
        Some("urn:placer|O2")
    );
    upsert(h, result_of("Observation", "obs-2", &[])).await;
    assert_eq!(
        order_key_of(h, "Observation", "obs-2").await.as_deref(),
        Some("urn:placer|O2")
    );
    upsert(h, result_of("Observation", "obs-2", &["urn:placer|O1"])).await;
    assert_eq!(
        order_key_of(h, "Observation", "obs-2").await.as_deref(),
        Some("urn:placer|O1")
    );
    // Tokens resolve against orders only, not other types' identifiers.
    upsert(
        h,
        ResourceWrite {
            identifiers: tokens(&["urn:acc|A1"]),
            ..res("DiagnosticReport", "dr-1")
        },
    )
    .await;
    upsert(h, result_of("Observation", "obs-3", &["urn:acc|A1"])).await;
    assert_eq!(order_key_of(h, "Observation", "obs-3").await, None);
    let of_o1 = h
        .store
        .clinical()
        .resources_of_order("Observation", "urn:placer|O1")
        .await
        .expect("of order");
    assert_eq!(keys(&of_o1), ["obs-1", "obs-2"]);
}

pub async fn clinical_find_by_identifier_and_token_move(h: &Harness) {
    let c = h.store.clinical();
    upsert(h, order("o-1", &["urn:placer|1", "urn:filler|1", "urn:placer|1"])).await;
    let found = c.find_by_identifier(ORDER, "urn:filler|1").await.expect("find");
    assert_eq!(found, get(h, ORDER, "o-1").await);
    assert!(found.is_some());
    assert_eq!(c.find_by_identifier(ORDER, "urn:filler|2").await.expect("find"), None);
    // Identifiers are per resource type.
    assert_eq!(
        c.find_by_identifier("Appointment", "urn:filler|1").await.expect("find"),
        None
    );
    upsert(
        h,
        ResourceWrite {
            identifiers: tokens(&["urn:filler|1"]),
            ..res("Appointment", "ap-1")
        },
    )
    .await;
    let appointment = c.find_by_identifier("Appointment", "urn:filler|1").await.expect("find");
    assert_eq!(appointment.map(|r| r.key).as_deref(), Some("ap-1"));
    assert_eq!(
        c.find_by_identifier(ORDER, "urn:filler|1")
            .await
            .expect("find")
            .map(|r| r.key)
            .as_deref(),
        Some("o-1")
    );
    // Claimed by another order: the token moves; the others stay.
    upsert(h, order("o-2", &["urn:filler|1"])).await;
    let moved = c.find_by_identifier(ORDER, "urn:filler|1").await.expect("find");
    assert_eq!(moved.map(|r| r.key).as_deref(), Some("o-2"));
    let kept = c.find_by_identifier(ORDER, "urn:placer|1").await.expect("find");
    assert_eq!(kept.map(|r| r.key).as_deref(), Some("o-1"));
    // A replace without identifiers removes none.
    upsert(h, order("o-1", &[])).await;
    let still = c.find_by_identifier(ORDER, "urn:placer|1").await.expect("find");
    assert_eq!(still.map(|r| (r.key, r.version)), Some(("o-1".to_string(), 2)));
}

pub async fn clinical_queries_by_patient_status_and_count(h: &Harness) {
    let c = h.store.clinical();
    let on = |key: &str, patient: &str, status: &str| ResourceWrite {
        patient_key: Some(patient.into()),
        status: status.into(),
        ..res("Communication", key)
    };
    let start = now_us();
    for (key, patient, status) in [
        ("c-1", "P1", "in-progress"),
        ("c-2", "P2", "in-progress"),
        ("c-3", "P1", "in-progress"),
        ("c-4", "P1", "completed"),
    ] {
        upsert(h, on(key, patient, status)).await;
        // Distinct update times, so "oldest change first" is observable.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    upsert(h, res("Appointment", "ap-1")).await;
    // c-1 changes last but was stored first.
    upsert(h, on("c-1", "P1", "in-progress")).await;
    let of_p1 = c.resources_of_patient("Communication", "P1").await.expect("of patient");
    assert_eq!(keys(&of_p1), ["c-1", "c-3", "c-4"]);
    assert_eq!(of_p1[0].version, 2);
    let of_p2 = c.resources_of_patient("Communication", "P2").await.expect("of patient");
    assert_eq!(keys(&of_p2), ["c-2"]);
    assert!(c
        .resources_of_patient("Appointment", "P1")
        .await
        .expect("of patient")
        .is_empty());
    assert!(c
        .resources_of_patient("Communication", "P3")
        .await
        .expect("of patient")
        .is_empty());
    let later = now_us() + secs(1);
    let sweep = c
        .resources_with_status("Communication", "in-progress", later, None, 10)
        .await
        .expect("with status");
    assert_eq!(keys(&sweep), ["c-2", "c-3", "c-1"]);
    let page = c
        .resources_with_status("Communication", "in-progress", later, None, 2)
        .await
        .expect("with status");
    assert_eq!(keys(&page), ["c-2", "c-3"]);
    // The next page starts after the last row of this one.
    let last = &page[1];
    let next = c
        .resources_with_status(
            "Communication",
            "in-progress",
            later,
            Some((last.updated_at, last.key.as_str())),
            2,
        )
        .await
        .expect("next page");
    assert_eq!(keys(&next), ["c-1"]);
    let first = &page[0];
    let from_first = c
        .resources_with_status(
            "Communication",
            "in-progress",
            later,
            Some((first.updated_at, first.key.as_str())),
            10,
        )
        .await
        .expect("from the first");
    assert_eq!(keys(&from_first), ["c-3", "c-1"]);
    // Only changes strictly before `before`.
    let c2 = get(h, "Communication", "c-2").await.expect("stored");
    let until_c2 = c
        .resources_with_status(
            "Communication",
            "in-progress",
            c2.updated_at + TimeDelta::microseconds(1),
            None,
            10,
        )
        .await
        .expect("with status");
    assert_eq!(keys(&until_c2), ["c-2"]);
    let none = c
        .resources_with_status("Communication", "in-progress", start, None, 10)
        .await
        .expect("with status");
    assert!(none.is_empty());
    let completed = c
        .resources_with_status("Communication", "completed", later, None, 10)
        .await
        .expect("with status");
    assert_eq!(keys(&completed), ["c-4"]);
    assert_eq!(c.count_resources("Communication").await.expect("count"), 4);
    assert_eq!(c.count_resources("Appointment").await.expect("count"), 1);
    assert_eq!(c.count_resources("ChargeItem").await.expect("count"), 0);
}

pub async fn clinical_emit_goes_to_outbox_and_log(h: &Harness) {
    let c = h.store.clinical();
    let e = ev("result.received");
    let mut critical = ev("result.critical");
    critical.causation_id = Some(e.id);
    critical.correlation_id = e.correlation_id;
    critical.occurred_at = base() + secs(1);
    let before = now_us();
    let changes = vec![
        ClinicalChange::Upsert(res("Observation", "obs-1")),
        ClinicalChange::Emit(critical.clone()),
    ];
    assert!(apply_one(h, "results", &e, changes).await);
    let pending = c.pending_outbox("results", 10).await.expect("outbox");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].service, "results");
    assert_eq!(pending[0].event, critical);
    assert!(pending[0].created_at >= before && pending[0].created_at <= now_us());
    assert!(c.pending_outbox("notifications", 10).await.expect("outbox").is_empty());
    // Both in the event log, once each.
    let logged = h.store.events_for(e.correlation_id).await.expect("events");
    assert_eq!(logged, vec![e.clone(), critical.clone()]);
    // The service never applies its own follow-up; another service does.
    let again = vec![ClinicalChange::Upsert(res("Observation", "obs-2"))];
    assert!(!apply_one(h, "results", &critical, again.clone()).await);
    assert!(get(h, "Observation", "obs-2").await.is_none());
    assert!(apply_one(h, "notifications", &critical, again).await);
    assert!(get(h, "Observation", "obs-2").await.is_some());
    assert_eq!(h.store.events_for(e.correlation_id).await.expect("events").len(), 2);
}

pub async fn clinical_outbox_pending_and_published(h: &Harness) {
    let c = h.store.clinical();
    let follow_ups: Vec<EventRecord> = (0..3).map(|_| ev("charge.created")).collect();
    // Two in one event, one in a later event of another batch.
    let first = vec![
        ClinicalChange::Emit(follow_ups[0].clone()),
        ClinicalChange::Emit(follow_ups[1].clone()),
    ];
    assert!(apply_one(h, "billing", &ev("order.completed"), first).await);
    let other = vec![ClinicalChange::Emit(ev("order.completed"))];
    assert!(apply_one(h, "orders", &ev("order.placed"), other).await);
    let last = vec![ClinicalChange::Emit(follow_ups[2].clone())];
    assert!(apply_one(h, "billing", &ev("order.completed"), last).await);
    let ids = |entries: &[OutboxEntry]| entries.iter().map(|o| o.event.id).collect::<Vec<_>>();
    let all = c.pending_outbox("billing", 10).await.expect("outbox");
    assert_eq!(ids(&all), follow_ups.iter().map(|e| e.id).collect::<Vec<_>>());
    assert!(all.iter().all(|o| o.service == "billing"));
    let page = c.pending_outbox("billing", 2).await.expect("outbox");
    assert_eq!(ids(&page), ids(&all[..2]));
    // Unknown ids are ignored; published ones leave the pending list.
    c.mark_published(&[follow_ups[0].id, Uuid::now_v7()])
        .await
        .expect("mark");
    let rest = c.pending_outbox("billing", 10).await.expect("outbox");
    assert_eq!(ids(&rest), [follow_ups[1].id, follow_ups[2].id]);
    c.mark_published(&[]).await.expect("mark none");
    c.mark_published(&ids(&rest)).await.expect("mark rest");
    assert!(c.pending_outbox("billing", 10).await.expect("outbox").is_empty());
    // Another service's outbox is its own.
    assert_eq!(c.pending_outbox("orders", 10).await.expect("outbox").len(), 1);
}

pub async fn clinical_error_rolls_back_the_whole_batch(h: &Harness) {
    let c = h.store.clinical();
    let e1 = ev("result.received");
    let e2 = ev("result.received");
    let follow_up = ev("result.critical");
    let batch = vec![
        (
            e1.clone(),
            vec![
                ClinicalChange::Upsert(order("o-1", &["urn:placer|1"])),
                ClinicalChange::Emit(follow_up.clone()),
            ],
        ),
        (
            e2.clone(),
            vec![
                ClinicalChange::Upsert(result_of("Observation", "obs-1", &["urn:placer|1"])),
                ClinicalChange::Upsert(res("Observation", "")),
            ],
        ),
    ];
    let err = c
        .apply_clinical("results", &batch)
        .await
        .expect_err("empty key refused");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    // Nothing of the batch is kept: resources, indexes, log, outbox, ledger.
    assert!(get(h, ORDER, "o-1").await.is_none());
    assert!(get(h, "Observation", "obs-1").await.is_none());
    assert_eq!(c.find_by_identifier(ORDER, "urn:placer|1").await.expect("find"), None);
    assert_eq!(c.count_resources("Observation").await.expect("count"), 0);
    assert!(h.store.events_for(e1.correlation_id).await.expect("events").is_empty());
    assert!(h
        .store
        .events_for(follow_up.correlation_id)
        .await
        .expect("events")
        .is_empty());
    assert!(c.pending_outbox("results", 10).await.expect("outbox").is_empty());
    let fixed: Vec<_> = batch.iter().take(1).cloned().collect();
    assert_eq!(c.apply_clinical("results", &fixed).await.expect("apply"), vec![true]);
    assert!(get(h, ORDER, "o-1").await.is_some());
    // An empty resource type, an empty key outside an event, an empty service.
    let no_type = vec![(ev("x"), vec![ClinicalChange::Upsert(res("", "k"))])];
    let err = c
        .apply_clinical("results", &no_type)
        .await
        .expect_err("empty type refused");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let err = c
        .upsert_resource(&res("Observation", ""))
        .await
        .expect_err("empty key refused");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let err = c.apply_clinical("", &fixed).await.expect_err("empty service refused");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(c.count_resources("").await.expect("count"), 0);
    // A skipped (already applied) event's changes are not looked at.
    let bad_again = vec![(e1.clone(), vec![ClinicalChange::Upsert(res("Observation", ""))])];
    assert_eq!(
        c.apply_clinical("results", &bad_again).await.expect("skip"),
        vec![false]
    );
}

pub async fn clinical_concurrent_redelivery_applies_once_per_service(h: &Harness) {
    let e = ev("order.completed");
    let tasks = (0..8).map(|i| {
        let (s, e) = (h.store.clone(), e.clone());
        let (service, ty) = if i % 2 == 0 {
            ("billing", "ChargeItem")
        } else {
            ("orders", ORDER)
        };
        tokio::spawn(async move {
            let changes = vec![ClinicalChange::Upsert(res(ty, "k-1"))];
            let out = s.clinical().apply_clinical(service, &[(e, changes)]).await;
            (service, out)
        })
    });
    let (mut billing, mut orders) = (0, 0);
    for r in futures::future::join_all(tasks).await {
        let (service, out) = r.expect("task");
        let applied = usize::from(out.expect("apply") == [true]);
        match service {
            "billing" => billing += applied,
            _ => orders += applied,
        }
    }
    assert_eq!((billing, orders), (1, 1));
    assert_eq!(get(h, "ChargeItem", "k-1").await.map(|r| r.version), Some(1));
    assert_eq!(get(h, ORDER, "k-1").await.map(|r| r.version), Some(1));
    assert_eq!(h.store.events_for(e.correlation_id).await.expect("events").len(), 1);
}

/// An order and a result naming it, written at the same moment by two
/// services, end up linked: neither write may miss the other.
pub async fn clinical_order_and_result_written_at_once_are_linked(h: &Harness) {
    let tasks = (0..40).flat_map(|i| {
        let placer = format!("urn:cpoe|PL-race-{i}");
        let (s1, s2) = (h.store.clone(), h.store.clone());
        let order_write = order(&placer, &[placer.as_str()]);
        let report = result_of("DiagnosticReport", &format!("rep-race-{i}"), &[placer.as_str()]);
        [
            tokio::spawn(async move {
                s1.clinical()
                    .apply_clinical(
                        "orders",
                        &[(ev("order.placed"), vec![ClinicalChange::Upsert(order_write)])],
                    )
                    .await
            }),
            tokio::spawn(async move {
                s2.clinical()
                    .apply_clinical(
                        "results",
                        &[(ev("result.reported"), vec![ClinicalChange::Upsert(report)])],
                    )
                    .await
            }),
        ]
    });
    for r in futures::future::join_all(tasks.collect::<Vec<_>>()).await {
        assert_eq!(r.expect("task").expect("apply"), [true]);
    }
    for i in 0..40 {
        assert_eq!(
            order_key_of(h, "DiagnosticReport", &format!("rep-race-{i}"))
                .await
                .as_deref(),
            Some(format!("urn:cpoe|PL-race-{i}").as_str()),
            "pair {i} linked"
        );
    }
}

/// A conditional write applies at the version it was read at, and fails the
/// whole batch (nothing written, no event marked) once the resource moved on.
pub async fn clinical_conditional_write_refuses_a_stale_read(h: &Harness) {
    let ty = "ImagingStudy";
    let at = |expected| ClinicalChange::UpsertIfVersion {
        write: res(ty, "study-1"),
        expected,
    };
    assert!(apply_one(h, "imaging", &ev("imaging.instance-stored"), vec![at(None)]).await);
    assert!(apply_one(h, "imaging", &ev("imaging.instance-stored"), vec![at(Some(1))]).await);
    assert_eq!(get(h, ty, "study-1").await.expect("stored").version, 2);
    for stale in [None, Some(1), Some(3)] {
        let e = ev("imaging.instance-stored");
        let out = h
            .store
            .clinical()
            .apply_clinical("imaging", &[(e.clone(), vec![at(stale)])])
            .await;
        assert!(matches!(out, Err(StoreError::Conflict(_))), "{stale:?}: {out:?}");
        // Rolled back: the event is not marked, so applying it fresh works.
        assert!(apply_one(h, "imaging", &e, vec![]).await, "{stale:?}");
    }
    assert_eq!(get(h, ty, "study-1").await.expect("stored").version, 2);

    // A conditional write riding on an event already applied (a redelivery
    // folded with new events) is a conflict too, not a silent skip that would
    // drop the new events' part of the write.
    let applied = ev("imaging.instance-stored");
    assert!(apply_one(h, "imaging", &applied, vec![at(Some(2))]).await);
    let fresh = ev("imaging.instance-stored");
    let out = h
        .store
        .clinical()
        .apply_clinical(
            "imaging",
            &[(fresh.clone(), vec![]), (applied.clone(), vec![at(Some(3))])],
        )
        .await;
    assert!(matches!(out, Err(StoreError::Conflict(_))), "{out:?}");
    assert!(
        apply_one(h, "imaging", &fresh, vec![]).await,
        "rolled back: the fresh event is not marked"
    );
    assert_eq!(get(h, ty, "study-1").await.expect("stored").version, 3);

    // Writers racing from the same read: exactly one wins each round.
    for round in 3..7 {
        let tasks = (0..4).map(|_| {
            let s = h.store.clone();
            tokio::spawn(async move {
                let change = ClinicalChange::UpsertIfVersion {
                    write: res("ImagingStudy", "study-1"),
                    expected: Some(round),
                };
                s.clinical()
                    .apply_clinical("imaging", &[(ev("imaging.instance-stored"), vec![change])])
                    .await
            })
        });
        let results = futures::future::join_all(tasks).await;
        let won = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        assert_eq!(won, 1, "round {round}: {results:?}");
    }
    assert_eq!(get(h, ty, "study-1").await.expect("stored").version, 7);
}

const P1: Option<&str> = Some("urn:mrn|P1");
const P2: Option<&str> = Some("urn:mrn|P2");

/// `w` about `patient` (None: unknown).
fn about(patient: Option<&str>, w: ResourceWrite) -> ResourceWrite {
    ResourceWrite {
        patient_key: patient.map(Into::into),
        ..w
    }
}

/// A resource written after an order of another patient that shares its
/// token (two departments reusing accession A1) is not linked to it; among
/// its tokens, the first that names an order of its own patient wins.
pub async fn clinical_link_at_write_refused_across_patients(h: &Harness) {
    upsert(h, about(P2, order("o-p2", &["urn:acc|A1"]))).await;
    upsert(h, about(P1, order("o-p1", &["urn:placer|O1"]))).await;
    upsert(h, about(P1, result_of("ImagingStudy", "st-1", &["urn:acc|A1"]))).await;
    assert_eq!(order_key_of(h, "ImagingStudy", "st-1").await, None);
    // The other patient's order comes first in the token list: passed over.
    upsert(
        h,
        about(P1, result_of("Observation", "obs-1", &["urn:acc|A1", "urn:placer|O1"])),
    )
    .await;
    assert_eq!(order_key_of(h, "Observation", "obs-1").await.as_deref(), Some("o-p1"));
    // The order's own patient is linked as before.
    upsert(h, about(P2, result_of("ImagingStudy", "st-2", &["urn:acc|A1"]))).await;
    assert_eq!(order_key_of(h, "ImagingStudy", "st-2").await.as_deref(), Some("o-p2"));
    let of_order = h
        .store
        .clinical()
        .resources_of_order("ImagingStudy", "o-p2")
        .await
        .expect("of order");
    assert_eq!(keys(&of_order), ["st-2"]);
}

/// An order arriving after resources that named it links only those of its
/// patient.
pub async fn clinical_late_link_refused_across_patients(h: &Harness) {
    upsert(h, about(P1, result_of("ImagingStudy", "st-1", &["urn:acc|A1"]))).await;
    upsert(h, about(P2, result_of("ImagingStudy", "st-2", &["urn:acc|A1"]))).await;
    upsert(h, about(P2, order("o-p2", &["urn:acc|A1"]))).await;
    assert_eq!(order_key_of(h, "ImagingStudy", "st-1").await, None);
    assert_eq!(order_key_of(h, "ImagingStudy", "st-2").await.as_deref(), Some("o-p2"));
    // The same in one batch with the resource that needs it.
    let batch = vec![(
        ev("order.placed"),
        vec![
            ClinicalChange::Upsert(about(P1, result_of("Observation", "obs-1", &["urn:placer|O3"]))),
            ClinicalChange::Upsert(about(P2, order("o-3", &["urn:placer|O3"]))),
        ],
    )];
    assert_eq!(
        h.store
            .clinical()
            .apply_clinical("orders", &batch)
            .await
            .expect("apply"),
        vec![true]
    );
    assert_eq!(order_key_of(h, "Observation", "obs-1").await, None);
}

/// An unknown patient on either side does not stop a link, at write or late;
/// two known, different patients do.
pub async fn clinical_unknown_patient_still_links(h: &Harness) {
    upsert(h, about(P2, order("o-p2", &["urn:acc|A1"]))).await;
    upsert(h, about(None, order("o-none", &["urn:acc|A2"]))).await;
    upsert(h, about(None, result_of("Observation", "obs-1", &["urn:acc|A1"]))).await;
    upsert(h, about(P1, result_of("Observation", "obs-2", &["urn:acc|A2"]))).await;
    upsert(h, about(P1, result_of("Observation", "obs-3", &["urn:acc|A1"]))).await;
    assert_eq!(order_key_of(h, "Observation", "obs-1").await.as_deref(), Some("o-p2"));
    assert_eq!(order_key_of(h, "Observation", "obs-2").await.as_deref(), Some("o-none"));
    assert_eq!(order_key_of(h, "Observation", "obs-3").await, None);
    // Late: the order or the resource of unknown patient.
    upsert(h, about(None, result_of("Observation", "obs-4", &["urn:acc|B1"]))).await;
    upsert(h, about(P1, result_of("Observation", "obs-5", &["urn:acc|B2"]))).await;
    upsert(h, about(P1, result_of("Observation", "obs-6", &["urn:acc|B1"]))).await;
    upsert(h, about(P2, order("o-b1", &["urn:acc|B1"]))).await;
    upsert(h, about(None, order("o-b2", &["urn:acc|B2"]))).await;
    assert_eq!(order_key_of(h, "Observation", "obs-4").await.as_deref(), Some("o-b1"));
    assert_eq!(order_key_of(h, "Observation", "obs-5").await.as_deref(), Some("o-b2"));
    assert_eq!(order_key_of(h, "Observation", "obs-6").await, None);
}

/// A resource left unlinked because the order it named was another
/// patient's is linked when an order of its own patient with that token
/// comes (the token moves to it), whether it was refused at write or late.
pub async fn clinical_refused_resource_linked_by_the_right_order(h: &Harness) {
    upsert(h, about(P2, order("o-p2", &["urn:acc|A1"]))).await;
    upsert(h, about(P1, result_of("ImagingStudy", "st-1", &["urn:acc|A1"]))).await;
    upsert(h, about(P1, result_of("ImagingStudy", "st-2", &["urn:acc|A2"]))).await;
    upsert(h, about(P2, order("o-p2b", &["urn:acc|A2"]))).await;
    assert_eq!(order_key_of(h, "ImagingStudy", "st-1").await, None);
    assert_eq!(order_key_of(h, "ImagingStudy", "st-2").await, None);
    upsert(h, about(P1, order("o-p1", &["urn:acc|A1", "urn:acc|A2"]))).await;
    assert_eq!(order_key_of(h, "ImagingStudy", "st-1").await.as_deref(), Some("o-p1"));
    assert_eq!(order_key_of(h, "ImagingStudy", "st-2").await.as_deref(), Some("o-p1"));
}

/// A replace keeps its order when its tokens resolve to nothing, but not
/// when its patient changed so that the kept order is another patient's.
pub async fn clinical_replace_under_another_patient_drops_the_link(h: &Harness) {
    upsert(h, about(P1, order("o-p1", &["urn:placer|O1"]))).await;
    upsert(h, about(P2, order("o-p2", &["urn:placer|O2"]))).await;
    upsert(h, about(None, order("o-none", &["urn:placer|ON"]))).await;
    for key in ["obs-1", "obs-2", "obs-3", "obs-4"] {
        upsert(h, about(P1, result_of("Observation", key, &["urn:placer|O1"]))).await;
        assert_eq!(order_key_of(h, "Observation", key).await.as_deref(), Some("o-p1"));
    }
    // Same patient, or the patient now unknown: the link is kept.
    upsert(h, about(P1, result_of("Observation", "obs-1", &[]))).await;
    assert_eq!(order_key_of(h, "Observation", "obs-1").await.as_deref(), Some("o-p1"));
    upsert(h, about(None, result_of("Observation", "obs-2", &["urn:none|Z"]))).await;
    assert_eq!(order_key_of(h, "Observation", "obs-2").await.as_deref(), Some("o-p1"));
    // Another patient, tokens resolving to nothing (or only to the old
    // order): the kept order would be another patient's, so no link.
    upsert(h, about(P2, result_of("Observation", "obs-3", &[]))).await;
    assert_eq!(order_key_of(h, "Observation", "obs-3").await, None);
    upsert(h, about(P2, result_of("Observation", "obs-4", &["urn:placer|O1"]))).await;
    assert_eq!(order_key_of(h, "Observation", "obs-4").await, None);
    // Another patient whose tokens name an order of theirs: moved to it.
    upsert(h, about(P1, result_of("Observation", "obs-5", &["urn:placer|O1"]))).await;
    upsert(h, about(P2, result_of("Observation", "obs-5", &["urn:placer|O2"]))).await;
    assert_eq!(order_key_of(h, "Observation", "obs-5").await.as_deref(), Some("o-p2"));
    // A kept order of unknown patient stays whatever the resource's patient.
    upsert(h, about(P1, result_of("Observation", "obs-6", &["urn:placer|ON"]))).await;
    upsert(h, about(P2, result_of("Observation", "obs-6", &[]))).await;
    assert_eq!(order_key_of(h, "Observation", "obs-6").await.as_deref(), Some("o-none"));
    // Once unlinked, the right patient's order can link it late.
    upsert(h, about(P2, order("o-p2c", &["urn:placer|O1"]))).await;
    assert_eq!(order_key_of(h, "Observation", "obs-4").await.as_deref(), Some("o-p2c"));
}

pub async fn clinical_order_moved_to_another_patient_lets_go(h: &Harness) {
    let linked = |key: &'static str| async move { order_key_of(h, "Observation", key).await };
    let to_it = Some("o-move".to_string());
    upsert(h, about(P1, order("o-move", &["urn:placer|OM"]))).await;
    upsert(h, about(P1, result_of("Observation", "obs-m1", &["urn:placer|OM"]))).await;
    upsert(h, about(None, result_of("Observation", "obs-m2", &["urn:placer|OM"]))).await;
    assert_eq!(
        (linked("obs-m1").await, linked("obs-m2").await),
        (to_it.clone(), to_it.clone())
    );
    // The same order, same patient, written again: nothing lets go.
    upsert(h, about(P1, order("o-move", &["urn:placer|OM"]))).await;
    assert_eq!(linked("obs-m1").await, to_it);
    // Corrected to another patient: the first patient's result is no longer
    // tied to it; one of unknown patient stays.
    upsert(h, about(P2, order("o-move", &["urn:placer|OM"]))).await;
    assert_eq!((linked("obs-m1").await, linked("obs-m2").await), (None, to_it.clone()));
    // Moved back: the late link ties the first patient's result to it again.
    upsert(h, about(P1, order("o-move", &["urn:placer|OM"]))).await;
    assert_eq!(linked("obs-m1").await, to_it);
}

pub async fn clinical_patient_without_issuer_matches_by_value(h: &Harness) {
    let linked = |key: &'static str| async move { order_key_of(h, "Observation", key).await };
    // The order's patient has an issuer; a modality's Patient ID often has none.
    upsert(h, about(Some("urn:issuer:a|123"), order("o-issued", &["urn:acsn|A1"]))).await;
    upsert(
        h,
        about(Some("|123"), result_of("Observation", "same-value", &["urn:acsn|A1"])),
    )
    .await;
    upsert(
        h,
        about(Some("|124"), result_of("Observation", "other-value", &["urn:acsn|A1"])),
    )
    .await;
    // Two issuers with the same value are two patients.
    upsert(
        h,
        about(
            Some("urn:issuer:b|123"),
            result_of("Observation", "other-issuer", &["urn:acsn|A1"]),
        ),
    )
    .await;
    assert_eq!(linked("same-value").await.as_deref(), Some("o-issued"));
    assert_eq!(linked("other-value").await, None);
    assert_eq!(linked("other-issuer").await, None);
    // The other way round, late: an issuer-less order, then an issued result.
    upsert(
        h,
        about(
            Some("urn:issuer:a|777"),
            result_of("Observation", "late", &["urn:acsn|A2"]),
        ),
    )
    .await;
    upsert(h, about(Some("|777"), order("o-bare", &["urn:acsn|A2"]))).await;
    assert_eq!(linked("late").await.as_deref(), Some("o-bare"));
}
