//! A webhook subscription against a receiver in the test (127.0.0.1:0), on the
//! embedded backbone and on JetStream (skipped without nats-server): every
//! request carries a valid signature; an event answered 503 twice, or too
//! late once, is retried and then delivered once; events arrive in order; a 400 sends that one event
//! to `medbus.dlq.subscription_<name>` with the status and the receiver's text,
//! and delivery goes on; events outside the subject pattern never arrive.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes as Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use medbus_adapters::webhook::{self, sign, SubscriptionContext};
use medbus_bus::backbone::{self, open_consumer, ConsumerSpec, SharedBackbone};
use medbus_bus::config::subscriptions::{Secret, SubscriptionConfig};
use medbus_bus::config::BackboneConfig;
use medbus_bus::envelope::{Envelope, Source};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "test-secret-0123";
/// A scripted "status" meaning: answer 200, but only after the timeout.
const SLOW: u16 = 299;
/// The subscription's timeout per POST.
const TIMEOUT: Duration = Duration::from_millis(400);

/// One request the receiver saw: (patient MRN, kind, signed and complete, status answered).
type Request = (String, String, bool, u16);

/// What the receiver saw, in arrival order, and what it answers.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Request>>>,
    /// Statuses to answer per patient MRN before answering 200.
    script: Arc<Mutex<HashMap<String, Vec<u16>>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Body) -> (StatusCode, &'static str) {
    let sig = headers
        .get("Medbus-Signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let valid = sign::verify(SECRET.as_bytes(), &body, sig)
        && headers.get("Medbus-Timestamp").is_some()
        && headers.get("Medbus-Subscription").and_then(|v| v.to_str().ok()) == Some("erp");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let id = json["id"].as_str().unwrap_or("").to_string();
    let header_id = headers
        .get("Medbus-Event-Id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let valid = valid && header_id == id && json["correlationId"].is_string() && json["occurredAt"].is_string();
    let mrn = json["body"]["mrn"].as_str().unwrap_or("").to_string();
    let status = {
        let mut script = r.script.lock().unwrap();
        match script.get_mut(&mrn) {
            Some(list) if !list.is_empty() => list.remove(0),
            _ => 200,
        }
    };
    r.seen
        .lock()
        .unwrap()
        .push((mrn, json["kind"].as_str().unwrap_or("").into(), valid, status));
    if status == SLOW {
        // Answers after the subscription's timeout: medbus must give up on this attempt and retry.
        tokio::time::sleep(TIMEOUT * 3).await;
    }
    let code = StatusCode::from_u16(if status == SLOW { 200 } else { status }).unwrap();
    (
        code,
        if status == 400 {
            "bad patient: MRN unknown here"
        } else {
            "ok"
        },
    )
}

async fn start_receiver(r: Receiver) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/hook", post(receive)).with_state(r);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/hook")
}

async fn publish_event(bb: &SharedBackbone, kind: &str, mrn: &str) {
    let source = Source {
        channel: "adt".into(),
        protocol: "hl7v2".into(),
        peer: None,
    };
    let raw = Envelope::ingress(source, "hl7v2.raw", BTreeMap::new(), Bytes::new());
    let ev = raw.derive_event(kind, serde_json::json!({ "mrn": mrn }));
    let out = ev
        .to_outgoing(format!("medbus.events.{kind}"), ev.id.to_string())
        .unwrap();
    bb.publish(out).await.unwrap();
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn scenario(cfg: BackboneConfig, dir: &std::path::Path) {
    let bb = backbone::connect(&cfg, dir).await.unwrap();
    let receiver = Receiver::default();
    receiver.script.lock().unwrap().insert("M1".into(), vec![503, 503]);
    receiver.script.lock().unwrap().insert("M2".into(), vec![SLOW]);
    receiver.script.lock().unwrap().insert("M3".into(), vec![400]);
    let url = start_receiver(receiver.clone()).await;
    // Published before the subscription starts: they wait on the backbone.
    publish_event(&bb, "patient.registered", "M1").await;
    publish_event(&bb, "order.placed", "M1").await;
    publish_event(&bb, "patient.updated", "M2").await;
    publish_event(&bb, "patient.updated", "M3").await;
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(webhook::run(SubscriptionContext {
        name: "erp".into(),
        config: subscription(url, 5),
        backbone: bb.clone(),
        backbone_config: cfg.clone(),
        shutdown: shutdown.clone(),
    }));
    publish_event(&bb, "patient.updated", "M4").await;
    let seen = || receiver.seen.lock().unwrap().clone();
    wait_for("M4 delivered", || {
        seen().iter().any(|(m, _, _, s)| m == "M4" && *s == 200)
    })
    .await;
    // Time for any stray repeat to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = seen();
    assert!(
        seen.iter().all(|(_, _, valid, _)| *valid),
        "every request signed and complete: {seen:?}"
    );
    let attempts: Vec<(&str, &str, u16)> = seen.iter().map(|(m, k, _, s)| (m.as_str(), k.as_str(), *s)).collect();
    assert_eq!(
        attempts,
        [
            ("M1", "patient.registered", 503),
            ("M1", "patient.registered", 503),
            ("M1", "patient.registered", 200),
            ("M2", "patient.updated", SLOW),
            ("M2", "patient.updated", 200),
            ("M3", "patient.updated", 400),
            ("M4", "patient.updated", 200),
        ],
        "retried (after 503s, after a timeout) then delivered once, in order; the 400 not retried; order.placed never sent"
    );

    let mut dlq = open_consumer(&bb, ConsumerSpec::new("ops", "medbus.dlq.>", &cfg))
        .await
        .unwrap();
    let dead = dlq.fetch(10, Duration::from_secs(3)).await.unwrap();
    assert_eq!(dead.len(), 1, "only the refused event is dead-lettered");
    assert_eq!(dead[0].subject, "medbus.dlq.subscription_erp");
    let reason = dead[0].headers.get("Medbus-Dlq-Reason").cloned().unwrap_or_default();
    assert!(
        reason.contains("400") && reason.contains("bad patient: MRN unknown here"),
        "{reason}"
    );
    let body: serde_json::Value = serde_json::from_slice(&dead[0].payload).unwrap();
    assert_eq!(body["mrn"], "M3", "the dead letter is the event as it was");
    shutdown.cancel();
    run.await.unwrap().unwrap();
    bb.close().await.unwrap();
}

fn subscription(url: String, max_attempts: u32) -> SubscriptionConfig {
    SubscriptionConfig {
        subject: "medbus.events.patient.>".into(),
        url,
        secret: Secret::new(SECRET),
        timeout: TIMEOUT,
        max_attempts,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        enabled: true,
    }
}

/// Shutdowns while the receiver keeps failing, more of them than
/// `max_deliver`, never dead-letter the event in hand (each is recorded as
/// given back): it is delivered once the receiver answers.
async fn restarts(cfg: BackboneConfig, dir: &std::path::Path) {
    let cfg = BackboneConfig { max_deliver: 2, ..cfg };
    let bb = backbone::connect(&cfg, dir).await.unwrap();
    let receiver = Receiver::default();
    receiver.script.lock().unwrap().insert("R1".into(), vec![503; 30]);
    let url = start_receiver(receiver.clone()).await;
    publish_event(&bb, "patient.registered", "R1").await;
    let seen = || receiver.seen.lock().unwrap().clone();
    let start = || {
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(webhook::run(SubscriptionContext {
            name: "erp".into(),
            config: subscription(url.clone(), 1000),
            backbone: bb.clone(),
            backbone_config: cfg.clone(),
            shutdown: shutdown.clone(),
        }));
        (shutdown, run)
    };
    for _ in 0..cfg.max_deliver + 2 {
        let before = seen().len();
        let (shutdown, run) = start();
        wait_for("an attempt by this run", || seen().len() > before).await;
        shutdown.cancel();
        run.await.unwrap().unwrap();
    }
    let (shutdown, run) = start();
    wait_for("R1 delivered", || {
        seen().iter().any(|(m, _, _, s)| m == "R1" && *s == 200)
    })
    .await;
    let mut dlq = open_consumer(&bb, ConsumerSpec::new("ops", "medbus.dlq.>", &cfg))
        .await
        .unwrap();
    let dead = dlq.fetch(10, Duration::from_millis(500)).await.unwrap();
    assert!(
        dead.is_empty(),
        "dead-lettered: {:?}",
        dead.iter().map(|d| &d.headers).collect::<Vec<_>>()
    );
    shutdown.cancel();
    run.await.unwrap().unwrap();
    bb.close().await.unwrap();
}

fn fast(url: String) -> BackboneConfig {
    BackboneConfig {
        url,
        ack_wait: Duration::from_millis(300),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_signed_in_order_retried_and_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    scenario(fast("embedded".into()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_signed_in_order_retried_and_dead_lettered() {
    let Some(nats) = medbus_testkit::NatsServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    scenario(fast(nats.url()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_restarts_while_the_receiver_fails_never_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    restarts(fast("embedded".into()), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_restarts_while_the_receiver_fails_never_dead_letter() {
    let Some(nats) = medbus_testkit::NatsServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    restarts(fast(nats.url()), dir.path()).await;
}
