//! Tests of the embedded backbone beyond the conformance suite: crash recovery,
//! corruption, compaction, retention and pacing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{EmbeddedBackbone, EmbeddedOptions};
use crate::backbone::{open_consumer, BackboneError, Consumer, ConsumerSpec, Delivery, Outgoing, SharedBackbone};
use crate::config::BackboneConfig;

fn cfg() -> BackboneConfig {
    BackboneConfig {
        ack_wait: Duration::from_secs(1),
        max_deliver: 3,
        ..BackboneConfig::default()
    }
}

async fn open(dir: &Path, cfg: &BackboneConfig, opts: EmbeddedOptions) -> Result<SharedBackbone, BackboneError> {
    Ok(Arc::new(EmbeddedBackbone::open_with(dir, cfg, opts).await?))
}

fn small_segments() -> EmbeddedOptions {
    EmbeddedOptions {
        segment_bytes: 16 << 10,
        tick: Duration::from_millis(50),
        compact_interval: Duration::from_millis(100),
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

fn msg(subject: &str, id: &str) -> Outgoing {
    Outgoing {
        subject: subject.into(),
        dedupe_id: id.into(),
        headers: [("K".to_string(), id.to_string())].into_iter().collect(),
        payload: Bytes::from(format!("payload of {id} {}", "x".repeat(200))),
    }
}

async fn publish_n(bb: &SharedBackbone, subject: &str, prefix: &str, n: usize) -> Vec<u64> {
    let mut seqs = Vec::new();
    for i in 0..n {
        let r = bb.publish(msg(subject, &format!("{prefix}{i}"))).await.unwrap();
        assert!(!r.duplicate);
        seqs.push(r.sequence);
    }
    seqs
}

async fn consumer(bb: &SharedBackbone, name: &str, filter: &str) -> Consumer {
    open_consumer(bb, ConsumerSpec::new(name, filter, &cfg()))
        .await
        .unwrap()
}

/// Everything deliverable now (stops at the first empty fetch of `wait`).
async fn drain(c: &mut Consumer, wait: Duration) -> Vec<Delivery> {
    let mut out = Vec::new();
    loop {
        let batch = c.fetch(1000, wait).await.unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

fn ids(ds: &[Delivery]) -> Vec<String> {
    ds.iter().map(|d| d.dedupe_id.clone().unwrap_or_default()).collect()
}

fn names(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test]
async fn crash_copy_keeps_every_acknowledged_publish() {
    let dir = tempfile::tempdir().unwrap();
    let bb = open(dir.path(), &cfg(), small_segments()).await.unwrap();
    publish_n(&bb, "medbus.ingress.hl7v2.adt", "m", 300).await;
    // What a kill -9 leaves: the files as they are now, with no close. Plus half a
    // frame appended, as a crash in the middle of a write would leave.
    let copy = tempfile::tempdir().unwrap();
    for p in segments(dir.path()) {
        std::fs::copy(&p, copy.path().join(p.file_name().unwrap())).unwrap();
    }
    let last = segments(copy.path()).pop().unwrap();
    let good_len = std::fs::metadata(&last).unwrap().len();
    let mut torn = Vec::new();
    super::log::encode_publish(&mut torn, 301, 1, &msg("medbus.ingress.hl7v2.adt", "torn"));
    let mut data = std::fs::read(&last).unwrap();
    data.extend_from_slice(&torn[..torn.len() / 2]);
    std::fs::write(&last, data).unwrap();

    let bb2 = open(copy.path(), &cfg(), small_segments()).await.unwrap();
    assert_eq!(std::fs::metadata(&last).unwrap().len(), good_len, "torn tail cut");
    let mut c = consumer(&bb2, "all", "medbus.ingress.>").await;
    let got = drain(&mut c, Duration::from_millis(200)).await;
    assert_eq!(ids(&got), names("m", 0..300));
    assert!(got.iter().all(|d| d.headers.get("K") == d.dedupe_id.as_ref()));
    // Numbering continues after the recovered messages.
    let next = bb2.publish(msg("medbus.ingress.hl7v2.adt", "after")).await.unwrap();
    assert_eq!(next.sequence, 301);
    bb.close().await.unwrap();
    bb2.close().await.unwrap();
}

#[tokio::test]
async fn corruption_before_the_tail_is_reported_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let bb = open(dir.path(), &cfg(), small_segments()).await.unwrap();
    publish_n(&bb, "medbus.ingress.hl7v2.adt", "m", 200).await;
    bb.close().await.unwrap();
    let segs = segments(dir.path());
    assert!(segs.len() >= 3, "{segs:?}");
    let victim = &segs[1];
    let mut data = std::fs::read(victim).unwrap();
    let at = data.len() / 2;
    data[at] ^= 0xff;
    std::fs::write(victim, data).unwrap();
    let err = open(dir.path(), &cfg(), small_segments())
        .await
        .err()
        .expect("must refuse");
    let text = err.to_string();
    assert!(matches!(err, BackboneError::Storage(_)), "{err:?}");
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    assert!(text.contains(&name) && text.contains("offset"), "{text}");
}

#[tokio::test]
async fn consumer_position_and_sequence_survive_reopen_and_counts_restart() {
    let dir = tempfile::tempdir().unwrap();
    let bb = open(dir.path(), &cfg(), EmbeddedOptions::default()).await.unwrap();
    publish_n(&bb, "medbus.events.order.placed", "o", 6).await;
    let mut c = consumer(&bb, "orders", "medbus.events.>").await;
    let got = drain(&mut c, Duration::from_millis(100)).await;
    assert_eq!(got.len(), 6);
    let mut it = got.into_iter();
    for d in it.by_ref().take(2) {
        d.ack().await.unwrap();
    }
    // o2 is termed, o3..o5 stay unacked (in flight when we close).
    it.next().unwrap().reject("bad").await.unwrap();
    drop(it);
    drop(c);
    bb.close().await.unwrap();
    assert!(matches!(bb.check().await, Err(BackboneError::Closed)));

    let bb = open(dir.path(), &cfg(), EmbeddedOptions::default()).await.unwrap();
    let mut c = consumer(&bb, "orders", "medbus.events.>").await;
    let t0 = Instant::now();
    let got = drain(&mut c, Duration::from_millis(100)).await;
    // Delivery counts are memory only: the in-flight ones come back at once, from 1.
    assert!(t0.elapsed() < Duration::from_millis(900));
    let dl: Vec<_> = got.iter().map(|d| d.delivered).collect();
    assert_eq!((ids(&got), dl), (names("o", 3..6), vec![1, 1, 1]));
    let dlq = drain(
        &mut consumer(&bb, "dlq", "medbus.dlq.>").await,
        Duration::from_millis(100),
    )
    .await;
    assert_eq!(ids(&dlq).len(), 1, "the reject's dead letter survived too");
    let r = bb.publish(msg("medbus.events.order.placed", "o6")).await.unwrap();
    assert_eq!(r.sequence, 8, "6 orders + 1 dead letter before it");
    bb.close().await.unwrap();
}

#[tokio::test]
async fn compaction_deletes_and_rewrites_segments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BackboneConfig {
        duplicate_window: Duration::from_millis(100),
        ..cfg()
    };
    let bb = open(dir.path(), &cfg, small_segments()).await.unwrap();
    let mut c = consumer(&bb, "work", "medbus.ingress.>").await;
    // One in ten is a dead letter nobody consumes: it must survive compaction.
    for i in 0..400 {
        bb.publish(msg("medbus.ingress.hl7v2.adt", &format!("w{i}")))
            .await
            .unwrap();
        if i % 40 == 0 {
            bb.publish(msg("medbus.dlq.router", &format!("d{i}"))).await.unwrap();
        }
    }
    let before: u64 = segments(dir.path()).iter().map(|p| p.metadata().unwrap().len()).sum();
    let got = drain(&mut c, Duration::from_millis(100)).await;
    assert_eq!(got.len(), 400);
    for d in got {
        d.ack().await.unwrap();
    }
    // Wait for the duplicate window to pass and a compaction to run.
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let after: u64 = segments(dir.path()).iter().map(|p| p.metadata().unwrap().len()).sum();
        if after * 4 < before || Instant::now() > deadline {
            break after;
        }
    };
    assert!(after * 4 < before, "log did not shrink: {before} -> {after} bytes");
    bb.close().await.unwrap();

    let bb = open(dir.path(), &cfg, small_segments()).await.unwrap();
    let mut c = consumer(&bb, "work", "medbus.ingress.>").await;
    assert!(
        drain(&mut c, Duration::from_millis(200)).await.is_empty(),
        "acked stay acked"
    );
    let mut dlq = consumer(&bb, "ops", "medbus.dlq.>").await;
    let dead = drain(&mut dlq, Duration::from_millis(200)).await;
    assert_eq!(ids(&dead), (0..10).map(|i| format!("d{}", i * 40)).collect::<Vec<_>>());
    assert!(dead.iter().all(|d| d.payload.starts_with(b"payload of d")));
    let r = bb.publish(msg("medbus.ingress.hl7v2.adt", "w0")).await.unwrap();
    assert!(!r.duplicate, "outside the (short) duplicate window");
    assert_eq!(r.sequence, 411, "numbering survives compaction");
    bb.close().await.unwrap();
}

#[tokio::test]
async fn messages_past_max_age_expire_and_duplicates_expire_with_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BackboneConfig {
        max_age: Duration::from_millis(300),
        duplicate_window: Duration::from_millis(300),
        ..cfg()
    };
    let opts = small_segments();
    let bb = open(dir.path(), &cfg, opts).await.unwrap();
    let first = bb.publish(msg("medbus.events.order.placed", "e1")).await.unwrap();
    assert!(
        bb.publish(msg("medbus.events.order.placed", "e1"))
            .await
            .unwrap()
            .duplicate
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again = bb.publish(msg("medbus.events.order.placed", "e1")).await.unwrap();
    assert!(!again.duplicate && again.sequence > first.sequence, "{again:?}");
    let mut c = consumer(&bb, "late", "medbus.events.>").await;
    let got = drain(&mut c, Duration::from_millis(100)).await;
    assert_eq!(got.iter().map(|d| d.sequence).collect::<Vec<_>>(), [again.sequence]);
    bb.close().await.unwrap();
}

#[tokio::test]
async fn max_ack_pending_paces_and_an_ack_wakes_a_waiting_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let bb = open(dir.path(), &cfg(), EmbeddedOptions::default()).await.unwrap();
    publish_n(&bb, "medbus.events.order.placed", "p", 5).await;
    let mut spec = ConsumerSpec::new("paced", "medbus.events.>", &cfg());
    spec.max_ack_pending = 2;
    let mut c = open_consumer(&bb, spec).await.unwrap();
    let first = c.fetch(10, Duration::from_millis(100)).await.unwrap();
    assert_eq!(ids(&first), names("p", 0..2));
    let mut first = first.into_iter();
    let d = first.next().unwrap();
    let acker = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        d.ack().await.unwrap();
    });
    let t0 = Instant::now();
    let next = c.fetch(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(ids(&next), ["p2"]);
    assert!(t0.elapsed() < Duration::from_millis(900), "{:?}", t0.elapsed());
    acker.await.unwrap();

    // A fetch waiting on an empty consumer wakes on a publish, well before its wait.
    let mut other = consumer(&bb, "waiter", "medbus.ingress.>").await;
    let pubr = bb.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        pubr.publish(msg("medbus.ingress.mllp.x", "late")).await.unwrap();
    });
    let t0 = Instant::now();
    let got = other.fetch(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(ids(&got), ["late"]);
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    bb.close().await.unwrap();
}

#[tokio::test]
async fn two_bindings_of_one_name_share_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let bb = open(dir.path(), &cfg(), EmbeddedOptions::default()).await.unwrap();
    publish_n(&bb, "medbus.events.order.placed", "s", 10).await;
    let mut a = consumer(&bb, "shared", "medbus.events.>").await;
    let mut b = consumer(&bb, "shared", "medbus.events.>").await;
    let ga = a.fetch(4, Duration::from_millis(100)).await.unwrap();
    let gb = drain(&mut b, Duration::from_millis(100)).await;
    assert_eq!(ids(&ga), names("s", 0..4));
    assert_eq!(ids(&gb), names("s", 4..10));
    // Extreme durations saturate instead of overflowing.
    bb.publish(msg("medbus.events.order.placed", "s10")).await.unwrap();
    let d = a.fetch(1, Duration::MAX).await.unwrap().pop().unwrap();
    d.nak(Duration::MAX, "much later").await.unwrap();
    bb.close().await.unwrap();
    assert!(matches!(a.fetch(1, Duration::ZERO).await, Err(BackboneError::Closed)));
}

#[tokio::test]
async fn bad_specs_and_subjects_are_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let bb = open(dir.path(), &cfg(), EmbeddedOptions::default()).await.unwrap();
    for filter in ["medbus..x", "medbus.>.x", "medbus.a*"] {
        let spec = ConsumerSpec::new("c", filter, &cfg());
        assert!(
            matches!(bb.bind_consumer(&spec).await, Err(BackboneError::Invalid(_))),
            "{filter}"
        );
    }
    for subject in ["other.thing", "medbus.ingress.a.>", "medbus..a", "medbus.events.a b"] {
        let err = bb.publish(msg(subject, "x")).await.unwrap_err();
        assert!(matches!(err, BackboneError::Invalid(_)), "{subject}: {err:?}");
    }
    let r = bb.publish(msg("medbus.events.order.placed", "ok")).await.unwrap();
    assert_eq!((r.stream.as_str(), r.sequence), ("MEDBUS_EVENTS", 1));
    bb.close().await.unwrap();
    assert!(matches!(bb.close().await, Err(BackboneError::Closed)));
}

#[tokio::test]
async fn a_failed_write_fails_publishes_and_readiness_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let bb = open(dir.path(), &cfg(), EmbeddedOptions::default()).await.unwrap();
    bb.publish(msg("medbus.ingress.hl7v2.adt", "good")).await.unwrap();
    bb.check().await.unwrap();
    std::fs::write(dir.path().join("inject-write-failure"), b"").unwrap();
    let err = bb.publish(msg("medbus.ingress.hl7v2.adt", "lost")).await.unwrap_err();
    assert!(
        matches!(&err, BackboneError::Storage(s) if s.contains("injected")),
        "{err:?}"
    );
    assert!(matches!(bb.check().await, Err(BackboneError::Storage(_))));
    std::fs::remove_file(dir.path().join("inject-write-failure")).unwrap();
    // Still refused: after a failed write the tail cannot be trusted until a reopen.
    let err = bb.publish(msg("medbus.ingress.hl7v2.adt", "after")).await.unwrap_err();
    assert!(matches!(err, BackboneError::Storage(_)), "{err:?}");
    let closed = tokio::time::timeout(Duration::from_secs(5), bb.close()).await;
    assert!(closed.is_ok(), "close of a failed log must not hang");

    let bb = open(dir.path(), &cfg(), EmbeddedOptions::default()).await.unwrap();
    let mut c = consumer(&bb, "all", "medbus.ingress.>").await;
    assert_eq!(ids(&drain(&mut c, Duration::from_millis(100)).await), ["good"]);
    bb.close().await.unwrap();
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused_until_close() {
    let dir = tempfile::tempdir().unwrap();
    use crate::backbone::Backbone;
    let cfg = crate::config::BackboneConfig::default();
    let first = super::EmbeddedBackbone::open(dir.path(), &cfg).await.unwrap();
    let err = super::EmbeddedBackbone::open(dir.path(), &cfg)
        .await
        .err()
        .expect("second open refused");
    assert!(err.to_string().contains("in use by another medbus process"), "{err}");
    first.close().await.unwrap();
    let again = super::EmbeddedBackbone::open(dir.path(), &cfg).await.unwrap();
    again.close().await.unwrap();
}
