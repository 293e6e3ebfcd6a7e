//! What the clinical services (orders, results, billing) share: turning
//! canonical resources into store writes, follow-up event records, and one
//! event's trip through `apply_clinical`.

use chrono::{DateTime, Utc};
use medbus_bus::canonical::{EventKind, Identifier, Reference};
use medbus_bus::store::clinical::{ClinicalChange, ClinicalStore, ResourceRow, ResourceWrite};
use medbus_bus::store::{EventRecord, SharedStore, StoreError};
use serde::Serialize;
use uuid::Uuid;

use crate::feed::ApplyError;

/// The FHIR code a status enum serialises to (`active`, `final`, `billable`).
pub fn status_code<T: Serialize>(status: &T) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// The `system|value` tokens of identifiers that have a value.
pub fn tokens(identifiers: &[Identifier]) -> Vec<String> {
    identifiers.iter().filter_map(Identifier::token).collect()
}

/// The tokens of the identifiers logical references carry (basedOn,
/// supportingInformation: the orders a resource belongs to).
pub fn reference_tokens(references: &[Reference]) -> Vec<String> {
    references
        .iter()
        .filter_map(|r| r.identifier.as_ref().and_then(Identifier::token))
        .collect()
}

/// A resource as JSON; a resource that does not serialise is bad input.
pub fn to_json<T: Serialize>(resource: &T) -> Result<serde_json::Value, ApplyError> {
    serde_json::to_value(resource).map_err(|e| ApplyError::BadInput(format!("does not serialise: {e}")))
}

/// An upsert of `resource` under `key`.
pub struct Upsert<'a, T> {
    /// FHIR resource type.
    pub resource_type: &'static str,
    /// Natural key.
    pub key: String,
    /// Patient key.
    pub patient_key: Option<String>,
    /// FHIR status code.
    pub status: String,
    /// Identifier tokens.
    pub identifiers: Vec<String>,
    /// Order identifier tokens it refers to.
    pub order_tokens: Vec<String>,
    /// The resource.
    pub resource: &'a T,
}

impl<T: Serialize> Upsert<'_, T> {
    /// The store change.
    pub fn change(self) -> Result<ClinicalChange, ApplyError> {
        Ok(ClinicalChange::Upsert(ResourceWrite {
            resource_type: self.resource_type.to_string(),
            key: self.key,
            patient_key: self.patient_key,
            status: self.status,
            identifiers: self.identifiers,
            order_tokens: self.order_tokens,
            resource: to_json(self.resource)?,
        }))
    }
}

/// A follow-up event `kind` with `body`, caused by `cause`: same correlation
/// id and patient, causation = the cause, and when it happened = the cause's.
/// `id` must be derived from what raised it, so re-deciding gives the same id.
pub fn follow_up<B: Serialize>(
    id: Uuid,
    cause: &EventRecord,
    kind: EventKind,
    body: &B,
) -> Result<ClinicalChange, ApplyError> {
    Ok(ClinicalChange::Emit(EventRecord {
        id,
        correlation_id: cause.correlation_id,
        causation_id: Some(cause.id),
        kind: kind.as_str().to_string(),
        subject: kind.subject().to_string(),
        patient_id: cause.patient_id.clone(),
        body: to_json(body)?,
        occurred_at: cause.occurred_at,
    }))
}

/// Names the event in a bad-input error, so the operator (and the log) can
/// tell which one of a batch it was.
pub fn naming(event: &EventRecord) -> impl FnOnce(ApplyError) -> ApplyError + '_ {
    move |e| match e {
        ApplyError::BadInput(why) => ApplyError::BadInput(format!("event {}: {why}", event.id)),
        other => other,
    }
}

/// Applies one event's changes for `service` in one transaction; false
/// when the service had applied it already.
pub async fn apply_one(
    store: &SharedStore,
    service: &str,
    record: EventRecord,
    changes: Vec<ClinicalChange>,
) -> Result<bool, ApplyError> {
    let flags = store.clinical().apply_clinical(service, &[(record, changes)]).await?;
    flags
        .first()
        .copied()
        .ok_or_else(|| ApplyError::Store(StoreError::Database("no answer for an applied event".into())))
}

/// Pages through the resources of a type with a status, last changed before
/// a time, oldest first, until every one was seen: a sweep must reach them
/// all, and rows it leaves as they are (not due yet, or failing) would hide
/// the rest if it only ever read the first page.
pub struct StatusPages<'a> {
    resource_type: &'a str,
    status: &'a str,
    before: DateTime<Utc>,
    page: u32,
    after: Option<(DateTime<Utc>, String)>,
    done: bool,
}

impl<'a> StatusPages<'a> {
    /// Pages of at most `page` rows.
    pub fn new(resource_type: &'a str, status: &'a str, before: DateTime<Utc>, page: u32) -> Self {
        StatusPages {
            resource_type,
            status,
            before,
            page: page.max(1),
            after: None,
            done: false,
        }
    }

    /// The next page, or None when every row was seen.
    pub async fn next(&mut self, store: &dyn ClinicalStore) -> Result<Option<Vec<ResourceRow>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let after = self.after.as_ref().map(|(at, key)| (*at, key.as_str()));
        let rows = store
            .resources_with_status(self.resource_type, self.status, self.before, after, self.page)
            .await?;
        self.done = rows.len() < self.page as usize;
        self.after = rows.last().map(|r| (r.updated_at, r.key.clone()));
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(rows))
    }
}

#[cfg(test)]
mod status_pages_tests {
    use super::*;
    use medbus_bus::config::StoreConfig;
    use medbus_bus::store;

    fn write(key: &str, status: &str) -> ResourceWrite {
        ResourceWrite {
            resource_type: "Communication".into(),
            key: key.into(),
            patient_key: None,
            status: status.into(),
            identifiers: vec![],
            order_tokens: vec![],
            resource: serde_json::json!({"resourceType": "Communication", "status": status}),
        }
    }

    #[tokio::test]
    async fn every_page_is_read_and_each_row_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::connect(&StoreConfig::default(), dir.path()).await.unwrap();
        for n in 0..7 {
            store
                .clinical()
                .upsert_resource(&write(&format!("c-{n}"), "in-progress"))
                .await
                .unwrap();
        }
        store
            .clinical()
            .upsert_resource(&write("other", "completed"))
            .await
            .unwrap();
        let before = Utc::now() + chrono::Duration::seconds(1);
        let mut pages = StatusPages::new("Communication", "in-progress", before, 3);
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        while let Some(rows) = pages.next(store.clinical()).await.unwrap() {
            sizes.push(rows.len());
            seen.extend(rows.into_iter().map(|r| r.key));
        }
        assert_eq!(sizes, [3, 3, 1]);
        seen.sort();
        let want: Vec<String> = (0..7).map(|n| format!("c-{n}")).collect();
        assert_eq!(seen, want, "every row once, none of another status");
        // A full last page ends with one empty read.
        let mut pages = StatusPages::new("Communication", "in-progress", before, 7);
        assert_eq!(pages.next(store.clinical()).await.unwrap().map(|r| r.len()), Some(7));
        assert!(pages.next(store.clinical()).await.unwrap().is_none());
    }
}
