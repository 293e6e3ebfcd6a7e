//! Publishing one canonical event derived from an ingress envelope: the
//! step the HL7 and FHIR routers share.

use medbus_bus::backbone::{BackboneError, SharedBackbone};
use medbus_bus::canonical::CanonicalEvent;
use medbus_bus::envelope::{header, Envelope};

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The event did not serialise (a bug: canonical types always do).
    #[error("event does not serialise: {0}")]
    Serialise(String),
    /// The backbone refused or did not answer.
    #[error(transparent)]
    Backbone(#[from] BackboneError),
}

/// Publishes `event`, derived from `env`, under `dedupe` (so a redelivery of
/// the ingress message publishes nothing new), tagged with the services that
/// take it when routes named them. Its `occurred_at` is the source's time
/// when the event carries one.
pub async fn publish_event(
    backbone: &SharedBackbone,
    env: &Envelope,
    event: &CanonicalEvent,
    dedupe: String,
    services: Option<&str>,
) -> Result<(), PublishError> {
    let (subject, body) = event.to_message().map_err(|e| PublishError::Serialise(e.to_string()))?;
    let mut out = env.derive_event(event.kind().as_str(), body);
    if let Some(at) = event
        .occurred()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t.as_str()).ok())
    {
        out.occurred_at = at.with_timezone(&chrono::Utc);
    }
    let mut wire = out
        .to_outgoing(subject.to_string(), dedupe)
        .map_err(|e| PublishError::Serialise(e.to_string()))?;
    if let Some(s) = services {
        wire.headers.insert(header::SERVICES.to_string(), s.to_string());
    }
    backbone.publish(wire).await?;
    Ok(())
}
