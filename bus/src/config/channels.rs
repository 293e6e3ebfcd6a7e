//! Inbound channels: a listener and its protocol. Route rules that act on a
//! channel's messages live in the routes crate; this is what a listener needs.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

// Kept reachable here, where it lived before it moved to `config::tls`.
pub use super::tls::TlsFiles;

/// Protocols a channel can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelProtocol {
    /// HL7 v2 over MLLP.
    Hl7v2,
}

impl ChannelProtocol {
    /// The subject token (`medbus.ingress.<token>.<channel>`).
    pub fn token(self) -> &'static str {
        match self {
            ChannelProtocol::Hl7v2 => "hl7v2",
        }
    }
}

/// One inbound channel. The channel's name (its key under `[channels]`) is a
/// subject token and the dedupe scope of its control ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelConfig {
    /// Protocol. Default `hl7v2`.
    pub protocol: ChannelProtocol,
    /// Listen address. Default `127.0.0.1:2575`.
    pub listen: SocketAddr,
    /// Largest accepted frame in bytes; a larger one gets the connection closed. Default 1 MiB.
    pub max_frame_bytes: usize,
    /// A connection silent this long is closed. Default `5m`.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Most concurrent connections; more wait to be accepted. Default 256.
    pub max_connections: usize,
    /// Optional TLS (MLLP over TLS); with `client_ca`, mutual TLS.
    pub tls: Option<TlsFiles>,
    /// Destination (a `[destinations]` name) that receives the application ACKs of
    /// enhanced-mode messages (MSH-16 AL, ER or SU), built from the processing outcome.
    /// None: such messages still get their commit ACK, and the application ACK is logged
    /// as not sent. Default none.
    pub application_acks: Option<String>,
    /// False stops the listener without removing the channel. Default true.
    pub enabled: bool,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            protocol: ChannelProtocol::Hl7v2,
            listen: SocketAddr::from(([127, 0, 0, 1], 2575)),
            max_frame_bytes: 1 << 20,
            idle_timeout: Duration::from_secs(300),
            max_connections: 256,
            tls: None,
            application_acks: None,
            enabled: true,
        }
    }
}
