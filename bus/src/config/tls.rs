//! TLS settings: PEM file paths for a listener ([`TlsFiles`]) and for an
//! outbound connection ([`TlsClientFiles`]). Keys are read from disk, never
//! from config text, so a config file can be shared without its secrets.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// TLS for a listener: PEM files, and optionally the CA that client certificates must chain to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain (PEM), the server's own certificate first.
    pub cert: PathBuf,
    /// Private key of that certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM). When set, clients must present a certificate
    /// signed by one of them (mutual TLS); when absent, no client certificate is asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Problems as (key under `tls`, message): files that are not there.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        missing(&mut p, "cert", &self.cert);
        missing(&mut p, "key", &self.key);
        if let Some(ca) = &self.client_ca {
            missing(&mut p, "client_ca", ca);
        }
        p
    }
}

/// TLS for an outbound connection (a destination): whom to trust and, for
/// mutual TLS, the certificate to present.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsClientFiles {
    /// CA certificates (PEM) to trust for the server's certificate. When
    /// absent, the public web roots (webpki-roots) are trusted instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS; give `key` with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of `cert`; give both or neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// Name the server's certificate must carry (DNS name or IP address).
    /// Default: the host part of the destination's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

impl TlsClientFiles {
    /// Problems as (key under `tls`, message): missing files, a cert without its key or the reverse.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        for (k, path) in [("ca", &self.ca), ("cert", &self.cert), ("key", &self.key)] {
            if let Some(path) = path {
                missing(&mut p, k, path);
            }
        }
        match (&self.cert, &self.key) {
            (Some(_), None) => p.push(("key".into(), "required with tls.cert (give both or neither)".into())),
            (None, Some(_)) => p.push(("cert".into(), "required with tls.key (give both or neither)".into())),
            _ => {}
        }
        if self.server_name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            p.push((
                "server_name".into(),
                "must not be empty (leave it out to use the host)".into(),
            ));
        }
        p
    }
}

/// Same wording as the other file checks, so `medbus check` reads alike.
fn missing(p: &mut Vec<(String, String)>, key: &str, path: &Path) {
    if !path.is_file() {
        p.push((key.to_string(), format!("no such file: {}", path.display())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_files_want_cert_and_key_together() {
        let only_cert = TlsClientFiles {
            cert: Some("/nonexistent/c.pem".into()),
            ..Default::default()
        };
        let keys: Vec<String> = only_cert.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["cert", "key"], "missing file, then the missing partner");
        assert_eq!(TlsClientFiles::default().problems(), vec![], "all optional");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let bad = toml::from_str::<TlsClientFiles>("ca = \"a.pem\"\ncafile = \"b.pem\"\n");
        assert!(bad.is_err());
        let ok: TlsFiles = toml::from_str("cert = \"c.pem\"\nkey = \"k.pem\"\n").unwrap();
        assert_eq!(ok.client_ca, None);
    }

    #[test]
    fn a_missing_client_ca_is_reported_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, "x").unwrap();
        std::fs::write(&key, "x").unwrap();
        let file = dir.path().join("medbus.toml");
        let text = format!(
            "[channels.adt]\nlisten = \"127.0.0.1:2575\"\ntls = {{ cert = {:?}, key = {:?}, client_ca = \"/nonexistent/ca.pem\" }}\n",
            cert.display().to_string(),
            key.display().to_string()
        );
        std::fs::write(&file, text).unwrap();
        let problems = super::super::load(Some(&file), &Default::default()).unwrap_err().0;
        let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            shown,
            [format!(
                "{}:3: channels.adt.tls.client_ca: no such file: /nonexistent/ca.pem",
                file.display()
            )]
        );
    }
}
