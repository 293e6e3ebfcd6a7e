//! Reloading routes and code tables without a restart.
//!
//! A reload is asked for by SIGHUP, or noticed by polling: the route files
//! (every `*.toml` under the routes directory, new ones included) and the
//! tables the routes use are looked at every `poll` and a change of name,
//! size or modification time triggers one. The new files are read and checked
//! exactly as `medbus check` does; when they are valid they replace the
//! routes in force (between messages, see [`LiveRoutes`]); when not, every
//! problem is logged with its file and line and the old routes keep running.
//! A refused version is not retried until the files change again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use medbus_bus::config::{Config, Problems};
use tokio_util::sync::CancellationToken;

use crate::config::{self as routes_config, Routes};
use crate::live::LiveRoutes;

/// What a reload needs: the running configuration (its channels and
/// destinations are what route files may name) and where its file is.
#[derive(Debug, Clone)]
pub struct Reloader {
    /// The routes in force.
    pub live: Arc<LiveRoutes>,
    /// The configuration medbus runs with.
    pub config: Config,
    /// The directory of the config file (route and table paths are relative to it).
    pub config_dir: PathBuf,
}

/// Name, size and modification time of each watched file, in path order.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

impl Reloader {
    /// Reads and checks the routes now; puts them in force when valid.
    /// Returns the new generation, or the problems (the old routes stay).
    pub fn reload(&self) -> Result<u64, Problems> {
        match routes_config::load(&self.config, &self.config_dir) {
            Ok(routes) => {
                let count = routes.len();
                let generation = self.live.replace(routes);
                tracing::info!(routes = count, generation, "routes reloaded");
                metrics::counter!("medbus_routes_reloads_total", "outcome" => "applied").increment(1);
                Ok(generation)
            }
            Err(problems) => {
                for p in &problems.0 {
                    tracing::error!(problem = %p, "route reload refused");
                }
                tracing::error!(
                    problems = problems.0.len(),
                    "route reload refused; the routes in force keep running"
                );
                metrics::counter!("medbus_routes_reloads_total", "outcome" => "refused").increment(1);
                Err(problems)
            }
        }
    }

    fn fingerprint(&self, routes: &Routes) -> Fingerprint {
        let mut paths: Vec<PathBuf> = routes.sources().to_vec();
        collect_toml(&routes_config::routes_dir(&self.config, &self.config_dir), &mut paths);
        paths.sort();
        paths.dedup();
        paths
            .into_iter()
            .map(|p| {
                let meta = std::fs::metadata(&p).ok();
                let len = meta.as_ref().map(|m| m.len()).unwrap_or(0);
                let modified = meta.and_then(|m| m.modified().ok());
                (p, len, modified)
            })
            .collect()
    }

    /// Watches until shutdown: reloads on SIGHUP and when the files change.
    pub async fn watch(self, poll: Duration, shutdown: CancellationToken) {
        let mut hangup = hangups();
        let mut seen = self.fingerprint(&self.live.snapshot());
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let asked = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => false,
                _ = next_hangup(&mut hangup) => true,
            };
            let now = self.fingerprint(&self.live.snapshot());
            if !asked && now == seen {
                continue;
            }
            if asked {
                tracing::info!("SIGHUP: reloading routes");
            } else {
                tracing::info!("route or table files changed: reloading routes");
            }
            // Remember what was tried, valid or not, so a refused version is reported once.
            let _ = self.reload();
            seen = self.fingerprint(&self.live.snapshot());
        }
    }
}

/// The route files under `dir` as `medbus check` finds them (a directory it
/// cannot read adds nothing here; the reload reports it).
fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>) {
    routes_config::collect_files(dir, out, &mut Vec::new());
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = ();

#[cfg(unix)]
fn hangups() -> Hangups {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; routes reload on file changes only");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangups() -> Hangups {}

#[cfg(unix)]
async fn next_hangup(h: &mut Hangups) {
    match h {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_h: &mut Hangups) {
    std::future::pending::<()>().await
}
