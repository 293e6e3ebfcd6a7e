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
use medbus_routes::hl7_router::{self, RouterContext};
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
    let oru =
        b"MSH|^~\\&|LAB|HOSP|MEDBUS|HOSP|2024||ORU^R01|L1|P|2.5\rPID|1||MRN2^^^HOSP^MR\rOBX|1|NM|2345-7^GLU^LN||5.5\r"
            .to_vec();
    let no_pid = b"MSH|^~\\&|REG|HOSP|MEDBUS|HOSP|2024||ADT^A01|B1|P|2.5\rEVN|A01\r".to_vec();
    let codes = send(r.mllp, &[oru, no_pid, b"garbage".to_vec()]).await;
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
