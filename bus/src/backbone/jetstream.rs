//! The NATS JetStream backbone (production).
//!
//! Four file-storage streams, `<prefix>_INGRESS`, `<prefix>_EVENTS`,
//! `<prefix>_EGRESS` and `<prefix>_DLQ`, are created or updated at start. A publish carries the dedupe
//! id as `Nats-Msg-Id` and returns only after the server's PubAck. Consumers
//! are durable pull consumers with explicit ack; their server-side
//! `max_deliver` is one more than ours so that the extra delivery reaches
//! [`super::Consumer::fetch`], which dead-letters it with a reason (the server
//! would otherwise drop it silently).
//!
//! After start the client reconnects forever; while the server is away
//! publishes time out as [`BackboneError::Unknown`] (the message may still be
//! stored, so retry with the same dedupe id) and [`Backbone::check`] fails.

use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::{self, consumer, context::PublishErrorKind, stream, AckKind};
use async_nats::HeaderMap;
use async_trait::async_trait;
use futures::StreamExt;

use super::{
    AckHandle, Backbone, BackboneError, ConsumerSource, ConsumerSpec, Delivery, Headers, Outgoing, PublishReceipt,
    StoredMessage, Tail,
};
use crate::config::{redact_url, BackboneConfig};
use crate::subjects::STREAM_SUBJECTS;

/// NATS JetStream backbone.
pub struct JetStreamBackbone {
    client: async_nats::Client,
    js: jetstream::Context,
    url: String,
    prefix: String,
    closed: std::sync::atomic::AtomicBool,
}

impl JetStreamBackbone {
    /// Connects to `cfg.url` and creates or updates the three streams.
    /// Fails when the server cannot be reached at start; reconnects forever after.
    pub async fn connect(cfg: &BackboneConfig) -> Result<Self, BackboneError> {
        let url = redact_url(&cfg.url);
        let client = async_nats::ConnectOptions::new()
            .name("medbus")
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .event_callback({
                let url = url.clone();
                move |event| {
                    let url = url.clone();
                    async move { tracing::info!(backbone = %url, %event, "nats connection event") }
                }
            })
            .connect(cfg.url.as_str())
            .await
            .map_err(|e| BackboneError::Unavailable(format!("cannot connect to {url}: {e}")))?;
        let js = jetstream::ContextBuilder::new()
            .timeout(cfg.publish_timeout)
            .max_ack_inflight(16_384)
            .backpressure_on_inflight(true)
            .build(client.clone());
        for (suffix, subjects) in STREAM_SUBJECTS {
            let config = stream::Config {
                name: format!("{}_{suffix}", cfg.stream_prefix),
                subjects: vec![subjects.to_string()],
                storage: stream::StorageType::File,
                retention: stream::RetentionPolicy::Limits,
                duplicate_window: cfg.duplicate_window,
                max_age: cfg.max_age,
                ..Default::default()
            };
            js.create_or_update_stream(config).await.map_err(|e| {
                BackboneError::Unavailable(format!(
                    "cannot create stream {}_{suffix} on {url}: {e}",
                    cfg.stream_prefix
                ))
            })?;
        }
        tracing::info!(backbone = %url, "jetstream backbone ready");
        Ok(JetStreamBackbone {
            client,
            js,
            url,
            prefix: cfg.stream_prefix.clone(),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn ensure_open(&self) -> Result<(), BackboneError> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            Err(BackboneError::Closed)
        } else {
            Ok(())
        }
    }

    /// The stream that holds `filter`'s subjects.
    fn stream_for(&self, filter: &str) -> Result<String, BackboneError> {
        STREAM_SUBJECTS
            .iter()
            .find(|(_, subjects)| filter.starts_with(subjects.trim_end_matches('>')))
            .map(|(suffix, _)| format!("{}_{suffix}", self.prefix))
            .ok_or_else(|| {
                BackboneError::Invalid(format!(
                    "consumer filter {filter:?} must lie within medbus.ingress.>, medbus.events.>, medbus.egress.> or medbus.dlq.>"
                ))
            })
    }
}

fn to_header_map(h: &Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in h {
        map.insert(k.as_str(), v.as_str());
    }
    map
}

fn from_header_map(h: Option<&HeaderMap>) -> (Headers, Option<String>) {
    let mut out = Headers::new();
    let mut dedupe = None;
    if let Some(h) = h {
        for (k, values) in h.iter() {
            let Some(v) = values.first() else { continue };
            if AsRef::<str>::as_ref(k) == "Nats-Msg-Id" {
                dedupe = Some(v.as_str().to_string());
            } else {
                out.insert(k.to_string(), v.as_str().to_string());
            }
        }
    }
    (out, dedupe)
}

#[async_trait]
impl Backbone for JetStreamBackbone {
    fn kind(&self) -> &'static str {
        "jetstream"
    }

    async fn publish(&self, msg: Outgoing) -> Result<PublishReceipt, BackboneError> {
        self.ensure_open()?;
        crate::subjects::Subject::parse(&msg.subject).map_err(|e| BackboneError::Invalid(e.to_string()))?;
        let publish = jetstream::message::PublishMessage::build()
            .payload(msg.payload)
            .headers(to_header_map(&msg.headers))
            .message_id(&msg.dedupe_id);
        let map_err = |e: jetstream::context::PublishError| match e.kind() {
            PublishErrorKind::TimedOut => BackboneError::Unknown(format!("{} on {}: {e}", msg.subject, self.url)),
            PublishErrorKind::StreamNotFound | PublishErrorKind::MaxPayloadExceeded => {
                BackboneError::Invalid(format!("{}: {e}", msg.subject))
            }
            _ => BackboneError::Unavailable(format!("{}: {e}", self.url)),
        };
        let ack = self
            .js
            .send_publish(msg.subject.clone(), publish)
            .await
            .map_err(map_err)?
            .await
            .map_err(map_err)?;
        Ok(PublishReceipt {
            stream: ack.stream,
            sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    async fn bind_consumer(&self, spec: &ConsumerSpec) -> Result<Box<dyn ConsumerSource>, BackboneError> {
        self.ensure_open()?;
        let stream_name = self.stream_for(&spec.filter)?;
        let stream = self
            .js
            .get_stream(&stream_name)
            .await
            .map_err(|e| BackboneError::Unavailable(format!("stream {stream_name}: {e}")))?;
        let config = consumer::pull::Config {
            durable_name: Some(spec.name.clone()),
            filter_subject: spec.filter.clone(),
            ack_policy: consumer::AckPolicy::Explicit,
            deliver_policy: consumer::DeliverPolicy::All,
            ack_wait: spec.ack_wait,
            // One extra so the over-limit delivery reaches us and is dead-lettered with a reason.
            max_deliver: i64::from(spec.max_deliver) + 1,
            max_ack_pending: i64::try_from(spec.max_ack_pending).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let consumer = stream
            .create_consumer(config)
            .await
            .map_err(|e| BackboneError::Unavailable(format!("consumer {} on {stream_name}: {e}", spec.name)))?;
        Ok(Box::new(JetStreamSource {
            name: spec.name.clone(),
            consumer,
        }))
    }

    async fn open_tail(&self, filter: &str, after: Option<u64>) -> Result<Box<dyn Tail>, BackboneError> {
        self.ensure_open()?;
        let stream_name = self.stream_for(filter)?;
        let stream = self
            .js
            .get_stream(&stream_name)
            .await
            .map_err(|e| BackboneError::Unavailable(format!("stream {stream_name}: {e}")))?;
        // An ordered consumer: ephemeral, unacked, recreated by the client on a gap.
        let config = consumer::pull::OrderedConfig {
            filter_subject: filter.to_string(),
            deliver_policy: match after {
                Some(seq) => consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: seq.saturating_add(1),
                },
                None => consumer::DeliverPolicy::New,
            },
            ..Default::default()
        };
        let unavailable = |e: &dyn std::fmt::Display| BackboneError::Unavailable(format!("tail on {stream_name}: {e}"));
        let messages = stream
            .create_consumer(config)
            .await
            .map_err(|e| unavailable(&e))?
            .messages()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(Box::new(JetStreamTail { messages }))
    }

    async fn check(&self) -> Result<(), BackboneError> {
        self.ensure_open()?;
        match self.client.connection_state() {
            State::Connected => {}
            other => {
                return Err(BackboneError::Unavailable(format!(
                    "not connected to {} ({other})",
                    self.url
                )))
            }
        }
        // Stream info rather than account info: async-nats 0.51 cannot decode
        // the account info of nats-server 2.9, and this also proves the stream is there.
        let stream = format!("{}_INGRESS", self.prefix);
        match tokio::time::timeout(Duration::from_secs(2), self.js.get_stream(&stream)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(BackboneError::Unavailable(format!(
                "jetstream on {}: stream {stream}: {e}",
                self.url
            ))),
            Err(_) => Err(BackboneError::Unavailable(format!(
                "jetstream on {} did not answer in 2 s",
                self.url
            ))),
        }
    }

    async fn close(&self) -> Result<(), BackboneError> {
        if self.closed.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return Ok(());
        }
        // Acks are fire-and-forget publishes: flush so the last ones reach the server.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.flush()).await;
        Ok(())
    }
}

/// Pulls on demand rather than prefetching: a message the server hands out
/// counts as a delivery, so one prefetched but never given to the caller would
/// sit out a whole ack wait after a crash or rebind.
struct JetStreamSource {
    name: String,
    consumer: consumer::PullConsumer,
}

impl JetStreamSource {
    fn convert(&self, m: jetstream::Message) -> Result<Delivery, BackboneError> {
        let info = m
            .info()
            .map_err(|e| BackboneError::Unavailable(format!("consumer {}: bad delivery metadata: {e}", self.name)))?;
        let sequence = info.stream_sequence;
        let delivered = u32::try_from(info.delivered.max(1)).unwrap_or(u32::MAX);
        let (msg, acker) = m.split();
        let (headers, dedupe) = from_header_map(msg.headers.as_ref());
        Ok(Delivery::new(
            msg.subject.to_string(),
            dedupe,
            headers,
            msg.payload,
            sequence,
            delivered,
            Box::new(JetStreamAck(acker)),
        ))
    }
}

#[async_trait]
impl ConsumerSource for JetStreamSource {
    async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BackboneError> {
        let max = max.max(1);
        // What is ready now, without waiting.
        let mut out = self.pull(max, None).await?;
        if out.is_empty() && !wait.is_zero() {
            // Nothing ready: one long-poll for the first message (the server ends
            // it at `wait`), then whatever else is ready by then.
            out = self.pull(1, Some(wait)).await?;
            if !out.is_empty() && max > 1 {
                out.extend(self.pull(max - 1, None).await?);
            }
        }
        Ok(out)
    }
}

impl JetStreamSource {
    /// One pull request: `no_wait` when `expires` is None, else a long poll.
    async fn pull(&self, max: usize, expires: Option<Duration>) -> Result<Vec<Delivery>, BackboneError> {
        let unavailable =
            |e: &dyn std::fmt::Display| BackboneError::Unavailable(format!("consumer {}: {e}", self.name));
        let mut batch = match expires {
            None => self.consumer.fetch().max_messages(max).messages().await,
            Some(t) => {
                let t = t.max(Duration::from_millis(10));
                self.consumer.batch().max_messages(max).expires(t).messages().await
            }
        }
        .map_err(|e| unavailable(&e))?;
        // The server ends the request at `expires`; the local limit only guards a lost connection.
        let limit = expires.unwrap_or_default() + Duration::from_secs(5);
        let mut out = Vec::with_capacity(max);
        let collect = async {
            while let Some(item) = batch.next().await {
                match item {
                    Ok(m) => out.push(self.convert(m)?),
                    Err(e) if out.is_empty() => return Err(unavailable(&e)),
                    Err(e) => {
                        tracing::debug!(consumer = %self.name, error = %e, "pull ended early");
                        break;
                    }
                }
            }
            Ok(())
        };
        match tokio::time::timeout(limit, collect).await {
            Ok(r) => r?,
            Err(_) => tracing::debug!(consumer = %self.name, "pull request outlived its expiry"),
        }
        Ok(out)
    }
}

/// A tail: an ordered consumer's message stream.
struct JetStreamTail {
    messages: consumer::pull::Ordered,
}

#[async_trait]
impl Tail for JetStreamTail {
    async fn next(&mut self, max: usize, wait: Duration) -> Result<Vec<StoredMessage>, BackboneError> {
        use futures::FutureExt;
        let mut out = Vec::new();
        let first = match tokio::time::timeout(wait, self.messages.next()).await {
            Err(_) => return Ok(out),
            Ok(first) => first,
        };
        let mut item = first;
        loop {
            match item {
                Some(Ok(m)) => out.push(stored(m)?),
                Some(Err(e)) if out.is_empty() => return Err(BackboneError::Unavailable(format!("tail: {e}"))),
                Some(Err(_)) => break,
                None if out.is_empty() => return Err(BackboneError::Unavailable("tail ended".into())),
                None => break,
            }
            if out.len() >= max.max(1) {
                break;
            }
            // Whatever else is ready now, without waiting.
            match self.messages.next().now_or_never() {
                Some(next) => item = next,
                None => break,
            }
        }
        Ok(out)
    }
}

fn stored(m: jetstream::Message) -> Result<StoredMessage, BackboneError> {
    let sequence = m
        .info()
        .map_err(|e| BackboneError::Unavailable(format!("tail: bad message metadata: {e}")))?
        .stream_sequence;
    let (headers, _) = from_header_map(m.headers.as_ref());
    Ok(StoredMessage {
        subject: m.subject.to_string(),
        headers,
        payload: m.payload.clone(),
        sequence,
    })
}

struct JetStreamAck(jetstream::message::Acker);

fn ack_err(e: async_nats::Error) -> BackboneError {
    BackboneError::Unavailable(format!("ack not sent: {e}"))
}

#[async_trait]
impl AckHandle for JetStreamAck {
    async fn ack(&self) -> Result<(), BackboneError> {
        self.0.ack().await.map_err(ack_err)
    }

    async fn nak(&self, delay: Duration) -> Result<(), BackboneError> {
        self.0.ack_with(AckKind::Nak(Some(delay))).await.map_err(ack_err)
    }

    async fn term(&self) -> Result<(), BackboneError> {
        self.0.ack_with(AckKind::Term).await.map_err(ack_err)
    }

    async fn in_progress(&self) -> Result<(), BackboneError> {
        self.0.ack_with(AckKind::Progress).await.map_err(ack_err)
    }
}
