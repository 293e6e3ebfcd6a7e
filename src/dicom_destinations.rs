//! Starts one forwarding loop per enabled DICOM destination (`[dicom_destinations.*]`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use medbus_adapters::dicom::forward::{run, DicomForwardContext};
use medbus_bus::backbone::SharedBackbone;
use medbus_bus::config::dicom::storage_dir;
use medbus_bus::config::Config;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Spawns the forwarding loop of each enabled DICOM destination on `tasks`.
pub fn start(tasks: &TaskTracker, config: &Config, backbone: &SharedBackbone, shutdown: &CancellationToken) {
    // Every channel's directory, disabled ones included: their instances may still be waiting.
    let storage_roots: BTreeMap<String, PathBuf> = config
        .dicom
        .iter()
        .map(|(name, ch)| (name.clone(), storage_dir(&config.data_dir, name, ch)))
        .collect();
    for (name, dest) in config.dicom_destinations.iter().filter(|(_, d)| d.enabled) {
        let ctx = DicomForwardContext {
            name: name.clone(),
            config: dest.clone(),
            storage_roots: storage_roots.clone(),
            backbone: backbone.clone(),
            backbone_config: config.backbone.clone(),
            shutdown: shutdown.clone(),
        };
        tasks.spawn(async move {
            let name = ctx.name.clone();
            if let Err(e) = run(ctx).await {
                tracing::error!(dicom_destination = %name, error = %e, "DICOM destination stopped with an error");
            }
        });
    }
}
