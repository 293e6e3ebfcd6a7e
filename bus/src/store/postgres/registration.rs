//! PostgreSQL registration store: patients, identifiers and encounters,
//! written in one transaction with the event that caused them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};

use super::rows::map_err;
use super::{insert_events, PostgresStore};
use crate::store::event_log::{appended, first_copies};
use crate::store::registration::{chain_too_long, count, merged_keys, system_text, PatientUpserts};
use crate::store::{
    EncounterRow, EventRecord, PatientRow, RegistrationChange, RegistrationStore, StoreError, MAX_MERGE_HOPS,
};

/// Writes a [`PatientUpserts`] group (one round trip: the patients, then
/// their identifiers, which read the patients' keys so are written after)
/// and empties it.
async fn flush(group: &mut PatientUpserts<'_>, tx: &mut PgConnection, now: DateTime<Utc>) -> Result<(), StoreError> {
    if group.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH p AS (INSERT INTO patients (key, resource, merged_into, version, updated_at) \
             SELECT b.k, b.r, NULL, 1, $3 FROM UNNEST($1::text[], $2::jsonb[]) WITH ORDINALITY AS b(k, r, ord) \
             ORDER BY b.ord \
             ON CONFLICT (key) DO UPDATE SET resource = EXCLUDED.resource, \
             version = patients.version + 1, updated_at = EXCLUDED.updated_at RETURNING key) \
             INSERT INTO patient_identifiers (system, value, patient_key) \
             SELECT i.s, i.v, p.key FROM UNNEST($4::text[], $5::text[], $6::text[]) WITH ORDINALITY \
             AS i(k, s, v, ord) JOIN p ON p.key = i.k ORDER BY i.ord \
             ON CONFLICT (system, value) DO UPDATE SET patient_key = EXCLUDED.patient_key",
    )
    .bind(&group.keys)
    .bind(group.resources.iter().map(Json).collect::<Vec<_>>())
    .bind(now)
    .bind(group.identifiers.iter().map(|i| i.0).collect::<Vec<_>>())
    .bind(group.identifiers.iter().map(|i| i.1).collect::<Vec<_>>())
    .bind(group.identifiers.iter().map(|i| i.2).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    *group = PatientUpserts::default();
    Ok(())
}

/// Applies one change inside the caller's transaction, in order with the
/// ones before it: a patient upsert joins `upserts` (written when the group
/// ends), any other change first writes the group, then itself.
async fn apply<'a>(
    tx: &mut PgConnection,
    upserts: &mut PatientUpserts<'a>,
    change: &'a RegistrationChange,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if upserts.must_flush_before(change) {
        flush(upserts, tx, now).await?;
    }
    if upserts.absorb(change) {
        return Ok(());
    }
    match change {
        // Joined the group above.
        RegistrationChange::UpsertPatient { .. } => {}
        RegistrationChange::UpsertEncounter {
            key,
            patient_key,
            status,
            resource,
        } => {
            sqlx::query(
                "INSERT INTO encounters (key, patient_key, status, resource, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (key) DO UPDATE SET patient_key = EXCLUDED.patient_key, status = EXCLUDED.status, \
                 resource = EXCLUDED.resource, updated_at = EXCLUDED.updated_at",
            )
            .bind(key)
            .bind(patient_key)
            .bind(status)
            .bind(Json(resource))
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        RegistrationChange::MergePatients { surviving, merged } => {
            // The survivor exists (a stub if unknown) and is live, so the
            // merged rows can point at it and links never form a cycle.
            sqlx::query(
                "INSERT INTO patients (key, resource, merged_into, version, updated_at) \
                 VALUES ($1, '{}'::jsonb, NULL, 0, $2) \
                 ON CONFLICT (key) DO UPDATE SET merged_into = NULL, updated_at = EXCLUDED.updated_at",
            )
            .bind(surviving)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            for key in merged_keys(surviving, merged) {
                sqlx::query(
                    "INSERT INTO patients (key, resource, merged_into, version, updated_at) \
                     VALUES ($1, '{}'::jsonb, $2, 0, $3) \
                     ON CONFLICT (key) DO UPDATE SET merged_into = EXCLUDED.merged_into, \
                     updated_at = EXCLUDED.updated_at",
                )
                .bind(key)
                .bind(surviving)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                sqlx::query("UPDATE patient_identifiers SET patient_key = $2 WHERE patient_key = $1")
                    .bind(key)
                    .bind(surviving)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                sqlx::query("UPDATE encounters SET patient_key = $2, updated_at = $3 WHERE patient_key = $1")
                    .bind(key)
                    .bind(surviving)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
            }
        }
    }
    Ok(())
}

/// A `patients` row.
fn patient_row(row: &PgRow) -> Result<PatientRow, StoreError> {
    Ok(PatientRow {
        key: row.try_get("key").map_err(map_err)?,
        resource: row
            .try_get::<Json<serde_json::Value>, _>("resource")
            .map_err(map_err)?
            .0,
        merged_into: row.try_get("merged_into").map_err(map_err)?,
        version: row.try_get("version").map_err(map_err)?,
        updated_at: row.try_get("updated_at").map_err(map_err)?,
    })
}

/// An `encounters` row.
fn encounter_row(row: &PgRow) -> Result<EncounterRow, StoreError> {
    Ok(EncounterRow {
        key: row.try_get("key").map_err(map_err)?,
        patient_key: row.try_get("patient_key").map_err(map_err)?,
        status: row.try_get("status").map_err(map_err)?,
        resource: row
            .try_get::<Json<serde_json::Value>, _>("resource")
            .map_err(map_err)?
            .0,
        updated_at: row.try_get("updated_at").map_err(map_err)?,
    })
}

/// Reads one patient on `conn`.
async fn load_patient(conn: &mut PgConnection, key: &str) -> Result<Option<PatientRow>, StoreError> {
    let row = sqlx::query("SELECT key, resource, merged_into, version, updated_at FROM patients WHERE key = $1")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
    row.as_ref().map(patient_row).transpose()
}

#[async_trait]
impl RegistrationStore for PostgresStore {
    async fn apply_registrations(
        &self,
        batch: &[(EventRecord, Vec<RegistrationChange>)],
    ) -> Result<Vec<bool>, StoreError> {
        let now = Utc::now();
        // A concurrent apply of the same event id blocks on the primary key
        // until the first commits, then inserts nothing: changes apply once.
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let out = appended(batch, insert_events(&mut tx, &first_copies(batch), now).await?);
        // Dropping `tx` on an error rolls the whole batch back.
        let mut upserts = PatientUpserts::default();
        for ((_, changes), new) in batch.iter().zip(&out) {
            if !*new {
                continue;
            }
            for change in changes {
                apply(&mut tx, &mut upserts, change, now).await?;
            }
        }
        flush(&mut upserts, &mut tx, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    async fn patient(&self, key: &str) -> Result<Option<PatientRow>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        load_patient(&mut conn, key).await
    }

    async fn find_patient(&self, system: Option<&str>, value: &str) -> Result<Option<PatientRow>, StoreError> {
        // One snapshot, so a merge committing meanwhile cannot break the chain.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(map_err)?;
        let key: Option<String> =
            sqlx::query_scalar("SELECT patient_key FROM patient_identifiers WHERE system = $1 AND value = $2")
                .bind(system_text(system))
                .bind(value)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        let Some(mut key) = key else {
            return Ok(None);
        };
        for _ in 0..=MAX_MERGE_HOPS {
            let Some(patient) = load_patient(&mut tx, &key).await? else {
                return Ok(None);
            };
            match &patient.merged_into {
                Some(next) => key = next.clone(),
                None => {
                    tx.commit().await.map_err(map_err)?;
                    return Ok(Some(patient));
                }
            }
        }
        Err(chain_too_long())
    }

    async fn encounters_of(&self, patient_key: &str) -> Result<Vec<EncounterRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, patient_key, status, resource, updated_at FROM encounters \
             WHERE patient_key = $1 ORDER BY seq",
        )
        .bind(patient_key)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(encounter_row).collect()
    }

    async fn registration_counts(&self) -> Result<(u64, u64), StoreError> {
        let (patients, encounters): (i64, i64) =
            sqlx::query_as("SELECT (SELECT COUNT(*) FROM patients), (SELECT COUNT(*) FROM encounters)")
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
        Ok((count(patients, "patients")?, count(encounters, "encounters")?))
    }
}
