//! Logging (tracing) and metrics (Prometheus recorder).

use medbus_bus::config::{LogConfig, LogFormat};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Installs the tracing subscriber. `RUST_LOG` overrides `log.level`.
pub fn init_logging(cfg: &LogConfig, force_json: bool) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(&v).map_err(|e| format!("RUST_LOG {v:?}: {e}"))?,
        _ => EnvFilter::try_new(&cfg.level).map_err(|e| format!("log.level {:?}: {e}", cfg.level))?,
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(true);
    let result = if force_json || cfg.format == LogFormat::Json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| format!("cannot install the log subscriber: {e}"))
}

/// Installs the Prometheus recorder; the handle renders /metrics.
pub fn init_metrics() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))
}
