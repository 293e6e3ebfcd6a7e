//! The HL7 router end to end on the embedded backbone and SQLite store:
//! MLLP in, canonical events out, every message recorded with its outcome.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use medbus_adapters::hl7::listener::{Hl7Listener, ListenerContext};
use medbus_adapters::hl7::mllp_codec::{MllpCodec, MllpItem};
use medbus_bus::backbone::{self, open_consumer, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::config::{BackboneConfig, ChannelConfig, StoreConfig};
use medbus_bus::envelope::{header, Envelope};
use medbus_bus::store::{self, MessageFilter, MessageStatus, SharedStore};
use medbus_routes::config::Routes;
use medbus_routes::hl7_router::{self, RouterContext};
use medbus_routes::live::LiveRoutes;
use medbus_routes::reload::Reloader;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

struct Rig {
    router: RouterContext,
    mllp: std::net::SocketAddr,
    backbone: SharedBackbone,
    store: SharedStore,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let r = rig_without_router().await;
    tokio::spawn(hl7_router::run(r.router.clone()));
    r
}

/// A router running `routes`.
async fn rig_with(routes: Routes) -> Rig {
    let r = rig_without_router().await;
    r.router.routes.replace(routes);
    tokio::spawn(hl7_router::run(r.router.clone()));
    r
}

/// Listener only: messages pile up on the backbone until the test starts the router.
async fn rig_without_router() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BackboneConfig {
        ack_wait: Duration::from_secs(2),
        max_deliver: 2,
        ..Default::default()
    };
    let backbone = backbone::connect(&cfg, dir.path()).await.unwrap();
    let store = store::connect(&StoreConfig::default(), dir.path()).await.unwrap();
    let shutdown = CancellationToken::new();
    let listener = Hl7Listener::bind(ListenerContext {
        channel: "adt".into(),
        config: ChannelConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        },
        backbone: backbone.clone(),
        shutdown: shutdown.clone(),
    })
    .await
    .unwrap();
    let mllp = listener.local_addr().unwrap();
    tokio::spawn(listener.run());
    let router = RouterContext {
        backbone: backbone.clone(),
        store: store.clone(),
        backbone_config: cfg,
        application_acks: Default::default(),
        routes: LiveRoutes::new(Routes::default()),
        shutdown: shutdown.clone(),
    };
    Rig {
        router,
        mllp,
        backbone,
        store,
        shutdown,
        _dir: dir,
    }
}

async fn send(addr: std::net::SocketAddr, msgs: &[Vec<u8>]) -> Vec<String> {
    let mut c = Framed::new(TcpStream::connect(addr).await.unwrap(), MllpCodec::new());
    let mut codes = Vec::new();
    for m in msgs {
        c.send(Bytes::from(m.clone())).await.unwrap();
        loop {
            match c.next().await {
                Some(Ok(MllpItem::Frame(f))) => {
                    let text = String::from_utf8_lossy(&f).into_owned();
                    let msa = text
                        .split('\r')
                        .find(|s| s.starts_with("MSA"))
                        .unwrap_or_default()
                        .to_string();
                    codes.push(msa.split('|').nth(1).unwrap_or_default().to_string());
                    break;
                }
                Some(Ok(MllpItem::Junk { .. })) => continue,
                other => panic!("no ACK: {other:?}"),
            }
        }
    }
    codes
}

async fn events(bb: &SharedBackbone, name: &str, want: usize) -> Vec<Delivery> {
    let mut c = open_consumer(
        bb,
        ConsumerSpec::new(name, "medbus.events.>", &BackboneConfig::default()),
    )
    .await
    .unwrap();
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        all.extend(c.fetch(100, Duration::from_millis(300)).await.unwrap());
        if all.len() > want {
            break;
        }
        if all.len() == want {
            // Make sure nothing more arrives.
            all.extend(c.fetch(100, Duration::from_millis(500)).await.unwrap());
            break;
        }
    }
    all
}

async fn status_of(store: &SharedStore, control_id: &str) -> Option<(MessageStatus, Option<String>)> {
    for _ in 0..100 {
        if let Some(m) = store.find_message("adt", control_id).await.unwrap() {
            if m.status != MessageStatus::Received {
                return Some((m.status, m.error));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

fn a01(id: &str, mrn: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|REG|HOSP|MEDBUS|HOSP|20240102101500||ADT^A01^ADT_A01|{id}|P|2.5\rEVN|A01|20240102101500\r\
         PID|1||{mrn}^^^HOSP^MR||DOE^JANE||19800402|F\rPV1|1|I|W1^101^A{}V{id}\r",
        "|".repeat(16) // PV1-4 … PV1-18 empty; the visit number is PV1-19
    )
    .into_bytes()
}

#[tokio::test]
async fn admission_becomes_patient_and_encounter_events_once() {
    let r = rig().await;
    let codes = send(r.mllp, &[a01("C1", "MRN1"), a01("C1", "MRN1")]).await;
    assert_eq!(codes, ["AA", "AA"]);
    let got = events(&r.backbone, "watch1", 2).await;
    if got.is_empty() {
        panic!("no events; message status: {:?}", status_of(&r.store, "C1").await);
    }
    let kinds: Vec<_> = got.iter().map(|d| d.subject.as_str()).collect();
    assert_eq!(
        kinds,
        ["medbus.events.patient.registered", "medbus.events.encounter.started"],
        "a resend adds nothing"
    );
    let env = Envelope::from_wire(&got[0].headers, got[0].payload.clone()).unwrap();
    let ingress = r.store.find_message("adt", "C1").await.unwrap().unwrap();
    assert_eq!(
        env.correlation_id, ingress.message.id,
        "events carry the ingress correlation id"
    );
    assert_eq!(
        got[0].headers.get(header::KIND).map(String::as_str),
        Some("patient.registered")
    );
    let body: serde_json::Value = serde_json::from_slice(&got[0].payload).unwrap();
    assert_eq!(body["patient"]["name"][0]["family"], "DOE");
    assert_eq!(status_of(&r.store, "C1").await, Some((MessageStatus::Processed, None)));
    assert_eq!(
        ingress.message.patient_id.as_deref(),
        Some("urn:medbus:authority:HOSP|MRN1")
    );
    r.shutdown.cancel();
}

#[tokio::test]
async fn every_outcome_is_recorded() {
    let r = rig().await;
    // A document message: no canonical mapping, so without routes it is filtered.
    let mdm = b"MSH|^~\\&|DOC|HOSP|MEDBUS|HOSP|2024||MDM^T02|L1|P|2.5\rPID|1||MRN2^^^HOSP^MR\r".to_vec();
    let no_pid = b"MSH|^~\\&|REG|HOSP|MEDBUS|HOSP|2024||ADT^A01|B1|P|2.5\rEVN|A01\r".to_vec();
    let codes = send(r.mllp, &[mdm, no_pid, b"garbage".to_vec()]).await;
    assert_eq!(codes, ["AA", "AA", "AR"]);
    assert_eq!(
        status_of(&r.store, "L1").await.map(|s| s.0),
        Some(MessageStatus::Filtered)
    );
    let (status, error) = status_of(&r.store, "B1").await.unwrap();
    assert_eq!(status, MessageStatus::DeadLettered);
    assert!(
        error.unwrap_or_default().contains("PID"),
        "the reason names the missing segment"
    );
    let rejected = r
        .store
        .list_messages(&MessageFilter {
            status: Some(MessageStatus::Rejected),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rejected.len(), 1, "the garbage is kept, as rejected");
    let mut dlq = open_consumer(
        &r.backbone,
        ConsumerSpec::new("dlqwatch", "medbus.dlq.>", &BackboneConfig::default()),
    )
    .await
    .unwrap();
    let dead = dlq.fetch(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].subject, "medbus.dlq.router_hl7v2");
    assert!(
        events(&r.backbone, "watch2", 0).await.is_empty(),
        "no events from any of them"
    );
    r.shutdown.cancel();
}

fn adt(trigger: &str, id: &str, mrn: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|REG|HOSP|MEDBUS|HOSP|20240102101500||ADT^{trigger}^ADT_A01|{id}|P|2.5\rEVN|{trigger}|20240102101500\r\
         PID|1||{mrn}^^^HOSP^MR||DOE^JANE||19800402|F\rPV1|1|I|W1^101^A{}V{mrn}\r",
        "|".repeat(16)
    )
    .into_bytes()
}

#[tokio::test]
async fn events_about_one_patient_keep_the_order_of_their_messages() {
    let r = rig_without_router().await;
    // Interleaved admissions, updates and discharges of 12 patients, sent on one connection.
    let mut msgs = Vec::new();
    for round in ["A01", "A08", "A03"] {
        for p in 0..12 {
            msgs.push(adt(round, &format!("{round}-{p}"), &format!("P{p}")));
        }
    }
    let codes = send(r.mllp, &msgs).await;
    assert!(codes.iter().all(|c| c == "AA"), "{codes:?}");
    // All 36 wait on the backbone, so the router takes them in one batch, across its lanes.
    tokio::spawn(hl7_router::run(r.router.clone()));
    // A01 → 2 events, A08 with a visit → 2, A03 → 1.
    let got = events(&r.backbone, "order", 12 * 5).await;
    assert_eq!(got.len(), 60);
    let mut per_patient: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for d in &got {
        let body: serde_json::Value = serde_json::from_slice(&d.payload).unwrap();
        let mrn = body["patient"]["identifier"][0]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        per_patient
            .entry(mrn)
            .or_default()
            .push(d.subject.trim_start_matches("medbus.events.").to_string());
    }
    assert_eq!(per_patient.len(), 12);
    for (mrn, kinds) in per_patient {
        assert_eq!(
            kinds,
            [
                "patient.registered",
                "encounter.started",
                "patient.updated",
                "encounter.updated",
                "encounter.finished"
            ],
            "patient {mrn}"
        );
    }
    r.shutdown.cancel();
}

/// Two ingress copies of one channel + control id under different ids, as a
/// resend after the backbone's dedupe window would arrive.
async fn publish_twice(bb: &SharedBackbone, control_id: &str, mrn: &str) {
    for n in 0..2 {
        let source = medbus_bus::envelope::Source {
            channel: "adt".into(),
            protocol: "hl7v2".into(),
            peer: None,
        };
        let headers = std::collections::BTreeMap::from([(
            medbus_adapters::hl7::listener::raw_header::CONTROL_ID.to_string(),
            control_id.to_string(),
        )]);
        let env = Envelope::ingress(source, "hl7v2.raw", headers, Bytes::from(a01(control_id, mrn)));
        let out = env
            .to_outgoing("medbus.ingress.hl7v2.adt".into(), format!("late:{control_id}:{n}"))
            .unwrap();
        bb.publish(out).await.unwrap();
    }
}

#[tokio::test]
async fn a_late_resend_is_recorded_once_in_a_batch_and_one_by_one() {
    let r = rig_without_router().await;
    let mut c = open_consumer(
        &r.backbone,
        ConsumerSpec::new("manual", "medbus.ingress.hl7v2.>", &BackboneConfig::default()),
    )
    .await
    .unwrap();
    // Both copies in one batch: the batch insert sees the second as a duplicate of the first.
    publish_twice(&r.backbone, "LATE1", "MRN7").await;
    let batch = c.fetch(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(batch.len(), 2);
    hl7_router::route_batch(&r.router, batch).await;
    // One by one (the fallback path): the same answer.
    publish_twice(&r.backbone, "LATE2", "MRN8").await;
    let mut outcomes = Vec::new();
    for d in c.fetch(10, Duration::from_secs(2)).await.unwrap() {
        outcomes.push(hl7_router::route(&r.router, d).await);
    }
    assert_eq!(outcomes, [hl7_router::Outcome::Routed(2), hl7_router::Outcome::Resend]);
    let got = events(&r.backbone, "late", 4).await;
    assert_eq!(got.len(), 4, "two events per admission, none for the resends");
    let kept = r.store.list_messages(&MessageFilter::default()).await.unwrap();
    assert_eq!(kept.len(), 2, "one stored message per control id");
    assert!(kept.iter().all(|m| m.status == MessageStatus::Processed), "{kept:?}");
    r.shutdown.cancel();
}

/// Route files written to a temporary config directory (`routes/*.toml`).
struct RouteFiles {
    dir: tempfile::TempDir,
}

impl RouteFiles {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("routes")).unwrap();
        let r = RouteFiles { dir };
        for (name, text) in files {
            r.write(name, text);
        }
        r
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join("routes").join(name), text).unwrap();
    }

    fn reloader(&self, live: std::sync::Arc<LiveRoutes>) -> Reloader {
        let mut config = medbus_bus::config::Config::default();
        config
            .destinations
            .insert("his".into(), medbus_bus::config::DestinationConfig::default());
        config.channels.insert("adt".into(), ChannelConfig::default());
        Reloader {
            live,
            config,
            config_dir: self.dir.path().to_path_buf(),
        }
    }
}

const ORU: &str = "MSH|^~\\&|LIS|HOSP|EMR|HOSP|20240315083000||ORU^R01|R1|P|2.5.1\r\
PID|1||MRN5^^^HOSP^MR||DOE^JANE||19800412|F\r\
OBR|1|PL1^CPOE|FL1^LAB|2823-3^Potassium^LN|||20240315082000|||||||||||||||20240315083000|||F\r\
OBX|1|NM|2823-3^Potassium^LN||7.1|mmol/L|3.5-5.1|HH|||F\r";

fn services_of(events: &[Delivery]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = events
        .iter()
        .map(|d| {
            let kind = d.headers.get(header::KIND).cloned().unwrap_or_default();
            let services = d.headers.get(header::SERVICES).cloned().unwrap_or_default();
            (kind, services)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn routes_select_change_and_fan_out_to_services_and_destinations() {
    let files = RouteFiles::new(&[
        (
            "lab.toml",
            r#"
[routes.lab]
channels = ["*"]
when = { type = "ORU^R01" }
to = { services = ["results"] }
[[routes.lab.transform]]
set = "MSH-5"
value = "MEDBUS"

[routes.critical]
channels = ["*"]
when = { type = "ORU^R01", field = "OBX-8", in = ["HH", "LL"] }
to = { services = ["notifications"] }
"#,
        ),
        (
            "adt.toml",
            r#"
[routes.adt]
channels = ["adt"]
when = { type = "ADT^A01" }
to = { services = ["registration"], destinations = ["his"] }

[routes.adt-billing]
channels = ["adt"]
when = { type = "ADT^A01" }
to = { services = ["billing"] }
"#,
        ),
    ]);
    let live = LiveRoutes::new(Routes::default());
    files.reloader(live.clone()).reload().unwrap();
    let r = rig_with((*live.snapshot()).clone()).await;
    let mdm = b"MSH|^~\\&|DOC|HOSP|MEDBUS|HOSP|2024||MDM^T02|D1|P|2.5\rPID|1||MRN9^^^HOSP^MR\r".to_vec();
    let codes = send(r.mllp, &[ORU.as_bytes().to_vec(), a01("A1", "MRN6"), mdm]).await;
    assert_eq!(codes, ["AA", "AA", "AA"]);
    let (status, why) = status_of(&r.store, "D1").await.unwrap();
    assert_eq!(status, MessageStatus::Filtered);
    assert!(why.unwrap_or_default().contains("no route takes"));
    assert_eq!(
        status_of(&r.store, "R1").await.map(|s| s.0),
        Some(MessageStatus::Processed)
    );
    let got = events(&r.backbone, "fanout", 5).await;
    let tagged = services_of(&got);
    // Same bytes (adt, adt-billing) share one set of events; different changes (lab, critical) make their own.
    assert!(tagged.iter().any(|(k, s)| k == "result.reported" && s == "results"));
    assert!(tagged
        .iter()
        .any(|(k, s)| k == "result.reported" && s == "notifications"));
    assert_eq!(tagged.iter().filter(|(k, _)| k.starts_with("result.")).count(), 2);
    assert!(tagged
        .iter()
        .filter(|(k, _)| !k.starts_with("result."))
        .all(|(_, s)| s == "registration,billing"));
    assert!(tagged.len() >= 3, "the A01 made events: {tagged:?}");
    let mut egress = open_consumer(
        &r.backbone,
        ConsumerSpec::new("his_watch", "medbus.egress.hl7v2.his", &BackboneConfig::default()),
    )
    .await
    .unwrap();
    let out = egress.fetch(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(out.len(), 1, "the ADT goes to the destination once");
    let env = Envelope::from_wire(&out[0].headers, out[0].payload.clone()).unwrap();
    let medbus_bus::envelope::Body::Raw { bytes, .. } = env.body else {
        panic!("raw body expected")
    };
    assert!(
        bytes.starts_with(b"MSH|^~\\&|REG|HOSP|MEDBUS"),
        "the message as the route left it"
    );
    r.shutdown.cancel();
}

#[tokio::test]
async fn a_reload_takes_effect_between_messages_and_an_invalid_one_is_refused() {
    let files = RouteFiles::new(&[(
        "adt.toml",
        "[routes.adt]\nchannels = [\"*\"]\nwhen = { type = \"ADT^A01\" }\nto = { services = [\"registration\"] }\n",
    )]);
    let live = LiveRoutes::new(Routes::default());
    let reloader = files.reloader(live.clone());
    reloader.reload().unwrap();
    let r = rig_without_router().await;
    r.router.routes.replace((*live.snapshot()).clone());
    let router_live = r.router.routes.clone();
    tokio::spawn(hl7_router::run(r.router.clone()));
    assert_eq!(send(r.mllp, &[a01("G1", "MRN7")]).await, ["AA"]);
    assert_eq!(
        status_of(&r.store, "G1").await.map(|s| s.0),
        Some(MessageStatus::Processed)
    );

    // A broken version is refused with its line, and the routes in force stay.
    files.write(
        "adt.toml",
        "[routes.adt]\nchannels = [\"*\"]\nto = { services = [\"payroll\"] }\n",
    );
    let watched = Reloader {
        live: router_live.clone(),
        ..reloader.clone()
    };
    let before = router_live.generation();
    let problems = watched.reload().unwrap_err();
    assert!(problems.to_string().contains("adt.toml:3"), "{problems}");
    assert_eq!(router_live.generation(), before);
    assert_eq!(send(r.mllp, &[a01("G2", "MRN7")]).await, ["AA"]);
    assert_eq!(
        status_of(&r.store, "G2").await.map(|s| s.0),
        Some(MessageStatus::Processed)
    );

    // A valid change: ADT now goes to billing only.
    files.write(
        "adt.toml",
        "[routes.adt]\nchannels = [\"*\"]\nwhen = { type = \"ADT^A01\" }\nto = { services = [\"billing\"] }\n",
    );
    watched.reload().unwrap();
    assert_eq!(send(r.mllp, &[a01("G3", "MRN8")]).await, ["AA"]);
    assert_eq!(
        status_of(&r.store, "G3").await.map(|s| s.0),
        Some(MessageStatus::Processed)
    );
    let got = events(&r.backbone, "reloaded", 6).await;
    let by_mrn = |mrn: &str| -> Vec<String> {
        got.iter()
            .filter(|d| String::from_utf8_lossy(&d.payload).contains(mrn))
            .map(|d| d.headers.get(header::SERVICES).cloned().unwrap_or_default())
            .collect()
    };
    assert_eq!(by_mrn("MRN7"), ["registration"; 4], "G1 and G2 under the first routes");
    assert_eq!(by_mrn("MRN8"), ["billing"; 2], "G3 under the reloaded routes");
    r.shutdown.cancel();
}
