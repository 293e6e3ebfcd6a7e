//! The MLLP sender: delivers HL7 v2 messages to one downstream MLLP server, in
//! order, over one reused connection.
//!
//! Each message waits for its ACK (MSA-2 must match its MSH-10; a stale ACK
//! for an earlier, timed-out message is skipped) within `ack_timeout`. Any
//! connection problem drops the connection; the next attempt reconnects.
//! [`MllpSender::deliver`] retries with exponential backoff until the message
//! is accepted, or an AE/AR answer is final by policy, or shutdown.
//!
//! With [`SenderConfig::tls`] the connection is TLS (optionally presenting a
//! client certificate); the TCP connect and the handshake share
//! `connect_timeout`, and a failed handshake is a retryable
//! [`SendError::Connect`]. Under TLS 1.3 a server that refuses our client
//! certificate says so only after the client's side of the handshake is done,
//! so that shows as a (also retryable) [`SendError::Connection`] on the first exchange.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::mllp_codec::{MllpCodec, MllpItem};
use super::parser::Message;
use super::tls::ClientTls;

/// What to do when the receiver answers AE or AR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Try again after backoff (the receiver may be temporarily unable).
    Retry,
    /// Give up: the caller dead-letters the message with the ACK's text.
    DeadLetter,
}

/// Settings of one MLLP destination.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// `host:port`.
    pub addr: String,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// How long to wait for the ACK of one message.
    pub ack_timeout: Duration,
    /// First retry delay; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Policy for AE answers.
    pub on_ae: OnError,
    /// Policy for AR answers.
    pub on_ar: OnError,
    /// Largest ACK frame accepted.
    pub max_frame_bytes: usize,
    /// TLS (trusted roots, client certificate, server name); None: plain TCP.
    pub tls: Option<ClientTls>,
}

impl SenderConfig {
    /// Defaults for `addr`: 5 s connect, 30 s ACK, backoff 200 ms → 30 s, AE dead-letters, AR retries.
    pub fn new(addr: impl Into<String>) -> Self {
        SenderConfig {
            addr: addr.into(),
            connect_timeout: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            on_ae: OnError::DeadLetter,
            on_ar: OnError::Retry,
            max_frame_bytes: 1 << 20,
            tls: None,
        }
    }
}

/// The receiver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckOutcome {
    /// MSA-1 (AA, AE, AR, CA, CE, CR).
    pub code: String,
    /// MSA-3 or ERR-8 text, if any.
    pub text: Option<String>,
}

impl AckOutcome {
    /// AA or CA.
    pub fn is_accept(&self) -> bool {
        self.code == "AA" || self.code == "CA"
    }
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The message itself cannot be sent (not HL7, no MSH-10): do not retry.
    #[error("message cannot be sent: {0}")]
    BadMessage(String),
    /// Could not connect.
    #[error("cannot connect to {addr}: {why}")]
    Connect {
        /// Destination.
        addr: String,
        /// Cause.
        why: String,
    },
    /// No matching ACK in time.
    #[error("no ACK from {0} in time")]
    AckTimeout(String),
    /// The connection broke.
    #[error("connection to {addr} failed: {why}")]
    Connection {
        /// Destination.
        addr: String,
        /// Cause.
        why: String,
    },
    /// The receiver answered AE/AR and the policy says give up.
    #[error("refused by the receiver with {}: {}", .0.code, .0.text.as_deref().unwrap_or("no reason given"))]
    Refused(AckOutcome),
    /// Shutdown came first.
    #[error("shutting down")]
    Shutdown,
}

impl SendError {
    /// True when a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SendError::Connect { .. } | SendError::AckTimeout(_) | SendError::Connection { .. }
        )
    }
}

/// The byte stream under the framing: plain TCP or TLS, so both share the exchange code.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

type Connection = Framed<Box<dyn Io>, MllpCodec>;

/// A sender to one destination. Not shared: one task owns it, which keeps order.
pub struct MllpSender {
    cfg: SenderConfig,
    conn: Option<Connection>,
}

impl MllpSender {
    /// A sender; connects on first use.
    pub fn new(cfg: SenderConfig) -> Self {
        MllpSender { cfg, conn: None }
    }

    async fn connection(&mut self) -> Result<&mut Connection, SendError> {
        if self.conn.is_none() {
            let stream = self.open().await?;
            self.conn = Some(Framed::new(stream, MllpCodec::with_max_frame(self.cfg.max_frame_bytes)));
        }
        self.conn.as_mut().ok_or_else(|| SendError::Connection {
            addr: self.cfg.addr.clone(),
            why: "no connection".into(),
        })
    }

    /// TCP connect, then the TLS handshake when configured, both within `connect_timeout`.
    async fn open(&self) -> Result<Box<dyn Io>, SendError> {
        let addr = self.cfg.addr.as_str();
        let failed = |why: String| SendError::Connect {
            addr: addr.to_string(),
            why,
        };
        let connect = async {
            let stream = TcpStream::connect(addr).await.map_err(|e| failed(e.to_string()))?;
            let _ = stream.set_nodelay(true);
            let Some(tls) = &self.cfg.tls else {
                return Ok(Box::new(stream) as Box<dyn Io>);
            };
            let stream = tls
                .connector()
                .connect(tls.server_name().clone(), stream)
                .await
                .map_err(|e| failed(format!("TLS handshake failed: {e}")))?;
            Ok(Box::new(stream) as Box<dyn Io>)
        };
        tokio::time::timeout(self.cfg.connect_timeout, connect)
            .await
            .map_err(|_| failed("timed out".into()))?
    }

    /// One attempt: send `msg` and wait for its ACK. Drops the connection on any failure.
    pub async fn send(&mut self, msg: &[u8]) -> Result<AckOutcome, SendError> {
        let control_id = Message::parse(msg)
            .map_err(|e| SendError::BadMessage(e.to_string()))?
            .control_id()
            .map(|c| c.raw().to_vec())
            .ok_or_else(|| SendError::BadMessage("no MSH-10 control id".into()))?;
        let result = self.exchange(msg, &control_id).await;
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn exchange(&mut self, msg: &[u8], control_id: &[u8]) -> Result<AckOutcome, SendError> {
        let addr = self.cfg.addr.clone();
        let ack_timeout = self.cfg.ack_timeout;
        let broken = |why: String| SendError::Connection {
            addr: addr.clone(),
            why,
        };
        let conn = self.connection().await?;
        conn.send(Bytes::copy_from_slice(msg))
            .await
            .map_err(|e| broken(e.to_string()))?;
        let wait = async {
            loop {
                match conn.next().await {
                    None => return Err(broken("closed by the receiver".into())),
                    Some(Err(e)) => return Err(broken(e.to_string())),
                    Some(Ok(MllpItem::Junk { .. })) => continue,
                    Some(Ok(MllpItem::Frame(frame))) => {
                        if let Some(outcome) = read_ack(&frame, control_id) {
                            return Ok(outcome);
                        }
                        // An ACK for something else (a late answer to an earlier attempt): keep waiting.
                        tracing::debug!(destination = %addr, "skipped an ACK that does not match");
                    }
                }
            }
        };
        tokio::time::timeout(ack_timeout, wait)
            .await
            .map_err(|_| SendError::AckTimeout(self.cfg.addr.clone()))?
    }

    /// Delivers `msg`: retries with backoff until accepted, refused for good, or `shutdown`.
    pub async fn deliver(&mut self, msg: &[u8], shutdown: &CancellationToken) -> Result<AckOutcome, SendError> {
        let mut backoff = self.cfg.initial_backoff;
        loop {
            let err = match self.send(msg).await {
                Ok(ack) if ack.is_accept() => return Ok(ack),
                Ok(ack) => {
                    let policy = if ack.code.ends_with('E') {
                        self.cfg.on_ae
                    } else {
                        self.cfg.on_ar
                    };
                    if policy == OnError::DeadLetter {
                        return Err(SendError::Refused(ack));
                    }
                    SendError::Refused(ack)
                }
                Err(e) if e.is_retryable() => e,
                Err(e) => return Err(e),
            };
            tracing::warn!(destination = %self.cfg.addr, error = %err, retry_in = ?backoff, "delivery failed; retrying");
            tokio::select! {
                _ = shutdown.cancelled() => return Err(SendError::Shutdown),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(self.cfg.max_backoff);
        }
    }
}

/// The outcome if `frame` is an ACK whose MSA-2 is `control_id`.
fn read_ack(frame: &[u8], control_id: &[u8]) -> Option<AckOutcome> {
    let ack = Message::parse(frame).ok()?;
    let msa = ack.segment("MSA", 1)?;
    if msa.field(2).map(|f| f.raw()) != Some(control_id) {
        return None;
    }
    let code = msa.field(1)?.text().into_owned();
    let text = msa
        .field(3)
        .map(|f| f.text().into_owned())
        .or_else(|| ack.get("ERR-8").ok().flatten().map(|v| v.text().into_owned()))
        .filter(|t| !t.is_empty());
    Some(AckOutcome { code, text })
}
