//! Starts the FHIR router (when `[fhir]` is on), the DICOM router (when a
//! `[dicom.<name>]` channel is), the HL7 router with the
//! routes in force, and the watcher that reloads them on SIGHUP or when the
//! route and table files change.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use medbus_bus::backbone::SharedBackbone;
use medbus_bus::config::Config;
use medbus_bus::store::SharedStore;
use medbus_routes::config::Routes;
use medbus_routes::live::LiveRoutes;
use medbus_routes::reload::Reloader;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often the route and table files are looked at for changes.
const POLL: Duration = Duration::from_secs(1);

/// Spawns the router (when a channel is enabled) and the reload watcher.
pub fn start(
    tasks: &TaskTracker,
    config: &Config,
    config_dir: PathBuf,
    routes: Routes,
    backbone: SharedBackbone,
    store: SharedStore,
    shutdown: &CancellationToken,
) {
    if config.fhir.enabled {
        let fhir = medbus_routes::fhir_router::FhirRouterContext {
            backbone: backbone.clone(),
            store: store.clone(),
            backbone_config: config.backbone.clone(),
            shutdown: shutdown.clone(),
        };
        tasks.spawn(async move {
            if let Err(e) = medbus_routes::fhir_router::run(fhir).await {
                tracing::error!(error = %e, "fhir router stopped with an error");
            }
        });
    }
    if let Some(dicom) =
        medbus_routes::dicom_router::DicomRouterContext::from_config(config, backbone.clone(), store.clone(), shutdown)
    {
        tasks.spawn(medbus_routes::dicom_router::serve(dicom));
    }
    if !config.channels.values().any(|c| c.enabled) {
        return;
    }
    tracing::info!(
        routes = routes.len(),
        files = routes.file_count(),
        tables = routes.table_count(),
        "routes loaded"
    );
    let live = LiveRoutes::new(routes);
    let reloader = Reloader {
        live: live.clone(),
        config: config.clone(),
        config_dir,
    };
    tasks.spawn(reloader.watch(POLL, shutdown.clone()));
    let router = medbus_routes::hl7_router::RouterContext {
        backbone,
        store,
        backbone_config: config.backbone.clone(),
        application_acks: Arc::new(
            config
                .channels
                .iter()
                .filter_map(|(name, c)| Some((name.clone(), c.application_acks.clone()?)))
                .collect(),
        ),
        routes: live,
        shutdown: shutdown.clone(),
    };
    tasks.spawn(async move {
        if let Err(e) = medbus_routes::hl7_router::run(router).await {
            tracing::error!(error = %e, "hl7v2 router stopped with an error");
        }
    });
}
