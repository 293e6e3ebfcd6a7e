//! Reloading routes under load, through the real binary on NATS + PostgreSQL:
//! the simulator sends the full mix at 200 msg/s while the route file is
//! changed (picked up by the file watcher) and SIGHUP is sent; every message
//! is routed by exactly one version of the routes, so the counts before and
//! after the reload add up to the messages sent.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use medbus_bus::backbone::{self, open_consumer, ConsumerSpec};
use medbus_bus::config::BackboneConfig;
use medbus_bus::envelope::header;
use medbus_bus::store::{self, MessageStatus};
use medbus_simulators::hl7::generate::{GenConfig, Generator, Mix};
use medbus_simulators::hl7::sender::{self, SenderConfig};
use support::Medbus;
use tokio_util::sync::CancellationToken;

const COUNT: u64 = 2000;
const ROUTE: &str = "[routes.everything]\nchannels = [\"*\"]\nto = { services = [\"registration\"] }\n";
const CHANGED: &str = "[routes.everything]\nchannels = [\"*\"]\nto = { services = [\"registration\", \"orders\"] }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_200_messages_a_second_loses_and_doubles_nothing() {
    let Some(servers) = support::Production::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = medbus_testkit::free_port();
    std::fs::create_dir_all(dir.path().join("routes")).unwrap();
    let route_file = dir.path().join("routes/everything.toml");
    std::fs::write(&route_file, ROUTE).unwrap();
    let config = dir.path().join("medbus.toml");
    std::fs::write(
        &config,
        format!("[channels.adt]\nlisten = \"127.0.0.1:{port}\"\n[log]\nlevel = \"info\"\n"),
    )
    .unwrap();
    let mut env = servers.env();
    env.push(("MEDBUS_CONFIG", config.display().to_string()));
    let start_dir = dir.path().to_path_buf();
    let m = tokio::task::spawn_blocking(move || Medbus::start(&start_dir, &env))
        .await
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let mut config = SenderConfig::new(addr);
    config.connections = 4;
    config.count = COUNT;
    config.rate = Some(200.0);
    config.max_duration = Duration::from_secs(120);
    let generator = Generator::new(GenConfig {
        seed: 7,
        mix: Mix::Full,
        id_prefix: Some("RELOAD-".into()),
        ..GenConfig::default()
    });
    let sending = tokio::spawn(async move { sender::run(&config, generator, CancellationToken::new()).await });
    // Mid-run: change the route (the watcher reloads it), then ask again by SIGHUP.
    tokio::time::sleep(Duration::from_secs(4)).await;
    std::fs::write(&route_file, CHANGED).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    m.hangup();
    let report = sending.await.unwrap().expect("simulator runs").report;
    let c = &report.counts;
    assert_eq!((c.sent, c.aa, c.msa2_mismatches), (COUNT, COUNT, 0), "{report}");

    let store = store::connect(&servers.store_config(), &dir.path().join("data"))
        .await
        .unwrap();
    let start = Instant::now();
    let processed = loop {
        let msgs = support::all_messages(&store).await;
        let done: Vec<_> = msgs.iter().filter(|m| m.status == MessageStatus::Processed).collect();
        if done.len() as u64 == COUNT || start.elapsed() > Duration::from_secs(120) {
            break done.into_iter().map(|m| m.id).collect::<BTreeSet<_>>();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(processed.len() as u64, COUNT, "every message stored once and routed");

    // Which version of the routes produced each message's events.
    let bb = backbone::connect(
        &BackboneConfig {
            url: servers.nats_url(),
            ..Default::default()
        },
        dir.path(),
    )
    .await
    .unwrap();
    let mut events = open_consumer(
        &bb,
        ConsumerSpec::new("reload_watch", "medbus.events.>", &BackboneConfig::default()),
    )
    .await
    .unwrap();
    let mut by_message: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    loop {
        let batch = events.fetch(500, Duration::from_secs(2)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for d in batch {
            let correlation = d.headers.get(header::CORRELATION_ID).cloned().unwrap_or_default();
            let services = d.headers.get(header::SERVICES).cloned().unwrap_or_default();
            by_message.entry(correlation).or_default().insert(services);
            let _ = d.ack().await;
        }
    }
    let before = by_message
        .values()
        .filter(|s| s.len() == 1 && s.contains("registration"))
        .count();
    let after = by_message
        .values()
        .filter(|s| s.len() == 1 && s.contains("registration,orders"))
        .count();
    let mixed = by_message.values().filter(|s| s.len() > 1).count();
    println!("routed before the reload: {before}, after: {after}, by both: {mixed}");
    assert_eq!(mixed, 0, "no message routed by both versions");
    assert!(
        before > 0 && after > 0,
        "the reload happened mid-run: {before} before, {after} after"
    );
    assert_eq!(
        (before + after) as u64,
        COUNT,
        "every message produced events under exactly one version"
    );
    let log = std::fs::read_to_string(&m.log).unwrap_or_default();
    assert!(
        log.contains("route or table files changed"),
        "the watcher saw the change"
    );
    assert!(log.contains("SIGHUP: reloading routes"), "SIGHUP asked for a reload");
}
