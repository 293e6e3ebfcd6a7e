//! Test support: real servers for the conformance and end-to-end suites.
//!
//! - [`NatsServer`] starts a private `nats-server -js` on a free loopback port
//!   with its own store directory, can stop and restart it, and kills it on drop.
//! - [`PgDatabase`] creates a throwaway database on a running PostgreSQL and
//!   drops it on drop.
//! - [`peers`]: command-line peers (`openssl s_client`, python tools).
//! - [`netns::Isolated`]: a server that binds every interface (Orthanc,
//!   `storescp`) run in a private network namespace, reached through relays
//!   on 127.0.0.1.
//! - [`orthanc::Orthanc`]: the Orthanc PACS that way.
//!
//! When a server cannot be had, the helpers return `None` after printing why —
//! unless `MEDBUS_REQUIRE_SERVICES=1` (set by `scripts/test.sh`, the README's
//! test command), in which case they panic: the full suite never skips silently.

pub mod netns;
pub mod orthanc;
pub mod peers;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True when the run must not skip server suites.
pub fn services_required() -> bool {
    std::env::var("MEDBUS_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Skips (prints why, returns None) or fails loudly, depending on [`services_required`].
fn unavailable<T>(what: &str, why: String) -> Option<T> {
    if services_required() {
        panic!("{what} is required (MEDBUS_REQUIRE_SERVICES=1) but unavailable: {why}");
    }
    eprintln!("SKIPPED: {what} unavailable: {why} (run scripts/test.sh for the full suite)");
    None
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

fn nats_binary() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("MEDBUS_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

/// A private nats-server with JetStream on a loopback port.
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts one, or returns None (printing why) when nats-server is not installed.
    pub fn start() -> Option<Self> {
        let Some(binary) = nats_binary() else {
            return unavailable("nats-server", "binary not found (apt-get install nats-server)".into());
        };
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => return unavailable("nats-server", format!("no temp dir: {e}")),
        };
        let mut s = NatsServer {
            binary,
            port: free_port(),
            dir,
            child: None,
        };
        if let Err(e) = s.spawn() {
            return unavailable("nats-server", e);
        }
        Some(s)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = self.dir.path().join("nats.log");
        let child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.dir.path().join("js"))
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let tail = std::fs::read_to_string(&log).unwrap_or_default();
        Err(format!(
            "nats-server did not listen on {} within 15 s; log:\n{tail}",
            self.port
        ))
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Graceful stop (SIGTERM, wait for exit): JetStream flushes its files.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same store directory.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn() {
            panic!("nats-server restart failed: {e}");
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The administrative PostgreSQL URL tests connect to.
pub fn postgres_admin_url() -> String {
    std::env::var("MEDBUS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A throwaway database, dropped on drop.
pub struct PgDatabase {
    /// URL of the new database.
    pub url: String,
    name: String,
    admin: String,
}

impl PgDatabase {
    /// Creates one, or returns None (printing why) when PostgreSQL is not reachable.
    pub async fn create() -> Option<Self> {
        use sqlx::Connection;
        let admin = postgres_admin_url();
        let mut conn = match tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&admin)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return unavailable("PostgreSQL", format!("{admin}: {e}")),
            Err(_) => return unavailable("PostgreSQL", format!("{admin}: connect timed out")),
        };
        let name = format!("medbus_test_{}", uuid::Uuid::new_v4().simple());
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
        {
            return unavailable("PostgreSQL", format!("CREATE DATABASE failed: {e}"));
        }
        let _ = conn.close().await;
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin.clone());
        Some(PgDatabase {
            url: format!("{base}/{name}"),
            name,
            admin,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                }
            });
        })
        .join();
    }
}
