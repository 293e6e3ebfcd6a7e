//! Dead letters as notifications: a durable consumer on `medbus.dlq.>` that
//! fires the `deadletter` rules for each dead letter of any stage.
//!
//! A dead letter is acked once its notifications are recorded (idempotent by
//! id, so a redelivery records nothing twice); delivery then goes on in its
//! own task. Dead letters of this consumer and of the destination watch are
//! skipped, so a failure here can never feed itself.

use std::sync::Arc;
use std::time::Duration;

use medbus_bus::backbone::dead_letter::header;
use medbus_bus::backbone::{open_consumer, BackboneError, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::config::notifications::Trigger;
use medbus_bus::config::BackboneConfig;
use tokio_util::sync::CancellationToken;

use super::rules::Occurrence;
use super::service::Notifier;
use super::{DEAD_LETTER_CONSUMER, DESTINATION_CONSUMER};

/// Runs the dead-letter consumer until shutdown.
pub async fn run_dead_letters(
    notifier: Arc<Notifier>,
    backbone: SharedBackbone,
    cfg: BackboneConfig,
    shutdown: CancellationToken,
) -> Result<(), BackboneError> {
    let spec = ConsumerSpec::new(DEAD_LETTER_CONSUMER, "medbus.dlq.>", &cfg);
    let mut consumer = open_consumer(&backbone, spec).await?;
    tracing::info!("notifications watching dead letters");
    consumer
        .run_batches(
            DEAD_LETTER_CONSUMER,
            64,
            Duration::from_secs(1),
            &shutdown,
            |batch| async {
                for d in batch {
                    handle(&notifier, d).await;
                }
                true
            },
        )
        .await;
    Ok(())
}

async fn handle(notifier: &Arc<Notifier>, d: Delivery) {
    let stage = d
        .headers
        .get(header::STAGE)
        .cloned()
        .or_else(|| d.subject.strip_prefix("medbus.dlq.").map(str::to_string))
        .unwrap_or_default();
    let wanted = stage != DEAD_LETTER_CONSUMER
        && stage != DESTINATION_CONSUMER
        && notifier.config().rules.values().any(|r| {
            r.trigger()
                .is_ok_and(|t| matches!(t, Trigger::DeadLetter { .. }) && t.matches_dead_letter(&stage))
        });
    if !wanted {
        settle(d.ack().await);
        return;
    }
    // The dead letter's own dedupe id names it for good (stage, subject, sequence).
    let id = d
        .dedupe_id
        .clone()
        .unwrap_or_else(|| format!("dlq:{}:{}", d.subject, d.sequence));
    let original = d.headers.get(header::SUBJECT).cloned().unwrap_or_default();
    let reason = d.headers.get(header::REASON).cloned().unwrap_or_default();
    let deliveries = d
        .headers
        .get(header::DELIVERIES)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let occ = Occurrence::dead_letter(&id, &stage, &original, &reason, deliveries);
    match notifier.record_and_send(&occ, None).await {
        Ok(_) => settle(d.ack().await),
        Err(e) => {
            tracing::warn!(stage = %stage, error = %e, "could not record a dead-letter notification; retrying");
            let delay = Duration::from_secs(1) * d.delivered.min(30);
            settle(d.nak(delay, &e.to_string()).await.map(|_| ()));
        }
    }
}

fn settle(r: Result<(), BackboneError>) {
    if let Err(e) = r {
        // Unsettled: delivered again after the ack wait; recording is idempotent.
        tracing::warn!(error = %e, "could not settle a dead letter");
    }
}
