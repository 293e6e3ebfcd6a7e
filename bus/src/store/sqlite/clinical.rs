//! SQLite clinical store: generic resources, their identifier and order token
//! indexes, the per-service applied ledger and the outbox, written on the
//! single writer connection in one `BEGIN IMMEDIATE` transaction per batch.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::rows::{event, get, get_json, get_time, json, map_err, micros};
use super::{batch, insert_event, SqliteStore, BEGIN_WRITE};
use crate::store::clinical::{
    check_version, refuse_skipped_conditional, unique_tokens, validate, validate_service, ORDER_TYPE,
};
use crate::store::event_log::{applied_now, first_copies};
use crate::store::registration::count;
use crate::store::{ClinicalChange, ClinicalStore, EventRecord, OutboxEntry, ResourceRow, ResourceWrite, StoreError};

/// Columns of `clinical_resources r` in the order [`resource_row`] reads them.
macro_rules! resource_columns {
    () => {
        "r.resource_type, r.key, r.patient_key, r.status, r.order_key, r.resource, r.version, r.updated_at"
    };
}

/// SQL: true when the patient keys `$a` and `$b` may name the same patient:
/// equal, either unknown, or the same value where one has no system (a
/// modality's Patient ID without an issuer against an order's issued one).
/// Links between resources of two patients are never made.
macro_rules! same_patient {
    ($a:literal, $b:literal) => {
        concat!(
            "(",
            $a,
            " IS NULL OR ",
            $b,
            " IS NULL OR ",
            $a,
            " = ",
            $b,
            " OR ((substr(",
            $a,
            ", 1, 1) = '|' OR substr(",
            $b,
            ", 1, 1) = '|') AND substr(",
            $a,
            ", instr(",
            $a,
            ", '|') + 1) = substr(",
            $b,
            ", instr(",
            $b,
            ", '|') + 1)))"
        )
    };
}

/// Records (service, event id) in the ledger; false when it was already there.
async fn mark_applied(tx: &mut SqliteConnection, service: &str, id: Uuid, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO service_applied (service, event_id, applied_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (service, event_id) DO NOTHING",
    )
    .bind(service)
    .bind(id.to_string())
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(done.rows_affected() == 1)
}

/// The key of the first of `tokens` that names a stored order of `patient`
/// (or where either patient is unknown): a shared accession or placer number
/// must never tie one patient's resource to another patient's order.
async fn resolve_order(
    tx: &mut SqliteConnection,
    tokens: &[&str],
    patient: Option<&str>,
) -> Result<Option<String>, StoreError> {
    for token in tokens {
        let key: Option<String> = sqlx::query_scalar(concat!(
            "SELECT i.key FROM clinical_identifiers i JOIN clinical_resources o \
             ON o.resource_type = i.resource_type AND o.key = i.key \
             WHERE i.resource_type = ?1 AND i.token = ?2 \
             AND ",
            same_patient!("?3", "o.patient_key")
        ))
        .bind(ORDER_TYPE)
        .bind(*token)
        .bind(patient)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if key.is_some() {
            return Ok(key);
        }
    }
    Ok(None)
}

/// Inserts or replaces one resource inside the write transaction `tx` (see
/// [`ClinicalChange::Upsert`]); returns its new version.
async fn upsert(tx: &mut SqliteConnection, w: &ResourceWrite, now: i64) -> Result<i64, StoreError> {
    validate(w)?;
    let order_tokens = unique_tokens(&w.order_tokens);
    let order_key = resolve_order(tx, &order_tokens, w.patient_key.as_deref()).await?;
    // seq: the write lock makes MAX() + 1 safe; a replace keeps the first seq.
    // A replace whose tokens resolve to nothing keeps its order, unless that
    // order is another patient's now that the resource's patient changed.
    let version: i64 = sqlx::query_scalar(concat!(
        "INSERT INTO clinical_resources (resource_type, key, seq, patient_key, status, order_key, resource, \
         version, updated_at) \
         VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM clinical_resources), ?3, ?4, ?5, ?6, 1, ?7) \
         ON CONFLICT (resource_type, key) DO UPDATE SET patient_key = excluded.patient_key, \
         status = excluded.status, order_key = COALESCE(excluded.order_key, \
         CASE WHEN EXISTS (SELECT 1 FROM clinical_resources o WHERE o.resource_type = ?8 \
          AND o.key = clinical_resources.order_key AND NOT ",
        same_patient!("o.patient_key", "excluded.patient_key"),
        ") \
         THEN NULL ELSE clinical_resources.order_key END), \
         resource = excluded.resource, version = clinical_resources.version + 1, updated_at = excluded.updated_at \
         RETURNING version"
    ))
    .bind(&w.resource_type)
    .bind(&w.key)
    .bind(&w.patient_key)
    .bind(&w.status)
    .bind(&order_key)
    .bind(json(&w.resource, "clinical resource")?)
    .bind(now)
    .bind(ORDER_TYPE)
    .fetch_one(&mut *tx)
    .await
    .map_err(map_err)?;
    for token in unique_tokens(&w.identifiers) {
        // A token indexed for another key of the type moves to this one.
        sqlx::query(
            "INSERT INTO clinical_identifiers (resource_type, token, key) VALUES (?1, ?2, ?3) \
             ON CONFLICT (resource_type, token) DO UPDATE SET key = excluded.key",
        )
        .bind(&w.resource_type)
        .bind(token)
        .bind(&w.key)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    }
    sqlx::query("DELETE FROM clinical_order_tokens WHERE resource_type = ?1 AND key = ?2")
        .bind(&w.resource_type)
        .bind(&w.key)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    for token in &order_tokens {
        sqlx::query("INSERT INTO clinical_order_tokens (resource_type, key, token) VALUES (?1, ?2, ?3)")
            .bind(&w.resource_type)
            .bind(&w.key)
            .bind(*token)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
    }
    if w.resource_type == ORDER_TYPE {
        // An order now of another patient (a correction moved it) lets go of
        // the resources of the patient it was linked under: they must not stay
        // tied to another patient's order. Neither version nor updated_at moves.
        sqlx::query(concat!(
            "UPDATE clinical_resources SET order_key = NULL \
             WHERE order_key = ?1 AND NOT ",
            same_patient!("patient_key", "?2")
        ))
        .bind(&w.key)
        .bind(&w.patient_key)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        // The late link: rows that named this order before it was stored, of
        // its patient (or where either patient is unknown).
        // Neither version nor updated_at moves: the resource itself is unchanged.
        sqlx::query(concat!(
            "UPDATE clinical_resources SET order_key = ?1 \
             WHERE order_key IS NULL AND ",
            same_patient!("?3", "patient_key"),
            " \
             AND (resource_type, key) IN ( \
             SELECT t.resource_type, t.key FROM clinical_order_tokens t \
             JOIN clinical_identifiers i ON i.token = t.token WHERE i.resource_type = ?2 AND i.key = ?1)"
        ))
        .bind(&w.key)
        .bind(ORDER_TYPE)
        .bind(&w.patient_key)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    }
    Ok(version)
}

/// Appends a follow-up event to the log (if absent) and the outbox, and marks
/// it applied for `service`. An id already in the outbox is not queued twice:
/// it is the backbone dedupe id, so it is published once either way.
async fn emit(tx: &mut SqliteConnection, service: &str, e: &EventRecord, now: i64) -> Result<(), StoreError> {
    insert_event(e)?.execute(&mut *tx).await.map_err(map_err)?;
    sqlx::query(
        "INSERT INTO outbox (id, seq, service, correlation_id, causation_id, kind, subject, patient_id, body, \
         occurred_at, created_at) \
         VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(e.id.to_string())
    .bind(service)
    .bind(e.correlation_id.to_string())
    .bind(e.causation_id.map(|c| c.to_string()))
    .bind(&e.kind)
    .bind(&e.subject)
    .bind(&e.patient_id)
    .bind(json(&e.body, "event body")?)
    .bind(micros(e.occurred_at))
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    mark_applied(tx, service, e.id, now).await?;
    Ok(())
}

/// A `clinical_resources` row (selected with [`resource_columns`]).
fn resource_row(row: &SqliteRow) -> Result<ResourceRow, StoreError> {
    Ok(ResourceRow {
        resource_type: get(row, "resource_type")?,
        key: get(row, "key")?,
        patient_key: get(row, "patient_key")?,
        status: get(row, "status")?,
        order_key: get(row, "order_key")?,
        resource: get_json(row, "resource")?,
        version: get(row, "version")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

/// An `outbox` row; its event columns are named as in `events`.
fn outbox_entry(row: &SqliteRow) -> Result<OutboxEntry, StoreError> {
    Ok(OutboxEntry {
        service: get(row, "service")?,
        event: event(row)?,
        created_at: get_time(row, "created_at")?,
    })
}

#[async_trait]
impl ClinicalStore for SqliteStore {
    async fn apply_clinical(
        &self,
        service: &str,
        batch: &[(EventRecord, Vec<ClinicalChange>)],
    ) -> Result<Vec<bool>, StoreError> {
        validate_service(service)?;
        let now = micros(Utc::now());
        let firsts = first_copies(batch);
        // Encoded before the write lock is taken, so a bad body costs no transaction.
        let events = firsts
            .iter()
            .map(|e| Ok((*e, json(&e.body, "event body")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(map_err)?;
        // The log and the ledger for the whole batch first, one statement each
        // (each a hop to the driver's thread).
        batch::insert_events(&mut tx, &events, now).await?;
        let new = applied_now(batch, batch::mark_applied_all(&mut tx, service, &firsts, now).await?);
        let mut out = Vec::with_capacity(batch.len());
        for ((_, changes), new) in batch.iter().zip(new) {
            // Dropping `tx` on any error below rolls the whole batch back.
            if new {
                for change in changes {
                    match change {
                        ClinicalChange::Upsert(w) => {
                            upsert(&mut tx, w, now).await?;
                        }
                        ClinicalChange::UpsertIfVersion { write, expected } => {
                            let version = upsert(&mut tx, write, now).await?;
                            check_version(write, *expected, version)?;
                        }
                        ClinicalChange::Emit(follow_up) => emit(&mut tx, service, follow_up, now).await?,
                    }
                }
            } else {
                refuse_skipped_conditional(changes)?;
            }
            out.push(new);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    async fn upsert_resource(&self, write: &ResourceWrite) -> Result<i64, StoreError> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(map_err)?;
        let version = upsert(&mut tx, write, micros(Utc::now())).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(version)
    }

    async fn resource(&self, resource_type: &str, key: &str) -> Result<Option<ResourceRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            resource_columns!(),
            " FROM clinical_resources r WHERE r.resource_type = ?1 AND r.key = ?2"
        ))
        .bind(resource_type)
        .bind(key)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.as_ref().map(resource_row).transpose()
    }

    async fn find_by_identifier(&self, resource_type: &str, token: &str) -> Result<Option<ResourceRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            resource_columns!(),
            " FROM clinical_identifiers i JOIN clinical_resources r \
             ON r.resource_type = i.resource_type AND r.key = i.key \
             WHERE i.resource_type = ?1 AND i.token = ?2"
        ))
        .bind(resource_type)
        .bind(token)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.as_ref().map(resource_row).transpose()
    }

    async fn resources_of_order(&self, resource_type: &str, order_key: &str) -> Result<Vec<ResourceRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            resource_columns!(),
            " FROM clinical_resources r WHERE r.order_key = ?2 AND r.resource_type = ?1 ORDER BY r.seq"
        ))
        .bind(resource_type)
        .bind(order_key)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(resource_row).collect()
    }

    async fn resources_of_patient(
        &self,
        resource_type: &str,
        patient_key: &str,
    ) -> Result<Vec<ResourceRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            resource_columns!(),
            " FROM clinical_resources r WHERE r.patient_key = ?2 AND r.resource_type = ?1 ORDER BY r.seq"
        ))
        .bind(resource_type)
        .bind(patient_key)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(resource_row).collect()
    }

    async fn resources_with_status(
        &self,
        resource_type: &str,
        status: &str,
        before: DateTime<Utc>,
        after: Option<(DateTime<Utc>, &str)>,
        limit: u32,
    ) -> Result<Vec<ResourceRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            resource_columns!(),
            " FROM clinical_resources r WHERE r.resource_type = ?1 AND r.status = ?2 AND r.updated_at < ?3 \
             AND (?4 IS NULL OR r.updated_at > ?4 OR (r.updated_at = ?4 AND r.key > ?5)) \
             ORDER BY r.updated_at, r.key LIMIT ?6"
        ))
        .bind(resource_type)
        .bind(status)
        .bind(micros(before))
        .bind(after.map(|(at, _)| micros(at)))
        .bind(after.map(|(_, key)| key))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(resource_row).collect()
    }

    async fn count_resources(&self, resource_type: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clinical_resources WHERE resource_type = ?1")
            .bind(resource_type)
            .fetch_one(&self.reader)
            .await
            .map_err(map_err)?;
        count(n, "clinical resources")
    }

    async fn pending_outbox(&self, service: &str, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, service, correlation_id, causation_id, kind, subject, patient_id, body, occurred_at, \
             created_at FROM outbox WHERE service = ?1 AND published_at IS NULL ORDER BY seq LIMIT ?2",
        )
        .bind(service)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(outbox_entry).collect()
    }

    async fn mark_published(&self, ids: &[Uuid]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let now = micros(Utc::now());
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(map_err)?;
        for id in ids {
            // Already published rows keep their first published_at.
            sqlx::query("UPDATE outbox SET published_at = ?2 WHERE id = ?1 AND published_at IS NULL")
                .bind(id.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }
}
