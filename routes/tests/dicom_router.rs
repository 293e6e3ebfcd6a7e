//! The DICOM router on the embedded backbone and SQLite store: what the SCP
//! publishes becomes one `imaging.instance-stored` event per instance, once,
//! and a body that is not instance metadata is dead-lettered and kept.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use medbus_adapters::dicom::ingest::{raw_header, KIND};
use medbus_adapters::dicom::InstanceMetadata;
use medbus_bus::backbone::{self, open_consumer, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::config::{BackboneConfig, StoreConfig};
use medbus_bus::envelope::{Body, Envelope, Source};
use medbus_bus::store::{self, MessageFilter, MessageStatus, SharedStore};
use medbus_routes::dicom_router::{self, DicomRouterContext};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

struct Rig {
    backbone: SharedBackbone,
    store: SharedStore,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BackboneConfig {
        ack_wait: Duration::from_secs(2),
        max_deliver: 2,
        ..Default::default()
    };
    let backbone = backbone::connect(&cfg, dir.path()).await.unwrap();
    let store = store::connect(&StoreConfig::default(), dir.path()).await.unwrap();
    let shutdown = CancellationToken::new();
    let ctx = DicomRouterContext {
        backbone: backbone.clone(),
        store: store.clone(),
        backbone_config: cfg,
        patient_id_authorities: Arc::new(BTreeMap::from([("modalities".to_string(), "HOSP".to_string())])),
        shutdown: shutdown.clone(),
    };
    tokio::spawn(dicom_router::serve(ctx));
    Rig {
        backbone,
        store,
        shutdown,
        _dir: dir,
    }
}

fn metadata(sop: &str, patient_id: Option<&str>) -> InstanceMetadata {
    InstanceMetadata {
        patient_id: patient_id.map(str::to_string),
        patient_name: Some("Doe^Jane".into()),
        study_instance_uid: "1.2.3".into(),
        series_instance_uid: "1.2.3.4".into(),
        sop_instance_uid: sop.into(),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        modality: Some("CT".into()),
        accession_number: Some("ACC9".into()),
        study_date: Some("20261201".into()),
        transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
        ..Default::default()
    }
}

/// An ingress envelope as the SCP publishes it for `sop`, with `body`.
fn ingress(sop: &str, body: Vec<u8>) -> Envelope {
    let source = Source {
        channel: "modalities".into(),
        protocol: "dicom".into(),
        peer: None,
    };
    let headers = BTreeMap::from([
        (raw_header::FILE.to_string(), format!("1.2.3/1.2.3.4/{sop}.dcm")),
        (raw_header::FILE_BYTES.to_string(), "2048".to_string()),
        (raw_header::SOP_INSTANCE_UID.to_string(), sop.to_string()),
        (raw_header::STUDY_INSTANCE_UID.to_string(), "1.2.3".to_string()),
        (raw_header::CALLING_AE.to_string(), "CT1".to_string()),
    ]);
    Envelope::ingress(source, KIND, headers, Bytes::from(body))
}

async fn publish(bb: &SharedBackbone, env: &Envelope, dedupe: &str) {
    let out = env
        .to_outgoing("medbus.ingress.dicom.modalities".into(), dedupe.to_string())
        .unwrap();
    bb.publish(out).await.unwrap();
}

/// Every delivery on `subjects` within a few seconds, `want` of them, and then some time to see no more.
async fn collect(bb: &SharedBackbone, name: &str, subjects: &str, want: usize) -> Vec<Delivery> {
    let mut c = open_consumer(bb, ConsumerSpec::new(name, subjects, &BackboneConfig::default()))
        .await
        .unwrap();
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline && all.len() < want {
        all.extend(c.fetch(100, Duration::from_millis(300)).await.unwrap());
    }
    all.extend(c.fetch(100, Duration::from_millis(700)).await.unwrap());
    all
}

fn body(d: &Delivery) -> Value {
    let env = Envelope::from_wire(&d.headers, d.payload.clone()).unwrap();
    match env.body {
        Body::Json { value } => value,
        other => panic!("not a JSON event: {other:?}"),
    }
}

async fn status_of(store: &SharedStore, sop: &str) -> Option<(MessageStatus, Option<String>)> {
    for _ in 0..100 {
        if let Some(m) = store.find_message("modalities", sop).await.unwrap() {
            if m.status != MessageStatus::Received {
                return Some((m.status, m.error));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test]
async fn each_instance_is_one_event_whatever_is_redelivered_or_resent() {
    let r = rig().await;
    let first = ingress(
        "1.2.3.4.1",
        serde_json::to_vec(&metadata("1.2.3.4.1", Some("MRN1"))).unwrap(),
    );
    publish(&r.backbone, &first, "dicom:modalities:1.2.3.4.1").await;
    // The same envelope again under another dedupe id: a redelivery of a message in hand.
    publish(&r.backbone, &first, "redelivered").await;
    // The same instance sent again after the dedupe window: a new envelope, the same SOP UID.
    let resent = ingress(
        "1.2.3.4.1",
        serde_json::to_vec(&metadata("1.2.3.4.1", Some("MRN1"))).unwrap(),
    );
    publish(&r.backbone, &resent, "late-resend").await;
    // No Patient ID: still an event, about a patient known by name only.
    let anonymous = ingress("1.2.3.4.2", serde_json::to_vec(&metadata("1.2.3.4.2", None)).unwrap());
    publish(&r.backbone, &anonymous, "dicom:modalities:1.2.3.4.2").await;

    let got = collect(&r.backbone, "events", "medbus.events.>", 2).await;
    assert_eq!(got.len(), 2, "one event per instance");
    assert!(got.iter().all(|d| d.subject == "medbus.events.imaging.instance-stored"));
    let named = body(&got[0]);
    assert_eq!(named["patient"]["identifier"][0]["system"], "urn:medbus:authority:HOSP");
    assert_eq!(named["patient"]["identifier"][0]["value"], "MRN1");
    assert_eq!(named["imagingStudy"]["identifier"][1]["value"], "ACC9");
    assert_eq!(named["imagingStudy"]["series"][0]["instance"][0]["uid"], "1.2.3.4.1");
    assert_eq!(named["instance"]["file"], "1.2.3/1.2.3.4/1.2.3.4.1.dcm");
    assert_eq!(named["instance"]["callingAe"], "CT1");
    assert_eq!(named["sourceMessageType"], "C-STORE");
    let occurred = named["occurred"].as_str().expect("when it was received");
    assert!(occurred.ends_with('Z') && occurred.contains('T'), "{occurred}");
    let anonymous = body(&got[1]);
    assert!(anonymous["patient"].get("identifier").is_none());
    assert_eq!(anonymous["imagingStudy"]["subject"]["display"], "Doe, Jane");

    assert_eq!(
        status_of(&r.store, "1.2.3.4.1").await.map(|s| s.0),
        Some(MessageStatus::Processed)
    );
    assert_eq!(
        status_of(&r.store, "1.2.3.4.2").await.map(|s| s.0),
        Some(MessageStatus::Processed)
    );
    let kept = r.store.list_messages(&MessageFilter::default()).await.unwrap();
    assert_eq!(kept.len(), 2, "one stored message per SOP instance: {kept:?}");
    r.shutdown.cancel();
}

#[tokio::test]
async fn a_body_that_is_not_metadata_is_dead_lettered_and_kept() {
    let r = rig().await;
    publish(
        &r.backbone,
        &ingress("1.2.3.4.9", b"{\"not\": \"metadata\"}".to_vec()),
        "bad1",
    )
    .await;
    let mut uid = metadata("1.2.3.4.8", Some("MRN2"));
    uid.study_instance_uid = "1.2.x".into();
    publish(
        &r.backbone,
        &ingress("1.2.3.4.8", serde_json::to_vec(&uid).unwrap()),
        "bad2",
    )
    .await;

    let (status, error) = status_of(&r.store, "1.2.3.4.9").await.unwrap();
    assert_eq!(status, MessageStatus::DeadLettered);
    assert!(error.unwrap_or_default().contains("not DICOM instance metadata"));
    let (status, error) = status_of(&r.store, "1.2.3.4.8").await.unwrap();
    assert_eq!(status, MessageStatus::DeadLettered);
    assert!(error.unwrap_or_default().contains("Study Instance UID"));
    let kept = r.store.find_message("modalities", "1.2.3.4.9").await.unwrap().unwrap();
    assert_eq!(
        &kept.message.raw[..],
        b"{\"not\": \"metadata\"}",
        "the raw body is kept for a fix and replay"
    );

    let dead = collect(&r.backbone, "dlq", "medbus.dlq.>", 2).await;
    assert_eq!(dead.len(), 2);
    assert!(dead.iter().all(|d| d.subject == "medbus.dlq.router_dicom"));
    assert!(collect(&r.backbone, "none", "medbus.events.>", 0).await.is_empty());
    r.shutdown.cancel();
}

#[tokio::test]
async fn one_patients_instances_are_published_in_the_order_received() {
    let r = rig().await;
    // Two patients interleaved; each one's instances must come out in order.
    let mut sent = Vec::new();
    for n in 0..40 {
        let sop = format!("1.2.3.4.{}", 100 + n);
        let mrn = if n % 2 == 0 { "MRN-A" } else { "MRN-B" };
        let env = ingress(&sop, serde_json::to_vec(&metadata(&sop, Some(mrn))).unwrap());
        publish(&r.backbone, &env, &format!("dicom:modalities:{sop}")).await;
        sent.push((mrn, sop));
    }
    let got = collect(&r.backbone, "ordered", "medbus.events.>", 40).await;
    assert_eq!(got.len(), 40);
    for mrn in ["MRN-A", "MRN-B"] {
        let want: Vec<&str> = sent
            .iter()
            .filter(|(m, _)| *m == mrn)
            .map(|(_, s)| s.as_str())
            .collect();
        let bodies: Vec<Value> = got.iter().map(body).collect();
        let seen: Vec<&str> = bodies
            .iter()
            .filter(|b| b["patient"]["identifier"][0]["value"] == mrn)
            .filter_map(|b| b["imagingStudy"]["series"][0]["instance"][0]["uid"].as_str())
            .collect();
        assert_eq!(seen, want, "{mrn}");
    }
    r.shutdown.cancel();
}
