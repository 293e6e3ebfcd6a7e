//! Conformance cases about events, dead letters, the audit log, reopening
//! and concurrency.

use super::*;

fn event(correlation_id: Uuid, kind: &str, occurred_at: DateTime<Utc>) -> EventRecord {
    EventRecord {
        id: Uuid::now_v7(),
        correlation_id,
        causation_id: None,
        kind: kind.into(),
        subject: format!("medbus.events.{kind}"),
        patient_id: Some("P1".into()),
        body: json!({"kind": kind}),
        occurred_at,
    }
}

fn dead_letter(stage: &str, created_at: DateTime<Utc>) -> DeadLetter {
    DeadLetter {
        id: Uuid::now_v7(),
        stage: stage.into(),
        subject: "medbus.ingress.hl7v2.adt".into(),
        reason: "max deliveries reached".into(),
        deliveries: 5,
        correlation_id: Some(Uuid::now_v7()),
        headers: BTreeMap::from([("Nats-Msg-Id".to_string(), "adt:C1".to_string())]),
        payload: Bytes::from_static(b"MSH|^~\\&|\x00\xff\r"),
        created_at,
        replayed_at: None,
    }
}

fn entry(target: &str, at: DateTime<Utc>, action: &str, detail: Option<&str>) -> AuditEntry {
    AuditEntry {
        at,
        actor: "alice".into(),
        action: action.into(),
        target: target.into(),
        detail: detail.map(Into::into),
    }
}

pub async fn events_idempotent_oldest_first(h: &Harness) {
    let s = &h.store;
    let corr = Uuid::now_v7();
    let mut e1 = event(
        corr,
        "patient.registered",
        base() + secs(2) + TimeDelta::nanoseconds(999),
    );
    e1.body = json!({
        "patient": {"id": "P1", "name": [{"family": "Ørsted", "given": ["Hans", "Christian"]}]},
        "n": 42, "neg": -7, "ratio": 1.5, "ok": true, "none": null, "big": 9_007_199_254_740_993_u64,
        "text": "line\nbreak \"quoted\" \u{1F489}"
    });
    let mut e2 = event(corr, "encounter.started", base() + secs(1));
    e2.causation_id = Some(e1.id);
    let mut e3 = event(corr, "patient.updated", base() + secs(3));
    e3.patient_id = None;
    let elsewhere = event(Uuid::now_v7(), "result.critical", base());
    for e in [&e1, &e2, &e3, &elsewhere] {
        assert!(s.record_event(e).await.expect("record"), "{} was not new", e.kind);
    }
    assert!(!s.record_event(&e1).await.expect("record again"));
    let changed = EventRecord {
        body: json!({"changed": true}),
        ..e1.clone()
    };
    assert!(!s.record_event(&changed).await.expect("record changed"));

    let mut want_e1 = e1.clone();
    want_e1.occurred_at = base() + secs(2); // 999 ns is below a microsecond
    assert_eq!(s.events_for(corr).await.expect("events"), [e2, want_e1, e3]);
    assert_eq!(
        s.events_for(elsewhere.correlation_id).await.expect("events"),
        [elsewhere]
    );
    assert!(s.events_for(Uuid::now_v7()).await.expect("events").is_empty());
}

pub async fn dead_letters(h: &Harness) {
    let s = &h.store;
    let d1 = dead_letter("router", base() + secs(1));
    let d2 = DeadLetter {
        deliveries: u32::MAX,
        correlation_id: None,
        headers: BTreeMap::new(),
        payload: Bytes::new(),
        replayed_at: Some(base() + secs(5)),
        ..dead_letter("hl7-out", base() + secs(2))
    };
    let d3 = dead_letter("router", base() + secs(3));
    for d in [&d1, &d2, &d3] {
        s.insert_dead_letter(d).await.expect("insert");
    }
    let again = DeadLetter {
        reason: "changed".into(),
        ..d1.clone()
    };
    s.insert_dead_letter(&again).await.expect("insert again is a no-op");

    let all = s.list_dead_letters(None, 0).await.expect("list");
    assert_eq!(all, [d3.clone(), d2.clone(), d1.clone()]);
    assert_eq!(
        s.list_dead_letters(Some("router"), 10).await.expect("list"),
        [d3.clone(), d1.clone()]
    );
    assert_eq!(
        s.list_dead_letters(None, 1).await.expect("list"),
        std::slice::from_ref(&d3)
    );
    assert!(s.list_dead_letters(Some("nope"), 10).await.expect("list").is_empty());

    let t0 = now_us();
    assert!(s.mark_replayed(d1.id).await.expect("mark"));
    let t1 = Utc::now();
    let router = s.list_dead_letters(Some("router"), 10).await.expect("list");
    let replayed_at = router[1].replayed_at.expect("replayed_at set");
    assert!(
        t0 <= replayed_at && replayed_at <= t1,
        "{replayed_at} not in [{t0}, {t1}]"
    );
    assert_eq!(
        router[1],
        DeadLetter {
            replayed_at: Some(replayed_at),
            ..d1
        }
    );
    assert_eq!(router[0], d3, "another dead letter changed");
    assert!(!s.mark_replayed(Uuid::now_v7()).await.expect("mark unknown"));
}

pub async fn audit_log(h: &Harness) {
    let s = &h.store;
    let a1 = entry("T1", base() + secs(2), "message.read", None);
    let a2 = AuditEntry {
        actor: "cli".into(),
        ..entry("T1", base() + secs(1), "message.replay", Some("from dead letter"))
    };
    let a3 = entry("T2", base() + secs(3), "deadletter.replay", None);
    for e in [&a1, &a2, &a3] {
        s.audit(e).await.expect("audit");
    }
    assert_eq!(s.audit_for("T1").await.expect("audit_for"), [a2, a1]);
    assert_eq!(s.audit_for("T2").await.expect("audit_for"), std::slice::from_ref(&a3));
    assert!(s.audit_for("T3").await.expect("audit_for").is_empty());
    // Append-only: the same entry twice is two entries.
    s.audit(&a3).await.expect("audit");
    assert_eq!(s.audit_for("T2").await.expect("audit_for"), [a3.clone(), a3]);
}

pub async fn reopen_keeps_data(h: &Harness) {
    let s = &h.store;
    let m = msg("adt", Some("K1"), base());
    put(s, &m).await;
    s.record_stage(m.id, "router", MessageStatus::Processed, None)
        .await
        .expect("record");
    let e = event(m.id, "patient.registered", base());
    assert!(s.record_event(&e).await.expect("event"));
    let d = dead_letter("router", base());
    s.insert_dead_letter(&d).await.expect("dead letter");
    let a = entry(&m.id.to_string(), base(), "message.read", None);
    s.audit(&a).await.expect("audit");
    let before = s.get_message(m.id).await.expect("get").expect("stored");
    s.close().await;

    let s = h.reopen().await;
    s.check().await.expect("check after reopen");
    assert_eq!(s.get_message(m.id).await.expect("get").as_ref(), Some(&before));
    assert_eq!(s.events_for(m.id).await.expect("events"), [e]);
    assert_eq!(s.list_dead_letters(None, 10).await.expect("list"), [d]);
    assert_eq!(s.audit_for(&m.id.to_string()).await.expect("audit"), [a]);
    let resend = msg("adt", Some("K1"), base() + secs(1));
    assert_eq!(
        s.insert_message(&resend).await.expect("insert"),
        InsertOutcome::Duplicate { existing: m.id }
    );
    s.close().await;
}

pub async fn concurrent_inserts(h: &Harness) {
    // 32 distinct messages at once: all land.
    let tasks = (0..32).map(|i| {
        let s = h.store.clone();
        tokio::spawn(async move {
            let m = msg("load", Some(&format!("L{i}")), base() + TimeDelta::milliseconds(i));
            (m.id, s.insert_message(&m).await.expect("insert"))
        })
    });
    let results: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    assert!(
        results.iter().all(|(_, o)| *o == InsertOutcome::Inserted),
        "{results:?}"
    );
    let mut want: Vec<Uuid> = results.iter().map(|(id, _)| *id).collect();
    let mut got = ids_of(&h.store, "load").await;
    want.sort();
    got.sort();
    assert_eq!(got, want);

    // 8 racers on each of 4 control ids, all at once: one winner each.
    let tasks = (0..32).map(|i| {
        let s = h.store.clone();
        tokio::spawn(async move {
            let key = format!("R{}", i % 4);
            let m = msg("race", Some(&key), base() + TimeDelta::milliseconds(i));
            (key, m.id, s.insert_message(&m).await.expect("insert"))
        })
    });
    let results: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    for key in ["R0", "R1", "R2", "R3"] {
        let mine: Vec<_> = results.iter().filter(|(k, _, _)| k == key).collect();
        let winners: Vec<Uuid> = mine
            .iter()
            .filter(|(_, _, o)| *o == InsertOutcome::Inserted)
            .map(|(_, id, _)| *id)
            .collect();
        assert_eq!(winners.len(), 1, "{key}: {mine:?}");
        let dup = InsertOutcome::Duplicate { existing: winners[0] };
        assert!(
            mine.iter().all(|(_, id, o)| *id == winners[0] || *o == dup),
            "{key}: {mine:?}"
        );
        let stored = h.store.find_message("race", key).await.expect("find").expect("stored");
        assert_eq!(stored.message.id, winners[0]);
    }
    assert_eq!(ids_of(&h.store, "race").await.len(), 4);

    // 16 concurrent records of one stage: every attempt counts.
    let target = h
        .store
        .find_message("race", "R0")
        .await
        .expect("find")
        .expect("stored")
        .message
        .id;
    let tasks = (0..16).map(|_| {
        let s = h.store.clone();
        tokio::spawn(async move {
            s.record_stage(target, "router", MessageStatus::Errored, Some("x"))
                .await
        })
    });
    for r in futures::future::join_all(tasks).await {
        r.expect("task").expect("record");
    }
    let stored = h.store.get_message(target).await.expect("get").expect("stored");
    assert_eq!(stored.stages.len(), 1);
    assert_eq!(stored.stages[0].attempts, 16);
}

async fn ids_of(s: &SharedStore, channel: &str) -> Vec<Uuid> {
    let filter = MessageFilter {
        channel: Some(channel.into()),
        ..Default::default()
    };
    s.list_messages(&filter)
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.id)
        .collect()
}
