//! Backbone benchmark behind `medbus bench backbone`: publish-with-durable-ack
//! throughput one at a time and with N in flight, consume-and-ack throughput,
//! and for JetStream the same publish loop on bare async-nats in the same run,
//! so the cost of our layer is measured rather than guessed.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};

use crate::backbone::{open_consumer, BackboneError, ConsumerSpec, Outgoing, SharedBackbone};
use crate::config::BackboneConfig;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    /// Messages per phase.
    pub count: usize,
    /// Payload size in bytes.
    pub size: usize,
    /// Publishes in flight for the concurrent phase.
    pub inflight: usize,
}

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Figure {
    /// What was measured.
    pub label: String,
    /// Messages.
    pub count: usize,
    /// Wall time.
    pub elapsed: Duration,
}

impl Figure {
    /// Messages per second.
    pub fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `op(i)` for i in 0..count with at most `inflight` outstanding.
async fn drive<F, Fut>(count: usize, inflight: usize, op: F) -> Result<Duration, BackboneError>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), BackboneError>>,
{
    let start = Instant::now();
    let mut pending = FuturesUnordered::new();
    let mut next = 0;
    while next < count || !pending.is_empty() {
        while next < count && pending.len() < inflight.max(1) {
            pending.push(op(next));
            next += 1;
        }
        if let Some(r) = pending.next().await {
            r?;
        }
    }
    Ok(start.elapsed())
}

/// Measures `backbone`. `run_id` keeps subjects and consumer names apart from real traffic.
pub async fn run(
    backbone: SharedBackbone,
    cfg: &BackboneConfig,
    plan: &BenchPlan,
    run_id: &str,
) -> Result<Vec<Figure>, BackboneError> {
    let payload = Bytes::from(vec![b'x'; plan.size]);
    let subject = format!("medbus.ingress.bench.{run_id}");
    let mut figures = Vec::new();
    // Warm up connections, stream files and caches; not measured, not consumed.
    let warm = format!("medbus.ingress.benchwarm.{run_id}");
    drive(plan.count.min(2000), plan.inflight, |i| {
        let bb = backbone.clone();
        let msg = Outgoing {
            subject: warm.clone(),
            dedupe_id: format!("{run_id}-w-{i}"),
            headers: Default::default(),
            payload: payload.clone(),
        };
        async move { bb.publish(msg).await.map(|_| ()) }
    })
    .await?;
    for (label, inflight, phase) in [
        ("publish, 1 in flight", 1, "a"),
        ("publish, N in flight", plan.inflight, "b"),
    ] {
        let bb = backbone.clone();
        let (subject, payload) = (subject.clone(), payload.clone());
        let elapsed = drive(plan.count, inflight, |i| {
            let bb = bb.clone();
            let msg = Outgoing {
                subject: subject.clone(),
                dedupe_id: format!("{run_id}-{phase}-{i}"),
                headers: Default::default(),
                payload: payload.clone(),
            };
            async move { bb.publish(msg).await.map(|_| ()) }
        })
        .await?;
        figures.push(Figure {
            label: label.replace('N', &inflight.to_string()),
            count: plan.count,
            elapsed,
        });
    }
    if backbone.kind() == "jetstream" {
        figures.extend(raw_nats(cfg, plan, run_id, &format!("medbus.ingress.benchraw.{run_id}")).await?);
    }
    // Consume and ack everything published above (both phases).
    let mut spec = ConsumerSpec::new(format!("bench_{run_id}"), subject.clone(), cfg);
    spec.max_ack_pending = 4096;
    let mut consumer = open_consumer(&backbone, spec).await?;
    let total = plan.count * 2;
    let start = Instant::now();
    let mut got = 0;
    while got < total {
        let batch = consumer.fetch(512, Duration::from_secs(5)).await?;
        if batch.is_empty() {
            return Err(BackboneError::Unavailable(format!(
                "consumer stalled at {got} of {total}"
            )));
        }
        got += batch.len();
        let acks: FuturesUnordered<_> = batch.into_iter().map(|d| d.ack()).collect();
        for r in acks.collect::<Vec<_>>().await {
            r?;
        }
    }
    figures.push(Figure {
        label: "consume + ack (batches of 512)".into(),
        count: got,
        elapsed: start.elapsed(),
    });
    if backbone.kind() == "jetstream" {
        cleanup_nats(cfg, run_id, &[&subject, &warm]).await;
    }
    Ok(figures)
}

/// The same publish loop on bare async-nats (no envelope, no trait), for comparison.
async fn raw_nats(
    cfg: &BackboneConfig,
    plan: &BenchPlan,
    run_id: &str,
    subject: &str,
) -> Result<Vec<Figure>, BackboneError> {
    let client = async_nats::connect(cfg.url.as_str())
        .await
        .map_err(|e| BackboneError::Unavailable(e.to_string()))?;
    let js = Arc::new(
        async_nats::jetstream::ContextBuilder::new()
            .timeout(cfg.publish_timeout)
            .max_ack_inflight(16_384)
            .backpressure_on_inflight(true)
            .build(client),
    );
    let payload = Bytes::from(vec![b'x'; plan.size]);
    let mut out = Vec::new();
    for (label, inflight, phase) in [
        ("bare async-nats, 1 in flight", 1, "c"),
        ("bare async-nats, N in flight", plan.inflight, "d"),
    ] {
        let elapsed = drive(plan.count, inflight, |i| {
            let js = js.clone();
            let payload = payload.clone();
            let subject = subject.to_string();
            let id = format!("{run_id}-{phase}-{i}");
            async move {
                let msg = async_nats::jetstream::message::PublishMessage::build()
                    .payload(payload)
                    .message_id(id);
                let ack = js
                    .send_publish(subject, msg)
                    .await
                    .map_err(|e| BackboneError::Unavailable(e.to_string()))?;
                ack.await
                    .map(|_| ())
                    .map_err(|e| BackboneError::Unavailable(e.to_string()))
            }
        })
        .await?;
        out.push(Figure {
            label: label.replace('N', &inflight.to_string()),
            count: plan.count,
            elapsed,
        });
    }
    cleanup_nats(cfg, run_id, &[subject]).await;
    Ok(out)
}

/// Removes what a run left on a shared server: its messages and its consumer.
async fn cleanup_nats(cfg: &BackboneConfig, run_id: &str, subjects: &[&str]) {
    let Ok(client) = async_nats::connect(cfg.url.as_str()).await else {
        return;
    };
    let js = async_nats::jetstream::new(client);
    if let Ok(stream) = js.get_stream(format!("{}_INGRESS", cfg.stream_prefix)).await {
        for s in subjects {
            let _ = stream.purge().filter(*s).await;
        }
        let _ = stream.delete_consumer(&format!("bench_{run_id}")).await;
    }
}
