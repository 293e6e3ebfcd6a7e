//! Downstream subscriptions through the real binary, on the embedded default
//! and on NATS JetStream + PostgreSQL:
//! an ADT sent over MLLP reaches an SSE client of `/api/v1/events` as a
//! `patient.registered` event and a configured webhook subscription with a
//! valid signature, and a configured FHIR destination as a Patient in a
//! transaction Bundle, each within 2 s of the send; a client that disconnects and comes back
//! with `Last-Event-ID` gets the next event and nothing again; a bad subject
//! or position is a 400 naming the problem; open streams end at SIGTERM and
//! medbus exits 0.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use support::Medbus;

const SECRET: &str = "sse-test-secret";

/// One parsed SSE event: (id, event, data).
type SseEvent = (String, String, serde_json::Value);

/// An open SSE response and what has been read of it.
struct EventStream {
    resp: reqwest::Response,
    buf: String,
}

impl EventStream {
    async fn open(http: &str, query: &str, last_id: Option<&str>) -> EventStream {
        let mut req = reqwest::Client::new().get(format!("{http}/api/v1/events{query}"));
        if let Some(id) = last_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.expect("GET /api/v1/events");
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        EventStream {
            resp,
            buf: String::new(),
        }
    }

    /// The next event (comments skipped), or None after `within`.
    async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let until = Instant::now() + within;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().into();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().into();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if !data.is_empty() {
                    return Some((id, event, serde_json::from_str(&data).expect("data is JSON")));
                }
            }
            let left = until.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }
}

fn adt(trigger: &str, id: &str, mrn: &str, family: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|REG|HOSP|MEDBUS|HOSP|20240102101500||ADT^{trigger}^ADT_A01|{id}|P|2.5\r\
         EVN|{trigger}|20240102101500\r\
         PID|1||{mrn}^^^HOSP^MR||{family}^RICHARD||19700101|M\r\
         PV1|1|O|CLINIC^1^1||||||||||||||||V-{mrn}\r"
    )
    .into_bytes()
}

async fn send(port: u16, msg: Vec<u8>, id: &str) {
    let ack = tokio::task::spawn_blocking(move || support::mllp_exchange(("127.0.0.1", port), &msg))
        .await
        .unwrap();
    assert!(ack.contains(&format!("MSA|AA|{id}")), "{ack}");
}

fn mrn_of(data: &serde_json::Value) -> String {
    data["body"]["patient"]["identifier"][0]["value"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The webhook receiver: (kind, MRN, signature valid) per request.
type Seen = Arc<Mutex<Vec<(String, String, bool)>>>;

/// What the in-test downstream FHIR server received: (when, Bundle) per POST.
type FhirSeen = Arc<Mutex<Vec<(Instant, serde_json::Value)>>>;

/// When the webhook receiver got each request, in order.
type HookTimes = Arc<Mutex<Vec<Instant>>>;

/// The downstream FHIR server: records the transaction Bundle and answers
/// a transaction-response with `201 Created` per entry.
async fn fhir_server(
    State(seen): State<FhirSeen>,
    body: axum::body::Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let bundle: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let n = bundle["entry"].as_array().map_or(0, Vec::len);
    seen.lock().unwrap().push((Instant::now(), bundle));
    let entry: Vec<serde_json::Value> = (0..n)
        .map(|_| serde_json::json!({"response": {"status": "201 Created"}}))
        .collect();
    let reply = serde_json::json!({"resourceType": "Bundle", "type": "transaction-response", "entry": entry});
    (
        StatusCode::OK,
        [("content-type", "application/fhir+json")],
        reply.to_string(),
    )
}

/// The Patient entries of the Bundles received: (when, conditional URL, MRN, family).
fn fhir_patients(seen: &FhirSeen) -> Vec<(Instant, String, String, String)> {
    let mut out = Vec::new();
    for (at, bundle) in seen.lock().unwrap().iter() {
        for e in bundle["entry"].as_array().into_iter().flatten() {
            let r = &e["resource"];
            if r["resourceType"] == "Patient" {
                let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
                out.push((
                    *at,
                    text(&e["request"]["url"]),
                    text(&r["identifier"][0]["value"]),
                    text(&r["name"][0]["family"]),
                ));
            }
        }
    }
    out
}

async fn hook(
    State((seen, times)): State<(Seen, HookTimes)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    times.lock().unwrap().push(Instant::now());
    let sig = headers
        .get("Medbus-Signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let valid = medbus_adapters::webhook::sign::verify(SECRET.as_bytes(), &body, sig);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let kind = json["kind"].as_str().unwrap_or("").to_string();
    seen.lock().unwrap().push((kind, mrn_of(&json), valid));
    StatusCode::NO_CONTENT
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_adt_reaches_sse_and_webhook_and_sse_resumes_after_a_disconnect() {
    scenario(Vec::new()).await;
}

/// The same on NATS JetStream + PostgreSQL (skipped with the reason when either is missing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_adt_reaches_sse_and_webhook_and_sse_resumes_after_a_disconnect() {
    let Some(servers) = support::Production::start().await else {
        return;
    };
    scenario(servers.env()).await;
}

async fn scenario(extra_env: Vec<(&'static str, String)>) {
    let dir = tempfile::tempdir().unwrap();
    support::copy_shipped_routes_and_tables(dir.path());
    let seen: Seen = Arc::default();
    let hook_times: HookTimes = Arc::default();
    let fhir_seen: FhirSeen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state((seen.clone(), hook_times.clone()))
        .merge(
            axum::Router::new()
                .route("/fhir", post(fhir_server))
                .with_state(fhir_seen.clone()),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let port = medbus_testkit::free_port();
    let config = dir.path().join("medbus.toml");
    std::fs::write(
        &config,
        format!(
            "[channels.adt]\nlisten = \"127.0.0.1:{port}\"\n[log]\nlevel = \"info\"\n\
             [subscriptions.erp]\nsubject = \"medbus.events.patient.>\"\nurl = \"http://{hook_addr}/hook\"\n\
             [fhir_destinations.emr]\nurl = \"http://{hook_addr}/fhir\"\n"
        ),
    )
    .unwrap();
    let mut env = vec![
        ("MEDBUS_CONFIG", config.display().to_string()),
        ("MEDBUS_SUBSCRIPTIONS_ERP_SECRET", SECRET.to_string()),
    ];
    env.extend(extra_env);
    let start_dir = dir.path().to_path_buf();
    let mut m = tokio::task::spawn_blocking(move || Medbus::start(&start_dir, &env))
        .await
        .unwrap();
    let log = || std::fs::read_to_string(&m.log).unwrap_or_default();

    // Bad requests are refused with the reason.
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/api/v1/events?subject=medbus.ingress.>", m.http))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("medbus.events."));
    let r = client
        .get(format!("{}/api/v1/events", m.http))
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Live: connected before the message is sent.
    let mut events = EventStream::open(&m.http, "?subject=medbus.events.patient.>", None).await;
    let sent = Instant::now();
    send(port, adt("A04", "SSE1", "SSE-100", "ROE"), "SSE1").await;
    let (id, event, data) = events
        .next(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no SSE event; log:\n{}", log()));
    let latency = sent.elapsed();
    assert_eq!(event, "patient.registered");
    assert_eq!(data["kind"], "patient.registered");
    assert_eq!(data["subject"], "medbus.events.patient.registered");
    assert_eq!(mrn_of(&data), "SSE-100");
    assert!(data["id"].is_string() && data["correlationId"].is_string(), "{data}");
    assert!(id.parse::<u64>().is_ok(), "the id is a backbone position: {id:?}");
    assert!(
        latency < Duration::from_secs(2),
        "SSE event after {latency:?} (the issue asks for 2 s)"
    );
    eprintln!("ADT over MLLP to SSE event: {latency:?}");
    // The same ADT at the webhook receiver and, as a Patient, at the downstream FHIR server.
    while (hook_times.lock().unwrap().is_empty() || fhir_patients(&fhir_seen).is_empty())
        && sent.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let hook_at = *hook_times
        .lock()
        .unwrap()
        .first()
        .unwrap_or_else(|| panic!("no webhook request; log:\n{}", log()));
    let fhir = fhir_patients(&fhir_seen);
    let (fhir_at, url, mrn, family) = fhir
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no FHIR Patient; log:\n{}", log()));
    assert_eq!((mrn.as_str(), family.as_str()), ("SSE-100", "ROE"), "{fhir:?}");
    assert!(
        url.starts_with("Patient?identifier="),
        "a conditional update by identifier: {url}"
    );
    let (hook_latency, fhir_latency) = (hook_at - sent, fhir_at - sent);
    assert!(
        hook_latency < Duration::from_secs(2),
        "webhook after {hook_latency:?} (the issue asks for 2 s)"
    );
    assert!(
        fhir_latency < Duration::from_secs(2),
        "FHIR Patient after {fhir_latency:?} (the issue asks for 2 s)"
    );
    eprintln!("ADT over MLLP to webhook: {hook_latency:?}; to the FHIR destination: {fhir_latency:?}");

    // Disconnect; the next event happens while nobody listens.
    drop(events);
    send(port, adt("A08", "SSE2", "SSE-100", "ROEBUCK"), "SSE2").await;
    let mut resumed = EventStream::open(&m.http, "?subject=medbus.events.patient.>", Some(&id)).await;
    let (id2, event2, data2) = resumed
        .next(Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no SSE event after resuming; log:\n{}", log()));
    assert_eq!(event2, "patient.updated", "the next event, not the one already seen");
    assert_eq!(data2["body"]["patient"]["name"][0]["family"], "ROEBUCK");
    assert!(id2.parse::<u64>().unwrap() > id.parse::<u64>().unwrap());
    assert!(
        resumed.next(Duration::from_millis(500)).await.is_none(),
        "nothing else matches"
    );
    // `?after=0` replays everything retained.
    let mut replay = EventStream::open(&m.http, "?subject=medbus.events.patient.>&after=0", None).await;
    assert_eq!(replay.next(Duration::from_secs(5)).await.map(|e| e.0), Some(id.clone()));

    // The webhook subscription got both, signed, in order.
    let start = Instant::now();
    while seen.lock().unwrap().len() < 2 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = seen.lock().unwrap().clone();
    assert_eq!(
        got,
        [
            ("patient.registered".to_string(), "SSE-100".to_string(), true),
            ("patient.updated".to_string(), "SSE-100".to_string(), true)
        ],
        "log:\n{}",
        log()
    );

    // The update reached the FHIR destination too, after the registration
    // (each ADT is a patient and an encounter event, each Bundle carries the Patient).
    let families = || {
        let mut f: Vec<String> = fhir_patients(&fhir_seen).into_iter().map(|p| p.3).collect();
        f.dedup();
        f
    };
    while fhir_patients(&fhir_seen).len() < 4 && sent.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(families(), ["ROE", "ROEBUCK"], "log:\n{}", log());

    // Open event streams do not hold up a graceful shutdown: they end, and medbus exits 0.
    let log_path = m.log.clone();
    let code = tokio::task::spawn_blocking(move || m.terminate(Duration::from_secs(15)))
        .await
        .unwrap();
    assert_eq!(
        code,
        Some(0),
        "SIGTERM with SSE clients connected; log:\n{}",
        std::fs::read_to_string(log_path).unwrap_or_default()
    );
    assert!(resumed.next(Duration::from_secs(2)).await.is_none(), "the stream ended");
    drop(replay);
}
