//! An HL7 v2 destination through restarts while its receiver is down: the
//! messages in hand are given back at each shutdown, and more shutdowns than
//! `backbone.max_deliver` never dead-letter them (on the embedded backbone and
//! on JetStream); a destination that crashes on a message every time still
//! dead-letters it after `max_deliver` crashes.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use medbus_adapters::hl7::destination::{self, DestinationContext};
use medbus_bus::backbone::{self, dead_letter, open_consumer, Consumer, ConsumerSpec, SharedBackbone};
use medbus_bus::config::{BackboneConfig, DestinationConfig};
use medbus_bus::envelope::{Envelope, Source};
use support::{bind_at, Reply};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const NAME: &str = "lab";

struct Bus {
    _dir: tempfile::TempDir,
    bb: SharedBackbone,
    cfg: BackboneConfig,
    status: Consumer,
}

impl Bus {
    /// `max_deliver` 2; an ack wait of `ack_wait` (how soon a crashed run's deliveries come again).
    async fn with(url: &str, ack_wait: Duration) -> Bus {
        let dir = tempfile::tempdir().unwrap();
        let cfg = BackboneConfig {
            url: url.into(),
            ack_wait,
            max_deliver: 2,
            ..BackboneConfig::default()
        };
        let bb = backbone::connect(&cfg, dir.path()).await.unwrap();
        let status = open_consumer(&bb, ConsumerSpec::new("status", "medbus.events.system.>", &cfg))
            .await
            .unwrap();
        Bus {
            _dir: dir,
            bb,
            cfg,
            status,
        }
    }

    async fn queue(&self, ids: &[&str]) {
        for id in ids {
            let source = Source {
                channel: "adt".into(),
                protocol: "hl7v2".into(),
                peer: None,
            };
            let body = format!("MSH|^~\\&|MEDBUS|H|LAB|H|2024||ADT^A08|{id}|P|2.5\rPID|1||42\r");
            let env = Envelope::ingress(source, "hl7v2.outbound", BTreeMap::new(), Bytes::from(body));
            let out = env
                .to_outgoing(format!("medbus.egress.hl7v2.{NAME}"), format!("out:{id}"))
                .unwrap();
            self.bb.publish(out).await.unwrap();
        }
    }

    fn start(&self, addr: &str) -> (CancellationToken, JoinHandle<Result<(), backbone::BackboneError>>) {
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(destination::run(DestinationContext {
            name: NAME.into(),
            config: DestinationConfig {
                addr: addr.into(),
                connect_timeout: Duration::from_millis(300),
                ack_timeout: Duration::from_millis(500),
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(100),
                ..Default::default()
            },
            backbone: self.bb.clone(),
            backbone_config: self.cfg.clone(),
            shutdown: shutdown.clone(),
        }));
        (shutdown, run)
    }

    /// Runs the destination until it has found the receiver down (its
    /// unreachable event), then shuts it down, or aborts it when `crash`.
    async fn run_until_tried(&mut self, addr: &str, crash: bool) {
        let (shutdown, run) = self.start(addr);
        let events = self.status.fetch(1, Duration::from_secs(20)).await.unwrap();
        assert_eq!(events.len(), 1, "the destination never reported the receiver down");
        assert_eq!(events[0].subject, "medbus.events.system.destination-unreachable");
        for e in events {
            e.ack().await.unwrap();
        }
        if crash {
            // Dropped mid-work: nothing settled, nothing given back (the ack wait expires).
            run.abort();
            let _ = run.await;
        } else {
            shutdown.cancel();
            run.await.unwrap().unwrap();
        }
    }

    async fn dead_letters(&self, wait: Duration) -> Vec<backbone::Delivery> {
        let mut dlq = open_consumer(&self.bb, ConsumerSpec::new("ops", "medbus.dlq.>", &self.cfg))
            .await
            .unwrap();
        dlq.fetch(10, wait).await.unwrap()
    }
}

/// A free loopback port nobody listens on yet.
fn down_addr() -> String {
    format!("127.0.0.1:{}", medbus_testkit::free_port())
}

async fn restarts_never_dead_letter(mut bus: Bus) {
    // The consumer as an earlier version made it (backbone max_deliver): it is updated.
    drop(
        open_consumer(
            &bus.bb,
            ConsumerSpec::new(
                format!("deliver_{NAME}"),
                format!("medbus.egress.hl7v2.{NAME}"),
                &bus.cfg,
            ),
        )
        .await
        .unwrap(),
    );
    let addr = down_addr();
    bus.queue(&["R1", "R2", "R3"]).await;
    for _ in 0..bus.cfg.max_deliver + 2 {
        bus.run_until_tried(&addr, false).await;
    }
    let receiver = bind_at(&addr, |_| Reply::Accept).await;
    let (shutdown, run) = bus.start(&addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.received.lock().unwrap().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "not all delivered within 30 s once the receiver is up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        *receiver.received.lock().unwrap(),
        ["R1", "R2", "R3"],
        "in order, each once"
    );
    let dead = bus.dead_letters(Duration::from_millis(500)).await;
    assert!(
        dead.is_empty(),
        "dead-lettered: {:?}",
        dead.iter().map(|d| &d.headers).collect::<Vec<_>>()
    );
    shutdown.cancel();
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdowns_while_the_receiver_is_down_never_dead_letter_embedded() {
    restarts_never_dead_letter(Bus::with("embedded", Duration::from_secs(5)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdowns_while_the_receiver_is_down_never_dead_letter_jetstream() {
    let Some(nats) = medbus_testkit::NatsServer::start() else {
        return;
    };
    restarts_never_dead_letter(Bus::with(&nats.url(), Duration::from_secs(5)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_crashing_on_a_message_every_time_still_dead_letters_it() {
    let mut bus = Bus::with("embedded", Duration::from_secs(2)).await;
    let addr = down_addr();
    bus.queue(&["C1"]).await;
    // Shutdowns do not count; crashes do: max_deliver (2) of them dead-letter it.
    for crash in [false, true, false, true] {
        bus.run_until_tried(&addr, crash).await;
    }
    let (shutdown, run) = bus.start(&addr);
    let dead = bus.dead_letters(Duration::from_secs(10)).await;
    assert_eq!(dead.len(), 1, "the crashing message dead-lettered");
    let reason = dead[0]
        .headers
        .get(dead_letter::header::REASON)
        .cloned()
        .unwrap_or_default();
    assert!(
        reason.contains("not settled after 2 deliveries") && reason.contains("2 given back at shutdown"),
        "{reason}"
    );
    shutdown.cancel();
    run.await.unwrap().unwrap();
}
