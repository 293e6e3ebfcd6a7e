//! SQLite FHIR resource store: a batch of writes on the single writer
//! connection in one `BEGIN IMMEDIATE` transaction. The write lock is held
//! from the first statement, so checking who holds an id or identifier and
//! then writing cannot race with another writer.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::SqliteConnection;

use super::rows::{get, get_json, get_time, json, map_err, micros};
use super::{SqliteStore, BEGIN_WRITE};
use crate::store::fhir::{
    count_create_batch, created_rows, id_taken, identifier_held, request_marked, request_state, stored_identifiers,
    unique_violation, validate, version_moved,
};
use crate::store::registration::count;
use crate::store::{FhirCommit, FhirRequestState, FhirRow, FhirStore, FhirWrite, StoreError, WriteMode};

/// Columns of `fhir_resource r` in the order [`fhir_row`] reads them.
macro_rules! fhir_columns {
    () => {
        "r.resource_type, r.id, r.version, r.last_updated, r.resource"
    };
}

/// Maps a database error of a statement of `w`; a unique violation is a
/// conflict, not a database failure.
fn write_err(w: &FhirWrite) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => unique_violation(w),
        _ => map_err(e),
    }
}

/// Writes the resource row of `w`; its new (version, last_updated), or None
/// when the mode refused (id taken, version moved on). last_updated never
/// goes back, whatever the clock says.
async fn write_row(tx: &mut SqliteConnection, w: &FhirWrite, now: i64) -> Result<Option<(i64, i64)>, StoreError> {
    let resource = json(&w.resource, "FHIR resource")?;
    // seq: the write lock makes MAX() + 1 safe; a replace keeps the first seq.
    let q = match w.mode {
        WriteMode::Create => sqlx::query_as(
            "INSERT INTO fhir_resource (resource_type, id, seq, version, last_updated, resource) \
             VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM fhir_resource), 1, ?3, ?4) \
             ON CONFLICT (resource_type, id) DO NOTHING RETURNING version, last_updated",
        ),
        WriteMode::Update => sqlx::query_as(
            "INSERT INTO fhir_resource (resource_type, id, seq, version, last_updated, resource) \
             VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM fhir_resource), 1, ?3, ?4) \
             ON CONFLICT (resource_type, id) DO UPDATE SET version = fhir_resource.version + 1, \
             last_updated = MAX(excluded.last_updated, fhir_resource.last_updated), \
             resource = excluded.resource RETURNING version, last_updated",
        ),
        WriteMode::UpdateIfVersion(_) => sqlx::query_as(
            "UPDATE fhir_resource SET version = version + 1, last_updated = MAX(?3, last_updated), \
             resource = ?4 WHERE resource_type = ?1 AND id = ?2 AND version = ?5 \
             RETURNING version, last_updated",
        ),
    };
    let q = q.bind(&w.resource_type).bind(&w.id).bind(now).bind(resource);
    let q = match w.mode {
        WriteMode::UpdateIfVersion(expected) => q.bind(expected),
        WriteMode::Create | WriteMode::Update => q,
    };
    q.fetch_optional(&mut *tx).await.map_err(write_err(w))
}

/// Replaces the identifiers of `w` with `ids`; fails with a conflict naming
/// the holder when another id of the type holds one of them.
async fn replace_identifiers(tx: &mut SqliteConnection, w: &FhirWrite, ids: &[(&str, &str)]) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM fhir_identifier WHERE resource_type = ?1 AND id = ?2")
        .bind(&w.resource_type)
        .bind(&w.id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    for (system, value) in ids {
        let holder: Option<String> = sqlx::query_scalar(
            "SELECT id FROM fhir_identifier WHERE resource_type = ?1 AND value = ?2 AND system = ?3",
        )
        .bind(&w.resource_type)
        .bind(*value)
        .bind(*system)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if let Some(holder) = holder {
            return Err(identifier_held(w, Some(&holder)));
        }
        sqlx::query("INSERT INTO fhir_identifier (resource_type, value, system, id) VALUES (?1, ?2, ?3, ?4)")
            .bind(&w.resource_type)
            .bind(*value)
            .bind(*system)
            .bind(&w.id)
            .execute(&mut *tx)
            .await
            .map_err(write_err(w))?;
    }
    Ok(())
}

/// Applies one write inside the write transaction `tx` (see [`FhirStore::fhir_write`]).
async fn write_one(tx: &mut SqliteConnection, w: &FhirWrite, now: i64) -> Result<FhirRow, StoreError> {
    let Some((version, last_updated)) = write_row(tx, w, now).await? else {
        return Err(match w.mode {
            WriteMode::UpdateIfVersion(expected) => {
                let stored: Option<i64> =
                    sqlx::query_scalar("SELECT version FROM fhir_resource WHERE resource_type = ?1 AND id = ?2")
                        .bind(&w.resource_type)
                        .bind(&w.id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(map_err)?;
                version_moved(w, expected, stored)
            }
            WriteMode::Create | WriteMode::Update => id_taken(w),
        });
    };
    let ids = stored_identifiers(w);
    // A new row (version 1) has no identifiers to replace.
    if !(ids.is_empty() && version == 1) {
        replace_identifiers(tx, w, &ids).await?;
    }
    Ok(FhirRow {
        resource_type: w.resource_type.clone(),
        id: w.id.clone(),
        version,
        last_updated: time(last_updated)?,
        resource: w.resource.clone(),
    })
}

/// A stored time (INTEGER microseconds).
fn time(us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Database(format!("FHIR last_updated out of range: {us}")))
}

/// A `fhir_resource` row (selected with [`fhir_columns`]).
fn fhir_row(row: &SqliteRow) -> Result<FhirRow, StoreError> {
    Ok(FhirRow {
        resource_type: get(row, "resource_type")?,
        id: get(row, "id")?,
        version: get(row, "version")?,
        last_updated: get_time(row, "last_updated")?,
        resource: get_json(row, "resource")?,
    })
}

/// Applies each request's writes, all in one transaction, marking each
/// request that has an id committed in it (see [`FhirStore::fhir_commit`]).
async fn write_requests(
    store: &SqliteStore,
    requests: &[(Option<&str>, &[FhirWrite])],
) -> Result<Vec<Vec<FhirRow>>, StoreError> {
    for (_, writes) in requests {
        validate(writes)?;
    }
    if requests
        .iter()
        .all(|(request, writes)| writes.is_empty() && request.is_none())
    {
        return Ok(requests.iter().map(|_| Vec::new()).collect());
    }
    let now = micros(Utc::now());
    if requests
        .iter()
        .all(|(_, writes)| writes.iter().all(|w| w.mode == WriteMode::Create))
    {
        let created = create_all(store, requests, now).await?;
        count_create_batch("sqlite", requests.len(), created.is_some());
        if let Some(out) = created {
            return Ok(out);
        }
    }
    let mut tx = store.writer.begin_with(BEGIN_WRITE).await.map_err(map_err)?;
    let mut out = Vec::with_capacity(requests.len());
    for (request, writes) in requests {
        let mut rows = Vec::with_capacity(writes.len());
        for w in *writes {
            // Dropping `tx` on any error below rolls everything back.
            rows.push(write_one(&mut tx, w, now).await?);
        }
        if let Some(request) = request {
            sqlx::query("INSERT INTO fhir_request (id, committed, at) VALUES (?1, 1, ?2)")
                .bind(request)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(db) if db.is_unique_violation() => request_marked(request),
                    _ => map_err(e),
                })?;
        }
        out.push(rows);
    }
    tx.commit().await.map_err(map_err)?;
    Ok(out)
}

/// The common case, requests that only create, in three statements for the
/// whole batch (resources, identifier claims, request marks, each row of a
/// `json_each` over one parameter) instead of five per request: every
/// statement is a hop to the driver's worker thread. None, with nothing
/// written, when anything did not go as planned (an id or identifier taken,
/// also by another request of the batch; a request marked already): the
/// statement-per-write path then finds out which and says so precisely.
async fn create_all(
    store: &SqliteStore,
    requests: &[(Option<&str>, &[FhirWrite])],
    now: i64,
) -> Result<Option<Vec<Vec<FhirRow>>>, StoreError> {
    let writes: Vec<&FhirWrite> = requests.iter().flat_map(|(_, w)| w.iter()).collect();
    let mut resources = Vec::with_capacity(writes.len());
    let mut claims = Vec::new();
    for w in &writes {
        resources.push(serde_json::json!([
            w.resource_type,
            w.id,
            json(&w.resource, "FHIR resource")?
        ]));
        for (system, value) in stored_identifiers(w) {
            claims.push((w.resource_type.as_str(), value, system, w.id.as_str()));
        }
    }
    claims.sort_unstable();
    let claims: Vec<serde_json::Value> = claims
        .iter()
        .map(|(t, v, s, id)| serde_json::json!([t, v, s, id]))
        .collect();
    let marks: Vec<&str> = requests.iter().filter_map(|(r, _)| *r).collect();
    let (claim_count, mark_count) = (claims.len(), marks.len());
    let (resources, claims, marks) = (
        json(&resources, "FHIR resources")?,
        json(&claims, "FHIR identifiers")?,
        json(&marks, "FHIR requests")?,
    );
    let mut tx = store.writer.begin_with(BEGIN_WRITE).await.map_err(map_err)?;
    // `WHERE true`: SQLite's parser needs it between INSERT … SELECT and ON CONFLICT.
    // seq: one past the largest before the statement, in batch order.
    let rows: Vec<(i64,)> = sqlx::query_as(
        "INSERT INTO fhir_resource (resource_type, id, seq, version, last_updated, resource) \
         SELECT j.value ->> 0, j.value ->> 1, (SELECT COALESCE(MAX(seq), 0) FROM fhir_resource) + j.key + 1, \
         1, ?2, j.value ->> 2 FROM json_each(?1) AS j WHERE true ON CONFLICT DO NOTHING RETURNING 1",
    )
    .bind(&resources)
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    if rows.len() != writes.len() {
        // Counts only: which id is taken is for the fallback to name.
        tracing::debug!(
            requests = requests.len(),
            resources = writes.len(),
            written = rows.len(),
            "batched FHIR create did not go as planned; statement by statement"
        );
        return Ok(None);
    }
    let claimed: Vec<(i64,)> = sqlx::query_as(
        "INSERT INTO fhir_identifier (resource_type, value, system, id) \
         SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3 FROM json_each(?1) AS j \
         WHERE true ON CONFLICT DO NOTHING RETURNING 1",
    )
    .bind(&claims)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    let marked: Vec<(i64,)> = sqlx::query_as(
        "INSERT INTO fhir_request (id, committed, at) SELECT j.value, 1, ?2 FROM json_each(?1) AS j \
         WHERE true ON CONFLICT DO NOTHING RETURNING 1",
    )
    .bind(&marks)
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    if claimed.len() != claim_count || marked.len() != mark_count {
        // Counts only: which identifier or mark is taken is for the fallback to name (never a value: PHI).
        tracing::debug!(
            requests = requests.len(),
            identifiers = claim_count,
            claimed = claimed.len(),
            marks = mark_count,
            marked = marked.len(),
            "batched FHIR create did not go as planned; statement by statement"
        );
        // Dropping `tx` rolls back whatever part went in.
        return Ok(None);
    }
    tx.commit().await.map_err(map_err)?;
    let last_updated = time(now)?;
    Ok(Some(created_rows(requests, last_updated)))
}

/// One request's writes in one transaction (see [`write_requests`]).
async fn write_batch(
    store: &SqliteStore,
    request: Option<&str>,
    writes: &[FhirWrite],
) -> Result<Vec<FhirRow>, StoreError> {
    Ok(write_requests(store, &[(request, writes)])
        .await?
        .pop()
        .unwrap_or_default())
}

#[async_trait]
impl FhirStore for SqliteStore {
    async fn fhir_write(&self, writes: &[FhirWrite]) -> Result<Vec<FhirRow>, StoreError> {
        write_batch(self, None, writes).await
    }

    async fn fhir_commit(&self, request: &str, writes: &[FhirWrite]) -> Result<Vec<FhirRow>, StoreError> {
        write_batch(self, Some(request), writes).await
    }

    async fn fhir_commit_all(&self, requests: &[FhirCommit]) -> Result<Vec<Vec<FhirRow>>, StoreError> {
        let all: Vec<(Option<&str>, &[FhirWrite])> = requests
            .iter()
            .map(|r| (Some(r.request.as_str()), r.writes.as_slice()))
            .collect();
        write_requests(self, &all).await
    }

    async fn fhir_refuse(&self, request: &str, reason: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO fhir_request (id, committed, reason, at) VALUES (?1, 0, ?2, ?3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(request)
        .bind(reason)
        .bind(micros(Utc::now()))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn fhir_request(&self, request: &str) -> Result<Option<FhirRequestState>, StoreError> {
        let row: Option<(i64, Option<String>)> =
            sqlx::query_as("SELECT committed, reason FROM fhir_request WHERE id = ?1")
                .bind(request)
                .fetch_optional(&self.reader)
                .await
                .map_err(map_err)?;
        Ok(row.map(|(committed, reason)| request_state(committed != 0, reason)))
    }

    async fn fhir_requests(&self, requests: &[String]) -> Result<HashMap<String, FhirRequestState>, StoreError> {
        if requests.is_empty() {
            return Ok(HashMap::new());
        }
        // One statement for the batch (each is a hop to the driver's worker thread).
        let rows: Vec<(String, i64, Option<String>)> = sqlx::query_as(
            "SELECT id, committed, reason FROM fhir_request WHERE id IN (SELECT value FROM json_each(?1))",
        )
        .bind(json(&requests, "FHIR request ids")?)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(id, committed, reason)| (id, request_state(committed != 0, reason)))
            .collect())
    }

    async fn fhir_read(&self, resource_type: &str, id: &str) -> Result<Option<FhirRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            fhir_columns!(),
            " FROM fhir_resource r WHERE r.resource_type = ?1 AND r.id = ?2"
        ))
        .bind(resource_type)
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .map_err(map_err)?;
        row.as_ref().map(fhir_row).transpose()
    }

    async fn fhir_search_identifier(
        &self,
        resource_type: &str,
        system: Option<&str>,
        value: &str,
        limit: u32,
    ) -> Result<Vec<FhirRow>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // IN, not a join: one resource can hold the value under several systems.
        let rows = sqlx::query(concat!(
            "SELECT ",
            fhir_columns!(),
            " FROM fhir_resource r WHERE r.resource_type = ?1 AND r.id IN (\
             SELECT i.id FROM fhir_identifier i WHERE i.resource_type = ?1 AND i.value = ?2 \
             AND (?3 IS NULL OR i.system = ?3)) ORDER BY r.seq LIMIT ?4"
        ))
        .bind(resource_type)
        .bind(value)
        .bind(system)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(fhir_row).collect()
    }

    async fn fhir_count(&self, resource_type: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM fhir_resource WHERE resource_type = ?1")
            .bind(resource_type)
            .fetch_one(&self.reader)
            .await
            .map_err(map_err)?;
        count(n, "FHIR resources")
    }
}
