//! kill -9 of a publishing process loses nothing it had acknowledged.
//!
//! The test re-runs its own binary as a child (`crash_child`, inert unless
//! `MEDBUS_CRASH_CHILD` is set) that publishes as fast as it can with 32 in
//! flight and prints `ACK <id>` after each durable receipt. The parent reads
//! those lines, SIGKILLs the child mid-stream, reopens the backbone and checks
//! that every acknowledged id is there exactly once.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use medbus_bus::backbone::{self, open_consumer, ConsumerSpec, Outgoing};
use medbus_bus::config::BackboneConfig;

const SUBJECT: &str = "medbus.ingress.hl7v2.crash";

fn config(url: &str) -> BackboneConfig {
    BackboneConfig {
        url: url.to_string(),
        ack_wait: Duration::from_secs(2),
        ..Default::default()
    }
}

/// The child: publishes until killed. Does nothing in a normal test run.
#[tokio::test]
async fn crash_child() {
    let (Ok(url), Ok(dir)) = (std::env::var("MEDBUS_CRASH_CHILD"), std::env::var("MEDBUS_CRASH_DIR")) else {
        return;
    };
    let bb = backbone::connect(&config(&url), std::path::Path::new(&dir))
        .await
        .unwrap();
    let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut pending = FuturesUnordered::new();
    for i in 0..1_000_000u64 {
        if pending.len() >= 32 {
            if let Some(r) = pending.next().await {
                let id: String = r;
                let mut out = stdout.lock().unwrap();
                writeln!(out, "ACK {id}").unwrap();
                out.flush().unwrap();
            }
        }
        let bb = bb.clone();
        pending.push(async move {
            let id = format!("m{i}");
            let msg = Outgoing {
                subject: SUBJECT.into(),
                dedupe_id: id.clone(),
                headers: Default::default(),
                payload: Bytes::from(format!("payload of {id}").repeat(20)),
            };
            bb.publish(msg).await.unwrap();
            id
        });
    }
}

/// Runs the child against `url`, kills it after `acks` acknowledgements, returns the acked ids.
fn run_and_kill(url: &str, dir: &std::path::Path, acks: usize) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads", "1"])
        .env("MEDBUS_CRASH_CHILD", url)
        .env("MEDBUS_CRASH_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("ACK ") {
            acked.push(id.to_string());
            if acked.len() >= acks {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no flush, no close, mid-batch
    child.wait().unwrap();
    acked
}

async fn verify(url: &str, dir: &std::path::Path, acked: &[String]) {
    assert!(
        acked.len() >= 1000,
        "the child acknowledged too little: {}",
        acked.len()
    );
    let bb = backbone::connect(&config(url), dir).await.unwrap();
    let mut consumer = open_consumer(&bb, ConsumerSpec::new("verify", SUBJECT, &config(url)))
        .await
        .unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    loop {
        let batch = consumer.fetch(1000, Duration::from_millis(500)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for d in batch {
            *seen.entry(d.dedupe_id.clone().unwrap_or_default()).or_default() += 1;
            d.ack().await.unwrap();
        }
    }
    let missing: Vec<&String> = acked.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged messages lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "stored twice: {doubled:?}");
    bb.close().await.unwrap();
}

#[tokio::test]
async fn embedded_kill_9_loses_nothing_acknowledged() {
    if std::env::var("MEDBUS_CRASH_CHILD").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let acked = run_and_kill("embedded", dir.path(), 5000);
    verify("embedded", dir.path(), &acked).await;
}

#[tokio::test]
async fn jetstream_kill_9_of_the_client_loses_nothing_acknowledged() {
    if std::env::var("MEDBUS_CRASH_CHILD").is_ok() {
        return;
    }
    let Some(nats) = medbus_testkit::NatsServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let acked = run_and_kill(&nats.url(), dir.path(), 5000);
    verify(&nats.url(), dir.path(), &acked).await;
}
