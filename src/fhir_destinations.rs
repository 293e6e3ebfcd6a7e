//! Starts one push loop per enabled FHIR destination (`[fhir_destinations.*]`).

use medbus_adapters::fhir::destination::{run, FhirDestinationContext};
use medbus_bus::backbone::SharedBackbone;
use medbus_bus::config::Config;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Spawns the push loop of each enabled FHIR destination on `tasks`.
pub fn start(tasks: &TaskTracker, config: &Config, backbone: &SharedBackbone, shutdown: &CancellationToken) {
    for (name, dest) in config.fhir_destinations.iter().filter(|(_, d)| d.enabled) {
        let ctx = FhirDestinationContext {
            name: name.clone(),
            config: dest.clone(),
            backbone: backbone.clone(),
            backbone_config: config.backbone.clone(),
            shutdown: shutdown.clone(),
        };
        tasks.spawn(async move {
            let name = ctx.name.clone();
            if let Err(e) = run(ctx).await {
                tracing::error!(fhir_destination = %name, error = %e, "FHIR destination stopped with an error");
            }
        });
    }
}
