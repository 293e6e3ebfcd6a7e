//! Throughput of the embedded log: publish with durable ack, 1 KiB messages,
//! 64 in flight. Not a timed assertion (machines differ); it prints msg/s.
//!
//! `cargo test --release -p medbus-bus --test embedded_throughput -- --ignored --nocapture`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use medbus_bus::backbone::embedded::EmbeddedBackbone;
use medbus_bus::backbone::{open_consumer, ConsumerSpec, Outgoing, SharedBackbone};
use medbus_bus::config::{BackboneConfig, SyncPolicy};

async fn publish_rate(sync: SyncPolicy, count: usize, inflight: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BackboneConfig {
        sync,
        ..BackboneConfig::default()
    };
    let bb: SharedBackbone = Arc::new(EmbeddedBackbone::open(dir.path(), &cfg).await.unwrap());
    let payload = Bytes::from(vec![b'x'; 1024]);
    let start = Instant::now();
    let mut pending = FuturesUnordered::new();
    let mut next = 0;
    while next < count || !pending.is_empty() {
        while next < count && pending.len() < inflight {
            let bb = bb.clone();
            let msg = Outgoing {
                subject: "medbus.ingress.bench.load".into(),
                dedupe_id: format!("m{next}"),
                headers: Default::default(),
                payload: payload.clone(),
            };
            pending.push(tokio::spawn(async move { bb.publish(msg).await }));
            next += 1;
        }
        if let Some(r) = pending.next().await {
            assert!(!r.unwrap().unwrap().duplicate);
        }
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();

    // Consume and ack it all, for a figure on the read side too.
    let mut spec = ConsumerSpec::new("drain", "medbus.ingress.bench.>", &cfg);
    spec.max_ack_pending = 4096;
    let mut c = open_consumer(&bb, spec).await.unwrap();
    let start = Instant::now();
    let mut got = 0;
    while got < count {
        let batch = c.fetch(512, Duration::from_secs(5)).await.unwrap();
        assert!(!batch.is_empty());
        got += batch.len();
        for d in batch {
            d.ack().await.unwrap();
        }
    }
    let consume = got as f64 / start.elapsed().as_secs_f64();
    println!("sync={sync:?}: publish {rate:.0} msg/s ({count} x 1 KiB, {inflight} in flight); consume+ack {consume:.0} msg/s");
    bb.close().await.unwrap();
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput figure; run in release with --ignored --nocapture"]
async fn embedded_publish_throughput() {
    publish_rate(SyncPolicy::Always, 20_000, 64).await; // warm-up
    publish_rate(SyncPolicy::Always, 200_000, 64).await;
    publish_rate(SyncPolicy::Always, 20_000, 1).await;
    publish_rate(SyncPolicy::Os, 200_000, 64).await;
}
