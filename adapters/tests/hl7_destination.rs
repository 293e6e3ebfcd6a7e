//! A configured HL7 v2 destination on the embedded backbone: messages queued on
//! `medbus.egress.hl7v2.<name>` reach the receiver once, in order, after it
//! comes up; an AE (dead-letter policy) sends that one message to
//! `medbus.dlq.deliver_<name>` with the receiver's text and delivery goes on;
//! an AR (retry policy) is retried until accepted. The receiver being down at
//! first is reported once as `system.destination-unreachable`, and its coming
//! up once as `system.destination-recovered`.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use medbus_adapters::hl7::ack::AckCode;
use medbus_adapters::hl7::destination::{self, DestinationContext};
use medbus_bus::backbone::{self, open_consumer, ConsumerSpec, SharedBackbone};
use medbus_bus::config::{BackboneConfig, DestinationConfig};
use medbus_bus::envelope::{Envelope, Source};
use support::{bind_at, Reply};
use tokio_util::sync::CancellationToken;

fn msg(id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|MEDBUS|H|EMR|H|2024||ADT^A08|{id}|P|2.5\rPID|1||42\r").into_bytes()
}

async fn queue(bb: &SharedBackbone, name: &str, ids: &[String]) {
    for id in ids {
        let source = Source {
            channel: "adt".into(),
            protocol: "hl7v2".into(),
            peer: None,
        };
        let env = Envelope::ingress(source, "hl7v2.outbound", BTreeMap::new(), Bytes::from(msg(id)));
        let out = env
            .to_outgoing(format!("medbus.egress.hl7v2.{name}"), format!("out:{id}"))
            .unwrap();
        bb.publish(out).await.unwrap();
    }
}

fn dest(addr: &str) -> DestinationConfig {
    DestinationConfig {
        addr: addr.into(),
        ack_timeout: Duration::from_millis(500),
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..Default::default()
    }
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

#[tokio::test]
async fn delivers_in_order_once_the_receiver_is_up_and_dead_letters_an_ae() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BackboneConfig {
        ack_wait: Duration::from_millis(300),
        ..Default::default()
    };
    let bb = backbone::connect(&cfg, dir.path()).await.unwrap();
    // The receiver's port is known before it listens: deliveries start while it is down.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap().to_string();
    drop(probe);
    let ids: Vec<String> = (0..60).map(|i| format!("D{i:03}")).collect();
    queue(&bb, "emr", &ids).await;
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(destination::run(DestinationContext {
        name: "emr".into(),
        config: dest(&addr),
        backbone: bb.clone(),
        backbone_config: cfg.clone(),
        shutdown: shutdown.clone(),
    }));
    // Down for longer than the ack wait: nothing may be lost or doubled meanwhile.
    tokio::time::sleep(Duration::from_millis(900)).await;
    // Frame 10 gets AE (dead-lettered, not resent); frame 20 gets AR once (retried).
    let s = bind_at(&addr, |n| match n {
        10 => Reply::Code(AckCode::AE),
        20 => Reply::Code(AckCode::AR),
        _ => Reply::Accept,
    })
    .await;
    wait_for("every message", || s.received.lock().unwrap().len() > ids.len()).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got = s.received.lock().unwrap().clone();
    // Frame n is D<n> up to the AR'd frame 20 (the AE'd D010 is not resent), which comes twice in a row.
    let mut want = ids.clone();
    want.insert(21, ids[20].clone());
    assert_eq!(got, want, "received in order, each once, the AR'd one twice in a row");

    let mut dlq = open_consumer(&bb, ConsumerSpec::new("ops", "medbus.dlq.>", &cfg))
        .await
        .unwrap();
    let dead = dlq.fetch(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(dead.len(), 1, "only the AE'd message is dead-lettered");
    assert_eq!(dead[0].subject, "medbus.dlq.deliver_emr");
    let reason = dead[0].headers.get("Medbus-Dlq-Reason").cloned().unwrap_or_default();
    assert!(
        reason.contains("AE") && reason.contains("downstream says no"),
        "{reason}"
    );
    let env = Envelope::from_wire(&dead[0].headers, dead[0].payload.clone()).unwrap();
    let medbus_bus::envelope::Body::Raw { bytes, .. } = env.body else {
        panic!("raw body expected")
    };
    assert_eq!(bytes.as_ref(), msg("D010").as_slice());

    let mut status = open_consumer(&bb, ConsumerSpec::new("status", "medbus.events.system.>", &cfg))
        .await
        .unwrap();
    let events = status.fetch(10, Duration::from_secs(2)).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|d| d.subject.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "medbus.events.system.destination-unreachable",
            "medbus.events.system.destination-recovered"
        ],
        "one report each way, however many retries and refusals"
    );
    let body: serde_json::Value = serde_json::from_slice(&events[1].payload).unwrap();
    assert_eq!(body["destination"], "emr");
    assert_eq!(body["addr"], addr.as_str());
    let first: serde_json::Value = serde_json::from_slice(&events[0].payload).unwrap();
    assert_eq!(body["since"], first["since"], "recovered names the outage it ends");
    assert!(first["reason"].as_str().unwrap().contains("cannot connect"), "{first}");
    shutdown.cancel();
    run.await.unwrap().unwrap();
}
