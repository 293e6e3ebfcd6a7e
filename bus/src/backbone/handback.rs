//! Deliveries given back at shutdown, recorded so that a restart does not
//! count against them: the crash guard of a destination that retries in place.
//!
//! The backbone counts every delivery, and cannot tell a delivery given back at
//! shutdown from one whose handler crashed or hung. A destination that retries
//! in place (its receiver down for hours) is given its messages again after
//! each restart, so the backbone's `max_deliver` would dead-letter them after a
//! few restarts during one outage, out of order. Such a destination's consumer
//! runs with [`NO_BACKBONE_LIMIT`] and applies the guard itself
//! ([`CrashGuard`]): at shutdown the sequences in hand are published, in one
//! record, on a subject of its own; a delivery that comes again counts only the
//! earlier deliveries that were *not* given back, and is dead-lettered when
//! `max_deliver` of those went unsettled, as the backbone would have done.
//!
//! A record that cannot be published (backbone unavailable at shutdown) leaves
//! that hand-back counted, as before. Records are read only when a delivery
//! comes again, so the first delivery of each message costs nothing.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::Mutex;

use super::{BackboneError, Delivery, Headers, Outgoing, SharedBackbone, Tail};
use crate::subjects::Subject;

/// Record header: the sequences given back, comma-separated.
pub const SEQUENCES: &str = "Medbus-Dicom-Handback-Sequences";

/// A consumer's own `max_deliver` when [`CrashGuard`] applies the limit: none.
/// One below `u32::MAX` because the backbones allow one more delivery than this.
pub const NO_BACKBONE_LIMIT: u32 = u32::MAX - 1;

/// How long the first read of the records (catching up from the start) waits for more
/// before taking what it has; later reads only take what is there.
const FIRST_READ_WAIT: Duration = Duration::from_secs(1);
const LATER_READ_WAIT: Duration = Duration::from_millis(10);

/// Longest wait for a record to be stored at shutdown.
const PUBLISH_LIMIT: Duration = Duration::from_secs(5);

/// Hand-backs per sequence, read from the records.
struct Handbacks {
    subject: String,
    tail: Option<Box<dyn Tail>>,
    count: HashMap<u64, u32>,
}

impl Handbacks {
    /// Nothing read yet: the records are read when a delivery first comes again.
    fn new(subject: String) -> Self {
        Handbacks {
            subject,
            tail: None,
            count: HashMap::new(),
        }
    }

    /// How often `sequence` was given back at shutdown, reading any new records first.
    async fn of(&mut self, backbone: &SharedBackbone, sequence: u64) -> Result<u32, BackboneError> {
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
async fn record(backbone: &SharedBackbone, subject: &str, sequences: &[u64]) -> Result<(), BackboneError> {
    let listed = sequences.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let msg = Outgoing {
        subject: subject.to_string(),
        // Unique per shutdown: two shutdowns with the same deliveries in hand are two records.
        dedupe_id: format!("handback-{subject}-{nanos}-{}", sequences.len()),
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

/// The crash guard of one destination: its hand-back records and `max_deliver`.
pub struct CrashGuard {
    name: String,
    subject: String,
    max_deliver: u32,
    handbacks: Mutex<Handbacks>,
}

impl CrashGuard {
    /// The guard of destination `name` of `kind` (`hl7v2`, `fhir`, `dicom`,
    /// `webhook`), keeping its records on `medbus.egress.<kind>-handback.<name>`
    /// (a subject no consumer of messages to deliver reads) and dead-lettering
    /// after `max_deliver` unsettled deliveries. Invalid when `kind` or `name`
    /// is not a subject token.
    pub fn new(kind: &str, name: &str, max_deliver: u32) -> Result<Self, BackboneError> {
        let subject = Subject::egress(&format!("{kind}-handback"), name)
            .map_err(|e| BackboneError::Invalid(format!("{kind} destination {name}: {e}")))?
            .to_string();
        Ok(CrashGuard {
            name: name.to_string(),
            handbacks: Mutex::new(Handbacks::new(subject.clone())),
            subject,
            max_deliver,
        })
    }

    /// The dead-letter reason when `d` has been delivered `max_deliver` times
    /// before without being settled or given back at shutdown: the destination
    /// crashed or hung on it (or on the message ahead of it) each time.
    pub async fn crashed_too_often(&self, backbone: &SharedBackbone, d: &Delivery) -> Option<String> {
        let earlier = d.delivered.saturating_sub(1);
        if earlier < self.max_deliver {
            return None;
        }
        let given_back = match self.handbacks.lock().await.of(backbone, d.sequence).await {
            Ok(n) => n,
            Err(e) => {
                // Unknown: sending it is safer than dead-lettering a message that may only
                // have waited through restarts. The check runs again on its next delivery.
                tracing::warn!(destination = %self.name, error = %e, "shutdown hand-backs unreadable: crash guard skipped");
                return None;
            }
        };
        let unsettled = earlier.saturating_sub(given_back);
        (unsettled >= self.max_deliver).then(|| {
            format!(
                "not settled after {unsettled} deliveries (the destination crashed or hung each time; \
                 {given_back} given back at shutdown not counted)"
            )
        })
    }

    /// At shutdown: records that `held` are given back (first, so the next
    /// delivery of each is not taken for a crash), then gives them back at once
    /// rather than after the ack wait.
    pub async fn give_back(&self, backbone: &SharedBackbone, held: impl IntoIterator<Item = Delivery>) {
        let held: Vec<Delivery> = held.into_iter().collect();
        let sequences: Vec<u64> = held.iter().map(|d| d.sequence).collect();
        if let Err(e) = record(backbone, &self.subject, &sequences).await {
            tracing::warn!(destination = %self.name, error = %e, "shutdown hand-back not recorded: it counts as a delivery");
        }
        for d in held {
            let _ = d.nak(Duration::ZERO, "shutting down").await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_go_on_the_kinds_own_egress_subject_and_bad_names_are_refused() {
        let guard = CrashGuard::new("hl7v2", "lab", 5).unwrap();
        assert_eq!(guard.subject, "medbus.egress.hl7v2-handback.lab");
        for (kind, name) in [("hl7v2", "a.b"), ("fhir", ""), ("webhook", "x>"), ("dic om", "pacs")] {
            assert!(CrashGuard::new(kind, name, 5).is_err(), "{kind:?} {name:?} accepted");
        }
    }
}
