//! Starts one DICOM storage SCP per enabled `[dicom.<name>]` channel.

use std::sync::Arc;

use medbus_adapters::dicom::{run, FileAndBackboneSink, ScpOptions};
use medbus_bus::backbone::SharedBackbone;
use medbus_bus::config::dicom::{storage_dir, DicomChannelConfig};
use medbus_bus::config::Config;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Binds every enabled DICOM channel and spawns its SCP on `tasks`; the
/// first channel that cannot start, named with the reason.
pub async fn start(
    tasks: &TaskTracker,
    config: &Config,
    backbone: &SharedBackbone,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    for (name, ch) in config.dicom.iter().filter(|(_, c)| c.enabled) {
        let listener = tokio::net::TcpListener::bind(ch.listen)
            .await
            .map_err(|e| format!("dicom.{name}.listen: cannot bind {}: {e}", ch.listen))?;
        let root = storage_dir(&config.data_dir, name, ch);
        let sink = FileAndBackboneSink::new(&root, name, backbone.clone()).map_err(|e| e.to_string())?;
        tracing::info!(channel = %name, addr = %ch.listen, ae_title = %ch.ae_title, storage = %root.display(), "dicom scp accepting");
        tasks.spawn(run(listener, options(ch), Arc::new(sink), shutdown.clone()));
    }
    Ok(())
}

/// The SCP settings of a channel (storage SOP classes and transfer syntaxes: the adapter's defaults).
fn options(ch: &DicomChannelConfig) -> ScpOptions {
    ScpOptions {
        ae_title: ch.ae_title.clone(),
        allowed_calling_aes: ch.allowed_calling_aes.clone(),
        max_pdu_length: ch.max_pdu_length,
        max_associations: ch.max_associations,
        // Beyond the address space there is nothing to bound.
        max_buffered_bytes: usize::try_from(ch.max_buffered_bytes).unwrap_or(usize::MAX),
        association_timeout: ch.association_timeout,
        idle_timeout: ch.idle_timeout,
        ..ScpOptions::default()
    }
}
