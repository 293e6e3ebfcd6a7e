//! Keeping deliveries in hand alive while one long piece of work runs (a
//! delivery retried with backoff keeps the next ones of its batch waiting,
//! in order): the ack-wait clock of each is restarted well inside the ack
//! wait, so the backbone never redelivers what is still being worked on.

use std::future::Future;
use std::time::Duration;

use super::Delivery;

/// How often to renew under `ack_wait`: a third of it, at least 50 ms.
pub fn renew_interval(ack_wait: Duration) -> Duration {
    (ack_wait / 3).max(Duration::from_millis(50))
}

/// Runs `work` to its end, marking every delivery of `held` in progress each
/// `every` meanwhile (a failed renewal is logged at debug: the delivery may be
/// redelivered, which consumers tolerate).
pub async fn renewing<T>(work: impl Future<Output = T>, held: &[&Delivery], every: Duration) -> T {
    tokio::pin!(work);
    let mut renew = tokio::time::interval(every);
    renew.tick().await;
    loop {
        tokio::select! {
            r = &mut work => return r,
            _ = renew.tick() => {
                for d in held {
                    if let Err(e) = d.in_progress().await {
                        tracing::debug!(subject = %d.subject, error = %e, "could not renew a delivery");
                    }
                }
            }
        }
    }
}
