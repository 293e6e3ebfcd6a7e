//! Orthanc (a real PACS nobody here wrote) for tests: it binds every interface
//! and cannot be told otherwise, so it runs in a private network namespace
//! ([`crate::netns`]) and is reached through relays on 127.0.0.1.
//!
//! Without Orthanc (`apt-get install orthanc`), or without the right to make a
//! namespace (root), [`Orthanc::start`] skips or panics like the other servers
//! (see [`crate::services_required`]).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::netns::Isolated;

/// Orthanc's DICOM port inside its namespace.
const DICOM_PORT: u16 = 4242;
/// Orthanc's REST port inside its namespace.
const HTTP_PORT: u16 = 8042;

/// A private Orthanc, killed with its namespace on drop.
pub struct Orthanc {
    server: Isolated,
    dicom: SocketAddr,
    http: SocketAddr,
    // Last: removed after the server is gone.
    dir: tempfile::TempDir,
}

impl Orthanc {
    /// Orthanc's AE title.
    pub const AE_TITLE: &'static str = "ORTHANC";

    /// Starts one and waits until its REST API answers, or returns None (printing why).
    /// `MEDBUS_TEST_ORTHANC` names the binary (default `Orthanc` on `PATH`).
    pub fn start() -> Option<Self> {
        let binary = std::env::var("MEDBUS_TEST_ORTHANC").unwrap_or_else(|_| "Orthanc".into());
        crate::peers::tool("Orthanc", &binary, &["--version"], "apt-get install orthanc")?;
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => return crate::unavailable("Orthanc", format!("no temp dir: {e}")),
        };
        match Self::spawn(&binary, dir) {
            Ok(o) => Some(o),
            Err(why) => crate::unavailable("Orthanc in a private network namespace", why),
        }
    }

    fn spawn(binary: &str, dir: tempfile::TempDir) -> Result<Self, String> {
        let config = dir.path().join("orthanc.json");
        std::fs::write(&config, config_json(&dir.path().join("db")))
            .map_err(|e| format!("writing {}: {e}", config.display()))?;
        let log = dir.path().join("orthanc.log");
        let server = Isolated::spawn(
            binary,
            &[config.display().to_string()],
            dir.path(),
            &log,
            &[(DICOM_PORT, 0), (HTTP_PORT, 0)],
        )?;
        let (Some(dicom), Some(http)) = (server.addr(DICOM_PORT), server.addr(HTTP_PORT)) else {
            return Err("relays missing".into());
        };
        let mut o = Orthanc {
            server,
            dicom,
            http,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let tail = || std::fs::read_to_string(&log).unwrap_or_default();
            match o.http_get("/system") {
                Ok(_) => return Ok(o),
                Err(e) if Instant::now() >= deadline || !o.server.running() => {
                    return Err(format!("REST API not answering ({e}); log:\n{}", tail()))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Where its DICOM port is reachable from this process.
    pub fn dicom_addr(&self) -> SocketAddr {
        self.dicom
    }

    /// Base URL of its REST API from this process (`http://127.0.0.1:<port>`).
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Its log file.
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("orthanc.log")
    }

    /// `GET <path>` on the REST API: the body of a 200 answer, else an error with the
    /// status line. (HTTP/1.0 by hand: testkit carries no HTTP client.)
    pub fn http_get(&self, path: &str) -> Result<String, String> {
        let mut s = TcpStream::connect_timeout(&self.http, Duration::from_secs(5)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
        let status = head.lines().next().unwrap_or_default();
        if status.split_whitespace().nth(1) == Some("200") {
            Ok(body.to_string())
        } else {
            Err(format!("GET {path}: {status}"))
        }
    }
}

/// The configuration: storage in `db`, DICOM and REST on their ports, stores
/// accepted from anyone, no authentication (nothing outside the namespace can
/// reach it but the relays).
fn config_json(db: &Path) -> String {
    let db = db.display().to_string().replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        r#"{{
  "Name": "medbus-test",
  "StorageDirectory": "{db}",
  "IndexDirectory": "{db}",
  "StorageCompression": false,
  "Plugins": [],
  "HttpServerEnabled": true,
  "HttpPort": {HTTP_PORT},
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "SslEnabled": false,
  "DicomServerEnabled": true,
  "DicomAet": "ORTHANC",
  "DicomPort": {DICOM_PORT},
  "DicomCheckCalledAet": false,
  "DicomAlwaysAllowStore": true,
  "DicomAlwaysAllowEcho": true,
  "UnknownSopClassAccepted": true,
  "TcpNoDelay": true,
  "ConcurrentJobs": 1
}}
"#
    )
}
