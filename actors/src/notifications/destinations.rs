//! Destinations down for too long: a durable consumer on
//! `medbus.events.system.>` keeps, per destination, when it became
//! unreachable; a `destination.down` rule fires once the destination has
//! been unreachable for the rule's `down_for` without a recovered event.
//!
//! The outages are kept in memory and the events acked as read: after a
//! restart the destination reports itself unreachable again on its first
//! failed attempt, and the clock starts from then.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use medbus_bus::backbone::{open_consumer, BackboneError, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::canonical::{DestinationStatusEvent, SystemEventKind};
use medbus_bus::config::notifications::Trigger;
use medbus_bus::config::BackboneConfig;
use medbus_bus::envelope::header as env_header;
use tokio_util::sync::CancellationToken;

use super::rules::Occurrence;
use super::service::Notifier;
use super::DESTINATION_CONSUMER;

/// One ongoing outage.
struct Outage {
    /// The unreachable event's id: with the rule it names the notification.
    event_id: String,
    event: DestinationStatusEvent,
    /// Rules that have fired for it.
    fired: BTreeSet<String>,
}

/// Runs the destination watch until shutdown.
pub async fn run_destination_watch(
    notifier: Arc<Notifier>,
    backbone: SharedBackbone,
    cfg: BackboneConfig,
    shutdown: CancellationToken,
) -> Result<(), BackboneError> {
    let spec = ConsumerSpec::new(DESTINATION_CONSUMER, "medbus.events.system.>", &cfg);
    let mut consumer = open_consumer(&backbone, spec).await?;
    let mut down: BTreeMap<String, Outage> = BTreeMap::new();
    // How often the clocks are checked: fine enough for any down_for worth setting.
    let tick = notifier
        .config()
        .rules
        .values()
        .filter(|r| matches!(r.trigger(), Ok(Trigger::DestinationDown { .. })))
        .map(|r| r.down_for() / 4)
        .min()
        .unwrap_or(Duration::from_secs(1))
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut backoff = Duration::from_millis(100);
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => break,
            b = consumer.fetch(64, tick) => b,
        };
        match batch {
            Ok(batch) => {
                backoff = Duration::from_millis(100);
                for d in batch {
                    read(&mut down, &d);
                    if let Err(e) = d.ack().await {
                        tracing::warn!(error = %e, "could not settle a destination status event");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "destination status fetch failed");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
        fire_due(&notifier, &mut down).await;
    }
    Ok(())
}

/// Notes an unreachable (the first of an outage) or recovered event.
fn read(down: &mut BTreeMap<String, Outage>, d: &Delivery) {
    let kind = d.headers.get(env_header::KIND).and_then(|k| SystemEventKind::parse(k));
    let Some(kind) = kind else { return };
    let event: DestinationStatusEvent = match serde_json::from_slice(&d.payload) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "a destination status event that does not read; skipped");
            return;
        }
    };
    match kind {
        SystemEventKind::DestinationUnreachable => {
            let event_id = d
                .headers
                .get(env_header::ID)
                .cloned()
                .unwrap_or_else(|| format!("{}:{}", event.destination, event.since.timestamp_millis()));
            down.entry(event.destination.clone()).or_insert(Outage {
                event_id,
                event,
                fired: BTreeSet::new(),
            });
        }
        SystemEventKind::DestinationRecovered => {
            down.remove(&event.destination);
        }
    }
}

/// Fires each `destination.down` rule whose `down_for` an outage has lasted.
async fn fire_due(notifier: &Arc<Notifier>, down: &mut BTreeMap<String, Outage>) {
    let now = Utc::now();
    for (name, outage) in down.iter_mut() {
        let lasted = (now - outage.event.since).to_std().unwrap_or_default();
        for (rule_name, rule) in &notifier.config().rules {
            let fires = rule.trigger().is_ok_and(|t| t.matches_destination(name));
            if !fires || lasted < rule.down_for() || outage.fired.contains(rule_name) {
                continue;
            }
            let occ = Occurrence::destination_down(&outage.event_id, &outage.event, now);
            match notifier.record_and_send(&occ, Some(rule_name)).await {
                Ok(_) => {
                    outage.fired.insert(rule_name.clone());
                }
                Err(e) => {
                    tracing::warn!(destination = %name, error = %e, "could not record a destination-down notification; retrying")
                }
            }
        }
    }
}
