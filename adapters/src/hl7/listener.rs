//! The MLLP listener of one HL7 v2 channel.
//!
//! Each frame is published raw to `medbus.ingress.hl7v2.<channel>` with dedupe
//! id `<channel>:<MSH-10>`, and only after the backbone's durable ack does the
//! sender get AA (or CA in enhanced mode). A resend of a kept MSH-10 is
//! acknowledged again and stored once. A message medbus cannot accept gets
//! AE/AR with an ERR segment, and its raw bytes are kept too (published with
//! the reason in `Medbus-Raw-Rejected`, under a dedupe id of its own), so it
//! can be fixed and replayed. Junk between frames is skipped and counted; an
//! oversized or truncated frame closes that connection only.
//!
//! With `tls` configured, each connection first completes a TLS handshake
//! (bounded in time); a failed one closes that connection only and is counted
//! in `medbus_tls_handshake_failures_total`. Plain and TLS connections then
//! share the same framing and handling code.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use medbus_bus::backbone::{BackboneError, SharedBackbone};
use medbus_bus::config::ChannelConfig;
use medbus_bus::envelope::{Envelope, Source};
use medbus_bus::subjects::Subject;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ack::{self, AckCode, AckError};
use super::mllp_codec::{MllpCodec, MllpError, MllpItem};
use super::parser::{AckType, Message};
use super::tls::{self, TlsError};

/// Longest a TLS handshake may take (less when the channel's idle timeout is shorter).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Raw-header names kept with each inbound message (as `Medbus-Raw-<name>`).
pub mod raw_header {
    /// MSH-9 as sent, e.g. `ADT^A01^ADT_A01`.
    pub const MESSAGE_TYPE: &str = "Message-Type";
    /// MSH-10.
    pub const CONTROL_ID: &str = "Control-Id";
    /// MSH-12.
    pub const VERSION: &str = "Version";
    /// Why the message was not accepted (present only then).
    pub const REJECTED: &str = "Rejected";
    /// The MSA-1 code medbus answered.
    pub const ACK_CODE: &str = "Ack-Code";
}

/// What the listener needs.
#[derive(Clone)]
pub struct ListenerContext {
    /// Channel name (a subject token).
    pub channel: String,
    /// Its settings.
    pub config: ChannelConfig,
    /// Where messages are kept.
    pub backbone: SharedBackbone,
    /// Cancelled at shutdown: stop accepting, finish the message in hand.
    pub shutdown: CancellationToken,
}

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    /// The address could not be bound.
    #[error("channel {channel}: cannot listen on {addr}: {source}")]
    Bind {
        /// Channel.
        channel: String,
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The TLS certificate, key or client CA could not be used.
    #[error("channel {channel}: TLS: {source}")]
    Tls {
        /// Channel.
        channel: String,
        /// What is wrong, naming the file.
        source: TlsError,
    },
    /// The channel name is not a subject token.
    #[error("channel {0}: not a usable channel name")]
    BadName(String),
}

/// A bound listener, ready to run.
pub struct Hl7Listener {
    ctx: Arc<ListenerContext>,
    subject: String,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl Hl7Listener {
    /// Binds the channel's address (port 0 picks a free one, for tests).
    pub async fn bind(ctx: ListenerContext) -> Result<Self, ListenerError> {
        let subject = Subject::ingress("hl7v2", &ctx.channel)
            .map_err(|_| ListenerError::BadName(ctx.channel.clone()))?
            .to_string();
        // Before binding: a bad certificate or key stops the start, never serves plain text instead.
        let tls = match &ctx.config.tls {
            Some(files) => Some(tls::acceptor(files).map_err(|source| ListenerError::Tls {
                channel: ctx.channel.clone(),
                source,
            })?),
            None => None,
        };
        let listener = TcpListener::bind(ctx.config.listen)
            .await
            .map_err(|source| ListenerError::Bind {
                channel: ctx.channel.clone(),
                addr: ctx.config.listen,
                source,
            })?;
        Ok(Hl7Listener {
            ctx: Arc::new(ctx),
            subject,
            listener,
            tls,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts until shutdown, then waits for open connections to finish their message in hand.
    pub async fn run(self) {
        let ctx = self.ctx;
        let subject: Arc<str> = self.subject.into();
        let slots = Arc::new(Semaphore::new(ctx.config.max_connections));
        let tasks = TaskTracker::new();
        let tls = self.tls;
        tracing::info!(
            channel = %ctx.channel,
            addr = ?self.listener.local_addr().ok(),
            tls = tls.is_some(),
            "hl7v2 listener accepting"
        );
        loop {
            let permit = tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: pause rather than spin.
                        tracing::warn!(channel = %ctx.channel, error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let (ctx, subject, tls) = (ctx.clone(), subject.clone(), tls.clone());
            tasks.spawn(async move {
                let _permit = permit;
                match tls {
                    None => connection(ctx, subject, stream, peer).await,
                    Some(acceptor) => {
                        if let Some(stream) = handshake(&ctx, &acceptor, stream, peer).await {
                            connection(ctx, subject, stream, peer).await;
                        }
                    }
                }
            });
        }
        tasks.close();
        tasks.wait().await;
        tracing::info!(channel = %ctx.channel, "hl7v2 listener stopped");
    }
}

/// The server side of a TLS handshake; None (logged and counted) when it fails, times out or shutdown comes first.
async fn handshake(
    ctx: &ListenerContext,
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let channel = ctx.channel.as_str();
    let limit = ctx.config.idle_timeout.min(HANDSHAKE_TIMEOUT);
    let reason = tokio::select! {
        _ = ctx.shutdown.cancelled() => return None,
        r = tokio::time::timeout(limit, acceptor.accept(stream)) => match r {
            Ok(Ok(stream)) => {
                let (_, session) = stream.get_ref();
                tracing::debug!(
                    channel,
                    %peer,
                    version = ?session.protocol_version(),
                    client_cert = session.peer_certificates().is_some(),
                    "tls handshake done"
                );
                return Some(stream);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no handshake within {limit:?}"),
        },
    };
    // A plain-text client on a TLS port, an untrusted client certificate, a scanner: that connection only.
    tracing::warn!(channel, %peer, reason, "tls handshake failed: closing the connection");
    metrics::counter!("medbus_tls_handshake_failures_total", "channel" => channel.to_string()).increment(1);
    None
}

/// One connection: frames in, one ACK per frame, in order. Plain TCP or TLS alike.
async fn connection<S>(ctx: Arc<ListenerContext>, subject: Arc<str>, stream: S, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let channel = ctx.channel.as_str();
    metrics::gauge!("medbus_connections", "channel" => channel.to_string()).increment(1.0);
    tracing::debug!(channel, %peer, "connection opened");
    let mut framed = Framed::new(stream, MllpCodec::with_max_frame(ctx.config.max_frame_bytes));
    let reason = loop {
        let next = tokio::select! {
            _ = ctx.shutdown.cancelled() => break "shutdown",
            n = tokio::time::timeout(ctx.config.idle_timeout, framed.next()) => n,
        };
        let item = match next {
            Err(_) => break "idle timeout",
            Ok(None) => break "closed by peer",
            Ok(Some(item)) => item,
        };
        match item {
            Ok(MllpItem::Frame(payload)) => {
                let started = Instant::now();
                let (reply, code) = handle(&ctx, &subject, payload, peer).await;
                metrics::counter!("medbus_acks_total", "channel" => channel.to_string(), "code" => code.as_str())
                    .increment(1);
                if let Some(reply) = reply {
                    if let Err(e) = framed.send(Bytes::from(reply)).await {
                        tracing::info!(channel, %peer, error = %e, "could not send the ACK");
                        break "write failed";
                    }
                }
                metrics::histogram!("medbus_ack_latency_seconds", "channel" => channel.to_string())
                    .record(started.elapsed().as_secs_f64());
            }
            Ok(MllpItem::Junk { len }) => {
                tracing::warn!(channel, %peer, bytes = len, "skipped bytes outside an MLLP frame");
                metrics::counter!("medbus_junk_bytes_total", "channel" => channel.to_string()).increment(len as u64);
            }
            Err(MllpError::FrameTooLarge { limit }) => {
                tracing::warn!(channel, %peer, limit, "frame over the limit: closing the connection");
                metrics::counter!("medbus_frames_refused_total", "channel" => channel.to_string(), "reason" => "too_large")
                    .increment(1);
                break "frame too large";
            }
            Err(MllpError::Truncated { got }) => {
                tracing::warn!(channel, %peer, got, "connection ended inside a frame");
                metrics::counter!("medbus_frames_refused_total", "channel" => channel.to_string(), "reason" => "truncated")
                    .increment(1);
                break "truncated frame";
            }
            Err(e) => {
                tracing::info!(channel, %peer, error = %e, "connection error");
                break "read failed";
            }
        }
    };
    // Close politely: over TLS this sends close_notify, so the peer sees an end, not a truncation.
    let mut stream = framed.into_inner();
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
    tracing::debug!(channel, %peer, reason, "connection closed");
    metrics::gauge!("medbus_connections", "channel" => channel.to_string()).decrement(1.0);
}

/// Keeps one frame and builds its answer: (ACK bytes or None when the sender asked for none, code).
async fn handle(ctx: &ListenerContext, subject: &str, payload: Bytes, peer: SocketAddr) -> (Option<Vec<u8>>, AckCode) {
    let channel = ctx.channel.as_str();
    metrics::counter!("medbus_received_total", "channel" => channel.to_string(), "protocol" => "hl7v2").increment(1);
    let source = Source {
        channel: channel.to_string(),
        protocol: "hl7v2".into(),
        peer: Some(peer.to_string()),
    };
    let parsed = Message::parse(&payload);
    let msg = parsed.as_ref().ok();
    let checked = match &parsed {
        Ok(m) => m.check_header(),
        Err(e) => Err(e.clone()),
    };
    let mut headers = BTreeMap::new();
    if let Some(m) = msg {
        if let Some(f) = m.msh().field(9) {
            headers.insert(
                raw_header::MESSAGE_TYPE.to_string(),
                String::from_utf8_lossy(f.raw()).into_owned(),
            );
        }
        if let Some(id) = m.control_id() {
            headers.insert(raw_header::CONTROL_ID.to_string(), id.text().into_owned());
        }
        if let Some(v) = m.version() {
            headers.insert(raw_header::VERSION.to_string(), v.into_owned());
        }
    }
    let enhanced = msg.is_some_and(|m| m.is_enhanced_mode());
    let (code, error) = match &checked {
        Ok(()) => (AckCode::AA, None),
        // A message we cannot even read the header of is rejected; anything later is an error in content.
        Err(e) if msg.is_none() => (AckCode::AR, Some(AckError::from_parse(e))),
        Err(e) => (AckCode::AE, Some(AckError::from_parse(e))),
    };
    let code = if enhanced { code.commit() } else { code };
    if let Some(e) = &error {
        headers.insert(raw_header::REJECTED.to_string(), e.text.clone());
    }
    headers.insert(raw_header::ACK_CODE.to_string(), code.as_str().to_string());
    let envelope = Envelope::ingress(source, "hl7v2.raw", headers, payload.clone());
    // Accepted: dedupe on channel + MSH-10. Rejected: kept under its own id.
    let dedupe_id = match (&checked, msg.and_then(|m| m.control_id())) {
        (Ok(()), Some(id)) => format!("{channel}:{}", id.text()),
        _ => format!("{channel}:rejected:{}", envelope.id),
    };
    let kept = keep(ctx, subject, &envelope, dedupe_id).await;
    let (code, error) = match kept {
        Ok(()) => (code, error),
        Err(e) => {
            tracing::error!(channel, %peer, correlation_id = %envelope.id, error = %e, "message not kept; answering reject");
            let code = if enhanced { AckCode::CR } else { AckCode::AR };
            (code, Some(AckError::not_kept(&e.to_string())))
        }
    };
    let control_id = msg
        .and_then(|m| m.control_id())
        .map(|c| c.text().into_owned())
        .unwrap_or_default();
    if code.is_accept() {
        // Debug, not info: every message is in the store already, and a line per message costs at full rate.
        tracing::debug!(channel, %peer, correlation_id = %envelope.id, control_id, outcome = code.as_str(), "hl7v2 message");
    } else {
        let reason = error.as_ref().map(|e| e.text.as_str()).unwrap_or_default();
        tracing::warn!(channel, %peer, correlation_id = %envelope.id, control_id, outcome = code.as_str(), reason, "hl7v2 message not accepted");
    }
    if enhanced && !wants_commit_ack(msg, code) {
        return (None, code);
    }
    let ack_id = format!("{}", envelope.id.simple());
    (Some(ack::build(msg, code, error.as_ref(), &ack_id)), code)
}

/// Enhanced mode: MSH-15 says whether a commit ACK is wanted for this outcome.
fn wants_commit_ack(msg: Option<&Message<'_>>, code: AckCode) -> bool {
    match msg.and_then(|m| m.accept_ack_type()) {
        Some(AckType::Never) => false,
        Some(AckType::Error) => !code.is_accept(),
        Some(AckType::Successful) => code.is_accept(),
        Some(AckType::Always) | None => true,
    }
}

/// Publishes and waits for the durable ack; one retry with the same dedupe id
/// when the outcome is unknown, since the first attempt may have been stored.
async fn keep(
    ctx: &ListenerContext,
    subject: &str,
    envelope: &Envelope,
    dedupe_id: String,
) -> Result<(), BackboneError> {
    medbus_bus::backbone::keep::keep_durably(ctx.backbone.as_ref(), subject, envelope, dedupe_id).await
}
