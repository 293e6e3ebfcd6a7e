//! Durable consumers of the embedded log: choosing deliveries happens in memory
//! under the state lock; reading them happens outside it, on the blocking pool.

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use super::log::{self, Frame, Record};
use super::state::{after, Picked};
use super::writer::Request;
use super::Link;
use crate::backbone::{AckHandle, BackboneError, ConsumerSource, Delivery, Headers};

/// A bound durable consumer. Several may be bound to one name: they share its
/// position, and each message goes to one of them.
pub(crate) struct EmbeddedSource {
    pub(super) link: Arc<Link>,
    pub(super) id: u32,
    pub(super) notify: Arc<Notify>,
}

#[async_trait]
impl ConsumerSource for EmbeddedSource {
    async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BackboneError> {
        let give_up = after(Instant::now(), wait);
        loop {
            self.link.core.usable()?;
            // Registered before looking, so a publish or ack in between still wakes us.
            let published = self.link.core.published.notified();
            let settled = self.notify.notified();
            tokio::pin!(published, settled);
            published.as_mut().enable();
            settled.as_mut().enable();
            if max == 0 {
                return Ok(Vec::new());
            }
            let mut exhausted = Vec::new();
            let (picked, wake) = self
                .link
                .core
                .lock()
                .pick(self.id, max, Instant::now(), &mut exhausted)?;
            for seq in exhausted {
                // Delivered max_deliver + 1 times and still not settled: never again.
                self.link.send(Request::Settle {
                    consumer: self.id,
                    seq,
                    term: true,
                })?;
            }
            if !picked.is_empty() {
                return self.read(picked).await;
            }
            let now = Instant::now();
            if now >= give_up {
                return Ok(Vec::new());
            }
            let until = wake.map_or(give_up, |w| w.min(give_up));
            tokio::select! {
                _ = &mut published => {}
                _ = &mut settled => {}
                _ = tokio::time::sleep_until(until.into()) => {}
            }
        }
    }
}

impl EmbeddedSource {
    /// Reads and decodes the chosen messages off disk.
    async fn read(&self, picked: Vec<Picked>) -> Result<Vec<Delivery>, BackboneError> {
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
            if m.seq != p.seq {
                return Err(corrupt(&format!("holds sequence {}", m.seq)));
            }
            let headers: Headers = m.headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let handle = EmbeddedAck {
                link: self.link.clone(),
                consumer: self.id,
                seq: p.seq,
                delivered: p.delivered,
            };
            out.push(Delivery::new(
                m.subject.to_string(),
                Some(m.dedupe_id.to_string()).filter(|s| !s.is_empty()),
                headers,
                frame.slice_ref(m.payload),
                p.seq,
                p.delivered,
                Box::new(handle),
            ));
        }
        Ok(out)
    }
}

/// Reads each picked frame, with one read for each run of adjacent frames.
pub(super) fn read_frames(picked: Vec<Picked>) -> Result<Vec<(Picked, Bytes)>, BackboneError> {
    let mut out = Vec::with_capacity(picked.len());
    let mut run: Vec<Picked> = Vec::new();
    for p in picked {
        if let Some(last) = run.last() {
            if !Arc::ptr_eq(&last.file, &p.file) || last.offset + u64::from(last.len) != p.offset {
                read_run(std::mem::take(&mut run), &mut out)?;
            }
        }
        run.push(p);
    }
    read_run(run, &mut out)?;
    Ok(out)
}

/// Reads frames that lie back to back in one file.
fn read_run(run: Vec<Picked>, out: &mut Vec<(Picked, Bytes)>) -> Result<(), BackboneError> {
    let (Some(first), Some(last)) = (run.first(), run.last()) else {
        return Ok(());
    };
    let base = first.offset;
    let mut buf = BytesMut::zeroed((last.offset + u64::from(last.len) - base) as usize);
    first.file.read_exact_at(&mut buf, base).map_err(|e| {
        BackboneError::Storage(format!(
            "cannot read embedded log segment {} at offset {base}: {e}",
            first.segment
        ))
    })?;
    let buf = buf.freeze();
    for p in run {
        let at = (p.offset - base) as usize;
        let frame = buf.slice(at..at + p.len as usize);
        out.push((p, frame));
    }
    Ok(())
}

/// Settles one delivery of the embedded log.
struct EmbeddedAck {
    link: Arc<Link>,
    consumer: u32,
    seq: u64,
    delivered: u32,
}

impl EmbeddedAck {
    fn settle(&self, term: bool) -> Result<(), BackboneError> {
        self.link.core.usable()?;
        // Applied in memory now, logged without waiting: losing the record in a
        // crash only means one more delivery (at least once).
        if self.link.core.lock().settle(self.consumer, self.seq) {
            self.link.send(Request::Settle {
                consumer: self.consumer,
                seq: self.seq,
                term,
            })?;
        }
        Ok(())
    }
}

#[async_trait]
impl AckHandle for EmbeddedAck {
    async fn ack(&self) -> Result<(), BackboneError> {
        self.settle(false)
    }

    async fn nak(&self, delay: Duration) -> Result<(), BackboneError> {
        self.link.core.usable()?;
        let due = after(Instant::now(), delay);
        self.link
            .core
            .lock()
            .reschedule(self.consumer, self.seq, self.delivered, |_| due);
        Ok(())
    }

    async fn term(&self) -> Result<(), BackboneError> {
        self.settle(true)
    }

    async fn in_progress(&self) -> Result<(), BackboneError> {
        self.link.core.usable()?;
        let now = Instant::now();
        self.link
            .core
            .lock()
            .reschedule(self.consumer, self.seq, self.delivered, |spec| {
                after(now, spec.ack_wait)
            });
        Ok(())
    }
}
