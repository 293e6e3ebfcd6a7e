//! The registration service on the embedded backbone and SQLite: events in,
//! patient and encounter rows out, exactly once, in order per patient, and
//! through injected panics.

use std::time::Duration;

use actix::Addr;
use medbus_actors::faults::FaultInjector;
use medbus_actors::feed::{self, Apply, ApplyBatch, ApplyError};
use medbus_actors::registration::{self, RegistrationActor};
use medbus_actors::system::ActorSystem;
use medbus_bus::backbone::dead_letter::header;
use medbus_bus::backbone::{self, open_consumer, ConsumerSpec, SharedBackbone};
use medbus_bus::canonical::{CanonicalEvent, EventKind};
use medbus_bus::config::{BackboneConfig, StoreConfig};
use medbus_bus::envelope::{Envelope, Source};
use medbus_bus::store::{self, EventRecord, SharedStore};
use serde_json::json;
use tokio_util::sync::CancellationToken;

struct Rig {
    backbone: SharedBackbone,
    store: SharedStore,
    faults: FaultInjector,
    addr: Addr<RegistrationActor>,
    cfg: BackboneConfig,
    shutdown: CancellationToken,
    system: Option<ActorSystem>,
    _dir: tempfile::TempDir,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(s) = self.system.take() {
            s.stop();
        }
    }
}

impl Rig {
    /// Starts the registration feed.
    fn start_feed(&self) {
        let (bb, cfg, addr, stop) = (
            self.backbone.clone(),
            self.cfg.clone(),
            self.addr.clone(),
            self.shutdown.clone(),
        );
        tokio::spawn(async move { feed::run(bb, &cfg, registration::feed_spec(), addr, stop).await });
    }
}

/// The service and its feed, running.
async fn rig() -> Rig {
    let r = idle_rig().await;
    r.start_feed();
    r
}

/// The service without its feed yet: what is published before
/// [`Rig::start_feed`] arrives as one fetched batch.
async fn idle_rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BackboneConfig {
        ack_wait: Duration::from_secs(2),
        ..Default::default()
    };
    let backbone = backbone::connect(&cfg, dir.path()).await.unwrap();
    let store = store::connect(&StoreConfig::default(), dir.path()).await.unwrap();
    let faults = FaultInjector::default();
    let system = ActorSystem::start().unwrap();
    let (s, f) = (store.clone(), faults.clone());
    let addr = system.supervise(move || RegistrationActor::new(s, f)).await.unwrap();
    Rig {
        backbone,
        store,
        faults,
        addr,
        cfg,
        shutdown: CancellationToken::new(),
        system: Some(system),
        _dir: dir,
    }
}

fn patient(mrn: &str, family: &str) -> serde_json::Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
            "system": "urn:medbus:authority:HOSP",
            "value": mrn
        }],
        "name": [{"family": family, "given": ["Jane"]}]
    })
}

fn encounter(mrn: &str, status: &str) -> serde_json::Value {
    json!({
        "resourceType": "Encounter",
        "identifier": [{"system": "urn:medbus:authority:HOSP", "value": format!("V{mrn}")}],
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "subject": {"identifier": {"system": "urn:medbus:authority:HOSP", "value": mrn}}
    })
}

/// Publishes one event envelope; returns it (to publish again as a redelivery would).
async fn publish(bb: &SharedBackbone, kind: &str, body: serde_json::Value) -> Envelope {
    let source = Source {
        channel: "adt".into(),
        protocol: "hl7v2".into(),
        peer: None,
    };
    let root = Envelope::ingress(source, "hl7v2.raw", Default::default(), bytes::Bytes::new());
    let env = root.derive_event(kind, body);
    republish(bb, &env, "first").await;
    env
}

async fn republish(bb: &SharedBackbone, env: &Envelope, attempt: &str) {
    let subject = format!("medbus.events.{kind}", kind = env.kind);
    let out = env.to_outgoing(subject, format!("{}:{attempt}", env.id)).unwrap();
    bb.publish(out).await.unwrap();
}

async fn wait_for(store: &SharedStore, patients: u64, encounters: u64) -> (u64, u64) {
    let mut last = (0, 0);
    for _ in 0..200 {
        last = store.registration().registration_counts().await.unwrap();
        if last == (patients, encounters) {
            // Let anything extra arrive before the caller checks versions.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return store.registration().registration_counts().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

async fn admit_and_discharge(bb: &SharedBackbone, n: usize) -> Vec<Envelope> {
    let mut sent = Vec::new();
    for step in ["registered", "started", "finished"] {
        for i in 0..n {
            let mrn = format!("M{i}");
            let env = match step {
                "registered" => publish(bb, "patient.registered", json!({"patient": patient(&mrn, "DOE")})).await,
                "started" => {
                    let body = json!({"encounter": encounter(&mrn, "in-progress"), "patient": patient(&mrn, "DOE")});
                    publish(bb, "encounter.started", body).await
                }
                _ => {
                    let body = json!({"encounter": encounter(&mrn, "finished"), "patient": patient(&mrn, "DOE")});
                    publish(bb, "encounter.finished", body).await
                }
            };
            sent.push(env);
        }
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_become_rows_once_and_in_order() {
    let r = rig().await;
    let sent = admit_and_discharge(&r.backbone, 50).await;
    assert_eq!(wait_for(&r.store, 50, 50).await, (50, 50));
    let reg = r.store.registration();
    let p = reg
        .patient("urn:medbus:authority:HOSP|M7")
        .await
        .unwrap()
        .expect("patient row");
    assert_eq!(p.resource["name"][0]["family"], "DOE");
    let v = p.version;
    let encs = reg.encounters_of("urn:medbus:authority:HOSP|M7").await.unwrap();
    assert_eq!(encs.len(), 1);
    assert_eq!(
        encs[0].status, "finished",
        "started then finished, applied in that order"
    );
    // Redeliveries of every event (same envelope ids): nothing changes.
    for env in &sent {
        republish(&r.backbone, env, "again").await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(reg.registration_counts().await.unwrap(), (50, 50));
    let p = reg.patient("urn:medbus:authority:HOSP|M7").await.unwrap().unwrap();
    assert_eq!(p.version, v, "an event already applied changes nothing");
    let logged = r.store.events_for(sent[7].correlation_id).await.unwrap();
    assert_eq!(logged.len(), 1, "one event-log row per event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_panics_restart_the_service_with_nothing_lost_or_doubled() {
    let r = rig().await;
    r.faults.inject_panics(5);
    let sent = admit_and_discharge(&r.backbone, 20).await;
    assert_eq!(wait_for(&r.store, 20, 20).await, (20, 20));
    assert_eq!(r.faults.pending(), 0, "every injected panic fired");
    for env in &sent {
        let logged = r.store.events_for(env.correlation_id).await.unwrap();
        assert_eq!(logged.len(), 1, "event {} applied exactly once", env.kind);
    }
    for i in 0..20 {
        let encs = r
            .store
            .registration()
            .encounters_of(&format!("urn:medbus:authority:HOSP|M{i}"))
            .await
            .unwrap();
        assert_eq!(encs.len(), 1);
        assert_eq!(encs[0].status, "finished", "patient M{i}: order held through restarts");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_folds_the_old_record_into_the_survivor() {
    let r = rig().await;
    publish(
        &r.backbone,
        "patient.registered",
        json!({"patient": patient("OLD1", "ROE")}),
    )
    .await;
    publish(
        &r.backbone,
        "patient.registered",
        json!({"patient": patient("NEW1", "ROE")}),
    )
    .await;
    assert_eq!(wait_for(&r.store, 2, 0).await, (2, 0));
    let merge = json!({
        "surviving": patient("NEW1", "ROE"),
        "merged": [{"system": "urn:medbus:authority:HOSP", "value": "OLD1"}]
    });
    publish(&r.backbone, "patient.merged", merge).await;
    let reg = r.store.registration();
    for _ in 0..100 {
        if reg
            .patient("urn:medbus:authority:HOSP|OLD1")
            .await
            .unwrap()
            .and_then(|p| p.merged_into)
            .is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let old = reg.patient("urn:medbus:authority:HOSP|OLD1").await.unwrap().unwrap();
    assert_eq!(old.merged_into.as_deref(), Some("urn:medbus:authority:HOSP|NEW1"));
    let found = reg
        .find_patient(Some("urn:medbus:authority:HOSP"), "OLD1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        found.key, "urn:medbus:authority:HOSP|NEW1",
        "the old identifier finds the survivor"
    );
}

/// An event as the feed hands it to the service.
fn apply_of(kind: &str, body: serde_json::Value) -> Apply {
    let kind = EventKind::parse(kind).expect("a known kind");
    let event = CanonicalEvent::from_json(kind, body.clone()).expect("a valid body");
    let id = uuid::Uuid::now_v7();
    let record = EventRecord {
        id,
        correlation_id: id,
        causation_id: None,
        kind: kind.as_str().to_string(),
        subject: format!("medbus.events.{}", kind.as_str()),
        patient_id: event.patient_key(),
        body,
        occurred_at: chrono::Utc::now(),
    };
    Apply { event, record }
}

/// The same event again (same id).
fn again(a: &Apply) -> Apply {
    Apply {
        event: a.event.clone(),
        record: a.record.clone(),
    }
}

/// A Patient that parses but has no identifier value to key it by.
fn keyless_patient() -> serde_json::Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:medbus:authority:HOSP"}],
        "name": [{"family": "NOBODY"}]
    })
}

/// Every dead letter of the registration feed, waiting up to `wait` for the first.
async fn dead_letters(r: &Rig, wait: Duration) -> Vec<medbus_bus::backbone::Delivery> {
    let spec = ConsumerSpec::new("registration_dlq_check", "medbus.dlq.registration", &r.cfg);
    let mut c = open_consumer(&r.backbone, spec).await.unwrap();
    let mut got = c.fetch(100, wait).await.unwrap();
    // Anything more would come right behind the first.
    got.extend(c.fetch(100, Duration::from_millis(500)).await.unwrap());
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_all_or_nothing_and_names_its_bad_event() {
    let r = idle_rig().await;
    let reg = r.store.registration();
    let a1 = apply_of("patient.registered", json!({"patient": patient("A1", "DOE")}));
    let a2 = apply_of("patient.registered", json!({"patient": patient("A2", "ROE")}));
    let bad = apply_of("patient.registered", json!({"patient": keyless_patient()}));
    let bad_id = bad.record.id;
    let answer = r
        .addr
        .send(ApplyBatch {
            items: vec![again(&a1), bad, again(&a2)],
        })
        .await
        .unwrap();
    match answer {
        Err(ApplyError::BadInput(why)) => assert!(why.contains(&bad_id.to_string()), "{why}"),
        other => panic!("expected bad input, got {other:?}"),
    }
    assert_eq!(
        reg.registration_counts().await.unwrap(),
        (0, 0),
        "nothing of the batch applied"
    );
    assert!(r.store.events_for(a1.record.correlation_id).await.unwrap().is_empty());

    let items = vec![again(&a1), again(&a2), again(&a1)];
    let answer = r.addr.send(ApplyBatch { items }).await.unwrap().unwrap();
    assert_eq!(
        answer,
        [true, true, false],
        "an event already applied in the batch is skipped"
    );
    let answer = r.addr.send(ApplyBatch { items: vec![a1, a2] }).await.unwrap().unwrap();
    assert_eq!(answer, [false, false], "and so is one applied before");
    assert_eq!(reg.registration_counts().await.unwrap(), (2, 0));

    // A panic answers Panicked, commits nothing, and the restarted service carries on.
    r.faults.inject_panics(1);
    let a3 = apply_of("patient.registered", json!({"patient": patient("A3", "POE")}));
    let answer = r
        .addr
        .send(ApplyBatch {
            items: vec![again(&a3)],
        })
        .await
        .unwrap();
    assert!(matches!(answer, Err(ApplyError::Panicked)), "{answer:?}");
    assert_eq!(reg.registration_counts().await.unwrap(), (2, 0));
    let answer = r.addr.send(ApplyBatch { items: vec![a3] }).await.unwrap().unwrap();
    assert_eq!(answer, [true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_event_in_a_batch_is_dead_lettered_alone_and_the_rest_applied_once() {
    let r = idle_rig().await;
    let mut good = Vec::new();
    for i in 0..10 {
        let body = json!({"patient": patient(&format!("B{i}"), "DOE")});
        good.push(publish(&r.backbone, "patient.registered", body).await);
    }
    let bad = publish(&r.backbone, "patient.registered", json!({"patient": keyless_patient()})).await;
    for i in 0..10 {
        let mrn = format!("B{i}");
        let body = json!({"encounter": encounter(&mrn, "in-progress"), "patient": patient(&mrn, "DOE")});
        good.push(publish(&r.backbone, "encounter.started", body).await);
    }
    // All of it is waiting: the feed fetches it as one batch.
    r.start_feed();
    assert_eq!(wait_for(&r.store, 10, 10).await, (10, 10));
    let dead = dead_letters(&r, Duration::from_secs(10)).await;
    assert_eq!(dead.len(), 1, "only the bad event is dead-lettered");
    let dedupe = dead[0].headers.get(header::DEDUPE_ID).cloned().unwrap_or_default();
    assert_eq!(dedupe, format!("{}:first", bad.id));
    let reason = dead[0].headers.get(header::REASON).cloned().unwrap_or_default();
    assert!(reason.contains("identifier"), "reason {reason:?}");
    for env in &good {
        let logged = r.store.events_for(env.correlation_id).await.unwrap();
        assert_eq!(logged.len(), 1, "event {} applied exactly once", env.kind);
    }
    assert!(r.store.events_for(bad.correlation_id).await.unwrap().is_empty());
    for i in 0..10 {
        let key = format!("urn:medbus:authority:HOSP|B{i}");
        let p = r.store.registration().patient(&key).await.unwrap().unwrap();
        assert_eq!(p.version, 2, "B{i}: registered and admitted, each once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_patients_story_in_one_batch_ends_in_its_last_state() {
    let r = idle_rig().await;
    let bb = &r.backbone;
    let mut sent = Vec::new();
    let visit =
        |status: &str, family: &str| json!({"encounter": encounter("S1", status), "patient": patient("S1", family)});
    sent.push(publish(bb, "patient.registered", json!({"patient": patient("S1", "ONE")})).await);
    sent.push(publish(bb, "patient.registered", json!({"patient": patient("O1", "OTHER")})).await);
    let admitted = publish(bb, "encounter.started", visit("in-progress", "ONE")).await;
    sent.push(admitted.clone());
    sent.push(publish(bb, "patient.updated", json!({"patient": patient("S1", "TWO")})).await);
    sent.push(publish(bb, "encounter.finished", visit("finished", "TWO")).await);
    // The admission redelivered after the discharge, in the same batch: it is
    // already in the event log by then, so it must not reopen the visit.
    republish(bb, &admitted, "again").await;
    r.start_feed();
    assert_eq!(wait_for(&r.store, 2, 1).await, (2, 1));
    let reg = r.store.registration();
    let p = reg.patient("urn:medbus:authority:HOSP|S1").await.unwrap().unwrap();
    assert_eq!(p.resource["name"][0]["family"], "TWO");
    assert_eq!(
        p.version, 4,
        "registered, admitted, updated, discharged: four upserts, once each"
    );
    let encs = reg.encounters_of("urn:medbus:authority:HOSP|S1").await.unwrap();
    assert_eq!(encs.len(), 1);
    assert_eq!(encs[0].status, "finished");
    for env in &sent {
        let logged = r.store.events_for(env.correlation_id).await.unwrap();
        assert_eq!(logged.len(), 1, "event {} logged once", env.kind);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_while_applying_a_batch_loses_and_doubles_nothing() {
    let r = idle_rig().await;
    let sent = admit_and_discharge(&r.backbone, 10).await;
    // The first thing the service handles is the batch of all 30 events.
    r.faults.inject_panics(1);
    r.start_feed();
    assert_eq!(wait_for(&r.store, 10, 10).await, (10, 10));
    assert_eq!(r.faults.pending(), 0, "the injected panic fired");
    for env in &sent {
        let logged = r.store.events_for(env.correlation_id).await.unwrap();
        assert_eq!(logged.len(), 1, "event {} applied exactly once", env.kind);
    }
    for i in 0..10 {
        let key = format!("urn:medbus:authority:HOSP|M{i}");
        let encs = r.store.registration().encounters_of(&key).await.unwrap();
        assert_eq!(encs.len(), 1);
        assert_eq!(
            encs[0].status, "finished",
            "patient M{i}: order held through the restart"
        );
    }
}

/// Publishes an event the router tagged for `services` (the `Medbus-Services` header).
async fn publish_for(bb: &SharedBackbone, services: &str, mrn: &str) {
    let source = Source {
        channel: "adt".into(),
        protocol: "hl7v2".into(),
        peer: None,
    };
    let root = Envelope::ingress(source, "hl7v2.raw", Default::default(), bytes::Bytes::new());
    let env = root.derive_event("patient.registered", json!({"patient": patient(mrn, "DOE")}));
    let mut out = env
        .to_outgoing("medbus.events.patient.registered".into(), env.id.to_string())
        .unwrap();
    out.headers
        .insert(medbus_bus::envelope::header::SERVICES.into(), services.into());
    bb.publish(out).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_routed_to_other_services_is_skipped() {
    let r = rig().await;
    publish_for(&r.backbone, "billing,orders", "ELSEWHERE").await;
    publish_for(&r.backbone, "orders,registration", "HERE").await;
    assert_eq!(wait_for(&r.store, 1, 0).await, (1, 0));
    let reg = r.store.registration();
    assert!(reg.patient("urn:medbus:authority:HOSP|HERE").await.unwrap().is_some());
    assert!(
        reg.patient("urn:medbus:authority:HOSP|ELSEWHERE")
            .await
            .unwrap()
            .is_none(),
        "routed to billing and orders only"
    );
}
