//! Keeping an ingress envelope durably before the sender is answered: what
//! every listener (HL7 v2, FHIR, DICOM) does before its positive answer.

use super::{Backbone, BackboneError};
use crate::envelope::Envelope;

/// Publishes `envelope` on `subject` under `dedupe_id` and waits for the
/// durable ack; one retry with the same dedupe id when the outcome is
/// unknown (the first attempt may have been stored: the backbone keeps it once).
pub async fn keep_durably(
    backbone: &dyn Backbone,
    subject: &str,
    envelope: &Envelope,
    dedupe_id: String,
) -> Result<(), BackboneError> {
    let out = envelope
        .to_outgoing(subject.to_string(), dedupe_id)
        .map_err(|e| BackboneError::Invalid(e.to_string()))?;
    match backbone.publish(out.clone()).await {
        Ok(_) => Ok(()),
        Err(BackboneError::Unknown(_)) => backbone.publish(out).await.map(|_| ()),
        Err(e) => Err(e),
    }
}
