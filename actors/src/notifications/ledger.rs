//! Reading and changing stored notifications, and [`acknowledge`].
//!
//! Every read-modify-write of a notification in this process goes through
//! [`update`] under one lock, so delivery, the sweeps and acknowledgements
//! never overwrite each other's change (an acknowledgement arriving while
//! the escalation sweep looks at the same record, say).

use chrono::Utc;
use medbus_bus::store::{AuditEntry, Store, StoreError};
use uuid::Uuid;

use super::record::{NotificationRecord, Status, RESOURCE_TYPE};

/// Serialises changes to notification records within the process.
static RECORDS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The notification `id`, if stored.
pub async fn load(store: &dyn Store, id: Uuid) -> Result<Option<NotificationRecord>, StoreError> {
    let row = store.clinical().resource(RESOURCE_TYPE, &id.to_string()).await?;
    Ok(row.as_ref().and_then(NotificationRecord::from_row))
}

/// Applies `change` to the stored notification `id` and writes it back when
/// `change` says it changed something; returns the record as it now is.
pub async fn update(
    store: &dyn Store,
    id: Uuid,
    change: impl FnOnce(&mut NotificationRecord) -> bool,
) -> Result<Option<NotificationRecord>, StoreError> {
    let _guard = RECORDS.lock().await;
    let Some(mut rec) = load(store, id).await? else {
        return Ok(None);
    };
    if change(&mut rec) {
        // No throttle token: it stays with whichever notification took it last.
        store.clinical().upsert_resource(&rec.to_write(false)).await?;
    }
    Ok(Some(rec))
}

/// Acknowledges notification `id` (the text from the acknowledge URL) on
/// behalf of `by`: it and the other notifications of the same rule and event
/// (its other recipients, and the escalated original of an escalation) stop
/// escalating. Ok(true) when the notification exists (acknowledging twice is
/// harmless), Ok(false) when there is no such notification.
pub async fn acknowledge(store: &dyn Store, id: &str, by: &str) -> Result<bool, StoreError> {
    let Ok(id) = Uuid::parse_str(id) else {
        return Ok(false);
    };
    let Some(rec) = load(store, id).await? else {
        return Ok(false);
    };
    let mut ids = vec![id];
    ids.extend(&rec.siblings);
    if let Some(original) = rec.escalation_of {
        ids.push(original);
        if let Some(o) = load(store, original).await? {
            ids.extend(o.siblings);
        }
    }
    let now = Utc::now();
    for target in ids {
        update(store, target, |r| {
            if !(r.status == Status::Pending || r.status.delivered()) || r.acknowledged_at.is_some() {
                return false;
            }
            r.status = Status::Acknowledged;
            r.acknowledged_at = Some(now);
            r.acknowledged_by = Some(by.to_string());
            true
        })
        .await?;
    }
    store
        .audit(&AuditEntry {
            at: now,
            actor: by.to_string(),
            action: "notification.acknowledge".into(),
            target: id.to_string(),
            detail: Some(format!("rule {}", rec.rule)),
        })
        .await?;
    metrics::counter!("medbus_notifications_acknowledged_total", "rule" => rec.rule).increment(1);
    Ok(true)
}
