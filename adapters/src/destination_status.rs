//! `system.destination-unreachable` / `-recovered`, as every outbound
//! destination (HL7 v2, FHIR) reports them: the `medbus_destination_up`
//! gauge and a best-effort, time-bounded publish.

use std::time::Duration;

use medbus_bus::backbone::SharedBackbone;
use medbus_bus::canonical::{DestinationStatusEvent, SystemEventKind};
use medbus_bus::config::BackboneConfig;

/// Sets the gauge of `body.destination` and publishes `body` as `kind`;
/// failures are logged, never returned (delivery goes on either way).
pub(crate) async fn publish(
    backbone: &SharedBackbone,
    backbone_config: &BackboneConfig,
    kind: SystemEventKind,
    body: DestinationStatusEvent,
) {
    let name = body.destination.clone();
    let up = if body.recovered_at.is_some() { 1.0 } else { 0.0 };
    metrics::gauge!("medbus_destination_up", "destination" => name.clone()).set(up);
    let out = match body.to_outgoing(kind) {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(destination = %name, error = %e, "could not build {}", kind.as_str());
            return;
        }
    };
    // Bounded: delivery (and the renewal of the deliveries in hand) waits for this.
    let wait = backbone_config.publish_timeout.min(Duration::from_secs(5));
    match tokio::time::timeout(wait, backbone.publish(out)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(destination = %name, error = %e, "could not publish {}", kind.as_str()),
        Err(_) => tracing::warn!(destination = %name, "publishing {} timed out", kind.as_str()),
    }
}
