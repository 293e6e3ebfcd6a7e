//! The backbone: durable publish with dedupe, and durable pull consumers.
//!
//! Two implementations keep the same contract (checked by one conformance
//! suite in `bus/tests/backbone_conformance.rs`):
//! - [`jetstream`]: NATS JetStream, for production;
//! - [`embedded`]: a group-committed log file, for one machine with nothing to install.
//!
//! The contract:
//! - [`Backbone::publish`] returns only once the message is durable, and says
//!   whether the dedupe id had been seen inside the duplicate window;
//! - a [`Consumer`] hands out [`Delivery`]s in order per subject; each must be
//!   acked, nak'ed with a delay or terminated; one not acked within `ack_wait`
//!   is delivered again;
//! - after `max_deliver` attempts a delivery is handed to the dead-letter
//!   stream `medbus.dlq.<consumer>` with the reason, and never blocks the queue.

pub mod dead_letter;
pub mod embedded;
pub mod handback;
pub mod jetstream;
pub mod keep;
pub mod lanes;
pub mod renew;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::config::BackboneConfig;

/// Message headers (single-valued).
pub type Headers = BTreeMap<String, String>;

/// A shared handle on whichever backbone the config chose.
pub type SharedBackbone = Arc<dyn Backbone>;

/// A message to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Concrete subject (see [`crate::subjects`]).
    pub subject: String,
    /// Dedupe id: a second publish with the same id inside the window is not stored again.
    pub dedupe_id: String,
    /// Headers.
    pub headers: Headers,
    /// Payload bytes.
    pub payload: Bytes,
}

/// The durable acknowledgement of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReceipt {
    /// Stream (JetStream) or log (embedded) that holds the message.
    pub stream: String,
    /// Sequence number in that stream.
    pub sequence: u64,
    /// True when the dedupe id was already stored: nothing new was written.
    pub duplicate: bool,
}

/// What a durable consumer reads and how it is paced.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerSpec {
    /// Durable name; also the dead-letter stage (`medbus.dlq.<name>`). A valid subject token.
    pub name: String,
    /// Subject filter, with NATS wildcards (`medbus.ingress.hl7v2.>`).
    pub filter: String,
    /// How long a delivery may stay unacknowledged before it is delivered again.
    pub ack_wait: Duration,
    /// Attempts before a message is dead-lettered.
    pub max_deliver: u32,
    /// Most deliveries outstanding (unacked) at once.
    pub max_ack_pending: usize,
}

impl ConsumerSpec {
    /// A spec with the defaults from config.
    pub fn new(name: impl Into<String>, filter: impl Into<String>, cfg: &BackboneConfig) -> Self {
        ConsumerSpec {
            name: name.into(),
            filter: filter.into(),
            ack_wait: cfg.ack_wait,
            max_deliver: cfg.max_deliver,
            max_ack_pending: cfg.max_ack_pending,
        }
    }
}

/// Backbone failures, sorted by what the caller should do next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackboneError {
    /// The backbone cannot be reached now; retry later with backoff.
    #[error("backbone unavailable: {0}")]
    Unavailable(String),
    /// No durable ack came in time. The message may or may not be stored:
    /// retry with the same dedupe id inside the duplicate window.
    #[error("publish outcome unknown (no durable ack in time); retry with the same dedupe id: {0}")]
    Unknown(String),
    /// The request itself is wrong (bad subject, bad consumer spec); do not retry.
    #[error("invalid backbone request: {0}")]
    Invalid(String),
    /// Local durable storage failed (embedded log I/O); needs an operator.
    #[error("backbone storage failed: {0}")]
    Storage(String),
    /// The backbone was closed by shutdown.
    #[error("backbone closed")]
    Closed,
}

impl BackboneError {
    /// True when retrying the same operation later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, BackboneError::Unavailable(_) | BackboneError::Unknown(_))
    }
}

/// A durable message backbone.
#[async_trait]
pub trait Backbone: Send + Sync + 'static {
    /// `jetstream` or `embedded`.
    fn kind(&self) -> &'static str;

    /// Stores `msg` durably (or finds its dedupe id already stored) and only then returns.
    async fn publish(&self, msg: Outgoing) -> Result<PublishReceipt, BackboneError>;

    /// Creates or updates the durable consumer `spec.name` and binds to it.
    /// Use [`open_consumer`] rather than calling this directly: it adds dead-lettering.
    async fn bind_consumer(&self, spec: &ConsumerSpec) -> Result<Box<dyn ConsumerSource>, BackboneError>;

    /// A read-only reader of the stored messages on subjects matching `filter`
    /// (NATS wildcards, within one stream) whose sequence is above `after`
    /// (`None`: only messages stored from now on), oldest first. Nothing is
    /// acked and no consumer position is kept, so a reader that goes away
    /// leaves nothing behind; it resumes by opening a new tail after the last
    /// [`StoredMessage::sequence`] it saw (SSE uses this).
    async fn open_tail(&self, filter: &str, after: Option<u64>) -> Result<Box<dyn Tail>, BackboneError>;

    /// Readiness: Ok when publishes can be made durable now.
    async fn check(&self) -> Result<(), BackboneError>;

    /// Flushes and releases resources; later calls fail with [`BackboneError::Closed`].
    async fn close(&self) -> Result<(), BackboneError>;
}

/// The implementation side of a consumer: fetches raw deliveries.
#[async_trait]
pub trait ConsumerSource: Send {
    /// Up to `max` deliveries; waits at most `wait` when none is ready. An empty vec is not an error.
    async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BackboneError>;
}

/// A stored message read by position through a [`Tail`].
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// Subject it was published on.
    pub subject: String,
    /// Headers.
    pub headers: Headers,
    /// Payload.
    pub payload: Bytes,
    /// Sequence in the stream (JetStream) or log (embedded); resume after it.
    pub sequence: u64,
}

/// Reads stored messages in order from a position; see [`Backbone::open_tail`].
#[async_trait]
pub trait Tail: Send {
    /// Up to `max` messages after the last one returned; waits at most `wait`
    /// when none is ready. An empty vec is not an error.
    async fn next(&mut self, max: usize, wait: Duration) -> Result<Vec<StoredMessage>, BackboneError>;
}

/// Settles one delivery. Implemented by each backbone.
#[async_trait]
pub trait AckHandle: Send + Sync {
    /// Done: never deliver again.
    async fn ack(&self) -> Result<(), BackboneError>;
    /// Failed for now: deliver again after `delay`.
    async fn nak(&self, delay: Duration) -> Result<(), BackboneError>;
    /// Give up: never deliver again (dead-lettering happens before this).
    async fn term(&self) -> Result<(), BackboneError>;
    /// Still working: restart the ack-wait clock.
    async fn in_progress(&self) -> Result<(), BackboneError>;
}

/// One message handed to a consumer.
pub struct Delivery {
    /// Subject it was published on.
    pub subject: String,
    /// Its dedupe id.
    pub dedupe_id: Option<String>,
    /// Headers.
    pub headers: Headers,
    /// Payload.
    pub payload: Bytes,
    /// Sequence in the stream or log.
    pub sequence: u64,
    /// Which attempt this is, from 1.
    pub delivered: u32,
    pub(crate) handle: Box<dyn AckHandle>,
    pub(crate) dead_letter: Option<dead_letter::DeadLetterer>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("subject", &self.subject)
            .field("dedupe_id", &self.dedupe_id)
            .field("sequence", &self.sequence)
            .field("delivered", &self.delivered)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// What happened to a delivery that was nak'ed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NakOutcome {
    /// It will be delivered again after the delay.
    Retrying,
    /// That was the last attempt: it went to the dead-letter stream.
    DeadLettered,
}

impl Delivery {
    /// Builds a delivery (for backbone implementations).
    pub fn new(
        subject: String,
        dedupe_id: Option<String>,
        headers: Headers,
        payload: Bytes,
        sequence: u64,
        delivered: u32,
        handle: Box<dyn AckHandle>,
    ) -> Self {
        Delivery {
            subject,
            dedupe_id,
            headers,
            payload,
            sequence,
            delivered,
            handle,
            dead_letter: None,
        }
    }

    /// Acknowledges: processing is committed, never deliver again.
    pub async fn ack(self) -> Result<(), BackboneError> {
        self.handle.ack().await
    }

    /// Restarts the ack-wait clock for long work.
    pub async fn in_progress(&self) -> Result<(), BackboneError> {
        self.handle.in_progress().await
    }

    /// A failure that may pass (downstream down): deliver again after `delay`,
    /// unless this was the last attempt, in which case the message goes to the
    /// dead-letter stream with `reason`.
    pub async fn nak(self, delay: Duration, reason: &str) -> Result<NakOutcome, BackboneError> {
        match &self.dead_letter {
            Some(dl) if self.delivered >= dl.max_deliver => {
                let why = format!("{reason} (attempt {} of {})", self.delivered, dl.max_deliver);
                dl.send(&self, &why).await?;
                self.handle.term().await?;
                Ok(NakOutcome::DeadLettered)
            }
            _ => {
                self.handle.nak(delay).await?;
                Ok(NakOutcome::Retrying)
            }
        }
    }

    /// A failure that will not pass (bad input, a bug): dead-letter now with `reason`.
    pub async fn reject(self, reason: &str) -> Result<(), BackboneError> {
        self.reject_with(reason, Headers::new()).await
    }

    /// As [`Delivery::reject`], adding `extra` headers to the dead letter (e.g. the
    /// status a remote peer answered with), for an operator to filter on.
    pub async fn reject_with(self, reason: &str, extra: Headers) -> Result<(), BackboneError> {
        if let Some(dl) = &self.dead_letter {
            dl.send_with(&self, reason, extra).await?;
        }
        self.handle.term().await
    }
}

/// A durable consumer with dead-lettering built in.
pub struct Consumer {
    source: Box<dyn ConsumerSource>,
    dead_letter: dead_letter::DeadLetterer,
    /// See [`Consumer::linger`].
    linger: Duration,
}

/// Binds the durable consumer `spec` on `backbone`. Deliveries past
/// `spec.max_deliver` (a handler that crashed or hung every time) are
/// dead-lettered here and never reach the caller.
pub async fn open_consumer(backbone: &SharedBackbone, spec: ConsumerSpec) -> Result<Consumer, BackboneError> {
    crate::subjects::check_token(&spec.name).map_err(|e| BackboneError::Invalid(e.to_string()))?;
    if spec.max_deliver == 0 {
        return Err(BackboneError::Invalid("max_deliver must be at least 1".into()));
    }
    let source = backbone.bind_consumer(&spec).await?;
    Ok(Consumer {
        source,
        dead_letter: dead_letter::DeadLetterer::new(backbone.clone(), &spec),
        linger: Duration::ZERO,
    })
}

impl Consumer {
    /// In [`run_batches`](Self::run_batches), once a batch has started to come
    /// but is short of `max`, waits `linger` once for more before handing it
    /// over: fewer, larger batches for a handler whose cost is per batch more
    /// than per delivery (the imaging service rewrites each study once per
    /// batch). Zero (the default) hands over at once.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Up to `max` deliveries, waiting at most `wait` for the first.
    pub async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BackboneError> {
        let batch = self.source.fetch(max, wait).await?;
        let mut out = Vec::with_capacity(batch.len());
        for mut d in batch {
            if d.delivered > self.dead_letter.max_deliver {
                let why = format!(
                    "not acknowledged after {} deliveries (ack wait expired each time)",
                    self.dead_letter.max_deliver
                );
                self.dead_letter.send(&d, &why).await?;
                d.handle.term().await?;
                continue;
            }
            d.dead_letter = Some(self.dead_letter.clone());
            out.push(d);
        }
        Ok(out)
    }

    /// When `batch` came short of `max`, waits the [`linger`](Self::linger)
    /// (cut short by `shutdown`) and adds whatever else came meanwhile. The
    /// deliveries in hand are never dropped: a failed second fetch keeps them.
    async fn linger_for_more(
        &mut self,
        batch: &mut Vec<Delivery>,
        max: usize,
        shutdown: &tokio_util::sync::CancellationToken,
    ) {
        if self.linger.is_zero() || batch.is_empty() || batch.len() >= max {
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(self.linger) => {}
        }
        match self.fetch(max - batch.len(), Duration::ZERO).await {
            Ok(more) => batch.extend(more),
            Err(e) => tracing::debug!(error = %e, "fetch after lingering failed; handing over what came"),
        }
    }

    /// Fetches batches of up to `max` (waiting up to `wait` each) and hands
    /// each to `handle` until shutdown, or until `handle` answers false. A
    /// failed fetch is logged under `name` and retried with backoff (100 ms,
    /// doubling to 10 s), so a backbone outage never ends the loop.
    pub async fn run_batches<F, Fut>(
        &mut self,
        name: &str,
        max: usize,
        wait: Duration,
        shutdown: &tokio_util::sync::CancellationToken,
        mut handle: F,
    ) where
        F: FnMut(Vec<Delivery>) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let mut backoff = Duration::from_millis(100);
        loop {
            let batch = tokio::select! {
                _ = shutdown.cancelled() => return,
                b = self.fetch(max, wait) => b,
            };
            match batch {
                Ok(mut batch) => {
                    backoff = Duration::from_millis(100);
                    self.linger_for_more(&mut batch, max, shutdown).await;
                    if !handle(batch).await {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(consumer = name, error = %e, retry_in = ?backoff, "fetch failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// Opens the backbone named by `cfg.url`: `embedded` or `nats://…`.
pub async fn connect(cfg: &BackboneConfig, data_dir: &std::path::Path) -> Result<SharedBackbone, BackboneError> {
    if cfg.url == "embedded" {
        let dir = data_dir.join("backbone");
        Ok(Arc::new(embedded::EmbeddedBackbone::open(&dir, cfg).await?))
    } else if cfg.url.starts_with("nats://") || cfg.url.starts_with("tls://") {
        Ok(Arc::new(jetstream::JetStreamBackbone::connect(cfg).await?))
    } else {
        Err(BackboneError::Invalid(format!(
            "backbone.url must be \"embedded\" or nats://host:port, got {:?}",
            cfg.url
        )))
    }
}
