//! Conformance cases about messages: insert, duplicates, stages, listing.

use super::*;

/// An empty list of ids.
const NONE: [Uuid; 0] = [];

/// Ids of the listed messages, in the order listed.
async fn ids(s: &SharedStore, filter: MessageFilter) -> Vec<Uuid> {
    let list = s.list_messages(&filter).await.expect("list");
    list.into_iter().map(|m| m.id).collect()
}

pub async fn check_ok(h: &Harness) {
    h.store.check().await.expect("check");
    assert_eq!(h.store.kind(), h.kind);
}

pub async fn insert_get_round_trips_every_field(h: &Harness) {
    let s = &h.store;
    let mut m = msg(
        "lab",
        Some("CTRL-1 'quoted'"),
        base() + TimeDelta::nanoseconds(123_456_789),
    );
    m.correlation_id = Uuid::now_v7();
    m.message_type = Some("ORU^R01".into());
    m.patient_id = Some("MRN-0042".into());
    m.peer = Some("[::1]:2575".into());
    m.raw = Bytes::from((0u8..=255).chain([0x0b, 0x1c, 0x0d, 0x00]).collect::<Vec<u8>>());
    m.headers = BTreeMap::from([
        ("content-type".to_string(), "x-application/hl7-v2+er7".to_string()),
        ("ünïcode".to_string(), "Ørsted ✓ \"quoted\"".to_string()),
        ("empty".to_string(), String::new()),
    ]);
    let t0 = now_us();
    put(s, &m).await;
    let t1 = Utc::now();

    let got = s.get_message(m.id).await.expect("get").expect("stored");
    let mut want = m.clone();
    want.received_at = base() + TimeDelta::microseconds(123_456); // kept to the microsecond
    assert_eq!(got.message, want);
    assert_eq!(got.message.raw.as_ref(), m.raw.as_ref());
    assert_eq!((got.status, got.error.as_deref()), (MessageStatus::Received, None));
    assert!(got.stages.is_empty());
    assert!(
        t0 <= got.updated_at && got.updated_at <= t1,
        "updated_at {} not in [{t0}, {t1}]",
        got.updated_at
    );
    let found = s
        .find_message("lab", "CTRL-1 'quoted'")
        .await
        .expect("find")
        .expect("found");
    assert_eq!(found, got);

    // Nothing optional, empty raw, refused at the door.
    let bare = NewMessage {
        control_id: None,
        message_type: None,
        patient_id: None,
        peer: None,
        raw: Bytes::new(),
        headers: BTreeMap::new(),
        status: MessageStatus::Rejected,
        error: Some("MSH-9 is empty".into()),
        ..msg("lab", None, base() + secs(1))
    };
    put(s, &bare).await;
    let got = s.get_message(bare.id).await.expect("get").expect("stored");
    assert_eq!(got.message, bare);
    assert_eq!(
        (got.status, got.error.as_deref()),
        (MessageStatus::Rejected, Some("MSH-9 is empty"))
    );

    assert!(s.get_message(Uuid::now_v7()).await.expect("get").is_none());
    assert!(s.find_message("lab", "nope").await.expect("find").is_none());
    assert!(s
        .find_message("other", "CTRL-1 'quoted'")
        .await
        .expect("find")
        .is_none());
}

pub async fn duplicate_by_channel_and_control_id(h: &Harness) {
    let s = &h.store;
    let a = msg("adt", Some("C1"), base());
    put(s, &a).await;
    let b = msg("adt", Some("C1"), base() + secs(1));
    assert_eq!(
        s.insert_message(&b).await.expect("insert"),
        InsertOutcome::Duplicate { existing: a.id }
    );
    assert!(
        s.get_message(b.id).await.expect("get").is_none(),
        "the duplicate was stored"
    );

    // The same id again (a redelivery) is a duplicate whatever its key.
    let c = NewMessage {
        id: a.id,
        ..msg("other", Some("C9"), base() + secs(2))
    };
    assert_eq!(
        s.insert_message(&c).await.expect("insert"),
        InsertOutcome::Duplicate { existing: a.id }
    );
    assert!(s.find_message("other", "C9").await.expect("find").is_none());
    assert_eq!(s.get_message(a.id).await.expect("get").expect("stored").message, a);

    // Without a control id there is no natural key.
    let n1 = msg("adt", None, base() + secs(3));
    let n2 = msg("adt", None, base() + secs(4));
    put(s, &n1).await;
    put(s, &n2).await;
    let all = ids(s, MessageFilter::default()).await;
    assert_eq!(all, vec![n2.id, n1.id, a.id]);
}

pub async fn same_control_id_on_another_channel(h: &Harness) {
    let s = &h.store;
    let a = msg("lab-a", Some("C1"), base());
    let b = msg("lab-b", Some("C1"), base() + secs(1));
    put(s, &a).await;
    put(s, &b).await;
    let found_a = s.find_message("lab-a", "C1").await.expect("find").expect("a");
    let found_b = s.find_message("lab-b", "C1").await.expect("find").expect("b");
    assert_eq!((found_a.message.id, found_b.message.id), (a.id, b.id));
    let by_control = MessageFilter {
        control_id: Some("C1".into()),
        ..Default::default()
    };
    assert_eq!(ids(s, by_control).await, vec![b.id, a.id]);
}

pub async fn record_stage_counts_and_sets_status(h: &Harness) {
    let s = &h.store;
    let m = msg("adt", Some("S1"), base());
    let other = msg("adt", Some("S2"), base() + secs(1));
    put(s, &m).await;
    put(s, &other).await;
    let t0 = now_us();
    let record = |stage: &'static str, status, error: Option<&'static str>| {
        let s = s.clone();
        async move { s.record_stage(m.id, stage, status, error).await.expect("record") }
    };
    record("ingress", MessageStatus::Processed, None).await;
    record("router", MessageStatus::Errored, Some("no route")).await;
    record("router", MessageStatus::Processed, None).await;
    record("registration", MessageStatus::Errored, Some("db down")).await;

    let got = s.get_message(m.id).await.expect("get").expect("stored");
    let view: Vec<_> = got
        .stages
        .iter()
        .map(|r| (r.stage.as_str(), r.status, r.error.as_deref(), r.attempts))
        .collect();
    assert_eq!(
        view,
        vec![
            ("ingress", MessageStatus::Processed, None, 1),
            ("router", MessageStatus::Processed, None, 2),
            ("registration", MessageStatus::Errored, Some("db down"), 1),
        ]
    );
    assert_eq!(
        (got.status, got.error.as_deref()),
        (MessageStatus::Errored, Some("db down"))
    );
    assert!(got.updated_at >= t0 && got.stages.iter().all(|r| r.updated_at >= t0));

    // A later attempt of an earlier stage keeps the order and sets the overall status.
    record("router", MessageStatus::Errored, Some("again")).await;
    let got = s.get_message(m.id).await.expect("get").expect("stored");
    let names: Vec<_> = got.stages.iter().map(|r| r.stage.as_str()).collect();
    assert_eq!(names, ["ingress", "router", "registration"]);
    assert_eq!(
        (got.stages[1].attempts, got.stages[1].error.as_deref()),
        (3, Some("again"))
    );
    assert_eq!(
        (got.status, got.error.as_deref()),
        (MessageStatus::Errored, Some("again"))
    );
    record("registration", MessageStatus::Processed, None).await;
    let got = s.get_message(m.id).await.expect("get").expect("stored");
    assert_eq!((got.status, got.error.as_deref()), (MessageStatus::Processed, None));
    assert_eq!(
        (got.stages[2].status, got.stages[2].attempts),
        (MessageStatus::Processed, 2)
    );

    let untouched = s.get_message(other.id).await.expect("get").expect("stored");
    assert_eq!((untouched.status, untouched.stages.len()), (MessageStatus::Received, 0));
    let unknown = s
        .record_stage(Uuid::now_v7(), "router", MessageStatus::Processed, None)
        .await;
    assert!(matches!(unknown, Err(StoreError::Invalid(_))), "{unknown:?}");
}

pub async fn list_messages_filters(h: &Harness) {
    let s = &h.store;
    let mk = |ch: &str, ctrl: Option<&str>, patient: Option<&str>, n: i64| NewMessage {
        patient_id: patient.map(Into::into),
        ..msg(ch, ctrl, base() + secs(n))
    };
    let m0 = mk("adt", Some("A0"), Some("P1"), 0);
    let m1 = mk("lab", Some("L1"), Some("P2"), 1);
    let m2 = mk("adt", Some("A2"), Some("P2"), 2);
    let m3 = NewMessage {
        status: MessageStatus::Rejected,
        error: Some("bad MSH".into()),
        ..mk("lab", None, None, 3)
    };
    let m4 = mk("adt", Some("A4"), Some("P1"), 4);
    for m in [&m0, &m1, &m2, &m3, &m4] {
        put(s, m).await;
    }
    s.record_stage(m2.id, "router", MessageStatus::Errored, Some("bad PID"))
        .await
        .expect("record");
    let f = MessageFilter::default;
    let at = |n: i64| Some(base() + secs(n));

    assert_eq!(ids(s, f()).await, [m4.id, m3.id, m2.id, m1.id, m0.id]);
    let by_channel = |c: &str| MessageFilter {
        channel: Some(c.into()),
        ..f()
    };
    assert_eq!(ids(s, by_channel("adt")).await, [m4.id, m2.id, m0.id]);
    assert_eq!(ids(s, by_channel("lab")).await, [m3.id, m1.id]);
    assert_eq!(ids(s, by_channel("none")).await, NONE);
    let by_status = |st| MessageFilter {
        status: Some(st),
        ..f()
    };
    assert_eq!(ids(s, by_status(MessageStatus::Errored)).await, [m2.id]);
    assert_eq!(ids(s, by_status(MessageStatus::Rejected)).await, [m3.id]);
    assert_eq!(ids(s, by_status(MessageStatus::Received)).await, [m4.id, m1.id, m0.id]);
    assert_eq!(ids(s, by_status(MessageStatus::Processed)).await, NONE);
    let by_control = |c: &str| MessageFilter {
        control_id: Some(c.into()),
        ..f()
    };
    assert_eq!(ids(s, by_control("A2")).await, [m2.id]);
    assert_eq!(ids(s, by_control("L1")).await, [m1.id]);
    let by_patient = |p: &str| MessageFilter {
        patient_id: Some(p.into()),
        ..f()
    };
    assert_eq!(ids(s, by_patient("P1")).await, [m4.id, m0.id]);
    assert_eq!(ids(s, by_patient("P2")).await, [m2.id, m1.id]);
    // since is inclusive, until exclusive.
    assert_eq!(
        ids(s, MessageFilter { since: at(2), ..f() }).await,
        [m4.id, m3.id, m2.id]
    );
    assert_eq!(ids(s, MessageFilter { until: at(2), ..f() }).await, [m1.id, m0.id]);
    let window = MessageFilter {
        since: at(1),
        until: at(4),
        ..f()
    };
    assert_eq!(ids(s, window).await, [m3.id, m2.id, m1.id]);
    let both = MessageFilter {
        channel: Some("adt".into()),
        patient_id: Some("P2".into()),
        ..f()
    };
    assert_eq!(ids(s, both).await, [m2.id]);
    let none = MessageFilter {
        channel: Some("lab".into()),
        status: Some(MessageStatus::Errored),
        ..f()
    };
    assert_eq!(ids(s, none).await, NONE);

    let line = s.list_messages(&by_control("A2")).await.expect("list");
    let want = MessageSummary {
        id: m2.id,
        channel: "adt".into(),
        protocol: "hl7v2".into(),
        control_id: Some("A2".into()),
        message_type: Some("ADT^A01".into()),
        patient_id: Some("P2".into()),
        status: MessageStatus::Errored,
        error: Some("bad PID".into()),
        received_at: base() + secs(2),
    };
    assert_eq!(line, [want]);
}

pub async fn list_messages_pages_newest_first(h: &Harness) {
    let s = &h.store;
    // Three messages share one received_at: pages must split them by id.
    let mut all = Vec::new();
    for n in [0, 1, 2, 3, 3, 3, 4, 5, 6, 7] {
        let m = msg("adt", None, base() + secs(n));
        put(s, &m).await;
        all.push((m.received_at, m.id));
    }
    all.sort_by(|a, b| b.cmp(a));
    let newest_first: Vec<Uuid> = all.iter().map(|(_, id)| *id).collect();

    let mut paged = Vec::new();
    let mut sizes = Vec::new();
    let mut before_id = None;
    loop {
        let page = ids(
            s,
            MessageFilter {
                before_id,
                limit: 3,
                ..Default::default()
            },
        )
        .await;
        if page.is_empty() {
            break;
        }
        sizes.push(page.len());
        before_id = page.last().copied();
        paged.extend(page);
        assert!(sizes.len() <= 10, "paging does not end");
    }
    assert_eq!(sizes, [3, 3, 3, 1]);
    assert_eq!(paged, newest_first);
    assert_eq!(
        ids(
            s,
            MessageFilter {
                limit: 1,
                ..Default::default()
            }
        )
        .await,
        newest_first[..1]
    );
    // A before_id that is not stored pages by id order alone.
    let future = id_at(base() + secs(100));
    assert_eq!(
        ids(
            s,
            MessageFilter {
                before_id: Some(future),
                ..Default::default()
            }
        )
        .await
        .len(),
        10
    );
    let past = id_at(base() - secs(100));
    assert_eq!(
        ids(
            s,
            MessageFilter {
                before_id: Some(past),
                ..Default::default()
            }
        )
        .await,
        NONE
    );
}

pub async fn list_messages_default_limit(h: &Harness) {
    let s = &h.store;
    for n in 0..101 {
        put(
            s,
            &msg("bulk", Some(&format!("B{n}")), base() + TimeDelta::milliseconds(n)),
        )
        .await;
    }
    let page = ids(s, MessageFilter::default()).await;
    assert_eq!(page.len(), 100, "limit 0 means 100");
    let newest = s.find_message("bulk", "B100").await.expect("find").expect("stored");
    assert_eq!(page[0], newest.message.id);
    assert_eq!(
        ids(
            s,
            MessageFilter {
                limit: 1000,
                ..Default::default()
            }
        )
        .await
        .len(),
        101
    );
    assert_eq!(
        ids(
            s,
            MessageFilter {
                limit: 5000,
                ..Default::default()
            }
        )
        .await
        .len(),
        101
    );
}

pub async fn batch_insert_reports_each_outcome_in_order(h: &Harness) {
    let s = &h.store;
    let kept = msg("adt", Some("B0"), base());
    put(s, &kept).await;
    let a = msg("adt", Some("B1"), base() + secs(1));
    let resend = msg("adt", Some("B0"), base() + secs(2));
    let b = msg("adt", Some("B2"), base() + secs(3));
    // The same control id twice inside one batch: the second is a duplicate of the first.
    let twin = msg("adt", Some("B1"), base() + secs(4));
    // The kept message itself again (same id, as a redelivery brings it): a
    // duplicate of itself; and a new one twice in the batch: the second copy
    // is a duplicate of the first.
    let out = s
        .insert_messages(&[
            a.clone(),
            resend.clone(),
            b.clone(),
            twin.clone(),
            kept.clone(),
            b.clone(),
        ])
        .await
        .expect("batch insert");
    assert_eq!(
        out,
        vec![
            InsertOutcome::Inserted,
            InsertOutcome::Duplicate { existing: kept.id },
            InsertOutcome::Inserted,
            InsertOutcome::Duplicate { existing: a.id },
            InsertOutcome::Duplicate { existing: kept.id },
            InsertOutcome::Duplicate { existing: b.id },
        ]
    );
    for m in [&a, &b] {
        let got = s.get_message(m.id).await.expect("get").expect("stored");
        assert_eq!(got.message.control_id, m.control_id);
    }
    assert!(s.get_message(resend.id).await.expect("get").is_none());
    assert!(s.get_message(twin.id).await.expect("get").is_none());
    assert_eq!(s.insert_messages(&[]).await.expect("empty batch"), vec![]);
}

pub async fn batch_stages_are_all_or_nothing(h: &Harness) {
    let s = &h.store;
    let a = msg("adt", Some("R1"), base());
    let b = msg("adt", Some("R2"), base() + secs(1));
    put(s, &a).await;
    put(s, &b).await;
    let outcome = |id, status, error: Option<&str>| StageOutcome {
        message_id: id,
        stage: "router".into(),
        status,
        error: error.map(str::to_string),
    };
    s.record_stages(&[
        outcome(a.id, MessageStatus::Processed, None),
        outcome(b.id, MessageStatus::DeadLettered, Some("PID-3 is empty")),
    ])
    .await
    .expect("batch stages");
    let got = s.get_message(b.id).await.expect("get").expect("stored");
    assert_eq!(
        (got.status, got.error.as_deref()),
        (MessageStatus::DeadLettered, Some("PID-3 is empty"))
    );
    assert_eq!(
        s.get_message(a.id).await.expect("get").expect("stored").status,
        MessageStatus::Processed
    );
    // One unknown message fails the batch, and the others' changes are rolled back.
    let unknown = msg("adt", Some("R3"), base() + secs(2));
    let err = s
        .record_stages(&[
            outcome(a.id, MessageStatus::Errored, Some("should not stick")),
            outcome(unknown.id, MessageStatus::Processed, None),
        ])
        .await;
    assert!(matches!(err, Err(StoreError::Invalid(_))), "{err:?}");
    let got = s.get_message(a.id).await.expect("get").expect("stored");
    assert_eq!((got.status, got.stages[0].attempts), (MessageStatus::Processed, 1));
    // One message twice in a batch: applied in order, as one by one.
    s.record_stages(&[
        outcome(a.id, MessageStatus::Errored, Some("first")),
        outcome(a.id, MessageStatus::Processed, None),
    ])
    .await
    .expect("same message twice");
    let got = s.get_message(a.id).await.expect("get").expect("stored");
    assert_eq!(
        (got.status, got.error.as_deref(), got.stages[0].attempts),
        (MessageStatus::Processed, None, 3)
    );
    // A second stage on both in one batch: it comes after the first, in each message alone.
    let forward = |id| StageOutcome {
        stage: "forward".into(),
        ..outcome(id, MessageStatus::Processed, None)
    };
    s.record_stages(&[forward(b.id), forward(a.id)])
        .await
        .expect("second stage");
    for id in [a.id, b.id] {
        let got = s.get_message(id).await.expect("get").expect("stored");
        let stages: Vec<_> = got.stages.iter().map(|r| (r.stage.as_str(), r.attempts)).collect();
        let router_attempts = if id == a.id { 3 } else { 1 };
        assert_eq!(stages, vec![("router", router_attempts), ("forward", 1)]);
        assert_eq!(got.status, MessageStatus::Processed);
    }
}

pub async fn record_messages_keeps_each_with_its_outcome(h: &Harness) {
    let s = &h.store;
    let outcome = |id, status, error: Option<&str>| StageOutcome {
        message_id: id,
        stage: "router".into(),
        status,
        error: error.map(str::to_string),
    };
    let with = |mut m: NewMessage, status, error: Option<&str>| {
        m.status = status;
        m.error = error.map(str::to_string);
        m
    };
    let a = msg("fhir", None, base());
    let b = msg("fhir", None, base() + secs(1));
    let waiting = msg("fhir", None, base() + secs(2));
    s.record_messages(
        &[
            with(a.clone(), MessageStatus::Processed, None),
            with(b.clone(), MessageStatus::DeadLettered, Some("no mapping")),
            waiting.clone(),
        ],
        &[
            outcome(a.id, MessageStatus::Processed, None),
            outcome(b.id, MessageStatus::DeadLettered, Some("no mapping")),
        ],
    )
    .await
    .expect("record");
    let view = |m: StoredMessage| {
        let stages: Vec<_> = m
            .stages
            .iter()
            .map(|r| (r.stage.clone(), r.status, r.error.clone(), r.attempts))
            .collect();
        (m.status, m.error, stages)
    };
    let get = |id| async move { s.get_message(id).await.expect("get").expect("stored") };
    assert_eq!(
        view(get(a.id).await),
        (
            MessageStatus::Processed,
            None,
            vec![("router".into(), MessageStatus::Processed, None, 1)]
        )
    );
    assert_eq!(
        view(get(b.id).await),
        (
            MessageStatus::DeadLettered,
            Some("no mapping".into()),
            vec![(
                "router".into(),
                MessageStatus::DeadLettered,
                Some("no mapping".into()),
                1
            )]
        )
    );
    assert_eq!(view(get(waiting.id).await), (MessageStatus::Received, None, vec![]));
    assert_eq!(get(a.id).await.message.raw, a.raw);
    // Delivered again (the same ids): the kept rows take the new outcome, not a second row.
    s.record_messages(
        &[
            with(waiting.clone(), MessageStatus::Processed, None),
            with(a.clone(), MessageStatus::Processed, None),
        ],
        &[
            outcome(waiting.id, MessageStatus::Processed, None),
            outcome(a.id, MessageStatus::Processed, None),
        ],
    )
    .await
    .expect("record again");
    assert_eq!(
        view(get(waiting.id).await),
        (
            MessageStatus::Processed,
            None,
            vec![("router".into(), MessageStatus::Processed, None, 1)]
        )
    );
    assert_eq!(get(a.id).await.stages[0].attempts, 2);
    assert_eq!(
        ids(s, MessageFilter::default()).await.len(),
        3,
        "no second row for a message delivered again"
    );
    s.record_messages(&[], &[]).await.expect("nothing to record");
}
