//! DICOM channels (`[dicom.<name>]`): storage SCPs that modalities and PACS
//! send instances to with C-STORE. Each instance is written under
//! `storage_dir` and its metadata kept on `medbus.ingress.dicom.<name>`
//! before the success status is returned.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One DICOM channel (`[dicom.<name>]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DicomChannelConfig {
    /// Address the SCP listens on. Default `127.0.0.1:11112`.
    pub listen: SocketAddr,
    /// Our AE title; an association calling another is rejected. Default `MEDBUS`.
    pub ae_title: String,
    /// Calling AE titles accepted; empty accepts any. Default empty.
    pub allowed_calling_aes: Vec<String>,
    /// Largest PDU we receive, in bytes (4 KiB–4 MiB). Default 65536.
    pub max_pdu_length: u32,
    /// Associations at once; more are rejected (transient). Default 32.
    pub max_associations: usize,
    /// Bytes all associations together may hold in data sets being received
    /// (each is buffered whole before it is stored); a data set that would go
    /// over is answered "out of resources" (0xA700) and the sender retries
    /// later. At least 1 MiB. Default 2 GiB.
    pub max_buffered_bytes: u64,
    /// Longest one association may last. Default `1h`.
    #[serde(with = "humantime_serde")]
    pub association_timeout: Duration,
    /// Longest wait for the next PDU. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Where instances are written (`<study>/<series>/<sop>.dcm`). Empty:
    /// `<data_dir>/dicom/<name>`. Default empty.
    pub storage_dir: PathBuf,
    /// The assigning authority of the Patient IDs this channel's senders use
    /// (the HL7 CX-4 namespace the same IDs come with, e.g. `HOSP`): Patient
    /// IDs get the identifier system `urn:medbus:authority:<name>`, so the
    /// patients meet those of HL7 v2 and FHIR input. Empty: Patient IDs have no
    /// system (they match only patients known by value alone). Default empty.
    pub patient_id_authority: String,
    /// False stops the listener without removing the channel. Default true.
    pub enabled: bool,
}

impl Default for DicomChannelConfig {
    fn default() -> Self {
        DicomChannelConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 11112)),
            ae_title: "MEDBUS".into(),
            allowed_calling_aes: Vec::new(),
            max_pdu_length: 64 * 1024,
            max_associations: 32,
            max_buffered_bytes: 2 << 30,
            association_timeout: Duration::from_secs(3600),
            idle_timeout: Duration::from_secs(60),
            storage_dir: PathBuf::new(),
            patient_id_authority: String::new(),
            enabled: true,
        }
    }
}

/// Where channel `name` writes its instances, under `data_dir` unless set.
pub fn storage_dir(data_dir: &std::path::Path, name: &str, c: &DicomChannelConfig) -> PathBuf {
    if c.storage_dir.as_os_str().is_empty() {
        data_dir.join("dicom").join(name)
    } else {
        c.storage_dir.clone()
    }
}

/// Why `ae` is not a usable AE title (DICOM: 1–16 characters of the default
/// repertoire, no backslash or control characters, not only spaces).
pub(super) fn ae_problem(ae: &str) -> Option<String> {
    if ae.trim().is_empty() {
        Some("must not be empty".into())
    } else if ae.len() > 16 {
        Some(format!("{ae:?} is longer than 16 characters"))
    } else if ae.chars().any(|c| !(' '..='~').contains(&c) || c == '\\') {
        Some(format!("{ae:?} has a character outside the DICOM default repertoire"))
    } else {
        None
    }
}

/// Problems with channel `name`, as (key, message). The listen address is
/// checked against the others by the caller.
pub fn validate(name: &str, c: &DicomChannelConfig) -> Vec<(String, String)> {
    let key = |k: &str| format!("dicom.{name}.{k}");
    let mut out = Vec::new();
    if let Err(e) = crate::subjects::check_token(name) {
        out.push((format!("dicom.{name}"), format!("not a usable channel name: {e}")));
    }
    if let Some(p) = ae_problem(&c.ae_title) {
        out.push((key("ae_title"), p));
    }
    for ae in &c.allowed_calling_aes {
        if let Some(p) = ae_problem(ae) {
            out.push((key("allowed_calling_aes"), p));
        }
    }
    if !(4096..=4 << 20).contains(&c.max_pdu_length) {
        out.push((key("max_pdu_length"), "must be between 4096 and 4194304".into()));
    }
    if c.max_associations == 0 {
        out.push((key("max_associations"), "must be at least 1".into()));
    }
    if c.max_buffered_bytes < 1 << 20 {
        out.push((key("max_buffered_bytes"), "must be at least 1048576 (1 MiB)".into()));
    }
    if c.association_timeout.is_zero() {
        out.push((key("association_timeout"), "must be more than 0s".into()));
    }
    if c.idle_timeout.is_zero() {
        out.push((key("idle_timeout"), "must be more than 0s".into()));
    }
    if let Some(p) = authority_problem(&c.patient_id_authority) {
        out.push((key("patient_id_authority"), p));
    }
    out
}

/// Why `name` is not a usable patient ID authority (empty means none): at
/// most 64 characters, no surrounding spaces, no control characters — it
/// becomes part of every patient's identifier system.
fn authority_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        None
    } else if name.trim() != name {
        Some(format!("{name:?} has leading or trailing spaces"))
    } else if name.chars().count() > 64 {
        Some("must be at most 64 characters".into())
    } else if name.chars().any(char::is_control) {
        Some(format!("{name:?} has a control character"))
    } else {
        None
    }
}

/// The channel's patient ID authority, None when not set.
pub fn patient_id_authority(c: &DicomChannelConfig) -> Option<&str> {
    Some(c.patient_id_authority.as_str()).filter(|a| !a.is_empty())
}

/// The environment variable that sets `key` of DICOM channel `name`
/// (`modalities`, `ae_title` → `MEDBUS_DICOM_MODALITIES_AE_TITLE`).
pub fn env_var(name: &str, key: &str) -> String {
    super::named::env_var("dicom", name, key)
}

/// The config key (`dicom.<name>.<key>`) an environment variable sets, for
/// the channels named in the file `table`.
pub fn env_key(table: &toml::Table, var: &str) -> Option<String> {
    super::named::env_key(table, "dicom", &known_keys(), var)
}

/// Every key of one DICOM channel with its default, for `medbus config keys`.
pub fn known_keys() -> Vec<(String, toml::Value)> {
    super::named::known_keys::<DicomChannelConfig>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert_eq!(validate("modalities", &DicomChannelConfig::default()), vec![]);
        let bad = DicomChannelConfig {
            ae_title: "A_TITLE_FAR_TOO_LONG".into(),
            allowed_calling_aes: vec!["CT\\1".into()],
            max_pdu_length: 10,
            max_associations: 0,
            max_buffered_bytes: 10,
            idle_timeout: Duration::ZERO,
            patient_id_authority: " HOSP".into(),
            ..Default::default()
        };
        let keys: Vec<String> = validate("bad name", &bad).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "dicom.bad name",
                "dicom.bad name.ae_title",
                "dicom.bad name.allowed_calling_aes",
                "dicom.bad name.max_pdu_length",
                "dicom.bad name.max_associations",
                "dicom.bad name.max_buffered_bytes",
                "dicom.bad name.idle_timeout",
                "dicom.bad name.patient_id_authority",
            ]
        );
        for ok in ["", "HOSP", "St Mary's"] {
            let c = DicomChannelConfig {
                patient_id_authority: ok.into(),
                ..Default::default()
            };
            assert_eq!(validate("m", &c), vec![], "{ok:?}");
        }
        for bad in ["x".repeat(65), "A\tB".to_string()] {
            let c = DicomChannelConfig {
                patient_id_authority: bad,
                ..Default::default()
            };
            assert_eq!(validate("m", &c).len(), 1);
        }
    }

    #[test]
    fn patient_id_authority_is_set_from_the_environment_and_empty_means_none() {
        let table: toml::Table = toml::from_str("[dicom.modalities]\nae_title = \"MEDBUS\"").unwrap();
        assert_eq!(
            env_key(&table, "MEDBUS_DICOM_MODALITIES_PATIENT_ID_AUTHORITY").as_deref(),
            Some("dicom.modalities.patient_id_authority")
        );
        assert_eq!(patient_id_authority(&DicomChannelConfig::default()), None);
        let set = DicomChannelConfig {
            patient_id_authority: "HOSP".into(),
            ..Default::default()
        };
        assert_eq!(patient_id_authority(&set), Some("HOSP"));
    }

    #[test]
    fn storage_defaults_under_the_data_dir() {
        let c = DicomChannelConfig::default();
        assert_eq!(
            storage_dir(std::path::Path::new("data"), "ct", &c),
            PathBuf::from("data/dicom/ct")
        );
    }
}
