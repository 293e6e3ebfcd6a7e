//! The configuration model: serde structs whose doc comments are the reference
//! for `config/medbus.toml`. Every key has a default, so an empty file is valid.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::channels::ChannelConfig;
use super::destinations::DestinationConfig;

/// The whole medbus configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Directory for the embedded backbone log, the SQLite store and files. Default `./data`.
    pub data_dir: PathBuf,
    /// The operator HTTP server (/healthz, /readyz, /metrics).
    pub http: HttpConfig,
    /// The message backbone.
    pub backbone: BackboneConfig,
    /// The database.
    pub store: StoreConfig,
    /// Logging.
    pub log: LogConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Inbound channels by name (`[channels.adt]`). None by default.
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Outbound destinations by name (`[destinations.his]`). None by default.
    pub destinations: BTreeMap<String, DestinationConfig>,
    /// Directory of the route files (`*.toml`, see docs/routes.md). A relative path is taken from the
    /// directory of the config file, so the default `routes` is `config/routes` beside `config/medbus.toml`.
    pub routes_dir: PathBuf,
    /// The orders, results and billing services (`[services.*]`).
    pub services: super::services::ServicesConfig,
    /// Notification rules (`[notifications]`).
    pub notifications: super::notifications::NotificationsConfig,
    /// Webhook subscriptions of downstream consumers by name (`[subscriptions.erp]`). None by default.
    pub subscriptions: BTreeMap<String, super::subscriptions::SubscriptionConfig>,
    /// FHIR servers canonical events are pushed to, by name (`[fhir_destinations.emr]`). None by default.
    pub fhir_destinations: BTreeMap<String, super::fhir_destinations::FhirDestinationConfig>,
    /// The inbound FHIR R4 server (`[fhir]`).
    pub fhir: super::fhir_server::FhirServerConfig,
    /// DICOM storage SCPs by channel name (`[dicom.modalities]`). None by default.
    pub dicom: BTreeMap<String, super::dicom::DicomChannelConfig>,
    /// PACS that received DICOM instances are forwarded to, by name (`[dicom_destinations.pacs]`). None by default.
    pub dicom_destinations: BTreeMap<String, super::dicom_destinations::DicomDestinationConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            http: HttpConfig::default(),
            backbone: BackboneConfig::default(),
            store: StoreConfig::default(),
            log: LogConfig::default(),
            shutdown: ShutdownConfig::default(),
            channels: BTreeMap::new(),
            destinations: BTreeMap::new(),
            routes_dir: PathBuf::from("routes"),
            services: Default::default(),
            notifications: Default::default(),
            subscriptions: BTreeMap::new(),
            fhir_destinations: BTreeMap::new(),
            fhir: Default::default(),
            dicom: BTreeMap::new(),
            dicom_destinations: BTreeMap::new(),
        }
    }
}

/// The operator HTTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// Listen address. Default `127.0.0.1:8080`.
    pub addr: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// When the embedded log calls fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPolicy {
    /// Before every acknowledgement (group-committed). The default: survives power loss.
    Always,
    /// Never explicitly; the OS writes back. Survives a process crash, not power loss.
    Os,
}

/// The message backbone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackboneConfig {
    /// `embedded` (a log file under data_dir, nothing to install) or `nats://host:port` (JetStream).
    pub url: String,
    /// Prefix of the JetStream stream names (`<prefix>_INGRESS`, `_EVENTS`, `_EGRESS`, `_DLQ`).
    pub stream_prefix: String,
    /// A dedupe id seen within this window is not stored twice. Default `2m`.
    #[serde(with = "humantime_serde")]
    pub duplicate_window: Duration,
    /// Messages older than this are removed from the backbone. Default `7days`.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// A delivery not acknowledged within this is delivered again. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub ack_wait: Duration,
    /// Attempts before a message is dead-lettered. Default 5.
    pub max_deliver: u32,
    /// Most unacknowledged deliveries per consumer. Default 1024.
    pub max_ack_pending: usize,
    /// How long a publish waits for the durable ack before it is reported unknown. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub publish_timeout: Duration,
    /// Embedded log only: `always` fsyncs before acknowledging (default), `os` leaves it to the OS.
    pub sync: SyncPolicy,
}

impl Default for BackboneConfig {
    fn default() -> Self {
        BackboneConfig {
            url: "embedded".into(),
            stream_prefix: "MEDBUS".into(),
            duplicate_window: Duration::from_secs(120),
            max_age: Duration::from_secs(7 * 24 * 3600),
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            max_ack_pending: 1024,
            publish_timeout: Duration::from_secs(5),
            sync: SyncPolicy::Always,
        }
    }
}

/// The database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    /// `embedded` (SQLite file `medbus.db` under data_dir), `sqlite://PATH` or `postgres://user@host/db`.
    pub url: String,
    /// Largest connection pool. Default 16 (SQLite uses fewer writers regardless).
    pub max_connections: u32,
    /// How long to wait for a connection. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "embedded".into(),
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// `human` (default) or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `medbus=debug,info`. `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

/// Graceful shutdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShutdownConfig {
    /// After SIGINT/SIGTERM, in-flight work has this long to finish. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            deadline: Duration::from_secs(10),
        }
    }
}
