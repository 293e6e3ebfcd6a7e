//! DICOM destinations (`[dicom_destinations.<name>]`): instances received on
//! DICOM channels sent on to a PACS (or any storage SCP) with C-STORE, over an
//! association kept open between instances, with retries and a dead letter
//! carrying the PACS's status. Each destination has its own durable consumer
//! (`dicom_<name>`), so one slow PACS never holds up another. See docs/dicom.md.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One DICOM destination (`[dicom_destinations.<name>]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DicomDestinationConfig {
    /// DICOM channels (`[dicom.<name>]`) whose instances are forwarded. Empty:
    /// every DICOM channel. Default empty.
    pub channels: Vec<String>,
    /// Host name or address of the PACS. Required.
    pub host: String,
    /// Its DICOM port. Required.
    pub port: u16,
    /// The PACS's AE title (Called AE). Required.
    pub called_ae: String,
    /// Our AE title (Calling AE). Default `MEDBUS`.
    pub calling_ae: String,
    /// Largest PDU we receive, in bytes (4 KiB–4 MiB); what we send is cut to
    /// the PACS's own limit. Default 65536.
    pub max_pdu_length: u32,
    /// Limit on connecting and negotiating, on writing each PDU of an
    /// instance (a large instance takes as long as it needs while it keeps
    /// moving), and on the answer after its last byte. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts per instance before it is dead-lettered. Default 10.
    pub max_attempts: u32,
    /// First retry delay; doubles on each failure up to `backoff_max`. Default `1s`.
    #[serde(with = "humantime_serde")]
    pub backoff_initial: Duration,
    /// Longest retry delay. Default `5m`.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// An association with nothing to send for this long is released. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub association_idle: Duration,
    /// False stops forwarding (instances wait on the backbone) without removing the destination. Default true.
    pub enabled: bool,
}

impl Default for DicomDestinationConfig {
    fn default() -> Self {
        DicomDestinationConfig {
            channels: Vec::new(),
            host: String::new(),
            port: 0,
            called_ae: String::new(),
            calling_ae: "MEDBUS".into(),
            max_pdu_length: 64 * 1024,
            timeout: Duration::from_secs(60),
            max_attempts: 10,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            association_idle: Duration::from_secs(30),
            enabled: true,
        }
    }
}

impl DicomDestinationConfig {
    /// True when instances of DICOM channel `channel` are forwarded here.
    pub fn wants(&self, channel: &str) -> bool {
        self.channels.is_empty() || self.channels.iter().any(|c| c == channel)
    }
}

const CONSUMER_PREFIX: &str = "dicom_";

/// Longest destination name: the consumer `dicom_<name>` must stay a 64-byte token.
pub const MAX_NAME_LEN: usize = 64 - CONSUMER_PREFIX.len();

/// The delivery consumer (and dead-letter stage, `medbus.dlq.dicom_<name>`) of a DICOM destination.
pub fn consumer_name(destination: &str) -> String {
    format!("{CONSUMER_PREFIX}{destination}")
}

/// The environment variable that sets `key` of DICOM destination `name`
/// (`pacs-main`, `host` → `MEDBUS_DICOM_DESTINATIONS_PACS_MAIN_HOST`).
pub fn env_var(name: &str, key: &str) -> String {
    super::named::env_var("dicom_destinations", name, key)
}

/// The config key (`dicom_destinations.<name>.<key>`) an environment variable
/// sets, for the destinations named in the file `table`.
pub fn env_key(table: &toml::Table, var: &str) -> Option<String> {
    super::named::env_key(table, "dicom_destinations", &known_keys(), var)
}

/// Every key of one DICOM destination with its default, for `medbus config keys`.
pub fn known_keys() -> Vec<(String, toml::Value)> {
    super::named::known_keys::<DicomDestinationConfig>()
}

/// Problems with one DICOM destination, as (key, message). Whether `channels`
/// name configured channels is checked by the caller, which knows them.
pub fn validate(name: &str, d: &DicomDestinationConfig) -> Vec<(String, String)> {
    let mut p = Vec::new();
    let key = |k: &str| format!("dicom_destinations.{name}.{k}");
    if let Err(e) = crate::subjects::check_token(name) {
        p.push((
            format!("dicom_destinations.{name}"),
            format!("not a usable DICOM destination name: {e}"),
        ));
    } else if name.len() > MAX_NAME_LEN {
        p.push((
            format!("dicom_destinations.{name}"),
            format!("DICOM destination names are at most {MAX_NAME_LEN} characters"),
        ));
    }
    let host = d.host.trim();
    if host.is_empty() {
        p.push((key("host"), "required: the PACS's host name or address".into()));
    } else if host.contains(['/', ' ', ':']) && host.parse::<std::net::Ipv6Addr>().is_err() {
        p.push((key("host"), format!("{host:?} is not a host name or address")));
    }
    if d.port == 0 {
        p.push((key("port"), "required: the PACS's DICOM port (1–65535)".into()));
    }
    for (k, ae) in [("called_ae", &d.called_ae), ("calling_ae", &d.calling_ae)] {
        if let Some(why) = super::dicom::ae_problem(ae) {
            p.push((key(k), why));
        }
    }
    if !(4096..=4 << 20).contains(&d.max_pdu_length) {
        p.push((key("max_pdu_length"), "must be between 4096 and 4194304".into()));
    }
    for (k, v) in [
        ("timeout", d.timeout),
        ("backoff_initial", d.backoff_initial),
        ("association_idle", d.association_idle),
    ] {
        if v.is_zero() {
            p.push((key(k), "must be more than 0s".into()));
        }
    }
    if d.backoff_max < d.backoff_initial {
        p.push((key("backoff_max"), "must be at least backoff_initial".into()));
    }
    if d.max_attempts == 0 {
        p.push((key("max_attempts"), "must be at least 1".into()));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> DicomDestinationConfig {
        DicomDestinationConfig {
            host: "pacs.example".into(),
            port: 104,
            called_ae: "PACS".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_dicom_destination_needs_a_peer_and_sane_limits() {
        assert!(validate("pacs", &good()).is_empty());
        let keys: Vec<String> = validate("pacs", &DicomDestinationConfig::default())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [
                "dicom_destinations.pacs.host",
                "dicom_destinations.pacs.port",
                "dicom_destinations.pacs.called_ae"
            ]
        );
        let bad = DicomDestinationConfig {
            host: "http://pacs".into(),
            calling_ae: "A_TITLE_FAR_TOO_LONG".into(),
            max_pdu_length: 100,
            association_idle: Duration::ZERO,
            backoff_initial: Duration::from_secs(600),
            max_attempts: 0,
            ..good()
        };
        let keys: Vec<String> = validate("a.b", &bad).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "dicom_destinations.a.b",
                "dicom_destinations.a.b.host",
                "dicom_destinations.a.b.calling_ae",
                "dicom_destinations.a.b.max_pdu_length",
                "dicom_destinations.a.b.association_idle",
                "dicom_destinations.a.b.backoff_max",
                "dicom_destinations.a.b.max_attempts",
            ]
        );
        assert!(validate(
            "pacs",
            &DicomDestinationConfig {
                host: "::1".into(),
                ..good()
            }
        )
        .is_empty());
        assert_eq!(validate(&"x".repeat(MAX_NAME_LEN + 1), &good()).len(), 1);
        assert_eq!(consumer_name(&"x".repeat(MAX_NAME_LEN)).len(), 64);
    }

    #[test]
    fn channels_select_what_is_forwarded() {
        assert!(good().wants("modalities"), "no list: every channel");
        let d = DicomDestinationConfig {
            channels: vec!["ct".into()],
            ..good()
        };
        assert!(d.wants("ct"));
        assert!(!d.wants("mr"));
    }

    #[test]
    fn the_loader_reads_the_table_with_lines_and_environment_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("medbus.toml");
        std::fs::write(
            &path,
            "[dicom.ct]\nlisten = \"127.0.0.1:11112\"\n\n[dicom_destinations.pacs-main]\nhost = \"127.0.0.1\"\nport = 4242\ncalled_ae = \"ORTHANC\"\nchannels = [\"ct\"]\n",
        )
        .unwrap();
        let env = [(
            "MEDBUS_DICOM_DESTINATIONS_PACS_MAIN_PORT".to_string(),
            "104".to_string(),
        )]
        .into_iter()
        .collect();
        let c = crate::config::load(Some(&path), &env).unwrap();
        let d = &c.dicom_destinations["pacs-main"];
        assert_eq!(
            (d.host.as_str(), d.port, d.called_ae.as_str()),
            ("127.0.0.1", 104, "ORTHANC")
        );
        assert_eq!(d.max_attempts, 10, "defaults fill the rest");
        assert_eq!(d.association_idle, Duration::from_secs(30));
        assert_eq!(
            env_var("pacs-main", "association_idle"),
            "MEDBUS_DICOM_DESTINATIONS_PACS_MAIN_ASSOCIATION_IDLE"
        );

        std::fs::write(
            &path,
            "[dicom_destinations.pacs]\nhost = \"\"\nport = 4242\ncalled_ae = \"PACS\"\nchannels = [\"nowhere\"]\nretries = 3\n",
        )
        .unwrap();
        let problems = crate::config::load(Some(&path), &Default::default())
            .unwrap_err()
            .to_string();
        for (k, line) in [
            ("dicom_destinations.pacs.host", 2),
            ("dicom_destinations.pacs.channels", 5),
            ("dicom_destinations.pacs.retries", 6),
        ] {
            assert!(problems.contains(k), "{k} in {problems}");
            assert!(
                problems.contains(&format!("medbus.toml:{line}")),
                "line {line} in {problems}"
            );
        }
        let keys: Vec<String> = crate::config::known_keys().into_iter().map(|(k, _)| k).collect();
        assert!(keys.contains(&"dicom_destinations.<name>.called_ae".to_string()));
    }
}
