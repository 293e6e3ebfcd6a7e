//! The orders, results and billing services on the embedded backbone, with
//! SQLite and with PostgreSQL: events in, resources and follow-up events out,
//! exactly once, through redeliveries and injected panics.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix::Addr;
use medbus_actors::billing::charge_master::ChargeMaster;
use medbus_actors::billing::{self, BillingActor};
use medbus_actors::faults::FaultInjector;
use medbus_actors::feed::{self, Apply, ApplyError, FeedSpec};
use medbus_actors::orders::{self, OrdersActor};
use medbus_actors::results::critical::CriticalLimits;
use medbus_actors::results::{self, ResultsActor};
use medbus_actors::system::ActorSystem;
use medbus_bus::backbone::{self, open_consumer, ConsumerSpec, SharedBackbone};
use medbus_bus::canonical::{CanonicalEvent, CriticalReason, EventKind};
use medbus_bus::config::{BackboneConfig, StoreConfig};
use medbus_bus::envelope::{Body, Envelope, Source};
use medbus_bus::store::clinical::{ClinicalStore, ResourceRow};
use medbus_bus::store::{self, EventRecord, SharedStore};
use medbus_testkit::PgDatabase;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const HOSP: &str = "urn:medbus:authority:HOSP";
const CPOE: &str = "urn:medbus:authority:CPOE";
const LAB: &str = "urn:medbus:authority:LAB";
const LOINC: &str = "http://loinc.org";
const BMP: &str = "51990-0";
const CBC: &str = "58410-2";
const POTASSIUM: &str = "2823-3";
const SODIUM: &str = "2951-2";

struct Rig {
    backbone: SharedBackbone,
    store: SharedStore,
    cfg: BackboneConfig,
    shutdown: CancellationToken,
    system: Option<ActorSystem>,
    _dir: tempfile::TempDir,
    // Last: dropped after the store's pool.
    _db: Option<PgDatabase>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(s) = self.system.take() {
            s.stop();
        }
    }
}

/// The repository's config/tables directory.
fn tables() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/tables")
}

/// The services' surroundings on SQLite.
async fn rig() -> Rig {
    rig_on(StoreConfig::default(), None).await
}

/// The same on a throwaway PostgreSQL database; None (the test skips,
/// saying why) when no server answers, unless the full suite requires one.
async fn pg_rig() -> Option<Rig> {
    let db = PgDatabase::create().await?;
    let cfg = StoreConfig {
        url: db.url.clone(),
        ..Default::default()
    };
    Some(rig_on(cfg, Some(db)).await)
}

async fn rig_on(store_cfg: StoreConfig, db: Option<PgDatabase>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BackboneConfig {
        ack_wait: Duration::from_secs(2),
        ..Default::default()
    };
    let backbone = backbone::connect(&cfg, dir.path()).await.unwrap();
    let store = store::connect(&store_cfg, dir.path()).await.unwrap();
    Rig {
        backbone,
        store,
        cfg,
        shutdown: CancellationToken::new(),
        system: Some(ActorSystem::start().unwrap()),
        _dir: dir,
        _db: db,
    }
}

impl Rig {
    fn clinical(&self) -> &dyn ClinicalStore {
        self.store.clinical()
    }

    fn feed<A: feed::DomainActor>(&self, spec: FeedSpec, addr: Addr<A>) {
        let (bb, cfg, stop) = (self.backbone.clone(), self.cfg.clone(), self.shutdown.clone());
        tokio::spawn(async move { feed::run(bb, &cfg, spec, addr, stop).await });
    }

    fn system(&self) -> &ActorSystem {
        self.system.as_ref().unwrap()
    }

    async fn orders(&self, faults: &FaultInjector) -> Addr<OrdersActor> {
        let (s, f) = (self.store.clone(), faults.clone());
        let addr = self.system().supervise(move || OrdersActor::new(s, f)).await.unwrap();
        self.feed(orders::feed_spec(), addr.clone());
        addr
    }

    async fn results(&self, faults: &FaultInjector) -> Addr<ResultsActor> {
        let limits = CriticalLimits::load(&tables().join("critical_values.csv")).unwrap();
        let (s, b, f) = (self.store.clone(), self.backbone.clone(), faults.clone());
        let addr = self
            .system()
            .supervise(move || ResultsActor::new(s, b, limits, f))
            .await
            .unwrap();
        self.feed(results::feed_spec(), addr.clone());
        addr
    }

    async fn billing(&self, faults: &FaultInjector) -> Addr<BillingActor> {
        let master = ChargeMaster::load(&tables().join("charge_master.csv")).unwrap();
        let (s, b, f) = (self.store.clone(), self.backbone.clone(), faults.clone());
        let addr = self
            .system()
            .supervise(move || BillingActor::new(s, b, master, f))
            .await
            .unwrap();
        self.feed(billing::feed_spec(), addr.clone());
        addr
    }

    /// Publishes one event; returns its envelope (to publish again as a redelivery would).
    async fn publish(&self, kind: &str, body: Value) -> Envelope {
        let source = Source {
            channel: "lab".into(),
            protocol: "hl7v2".into(),
            peer: None,
        };
        let root = Envelope::ingress(source, "hl7v2.raw", Default::default(), bytes::Bytes::new());
        let env = root.derive_event(kind, body);
        self.republish(&env, "first").await;
        env
    }

    async fn republish(&self, env: &Envelope, attempt: &str) {
        let out = env
            .to_outgoing(format!("medbus.events.{}", env.kind), format!("{}:{attempt}", env.id))
            .unwrap();
        self.backbone.publish(out).await.unwrap();
    }

    async fn resource(&self, resource_type: &str, key: &str) -> Option<ResourceRow> {
        self.clinical().resource(resource_type, key).await.unwrap()
    }

    /// Waits until `resource_type` `key` has `status` at `version`, then a
    /// moment more for anything extra to arrive; returns the row as it stands.
    async fn settled(&self, resource_type: &str, key: &str, status: &str, version: i64) -> ResourceRow {
        let mut last = None;
        for _ in 0..300 {
            last = self.resource(resource_type, key).await;
            if last
                .as_ref()
                .is_some_and(|r| r.status == status && r.version >= version)
            {
                tokio::time::sleep(Duration::from_millis(300)).await;
                return self.resource(resource_type, key).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{resource_type} {key}: wanted {status} v{version}, have {last:?}");
    }

    /// Waits until `resource_type` has `n` rows (then a moment more); returns the count.
    async fn count(&self, resource_type: &str, n: u64) -> u64 {
        for _ in 0..300 {
            if self.clinical().count_resources(resource_type).await.unwrap() >= n {
                tokio::time::sleep(Duration::from_millis(300)).await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.clinical().count_resources(resource_type).await.unwrap()
    }

    /// Every envelope published on `kind`'s subject, waiting until at least
    /// `expected` came and then a while more for any extra.
    async fn published(&self, kind: EventKind, expected: usize) -> Vec<Envelope> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("check_{}", N.fetch_add(1, Ordering::SeqCst));
        let spec = ConsumerSpec::new(name, kind.subject().to_string(), &self.cfg);
        let mut c = open_consumer(&self.backbone, spec).await.unwrap();
        let mut got = Vec::new();
        let mut quiet = 0;
        for _ in 0..200 {
            let batch = c.fetch(100, Duration::from_millis(100)).await.unwrap();
            if batch.is_empty() && got.len() >= expected {
                quiet += 1;
                if quiet >= 10 {
                    break;
                }
            }
            for d in batch {
                got.push(Envelope::from_wire(&d.headers, d.payload.clone()).unwrap());
                d.ack().await.unwrap();
            }
        }
        got
    }
}

/// Runs each scenario on SQLite and on PostgreSQL (which skips, saying why,
/// when no server answers, unless `MEDBUS_REQUIRE_SERVICES=1`).
macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(super::rig().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgresql() {
                if let Some(r) = super::pg_rig().await {
                    super::$scenario(r).await
                }
            }
        }
    )*};
}

on_both_stores!(
    orders_and_appointments_are_stored_with_their_status_changes,
    a_result_before_its_order_is_linked_when_the_order_arrives,
    a_corrected_result_replaces_the_preliminary_value,
    critical_values_raise_one_event_each_and_normal_ones_none,
    a_dft_charge_is_posted_and_its_credit_reverses_it,
    a_derived_charge_is_posted_once_whichever_event_comes_first,
    a_cancelled_or_changed_order_reverses_its_charges,
    a_departments_charge_wins_over_a_derived_one,
    orders_survive_injected_panics_with_nothing_lost_or_doubled,
    results_survive_injected_panics_with_nothing_lost_or_doubled,
    billing_survives_injected_panics_with_nothing_lost_or_doubled,
    a_service_publishes_what_its_outbox_kept_when_it_starts,
);

fn patient(mrn: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": HOSP, "value": mrn}],
        "name": [{"family": "DOE", "given": ["Jane"]}]
    })
}

fn subject(mrn: &str) -> Value {
    json!({"type": "Patient", "identifier": {"system": HOSP, "value": mrn}})
}

/// The order `n`: placer `P<n>` (CPOE), filler `F<n>` (LAB).
fn order(n: u32, status: &str, code: &str) -> Value {
    json!({
        "serviceRequest": {
            "resourceType": "ServiceRequest",
            "identifier": [
                {"system": CPOE, "value": format!("P{n}")},
                {"system": LAB, "value": format!("F{n}")}
            ],
            "status": status,
            "intent": "order",
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": subject(&format!("M{n}"))
        },
        "patient": patient(&format!("M{n}"))
    })
}

fn order_key(n: u32) -> String {
    format!("{CPOE}|P{n}")
}

fn based_on(n: u32) -> Value {
    json!([
        {"type": "ServiceRequest", "identifier": {"system": CPOE, "value": format!("P{n}")}},
        {"type": "ServiceRequest", "identifier": {"system": LAB, "value": format!("F{n}")}}
    ])
}

/// An observation of order `n`: `code` = `value` `unit`, optionally flagged.
fn obs(n: u32, code: &str, value: f64, unit: &str, flag: Option<&str>, status: &str) -> Value {
    let mut o = json!({
        "resourceType": "Observation",
        "identifier": [{"system": LAB, "value": format!("F{n}/{code}")}],
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    });
    if let Some(f) = flag {
        o["interpretation"] = json!([{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
            "code": f
        }]}]);
    }
    o
}

fn observation_key(n: u32, code: &str) -> String {
    format!("{LAB}|F{n}/{code}")
}

/// A report of order `n` with `observations`.
fn result(n: u32, status: &str, code: &str, observations: Vec<Value>) -> Value {
    json!({
        "report": {
            "resourceType": "DiagnosticReport",
            "identifier": [{"system": LAB, "value": format!("F{n}")}],
            "basedOn": based_on(n),
            "status": status,
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": subject(&format!("M{n}"))
        },
        "observations": observations,
        "patient": patient(&format!("M{n}"))
    })
}

/// A DFT charge `T<n>-<line>` for order `n` (by filler number).
fn charge(n: u32, line: u32, status: &str) -> Value {
    json!({
        "chargeItem": {
            "resourceType": "ChargeItem",
            "identifier": [{"system": LAB, "value": format!("T{n}-{line}")}],
            "status": status,
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "36415"}]},
            "subject": subject(&format!("M{n}")),
            "priceOverride": {"value": 12, "currency": "USD"},
            "supportingInformation": [{"type": "ServiceRequest", "identifier": {"system": LAB, "value": format!("F{n}")}}]
        },
        "patient": patient(&format!("M{n}"))
    })
}

fn appointment(id: &str, status: &str) -> Value {
    json!({
        "appointment": {
            "resourceType": "Appointment",
            "identifier": [{"system": "urn:medbus:authority:SCHED", "value": id}],
            "status": status,
            "participant": [{"actor": subject("M1"), "status": "accepted"}]
        },
        "patient": patient("M1")
    })
}

fn derived_key(n: u32, code: &str) -> String {
    format!("derived|{}|{code}", order_key(n))
}

/// An event as the feed hands it to a service.
fn apply_of(kind: &str, body: Value) -> Apply {
    let kind = EventKind::parse(kind).unwrap();
    let event = CanonicalEvent::from_json(kind, body.clone()).unwrap();
    let id = uuid::Uuid::now_v7();
    let record = EventRecord {
        id,
        correlation_id: id,
        causation_id: None,
        kind: kind.as_str().to_string(),
        subject: kind.subject().to_string(),
        patient_id: event.patient_key(),
        body,
        occurred_at: chrono::Utc::now(),
    };
    Apply { event, record }
}

fn json_body(env: &Envelope) -> &Value {
    match &env.body {
        Body::Json { value } => value,
        other => panic!("not JSON: {other:?}"),
    }
}

async fn orders_and_appointments_are_stored_with_their_status_changes(r: Rig) {
    let addr = r.orders(&FaultInjector::default()).await;
    let mut sent = Vec::new();
    for (kind, status) in [
        ("order.placed", "active"),
        ("order.updated", "on-hold"),
        ("order.completed", "completed"),
    ] {
        sent.push(r.publish(kind, order(1, status, BMP)).await);
    }
    sent.push(r.publish("appointment.booked", appointment("A1", "booked")).await);
    sent.push(r.publish("appointment.cancelled", appointment("A1", "cancelled")).await);
    let sr = r.settled("ServiceRequest", &order_key(1), "completed", 3).await;
    assert_eq!(sr.version, 3, "placed, updated, completed: three upserts, in order");
    assert_eq!(sr.patient_key.as_deref(), Some("urn:medbus:authority:HOSP|M1"));
    assert_eq!(sr.resource["code"]["coding"][0]["code"], BMP);
    let by_filler = r
        .clinical()
        .find_by_identifier("ServiceRequest", &format!("{LAB}|F1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_filler.key, order_key(1), "found by its filler number too");
    let appt = r
        .settled("Appointment", "urn:medbus:authority:SCHED|A1", "cancelled", 2)
        .await;
    assert_eq!(appt.version, 2);

    // Redeliveries change nothing.
    for env in &sent {
        r.republish(env, "again").await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(r.resource("ServiceRequest", &order_key(1)).await.unwrap().version, 3);
    assert_eq!(r.count("ServiceRequest", 1).await, 1);
    for env in &sent {
        assert_eq!(r.store.events_for(env.correlation_id).await.unwrap().len(), 1);
    }

    // An order without a number cannot be stored: bad input, for the dead-letter stream.
    let mut keyless = order(2, "active", BMP);
    keyless["serviceRequest"]["identifier"] = json!([{"system": CPOE}]);
    let answer = addr.send(apply_of("order.placed", keyless)).await.unwrap();
    assert!(matches!(answer, Err(ApplyError::BadInput(_))), "{answer:?}");
}

async fn a_result_before_its_order_is_linked_when_the_order_arrives(r: Rig) {
    let faults = FaultInjector::default();
    r.results(&faults).await;
    let observations = vec![obs(1, POTASSIUM, 4.1, "mmol/L", None, "final")];
    r.publish("result.reported", result(1, "final", BMP, observations))
        .await;
    let ob = r
        .settled("Observation", &observation_key(1, POTASSIUM), "final", 1)
        .await;
    assert_eq!(ob.order_key, None, "no order yet");
    assert!(r
        .clinical()
        .resources_of_order("Observation", &order_key(1))
        .await
        .unwrap()
        .is_empty());

    r.orders(&faults).await;
    r.publish("order.placed", order(1, "active", BMP)).await;
    r.settled("ServiceRequest", &order_key(1), "active", 1).await;
    for t in ["Observation", "DiagnosticReport"] {
        let linked = r.clinical().resources_of_order(t, &order_key(1)).await.unwrap();
        assert_eq!(linked.len(), 1, "{t} linked to the order that came later");
        assert_eq!(linked[0].order_key.as_deref(), Some(order_key(1).as_str()));
    }
}

async fn a_corrected_result_replaces_the_preliminary_value(r: Rig) {
    r.results(&FaultInjector::default()).await;
    let prelim = vec![
        obs(1, POTASSIUM, 4.0, "mmol/L", None, "preliminary"),
        obs(1, SODIUM, 140.0, "mmol/L", None, "preliminary"),
    ];
    r.publish("result.reported", result(1, "preliminary", BMP, prelim))
        .await;
    r.settled("Observation", &observation_key(1, POTASSIUM), "preliminary", 1)
        .await;
    let corrected = vec![
        obs(1, POTASSIUM, 4.4, "mmol/L", None, "corrected"),
        obs(1, SODIUM, 140.0, "mmol/L", None, "final"),
    ];
    r.publish("result.corrected", result(1, "corrected", BMP, corrected))
        .await;
    let k = r
        .settled("Observation", &observation_key(1, POTASSIUM), "corrected", 2)
        .await;
    assert_eq!(k.version, 2);
    assert_eq!(
        k.resource["valueQuantity"]["value"],
        json!(4.4),
        "the corrected value replaced it"
    );
    assert_eq!(
        r.count("Observation", 2).await,
        2,
        "one row per observation, not per report"
    );
    let report = r.resource("DiagnosticReport", &format!("{LAB}|F1")).await.unwrap();
    assert_eq!((report.status.as_str(), report.version), ("corrected", 2));
}

async fn critical_values_raise_one_event_each_and_normal_ones_none(r: Rig) {
    r.results(&FaultInjector::default()).await;
    // Order 1: potassium flagged HH by the sender (and over the threshold too: one event).
    let flagged = vec![
        obs(1, POTASSIUM, 6.9, "mmol/L", Some("HH"), "final"),
        obs(1, SODIUM, 141.0, "mmol/L", None, "final"),
    ];
    let first = r.publish("result.reported", result(1, "final", BMP, flagged)).await;
    // Order 2: potassium over the threshold without a flag; sodium normal.
    let unflagged = vec![
        obs(2, POTASSIUM, 7.2, "mmol/L", None, "final"),
        obs(2, SODIUM, 139.0, "mmol/L", None, "final"),
    ];
    let second = r.publish("result.reported", result(2, "final", BMP, unflagged)).await;
    // Order 3: all normal; and a high potassium in another unit is not compared.
    let normal = vec![
        obs(3, POTASSIUM, 4.2, "mmol/L", None, "final"),
        obs(3, SODIUM, 7.2, "mEq/dL", None, "final"),
    ];
    let third = r.publish("result.reported", result(3, "final", BMP, normal)).await;
    r.count("Observation", 6).await;
    // Every event again, as a redelivery would bring it.
    for env in [&first, &second, &third] {
        r.republish(env, "again").await;
    }
    let critical = r.published(EventKind::ResultCritical, 2).await;
    assert_eq!(
        critical.len(),
        2,
        "one result.critical per critical value, none for normal ones"
    );
    for (cause, reason) in [
        (&first, CriticalReason::Flag("HH".into())),
        (
            &second,
            CriticalReason::Threshold {
                low: medbus_bus::canonical::Decimal::parse("2.5"),
                high: medbus_bus::canonical::Decimal::parse("6.5"),
            },
        ),
    ] {
        let e = critical
            .iter()
            .find(|e| e.causation_id == Some(cause.id))
            .expect("a critical event caused by the result");
        assert_eq!(e.correlation_id, cause.correlation_id);
        assert_eq!(e.kind, "result.critical");
        // The wire carries microseconds.
        assert_eq!(e.occurred_at.timestamp_micros(), cause.occurred_at.timestamp_micros());
        let body = CanonicalEvent::from_json(EventKind::ResultCritical, json_body(e).clone()).unwrap();
        let CanonicalEvent::ResultCritical(c) = body else {
            panic!("not a critical result");
        };
        assert_eq!(c.reason, reason);
        assert_eq!(c.observation.code.coding[0].code.as_deref(), Some(POTASSIUM));
        // In the event log, with the result that raised it.
        let logged = r.store.events_for(cause.correlation_id).await.unwrap();
        assert_eq!(logged.len(), 2, "the result and its critical event");
    }
    assert!(
        r.clinical().pending_outbox("results", 10).await.unwrap().is_empty(),
        "everything published"
    );
}

async fn a_dft_charge_is_posted_and_its_credit_reverses_it(r: Rig) {
    let faults = FaultInjector::default();
    r.billing(&faults).await;
    r.orders(&faults).await;
    r.publish("order.placed", order(1, "active", BMP)).await;
    r.publish("billing.charge-posted", charge(1, 1, "billable")).await;
    let key = format!("{LAB}|T1-1");
    let row = r.settled("ChargeItem", &key, "billable", 1).await;
    assert_eq!(row.resource["priceOverride"]["value"], json!(12));
    r.settled("ServiceRequest", &order_key(1), "active", 1).await;
    let linked = r
        .clinical()
        .resources_of_order("ChargeItem", &order_key(1))
        .await
        .unwrap();
    assert_eq!(linked.len(), 1, "linked to its order by filler number");
    r.publish("billing.charge-reversed", charge(1, 1, "aborted")).await;
    let row = r.settled("ChargeItem", &key, "aborted", 2).await;
    assert_eq!(row.version, 2);
    assert!(
        r.published(EventKind::ChargePosted, 1).await.len() == 1,
        "billing raises nothing for a charge that was sent (only the DFT event itself is there)"
    );
}

async fn a_derived_charge_is_posted_once_whichever_event_comes_first(r: Rig) {
    let faults = FaultInjector::default();
    r.billing(&faults).await;
    r.orders(&faults).await;
    let mut sent = Vec::new();
    // Order 1: completed, then its final result.
    sent.push(r.publish("order.placed", order(1, "active", BMP)).await);
    sent.push(r.publish("order.completed", order(1, "completed", BMP)).await);
    sent.push(r.publish("result.reported", result(1, "final", BMP, vec![])).await);
    // Order 2: the final result first (no order stored yet), then completed.
    sent.push(r.publish("result.reported", result(2, "final", BMP, vec![])).await);
    sent.push(r.publish("order.completed", order(2, "completed", BMP)).await);
    // Order 3: a preliminary result is not charged, and a code not in the charge master is not either.
    sent.push(
        r.publish("result.reported", result(3, "preliminary", BMP, vec![]))
            .await,
    );
    sent.push(r.publish("order.completed", order(4, "completed", "1-8")).await);
    for n in [1, 2] {
        let row = r.settled("ChargeItem", &derived_key(n, BMP), "billable", 1).await;
        assert_eq!(row.resource["priceOverride"], json!({"value": 42.5, "currency": "USD"}));
        assert_eq!(row.resource["code"]["coding"][1]["code"], "80048", "with its CPT");
    }
    // Everything redelivered.
    for env in &sent {
        r.republish(env, "again").await;
    }
    let posted = r.published(EventKind::ChargePosted, 2).await;
    assert_eq!(posted.len(), 2, "one charge-posted per order");
    assert_eq!(r.count("ChargeItem", 2).await, 2);
    for n in [1, 2] {
        // The orders service stores the order on its own time; the charge is linked then.
        r.settled("ServiceRequest", &order_key(n), "completed", 1).await;
        let row = r.resource("ChargeItem", &derived_key(n, BMP)).await.unwrap();
        assert_eq!(row.version, 1, "order {n}: posted once");
        assert_eq!(row.order_key.as_deref(), Some(order_key(n).as_str()));
        assert!(posted
            .iter()
            .any(|e| json_body(e)["chargeItem"]["identifier"][0]["value"] == json!(format!("{}|{BMP}", order_key(n)))));
    }
}

async fn a_cancelled_or_changed_order_reverses_its_charges(r: Rig) {
    let faults = FaultInjector::default();
    r.billing(&faults).await;
    r.orders(&faults).await;
    // Order 1: a DFT charge and a derived one, then cancelled.
    r.publish("order.placed", order(1, "active", BMP)).await;
    r.publish("billing.charge-posted", charge(1, 1, "billable")).await;
    r.publish("order.completed", order(1, "completed", BMP)).await;
    // Order 2: derived under BMP, then the order is changed to a CBC.
    r.publish("order.completed", order(2, "completed", BMP)).await;
    r.settled("ChargeItem", &derived_key(1, BMP), "billable", 1).await;
    r.settled("ChargeItem", &derived_key(2, BMP), "billable", 1).await;
    r.settled("ChargeItem", &format!("{LAB}|T1-1"), "billable", 1).await;
    // The DFT charge names the order by filler number: linked once the orders service stored it.
    r.settled("ServiceRequest", &order_key(1), "completed", 2).await;
    // An update that keeps the code reverses nothing.
    r.publish("order.updated", order(2, "active", BMP)).await;
    r.settled("ServiceRequest", &order_key(2), "active", 2).await;
    let cancel = r.publish("order.cancelled", order(1, "revoked", BMP)).await;
    let change = r.publish("order.updated", order(2, "active", CBC)).await;
    r.settled("ChargeItem", &derived_key(1, BMP), "aborted", 2).await;
    r.settled("ChargeItem", &format!("{LAB}|T1-1"), "aborted", 2).await;
    r.settled("ChargeItem", &derived_key(2, BMP), "aborted", 2).await;
    r.republish(&cancel, "again").await;
    r.republish(&change, "again").await;
    let reversed = r.published(EventKind::ChargeReversed, 3).await;
    assert_eq!(reversed.len(), 3, "one charge-reversed per reversed charge");
    for e in &reversed {
        assert_eq!(json_body(e)["chargeItem"]["status"], "aborted");
    }
    let from_cancel = reversed.iter().filter(|e| e.causation_id == Some(cancel.id)).count();
    assert_eq!(from_cancel, 2, "the cancel reversed the DFT charge and the derived one");
    for key in [derived_key(1, BMP), derived_key(2, BMP), format!("{LAB}|T1-1")] {
        assert_eq!(r.resource("ChargeItem", &key).await.unwrap().version, 2, "{key}");
    }
}

/// A DFT charge for order `n` billed under the CPT of the basic metabolic panel.
fn bmp_charge(n: u32, line: u32) -> Value {
    let mut c = charge(n, line, "billable");
    c["chargeItem"]["code"]["coding"][0]["code"] = json!("80048");
    c
}

async fn a_departments_charge_wins_over_a_derived_one(r: Rig) {
    let faults = FaultInjector::default();
    r.billing(&faults).await;
    r.orders(&faults).await;
    // Order 1: the lab sent its DFT first; completing the order derives nothing.
    r.publish("order.placed", order(1, "active", BMP)).await;
    r.settled("ServiceRequest", &order_key(1), "active", 1).await;
    r.publish("billing.charge-posted", bmp_charge(1, 1)).await;
    r.settled("ChargeItem", &format!("{LAB}|T1-1"), "billable", 1).await;
    r.publish("order.completed", order(1, "completed", BMP)).await;
    r.settled("ServiceRequest", &order_key(1), "completed", 2).await;
    // Order 2: derived on completion, then the lab's DFT for the same CPT reverses it.
    r.publish("order.placed", order(2, "active", BMP)).await;
    r.publish("order.completed", order(2, "completed", BMP)).await;
    r.settled("ChargeItem", &derived_key(2, BMP), "billable", 1).await;
    r.settled("ServiceRequest", &order_key(2), "completed", 2).await;
    r.publish("billing.charge-posted", bmp_charge(2, 1)).await;
    r.settled("ChargeItem", &derived_key(2, BMP), "aborted", 2).await;
    assert!(
        r.resource("ChargeItem", &derived_key(1, BMP)).await.is_none(),
        "no derived charge for a test the department charged"
    );
    let row = r.resource("ChargeItem", &format!("{LAB}|T2-1")).await.unwrap();
    assert_eq!(row.status, "billable", "the department's charge stands");
    let reversed = r.published(EventKind::ChargeReversed, 1).await;
    assert_eq!(reversed.len(), 1);
}

/// Waits until `resource_type` has `n` rows each at `version`, and checks it.
async fn all_at(r: &Rig, resource_type: &str, n: u64, version: i64) {
    let mut rows = Vec::new();
    for _ in 0..300 {
        rows.clear();
        for i in 0..n as u32 {
            let key = match resource_type {
                "ServiceRequest" => order_key(i),
                "Observation" => observation_key(i, POTASSIUM),
                _ => derived_key(i, BMP),
            };
            rows.extend(r.resource(resource_type, &key).await);
        }
        if rows.len() == n as usize && rows.iter().all(|row| row.version >= version) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(r.clinical().count_resources(resource_type).await.unwrap(), n);
    for i in 0..n as u32 {
        let key = match resource_type {
            "ServiceRequest" => order_key(i),
            "Observation" => observation_key(i, POTASSIUM),
            _ => derived_key(i, BMP),
        };
        let row = r.resource(resource_type, &key).await.unwrap();
        assert_eq!(
            row.version, version,
            "{resource_type} {key}: applied exactly once per event"
        );
    }
}

async fn orders_survive_injected_panics_with_nothing_lost_or_doubled(r: Rig) {
    let faults = FaultInjector::default();
    faults.inject_panics(4);
    r.orders(&faults).await;
    let mut sent = Vec::new();
    for kind in ["order.placed", "order.completed"] {
        for i in 0..15 {
            let status = if kind == "order.placed" { "active" } else { "completed" };
            sent.push(r.publish(kind, order(i, status, BMP)).await);
        }
    }
    all_at(&r, "ServiceRequest", 15, 2).await;
    assert_eq!(faults.pending(), 0, "every injected panic fired");
    for i in 0..15 {
        let row = r.resource("ServiceRequest", &order_key(i)).await.unwrap();
        assert_eq!(row.status, "completed", "order {i}: placed then completed, in order");
    }
    for env in &sent {
        assert_eq!(r.store.events_for(env.correlation_id).await.unwrap().len(), 1);
    }
}

async fn results_survive_injected_panics_with_nothing_lost_or_doubled(r: Rig) {
    let faults = FaultInjector::default();
    faults.inject_panics(4);
    r.results(&faults).await;
    let mut sent = Vec::new();
    for i in 0..15 {
        let observations = vec![obs(i, POTASSIUM, 7.0, "mmol/L", None, "final")];
        sent.push(
            r.publish("result.reported", result(i, "final", BMP, observations))
                .await,
        );
    }
    all_at(&r, "Observation", 15, 1).await;
    assert_eq!(faults.pending(), 0, "every injected panic fired");
    let critical = r.published(EventKind::ResultCritical, 15).await;
    assert_eq!(critical.len(), 15, "one critical event per critical value");
    assert!(r.clinical().pending_outbox("results", 100).await.unwrap().is_empty());
    for env in &sent {
        let logged = r.store.events_for(env.correlation_id).await.unwrap();
        assert_eq!(logged.len(), 2, "the result and its critical event, once each");
    }
}

async fn billing_survives_injected_panics_with_nothing_lost_or_doubled(r: Rig) {
    let faults = FaultInjector::default();
    faults.inject_panics(4);
    r.billing(&faults).await;
    let mut completions = Vec::new();
    let mut results = Vec::new();
    for i in 0..15 {
        completions.push(r.publish("order.completed", order(i, "completed", BMP)).await);
        results.push(r.publish("result.reported", result(i, "final", BMP, vec![])).await);
    }
    all_at(&r, "ChargeItem", 15, 1).await;
    assert_eq!(faults.pending(), 0, "every injected panic fired");
    let posted = r.published(EventKind::ChargePosted, 15).await;
    assert_eq!(posted.len(), 15, "one charge-posted per order");
    assert!(r.clinical().pending_outbox("billing", 100).await.unwrap().is_empty());
    for env in &completions {
        let logged = r.store.events_for(env.correlation_id).await.unwrap();
        assert_eq!(logged.len(), 2, "the completion and the charge it posted, once each");
    }
    for env in &results {
        let logged = r.store.events_for(env.correlation_id).await.unwrap();
        assert_eq!(logged.len(), 1, "the result came second: it posted nothing");
    }
}

async fn a_service_publishes_what_its_outbox_kept_when_it_starts(r: Rig) {
    // A follow-up committed by an earlier run that stopped before publishing it.
    let cause = apply_of("result.reported", result(1, "final", BMP, vec![]));
    let follow_up = EventRecord {
        id: uuid::Uuid::now_v7(),
        correlation_id: cause.record.correlation_id,
        causation_id: Some(cause.record.id),
        kind: "result.critical".into(),
        subject: EventKind::ResultCritical.subject().to_string(),
        patient_id: cause.record.patient_id.clone(),
        body: json!({"left": "over"}),
        occurred_at: cause.record.occurred_at,
    };
    let change = medbus_bus::store::clinical::ClinicalChange::Emit(follow_up.clone());
    let applied = r
        .clinical()
        .apply_clinical("results", &[(cause.record.clone(), vec![change])])
        .await
        .unwrap();
    assert_eq!(applied, [true]);
    assert_eq!(r.clinical().pending_outbox("results", 10).await.unwrap().len(), 1);
    r.results(&FaultInjector::default()).await;
    let out = r.published(EventKind::ResultCritical, 1).await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].id, follow_up.id, "published under its own id");
    assert_eq!(out[0].causation_id, Some(cause.record.id));
    for _ in 0..100 {
        if r.clinical().pending_outbox("results", 10).await.unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the outbox entry was not marked published");
}

#[test]
fn the_repository_tables_load() {
    let limits = CriticalLimits::load(&tables().join("critical_values.csv")).unwrap();
    assert!(limits.limit(LOINC, POTASSIUM).is_some());
    for code in [SODIUM, "2345-7", "718-7"] {
        assert!(limits.limit(LOINC, code).is_some(), "{code}");
    }
    let master = ChargeMaster::load(&tables().join("charge_master.csv")).unwrap();
    for code in [BMP, CBC, "57698-3", "10839-9", "4548-4", "3016-3", "6301-6"] {
        assert!(master.get(code).is_some(), "the simulator orders {code}");
    }
}
