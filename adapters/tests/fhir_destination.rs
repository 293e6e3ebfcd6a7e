//! The FHIR destination against a FHIR server in the test (axum on
//! 127.0.0.1:0), on the embedded backbone and on JetStream (skipped without
//! nats-server): a patient event arrives as a transaction Bundle of
//! conditional updates, the same URL and id on a resend; 503s are retried (with
//! Retry-After, bounded by max_backoff) and the event delivered once; a 422,
//! or a failed entry in a 200 answer, dead-letters at once with the server's
//! OperationOutcome; a server that always fails dead-letters after
//! max_attempts; events outside the patterns, and system events, are skipped
//! (acked, never sent).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes as Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use medbus_adapters::fhir::conditional_url;
use medbus_adapters::fhir::destination::{self, FhirDestinationContext};
use medbus_bus::backbone::{self, dead_letter, open_consumer, ConsumerSpec, Headers, SharedBackbone};
use medbus_bus::canonical::{DestinationStatusEvent, Identifier, SystemEventKind};
use medbus_bus::config::fhir_destinations::FhirDestinationConfig;
use medbus_bus::config::subscriptions::Secret;
use medbus_bus::config::BackboneConfig;
use medbus_bus::envelope::{Envelope, Source};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const SYSTEM: &str = "urn:medbus:authority:GENERAL_HOSP";
const TOKEN: &str = "test-token-0123";

/// One answer of the test server.
#[derive(Clone)]
struct Reply {
    status: u16,
    body: Value,
    retry_after: Option<&'static str>,
}

impl Reply {
    fn status(status: u16) -> Self {
        Reply {
            status,
            body: outcome("error", "transient", "try again later", None),
            retry_after: None,
        }
    }
}

/// One request the server saw.
#[derive(Clone, Debug)]
struct Seen {
    mrn: String,
    at: Instant,
    headers: HeaderMap,
    bundle: Value,
    status: u16,
}

/// The downstream FHIR server: what it saw, and what it answers per patient MRN before answering 200.
#[derive(Clone, Default)]
struct Server {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<HashMap<String, Vec<Reply>>>>,
}

impl Server {
    fn script(&self, mrn: &str, replies: Vec<Reply>) {
        self.script.lock().unwrap().insert(mrn.into(), replies);
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn statuses(&self) -> Vec<(String, u16)> {
        self.seen().into_iter().map(|s| (s.mrn, s.status)).collect()
    }
}

fn outcome(severity: &str, code: &str, diagnostics: &str, expression: Option<&str>) -> Value {
    let mut issue = json!({"severity": severity, "code": code, "diagnostics": diagnostics});
    if let Some(e) = expression {
        issue["expression"] = json!([e]);
    }
    json!({"resourceType": "OperationOutcome", "issue": [issue]})
}

/// A transaction-response Bundle: one `201 Created` per entry sent.
fn created(bundle: &Value) -> Value {
    let n = bundle["entry"].as_array().map_or(0, Vec::len);
    let entry: Vec<Value> = (0..n).map(|_| json!({"response": {"status": "201 Created"}})).collect();
    json!({"resourceType": "Bundle", "type": "transaction-response", "entry": entry})
}

async fn receive(State(s): State<Server>, headers: HeaderMap, body: Body) -> Response {
    let bundle: Value = serde_json::from_slice(&body).unwrap_or_default();
    let mrn = bundle["entry"][0]["resource"]["identifier"][0]["value"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let reply = {
        let mut script = s.script.lock().unwrap();
        match script.get_mut(&mrn) {
            Some(list) if !list.is_empty() => list.remove(0),
            _ => Reply {
                status: 200,
                body: created(&bundle),
                retry_after: None,
            },
        }
    };
    s.seen.lock().unwrap().push(Seen {
        mrn,
        at: Instant::now(),
        headers,
        bundle,
        status: reply.status,
    });
    let mut resp = (
        StatusCode::from_u16(reply.status).unwrap(),
        [("content-type", "application/fhir+json")],
        reply.body.to_string(),
    )
        .into_response();
    if let Some(ra) = reply.retry_after {
        resp.headers_mut().insert("retry-after", ra.parse().unwrap());
    }
    resp
}

async fn start_server(s: Server) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/fhir", post(receive)).with_state(s);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/fhir")
}

fn identifier(mrn: &str) -> Identifier {
    Identifier {
        system: Some(SYSTEM.into()),
        value: Some(mrn.into()),
        ..Default::default()
    }
}

/// Publishes `kind` (`patient.registered`, `patient.updated`) for the patient `mrn` named `family`.
async fn publish_patient(bb: &SharedBackbone, kind: &str, mrn: &str, family: &str) {
    let source = Source {
        channel: "adt".into(),
        protocol: "hl7v2".into(),
        peer: None,
    };
    let raw = Envelope::ingress(source, "hl7v2.raw", BTreeMap::new(), Bytes::new());
    let patient = json!({
        "resourceType": "Patient",
        "identifier": [identifier(mrn)],
        "name": [{"family": family}],
    });
    let ev = raw.derive_event(kind, json!({ "patient": patient, "sourceMessageType": "ADT^A01" }));
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

/// A destination `emr` running against the test server.
struct Running {
    bb: SharedBackbone,
    cfg: BackboneConfig,
    config: FhirDestinationConfig,
    server: Server,
    shutdown: CancellationToken,
    run: JoinHandle<Result<(), backbone::BackboneError>>,
}

fn dest(url: String) -> FhirDestinationConfig {
    FhirDestinationConfig {
        url,
        timeout: Duration::from_secs(2),
        max_attempts: 5,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..Default::default()
    }
}

async fn start(cfg: BackboneConfig, dir: &std::path::Path, tune: impl FnOnce(&mut FhirDestinationConfig)) -> Running {
    let bb = backbone::connect(&cfg, dir).await.unwrap();
    let server = Server::default();
    let mut config = dest(start_server(server.clone()).await);
    tune(&mut config);
    let (shutdown, run) = run_destination(&bb, &cfg, &config);
    Running {
        bb,
        cfg,
        config,
        server,
        shutdown,
        run,
    }
}

fn run_destination(
    bb: &SharedBackbone,
    cfg: &BackboneConfig,
    config: &FhirDestinationConfig,
) -> (CancellationToken, JoinHandle<Result<(), backbone::BackboneError>>) {
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(destination::run(FhirDestinationContext {
        name: "emr".into(),
        config: config.clone(),
        backbone: bb.clone(),
        backbone_config: cfg.clone(),
        shutdown: shutdown.clone(),
    }));
    (shutdown, run)
}

impl Running {
    /// Shuts the destination down and starts it again on the same backbone and server.
    async fn restart(mut self) -> Running {
        self.shutdown.cancel();
        self.run.await.unwrap().unwrap();
        (self.shutdown, self.run) = run_destination(&self.bb, &self.cfg, &self.config);
        self
    }

    /// Everything on `filter` that arrives within `wait` once `n` are there,
    /// read (and acked, so none comes twice) by a new consumer `name`: (subject, headers, payload).
    async fn collect(&self, name: &str, filter: &str, n: usize, wait: Duration) -> Vec<(String, Headers, Bytes)> {
        let mut c = open_consumer(&self.bb, ConsumerSpec::new(name, filter, &self.cfg))
            .await
            .unwrap();
        let mut out = Vec::new();
        let start = Instant::now();
        while out.len() < n && start.elapsed() < Duration::from_secs(20) {
            for d in c.fetch(10, Duration::from_millis(200)).await.unwrap() {
                out.push((d.subject.clone(), d.headers.clone(), d.payload.clone()));
                d.ack().await.unwrap();
            }
        }
        // Anything more that shows up within `wait` would be a stray repeat.
        for d in c.fetch(10, wait).await.unwrap() {
            out.push((d.subject.clone(), d.headers.clone(), d.payload.clone()));
            d.ack().await.unwrap();
        }
        out
    }

    async fn dead_letters(&self, n: usize) -> Vec<(String, String)> {
        let dead = self.collect("ops", "medbus.dlq.>", n, Duration::from_millis(500)).await;
        dead.into_iter()
            .map(|(subject, headers, _)| {
                let reason = headers.get(dead_letter::header::REASON).cloned().unwrap_or_default();
                (subject, reason)
            })
            .collect()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.run.await.unwrap().unwrap();
        self.bb.close().await.unwrap();
    }
}

/// (1) A patient event becomes a transaction Bundle of conditional updates; a
/// resend (a later event about the same patient) uses the same URL and id.
async fn bundle_of_conditional_updates(cfg: BackboneConfig, dir: &std::path::Path) {
    let r = start(cfg, dir, |c| c.bearer_token = Secret::new(TOKEN)).await;
    publish_patient(&r.bb, "patient.registered", "M1", "Doe").await;
    publish_patient(&r.bb, "patient.updated", "M1", "Doe-Smith").await;
    wait_for("both events pushed", || r.server.seen().len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = r.server.seen();
    assert_eq!(seen.len(), 2, "each event pushed once: {:?}", r.server.statuses());
    let url = conditional_url("Patient", &identifier("M1")).unwrap();
    assert_eq!(url, format!("Patient?identifier={SYSTEM}|M1"));
    for s in &seen {
        let h = |k: &str| s.headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert_eq!(h("content-type"), "application/fhir+json");
        assert_eq!(h("accept"), "application/fhir+json");
        assert_eq!(h("authorization"), format!("Bearer {TOKEN}"));
        let b = &s.bundle;
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(b["type"], "transaction");
        let entries = b["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "a patient event is one Patient: {b}");
        let e = &entries[0];
        assert_eq!(e["resource"]["resourceType"], "Patient");
        assert_eq!(e["resource"]["identifier"][0]["system"], SYSTEM);
        assert_eq!(e["resource"]["identifier"][0]["value"], "M1");
        assert_eq!(e["request"]["method"], "PUT");
        assert_eq!(e["request"]["url"], url.as_str());
    }
    let id = |s: &Seen| s.bundle["entry"][0]["resource"]["id"].clone();
    assert!(id(&seen[0]).is_string());
    assert_eq!(id(&seen[0]), id(&seen[1]), "the resend updates the same resource");
    assert_eq!(
        seen[0].bundle["entry"][0]["fullUrl"],
        seen[1].bundle["entry"][0]["fullUrl"]
    );
    assert_eq!(seen[0].bundle["entry"][0]["resource"]["name"][0]["family"], "Doe");
    assert_eq!(
        seen[1].bundle["entry"][0]["resource"]["name"][0]["family"], "Doe-Smith",
        "in order"
    );
    assert!(r.dead_letters(0).await.is_empty());
    r.stop().await;
}

/// (2) 503 twice, then 200: delivered once after three attempts; Retry-After
/// is honoured up to max_backoff; the outage is reported and its end too.
async fn retried_then_delivered_once(cfg: BackboneConfig, dir: &std::path::Path) {
    let r = start(cfg, dir, |c| c.max_backoff = Duration::from_millis(400)).await;
    r.server.script(
        "M2",
        vec![
            // Asks for an hour: waited only max_backoff.
            Reply {
                retry_after: Some("3600"),
                ..Reply::status(503)
            },
            Reply::status(503),
        ],
    );
    publish_patient(&r.bb, "patient.registered", "M2", "Roe").await;
    publish_patient(&r.bb, "patient.registered", "M2b", "After").await;
    wait_for("M2b pushed", || r.server.seen().iter().any(|s| s.mrn == "M2b")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        r.server.statuses(),
        [
            ("M2".to_string(), 503),
            ("M2".to_string(), 503),
            ("M2".to_string(), 200),
            ("M2b".to_string(), 200)
        ],
        "three attempts, delivered once, and the next event only after it"
    );
    let seen = r.server.seen();
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_millis(350),
        "Retry-After waited (backoff alone is 20ms): {gap:?}"
    );
    assert!(gap < Duration::from_secs(3), "but at most max_backoff: {gap:?}");
    assert_eq!(seen[0].bundle, seen[2].bundle, "a retry sends the same Bundle");
    assert!(r.dead_letters(0).await.is_empty());
    let status = r
        .collect("watch", "medbus.events.system.>", 2, Duration::from_millis(200))
        .await;
    let kinds: Vec<(String, Value)> = status
        .iter()
        .map(|(subject, _, payload)| (subject.clone(), serde_json::from_slice(payload).unwrap()))
        .collect();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert_eq!(
        kinds[0].0,
        SystemEventKind::DestinationUnreachable.subject().to_string()
    );
    assert_eq!(kinds[1].0, SystemEventKind::DestinationRecovered.subject().to_string());
    assert_eq!(kinds[0].1["destination"], "emr");
    assert_eq!(kinds[0].1["protocol"], "fhir");
    assert!(kinds[0].1["reason"].as_str().unwrap_or("").contains("503"), "{kinds:?}");
    r.stop().await;
}

/// (3) 422 with an OperationOutcome: dead-lettered at once, the reason keeping
/// the status and the outcome; a 200 whose Bundle entry failed likewise; the
/// next event is delivered.
async fn refused_dead_lettered_at_once(cfg: BackboneConfig, dir: &std::path::Path) {
    let r = start(cfg, dir, |_| {}).await;
    r.server.script(
        "M3",
        vec![Reply {
            status: 422,
            body: outcome(
                "error",
                "invalid",
                "Patient.birthDate: 1980-13-01 is not a valid date",
                Some("Patient.birthDate"),
            ),
            retry_after: None,
        }],
    );
    r.server.script(
        "M3b",
        vec![Reply {
            status: 200,
            body: json!({"resourceType": "Bundle", "type": "transaction-response", "entry": [
                {"response": {"status": "412 Precondition Failed",
                              "outcome": outcome("error", "conflict", "2 Patients match the identifier", None)}}
            ]}),
            retry_after: None,
        }],
    );
    publish_patient(&r.bb, "patient.registered", "M3", "Bad").await;
    publish_patient(&r.bb, "patient.registered", "M3b", "Ambiguous").await;
    publish_patient(&r.bb, "patient.registered", "M3c", "Fine").await;
    wait_for("M3c pushed", || r.server.seen().iter().any(|s| s.mrn == "M3c")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        r.server.statuses(),
        [
            ("M3".to_string(), 422),
            ("M3b".to_string(), 200),
            ("M3c".to_string(), 200)
        ],
        "refusals are not retried"
    );
    let dead = r.dead_letters(2).await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead.iter().all(|(s, _)| s == "medbus.dlq.fhir_emr"), "{dead:?}");
    let reason = &dead[0].1;
    for part in [
        "422",
        "OperationOutcome: error invalid",
        "Patient.birthDate: 1980-13-01 is not a valid date",
        "at Patient.birthDate",
    ] {
        assert!(reason.contains(part), "{part:?} in {reason}");
    }
    let reason = &dead[1].1;
    for part in ["412", "2 Patients match the identifier"] {
        assert!(reason.contains(part), "{part:?} in {reason}");
    }
    r.stop().await;
}

/// (4) A server that always answers 500: dead-lettered after max_attempts.
async fn always_failing_dead_lettered_after_max_attempts(cfg: BackboneConfig, dir: &std::path::Path) {
    let r = start(cfg, dir, |c| c.max_attempts = 3).await;
    r.server.script("M4", vec![Reply::status(500); 10]);
    publish_patient(&r.bb, "patient.registered", "M4", "Down").await;
    publish_patient(&r.bb, "patient.registered", "M4b", "Next").await;
    wait_for("M4b pushed", || r.server.seen().iter().any(|s| s.mrn == "M4b")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let attempts = r.server.statuses().iter().filter(|(m, _)| m == "M4").count();
    assert_eq!(attempts, 3, "{:?}", r.server.statuses());
    let dead = r.dead_letters(1).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let reason = &dead[0].1;
    for part in ["after 3 attempts", "500", "try again later"] {
        assert!(reason.contains(part), "{part:?} in {reason}");
    }
    r.stop().await;
}

/// (5) Only events matching the patterns are pushed; system events never are;
/// the skipped ones are acked (nothing left on the consumer).
async fn patterns_select_events(cfg: BackboneConfig, dir: &std::path::Path) {
    let r = start(cfg, dir, |c| {
        // System events match the second pattern, yet are no canonical event: skipped.
        c.events = vec![
            "medbus.events.patient.registered".into(),
            "medbus.events.system.>".into(),
        ];
    })
    .await;
    publish_patient(&r.bb, "patient.updated", "M5a", "Skipped").await;
    let status = DestinationStatusEvent {
        destination: "other".into(),
        protocol: "hl7v2".into(),
        addr: "10.0.0.1:6661".into(),
        since: chrono::Utc::now(),
        reason: Some("connection refused".into()),
        recovered_at: None,
    };
    r.bb.publish(status.to_outgoing(SystemEventKind::DestinationUnreachable).unwrap())
        .await
        .unwrap();
    publish_patient(&r.bb, "patient.registered", "M5b", "Pushed").await;
    publish_patient(&r.bb, "patient.updated", "M5c", "Skipped").await;
    wait_for("M5b pushed", || !r.server.seen().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(r.server.statuses(), [("M5b".to_string(), 200)]);
    assert!(r.dead_letters(0).await.is_empty(), "skipped, not dead-lettered");
    let Running {
        bb, cfg, shutdown, run, ..
    } = r;
    shutdown.cancel();
    run.await.unwrap().unwrap();
    // The same durable consumer has nothing left: every skipped event was acked.
    let mut again = open_consumer(&bb, ConsumerSpec::new("fhir_emr", "medbus.events.>", &cfg))
        .await
        .unwrap();
    let left = again.fetch(10, Duration::from_millis(800)).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    bb.close().await.unwrap();
}

/// (6) Shutdowns while the server keeps failing, more of them than
/// `max_deliver`, never dead-letter the event in hand (each is recorded as
/// given back): it is delivered once the server answers.
async fn restarts_never_dead_letter(cfg: BackboneConfig, dir: &std::path::Path) {
    let cfg = BackboneConfig { max_deliver: 2, ..cfg };
    let mut r = start(cfg, dir, |c| c.max_attempts = 1000).await;
    r.server.script("M9", vec![Reply::status(503); 30]);
    publish_patient(&r.bb, "patient.registered", "M9", "Restart").await;
    for _ in 0..r.cfg.max_deliver + 2 {
        let before = r.server.seen().len();
        wait_for("an attempt by this run", || r.server.seen().len() > before).await;
        r = r.restart().await;
    }
    wait_for("M9 delivered", || {
        r.server.statuses().contains(&("M9".to_string(), 200))
    })
    .await;
    assert!(r.dead_letters(0).await.is_empty());
    r.stop().await;
}

fn fast(url: String) -> BackboneConfig {
    BackboneConfig {
        url,
        ack_wait: Duration::from_millis(300),
        ..Default::default()
    }
}

macro_rules! on_both_backbones {
    ($scenario:ident, $embedded:ident, $jetstream:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $embedded() {
            let dir = tempfile::tempdir().unwrap();
            $scenario(fast("embedded".into()), dir.path()).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $jetstream() {
            let Some(nats) = medbus_testkit::NatsServer::start() else {
                return;
            };
            let dir = tempfile::tempdir().unwrap();
            $scenario(fast(nats.url()), dir.path()).await;
        }
    };
}

on_both_backbones!(
    bundle_of_conditional_updates,
    embedded_patient_event_is_a_bundle_of_conditional_updates,
    jetstream_patient_event_is_a_bundle_of_conditional_updates
);
on_both_backbones!(
    restarts_never_dead_letter,
    embedded_restarts_while_the_server_fails_never_dead_letter,
    jetstream_restarts_while_the_server_fails_never_dead_letter
);
on_both_backbones!(
    retried_then_delivered_once,
    embedded_503_twice_then_delivered_once,
    jetstream_503_twice_then_delivered_once
);
on_both_backbones!(
    refused_dead_lettered_at_once,
    embedded_422_dead_lettered_at_once_with_the_outcome,
    jetstream_422_dead_lettered_at_once_with_the_outcome
);
on_both_backbones!(
    always_failing_dead_lettered_after_max_attempts,
    embedded_always_500_dead_lettered_after_max_attempts,
    jetstream_always_500_dead_lettered_after_max_attempts
);
on_both_backbones!(
    patterns_select_events,
    embedded_unmatched_and_system_events_are_skipped,
    jetstream_unmatched_and_system_events_are_skipped
);
