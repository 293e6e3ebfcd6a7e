//! The operator HTTP server: `/healthz` (the process is up), `/readyz`
//! (backbone and store reachable now; 503 naming what is not) and `/metrics`
//! (Prometheus text).

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use medbus_bus::backbone::SharedBackbone;
use medbus_bus::store::SharedStore;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

/// What the handlers need.
#[derive(Clone)]
pub struct AppState {
    /// The backbone.
    pub backbone: SharedBackbone,
    /// The store.
    pub store: SharedStore,
    /// Renders /metrics.
    pub metrics: PrometheusHandle,
}

/// The router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Readiness of each dependency, checked concurrently with a deadline each.
async fn readyz(State(s): State<AppState>) -> Response {
    let deadline = Duration::from_secs(3);
    let (bb, st) = tokio::join!(
        tokio::time::timeout(deadline, s.backbone.check()),
        tokio::time::timeout(deadline, s.store.check()),
    );
    let bb = match bb {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 3 s".to_string()),
    };
    let st = match st {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 3 s".to_string()),
    };
    metrics::gauge!("medbus_ready", "component" => "backbone").set(if bb.is_ok() { 1.0 } else { 0.0 });
    metrics::gauge!("medbus_ready", "component" => "store").set(if st.is_ok() { 1.0 } else { 0.0 });
    let ready = bb.is_ok() && st.is_ok();
    let show = |r: &Result<(), String>| r.as_ref().err().cloned().unwrap_or_else(|| "ok".into());
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "backbone": { "kind": s.backbone.kind(), "status": show(&bb) },
        "store": { "kind": s.store.kind(), "status": show(&st) },
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}
