//! PostgreSQL clinical store: generic resources, their identifier and order
//! token indexes, the per-service applied ledger and the outbox, written in
//! one transaction per batch.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::rows::{event, map_err};
use super::{insert_event, insert_events, PostgresStore};
use crate::store::clinical::{
    check_version, link_lock_keys, refuse_skipped_conditional, unique_tokens, validate, validate_service, ORDER_TYPE,
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

/// Records (service, event id) for every one of `events` (each once, in id
/// order) in one statement; the ids that were not there yet. As
/// [`mark_applied`], a concurrent apply of the same pair waits for the first
/// to commit, then inserts nothing.
async fn mark_applied_all(
    tx: &mut PgConnection,
    service: &str,
    events: &[&EventRecord],
    now: DateTime<Utc>,
) -> Result<HashSet<Uuid>, StoreError> {
    let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    let new: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO service_applied (service, event_id, applied_at) \
         SELECT $1, e, $3 FROM UNNEST($2::uuid[]) WITH ORDINALITY AS u(e, ord) ORDER BY u.ord \
         ON CONFLICT (service, event_id) DO NOTHING RETURNING event_id",
    )
    .bind(service)
    .bind(&ids)
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(new.into_iter().collect())
}

/// Records (service, event id) in the ledger; false when it was already there.
/// A concurrent apply of the same pair blocks on the key until the first
/// commits, then inserts nothing: changes apply once.
async fn mark_applied(tx: &mut PgConnection, service: &str, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO service_applied (service, event_id, applied_at) VALUES ($1, $2, $3) \
         ON CONFLICT (service, event_id) DO NOTHING",
    )
    .bind(service)
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(done.rows_affected() == 1)
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
            " OR ((left(",
            $a,
            ", 1) = '|' OR left(",
            $b,
            ", 1) = '|') AND substr(",
            $a,
            ", strpos(",
            $a,
            ", '|') + 1) = substr(",
            $b,
            ", strpos(",
            $b,
            ", '|') + 1)))"
        )
    };
}

/// Namespace of the link-token advisory locks (first key of `pg_advisory_xact_lock(int, int)`).
const LINK_LOCKS: i32 = 0x6d62_6c6b;

/// Takes the transaction's link-token locks, in key order (see [`link_lock_keys`]).
async fn lock_links(tx: &mut PgConnection, keys: &[i32]) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k")
        .bind(LINK_LOCKS)
        .bind(keys)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// Inserts or replaces one resource inside `tx` (see [`ClinicalChange::Upsert`]);
/// returns its new version.
async fn upsert(tx: &mut PgConnection, w: &ResourceWrite, now: DateTime<Utc>) -> Result<i64, StoreError> {
    validate(w)?;
    let order_tokens = unique_tokens(&w.order_tokens);
    // One statement: the order link (the first of its order tokens that names
    // a stored order of the same patient, or where either patient is unknown;
    // NULL keeps the one it had unless that order is now another patient's)
    // and the row itself. A shared accession or placer number must never tie
    // one patient's resource to another patient's order.
    let version: i64 = sqlx::query_scalar(concat!(
        "INSERT INTO clinical_resources (resource_type, key, patient_key, status, order_key, resource, version, \
         updated_at) VALUES ($1, $2, $3, $4, \
         (SELECT i.key FROM clinical_identifiers i JOIN clinical_resources o \
          ON o.resource_type = i.resource_type AND o.key = i.key \
          WHERE i.resource_type = $7 AND i.token = ANY($8::text[]) \
          AND ",
        same_patient!("$3::text", "o.patient_key"),
        " \
          ORDER BY array_position($8::text[], i.token) LIMIT 1), $5, 1, $6) \
         ON CONFLICT (resource_type, key) DO UPDATE SET patient_key = EXCLUDED.patient_key, \
         status = EXCLUDED.status, order_key = COALESCE(EXCLUDED.order_key, \
         CASE WHEN EXISTS (SELECT 1 FROM clinical_resources o WHERE o.resource_type = $7 \
          AND o.key = clinical_resources.order_key AND NOT ",
        same_patient!("o.patient_key", "EXCLUDED.patient_key"),
        ") \
         THEN NULL ELSE clinical_resources.order_key END), \
         resource = EXCLUDED.resource, version = clinical_resources.version + 1, updated_at = EXCLUDED.updated_at \
         RETURNING version"
    ))
    .bind(&w.resource_type)
    .bind(&w.key)
    .bind(&w.patient_key)
    .bind(&w.status)
    .bind(Json(&w.resource))
    .bind(now)
    .bind(ORDER_TYPE)
    .bind(&order_tokens)
    .fetch_one(&mut *tx)
    .await
    .map_err(map_err)?;
    let identifiers = unique_tokens(&w.identifiers);
    if !identifiers.is_empty() {
        // A token indexed for another key of the type moves to this one.
        sqlx::query(
            "INSERT INTO clinical_identifiers (resource_type, token, key) \
             SELECT $1, t, $2 FROM UNNEST($3::text[]) AS t \
             ON CONFLICT (resource_type, token) DO UPDATE SET key = EXCLUDED.key",
        )
        .bind(&w.resource_type)
        .bind(&w.key)
        .bind(&identifiers)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    }
    // The order tokens replaced in one statement: the DELETE removes only
    // tokens not in the new set and the INSERT skips those already there, so
    // the two never touch the same row.
    sqlx::query(
        "WITH gone AS (DELETE FROM clinical_order_tokens \
         WHERE resource_type = $1 AND key = $2 AND NOT (token = ANY($3::text[]))) \
         INSERT INTO clinical_order_tokens (resource_type, key, token) \
         SELECT $1, $2, t FROM UNNEST($3::text[]) AS t ON CONFLICT DO NOTHING",
    )
    .bind(&w.resource_type)
    .bind(&w.key)
    .bind(&order_tokens)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    if w.resource_type == ORDER_TYPE {
        // An order now of another patient (a correction moved it) lets go of
        // the resources of the patient it was linked under: they must not stay
        // tied to another patient's order. Neither version nor updated_at moves.
        sqlx::query(concat!(
            "UPDATE clinical_resources SET order_key = NULL \
             WHERE order_key = $1 AND NOT ",
            same_patient!("patient_key", "$2::text")
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
            "UPDATE clinical_resources SET order_key = $1 \
             WHERE order_key IS NULL AND ",
            same_patient!("$3::text", "patient_key"),
            " \
             AND (resource_type, key) IN ( \
             SELECT t.resource_type, t.key FROM clinical_order_tokens t \
             JOIN clinical_identifiers i ON i.token = t.token WHERE i.resource_type = $2 AND i.key = $1)"
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
async fn emit(tx: &mut PgConnection, service: &str, e: &EventRecord, now: DateTime<Utc>) -> Result<(), StoreError> {
    insert_event(e).execute(&mut *tx).await.map_err(map_err)?;
    sqlx::query(
        "INSERT INTO outbox (id, service, correlation_id, causation_id, kind, subject, patient_id, body, \
         occurred_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING",
    )
    .bind(e.id)
    .bind(service)
    .bind(e.correlation_id)
    .bind(e.causation_id)
    .bind(&e.kind)
    .bind(&e.subject)
    .bind(&e.patient_id)
    .bind(Json(&e.body))
    .bind(e.occurred_at)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    mark_applied(tx, service, e.id, now).await?;
    Ok(())
}

/// A `clinical_resources` row (selected with [`resource_columns`]).
fn resource_row(row: &PgRow) -> Result<ResourceRow, StoreError> {
    Ok(ResourceRow {
        resource_type: row.try_get("resource_type").map_err(map_err)?,
        key: row.try_get("key").map_err(map_err)?,
        patient_key: row.try_get("patient_key").map_err(map_err)?,
        status: row.try_get("status").map_err(map_err)?,
        order_key: row.try_get("order_key").map_err(map_err)?,
        resource: row
            .try_get::<Json<serde_json::Value>, _>("resource")
            .map_err(map_err)?
            .0,
        version: row.try_get("version").map_err(map_err)?,
        updated_at: row.try_get("updated_at").map_err(map_err)?,
    })
}

/// An `outbox` row; its event columns are named as in `events`.
fn outbox_entry(row: &PgRow) -> Result<OutboxEntry, StoreError> {
    Ok(OutboxEntry {
        service: row.try_get("service").map_err(map_err)?,
        event: event(row)?,
        created_at: row.try_get("created_at").map_err(map_err)?,
    })
}

#[async_trait]
impl ClinicalStore for PostgresStore {
    async fn apply_clinical(
        &self,
        service: &str,
        batch: &[(EventRecord, Vec<ClinicalChange>)],
    ) -> Result<Vec<bool>, StoreError> {
        validate_service(service)?;
        let now = Utc::now();
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // Every event of the batch is logged first, in id order: an applied
        // pair's event is in the log already, so this changes nothing for
        // it, and two services applying overlapping batches wait on each
        // other's event ids in one order, never in a cycle.
        let firsts = first_copies(batch);
        insert_events(&mut tx, &firsts, now).await?;
        let writes = batch.iter().flat_map(|(_, changes)| changes).filter_map(|c| match c {
            ClinicalChange::Upsert(w) | ClinicalChange::UpsertIfVersion { write: w, .. } => Some(w),
            ClinicalChange::Emit(_) => None,
        });
        lock_links(&mut tx, &link_lock_keys(writes)).await?;
        // Marked applied all at once, in the same id order.
        let new = applied_now(batch, mark_applied_all(&mut tx, service, &firsts, now).await?);
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
                            // The upsert locks the row, so the version it returns is the truth.
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
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        lock_links(&mut tx, &link_lock_keys(std::iter::once(write))).await?;
        let version = upsert(&mut tx, write, Utc::now()).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(version)
    }

    async fn resource(&self, resource_type: &str, key: &str) -> Result<Option<ResourceRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            resource_columns!(),
            " FROM clinical_resources r WHERE r.resource_type = $1 AND r.key = $2"
        ))
        .bind(resource_type)
        .bind(key)
        .fetch_optional(&self.pool)
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
             WHERE i.resource_type = $1 AND i.token = $2"
        ))
        .bind(resource_type)
        .bind(token)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(resource_row).transpose()
    }

    async fn resources_of_order(&self, resource_type: &str, order_key: &str) -> Result<Vec<ResourceRow>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            resource_columns!(),
            " FROM clinical_resources r WHERE r.order_key = $2 AND r.resource_type = $1 ORDER BY r.seq"
        ))
        .bind(resource_type)
        .bind(order_key)
        .fetch_all(&self.pool)
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
            " FROM clinical_resources r WHERE r.patient_key = $2 AND r.resource_type = $1 ORDER BY r.seq"
        ))
        .bind(resource_type)
        .bind(patient_key)
        .fetch_all(&self.pool)
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
            " FROM clinical_resources r WHERE r.resource_type = $1 AND r.status = $2 AND r.updated_at < $3 \
             AND ($4::timestamptz IS NULL OR (r.updated_at, r.key) > ($4, $5::text)) \
             ORDER BY r.updated_at, r.key LIMIT $6"
        ))
        .bind(resource_type)
        .bind(status)
        .bind(before)
        .bind(after.map(|(at, _)| at))
        .bind(after.map(|(_, key)| key))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(resource_row).collect()
    }

    async fn count_resources(&self, resource_type: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clinical_resources WHERE resource_type = $1")
            .bind(resource_type)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        count(n, "clinical resources")
    }

    async fn pending_outbox(&self, service: &str, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, service, correlation_id, causation_id, kind, subject, patient_id, body, occurred_at, \
             created_at FROM outbox WHERE service = $1 AND published_at IS NULL ORDER BY seq LIMIT $2",
        )
        .bind(service)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(outbox_entry).collect()
    }

    async fn mark_published(&self, ids: &[Uuid]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        // Already published rows keep their first published_at.
        sqlx::query("UPDATE outbox SET published_at = $2 WHERE id = ANY($1) AND published_at IS NULL")
            .bind(ids)
            .bind(Utc::now())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
