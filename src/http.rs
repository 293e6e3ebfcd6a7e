//! The operator HTTP server: `/healthz` (the process is up), `/readyz`
//! (backbone and store reachable now; 503 naming what is not), `/metrics`
//! (Prometheus text) and `POST /api/v1/notifications/{id}/acknowledge`
//! (a clinician acknowledges a notification, which stops its escalation) and
//! `GET /api/v1/events` (events as Server-Sent Events, see `sse`).

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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
    /// Cancelled at shutdown: ends the open event streams, which would otherwise hold the server open.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/notifications/{id}/acknowledge", post(acknowledge))
        .route("/api/v1/events", get(crate::sse::events))
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

/// `?by=` on the acknowledge call: who acknowledged, for the record and the audit log.
#[derive(Debug, serde::Deserialize)]
struct AckBy {
    by: Option<String>,
}

/// 200 when the notification exists (acknowledging twice is harmless), 404
/// when it does not, 503 when the store cannot answer now.
async fn acknowledge(State(s): State<AppState>, Path(id): Path<String>, Query(q): Query<AckBy>) -> Response {
    let by = q.by.filter(|b| !b.trim().is_empty()).unwrap_or_else(|| "api".into());
    match medbus_actors::notifications::acknowledge(s.store.as_ref(), &id, &by).await {
        Ok(true) => (StatusCode::OK, Json(json!({ "id": id, "acknowledged": true }))).into_response(),
        Ok(false) => (StatusCode::NOT_FOUND, Json(json!({ "error": "no such notification" }))).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "acknowledge failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": e.to_string() }))).into_response()
        }
    }
}
