//! The periodic sweep: escalation of notifications nobody acknowledged, and
//! delivery of notifications a crash or restart left pending.
//!
//! Escalation is per event: every recipient's notification of one rule and
//! event escalates to the same escalation notifications (their ids derive
//! from the event), so `escalate_to` hears once, however many were notified.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use medbus_bus::store::StoreError;
use tokio_util::sync::CancellationToken;

use super::ledger;
use super::record::{NotificationRecord, Status, RESOURCE_TYPE};
use super::rules::{record, with_siblings, Occurrence};
use super::service::Notifier;
use crate::clinical::StatusPages;

/// Records read per page; a sweep reads every page.
const PAGE: u32 = 500;

/// Runs the sweep every `sweep_every` until shutdown.
pub async fn run_sweeps(notifier: Arc<Notifier>, shutdown: CancellationToken) {
    let every = notifier.config().sweep_every.max(Duration::from_millis(50));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let Err(e) = sweep(&notifier).await {
            tracing::warn!(error = %e, "notification sweep failed; trying again next time");
        }
    }
}

/// One sweep: escalations due, then stale pending notifications.
pub async fn sweep(notifier: &Arc<Notifier>) -> Result<(), StoreError> {
    escalate_due(notifier).await?;
    resume_pending(notifier).await
}

/// Escalates every notification awaiting acknowledgement past its rule's `escalate_after`.
async fn escalate_due(notifier: &Arc<Notifier>) -> Result<(), StoreError> {
    let cfg = notifier.config();
    let Some(shortest) = cfg.rules.values().filter_map(|r| r.escalate_after).min() else {
        return Ok(());
    };
    let now = Utc::now();
    let before = now - chrono::Duration::from_std(shortest).unwrap_or(chrono::Duration::MAX);
    // Every page: notifications not due yet (a longer rule) must not hide later ones.
    let mut pages = StatusPages::new(RESOURCE_TYPE, Status::AwaitingAck.as_str(), before, PAGE);
    while let Some(rows) = pages.next(notifier.store().clinical()).await? {
        for row in rows {
            let Some(rec) = NotificationRecord::from_row(&row) else {
                continue;
            };
            let rule = cfg.rules.get(&rec.rule).filter(|r| r.escalate_after.is_some());
            let Some((after, rule)) = rule.and_then(|r| r.escalate_after.map(|a| (a, r))) else {
                // The rule no longer escalates: stop looking at it.
                ledger::update(&**notifier.store(), rec.id, |r| {
                    let waiting = r.status == Status::AwaitingAck;
                    if waiting {
                        r.status = Status::Sent;
                    }
                    waiting
                })
                .await?;
                continue;
            };
            let sent = rec.sent_at.unwrap_or(row.updated_at);
            if now - sent < chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX) {
                continue;
            }
            // Acknowledged since the query: nothing to escalate.
            let current = ledger::load(&**notifier.store(), rec.id).await?;
            if current.is_none_or(|c| c.status != Status::AwaitingAck) {
                continue;
            }
            let new = {
                let _guard = notifier.decision_lock().await;
                let occ = escalation_of(&rec, after);
                let planned = with_siblings(
                    rule.escalate_to
                        .iter()
                        .map(|to| {
                            let mut e = record(&rec.rule, &occ, to, now);
                            e.escalation_of = Some(rec.id);
                            e
                        })
                        .collect(),
                );
                let mut new = Vec::new();
                for e in planned {
                    // Made already for another recipient of the same event (or before a crash).
                    if ledger::load(&**notifier.store(), e.id).await?.is_none() {
                        notifier.store().clinical().upsert_resource(&e.to_write(false)).await?;
                        new.push(e.id);
                    }
                }
                new
            };
            let marked = ledger::update(&**notifier.store(), rec.id, |r| {
                // Acknowledged in the last instant: it stays acknowledged (the escalation was due).
                let waiting = r.status == Status::AwaitingAck;
                if waiting {
                    r.status = Status::Escalated;
                    r.escalated = true;
                }
                waiting
            })
            .await?;
            if marked.is_some() && !new.is_empty() {
                tracing::warn!(notification = %rec.id, rule = %rec.rule, "not acknowledged in time: escalated");
                metrics::counter!("medbus_notifications_escalated_total", "rule" => rec.rule.clone()).increment(1);
            }
            for id in new {
                notifier.spawn_delivery(id);
            }
        }
    }
    Ok(())
}

/// What the escalation notifications say: the original, marked as escalated.
fn escalation_of(rec: &NotificationRecord, after: Duration) -> Occurrence {
    let minutes = after.as_secs() / 60;
    let waited = if minutes > 0 {
        format!("{minutes} min")
    } else {
        format!("{} s", after.as_secs())
    };
    Occurrence {
        trigger: match rec.trigger.as_str() {
            "result.critical" => "result.critical",
            "deadletter" => "deadletter",
            _ => "destination.down",
        },
        scope: None,
        event_id: format!("escalation:{}", rec.event_id),
        throttle_key: rec.throttle_key.clone(),
        patient_key: rec.patient_key.clone(),
        summary: format!("ESCALATED (not acknowledged within {waited}): {}", rec.summary),
        details: rec.details.clone(),
        priority: if rec.priority == "stat" { "stat" } else { "urgent" },
    }
}

/// Delivers notifications left pending longer than any delivery could take
/// (a crash or restart between recording and sending), unless a task here has them.
async fn resume_pending(notifier: &Arc<Notifier>) -> Result<(), StoreError> {
    let before = Utc::now() - chrono::Duration::from_std(stale_after(notifier)).unwrap_or(chrono::Duration::MAX);
    let mut pages = StatusPages::new(RESOURCE_TYPE, Status::Pending.as_str(), before, PAGE);
    while let Some(rows) = pages.next(notifier.store().clinical()).await? {
        for row in rows {
            if let Ok(id) = uuid::Uuid::parse_str(&row.key) {
                if !notifier.is_in_flight(id) {
                    tracing::info!(notification = %id, "resuming a notification left pending");
                    notifier.spawn_delivery(id);
                }
            }
        }
    }
    Ok(())
}

/// How long a pending notification may go unchanged while some process is
/// still delivering it: the longest attempt plus the longest backoff, with a margin.
fn stale_after(notifier: &Notifier) -> Duration {
    let cfg = notifier.config();
    let longest = cfg
        .webhooks
        .values()
        .map(|w| w.timeout + w.max_backoff)
        .chain(cfg.email.values().map(|e| e.timeout + e.max_backoff))
        .max()
        .unwrap_or_default();
    longest + Duration::from_secs(60)
}
