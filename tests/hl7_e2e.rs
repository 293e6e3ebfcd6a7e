//! HL7 end to end through the real binary: the simulator sends ADT over 8
//! MLLP connections, medbus answers AA only after keeping each message, the
//! router and the registration service turn them into rows; the same stream
//! sent again is acknowledged again and changes nothing. On the embedded
//! default and on NATS JetStream + PostgreSQL.
//!
//! The issue asks for 10,000 messages; the suite sends 2,000 to stay quick in
//! a debug build (`E2E_COUNT` raises it).

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use medbus_bus::config::StoreConfig;
use medbus_bus::store::{self, SharedStore};
use medbus_simulators::hl7::generate::{GenConfig, Generator, Mix};
use medbus_simulators::hl7::sender::{self, SenderConfig};
use support::Medbus;
use tokio_util::sync::CancellationToken;

fn count() -> u64 {
    std::env::var("E2E_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

async fn send_all(addr: SocketAddr, n: u64) -> Vec<String> {
    let mut config = SenderConfig::new(addr);
    config.connections = 8;
    config.count = n;
    config.max_duration = Duration::from_secs(300);
    let generator = Generator::new(GenConfig {
        seed: 42,
        mix: Mix::Adt,
        id_prefix: Some("E2E-".into()),
        ..GenConfig::default()
    });
    let r = sender::run(&config, generator, CancellationToken::new())
        .await
        .expect("simulator runs");
    let c = &r.report.counts;
    assert_eq!(
        (c.sent, c.aa, c.accepted, c.msa2_mismatches),
        (n, n, n, 0),
        "{}",
        r.report
    );
    r.acked
}

/// Waits until every message is processed and the registration counts stop moving.
async fn settled(store: &SharedStore, n: usize) -> (usize, (u64, u64)) {
    let start = Instant::now();
    let mut last = (0, (0, 0));
    while start.elapsed() < Duration::from_secs(240) {
        let msgs = support::all_messages(store).await;
        let processed = msgs
            .iter()
            .filter(|m| m.status == store::MessageStatus::Processed)
            .count();
        let counts = store.registration().registration_counts().await.unwrap();
        if processed == n && (processed, counts) == last {
            return last;
        }
        last = (processed, counts);
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    panic!("not settled in time: {last:?} of {n}");
}

async fn run(dir: &Path, env: Vec<(&str, String)>, store_cfg: StoreConfig) {
    let n = count();
    let port = medbus_testkit::free_port();
    let config = dir.join("medbus.toml");
    std::fs::write(
        &config,
        format!("[channels.adt]\nlisten = \"127.0.0.1:{port}\"\n[log]\nlevel = \"warn\"\n"),
    )
    .unwrap();
    let mut env = env;
    env.push(("MEDBUS_CONFIG", config.display().to_string()));
    // The support helpers block (std process, blocking HTTP): keep them off the async workers.
    let start_dir = dir.to_path_buf();
    let owned: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let mut m = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, String)> = owned.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        Medbus::start(&start_dir, &env)
    })
    .await
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let acked = send_all(addr, n).await;
    assert_eq!(acked.len() as u64, n);
    let store = store::connect(&store_cfg, &dir.join("data")).await.unwrap();
    let (processed, (patients, encounters)) = settled(&store, n as usize).await;
    assert_eq!(
        processed as u64, n,
        "every acknowledged message kept and processed once"
    );
    assert!(
        patients > 0 && encounters > 0,
        "rows: {patients} patients, {encounters} encounters"
    );
    let stored = support::all_messages(&store).await;
    assert_eq!(stored.len() as u64, n, "one row per message");
    let mut ids: Vec<_> = stored.iter().filter_map(|m| m.control_id.clone()).collect();
    ids.sort();
    let mut want = acked.clone();
    want.sort();
    assert_eq!(ids, want, "exactly the acknowledged control ids");

    // The same stream again: all AA, nothing new.
    send_all(addr, n).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        support::all_messages(&store).await.len() as u64,
        n,
        "resends add no message rows"
    );
    assert_eq!(
        store.registration().registration_counts().await.unwrap(),
        (patients, encounters)
    );
    let code = tokio::task::spawn_blocking(move || m.terminate(Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adt_over_8_connections_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), vec![], StoreConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adt_over_8_connections_on_jetstream_and_postgres() {
    let Some(servers) = support::Production::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (env, store_cfg) = (servers.env(), servers.store_config());
    run(dir.path(), env, store_cfg).await;
}
