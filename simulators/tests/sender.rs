//! The sender against a small MLLP ACK server of our own, over loopback: counts, at-least-once
//! resends after dropped connections and timeouts, MSA-2 checks, limits.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use medbus_simulators::hl7::generate::{GenConfig, Generator, Kind, Mix};
use medbus_simulators::hl7::sender::{self, RunResult, SendError, SenderConfig};
use support::{AckServer, Faults};
use tokio_util::sync::CancellationToken;

fn gen(malformed: f64, resend: f64) -> GenConfig {
    GenConfig {
        seed: 42,
        mix: Mix::Full,
        malformed,
        resend,
        ..GenConfig::default()
    }
}

/// The distinct MSH-10s of the valid messages among the first `count`.
fn valid_ids(g: &GenConfig, count: usize) -> HashSet<String> {
    Generator::new(g.clone())
        .take(count)
        .filter(|m| m.kind == Kind::Valid)
        .filter_map(|m| m.control_id)
        .collect()
}

async fn send(server: &AckServer, g: &GenConfig, f: impl FnOnce(&mut SenderConfig)) -> RunResult {
    let mut config = SenderConfig::new(server.addr);
    config.max_duration = Duration::from_secs(30);
    f(&mut config);
    sender::run(&config, Generator::new(g.clone()), CancellationToken::new())
        .await
        .unwrap()
}

#[tokio::test]
async fn clean_run_counts_every_answer() {
    let server = AckServer::start(Faults::default()).await;
    let g = gen(0.05, 0.02);
    let r = send(&server, &g, |c| {
        c.connections = 8;
        c.count = 2000;
    })
    .await;
    let c = &r.report.counts;
    assert!(r.report.complete, "{}", r.report);
    assert_eq!((c.sent, r.report.unsent), (2000, 0));
    assert_eq!(c.valid_sent + c.resends_sent + c.malformed_sent, 2000);
    assert!(c.malformed_sent > 50 && c.resends_sent > 10, "{}", r.report);
    assert_eq!(c.accepted, c.valid_sent + c.resends_sent);
    assert_eq!(c.aa, c.accepted);
    assert_eq!((c.ae, c.malformed_rejected), (c.malformed_sent, c.malformed_sent));
    assert_eq!((c.retries, c.timeouts, c.reconnects, c.msa2_mismatches), (0, 0, 0, 0));
    assert_eq!(r.report.latency.count, 2000);
    assert!(r.report.throughput_msg_s > 0.0 && r.report.latency.max_ms >= r.report.latency.p50_ms);
    // The accepted list holds each valid id once (resends add none).
    let expected = valid_ids(&g, 2000);
    assert_eq!(r.acked.len(), expected.len());
    assert_eq!(r.acked.iter().cloned().collect::<HashSet<_>>(), expected);
    assert_eq!(server.seen.lock().unwrap().connections, 8);
}

#[tokio::test]
async fn dropped_connections_are_reopened_and_nothing_is_lost() {
    let server = AckServer::start(Faults {
        drop_every: Some(37),
        ..Faults::default()
    })
    .await;
    let g = gen(0.0, 0.01);
    let r = send(&server, &g, |c| {
        c.connections = 4;
        c.count = 1500;
    })
    .await;
    let c = &r.report.counts;
    assert!(r.report.complete, "{}", r.report);
    assert!(
        c.connection_errors >= 30 && c.reconnects == c.connection_errors,
        "{}",
        r.report
    );
    assert_eq!(c.retries, c.connection_errors, "each lost message is sent again once");
    assert_eq!(c.accepted, 1500);
    let expected = valid_ids(&g, 1500);
    assert_eq!(r.acked.iter().cloned().collect::<HashSet<_>>(), expected);
    // The server holds every one: none lost, some received twice.
    let seen = server.seen.lock().unwrap();
    assert!(expected.is_subset(&seen.acked));
    assert!(seen.received.len() as u64 >= 1500 + c.retries);
}

#[tokio::test]
async fn a_missing_ack_times_out_and_the_message_is_sent_again() {
    let server = AckServer::start(Faults {
        silent_at: Some(10),
        ..Faults::default()
    })
    .await;
    let r = send(&server, &gen(0.0, 0.0), |c| {
        c.count = 30;
        c.ack_timeout = Duration::from_millis(300);
    })
    .await;
    let c = &r.report.counts;
    assert!(r.report.complete, "{}", r.report);
    assert_eq!((c.timeouts, c.retries, c.reconnects, c.accepted), (1, 1, 1, 30));
}

#[tokio::test]
async fn wrong_msa2_is_counted_and_not_taken_as_accepted() {
    let server = AckServer::start(Faults {
        wrong_id_every: Some(10),
        ..Faults::default()
    })
    .await;
    let r = send(&server, &gen(0.0, 0.0), |c| c.count = 100).await;
    let c = &r.report.counts;
    assert_eq!((c.msa2_mismatches, c.accepted, c.aa), (10, 90, 100));
    assert_eq!(r.acked.len(), 90);
    assert!(!r.report.complete);
}

#[tokio::test]
async fn a_closed_connection_answers_a_malformed_message_and_it_is_not_resent() {
    let server = AckServer::start(Faults {
        close_on_malformed: true,
        ..Faults::default()
    })
    .await;
    let g = gen(0.1, 0.0);
    let r = send(&server, &g, |c| {
        c.connections = 2;
        c.count = 300;
    })
    .await;
    let c = &r.report.counts;
    assert!(r.report.complete, "{}", r.report);
    assert_eq!(c.malformed_unanswered, c.malformed_sent);
    assert_eq!(c.retries, 0);
    assert_eq!(server.seen.lock().unwrap().malformed, c.malformed_sent);
    assert_eq!(c.accepted, c.valid_sent);
}

#[tokio::test]
async fn a_run_against_a_silent_server_stops_at_its_time_limit() {
    let server = AckServer::start(Faults {
        silent_at: Some(1),
        ..Faults::default()
    })
    .await;
    let started = std::time::Instant::now();
    let r = send(&server, &gen(0.0, 0.0), |c| {
        c.count = 5;
        c.ack_timeout = Duration::from_secs(10);
        c.max_duration = Duration::from_millis(500);
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let c = &r.report.counts;
    assert_eq!((c.sent, c.unacked, r.report.unsent), (1, 1, 4));
    assert!(!r.report.complete);
}

#[tokio::test]
async fn connects_are_retried_with_backoff_until_the_time_limit() {
    // A port with nothing listening on it.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", medbus_testkit::free_port()).parse().unwrap();
    let mut config = SenderConfig::new(addr);
    config.count = 3;
    config.max_duration = Duration::from_millis(400);
    let r = sender::run(&config, Generator::new(gen(0.0, 0.0)), CancellationToken::new())
        .await
        .unwrap();
    let c = &r.report.counts;
    assert_eq!((c.sent, r.report.unsent), (0, 3));
    // 10 + 20 + 40 + 80 + 160 ms of backoff fit in 400 ms: a handful of tries, not a spin.
    assert!((3..=8).contains(&c.connect_failures), "{}", r.report);
}

#[tokio::test]
async fn the_rate_limit_paces_the_run() {
    let server = AckServer::start(Faults::default()).await;
    let r = send(&server, &gen(0.0, 0.0), |c| {
        c.connections = 4;
        c.count = 60;
        c.rate = Some(100.0);
    })
    .await;
    assert!(r.report.complete);
    // 60 messages at 100/s with a burst of 4: about 0.56 s.
    assert!((0.45..1.5).contains(&r.report.elapsed_s), "{}", r.report);
}

#[tokio::test]
async fn only_loopback_is_a_target() {
    let addr = "203.0.113.7:2575".parse().unwrap();
    let err = sender::run(
        &SenderConfig::new(addr),
        Generator::new(gen(0.0, 0.0)),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SendError::NotLoopback(_)), "{err}");
}

#[tokio::test]
async fn cancelling_ends_the_run_with_a_report() {
    let server = AckServer::start(Faults::default()).await;
    let cancel = CancellationToken::new();
    let mut config = SenderConfig::new(server.addr);
    config.count = 1_000_000;
    config.rate = Some(200.0);
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c2.cancel();
    });
    let r = sender::run(&config, Generator::new(gen(0.0, 0.0)), cancel)
        .await
        .unwrap();
    assert!(
        r.report.counts.accepted > 10 && r.report.counts.accepted < 200,
        "{}",
        r.report
    );
    assert!(r.report.unsent > 900_000);
}
