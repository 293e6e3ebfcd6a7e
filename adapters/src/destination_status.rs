//! `system.destination-unreachable` / `-recovered`, as every outbound
//! destination (HL7 v2, FHIR, DICOM) reports them: the `medbus_destination_up`
//! gauge and a best-effort, time-bounded publish; and [`Health`], the
//! up/down tracking that reports each change once (the DICOM forwarder's).

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

/// Whether a destination's peer has been answering, so each change is
/// reported once: `system.destination-unreachable` when delivery first fails
/// in a way that may pass, `system.destination-recovered` when the peer
/// answers again. A lock rather than `&mut`: a batch handler borrows it from
/// the loop that outlives each batch; it is never held across an await.
pub(crate) struct Health {
    /// Destination name.
    pub destination: String,
    /// `dicom`, `fhir`, `hl7v2`.
    pub protocol: &'static str,
    /// The peer as shown to operators (no credentials).
    pub addr: String,
    down_since: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
}

impl Health {
    /// Up until told otherwise.
    pub(crate) fn new(destination: &str, protocol: &'static str, addr: String) -> Self {
        Health {
            destination: destination.to_string(),
            protocol,
            addr,
            down_since: std::sync::Mutex::new(None),
        }
    }

    fn swap(
        &self,
        f: impl FnOnce(&mut Option<chrono::DateTime<chrono::Utc>>) -> Option<chrono::DateTime<chrono::Utc>>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        // A poisoned lock only means a panic elsewhere; the timestamp inside is still usable.
        let mut guard = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// A failure that may pass: reported the first time.
    pub(crate) async fn failed(&self, backbone: &SharedBackbone, cfg: &BackboneConfig, reason: &str) {
        let now = chrono::Utc::now();
        let newly_down = self.swap(|d| match d {
            Some(_) => None,
            None => {
                *d = Some(now);
                Some(now)
            }
        });
        if newly_down.is_some() {
            tracing::warn!(destination = %self.destination, protocol = self.protocol, "destination unreachable");
            let body = self.body(now, Some(reason.to_string()), None);
            publish(backbone, cfg, SystemEventKind::DestinationUnreachable, body).await;
        }
    }

    /// The peer answered for good (accepted or refused): recovered, when it was down.
    pub(crate) async fn answered(&self, backbone: &SharedBackbone, cfg: &BackboneConfig) {
        if let Some(since) = self.swap(Option::take) {
            tracing::info!(destination = %self.destination, protocol = self.protocol, down_since = %since, "destination answering again");
            let body = self.body(since, None, Some(chrono::Utc::now()));
            publish(backbone, cfg, SystemEventKind::DestinationRecovered, body).await;
        }
    }

    fn body(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        reason: Option<String>,
        recovered_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> DestinationStatusEvent {
        DestinationStatusEvent {
            destination: self.destination.clone(),
            protocol: self.protocol.into(),
            addr: self.addr.clone(),
            since,
            reason,
            recovered_at,
        }
    }
}
