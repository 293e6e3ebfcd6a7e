//! TLS for MLLP: PEM files into a [`TlsAcceptor`] (listeners) or a
//! [`ClientTls`] (senders), with errors that name the file and what is wrong.
//!
//! The ring provider is passed explicitly to every config: the tree has ring
//! through sqlx already, and a process-global default provider would depend
//! on which crate happened to install one first.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use medbus_bus::config::{TlsClientFiles, TlsFiles};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::crypto::{ring, CryptoProvider};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::sign::{CertifiedKey, SingleCertAndKey};
use tokio_rustls::rustls::{ClientConfig, Error as RustlsError, InconsistentKeys, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Why TLS could not be set up from the configured files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read at all.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid PEM.
    #[error("{}: not valid PEM: {why}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        why: String,
    },
    /// No `CERTIFICATE` block in a file that should hold certificates.
    #[error("{}: no certificate in the file (expected a PEM `BEGIN CERTIFICATE` block)", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate that cannot be used as given.
    #[error("{}: certificate cannot be used: {why}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// Cause.
        why: String,
    },
    /// No private key block in the key file.
    #[error(
        "{}: no private key in the file (expected PEM `BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or \
         `BEGIN EC PRIVATE KEY`; encrypted keys are not supported)",
        path.display()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A private key the crypto provider cannot load.
    #[error("{}: private key cannot be used: {why}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// Cause.
        why: String,
    },
    /// The key is not the one of the certificate.
    #[error("{}: the private key does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// A CA file whose certificates cannot be trust anchors.
    #[error("{}: CA certificate cannot be used: {why}", path.display())]
    BadCa {
        /// The file.
        path: PathBuf,
        /// Cause.
        why: String,
    },
    /// A client certificate was given without its key, or the reverse.
    #[error("a client certificate needs both `cert` and `key`")]
    Incomplete,
    /// The name to check the server's certificate against is not usable.
    #[error("{0:?} is not a valid TLS server name (expected a DNS name or an IP address)")]
    ServerName(String),
    /// Anything else rustls refused while building the config.
    #[error("TLS configuration refused: {0}")]
    Config(String),
}

/// The crypto provider every config here uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// A listener's acceptor: its certificate and key, and with `client_ca` a
/// verifier that requires client certificates signed by that CA.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let provider = provider();
    let certified = certified_key(&files.cert, &files.key, &provider)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let roots = Arc::new(roots_from(ca)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| TlsError::BadCa {
                    path: ca.clone(),
                    why: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// TLS for one outbound connection: the connector and the name the server's
/// certificate must carry. Cheap to clone.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl ClientTls {
    /// From the files of a destination connecting to `addr` (`host:port`); the
    /// server name defaults to the host part of `addr`.
    pub fn new(files: &TlsClientFiles, addr: &str) -> Result<Self, TlsError> {
        let name = files.server_name.clone().unwrap_or_else(|| host_of(addr).to_string());
        let server_name = ServerName::try_from(name.clone()).map_err(|_| TlsError::ServerName(name))?;
        Ok(ClientTls {
            connector: connector(files)?,
            server_name,
        })
    }

    /// The connector.
    pub fn connector(&self) -> &TlsConnector {
        &self.connector
    }

    /// The name the server's certificate is checked against (and sent as SNI when a DNS name).
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }
}

impl fmt::Debug for ClientTls {
    // The connector holds keys and has no Debug; the name is what tells configs apart.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// A client connector: trusts `ca` (or the public web roots), presents `cert`/`key` when given.
pub fn connector(files: &TlsClientFiles) -> Result<TlsConnector, TlsError> {
    let provider = provider();
    let roots = match &files.ca {
        Some(ca) => roots_from(ca)?,
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let certified = certified_key(cert, key, &provider)?;
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)))
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(TlsError::Incomplete),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The host of `host:port` or `[v6]:port` (the whole text when there is no port).
pub fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    match addr.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((h, _)) if !h.contains(':') => h,
        _ => addr,
    }
}

/// Chain and key, checked to belong together, so a wrong pair fails at start rather than at each handshake.
fn certified_key(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let chain = certs_from(cert)?;
    let der = key_from(key)?;
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| TlsError::BadKey {
            path: key.to_path_buf(),
            why: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        // Unknown: the key type cannot tell its public key; rustls accepts that too.
        Ok(()) | Err(RustlsError::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(RustlsError::InconsistentKeys(_)) => Err(TlsError::KeyMismatch {
            key: key.to_path_buf(),
            cert: cert.to_path_buf(),
        }),
        Err(e) => Err(TlsError::BadCertificate {
            path: cert.to_path_buf(),
            why: e.to_string(),
        }),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(path: &Path, e: pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        why: e.to_string(),
    }
}

/// Every certificate in a PEM file; at least one.
fn certs_from(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file.
fn key_from(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_path_buf(),
        },
        e => pem_error(path, e),
    })
}

/// Trust anchors from a PEM file of CA certificates.
fn roots_from(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from(path)? {
        roots.add(cert).map_err(|e| TlsError::BadCa {
            path: path.to_path_buf(),
            why: e.to_string(),
        })?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_of_addresses() {
        assert_eq!(host_of("emr.example.org:2575"), "emr.example.org");
        assert_eq!(host_of("127.0.0.1:2575"), "127.0.0.1");
        assert_eq!(host_of("[::1]:2575"), "::1");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(host_of("emr"), "emr");
    }
}
