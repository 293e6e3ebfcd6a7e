//! Inbound channels: a listener and its protocol. Route rules that act on a
//! channel's messages live in the routes crate; this is what a listener needs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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

/// TLS for a listener: PEM files (the key is read from disk, never from config text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
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
    /// Optional TLS.
    pub tls: Option<TlsFiles>,
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
            enabled: true,
        }
    }
}
