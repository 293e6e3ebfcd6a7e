//! Instances given back at shutdown, recorded so that a restart does not count
//! against them.
//!
//! The backbone counts every delivery, and cannot tell a delivery given back at
//! shutdown from one whose handler crashed or hung. The forwarder retries in
//! place with its own attempt count (`max_attempts`), so the backbone's count
//! only matters as the guard against a handler that crashes or hangs on the
//! same instance every time (`backbone.max_deliver`). Its consumer therefore
//! runs with no backbone limit, and the guard is applied here instead: at
//! shutdown the sequences in hand are published, in one record, on
//! `medbus.egress.dicom-handback.<destination>`; a delivery that comes again
//! counts only the earlier deliveries that were *not* given back, and is
//! dead-lettered when `max_deliver` of those went unsettled, as the backbone
//! would have done.
//!
//! A record that cannot be published (backbone unavailable at shutdown) leaves
//! that hand-back counted, as before. Records are read only when a delivery
//! comes again, so the first delivery of each instance costs nothing.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use medbus_bus::backbone::{BackboneError, Headers, Outgoing, SharedBackbone, Tail};

/// Record header: the sequences given back, comma-separated.
pub const SEQUENCES: &str = "Medbus-Dicom-Handback-Sequences";

/// How long the first read of the records (catching up from the start) waits for more
/// before taking what it has; later reads only take what is there.
const FIRST_READ_WAIT: Duration = Duration::from_secs(1);
const LATER_READ_WAIT: Duration = Duration::from_millis(10);

/// Longest wait for a record to be stored at shutdown.
const PUBLISH_LIMIT: Duration = Duration::from_secs(5);

/// The subject of destination `destination`'s records.
pub(super) fn subject(destination: &str) -> String {
    format!("medbus.egress.dicom-handback.{destination}")
}

/// Hand-backs per sequence, read from the records.
pub(super) struct Handbacks {
    subject: String,
    tail: Option<Box<dyn Tail>>,
    count: HashMap<u64, u32>,
}

impl Handbacks {
    /// Nothing read yet: the records are read when a delivery first comes again.
    pub(super) fn new(destination: &str) -> Self {
        Handbacks {
            subject: subject(destination),
            tail: None,
            count: HashMap::new(),
        }
    }

    /// How often `sequence` was given back at shutdown, reading any new records first.
    pub(super) async fn of(&mut self, backbone: &SharedBackbone, sequence: u64) -> Result<u32, BackboneError> {
        self.read(backbone).await?;
        Ok(self.count.get(&sequence).copied().unwrap_or(0))
    }

    async fn read(&mut self, backbone: &SharedBackbone) -> Result<(), BackboneError> {
        let (tail, wait) = match &mut self.tail {
            Some(t) => (t, LATER_READ_WAIT),
            None => (
                self.tail.insert(backbone.open_tail(&self.subject, Some(0)).await?),
                FIRST_READ_WAIT,
            ),
        };
        loop {
            let batch = match tail.next(256, wait).await {
                Ok(b) => b,
                Err(e) => {
                    // Reopen from the start next time: a tail that failed may have skipped.
                    self.tail = None;
                    self.count.clear();
                    return Err(e);
                }
            };
            if batch.is_empty() {
                return Ok(());
            }
            for m in batch {
                let listed = m.headers.get(SEQUENCES).map(String::as_str).unwrap_or("");
                for seq in listed.split(',').filter_map(|s| s.trim().parse::<u64>().ok()) {
                    *self.count.entry(seq).or_default() += 1;
                }
            }
        }
    }
}

/// Records that `sequences` are given back at shutdown (best effort, bounded in time).
pub(super) async fn record(
    backbone: &SharedBackbone,
    destination: &str,
    sequences: &[u64],
) -> Result<(), BackboneError> {
    let listed = sequences.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let msg = Outgoing {
        subject: subject(destination),
        // Unique per shutdown: two shutdowns with the same deliveries in hand are two records.
        dedupe_id: format!("dicom-handback-{destination}-{nanos}-{}", sequences.len()),
        headers: Headers::from([(SEQUENCES.to_string(), listed)]),
        payload: Bytes::new(),
    };
    match tokio::time::timeout(PUBLISH_LIMIT, backbone.publish(msg)).await {
        Err(_) => Err(BackboneError::Unknown(format!(
            "no durable ack within {PUBLISH_LIMIT:?}"
        ))),
        Ok(r) => r.map(|_| ()),
    }
}
