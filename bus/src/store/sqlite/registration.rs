//! SQLite registration store: patients, identifiers and encounters, written
//! on the single writer connection in one `BEGIN IMMEDIATE` transaction with
//! the event that caused them.

use async_trait::async_trait;
use chrono::Utc;
use sqlx::sqlite::SqliteRow;
use sqlx::SqliteConnection;

use super::rows::{get, get_json, get_time, json, map_err, micros};
use super::{batch, SqliteStore, BEGIN_WRITE};
use crate::store::event_log::{appended, first_copies};
use crate::store::registration::{chain_too_long, count, merged_keys, system_text, PatientUpserts};
use crate::store::{
    EncounterRow, EventRecord, PatientRow, RegistrationChange, RegistrationStore, StoreError, MAX_MERGE_HOPS,
};

/// Writes a [`PatientUpserts`] group and empties it: two statements (the
/// patients, then their identifiers), each row from a `json_each` over one
/// parameter, instead of one per patient and one per identifier — every
/// statement is a hop to the driver's worker thread.
async fn flush(group: &mut PatientUpserts<'_>, tx: &mut SqliteConnection, now: i64) -> Result<(), StoreError> {
    if group.is_empty() {
        return Ok(());
    }
    let mut patients = Vec::with_capacity(group.keys.len());
    for (key, resource) in group.keys.iter().zip(&group.resources) {
        patients.push(serde_json::json!([key, json(resource, "patient resource")?]));
    }
    // `WHERE true`: SQLite's parser needs it between INSERT … SELECT and ON CONFLICT.
    sqlx::query(
        "INSERT INTO patients (key, resource, merged_into, version, updated_at) \
         SELECT j.value ->> 0, j.value ->> 1, NULL, 1, ?2 FROM json_each(?1) AS j WHERE true ORDER BY j.key \
         ON CONFLICT (key) DO UPDATE SET resource = excluded.resource, \
         version = patients.version + 1, updated_at = excluded.updated_at",
    )
    .bind(json(&patients, "patients")?)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    if !group.identifiers.is_empty() {
        let identifiers: Vec<serde_json::Value> = group
            .identifiers
            .iter()
            .map(|(key, system, value)| serde_json::json!([system, value, key]))
            .collect();
        sqlx::query(
            "INSERT INTO patient_identifiers (system, value, patient_key) \
             SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2 FROM json_each(?1) AS j WHERE true ORDER BY j.key \
             ON CONFLICT (system, value) DO UPDATE SET patient_key = excluded.patient_key",
        )
        .bind(json(&identifiers, "patient identifiers")?)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    }
    *group = PatientUpserts::default();
    Ok(())
}

/// Applies one change inside the caller's write transaction (`now` in
/// microseconds), in order with the ones before it: a patient upsert joins
/// `upserts` (written when the group ends), any other change first writes
/// the group, then itself.
async fn apply<'a>(
    tx: &mut SqliteConnection,
    upserts: &mut PatientUpserts<'a>,
    change: &'a RegistrationChange,
    now: i64,
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
            // seq: the write lock makes MAX() + 1 safe; a replace keeps the first seq.
            sqlx::query(
                "INSERT INTO encounters (key, seq, patient_key, status, resource, created_at, updated_at) \
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM encounters), ?2, ?3, ?4, ?5, ?5) \
                 ON CONFLICT (key) DO UPDATE SET patient_key = excluded.patient_key, status = excluded.status, \
                 resource = excluded.resource, updated_at = excluded.updated_at",
            )
            .bind(key)
            .bind(patient_key)
            .bind(status)
            .bind(json(resource, "encounter resource")?)
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
                 VALUES (?1, '{}', NULL, 0, ?2) \
                 ON CONFLICT (key) DO UPDATE SET merged_into = NULL, updated_at = excluded.updated_at",
            )
            .bind(surviving)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            for key in merged_keys(surviving, merged) {
                sqlx::query(
                    "INSERT INTO patients (key, resource, merged_into, version, updated_at) \
                     VALUES (?1, '{}', ?2, 0, ?3) \
                     ON CONFLICT (key) DO UPDATE SET merged_into = excluded.merged_into, \
                     updated_at = excluded.updated_at",
                )
                .bind(key)
                .bind(surviving)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                sqlx::query("UPDATE patient_identifiers SET patient_key = ?2 WHERE patient_key = ?1")
                    .bind(key)
                    .bind(surviving)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                sqlx::query("UPDATE encounters SET patient_key = ?2, updated_at = ?3 WHERE patient_key = ?1")
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
fn patient_row(row: &SqliteRow) -> Result<PatientRow, StoreError> {
    Ok(PatientRow {
        key: get(row, "key")?,
        resource: get_json(row, "resource")?,
        merged_into: get(row, "merged_into")?,
        version: get(row, "version")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

/// An `encounters` row.
fn encounter_row(row: &SqliteRow) -> Result<EncounterRow, StoreError> {
    Ok(EncounterRow {
        key: get(row, "key")?,
        patient_key: get(row, "patient_key")?,
        status: get(row, "status")?,
        resource: get_json(row, "resource")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

/// Reads one patient on `conn`.
async fn load_patient(conn: &mut SqliteConnection, key: &str) -> Result<Option<PatientRow>, StoreError> {
    let row = sqlx::query("SELECT key, resource, merged_into, version, updated_at FROM patients WHERE key = ?1")
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
    row.as_ref().map(patient_row).transpose()
}

#[async_trait]
impl RegistrationStore for SqliteStore {
    async fn apply_registrations(
        &self,
        batch: &[(EventRecord, Vec<RegistrationChange>)],
    ) -> Result<Vec<bool>, StoreError> {
        let now = micros(Utc::now());
        // Encoded before the write lock is taken, so a bad body costs no transaction.
        let events = first_copies(batch)
            .into_iter()
            .map(|e| Ok((e, json(&e.body, "event body")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(map_err)?;
        // The log is written in full before any change; dropping `tx` on an
        // error rolls the whole batch back.
        let new = appended(batch, batch::insert_events(&mut tx, &events, now).await?);
        let mut upserts = PatientUpserts::default();
        for ((_, changes), _) in batch.iter().zip(&new).filter(|(_, new)| **new) {
            for change in changes {
                apply(&mut tx, &mut upserts, change, now).await?;
            }
        }
        flush(&mut upserts, &mut tx, now).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(new)
    }

    async fn patient(&self, key: &str) -> Result<Option<PatientRow>, StoreError> {
        let mut conn = self.reader.acquire().await.map_err(map_err)?;
        load_patient(&mut conn, key).await
    }

    async fn find_patient(&self, system: Option<&str>, value: &str) -> Result<Option<PatientRow>, StoreError> {
        // One read transaction (one WAL snapshot), so a merge committing
        // meanwhile cannot break the chain.
        let mut tx = self.reader.begin().await.map_err(map_err)?;
        let key: Option<String> =
            sqlx::query_scalar("SELECT patient_key FROM patient_identifiers WHERE system = ?1 AND value = ?2")
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
             WHERE patient_key = ?1 ORDER BY seq",
        )
        .bind(patient_key)
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(encounter_row).collect()
    }

    async fn registration_counts(&self) -> Result<(u64, u64), StoreError> {
        let (patients, encounters): (i64, i64) =
            sqlx::query_as("SELECT (SELECT COUNT(*) FROM patients), (SELECT COUNT(*) FROM encounters)")
                .fetch_one(&self.reader)
                .await
                .map_err(map_err)?;
        Ok((count(patients, "patients")?, count(encounters, "encounters")?))
    }
}
