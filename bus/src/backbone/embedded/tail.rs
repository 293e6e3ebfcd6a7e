//! Read-only tails of the embedded log: the index is scanned from a position
//! under the state lock, the frames are read outside it. No consumer state is
//! kept, so a tail that goes away leaves nothing to clean up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::consumer::read_frames;
use super::filter::Filter;
use super::log::{self, Frame, Record};
use super::state::{after, Picked};
use super::Link;
use crate::backbone::{BackboneError, Headers, StoredMessage, Tail};

/// Most index entries looked at per lock: a tail far behind, with a filter
/// that matches little, must not hold up publishes while it scans.
const SCAN_LIMIT: usize = 4096;

/// A tail over the messages matching `filter`, after sequence `pos`.
pub(crate) struct EmbeddedTail {
    pub(super) link: Arc<Link>,
    pub(super) filter: Filter,
    /// Highest sequence already looked at (returned or skipped).
    pub(super) pos: u64,
}

#[async_trait]
impl Tail for EmbeddedTail {
    async fn next(&mut self, max: usize, wait: Duration) -> Result<Vec<StoredMessage>, BackboneError> {
        let give_up = after(Instant::now(), wait);
        let link = self.link.clone();
        loop {
            link.core.usable()?;
            // Registered before looking, so a publish in between still wakes us.
            let published = link.core.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let (picked, more) = self.pick(max.max(1));
            if !picked.is_empty() {
                return read(picked).await;
            }
            if more {
                // Let the writer and consumers have the lock between long scans.
                tokio::task::yield_now().await;
                continue;
            }
            if Instant::now() >= give_up {
                return Ok(Vec::new());
            }
            tokio::select! {
                _ = &mut published => {}
                _ = tokio::time::sleep_until(give_up.into()) => {}
            }
        }
    }
}

impl EmbeddedTail {
    /// Up to `max` matching messages after `pos`, looking at no more than
    /// [`SCAN_LIMIT`] entries under the lock; moves `pos` past everything scanned.
    /// True with the messages when the scan stopped at the limit.
    fn pick(&mut self, max: usize) -> (Vec<Picked>, bool) {
        let st = self.link.core.lock();
        let mut out = Vec::new();
        for (scanned, (&seq, meta)) in st.index.range(self.pos + 1..).enumerate() {
            if out.len() >= max {
                break;
            }
            if scanned >= SCAN_LIMIT {
                return (out, true);
            }
            self.pos = seq;
            if !self.filter.matches(&meta.subject) {
                continue;
            }
            let Some(seg) = st.segments.get(&meta.segment) else {
                continue;
            };
            out.push(Picked {
                seq,
                delivered: 0,
                file: seg.file.clone(),
                segment: meta.segment,
                offset: meta.offset,
                len: meta.len,
            });
        }
        (out, false)
    }
}

/// Reads and decodes the picked frames off disk, on the blocking pool.
async fn read(picked: Vec<Picked>) -> Result<Vec<StoredMessage>, BackboneError> {
    let frames = tokio::task::spawn_blocking(move || read_frames(picked))
        .await
        .map_err(|e| BackboneError::Storage(format!("embedded log read task failed: {e}")))??;
    let mut out = Vec::with_capacity(frames.len());
    for (p, frame) in frames {
        let corrupt = |why: &str| {
            BackboneError::Storage(format!(
                "embedded log segment {} offset {}: record of sequence {} is corrupt: {why}",
                p.segment, p.offset, p.seq
            ))
        };
        let Frame::Ok { body, .. } = log::parse_frame(&frame, 0) else {
            return Err(corrupt("bad frame"));
        };
        let Record::Publish(m) = log::decode(body).map_err(|e| corrupt(&e))? else {
            return Err(corrupt("not a published message"));
        };
        let headers: Headers = m.headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        out.push(StoredMessage {
            subject: m.subject.to_string(),
            headers,
            payload: frame.slice_ref(m.payload),
            sequence: p.seq,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use crate::backbone::{Backbone, Headers, Outgoing};
    use crate::config::{BackboneConfig, SyncPolicy};

    #[tokio::test]
    async fn a_rare_match_far_behind_is_found_across_scan_limits() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = BackboneConfig {
            sync: SyncPolicy::Os,
            ..Default::default()
        };
        let bb = super::super::EmbeddedBackbone::open(dir.path(), &cfg).await.unwrap();
        let n = super::SCAN_LIMIT * 2 + 10;
        let publish = |i: usize, subject: &str| Outgoing {
            subject: subject.into(),
            dedupe_id: format!("m{i}"),
            headers: Headers::new(),
            payload: Bytes::from(i.to_string()),
        };
        for chunk in (0..n).collect::<Vec<_>>().chunks(512) {
            let all = chunk.iter().map(|&i| bb.publish(publish(i, "medbus.events.a.x")));
            for r in futures::future::join_all(all).await {
                r.unwrap();
            }
        }
        let rare = bb.publish(publish(n, "medbus.events.b.y")).await.unwrap().sequence;
        let mut tail = bb.open_tail("medbus.events.b.>", Some(0)).await.unwrap();
        let got = tail.next(10, Duration::from_secs(5)).await.unwrap();
        assert_eq!(got.iter().map(|m| m.sequence).collect::<Vec<_>>(), [rare]);
        assert!(tail.next(10, Duration::from_millis(100)).await.unwrap().is_empty());
        bb.close().await.unwrap();
    }
}
