//! Throttling: a repeat of the same rule and key (same patient and code, same
//! stage, same destination) inside the rule's window is recorded as
//! suppressed instead of sent.
//!
//! The newest notification recorded for sending carries the identifier token
//! of its rule and key (the store moves a token to the key that indexes it
//! last), so one lookup finds what a repeat is measured against. Decisions
//! made earlier in the same batch are not committed yet, so they are kept
//! here as well. Callers hold the service's decision lock, so two events
//! cannot both be "the first".

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use medbus_bus::config::notifications::NotificationsConfig;
use medbus_bus::store::{Store, StoreError};
use uuid::Uuid;

use super::record::{throttle_token, NotificationRecord, Status, RESOURCE_TYPE};

/// The last notification sent for a rule and key.
#[derive(Debug, Clone)]
struct Last {
    id: Uuid,
    event_id: String,
    at: DateTime<Utc>,
}

/// Throttle decisions for one batch of occurrences.
#[derive(Default)]
pub struct Throttle {
    seen: HashMap<(String, String), Option<Last>>,
}

impl Throttle {
    /// A fresh set of decisions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks `rec` suppressed when it repeats its rule and key inside the
    /// window; returns true when it is to be sent (and so carries the token).
    pub async fn decide(
        &mut self,
        store: &dyn Store,
        cfg: &NotificationsConfig,
        rec: &mut NotificationRecord,
    ) -> Result<bool, StoreError> {
        let Some(window) = cfg.rules.get(&rec.rule).and_then(|r| r.throttle) else {
            return Ok(false);
        };
        let slot = (rec.rule.clone(), rec.throttle_key.clone());
        let last = match self.seen.get(&slot) {
            Some(l) => l.clone(),
            None => {
                let token = throttle_token(&rec.rule, &rec.throttle_key);
                let row = store.clinical().find_by_identifier(RESOURCE_TYPE, &token).await?;
                let last = row.as_ref().and_then(NotificationRecord::from_row).and_then(|r| {
                    // A failed one did not reach anybody: the repeat must.
                    (r.status == Status::Pending || r.status.delivered()).then_some(Last {
                        id: r.id,
                        event_id: r.event_id,
                        at: r.created_at,
                    })
                });
                self.seen.insert(slot.clone(), last.clone());
                last
            }
        };
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        match last {
            // The same event (another recipient, or a redelivery) is no repeat.
            Some(l) if l.event_id == rec.event_id => Ok(true),
            Some(l) if rec.created_at - l.at < window => {
                rec.status = Status::Suppressed;
                rec.status_reason = Some(format!(
                    "repeat within the {} throttle window of notification {}",
                    humanize(window),
                    l.id
                ));
                metrics::counter!("medbus_notifications_total", "rule" => rec.rule.clone(), "outcome" => "suppressed")
                    .increment(1);
                Ok(false)
            }
            _ => {
                self.seen.insert(
                    slot,
                    Some(Last {
                        id: rec.id,
                        event_id: rec.event_id.clone(),
                        at: rec.created_at,
                    }),
                );
                Ok(true)
            }
        }
    }
}

fn humanize(d: chrono::Duration) -> String {
    match d.num_seconds() {
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s if s > 0 => format!("{s}s"),
        _ => format!("{}ms", d.num_milliseconds()),
    }
}
