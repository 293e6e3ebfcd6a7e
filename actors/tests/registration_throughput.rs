//! How fast the registration service applies a backlog of events, on its own:
//! the events are published first, then the feed starts, so neither the
//! router nor the senders set the pace (scripts/bench-hl7.sh measures the
//! whole bus, where the slowest stage hides the others).
//!
//! Ignored by default; run it in release:
//!
//! ```text
//! cargo test --release -p medbus-actors --test registration_throughput -- --ignored --nocapture
//! ```
//!
//! `MEDBUS_BENCH_PATIENTS` (default 3000; three events each),
//! `MEDBUS_BENCH_BACKBONE_URL` and `MEDBUS_BENCH_STORE_URL` (default
//! `embedded`: the embedded log and SQLite; give a private `nats://…` and an
//! empty `postgres://…` database for the production pair).

use std::time::{Duration, Instant};

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

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn patient(mrn: &str) -> serde_json::Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
            "system": "urn:medbus:authority:HOSP",
            "value": mrn
        }],
        "name": [{"family": "DOE", "given": ["Jane"]}]
    })
}

fn visit(mrn: &str, status: &str) -> serde_json::Value {
    json!({
        "encounter": {
            "resourceType": "Encounter",
            "identifier": [{"system": "urn:medbus:authority:HOSP", "value": format!("V{mrn}")}],
            "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"identifier": {"system": "urn:medbus:authority:HOSP", "value": mrn}}
        },
        "patient": patient(mrn)
    })
}

/// Publishes `events` (kind, body), a few hundred at a time.
async fn publish_all(bb: &SharedBackbone, events: Vec<(&'static str, serde_json::Value)>) {
    let source = Source {
        channel: "adt".into(),
        protocol: "hl7v2".into(),
        peer: None,
    };
    let outgoing: Vec<_> = events
        .into_iter()
        .map(|(kind, body)| {
            let root = Envelope::ingress(source.clone(), "hl7v2.raw", Default::default(), bytes::Bytes::new());
            let env = root.derive_event(kind, body);
            env.to_outgoing(format!("medbus.events.{kind}"), env.id.to_string())
                .unwrap()
        })
        .collect();
    let mut outgoing = outgoing.into_iter().peekable();
    while outgoing.peek().is_some() {
        let chunk: Vec<_> = outgoing.by_ref().take(256).collect();
        for r in futures::future::join_all(chunk.into_iter().map(|o| bb.publish(o))).await {
            r.unwrap();
        }
    }
}

async fn finished(store: &SharedStore, mrn: &str) -> bool {
    let key = format!("urn:medbus:authority:HOSP|{mrn}");
    let encs = store.registration().encounters_of(&key).await.unwrap();
    encs.first().is_some_and(|e| e.status == "finished")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
async fn registration_applies_a_backlog() {
    let patients: usize = env_or("MEDBUS_BENCH_PATIENTS", "3000").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = BackboneConfig {
        url: env_or("MEDBUS_BENCH_BACKBONE_URL", "embedded"),
        ..Default::default()
    };
    let store_cfg = StoreConfig {
        url: env_or("MEDBUS_BENCH_STORE_URL", "embedded"),
        ..Default::default()
    };
    let bb = backbone::connect(&cfg, dir.path()).await.unwrap();
    let store = store::connect(&store_cfg, dir.path()).await.unwrap();

    // Admission then discharge of every patient, and a last patient marking the end.
    let mut events = Vec::with_capacity(patients * 3 + 1);
    for step in ["registered", "started", "finished"] {
        for i in 0..patients {
            let mrn = format!("T{i}");
            events.push(match step {
                "registered" => ("patient.registered", json!({"patient": patient(&mrn)})),
                "started" => ("encounter.started", visit(&mrn, "in-progress")),
                _ => ("encounter.finished", visit(&mrn, "finished")),
            });
        }
    }
    events.push(("patient.registered", json!({"patient": patient("END")})));
    let total = events.len();
    publish_all(&bb, events).await;

    let system = ActorSystem::start().unwrap();
    let s = store.clone();
    let addr = system
        .supervise(move || RegistrationActor::new(s, FaultInjector::default()))
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let (b, stop) = (bb.clone(), shutdown.clone());
    tokio::spawn(async move { feed::run(b, &cfg, registration::feed_spec(), addr, stop).await });

    let expected = (u64::try_from(patients).unwrap() + 1, u64::try_from(patients).unwrap());
    loop {
        let counts = store.registration().registration_counts().await.unwrap();
        if counts == expected && finished(&store, &format!("T{}", patients - 1)).await {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "gave up at {counts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Timed to the last patient's discharge and the end marker: a feed that
    // applies lanes side by side may still be finishing up to one fetch (256
    // events) of other patients then.
    let took = started.elapsed();
    // Not timed: every discharge lands.
    for i in 0..patients {
        while !finished(&store, &format!("T{i}")).await {
            assert!(started.elapsed() < Duration::from_secs(600), "T{i} not discharged");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    shutdown.cancel();
    println!(
        "registry backlog: {total} events ({} backbone, {} store) applied in {:.2} s = {:.0} events/s",
        bb.kind(),
        store.kind(),
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );
    system.stop();
}
