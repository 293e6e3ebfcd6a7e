//! The registration service on the embedded backbone and SQLite: events in,
//! patient and encounter rows out, exactly once, in order per patient, and
//! through injected panics.

use std::time::Duration;

use medbus_actors::faults::FaultInjector;
use medbus_actors::feed;
use medbus_actors::registration::{self, RegistrationActor};
use medbus_actors::system::ActorSystem;
use medbus_bus::backbone::{self, SharedBackbone};
use medbus_bus::config::{BackboneConfig, StoreConfig};
use medbus_bus::envelope::{Envelope, Source};
use medbus_bus::store::{self, SharedStore};
use serde_json::json;
use tokio_util::sync::CancellationToken;

struct Rig {
    backbone: SharedBackbone,
    store: SharedStore,
    faults: FaultInjector,
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

async fn rig() -> Rig {
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
    let shutdown = CancellationToken::new();
    let (bb, stop) = (backbone.clone(), shutdown.clone());
    tokio::spawn(async move { feed::run(bb, &cfg, registration::feed_spec(), addr, stop).await });
    Rig {
        backbone,
        store,
        faults,
        shutdown,
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
