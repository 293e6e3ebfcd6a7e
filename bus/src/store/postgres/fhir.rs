//! PostgreSQL FHIR resource store: a batch of writes in one transaction, two
//! statements per write (the resource row, then its identifiers).
//!
//! Races end in the database, not in a read-then-write: a Create is an
//! `INSERT … ON CONFLICT DO NOTHING` (a second Create of the id waits for the
//! first to commit, then inserts nothing), a conditional update is an
//! `UPDATE … WHERE version = $v` (it re-checks the row after a concurrent
//! one commits), and an identifier is claimed by an insert against the
//! (type, value, system) key, which likewise waits for a concurrent claim
//! and then skips. Every statement is a fixed string, prepared once per
//! connection.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};

use super::rows::map_err;
use super::PostgresStore;
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
/// goes back, whatever the clock of the process that writes.
async fn write_row(
    tx: &mut PgConnection,
    w: &FhirWrite,
    now: DateTime<Utc>,
) -> Result<Option<(i64, DateTime<Utc>)>, StoreError> {
    let q = match w.mode {
        WriteMode::Create => sqlx::query_as(
            "INSERT INTO fhir_resource (resource_type, id, version, last_updated, resource) \
             VALUES ($1, $2, 1, $3, $4) ON CONFLICT (resource_type, id) DO NOTHING \
             RETURNING version, last_updated",
        ),
        WriteMode::Update => sqlx::query_as(
            "INSERT INTO fhir_resource (resource_type, id, version, last_updated, resource) \
             VALUES ($1, $2, 1, $3, $4) ON CONFLICT (resource_type, id) DO UPDATE SET \
             version = fhir_resource.version + 1, \
             last_updated = GREATEST(EXCLUDED.last_updated, fhir_resource.last_updated), \
             resource = EXCLUDED.resource RETURNING version, last_updated",
        ),
        WriteMode::UpdateIfVersion(_) => sqlx::query_as(
            "UPDATE fhir_resource SET version = version + 1, last_updated = GREATEST($3, last_updated), \
             resource = $4 WHERE resource_type = $1 AND id = $2 AND version = $5 \
             RETURNING version, last_updated",
        ),
    };
    let q = q.bind(&w.resource_type).bind(&w.id).bind(now).bind(Json(&w.resource));
    let q = match w.mode {
        WriteMode::UpdateIfVersion(expected) => q.bind(expected),
        WriteMode::Create | WriteMode::Update => q,
    };
    q.fetch_optional(&mut *tx).await.map_err(write_err(w))
}

/// Replaces the identifiers of `w` with its new set in one statement and
/// returns how many of the set another id holds. The DELETE removes only
/// identifiers outside the set and the INSERT only adds ones this id does
/// not hold yet, so the two never touch the same row; both see the
/// statement's snapshot, which `held` reads too. An identifier another id
/// holds (or claims concurrently, once that commits) is skipped by
/// `ON CONFLICT DO NOTHING` and counted.
async fn replace_identifiers(tx: &mut PgConnection, w: &FhirWrite, ids: &[(&str, &str)]) -> Result<i64, StoreError> {
    let systems: Vec<&str> = ids.iter().map(|(s, _)| *s).collect();
    let values: Vec<&str> = ids.iter().map(|(_, v)| *v).collect();
    sqlx::query_scalar(
        "WITH wanted AS (SELECT s, v FROM UNNEST($3::text[], $4::text[]) AS u(s, v)), \
         held AS (SELECT f.system, f.value FROM fhir_identifier f WHERE f.resource_type = $1 AND f.id = $2), \
         gone AS (DELETE FROM fhir_identifier f WHERE f.resource_type = $1 AND f.id = $2 \
           AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.s = f.system AND w.v = f.value)), \
         added AS (INSERT INTO fhir_identifier (resource_type, value, system, id) \
           SELECT $1, w.v, w.s, $2 FROM wanted w \
           WHERE NOT EXISTS (SELECT 1 FROM held h WHERE h.system = w.s AND h.value = w.v) \
           ORDER BY w.s, w.v ON CONFLICT DO NOTHING RETURNING 1) \
         SELECT (SELECT COUNT(*) FROM wanted) \
           - (SELECT COUNT(*) FROM wanted w JOIN held h ON h.system = w.s AND h.value = w.v) \
           - (SELECT COUNT(*) FROM added)",
    )
    .bind(&w.resource_type)
    .bind(&w.id)
    .bind(&systems)
    .bind(&values)
    .fetch_one(&mut *tx)
    .await
    .map_err(write_err(w))
}

/// The id of another resource of the type holding one of `ids`. A new
/// statement, so (read committed) it sees the claim the insert waited for.
async fn holder(tx: &mut PgConnection, w: &FhirWrite, ids: &[(&str, &str)]) -> Result<Option<String>, StoreError> {
    let systems: Vec<&str> = ids.iter().map(|(s, _)| *s).collect();
    let values: Vec<&str> = ids.iter().map(|(_, v)| *v).collect();
    sqlx::query_scalar(
        "SELECT f.id FROM fhir_identifier f JOIN UNNEST($3::text[], $4::text[]) AS u(s, v) \
         ON f.system = u.s AND f.value = u.v WHERE f.resource_type = $1 AND f.id <> $2 ORDER BY f.id LIMIT 1",
    )
    .bind(&w.resource_type)
    .bind(&w.id)
    .bind(&systems)
    .bind(&values)
    .fetch_optional(&mut *tx)
    .await
    .map_err(map_err)
}

/// Applies one write inside `tx` (see [`FhirStore::fhir_write`]).
async fn write_one(tx: &mut PgConnection, w: &FhirWrite, now: DateTime<Utc>) -> Result<FhirRow, StoreError> {
    let Some((version, last_updated)) = write_row(tx, w, now).await? else {
        return Err(match w.mode {
            WriteMode::UpdateIfVersion(expected) => {
                let stored: Option<i64> =
                    sqlx::query_scalar("SELECT version FROM fhir_resource WHERE resource_type = $1 AND id = $2")
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
    if !(ids.is_empty() && version == 1) && replace_identifiers(tx, w, &ids).await? > 0 {
        return Err(identifier_held(w, holder(tx, w, &ids).await?.as_deref()));
    }
    Ok(FhirRow {
        resource_type: w.resource_type.clone(),
        id: w.id.clone(),
        version,
        last_updated,
        resource: w.resource.clone(),
    })
}

/// A `fhir_resource` row (selected with [`fhir_columns`]).
fn fhir_row(row: &PgRow) -> Result<FhirRow, StoreError> {
    Ok(FhirRow {
        resource_type: row.try_get("resource_type").map_err(map_err)?,
        id: row.try_get("id").map_err(map_err)?,
        version: row.try_get("version").map_err(map_err)?,
        last_updated: row.try_get("last_updated").map_err(map_err)?,
        resource: row
            .try_get::<Json<serde_json::Value>, _>("resource")
            .map_err(map_err)?
            .0,
    })
}

/// Applies each request's writes, all in one transaction, marking each
/// request that has an id committed in it (see [`FhirStore::fhir_commit`]).
async fn write_requests(
    store: &PostgresStore,
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
    // Microseconds, as stored: the rows returned equal the rows read back.
    let now = Utc::now().trunc_subsecs(6);
    if requests
        .iter()
        .all(|(_, writes)| writes.iter().all(|w| w.mode == WriteMode::Create))
    {
        let created = create_all(store, requests, now).await?;
        count_create_batch("postgres", requests.len(), created.is_some());
        if let Some(out) = created {
            return Ok(out);
        }
    }
    let mut tx = store.pool.begin().await.map_err(map_err)?;
    let mut out = Vec::with_capacity(requests.len());
    for (request, writes) in requests {
        let mut rows = Vec::with_capacity(writes.len());
        for w in *writes {
            // Dropping `tx` on any error below rolls everything back.
            rows.push(write_one(&mut tx, w, now).await?);
        }
        if let Some(request) = request {
            sqlx::query("INSERT INTO fhir_request (id, committed, at) VALUES ($1, true, $2)")
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

/// The common case, requests that only create, in one statement for the
/// whole batch: every resource row, every identifier claim, every request
/// mark (one round trip, not three per request). None, with nothing
/// written, when anything did not go as planned (an id or identifier taken,
/// also by another request of the batch; a request marked already): the
/// statement-per-write path then finds out which and says so precisely.
async fn create_all(
    store: &PostgresStore,
    requests: &[(Option<&str>, &[FhirWrite])],
    now: DateTime<Utc>,
) -> Result<Option<Vec<Vec<FhirRow>>>, StoreError> {
    let writes: Vec<&FhirWrite> = requests.iter().flat_map(|(_, w)| w.iter()).collect();
    let mut claims: Vec<(&str, &str, &str, &str)> = Vec::new();
    for w in &writes {
        for (system, value) in stored_identifiers(w) {
            claims.push((w.resource_type.as_str(), value, system, w.id.as_str()));
        }
    }
    // Key order, as the one-by-one path: concurrent claims wait, never deadlock.
    claims.sort_unstable();
    let marks: Vec<&str> = requests.iter().filter_map(|(r, _)| *r).collect();
    let mut tx = store.pool.begin().await.map_err(map_err)?;
    let (rows, claimed, marked): (i64, i64, i64) = sqlx::query_as(
        "WITH r AS (INSERT INTO fhir_resource (resource_type, id, version, last_updated, resource) \
           SELECT b.t, b.id, 1, $4, b.r FROM UNNEST($1::text[], $2::text[], $3::jsonb[]) WITH ORDINALITY \
           AS b(t, id, r, ord) ORDER BY b.ord ON CONFLICT DO NOTHING RETURNING resource_type, id), \
         i AS (INSERT INTO fhir_identifier (resource_type, value, system, id) \
           SELECT u.t, u.v, u.s, u.id FROM UNNEST($5::text[], $6::text[], $7::text[], $8::text[]) \
           WITH ORDINALITY AS u(t, v, s, id, ord) \
           JOIN r ON r.resource_type = u.t AND r.id = u.id ORDER BY u.ord ON CONFLICT DO NOTHING RETURNING 1), \
         q AS (INSERT INTO fhir_request (id, committed, at) SELECT m, true, $4 FROM UNNEST($9::text[]) AS m \
           ON CONFLICT DO NOTHING RETURNING 1) \
         SELECT (SELECT COUNT(*) FROM r), (SELECT COUNT(*) FROM i), (SELECT COUNT(*) FROM q)",
    )
    .bind(writes.iter().map(|w| w.resource_type.as_str()).collect::<Vec<_>>())
    .bind(writes.iter().map(|w| w.id.as_str()).collect::<Vec<_>>())
    .bind(writes.iter().map(|w| Json(&w.resource)).collect::<Vec<_>>())
    .bind(now)
    .bind(claims.iter().map(|c| c.0).collect::<Vec<_>>())
    .bind(claims.iter().map(|c| c.1).collect::<Vec<_>>())
    .bind(claims.iter().map(|c| c.2).collect::<Vec<_>>())
    .bind(claims.iter().map(|c| c.3).collect::<Vec<_>>())
    .bind(&marks)
    .fetch_one(&mut *tx)
    .await
    .map_err(map_err)?;
    let as_planned = |done: i64, wanted: usize| usize::try_from(done).is_ok_and(|d| d == wanted);
    if !(as_planned(rows, writes.len()) && as_planned(claimed, claims.len()) && as_planned(marked, marks.len())) {
        // Counts only: which id or identifier is taken is for the fallback to name (never a value: PHI).
        tracing::debug!(
            requests = requests.len(),
            resources = writes.len(),
            written = rows,
            identifiers = claims.len(),
            claimed,
            marks = marks.len(),
            marked,
            "batched FHIR create did not go as planned; statement by statement"
        );
        // Dropping `tx` rolls back whatever part went in.
        return Ok(None);
    }
    tx.commit().await.map_err(map_err)?;
    Ok(Some(created_rows(requests, now)))
}

/// One request's writes in one transaction (see [`write_requests`]).
async fn write_batch(
    store: &PostgresStore,
    request: Option<&str>,
    writes: &[FhirWrite],
) -> Result<Vec<FhirRow>, StoreError> {
    Ok(write_requests(store, &[(request, writes)])
        .await?
        .pop()
        .unwrap_or_default())
}

#[async_trait]
impl FhirStore for PostgresStore {
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
            "INSERT INTO fhir_request (id, committed, reason, at) VALUES ($1, false, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(request)
        .bind(reason)
        .bind(Utc::now())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn fhir_request(&self, request: &str) -> Result<Option<FhirRequestState>, StoreError> {
        let row: Option<(bool, Option<String>)> =
            sqlx::query_as("SELECT committed, reason FROM fhir_request WHERE id = $1")
                .bind(request)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(row.map(|(committed, reason)| request_state(committed, reason)))
    }

    async fn fhir_requests(&self, requests: &[String]) -> Result<HashMap<String, FhirRequestState>, StoreError> {
        let rows: Vec<(String, bool, Option<String>)> =
            sqlx::query_as("SELECT id, committed, reason FROM fhir_request WHERE id = ANY($1)")
                .bind(requests)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(id, committed, reason)| (id, request_state(committed, reason)))
            .collect())
    }

    async fn fhir_read(&self, resource_type: &str, id: &str) -> Result<Option<FhirRow>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            fhir_columns!(),
            " FROM fhir_resource r WHERE r.resource_type = $1 AND r.id = $2"
        ))
        .bind(resource_type)
        .bind(id)
        .fetch_optional(&self.pool)
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
            " FROM fhir_resource r WHERE r.resource_type = $1 AND r.id IN (\
             SELECT i.id FROM fhir_identifier i WHERE i.resource_type = $1 AND i.value = $2 \
             AND ($3::text IS NULL OR i.system = $3)) ORDER BY r.seq LIMIT $4"
        ))
        .bind(resource_type)
        .bind(value)
        .bind(system)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(fhir_row).collect()
    }

    async fn fhir_count(&self, resource_type: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM fhir_resource WHERE resource_type = $1")
            .bind(resource_type)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        count(n, "FHIR resources")
    }
}
