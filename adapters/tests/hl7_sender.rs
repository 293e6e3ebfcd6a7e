//! The MLLP sender against small in-test MLLP servers: order, reconnect,
//! ACK timeouts, stale ACKs, AE/AR policy. (Compatibility with an MLLP server
//! nobody here wrote is checked in the simulators' peer tests.)

use std::sync::atomic::Ordering;
use std::time::Duration;

use medbus_adapters::hl7::ack::AckCode;
use medbus_adapters::hl7::sender::{MllpSender, OnError, SendError, SenderConfig};
use tokio_util::sync::CancellationToken;

mod support;

use support::{server, Reply};

fn msg(id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|MEDBUS|H|EMR|H|2024||ADT^A08|{id}|P|2.5\rPID|1||42\r").into_bytes()
}

fn cfg(addr: &str) -> SenderConfig {
    SenderConfig {
        ack_timeout: Duration::from_millis(300),
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        ..SenderConfig::new(addr)
    }
}

#[tokio::test]
async fn delivers_in_order_over_one_connection() {
    let s = server(|_| Reply::Accept).await;
    let mut sender = MllpSender::new(cfg(&s.addr));
    let stop = CancellationToken::new();
    for i in 0..50 {
        let ack = sender.deliver(&msg(&format!("M{i}")), &stop).await.unwrap();
        assert_eq!(ack.code, "AA");
    }
    let expected: Vec<String> = (0..50).map(|i| format!("M{i}")).collect();
    assert_eq!(*s.received.lock().unwrap(), expected);
    assert_eq!(s.connections.load(Ordering::SeqCst), 1, "the connection is reused");
}

#[tokio::test]
async fn reconnects_after_a_hangup_and_after_a_missing_ack() {
    let s = server(|n| match n {
        1 => Reply::Hangup,
        3 => Reply::Silent,
        _ => Reply::Accept,
    })
    .await;
    let mut sender = MllpSender::new(cfg(&s.addr));
    let stop = CancellationToken::new();
    for id in ["A", "B", "C"] {
        assert!(sender.deliver(&msg(id), &stop).await.unwrap().is_accept());
    }
    // B was sent twice (hangup), C twice (no ACK), nothing out of order.
    assert_eq!(*s.received.lock().unwrap(), ["A", "B", "B", "C", "C"]);
    assert_eq!(s.connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_stale_ack_is_not_taken_for_this_message() {
    let s = server(|_| Reply::StaleThenAccept).await;
    let mut sender = MllpSender::new(cfg(&s.addr));
    let ack = sender.send(&msg("X1")).await.unwrap();
    assert_eq!(ack.code, "AA");
    let ack = sender.send(&msg("X2")).await.unwrap();
    assert_eq!(ack.code, "AA");
    assert_eq!(s.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn ae_dead_letters_and_ar_retries_by_default() {
    let s = server(|n| match n {
        0 => Reply::Code(AckCode::AE),
        1 => Reply::Code(AckCode::AR),
        _ => Reply::Accept,
    })
    .await;
    let mut sender = MllpSender::new(cfg(&s.addr));
    let stop = CancellationToken::new();
    match sender.deliver(&msg("E1"), &stop).await {
        Err(SendError::Refused(ack)) => {
            assert_eq!(ack.code, "AE");
            assert_eq!(ack.text.as_deref(), Some("downstream says no"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        sender.deliver(&msg("R1"), &stop).await.unwrap().is_accept(),
        "AR then AA"
    );
    assert_eq!(*s.received.lock().unwrap(), ["E1", "R1", "R1"]);
}

#[tokio::test]
async fn ae_can_be_retried_by_policy_and_shutdown_stops_retrying() {
    let s = server(|_| Reply::Code(AckCode::AE)).await;
    let mut sender = MllpSender::new(SenderConfig {
        on_ae: OnError::Retry,
        ..cfg(&s.addr)
    });
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stopper.cancel();
    });
    assert!(matches!(
        sender.deliver(&msg("E2"), &stop).await,
        Err(SendError::Shutdown)
    ));
    assert!(s.received.lock().unwrap().len() >= 2, "it retried");
}

#[tokio::test]
async fn nobody_listening_is_a_retryable_connect_error_and_bad_messages_are_not() {
    let port = medbus_testkit::free_port();
    let mut sender = MllpSender::new(cfg(&format!("127.0.0.1:{port}")));
    let err = sender.send(&msg("N1")).await.unwrap_err();
    assert!(matches!(err, SendError::Connect { .. }) && err.is_retryable(), "{err}");
    let err = sender.send(b"not hl7").await.unwrap_err();
    assert!(matches!(err, SendError::BadMessage(_)) && !err.is_retryable(), "{err}");
}
