//! Dead-lettering: a message that cannot be processed goes to
//! `medbus.dlq.<stage>` with the reason, so it never blocks its queue and an
//! operator can browse, fix and replay it.

use super::{BackboneError, ConsumerSpec, Delivery, Outgoing, SharedBackbone};

/// Headers added to a dead letter; the original headers are kept as they were.
pub mod header {
    /// Why it was dead-lettered.
    pub const REASON: &str = "Medbus-Dlq-Reason";
    /// The stage (consumer) that gave up.
    pub const STAGE: &str = "Medbus-Dlq-Stage";
    /// The subject it was originally published on.
    pub const SUBJECT: &str = "Medbus-Dlq-Subject";
    /// Sequence in the original stream.
    pub const SEQUENCE: &str = "Medbus-Dlq-Sequence";
    /// How many deliveries were made.
    pub const DELIVERIES: &str = "Medbus-Dlq-Deliveries";
    /// The original dedupe id.
    pub const DEDUPE_ID: &str = "Medbus-Dlq-Dedupe-Id";
}

/// Publishes dead letters for one consumer.
#[derive(Clone)]
pub struct DeadLetterer {
    backbone: SharedBackbone,
    stage: String,
    /// Attempts before a message is dead-lettered.
    pub max_deliver: u32,
}

impl DeadLetterer {
    /// For consumer `spec` on `backbone`.
    pub fn new(backbone: SharedBackbone, spec: &ConsumerSpec) -> Self {
        DeadLetterer {
            backbone,
            stage: spec.name.clone(),
            max_deliver: spec.max_deliver,
        }
    }

    /// Publishes `d` to `medbus.dlq.<stage>` with `reason`. Deduped on stage +
    /// sequence, so a crash between this and the term cannot make two.
    pub async fn send(&self, d: &Delivery, reason: &str) -> Result<(), BackboneError> {
        self.send_with(d, reason, super::Headers::new()).await
    }

    /// As [`DeadLetterer::send`], with `extra` headers saying more than the reason can
    /// (a remote peer's status code, its error comment).
    pub async fn send_with(&self, d: &Delivery, reason: &str, extra: super::Headers) -> Result<(), BackboneError> {
        let mut headers = d.headers.clone();
        headers.extend(extra);
        headers.insert(header::REASON.into(), reason.to_string());
        headers.insert(header::STAGE.into(), self.stage.clone());
        headers.insert(header::SUBJECT.into(), d.subject.clone());
        headers.insert(header::SEQUENCE.into(), d.sequence.to_string());
        headers.insert(header::DELIVERIES.into(), d.delivered.to_string());
        if let Some(id) = &d.dedupe_id {
            headers.insert(header::DEDUPE_ID.into(), id.clone());
        }
        let subject = crate::subjects::Subject::dead_letter(&self.stage)
            .map_err(|e| BackboneError::Invalid(e.to_string()))?
            .to_string();
        tracing::warn!(stage = %self.stage, subject = %d.subject, sequence = d.sequence, deliveries = d.delivered, reason, "dead-lettered");
        metrics::counter!("medbus_dead_letters_total", "stage" => self.stage.clone()).increment(1);
        self.backbone
            .publish(Outgoing {
                subject,
                dedupe_id: format!("dlq:{}:{}:{}", self.stage, d.subject, d.sequence),
                headers,
                payload: d.payload.clone(),
            })
            .await
            .map(|_| ())
    }
}
