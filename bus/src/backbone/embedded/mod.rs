//! Embedded backbone: a durable, group-committed log under one directory, with
//! the semantics of the JetStream setup medbus uses, for one machine with
//! nothing to install.
//!
//! - `log`: the record format (length + CRC32 frames, a COMMIT per batch);
//! - `writer`: one thread appends every queued request with one write and one
//!   fdatasync (group commit), then answers the callers;
//! - `state`: the in-memory index and consumer positions (`filter`: NATS wildcards);
//! - `dedupe`: the duplicate window;
//! - `consumer`: pull consumers and ack handles;
//! - `recover`: rebuilding all of it on open, cutting a torn tail;
//! - `compact`: max_age retention and segment compaction;
//! - `tail`: read-only readers from a sequence (no consumer state).
//!
//! Differences from JetStream, all within the backbone contract:
//! - delivery counts (and nak delays, ack-wait clocks) are kept in memory: after
//!   a reopen, unacknowledged messages are delivered again at once, counting from 1;
//! - acks and terms are logged without waiting for the sync: a crash right after
//!   an ack may deliver that message once more;
//! - sequences are one numbering across all subjects (JetStream counts per stream);
//! - a message settled by every consumer that matches it may be compacted away,
//!   so a consumer created later does not see it; messages no consumer matches
//!   (dead letters) stay until `max_age`. A tail (`open_tail`) holds nothing
//!   back either: reading far behind, it skips what was compacted meanwhile.

mod compact;
mod consumer;
mod dedupe;
mod filter;
mod log;
mod recover;
mod state;
mod tail;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, Notify};

use self::filter::Filter;
use self::state::State;
use self::writer::{Request, Writer};
use super::{Backbone, BackboneConfig, BackboneError, ConsumerSource, ConsumerSpec, Outgoing, PublishReceipt};
use crate::config::SyncPolicy;
use crate::subjects::STREAM_SUBJECTS;

/// Tuning of the embedded log that the config file does not expose.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// A segment is sealed (and becomes a compaction candidate) past this size. Default 64 MiB.
    pub segment_bytes: u64,
    /// How often expiry runs. Default 1 s.
    pub tick: Duration,
    /// How often sealed segments are checked for compaction. Default 10 s.
    pub compact_interval: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            segment_bytes: 64 << 20,
            tick: Duration::from_secs(1),
            compact_interval: Duration::from_secs(10),
        }
    }
}

/// What the writer and recovery need to know.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub dir: PathBuf,
    pub sync: SyncPolicy,
    pub duplicate_window_ms: u64,
    pub max_age_ms: u64,
    pub segment_bytes: u64,
    pub compact_interval: Duration,
}

/// State shared by the writer thread, consumers and ack handles.
pub(crate) struct Core {
    state: Mutex<State>,
    /// Woken after each batch that stored messages.
    published: Notify,
    failed: Mutex<Option<String>>,
    closed: AtomicBool,
}

impl Core {
    /// The state; a panic elsewhere while holding it leaves data that is still consistent
    /// enough to serve (each critical section is short), so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn failure(&self) -> Option<String> {
        self.failed.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn fail(&self, why: String) {
        *self.failed.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }

    fn set_closed(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Ok unless closed or the log can no longer be written.
    fn usable(&self) -> Result<(), BackboneError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(BackboneError::Closed);
        }
        match self.failure() {
            Some(why) => Err(BackboneError::Storage(why)),
            None => Ok(()),
        }
    }

    /// Wakes every waiting fetch (so it can see a close).
    fn wake_all(&self) {
        self.published.notify_waiters();
        for c in self.lock().consumers.values() {
            c.notify.notify_waiters();
        }
    }
}

/// The core plus the way to the writer.
pub(crate) struct Link {
    core: Arc<Core>,
    tx: mpsc::UnboundedSender<Request>,
}

impl Link {
    fn send(&self, req: Request) -> Result<(), BackboneError> {
        self.tx.send(req).map_err(|_| self.gone())
    }

    /// The error for a writer that is no longer there.
    fn gone(&self) -> BackboneError {
        match self.core.usable() {
            Ok(()) => BackboneError::Storage("embedded log writer stopped".into()),
            Err(e) => e,
        }
    }
}

/// The embedded backbone.
pub struct EmbeddedBackbone {
    link: Arc<Link>,
    stream_prefix: String,
    publish_timeout: Duration,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Held open with an exclusive lock: a second process (or a second open in
    /// this one) on the same directory would interleave writes and corrupt the log.
    dir_lock: Mutex<Option<std::fs::File>>,
}

impl EmbeddedBackbone {
    /// Opens (or creates) the log in `dir`, recovering everything committed.
    pub async fn open(dir: &Path, cfg: &BackboneConfig) -> Result<Self, BackboneError> {
        Self::open_with(dir, cfg, EmbeddedOptions::default()).await
    }

    /// [`EmbeddedBackbone::open`] with explicit tuning.
    pub async fn open_with(dir: &Path, cfg: &BackboneConfig, opts: EmbeddedOptions) -> Result<Self, BackboneError> {
        let settings = Settings {
            dir: dir.to_path_buf(),
            sync: cfg.sync,
            duplicate_window_ms: millis(cfg.duplicate_window),
            max_age_ms: millis(cfg.max_age),
            segment_bytes: opts.segment_bytes.max(1),
            compact_interval: opts.compact_interval,
        };
        let dir_lock = lock_dir(dir)?;
        let core = Arc::new(Core {
            state: Mutex::new(State::default()),
            published: Notify::new(),
            failed: Mutex::new(None),
            closed: AtomicBool::new(false),
        });
        // Reading the whole log is blocking work.
        let start = {
            let core = core.clone();
            tokio::task::spawn_blocking(move || {
                let rec = recover::recover(&settings.dir, &settings)?;
                Writer::start(core, settings, rec)
            })
        };
        let writer = start
            .await
            .map_err(|e| BackboneError::Storage(format!("embedded log open task failed: {e}")))??;
        let (tx, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("medbus-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| storage("cannot start the embedded log writer".into(), e))?;
        // Ticks hold only a weak sender, so they never keep the writer alive.
        let weak = tx.downgrade();
        let tick = opts.tick;
        tokio::spawn(async move {
            let mut every = tokio::time::interval(tick);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match weak.upgrade() {
                    Some(tx) if tx.send(Request::Tick).is_ok() => {}
                    _ => break,
                }
            }
        });
        Ok(EmbeddedBackbone {
            link: Arc::new(Link { core, tx }),
            stream_prefix: cfg.stream_prefix.clone(),
            publish_timeout: cfg.publish_timeout,
            writer: Mutex::new(Some(thread)),
            dir_lock: Mutex::new(Some(dir_lock)),
        })
    }

    /// The stream a subject belongs to (as JetStream would name it); refuses
    /// wildcards, empty tokens and subjects outside the medbus families.
    fn stream_of(&self, subject: &str) -> Result<String, BackboneError> {
        let bad = |why: &str| Err(BackboneError::Invalid(format!("cannot publish to {subject:?}: {why}")));
        if subject.split('.').any(|t| t.is_empty()) {
            return bad("empty token");
        }
        if subject.chars().any(|c| c == '*' || c == '>' || !c.is_ascii_graphic()) {
            return bad("wildcard, blank or non-ASCII character");
        }
        for (name, filter) in STREAM_SUBJECTS {
            if Filter::parse(filter).is_ok_and(|f| f.matches(subject)) {
                return Ok(format!("{}_{name}", self.stream_prefix));
            }
        }
        bad("not under medbus.ingress, medbus.events, medbus.egress or medbus.dlq")
    }
}

#[async_trait]
impl Backbone for EmbeddedBackbone {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn publish(&self, msg: Outgoing) -> Result<PublishReceipt, BackboneError> {
        self.link.core.usable()?;
        let stream = self.stream_of(&msg.subject)?;
        let (reply, answer) = oneshot::channel();
        self.link.send(Request::Publish { msg, reply })?;
        match tokio::time::timeout(self.publish_timeout, answer).await {
            Ok(Ok(Ok((sequence, duplicate)))) => Ok(PublishReceipt {
                stream,
                sequence,
                duplicate,
            }),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(self.link.gone()),
            Err(_) => Err(BackboneError::Unknown(format!(
                "embedded log did not commit within {:?}",
                self.publish_timeout
            ))),
        }
    }

    async fn bind_consumer(&self, spec: &ConsumerSpec) -> Result<Box<dyn ConsumerSource>, BackboneError> {
        self.link.core.usable()?;
        let invalid = |why: String| Err(BackboneError::Invalid(format!("consumer {:?}: {why}", spec.name)));
        if let Err(e) = crate::subjects::check_token(&spec.name) {
            return invalid(e.to_string());
        }
        if let Err(e) = Filter::parse(&spec.filter) {
            return invalid(e);
        }
        if spec.ack_wait.is_zero() || spec.max_deliver == 0 || spec.max_ack_pending == 0 {
            return invalid("ack_wait, max_deliver and max_ack_pending must be above zero".into());
        }
        let (reply, answer) = oneshot::channel();
        self.link.send(Request::Bind {
            spec: spec.clone(),
            reply,
        })?;
        let id = answer.await.map_err(|_| self.link.gone())??;
        let notify = self
            .link
            .core
            .lock()
            .consumers
            .get(&id)
            .map(|c| c.notify.clone())
            .ok_or_else(|| BackboneError::Storage(format!("consumer {:?} vanished after binding", spec.name)))?;
        Ok(Box::new(consumer::EmbeddedSource {
            link: self.link.clone(),
            id,
            notify,
        }))
    }

    async fn open_tail(&self, filter: &str, after: Option<u64>) -> Result<Box<dyn super::Tail>, BackboneError> {
        self.link.core.usable()?;
        let filter = Filter::parse(filter).map_err(BackboneError::Invalid)?;
        let pos = after.unwrap_or_else(|| self.link.core.lock().last_seq);
        Ok(Box::new(tail::EmbeddedTail {
            link: self.link.clone(),
            filter,
            pos,
        }))
    }

    async fn check(&self) -> Result<(), BackboneError> {
        self.link.core.usable()?;
        if self.link.tx.is_closed() {
            return Err(self.link.gone());
        }
        Ok(())
    }

    async fn close(&self) -> Result<(), BackboneError> {
        self.link.core.usable().or_else(|e| match e {
            // A failed log can still be closed (its writer still answers).
            BackboneError::Storage(_) => Ok(()),
            e => Err(e),
        })?;
        let (reply, answer) = oneshot::channel();
        self.link.send(Request::Close { reply })?;
        let result = answer.await.map_err(|_| self.link.gone())?;
        self.link.core.set_closed();
        self.link.core.wake_all();
        let thread = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            // The writer has answered and is leaving its loop; joining releases the files.
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        // Only now may another open take the directory.
        self.dir_lock.lock().unwrap_or_else(|e| e.into_inner()).take();
        result
    }
}

/// Creates `dir` and takes its exclusive lock file, or says who holds it.
fn lock_dir(dir: &Path) -> Result<std::fs::File, BackboneError> {
    std::fs::create_dir_all(dir).map_err(|e| storage(format!("cannot create {}", dir.display()), e))?;
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| storage(format!("cannot open {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(BackboneError::Storage(format!(
            "{} is in use by another medbus process (lock {}); stop it or choose another data_dir",
            dir.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(storage(format!("cannot lock {}", path.display()), e)),
    }
}

/// A Storage error for an I/O failure.
pub(crate) fn storage(what: String, e: std::io::Error) -> BackboneError {
    BackboneError::Storage(format!("{what}: {e}"))
}

/// Now, in Unix milliseconds (the timestamp stored with each message).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests;
