//! Runs the real `medbus` binary for end-to-end tests.

// Each test binary compiles this module and none uses every helper.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `medbus serve`, killed on drop.
pub struct Medbus {
    child: Option<Child>,
    /// Base URL of its HTTP server.
    pub http: String,
    /// Where its log goes.
    pub log: std::path::PathBuf,
}

impl Medbus {
    /// Starts `medbus serve` with `env` (on top of a clean MEDBUS_* environment) in `dir`.
    pub fn start(dir: &Path, env: &[(&str, String)]) -> Medbus {
        let port = medbus_testkit::free_port();
        let log = dir.join("medbus.log");
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_medbus"));
        cmd.arg("serve")
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env("MEDBUS_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("MEDBUS_DATA_DIR", dir.join("data"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MEDBUS_")) {
            cmd.env_remove(k);
        }
        cmd.env("MEDBUS_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("MEDBUS_DATA_DIR", dir.join("data"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("medbus binary runs");
        let m = Medbus {
            child: Some(child),
            http: format!("http://127.0.0.1:{port}"),
            log,
        };
        m.wait_until(Duration::from_secs(30), |code| code == Some(200), "/healthz");
        m
    }

    /// GET `path`, returning (status, body); None when nothing answers.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .ok()?;
        let r = client.get(format!("{}{path}", self.http)).send().ok()?;
        let code = r.status().as_u16();
        Some((code, r.text().unwrap_or_default()))
    }

    /// Polls `path` until `ok(status)`; panics with the log after `limit`.
    pub fn wait_until(&self, limit: Duration, ok: impl Fn(Option<u16>) -> bool, path: &str) -> Option<(u16, String)> {
        let start = Instant::now();
        loop {
            let r = self.get(path);
            if ok(r.as_ref().map(|(c, _)| *c)) {
                return r;
            }
            if start.elapsed() > limit {
                panic!(
                    "{path} never reached the expected state (last: {r:?}); log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(&mut self, limit: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Medbus {
    /// Sends SIGHUP (reload the routes).
    pub fn hangup(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").args(["-HUP", &c.id().to_string()]).status();
        }
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Medbus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Copies the shipped route files and tables (config/routes, config/tables)
/// into `dir`, where a config file copied from config/medbus.toml finds them:
/// their paths are relative to the config file.
pub fn copy_shipped_routes_and_tables(dir: &Path) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for sub in ["routes", "tables"] {
        std::fs::create_dir_all(dir.join(sub)).expect("config sub-directory");
        for f in std::fs::read_dir(shipped.join(sub)).expect("shipped config") {
            let f = f.expect("entry").path();
            if let Some(name) = f.file_name() {
                std::fs::copy(&f, dir.join(sub).join(name)).expect("copy");
            }
        }
    }
}

/// Sends one MLLP frame and returns the answer frame as text, segments on lines (blocking, 10 s limit).
pub fn mllp_exchange(addr: (&str, u16), msg: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("MLLP connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut frame = vec![0x0b];
    frame.extend_from_slice(msg);
    frame.extend_from_slice(&[0x1c, 0x0d]);
    s.write_all(&frame).expect("MLLP send");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(&[0x1c, 0x0d]) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).replace('\r', "\n")
}

/// Every stored message (all statuses), newest first, paging through the browser API.
pub async fn all_messages(store: &medbus_bus::store::SharedStore) -> Vec<medbus_bus::store::MessageSummary> {
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let filter = medbus_bus::store::MessageFilter {
            before_id: before,
            limit: 1000,
            ..Default::default()
        };
        let page = store.list_messages(&filter).await.expect("list messages");
        let Some(last) = page.last() else { return out };
        before = Some(last.id);
        out.extend(page);
    }
}

/// The production pair for one test: a private nats-server and a throwaway
/// PostgreSQL database, both gone when this is dropped.
pub struct Production {
    nats: medbus_testkit::NatsServer,
    db: medbus_testkit::PgDatabase,
}

impl Production {
    /// Starts both, or None (after printing why) when one is unavailable.
    pub async fn start() -> Option<Self> {
        let nats = medbus_testkit::NatsServer::start()?;
        let db = medbus_testkit::PgDatabase::create().await?;
        Some(Production { nats, db })
    }

    /// The NATS URL, for the test's own backbone client.
    pub fn nats_url(&self) -> String {
        self.nats.url()
    }

    /// The environment that points medbus at them.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MEDBUS_BACKBONE_URL", self.nats.url()),
            ("MEDBUS_STORE_URL", self.db.url.clone()),
        ]
    }

    /// A store config for the test to read what medbus wrote.
    pub fn store_config(&self) -> medbus_bus::config::StoreConfig {
        medbus_bus::config::StoreConfig {
            url: self.db.url.clone(),
            ..Default::default()
        }
    }
}

/// Polls `what` until it returns Some, for at most 30 s.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "not in time: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
