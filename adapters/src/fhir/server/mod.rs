//! The inbound FHIR R4 REST server, mounted under `/fhir` on the HTTP address.
//!
//! Interactions: `GET /fhir/metadata`; `POST /fhir/{type}` (create, with
//! `If-None-Exist` a conditional create); `PUT /fhir/{type}/{id}` (update,
//! update as create, `If-Match` for versioned update); `PUT
//! /fhir/{type}?identifier=…` (conditional update); `GET /fhir/{type}/{id}`
//! (read) and `…/_history/{vid}` (the current version only); `GET
//! /fhir/{type}?identifier=…` (search); `POST /fhir` with a `transaction` or
//! `batch` Bundle.
//!
//! Every write goes the same way ([`write`]): the body is checked in full
//! (`fhir::inbound`), references are resolved against this server's
//! resources and the same Bundle, the canonical events are worked out as a
//! dry run (so what cannot become events is refused now, not dead-lettered
//! later); then the accepted resources are published raw to
//! `medbus.ingress.fhir.<channel>` and the durable ack awaited; then they
//! are written to the store in one transaction; only then the answer. The
//! FHIR router turns what was kept into canonical events. A body that fails
//! its checks is kept too, marked rejected, so it can be fixed and sent
//! again; nothing of it is stored as a resource.

mod bundle;
mod capability;
mod committer;
mod query;
mod references;
mod reply;
mod single;
mod write;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use medbus_bus::backbone::SharedBackbone;
use medbus_bus::config::fhir_server::FhirServerConfig;
use medbus_bus::store::SharedStore;
use medbus_bus::subjects::Subject;

pub use reply::FHIR_JSON;
pub use write::STORE_DEADLINE;

/// Raw-header names kept with each inbound FHIR request (as `Medbus-Raw-<name>`).
pub mod raw_header {
    /// What the client did: `create Patient`, `update Observation`, `transaction`, `batch`.
    pub const INTERACTION: &str = "Interaction";
    /// Why the body was refused (present only then).
    pub const REJECTED: &str = "Rejected";
    /// The logical id of the Patient the request is about, when it has one:
    /// the FHIR router keeps each patient's requests in order by it.
    pub const PATIENT: &str = "Patient";
}

/// What the handlers need.
pub struct FhirServer {
    /// Where accepted resources are kept before the answer.
    pub backbone: SharedBackbone,
    /// The resources, for reads, searches and conditions.
    pub store: SharedStore,
    /// `[fhir]`.
    pub config: FhirServerConfig,
    subject: String,
    committer: committer::Committer,
}

/// Why the server could not be built.
#[derive(Debug, thiserror::Error)]
#[error("fhir.channel {0:?} is not usable in a subject")]
pub struct BadChannel(String);

impl FhirServer {
    /// The server of `config.channel`. Starts its store writers: call it
    /// inside a tokio runtime.
    pub fn new(backbone: SharedBackbone, store: SharedStore, config: FhirServerConfig) -> Result<Self, BadChannel> {
        let subject = Subject::ingress("fhir", &config.channel)
            .map_err(|_| BadChannel(config.channel.clone()))?
            .to_string();
        Ok(FhirServer {
            committer: committer::Committer::start(store.clone()),
            backbone,
            store,
            config,
            subject,
        })
    }
}

/// The `/fhir` routes, to merge into the HTTP server's router.
pub fn router(server: FhirServer) -> Router {
    let limit = server.config.max_body_bytes;
    Router::new()
        .route("/fhir/metadata", get(single::metadata))
        .route("/fhir", post(bundle::bundle))
        .route(
            "/fhir/{resource_type}",
            post(single::create).put(single::conditional_update).get(single::search),
        )
        .route("/fhir/{resource_type}/{id}", get(single::read).put(single::update))
        .route("/fhir/{resource_type}/{id}/_history/{version}", get(single::vread))
        // After the routes: it is set on those registered before it.
        .method_not_allowed_fallback(single::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(Arc::new(server))
}

/// The base URL clients reach this server at (for Location and fullUrl):
/// from the Host header, `/fhir` alone when there is none.
fn base_url(headers: &HeaderMap) -> String {
    match headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()) {
        Some(host) if !host.is_empty() => format!("http://{host}/fhir"),
        _ => "/fhir".to_string(),
    }
}
