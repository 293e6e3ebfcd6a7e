//! One harness over both backbones, so every conformance case runs unchanged
//! against the embedded log and against a private nats-server.

use std::path::Path;
use std::time::{Duration, Instant};

use medbus_bus::backbone::{connect, open_consumer, BackboneError, Consumer, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::config::BackboneConfig;
use medbus_testkit::NatsServer;

/// A backbone under test, able to restart it with its data.
pub struct Harness {
    /// The config every backbone of this harness is opened with (short ack_wait).
    pub cfg: BackboneConfig,
    dir: tempfile::TempDir,
    nats: Option<NatsServer>,
    current: Option<SharedBackbone>,
}

/// A config that keeps the suite fast: short ack wait, few attempts.
fn test_config(url: String) -> BackboneConfig {
    BackboneConfig {
        url,
        ack_wait: Duration::from_secs(1),
        max_deliver: 3,
        max_ack_pending: 1024,
        publish_timeout: Duration::from_secs(10),
        ..BackboneConfig::default()
    }
}

impl Harness {
    /// The embedded log in a fresh directory.
    pub fn embedded() -> Option<Harness> {
        Some(Harness {
            cfg: test_config("embedded".into()),
            dir: tempfile::tempdir().expect("temp dir"),
            nats: None,
            current: None,
        })
    }

    /// JetStream on its own nats-server; None (after printing why) when there is none.
    pub fn jetstream() -> Option<Harness> {
        let nats = NatsServer::start()?;
        Some(Harness {
            cfg: test_config(nats.url()),
            dir: tempfile::tempdir().expect("temp dir"),
            nats: Some(nats),
            current: None,
        })
    }

    fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Connects (the first time, or again after a restart).
    pub async fn open(&mut self) -> SharedBackbone {
        let bb = connect(&self.cfg, self.data_dir())
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.cfg.url));
        self.current = Some(bb.clone());
        bb
    }

    /// Closes the backbone, restarts what holds its data (the embedded log
    /// directory, or nats-server on the same store), and connects again.
    pub async fn restart(&mut self) -> SharedBackbone {
        if let Some(bb) = self.current.take() {
            bb.close().await.expect("close before restart");
        }
        if let Some(nats) = self.nats.as_mut() {
            nats.restart();
        }
        self.open().await
    }

    /// A consumer spec with this harness's defaults.
    pub fn spec(&self, name: &str, filter: &str) -> ConsumerSpec {
        ConsumerSpec::new(name, filter, &self.cfg)
    }
}

/// Opens a consumer, failing the test on error.
pub async fn consumer(bb: &SharedBackbone, spec: ConsumerSpec) -> Consumer {
    let name = spec.name.clone();
    open_consumer(bb, spec)
        .await
        .unwrap_or_else(|e| panic!("open consumer {name}: {e}"))
}

/// Fetches until `n` deliveries arrived or `within` passed; returns what came.
pub async fn take(c: &mut Consumer, n: usize, within: Duration) -> Vec<Delivery> {
    let until = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let batch: Result<Vec<Delivery>, BackboneError> =
            c.fetch(n - out.len(), left.min(Duration::from_secs(1))).await;
        out.extend(batch.expect("fetch"));
    }
    out
}

/// Asserts nothing is delivered within `wait`.
pub async fn nothing(c: &mut Consumer, wait: Duration, why: &str) {
    let got = c.fetch(10, wait).await.expect("fetch");
    let seen: Vec<_> = got
        .iter()
        .map(|d| (d.sequence, d.dedupe_id.clone(), d.delivered))
        .collect();
    assert!(got.is_empty(), "{why}: unexpected deliveries {seen:?}");
}

/// Acks every delivery.
pub async fn ack_all(ds: Vec<Delivery>) {
    for d in ds {
        d.ack().await.expect("ack");
    }
}
