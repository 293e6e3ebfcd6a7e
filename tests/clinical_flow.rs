//! The clinical flow end to end through the real binary on NATS + PostgreSQL:
//! orders, results and charges over MLLP, through the shipped routes and the
//! orders, results, billing and notifications services.
//!
//! - an order, then its (critical, preliminary) result, its correction, its
//!   completion and a DFT → a ServiceRequest with its DiagnosticReport,
//!   Observations and charges linked to it; the correction replaces the value;
//! - a result that arrives before its order is linked when the order arrives;
//! - a cancelled order reverses the charge derived from it;
//! - the critical potassium reaches a webhook receiver in the test within 2 s
//!   of the ACK of its message.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use medbus_bus::store::{self, ResourceRow, SharedStore};
use support::{eventually, Medbus};

const LOINC_PANEL: &str = "51990-0^Basic metabolic panel - Blood^LN";

fn msh(kind: &str, id: &str, app: &str) -> String {
    format!("MSH|^~\\&|{app}|HOSP|MEDBUS|HOSP|20240315083000||{kind}|{id}|P|2.5.1")
}

fn pid(mrn: &str) -> String {
    format!("PID|1||{mrn}^^^HOSP^MR||DOE^JANE||19800412|F")
}

fn frame(segments: &[String]) -> Vec<u8> {
    segments.iter().flat_map(|s| format!("{s}\r").into_bytes()).collect()
}

/// ORM^O01 with order control `control` and order status `status` for placer `pl` / filler `fl`.
fn orm(id: &str, mrn: &str, control: &str, status: &str, pl: &str, fl: &str) -> Vec<u8> {
    frame(&[
        msh("ORM^O01^ORM_O01", id, "CPOE"),
        pid(mrn),
        format!("ORC|{control}|{pl}^CPOE|{fl}^LAB||{status}||||20240315082500"),
        format!("OBR|1|{pl}^CPOE|{fl}^LAB|{LOINC_PANEL}|||20240315082000"),
    ])
}

/// ORU^R01 with one potassium value, report status `status` (P, F, C).
fn oru(id: &str, mrn: &str, pl: &str, fl: &str, status: &str, value: &str, flag: &str) -> Vec<u8> {
    frame(&[
        msh("ORU^R01^ORU_R01", id, "LIS"),
        pid(mrn),
        format!("OBR|1|{pl}^CPOE|{fl}^LAB|{LOINC_PANEL}|||20240315082000|||||||||||||||20240315090000|||{status}"),
        format!("OBX|1|NM|2823-3^Potassium^LN||{value}|mmol/L^^UCUM|3.5-5.1|{flag}|||{status}"),
    ])
}

fn dft(id: &str, mrn: &str, fl: &str) -> Vec<u8> {
    frame(&[
        msh("DFT^P03^DFT_P03", id, "LAB"),
        "EVN|P03|20240315120000".to_string(),
        pid(mrn),
        format!("FT1|1|T{id}||20240315082000|20240315120000|CG|LAB36415^ROUTINE VENIPUNCTURE^99CDM|||1|12.00&USD|12.00&USD|LAB||||||||||{fl}^LAB"),
    ])
}

/// What the webhook receiver got: (when, body).
type Received = Arc<Mutex<Vec<(Instant, serde_json::Value)>>>;

async fn webhook_receiver() -> (SocketAddr, Received) {
    let got: Received = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: axum::Json<serde_json::Value>| {
            let sink = sink.clone();
            async move {
                if let Ok(mut g) = sink.lock() {
                    g.push((Instant::now(), body.0));
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, got)
}

async fn send(port: u16, msg: Vec<u8>) -> Instant {
    let answer = tokio::task::spawn_blocking(move || support::mllp_exchange(("127.0.0.1", port), &msg))
        .await
        .unwrap();
    assert!(answer.contains("MSA|AA"), "{answer}");
    Instant::now()
}

async fn by_identifier(store: &SharedStore, kind: &str, token: &str) -> Option<ResourceRow> {
    store.clinical().find_by_identifier(kind, token).await.unwrap()
}

const ORDER_A: &str = "urn:medbus:authority:CPOE|PLA1";
const ORDER_B: &str = "urn:medbus:authority:CPOE|PLB1";
const ORDER_C: &str = "urn:medbus:authority:CPOE|PLC1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_results_charges_and_a_critical_value_flow_through_every_service() {
    let Some(servers) = support::Production::start().await else {
        return;
    };
    let (hook, received) = webhook_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let port = medbus_testkit::free_port();
    // The shipped routes and tables, beside the test's config file (their paths are relative to it).
    support::copy_shipped_routes_and_tables(dir.path());
    let config = dir.path().join("medbus.toml");
    std::fs::write(
        &config,
        format!(
            "[channels.adt]\nlisten = \"127.0.0.1:{port}\"\n\
             [log]\nlevel = \"info\"\n\
             [services.results]\ncritical_values = \"tables/critical_values.csv\"\n\
             [services.billing]\ncharge_master = \"tables/charge_master.csv\"\n\
             [notifications.webhooks.oncall]\nurl = \"http://{hook}/hook\"\n\
             [notifications.rules.critical]\non = \"result.critical\"\nto = [{{ channel = \"oncall\" }}]\n",
        ),
    )
    .unwrap();
    let mut env = servers.env();
    env.push(("MEDBUS_CONFIG", config.display().to_string()));
    let start_dir = dir.path().to_path_buf();
    let m = tokio::task::spawn_blocking(move || Medbus::start(&start_dir, &env))
        .await
        .unwrap();
    let store = store::connect(&servers.store_config(), &dir.path().join("data"))
        .await
        .unwrap();

    // A: order, critical preliminary result, correction, completion, DFT.
    send(port, orm("A1", "MRNA", "NW", "", "PLA1", "FLA1")).await;
    let acked = send(port, oru("A2", "MRNA", "PLA1", "FLA1", "P", "6.9", "HH")).await;
    let critical = eventually("the critical potassium at the webhook", || {
        let received = received.clone();
        async move { received.lock().ok().and_then(|g| g.first().cloned()) }
    })
    .await;
    let latency = critical.0.duration_since(acked);
    println!("critical result at the webhook {latency:?} after the ACK");
    assert!(latency < Duration::from_secs(2), "critical result took {latency:?}");
    // The clinician acknowledges it (the link in the notification); an unknown id is 404.
    let link = critical.1["acknowledgeUrl"].as_str().unwrap_or_default().to_string();
    assert!(link.starts_with("/api/v1/notifications/"), "{link}");
    let client = reqwest::Client::new();
    let ack = client
        .post(format!("{}{link}?by=dr-welby", m.http))
        .send()
        .await
        .unwrap();
    assert_eq!(ack.status().as_u16(), 200);
    let unknown = client
        .post(format!("{}/api/v1/notifications/no-such-id/acknowledge", m.http))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let report = eventually("the preliminary report", || {
        by_identifier(&store, "DiagnosticReport", "urn:medbus:authority:LAB|FLA1")
    })
    .await;
    assert_eq!(report.order_key.as_deref(), Some(ORDER_A), "result linked to its order");
    send(port, oru("A3", "MRNA", "PLA1", "FLA1", "C", "4.2", "N")).await;
    send(port, orm("A4", "MRNA", "SC", "CM", "PLA1", "FLA1")).await;
    send(port, dft("A5", "MRNA", "FLA1")).await;

    // B: the result first, then its order.
    send(port, oru("B1", "MRNB", "PLB1", "FLB1", "F", "4.0", "N")).await;
    let early = eventually("B's report", || {
        by_identifier(&store, "DiagnosticReport", "urn:medbus:authority:LAB|FLB1")
    })
    .await;
    assert_eq!(early.order_key, None, "no order yet");
    send(port, orm("B2", "MRNB", "NW", "", "PLB1", "FLB1")).await;

    // C: completed (a derived charge), then cancelled (reversed).
    send(port, orm("C1", "MRNC", "NW", "", "PLC1", "FLC1")).await;
    send(port, orm("C2", "MRNC", "SC", "CM", "PLC1", "FLC1")).await;
    eventually("C's derived charge", || async {
        let charges = store
            .clinical()
            .resources_of_order("ChargeItem", ORDER_C)
            .await
            .unwrap();
        (!charges.is_empty()).then_some(())
    })
    .await;
    send(port, orm("C3", "MRNC", "CA", "CA", "PLC1", "FLC1")).await;

    // A's rows.
    let order_a = eventually("A completed", || async {
        by_identifier(&store, "ServiceRequest", ORDER_A)
            .await
            .filter(|o| o.status == "completed")
    })
    .await;
    assert_eq!(order_a.key, ORDER_A);
    let report = eventually("A's corrected report", || async {
        by_identifier(&store, "DiagnosticReport", "urn:medbus:authority:LAB|FLA1")
            .await
            .filter(|r| r.status == "corrected")
    })
    .await;
    assert_eq!(report.order_key.as_deref(), Some(ORDER_A));
    let observations = store
        .clinical()
        .resources_of_order("Observation", ORDER_A)
        .await
        .unwrap();
    assert_eq!(
        observations.len(),
        1,
        "the correction replaced the value: {observations:?}"
    );
    let potassium = &observations[0];
    assert_eq!(potassium.version, 2);
    assert_eq!(potassium.status, "corrected");
    assert_eq!(potassium.resource["valueQuantity"]["value"], serde_json::json!(4.2));
    let charges_a = eventually("A's charges (derived and DFT)", || async {
        let c = store
            .clinical()
            .resources_of_order("ChargeItem", ORDER_A)
            .await
            .unwrap();
        (c.len() >= 2).then_some(c)
    })
    .await;
    assert_eq!(charges_a.len(), 2, "one derived, one from the DFT: {charges_a:?}");
    assert!(charges_a.iter().all(|c| c.status == "billable"));

    // B's report linked once its order arrived.
    let late = eventually("B linked", || async {
        by_identifier(&store, "DiagnosticReport", "urn:medbus:authority:LAB|FLB1")
            .await
            .filter(|r| r.order_key.is_some())
    })
    .await;
    assert_eq!(late.order_key.as_deref(), Some(ORDER_B));

    // C's charge reversed.
    let reversed = eventually("C's charge reversed", || async {
        let c = store
            .clinical()
            .resources_of_order("ChargeItem", ORDER_C)
            .await
            .unwrap();
        (c.len() == 1 && c[0].status == "aborted").then_some(c)
    })
    .await;
    assert_eq!(reversed.len(), 1);

    // One critical value, one notification (the correction is normal).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let notes = received.lock().map(|g| g.len()).unwrap_or(0);
    assert_eq!(notes, 1, "one notification for one critical value");
    drop(m);
}
