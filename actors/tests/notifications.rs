//! The notifications service on the embedded backbone and SQLite, with a
//! webhook receiver in the test and a real SMTP server (aiosmtpd): critical
//! results, retries, throttling, escalation, dead letters, destination
//! outages and injected panics.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use medbus_actors::faults::FaultInjector;
use medbus_actors::feed;
use medbus_actors::notifications::{self, NotificationRecord, NotificationsActor, Notifier, Status};
use medbus_actors::system::ActorSystem;
use medbus_bus::backbone::dead_letter::header as dlq;
use medbus_bus::backbone::{self, Outgoing, SharedBackbone};
use medbus_bus::canonical::{DestinationStatusEvent, SystemEventKind};
use medbus_bus::config::notifications::{EmailChannel, NotificationsConfig, Recipient, RuleConfig, WebhookChannel};
use medbus_bus::config::{BackboneConfig, StoreConfig};
use medbus_bus::envelope::{Envelope, Source};
use medbus_bus::store::{self, SharedStore};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

// ---- a webhook receiver ------------------------------------------------------

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    body: Value,
    idempotency_key: Option<String>,
    at: Instant,
    answered: u16,
}

#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Requests (counted over all paths) answered 503 before it starts accepting.
    fail_first: Arc<AtomicUsize>,
}

impl Receiver {
    /// Accepted requests to `path`.
    fn accepted(&self, path: &str) -> Vec<Hit> {
        let hits = self.hits.lock().unwrap();
        hits.iter()
            .filter(|h| h.path == path && h.answered == 200)
            .cloned()
            .collect()
    }

    fn all(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

async fn hook(
    State(r): State<Receiver>,
    Path(path): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    let failing = r
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let answered = if failing { 503 } else { 200 };
    r.hits.lock().unwrap().push(Hit {
        path,
        body,
        idempotency_key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        at: Instant::now(),
        answered,
    });
    StatusCode::from_u16(answered).unwrap()
}

/// A receiver on 127.0.0.1:0 answering POST /<path>; returns its base URL.
async fn receiver(fail_first: usize) -> (String, Receiver) {
    let r = Receiver::default();
    r.fail_first.store(fail_first, Ordering::SeqCst);
    let app = Router::new().route("/{path}", post(hook)).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), r)
}

// ---- configuration -------------------------------------------------------------

fn webhook(url: String) -> WebhookChannel {
    WebhookChannel {
        url,
        max_attempts: 4,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

fn to(channel: &str) -> Recipient {
    Recipient {
        channel: channel.into(),
        address: None,
    }
}

fn rule(on: &str, recipients: &[&str]) -> RuleConfig {
    RuleConfig {
        on: on.into(),
        to: recipients.iter().map(|c| to(c)).collect(),
        ..Default::default()
    }
}

/// Channels `oncall` (→ base/oncall) and `chief` (→ base/chief), and `rules`.
fn config(base: &str, rules: Vec<(&str, RuleConfig)>) -> NotificationsConfig {
    let mut c = NotificationsConfig {
        sweep_every: Duration::from_millis(100),
        ..Default::default()
    };
    c.webhooks.insert("oncall".into(), webhook(format!("{base}/oncall")));
    c.webhooks.insert("chief".into(), webhook(format!("{base}/chief")));
    c.rules = rules.into_iter().map(|(n, r)| (n.to_string(), r)).collect();
    assert_eq!(
        medbus_bus::config::notifications::validate(&c, &BTreeMap::new()),
        vec![],
        "the test config is valid"
    );
    c
}

// ---- the service -----------------------------------------------------------------

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

/// The service on SQLite with its feed and background tasks running; `panics` armed before the feed starts.
async fn rig(ncfg: NotificationsConfig, panics: u32) -> Rig {
    rig_on(&StoreConfig::default(), ncfg, panics).await
}

async fn rig_on(store_cfg: &StoreConfig, ncfg: NotificationsConfig, panics: u32) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BackboneConfig {
        ack_wait: Duration::from_secs(2),
        ..Default::default()
    };
    let backbone = backbone::connect(&cfg, dir.path()).await.unwrap();
    let store = store::connect(store_cfg, dir.path()).await.unwrap();
    let notifier = Notifier::new(store.clone(), ncfg).unwrap();
    let faults = FaultInjector::default();
    faults.inject_panics(panics);
    let system = ActorSystem::start().unwrap();
    let (n, f) = (notifier.clone(), faults.clone());
    let addr = system.supervise(move || NotificationsActor::new(n, f)).await.unwrap();
    let shutdown = CancellationToken::new();
    let (bb, c, stop) = (backbone.clone(), cfg.clone(), shutdown.clone());
    tokio::spawn(async move { feed::run(bb, &c, notifications::feed_spec(), addr, stop).await });
    tokio::spawn(notifications::run_background(
        notifier,
        backbone.clone(),
        cfg,
        shutdown.clone(),
    ));
    Rig {
        backbone,
        store,
        faults,
        shutdown,
        system: Some(system),
        _dir: dir,
    }
}

fn critical_body(mrn: &str, loinc: &str, value: f64) -> Value {
    let ident = |v: &str| json!([{"system": "urn:medbus:authority:LAB", "value": v}]);
    json!({
        "observation": {
            "resourceType": "Observation",
            "identifier": ident(&format!("F-{mrn}/{loinc}")),
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": "Potassium"}]},
            "valueQuantity": {"value": value, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
            "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "HH"}]}]
        },
        "report": {
            "resourceType": "DiagnosticReport",
            "identifier": ident(&format!("F-{mrn}")),
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "24320-4"}]}
        },
        "reason": {"flag": "HH"},
        "patient": {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:medbus:authority:HOSP", "value": mrn}],
            "name": [{"family": "DOE", "given": ["JANE"]}],
            "birthDate": "1970-01-01"
        },
        "sourceMessageType": "ORU^R01"
    })
}

/// Publishes a `result.critical` event, as the results service does; returns it.
async fn publish_critical(bb: &SharedBackbone, mrn: &str, loinc: &str) -> Envelope {
    let source = Source {
        channel: "lab".into(),
        protocol: "hl7v2".into(),
        peer: None,
    };
    let root = Envelope::ingress(source, "hl7v2.raw", Default::default(), bytes::Bytes::new());
    let env = root.derive_event("result.critical", critical_body(mrn, loinc, 6.9));
    republish(bb, &env, "first").await;
    env
}

async fn republish(bb: &SharedBackbone, env: &Envelope, attempt: &str) {
    let out = env
        .to_outgoing("medbus.events.result.critical".into(), format!("{}:{attempt}", env.id))
        .unwrap();
    bb.publish(out).await.unwrap();
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn record(store: &SharedStore, id: &str) -> NotificationRecord {
    let row = store
        .clinical()
        .resource("Communication", id)
        .await
        .unwrap()
        .expect("a stored notification");
    NotificationRecord::from_row(&row).expect("a notification record")
}

/// Every stored notification, each once: one whose status changes between
/// two of the per-status reads below is seen twice, and its later version wins.
async fn records(store: &SharedStore) -> Vec<NotificationRecord> {
    let mut latest: BTreeMap<String, (i64, NotificationRecord)> = BTreeMap::new();
    for s in Status::ALL {
        let rows = store
            .clinical()
            .resources_with_status(
                "Communication",
                s.as_str(),
                chrono::Utc::now() + chrono::Duration::hours(1),
                None,
                1000,
            )
            .await
            .unwrap();
        for row in &rows {
            let Some(rec) = NotificationRecord::from_row(row) else {
                continue;
            };
            if latest.get(&row.key).is_none_or(|(v, _)| *v < row.version) {
                latest.insert(row.key.clone(), (row.version, rec));
            }
        }
    }
    latest.into_values().map(|(_, rec)| rec).collect()
}

// ---- the tests ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_result_reaches_the_webhook_within_two_seconds_with_the_expected_fields() {
    let (base, hooks) = receiver(0).await;
    let r = rig(
        config(&base, vec![("critical", rule("result.critical", &["oncall"]))]),
        0,
    )
    .await;
    // Let the feed bind its consumer, as it has long before any result in production.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let published = Instant::now();
    let env = publish_critical(&r.backbone, "MRN1", "2823-3").await;
    wait_for("the webhook", Duration::from_secs(5), || {
        !hooks.accepted("oncall").is_empty()
    })
    .await;
    let hit = hooks.accepted("oncall").remove(0);
    let latency = hit.at - published;
    assert!(latency < Duration::from_secs(2), "took {latency:?}");
    let b = &hit.body;
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(b["rule"], "critical");
    assert_eq!(b["event"], "result.critical");
    assert_eq!(b["eventId"], env.id.to_string());
    assert_eq!(b["patient"], "urn:medbus:authority:HOSP|MRN1");
    assert_eq!(b["acknowledgeUrl"], format!("/api/v1/notifications/{id}/acknowledge"));
    assert_eq!(b["details"]["code"], "http://loinc.org|2823-3");
    assert_eq!(b["details"]["value"], "6.9 mmol/L");
    let summary = b["summary"].as_str().unwrap();
    assert!(
        summary.contains("Potassium") && summary.contains("6.9") && summary.contains("MRN1"),
        "{summary}"
    );
    let text = b.to_string();
    assert!(
        !text.contains("DOE") && !text.contains("1970"),
        "no name or birth date: {text}"
    );
    assert_eq!(hit.idempotency_key.as_deref(), Some(id.as_str()));

    wait_for_status(&r.store, &id, Status::Sent).await;
    let rec = record(&r.store, &id).await;
    assert_eq!(rec.attempts, 1);
    let row = r
        .store
        .clinical()
        .resource("Communication", &id)
        .await
        .unwrap()
        .unwrap();
    let c = &row.resource;
    assert_eq!(c["resourceType"], "Communication");
    assert_eq!(c["status"], "completed");
    assert_eq!(c["recipient"][0]["display"], "oncall");
    assert_eq!(c["subject"]["identifier"]["value"], "MRN1");
    assert!(c["payload"][0]["contentString"].as_str().unwrap().contains("Potassium"));
    assert!(c["sent"].is_string());

    // The same event again (a redelivery): nothing is recorded or sent twice.
    republish(&r.backbone, &env, "again").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(hooks.all().len(), 1);
    assert_eq!(r.store.clinical().count_resources("Communication").await.unwrap(), 1);
    assert!(!notifications::acknowledge(&*r.store, "not-an-id", "x").await.unwrap());
    assert!(
        !notifications::acknowledge(&*r.store, &uuid::Uuid::now_v7().to_string(), "x")
            .await
            .unwrap()
    );
}

async fn wait_for_status(store: &SharedStore, id: &str, want: Status) {
    let start = Instant::now();
    loop {
        let rec = record(store, id).await;
        if rec.status == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{id} stayed {:?}, wanted {want:?}",
            rec.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_twice_gets_it_once_and_the_attempts_are_recorded() {
    let (base, hooks) = receiver(2).await;
    let r = rig(
        config(&base, vec![("critical", rule("result.critical", &["oncall"]))]),
        0,
    )
    .await;
    publish_critical(&r.backbone, "MRN2", "2823-3").await;
    wait_for("the delivery", Duration::from_secs(10), || {
        !hooks.accepted("oncall").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = hooks.all();
    assert_eq!(
        all.iter().map(|h| h.answered).collect::<Vec<_>>(),
        [503, 503, 200],
        "two failures, then one success, then nothing"
    );
    let id = all[2].body["id"].as_str().unwrap().to_string();
    assert!(
        all.iter().all(|h| h.body["id"] == id.as_str()),
        "the same notification each time"
    );
    assert_eq!(all[2].body["attempt"], 3);
    wait_for_status(&r.store, &id, Status::Sent).await;
    let rec = record(&r.store, &id).await;
    assert_eq!(rec.attempts, 3);
    assert!(rec.last_error.unwrap_or_default().contains("503"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_well_leaves_a_failed_record() {
    let (base, hooks) = receiver(100).await;
    let r = rig(
        config(&base, vec![("critical", rule("result.critical", &["oncall"]))]),
        0,
    )
    .await;
    publish_critical(&r.backbone, "MRN3", "2823-3").await;
    wait_for("every attempt", Duration::from_secs(10), || hooks.all().len() >= 4).await;
    let id = hooks.all()[0].body["id"].as_str().unwrap().to_string();
    wait_for_status(&r.store, &id, Status::Failed).await;
    let row = r
        .store
        .clinical()
        .resource("Communication", &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.resource["status"], "not-done");
    assert_eq!(record(&r.store, &id).await.attempts, 4, "max_attempts, no more");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hooks.all().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_within_the_throttle_window_is_recorded_as_suppressed() {
    let (base, hooks) = receiver(0).await;
    let mut critical = rule("result.critical", &["oncall"]);
    critical.throttle = Some(Duration::from_secs(600));
    let r = rig(config(&base, vec![("critical", critical)]), 0).await;
    let first = publish_critical(&r.backbone, "MRN4", "2823-3").await;
    wait_for("the first", Duration::from_secs(5), || {
        hooks.accepted("oncall").len() == 1
    })
    .await;
    let repeat = publish_critical(&r.backbone, "MRN4", "2823-3").await;
    // Another code, and another patient with the same code: not repeats.
    publish_critical(&r.backbone, "MRN4", "2951-2").await;
    publish_critical(&r.backbone, "MRN5", "2823-3").await;
    wait_for("the other two", Duration::from_secs(5), || {
        hooks.accepted("oncall").len() == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(hooks.all().len(), 3, "the repeat is not sent");
    let recs = records(&r.store).await;
    assert_eq!(recs.len(), 4, "but it is recorded");
    let suppressed: Vec<_> = recs.iter().filter(|x| x.status == Status::Suppressed).collect();
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0].event_id, repeat.id.to_string());
    let sent_first = recs.iter().find(|x| x.event_id == first.id.to_string()).unwrap();
    assert!(
        suppressed[0]
            .status_reason
            .as_deref()
            .unwrap()
            .contains(&sent_first.id.to_string()),
        "names what it repeats"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_fires_when_not_acknowledged_in_time_and_not_when_acknowledged() {
    let (base, hooks) = receiver(0).await;
    let mut critical = rule("result.critical", &["oncall"]);
    critical.escalate_after = Some(Duration::from_millis(1500));
    critical.escalate_to = vec![to("chief")];
    let r = rig(config(&base, vec![("critical", critical)]), 0).await;
    let acked = publish_critical(&r.backbone, "MRN6", "2823-3").await;
    let ignored = publish_critical(&r.backbone, "MRN7", "2823-3").await;
    wait_for("both", Duration::from_secs(5), || hooks.accepted("oncall").len() == 2).await;
    let id_of = |env: &Envelope| {
        hooks
            .accepted("oncall")
            .into_iter()
            .find(|h| h.body["eventId"] == env.id.to_string())
            .map(|h| h.body["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let (acked_id, ignored_id) = (id_of(&acked), id_of(&ignored));
    wait_for_status(&r.store, &acked_id, Status::AwaitingAck).await;
    assert!(notifications::acknowledge(&*r.store, &acked_id, "dr.who")
        .await
        .unwrap());
    wait_for("the escalation", Duration::from_secs(6), || {
        !hooks.accepted("chief").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let chief = hooks.accepted("chief");
    assert_eq!(chief.len(), 1, "one escalation, for the one not acknowledged");
    assert_eq!(chief[0].body["escalationOf"], ignored_id.as_str());
    assert_eq!(chief[0].body["escalation"], true);
    assert!(chief[0].body["summary"].as_str().unwrap().starts_with("ESCALATED"));
    let a = record(&r.store, &acked_id).await;
    assert_eq!(a.status, Status::Acknowledged);
    assert_eq!(a.acknowledged_by.as_deref(), Some("dr.who"));
    assert!(!a.escalated);
    let i = record(&r.store, &ignored_id).await;
    assert_eq!(i.status, Status::Escalated);
    assert!(i.escalated);
    let audit = r.store.audit_for(&acked_id).await.unwrap();
    assert_eq!(audit[0].action, "notification.acknowledge");
    // Acknowledging the escalation acknowledges the original too.
    let esc_id = chief[0].body["id"].as_str().unwrap();
    wait_for_status(&r.store, esc_id, Status::Sent).await;
    assert!(notifications::acknowledge(&*r.store, esc_id, "chief").await.unwrap());
    assert_eq!(record(&r.store, &ignored_id).await.status, Status::Acknowledged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_triggers_a_notification() {
    let (base, hooks) = receiver(0).await;
    let r = rig(
        config(
            &base,
            vec![
                ("dlq", rule("deadletter", &["oncall"])),
                ("router_only", rule("deadletter.router", &["chief"])),
            ],
        ),
        0,
    )
    .await;
    for (stage, seq) in [("router", 7), ("deliver_emr", 9)] {
        let headers = BTreeMap::from([
            (dlq::STAGE.to_string(), stage.to_string()),
            (dlq::REASON.to_string(), "no MSH segment".to_string()),
            (dlq::SUBJECT.to_string(), "medbus.ingress.hl7v2.adt".to_string()),
            (dlq::DELIVERIES.to_string(), "1".to_string()),
        ]);
        let out = Outgoing {
            subject: format!("medbus.dlq.{stage}"),
            dedupe_id: format!("dlq:{stage}:medbus.ingress.hl7v2.adt:{seq}"),
            headers,
            payload: bytes::Bytes::from_static(b"MSH-less garbage"),
        };
        r.backbone.publish(out).await.unwrap();
    }
    wait_for("both dead letters", Duration::from_secs(5), || {
        hooks.accepted("oncall").len() == 2
    })
    .await;
    wait_for("the router one", Duration::from_secs(5), || {
        hooks.accepted("chief").len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let chief = hooks.accepted("chief");
    assert_eq!(chief.len(), 1, "deadletter.router takes the router's only");
    let b = &chief[0].body;
    assert_eq!(b["event"], "deadletter");
    assert_eq!(b["details"]["stage"], "router");
    assert_eq!(b["details"]["reason"], "no MSH segment");
    assert!(b["summary"].as_str().unwrap().contains("router"));
    assert_eq!(records(&r.store).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_down_past_down_for_notifies_once_and_a_short_outage_does_not() {
    let (base, hooks) = receiver(0).await;
    let mut down = rule("destination.down", &["oncall"]);
    down.down_for = Some(Duration::from_millis(1200));
    let r = rig(config(&base, vec![("down", down)]), 0).await;
    let status = |dest: &str, since| DestinationStatusEvent {
        destination: dest.into(),
        protocol: "hl7v2".into(),
        addr: "127.0.0.1:1".into(),
        since,
        reason: Some("cannot connect".into()),
        recovered_at: None,
    };
    let now = chrono::Utc::now();
    for dest in ["his", "lab"] {
        let out = status(dest, now)
            .to_outgoing(SystemEventKind::DestinationUnreachable)
            .unwrap();
        r.backbone.publish(out).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut back = status("lab", now);
    back.recovered_at = Some(chrono::Utc::now());
    r.backbone
        .publish(back.to_outgoing(SystemEventKind::DestinationRecovered).unwrap())
        .await
        .unwrap();
    wait_for("the outage notification", Duration::from_secs(5), || {
        !hooks.accepted("oncall").is_empty()
    })
    .await;
    let since = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = hooks.accepted("oncall");
    assert_eq!(got.len(), 1, "his only, once");
    assert!(since.elapsed() > Duration::from_millis(1000));
    assert_eq!(got[0].body["event"], "destination.down");
    assert_eq!(got[0].body["details"]["destination"], "his");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_panics_restart_the_service_and_nothing_is_sent_twice_or_lost() {
    let (base, hooks) = receiver(0).await;
    let r = rig(
        config(&base, vec![("critical", rule("result.critical", &["oncall", "chief"]))]),
        3,
    )
    .await;
    let mut sent = Vec::new();
    for i in 0..10 {
        sent.push(publish_critical(&r.backbone, &format!("P{i}"), "2823-3").await);
    }
    wait_for("every notification", Duration::from_secs(20), || {
        hooks.all().len() >= 20
    })
    .await;
    assert_eq!(r.faults.pending(), 0, "every injected panic fired");
    // Redeliveries of every event change nothing either.
    for env in &sent {
        republish(&r.backbone, env, "again").await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all = hooks.all();
    assert_eq!(all.len(), 20, "ten events, two recipients, once each");
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for h in &all {
        *per_id.entry(h.body["id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    assert_eq!(per_id.len(), 20);
    for env in &sent {
        let n = all.iter().filter(|h| h.body["eventId"] == env.id.to_string()).count();
        assert_eq!(n, 2, "event {} reached both recipients once", env.id);
    }
    assert_eq!(r.store.clinical().count_resources("Communication").await.unwrap(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_too_sent_once_throttled_acknowledged_and_escalated() {
    let Some(db) = medbus_testkit::PgDatabase::create().await else {
        return;
    };
    let (base, hooks) = receiver(0).await;
    let mut critical = rule("result.critical", &["oncall"]);
    critical.throttle = Some(Duration::from_secs(600));
    critical.escalate_after = Some(Duration::from_millis(1200));
    critical.escalate_to = vec![to("chief")];
    let store_cfg = StoreConfig {
        url: db.url.clone(),
        ..Default::default()
    };
    let r = rig_on(&store_cfg, config(&base, vec![("critical", critical)]), 1).await;
    let acked = publish_critical(&r.backbone, "PG1", "2823-3").await;
    let ignored = publish_critical(&r.backbone, "PG2", "2823-3").await;
    wait_for("both", Duration::from_secs(10), || hooks.accepted("oncall").len() == 2).await;
    let repeat = publish_critical(&r.backbone, "PG1", "2823-3").await;
    republish(&r.backbone, &acked, "again").await;
    let id_of = |env: &Envelope| {
        hooks
            .accepted("oncall")
            .into_iter()
            .find(|h| h.body["eventId"] == env.id.to_string())
            .map(|h| h.body["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let acked_id = id_of(&acked);
    wait_for_status(&r.store, &acked_id, Status::AwaitingAck).await;
    assert!(notifications::acknowledge(&*r.store, &acked_id, "dr.pg").await.unwrap());
    wait_for("the escalation", Duration::from_secs(8), || {
        !hooks.accepted("chief").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(r.faults.pending(), 0);
    assert_eq!(
        hooks.accepted("oncall").len(),
        2,
        "the repeat and the redelivery are not sent"
    );
    let chief = hooks.accepted("chief");
    assert_eq!(chief.len(), 1);
    assert_eq!(chief[0].body["escalationOf"], id_of(&ignored).as_str());
    let recs = records(&r.store).await;
    let suppressed: Vec<_> = recs.iter().filter(|x| x.status == Status::Suppressed).collect();
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0].event_id, repeat.id.to_string());
    assert_eq!(record(&r.store, &acked_id).await.status, Status::Acknowledged);
    assert_eq!(recs.len(), 4, "two sent, one suppressed, one escalation");
}

// ---- e-mail to a real SMTP server ------------------------------------------------

/// `python3 -m aiosmtpd` on a free loopback port, printing what it receives.
struct SmtpServer {
    child: std::process::Child,
    port: u16,
    out: Arc<Mutex<String>>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn aiosmtpd_available() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Starts aiosmtpd, installing it with pip when it is missing; fails loudly when it cannot be had.
async fn smtp_server() -> SmtpServer {
    if !aiosmtpd_available() {
        for extra in [&[][..], &["--break-system-packages"][..]] {
            let _ = std::process::Command::new("python3")
                .args(["-m", "pip", "install", "-q", "aiosmtpd"])
                .args(extra)
                .status();
            if aiosmtpd_available() {
                break;
            }
        }
    }
    assert!(
        aiosmtpd_available(),
        "the e-mail test needs a real SMTP server: `pip install aiosmtpd` failed (scripts/test.sh installs it)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new("python3")
        .args(["-u", "-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 runs");
    let mut stdout = child.stdout.take().unwrap();
    let out = Arc::new(Mutex::new(String::new()));
    let sink = out.clone();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "aiosmtpd did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    SmtpServer { child, port, out }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e_mail_reaches_a_real_smtp_server() {
    let smtp = smtp_server().await;
    let (base, _hooks) = receiver(0).await;
    let mut c = config(&base, vec![]);
    c.ack_base_url = "https://medbus.hospital.example".into();
    c.email.insert(
        "mail".into(),
        EmailChannel {
            smtp: format!("127.0.0.1:{}", smtp.port),
            from: "medbus@hospital.example".into(),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
            ..Default::default()
        },
    );
    let mut critical = rule("result.critical", &[]);
    critical.to = vec![Recipient {
        channel: "mail".into(),
        address: Some("lab-lead@hospital.example".into()),
    }];
    c.rules.insert("critical".into(), critical);
    assert_eq!(
        medbus_bus::config::notifications::validate(&c, &BTreeMap::new()),
        vec![]
    );
    let r = rig(c, 0).await;
    let env = publish_critical(&r.backbone, "MRN9", "2823-3").await;
    let out = smtp.out.clone();
    wait_for("the e-mail", Duration::from_secs(10), || {
        out.lock().unwrap().contains("END MESSAGE")
    })
    .await;
    // As a mail client reads it: headers unfolded, quoted-printable decoded (enough of it).
    let mail = out
        .lock()
        .unwrap()
        .replace("\r\n", "\n")
        .replace("\n ", " ")
        .replace("=\n", "")
        .replace("=3D", "=");
    let recs = records(&r.store).await;
    assert_eq!(recs.len(), 1);
    let id = recs[0].id;
    assert!(mail.contains("Subject: [medbus] Critical result: Potassium"), "{mail}");
    assert!(mail.contains(&format!("Message-ID: <{id}@medbus>")), "{mail}");
    assert!(mail.contains("To: lab-lead@hospital.example"), "{mail}");
    assert!(mail.contains("From: medbus@hospital.example"), "{mail}");
    assert!(
        mail.contains(&format!(
            "https://medbus.hospital.example/api/v1/notifications/{id}/acknowledge"
        )),
        "{mail}"
    );
    assert!(mail.contains(&env.id.to_string()));
    assert!(!mail.contains("DOE"), "no patient name in the e-mail: {mail}");
    wait_for_status(&r.store, &id.to_string(), Status::Sent).await;
    let row = r
        .store
        .clinical()
        .resource("Communication", &id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.resource["recipient"][0]["display"], "lab-lead@hospital.example");
    assert_eq!(mail.matches("END MESSAGE").count(), 1);
}
