//! Outbound destinations: where medbus delivers messages (an MLLP server of a
//! downstream system, for now). Each destination has its own egress subject
//! (`medbus.egress.<protocol>.<name>`) and its own delivery consumer, so one
//! slow or unreachable system never holds up another.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::tls::TlsClientFiles;

/// Protocols a destination can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationProtocol {
    /// HL7 v2 over MLLP.
    Hl7v2,
}

impl DestinationProtocol {
    /// The subject token (`medbus.egress.<token>.<destination>`).
    pub fn token(self) -> &'static str {
        match self {
            DestinationProtocol::Hl7v2 => "hl7v2",
        }
    }
}

/// What to do when the receiver answers with an error (AE) or a reject (AR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalPolicy {
    /// Try again after backoff: the receiver may be temporarily unable.
    Retry,
    /// Give up on this message: it goes to the dead-letter subject with the receiver's text,
    /// and the next message is delivered.
    DeadLetter,
}

/// One outbound destination (`[destinations.<name>]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DestinationConfig {
    /// Protocol. Default `hl7v2`.
    pub protocol: DestinationProtocol,
    /// `host:port` of the receiver. Required.
    pub addr: String,
    /// How long a connection attempt may take. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long to wait for the ACK of one message. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub ack_timeout: Duration,
    /// First retry delay; doubles on each failure up to `max_backoff`. Default `200ms`.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Longest retry delay. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Policy for AE answers. Default `dead_letter` (the content is wrong; resending will not help).
    pub on_ae: RefusalPolicy,
    /// Policy for AR answers. Default `retry` (the receiver could not take it now).
    pub on_ar: RefusalPolicy,
    /// Largest ACK frame accepted from the receiver. Default 1 MiB.
    pub max_frame_bytes: usize,
    /// Optional TLS towards the receiver (MLLP over TLS). Default none: plain TCP.
    pub tls: Option<TlsClientFiles>,
    /// False stops delivery (messages wait on the backbone) without removing the destination. Default true.
    pub enabled: bool,
}

impl Default for DestinationConfig {
    fn default() -> Self {
        DestinationConfig {
            protocol: DestinationProtocol::Hl7v2,
            addr: String::new(),
            connect_timeout: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            on_ae: RefusalPolicy::DeadLetter,
            on_ar: RefusalPolicy::Retry,
            max_frame_bytes: 1 << 20,
            tls: None,
            enabled: true,
        }
    }
}

/// Longest destination name: the delivery consumer is `deliver_<name>`, and a token is at most 64 bytes.
pub const MAX_NAME_LEN: usize = 56;

/// The delivery consumer (and dead-letter stage) of a destination.
pub fn consumer_name(destination: &str) -> String {
    format!("deliver_{destination}")
}

/// Problems with one destination, as (key, message).
pub fn validate(name: &str, d: &DestinationConfig) -> Vec<(String, String)> {
    let mut p = Vec::new();
    let key = |k: &str| format!("destinations.{name}.{k}");
    if let Err(e) = crate::subjects::check_token(name) {
        p.push((
            format!("destinations.{name}"),
            format!("not a usable destination name: {e}"),
        ));
    } else if name.len() > MAX_NAME_LEN {
        p.push((
            format!("destinations.{name}"),
            format!("destination names are at most {MAX_NAME_LEN} characters"),
        ));
    }
    match d.addr.rsplit_once(':') {
        _ if d.addr.is_empty() => p.push((key("addr"), "required: host:port of the receiver".into())),
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {}
        _ => p.push((key("addr"), format!("must be host:port, got {:?}", d.addr))),
    }
    for (k, v) in [
        ("connect_timeout", d.connect_timeout),
        ("ack_timeout", d.ack_timeout),
        ("initial_backoff", d.initial_backoff),
    ] {
        if v.is_zero() {
            p.push((key(k), "must be more than 0s".into()));
        }
    }
    if d.max_backoff < d.initial_backoff {
        p.push((key("max_backoff"), "must be at least initial_backoff".into()));
    }
    if !(1024..=64 << 20).contains(&d.max_frame_bytes) {
        p.push((key("max_frame_bytes"), "must be between 1024 and 67108864".into()));
    }
    if let Some(tls) = &d.tls {
        p.extend(tls.problems().into_iter().map(|(k, m)| (key(&format!("tls.{k}")), m)));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_needs_an_address_and_sane_limits() {
        let d = DestinationConfig::default();
        let keys: Vec<String> = validate("his", &d).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["destinations.his.addr"]);
        let d = DestinationConfig {
            addr: "127.0.0.1:6661".into(),
            ..Default::default()
        };
        assert!(validate("his", &d).is_empty());
        let d = DestinationConfig {
            addr: "no-port".into(),
            initial_backoff: Duration::from_secs(60),
            max_frame_bytes: 3,
            ..Default::default()
        };
        let keys: Vec<String> = validate("a.b", &d).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "destinations.a.b",
                "destinations.a.b.addr",
                "destinations.a.b.max_backoff",
                "destinations.a.b.max_frame_bytes"
            ]
        );
        let long = "x".repeat(MAX_NAME_LEN + 1);
        let d = DestinationConfig {
            addr: "h:1".into(),
            ..Default::default()
        };
        assert_eq!(validate(&long, &d).len(), 1);
        let d = DestinationConfig {
            addr: "h:1".into(),
            tls: Some(TlsClientFiles {
                ca: None,
                cert: Some("/nonexistent/client.pem".into()),
                key: None,
                server_name: None,
            }),
            ..Default::default()
        };
        let keys: Vec<String> = validate("his", &d).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["destinations.his.tls.cert", "destinations.his.tls.key"]);
    }
}
