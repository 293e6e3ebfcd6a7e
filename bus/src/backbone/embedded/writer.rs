//! The single writer of the embedded log, on its own thread: it drains every
//! queued request, appends them with one write, syncs once (group commit), then
//! updates the index and answers each caller. Only it assigns sequences, so the
//! dedupe check and numbering need no lock.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::dedupe::DedupeWindow;
use super::log::{self, Record};
use super::recover::{segment_path, Recovered};
use super::state::{consumer_record, MsgMeta, SegmentInfo};
use super::{storage, unix_ms, Core, Settings};
use crate::backbone::{BackboneError, ConsumerSpec, Outgoing};
use crate::config::SyncPolicy;

/// Most requests taken into one batch.
const MAX_BATCH: usize = 4096;
/// Most payload bytes taken into one batch, so one batch cannot hold the disk for long.
const MAX_BATCH_BYTES: usize = 8 << 20;

/// What the writer is asked to do.
pub(crate) enum Request {
    /// Store a message; answers (sequence, duplicate).
    Publish {
        msg: Outgoing,
        reply: oneshot::Sender<Result<(u64, bool), BackboneError>>,
    },
    /// Create or update a consumer; answers its id once durable.
    Bind {
        spec: ConsumerSpec,
        reply: oneshot::Sender<Result<u32, BackboneError>>,
    },
    /// Log an ack or term already applied in memory (nobody waits: a lost one is a redelivery).
    Settle { consumer: u32, seq: u64, term: bool },
    /// Periodic expiry and compaction.
    Tick,
    /// Flush, sync and stop.
    Close {
        reply: oneshot::Sender<Result<(), BackboneError>>,
    },
}

/// An answer owed once the batch is durable.
enum Owed {
    Publish(oneshot::Sender<Result<(u64, bool), BackboneError>>, u64, bool),
    Bind(oneshot::Sender<Result<u32, BackboneError>>, u32),
}

/// The writer thread's state.
pub(crate) struct Writer {
    pub(super) core: Arc<Core>,
    pub(super) settings: Settings,
    dedupe: DedupeWindow,
    next_consumer: u32,
    pub(super) active_id: u64,
    active: File,
    active_len: u64,
    last_seq: u64,
    buf: Vec<u8>,
    pub(super) last_compaction: Instant,
}

/// Snapshot of everything a reader needs besides the messages: the last
/// sequence and each consumer's spec and settled set.
fn snapshot(core: &Core, last_seq: u64, buf: &mut Vec<u8>) {
    let st = core.lock();
    let mut n = 1;
    log::encode(buf, &Record::LastSeq(last_seq));
    let mut ids: Vec<_> = st.consumers.keys().copied().collect();
    ids.sort_unstable();
    for c in ids.iter().filter_map(|id| st.consumers.get(id)) {
        log::encode(buf, &Record::Consumer(consumer_record(c.id, &c.spec)));
        let floor = Record::Floor {
            consumer: c.id,
            floor: c.floor,
        };
        log::encode(buf, &floor);
        n += 2;
        for &seq in &c.acked {
            log::encode(buf, &Record::Ack { consumer: c.id, seq });
            n += 1;
        }
    }
    log::encode(buf, &Record::Commit { records: n });
}

/// Creates segment `id` opening with a snapshot, synced with its directory
/// entry, and registers it; returns the append handle and its length.
fn new_segment(core: &Core, dir: &Path, id: u64, last_seq: u64) -> std::io::Result<(File, u64)> {
    let mut snap = Vec::new();
    snapshot(core, last_seq, &mut snap);
    let path = segment_path(dir, id);
    let mut file = OpenOptions::new().create_new(true).append(true).open(&path)?;
    file.write_all(&snap)?;
    file.sync_data()?;
    sync_dir(dir)?;
    let reader = File::open(&path)?;
    let len = snap.len() as u64;
    let info = SegmentInfo::new(path, Arc::new(reader), len);
    core.lock().segments.insert(id, info);
    Ok((file, len))
}

/// Makes a create, rename or delete in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Writer {
    /// Starts a fresh segment after recovery. A new segment per open means the
    /// active segment always opens with a complete snapshot of consumer state,
    /// which is what lets compaction drop any older segment.
    pub fn start(core: Arc<Core>, settings: Settings, rec: Recovered) -> Result<Self, BackboneError> {
        let Recovered {
            state,
            dedupe,
            next_consumer,
            next_segment,
        } = rec;
        let last_seq = state.last_seq;
        *core.lock() = state;
        let (active, active_len) = new_segment(&core, &settings.dir, next_segment, last_seq)
            .map_err(|e| storage(format!("cannot create log segment {next_segment}"), e))?;
        Ok(Writer {
            core,
            active_id: next_segment,
            active,
            active_len,
            last_seq,
            dedupe,
            next_consumer,
            buf: Vec::with_capacity(1 << 20),
            last_compaction: Instant::now(),
            settings,
        })
    }

    /// Serves requests until closed or every sender is gone.
    pub fn run(mut self, mut rx: mpsc::UnboundedReceiver<Request>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let Some(first) = rx.blocking_recv() else {
                // Every handle dropped without close(): still leave the log synced.
                if let Err(e) = self.active.sync_data() {
                    tracing::error!(error = %e, "embedded log: final sync failed");
                }
                return;
            };
            let mut bytes = 0;
            batch.push(first);
            while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(r) => {
                        if let Request::Publish { msg, .. } = &r {
                            bytes += msg.payload.len();
                        }
                        batch.push(r);
                    }
                    Err(_) => break,
                }
            }
            if self.process(&mut batch) {
                break;
            }
        }
        // Closed: whatever was queued behind the close is refused.
        rx.close();
        while let Ok(r) = rx.try_recv() {
            refuse(r, BackboneError::Closed);
        }
    }

    /// Handles one batch; true when it held a close.
    fn process(&mut self, batch: &mut Vec<Request>) -> bool {
        if let Some(why) = self.core.failure() {
            // After a failed write nothing more is written: the tail may be torn.
            // A close still stops the thread (close() joins it).
            let closing = batch.iter().any(|r| matches!(r, Request::Close { .. }));
            batch
                .drain(..)
                .for_each(|r| refuse(r, BackboneError::Storage(why.clone())));
            return closing;
        }
        let now_ms = unix_ms();
        self.dedupe.expire(now_ms);
        self.buf.clear();
        let mut owed = Vec::with_capacity(batch.len());
        let mut new_msgs = Vec::new();
        let mut binds: Vec<(u32, ConsumerSpec)> = Vec::new();
        let (mut records, mut must_sync, mut tick) = (0u32, false, false);
        let mut close = None;
        let mut seq = self.last_seq;
        for req in batch.drain(..) {
            if close.is_some() {
                refuse(req, BackboneError::Closed);
                continue;
            }
            match req {
                Request::Publish { msg, reply } => {
                    if let Some(orig) = Some(&msg.dedupe_id)
                        .filter(|id| !id.is_empty())
                        .and_then(|id| self.dedupe.get(id))
                    {
                        owed.push(Owed::Publish(reply, orig, true));
                        continue;
                    }
                    seq += 1;
                    let (off, len) = log::encode_publish(&mut self.buf, seq, now_ms, &msg);
                    self.dedupe.insert(&msg.dedupe_id, seq, now_ms, now_ms);
                    new_msgs.push((seq, msg.subject, off as u64, len));
                    owed.push(Owed::Publish(reply, seq, false));
                    records += 1;
                    must_sync |= self.settings.sync == SyncPolicy::Always;
                }
                Request::Bind { spec, reply } => {
                    let known = binds.iter().rev().find(|(_, s)| s.name == spec.name).cloned();
                    let known = known.or_else(|| {
                        let st = self.core.lock();
                        let id = *st.names.get(&spec.name)?;
                        Some((id, st.consumers.get(&id)?.spec.clone()))
                    });
                    if let Some((id, old)) = &known {
                        if *old == spec {
                            owed.push(Owed::Bind(reply, *id));
                            continue;
                        }
                    }
                    let id = known.map(|(id, _)| id).unwrap_or_else(|| {
                        self.next_consumer += 1;
                        self.next_consumer - 1
                    });
                    log::encode(&mut self.buf, &Record::Consumer(consumer_record(id, &spec)));
                    binds.push((id, spec));
                    owed.push(Owed::Bind(reply, id));
                    records += 1;
                    must_sync |= self.settings.sync == SyncPolicy::Always;
                }
                Request::Settle { consumer, seq, term } => {
                    let rec = if term {
                        Record::Term { consumer, seq }
                    } else {
                        Record::Ack { consumer, seq }
                    };
                    log::encode(&mut self.buf, &rec);
                    records += 1;
                }
                Request::Tick => tick = true,
                Request::Close { reply } => {
                    close = Some(reply);
                    must_sync = true;
                }
            }
        }
        if records > 0 {
            log::encode(&mut self.buf, &Record::Commit { records });
        }
        if let Err(e) = self.write(must_sync) {
            let why = format!(
                "write to {} failed: {e}",
                segment_path(&self.settings.dir, self.active_id).display()
            );
            tracing::error!(error = %why, "embedded log: write failed; refusing further writes");
            self.core.fail(why.clone());
            for o in owed {
                match o {
                    Owed::Publish(r, ..) => drop(r.send(Err(BackboneError::Storage(why.clone())))),
                    Owed::Bind(r, _) => drop(r.send(Err(BackboneError::Storage(why.clone())))),
                }
            }
            if let Some(r) = close {
                let _ = r.send(Err(BackboneError::Storage(why)));
                return true;
            }
            return false;
        }
        self.apply(now_ms, seq, new_msgs, binds);
        for o in owed {
            match o {
                Owed::Publish(r, seq, dup) => drop(r.send(Ok((seq, dup)))),
                Owed::Bind(r, id) => drop(r.send(Ok(id))),
            }
        }
        if tick {
            self.housekeeping();
        }
        if self.active_len >= self.settings.segment_bytes {
            self.rotate();
        }
        match close {
            Some(r) => {
                self.core.set_closed();
                let _ = r.send(Ok(()));
                true
            }
            None => false,
        }
    }

    /// Appends the batch buffer with one write, then syncs when asked.
    fn write(&mut self, sync: bool) -> std::io::Result<()> {
        // Tests cannot make a real disk fail on demand; this file stands in for it.
        #[cfg(test)]
        if self.settings.dir.join("inject-write-failure").exists() {
            return Err(std::io::Error::other("injected write failure"));
        }
        if !self.buf.is_empty() {
            self.active.write_all(&self.buf)?;
        }
        if sync {
            self.active.sync_data()?;
        }
        Ok(())
    }

    /// Makes a written batch visible: index its messages, apply consumer specs.
    fn apply(
        &mut self,
        ts_ms: u64,
        last_seq: u64,
        new_msgs: Vec<(u64, String, u64, u32)>,
        binds: Vec<(u32, ConsumerSpec)>,
    ) {
        let base = self.active_len;
        self.active_len += self.buf.len() as u64;
        self.last_seq = last_seq;
        let mut st = self.core.lock();
        for (seq, subject, off, len) in &new_msgs {
            let subject = st.intern(subject);
            let meta = MsgMeta {
                subject,
                ts_ms,
                segment: self.active_id,
                offset: base + off,
                len: *len,
            };
            st.index.insert(*seq, meta);
        }
        st.last_seq = last_seq;
        if let Some(seg) = st.segments.get_mut(&self.active_id) {
            for (seq, ..) in &new_msgs {
                seg.add(*seq, ts_ms);
            }
            seg.bytes = self.active_len;
        }
        for (id, spec) in binds {
            // The spec was checked before it was queued; a failure here is a bug, not data.
            if let Err(e) = st.upsert_consumer(id, spec) {
                tracing::error!(error = %e, "embedded log: consumer spec refused after it was stored");
            }
        }
        drop(st);
        if !new_msgs.is_empty() {
            self.core.published.notify_waiters();
        }
    }

    /// Seals the active segment and starts the next, then compacts.
    fn rotate(&mut self) {
        let next = self.active_id + 1;
        let sealed = self.active.sync_data();
        match sealed.and_then(|_| new_segment(&self.core, &self.settings.dir, next, self.last_seq)) {
            Ok((file, len)) => {
                self.active = file;
                self.active_id = next;
                self.active_len = len;
            }
            Err(e) => {
                let why = format!("cannot start log segment {next}: {e}");
                tracing::error!(error = %why, "embedded log: rotation failed; refusing further writes");
                self.core.fail(why);
                return;
            }
        }
        self.compact(unix_ms());
    }
}

/// Answers a request that will not be carried out.
fn refuse(req: Request, err: BackboneError) {
    match req {
        Request::Publish { reply, .. } => drop(reply.send(Err(err))),
        Request::Bind { reply, .. } => drop(reply.send(Err(err))),
        Request::Close { reply } => drop(reply.send(Err(err))),
        Request::Settle { .. } | Request::Tick => {}
    }
}
