//! kill -9 of medbus in the middle of an HL7 run, then a restart: every
//! message that got AA is kept exactly once and processed, and the
//! simulator's resends of the unacknowledged ones complete the set.

mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use medbus_bus::config::StoreConfig;
use medbus_bus::store::{self, MessageStatus};
use medbus_simulators::hl7::generate::{GenConfig, Generator, Mix};
use medbus_simulators::hl7::sender::{self, SenderConfig};
use support::Medbus;
use tokio_util::sync::CancellationToken;

async fn start(dir: PathBuf, config: PathBuf, env: Vec<(&'static str, String)>) -> Medbus {
    tokio::task::spawn_blocking(move || {
        let mut env = env;
        env.push(("MEDBUS_CONFIG", config.display().to_string()));
        Medbus::start(&dir, &env)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_loses_nothing_acknowledged_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    crash_run(dir.path(), vec![], StoreConfig::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_loses_nothing_acknowledged_on_jetstream_and_postgres() {
    let Some(servers) = support::Production::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (env, store_cfg) = (servers.env(), servers.store_config());
    crash_run(dir.path(), env, store_cfg).await;
}

async fn crash_run(dir: &std::path::Path, env: Vec<(&'static str, String)>, store_cfg: StoreConfig) {
    let n: u64 = std::env::var("CRASH_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let port = medbus_testkit::free_port();
    let config = dir.join("medbus.toml");
    std::fs::write(
        &config,
        format!("[channels.adt]\nlisten = \"127.0.0.1:{port}\"\n[log]\nlevel = \"warn\"\n"),
    )
    .unwrap();
    let mut medbus = start(dir.to_path_buf(), config.clone(), env.clone()).await;

    // The simulator runs throughout; it reconnects and resends what got no AA.
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut cfg = SenderConfig::new(addr);
    cfg.connections = 8;
    cfg.count = n;
    cfg.max_duration = Duration::from_secs(300);
    cfg.ack_timeout = Duration::from_secs(2);
    let generator = Generator::new(GenConfig {
        seed: 7,
        mix: Mix::Adt,
        id_prefix: Some("K9-".into()),
        ..GenConfig::default()
    });
    let run = tokio::spawn(async move { sender::run(&cfg, generator, CancellationToken::new()).await });

    // Kill once a good part has been acknowledged (the metric counts AAs).
    let http = medbus.http.clone();
    let started = Instant::now();
    loop {
        let h = http.clone();
        let acks = tokio::task::spawn_blocking(move || {
            let body = reqwest::blocking::get(format!("{h}/metrics")).ok()?.text().ok()?;
            body.lines()
                .find(|l| l.starts_with("medbus_acks_total{channel=\"adt\",code=\"AA\"}"))
                .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        })
        .await
        .unwrap()
        .unwrap_or(0.0);
        if acks >= n as f64 / 3.0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the run never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::task::spawn_blocking(move || {
        medbus.kill_9();
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let medbus = start(dir.to_path_buf(), config, env).await;

    let result = run.await.unwrap().expect("simulator ran");
    let c = &result.report.counts;
    assert_eq!(c.accepted, n, "the resends completed the set: {}", result.report);
    assert!(result.report.complete, "{}", result.report);

    // Every acknowledged control id is kept exactly once, and gets processed.
    let store = store::connect(&store_cfg, &dir.join("data")).await.unwrap();
    let start_wait = Instant::now();
    let stored = loop {
        let stored = support::all_messages(&store).await;
        let processed = stored.iter().filter(|m| m.status == MessageStatus::Processed).count();
        if processed as u64 == n || start_wait.elapsed() > Duration::from_secs(240) {
            break stored;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let ids: Vec<String> = stored.iter().filter_map(|m| m.control_id.clone()).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "no control id stored twice");
    let acked: HashSet<&String> = result.acked.iter().collect();
    assert_eq!(acked.len() as u64, n);
    assert!(
        acked.iter().all(|id| unique.contains(*id)),
        "an acknowledged message is missing"
    );
    assert_eq!(stored.len() as u64, n);
    let unprocessed: Vec<_> = stored.iter().filter(|m| m.status != MessageStatus::Processed).collect();
    assert!(
        unprocessed.is_empty(),
        "{} not processed, e.g. {:?}",
        unprocessed.len(),
        unprocessed.first()
    );
    // Processed once: each message's events are in the event log once each. The
    // registration service may still be working through the backlog: wait until the
    // sample's event count stops growing (at most 3 minutes), checking each pass.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let mut previous = usize::MAX;
    let logged = loop {
        let mut now_logged = 0;
        for m in stored.iter().take(2000) {
            let events = store.events_for(m.id).await.unwrap();
            let kinds: HashSet<&str> = events.iter().map(|e| e.kind.as_str()).collect();
            assert_eq!(
                kinds.len(),
                events.len(),
                "message {:?} applied twice: {events:?}",
                m.control_id
            );
            now_logged += events.len();
        }
        if (now_logged > 0 && now_logged == previous) || std::time::Instant::now() > deadline {
            break now_logged;
        }
        previous = now_logged;
        tokio::time::sleep(Duration::from_secs(3)).await;
    };
    assert!(logged > 0, "the registration service applied the events");
    drop(medbus);
}
