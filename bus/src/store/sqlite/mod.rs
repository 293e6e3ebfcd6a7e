//! SQLite store: the embedded backend, one file with nothing to install.
//!
//! SQLite allows one writer at a time, so writes go through a pool of exactly
//! one connection (queued fairly in-process instead of spinning on
//! `SQLITE_BUSY`), and each write transaction starts with `BEGIN IMMEDIATE`
//! so another process (the CLI) can only make it wait, never fail mid-way.
//! Reads use their own pool: in WAL mode they run beside the writer. Opening
//! and the pragmas are in `open.rs`.

mod batch;
mod clinical;
mod fhir;
mod open;
mod registration;
mod rows;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqlitePool};
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use self::rows::{dead_letter_columns, json, map_err, message_columns, micros};
use super::messages::{fresh_and_kept, set_based};
use super::{
    AuditEntry, ClinicalStore, DeadLetter, EventRecord, FhirStore, InsertOutcome, MessageFilter, MessageSummary,
    NewMessage, RegistrationStore, StageOutcome, Store, StoreError, StoredMessage,
};

/// Starts a write transaction holding the write lock from the first statement.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// How a message is looked up.
enum Key<'a> {
    /// By id.
    Id(Uuid),
    /// By channel + control id.
    Natural(&'a str, &'a str),
}

/// Records one stage outcome inside the write transaction `tx`.
async fn record_one(tx: &mut sqlx::SqliteConnection, r: &StageOutcome, now: i64) -> Result<(), StoreError> {
    let id = r.message_id.to_string();
    let updated = sqlx::query("UPDATE messages SET status = ?2, error = ?3, updated_at = ?4 WHERE id = ?1")
        .bind(&id)
        .bind(r.status.as_str())
        .bind(&r.error)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::Invalid(format!(
            "no message {} to record stage {:?} on",
            r.message_id, r.stage
        )));
    }
    // seq numbers a message's stages in first-recorded order; the write
    // lock makes the MAX() + 1 safe.
    sqlx::query(
        "INSERT INTO message_stages (message_id, stage, seq, status, error, attempts, first_at, updated_at) \
         VALUES (?1, ?2, (SELECT COALESCE(MAX(seq) + 1, 0) FROM message_stages WHERE message_id = ?1), \
         ?3, ?4, 1, ?5, ?5) \
         ON CONFLICT (message_id, stage) DO UPDATE SET status = excluded.status, error = excluded.error, \
         attempts = message_stages.attempts + 1, updated_at = excluded.updated_at",
    )
    .bind(&id)
    .bind(&r.stage)
    .bind(r.status.as_str())
    .bind(&r.error)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Records stage outcomes in order inside `tx`: set-based when each message
/// is there once, else one by one (a message's later outcome must see its
/// earlier one).
async fn record_all(tx: &mut sqlx::SqliteConnection, records: &[StageOutcome], now: i64) -> Result<(), StoreError> {
    if records.len() > 1 && set_based(records) {
        return batch::record_stages(tx, records, now).await;
    }
    for r in records {
        record_one(tx, r, now).await?;
    }
    Ok(())
}

/// A page size from a caller's limit: 0 means 100, never more than 1000.
fn page_size(limit: u32) -> i64 {
    i64::from(if limit == 0 { 100 } else { limit.min(1000) })
}

/// The insertion of `e` into the event log; it affects no row when the id is
/// already there. Shared by [`Store::record_event`] and the registration
/// and clinical transactions.
fn insert_event(e: &EventRecord) -> Result<Query<'static, Sqlite, SqliteArguments>, StoreError> {
    let body = json(&e.body, "event body")?;
    Ok(sqlx::query(
        "INSERT INTO events (id, correlation_id, causation_id, kind, subject, patient_id, body, occurred_at, \
         recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (id) DO NOTHING",
    )
    .bind(e.id.to_string())
    .bind(e.correlation_id.to_string())
    .bind(e.causation_id.map(|c| c.to_string()))
    .bind(&e.kind)
    .bind(&e.subject)
    .bind(&e.patient_id)
    .bind(body)
    .bind(micros(e.occurred_at))
    .bind(micros(Utc::now())))
}

/// The SQLite store.
pub struct SqliteStore {
    /// The single writer connection.
    writer: SqlitePool,
    /// Readers; the writer itself for an in-memory database.
    reader: SqlitePool,
}

impl SqliteStore {
    /// Reads a message row and its stages in one read transaction (one WAL
    /// snapshot), so the overall status never disagrees with the stages.
    async fn load(&self, key: Key<'_>) -> Result<Option<StoredMessage>, StoreError> {
        let mut tx = self.reader.begin().await.map_err(map_err)?;
        let row = match key {
            Key::Id(id) => {
                sqlx::query(concat!("SELECT ", message_columns!(), " FROM messages WHERE id = ?1"))
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await
            }
            Key::Natural(channel, control_id) => {
                sqlx::query(concat!(
                    "SELECT ",
                    message_columns!(),
                    " FROM messages WHERE channel = ?1 AND control_id = ?2"
                ))
                .bind(channel)
                .bind(control_id)
                .fetch_optional(&mut *tx)
                .await
            }
        }
        .map_err(map_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut stored = rows::stored_message(&row)?;
        let stages = sqlx::query(
            "SELECT stage, status, error, attempts, updated_at FROM message_stages \
             WHERE message_id = ?1 ORDER BY seq",
        )
        .bind(stored.message.id.to_string())
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        stored.stages = stages.iter().map(rows::stage).collect::<Result<_, _>>()?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(stored))
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn concurrent_writers(&self) -> usize {
        // One writer connection: SQLite takes one write transaction at a time.
        1
    }

    async fn check(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.writer).await.map_err(map_err)?;
        sqlx::query("SELECT 1").execute(&self.reader).await.map_err(map_err)?;
        Ok(())
    }

    async fn insert_messages(&self, ms: &[NewMessage]) -> Result<Vec<InsertOutcome>, StoreError> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(map_err)?;
        let out = batch::insert_messages(&mut tx, ms).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    async fn record_stages(&self, records: &[StageOutcome]) -> Result<(), StoreError> {
        let now = micros(Utc::now());
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(map_err)?;
        record_all(&mut tx, records, now).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn record_messages(&self, ms: &[NewMessage], outcomes: &[StageOutcome]) -> Result<(), StoreError> {
        let now = micros(Utc::now());
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await.map_err(map_err)?;
        let inserted = batch::insert_messages(&mut tx, ms).await?;
        if set_based(outcomes) {
            // A message inserted now carries its outcome already: only its
            // stage row is written. One kept before is updated as well.
            let (new, old) = fresh_and_kept(ms, &inserted, outcomes);
            if !new.is_empty() {
                batch::upsert_stages(&mut tx, &new, now).await?;
            }
            if !old.is_empty() {
                batch::record_stages(&mut tx, &old, now).await?;
            }
        } else {
            record_all(&mut tx, outcomes, now).await?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn get_message(&self, id: Uuid) -> Result<Option<StoredMessage>, StoreError> {
        self.load(Key::Id(id)).await
    }

    async fn find_message(&self, channel: &str, control_id: &str) -> Result<Option<StoredMessage>, StoreError> {
        self.load(Key::Natural(channel, control_id)).await
    }

    async fn list_messages(&self, filter: &MessageFilter) -> Result<Vec<MessageSummary>, StoreError> {
        // Keyset paging on (received_at, id), the order shown, so pages never
        // overlap or skip; an unknown before_id falls back to plain id order.
        let before = filter.before_id.map(|b| b.to_string());
        let anchor = match &before {
            Some(before) => sqlx::query_scalar::<_, i64>("SELECT received_at FROM messages WHERE id = ?1")
                .bind(before)
                .fetch_optional(&self.reader)
                .await
                .map_err(map_err)?,
            None => None,
        };
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, channel, protocol, control_id, message_type, patient_id, status, error, received_at \
             FROM messages WHERE 1 = 1",
        );
        if let Some(channel) = &filter.channel {
            q.push(" AND channel = ").push_bind(channel);
        }
        if let Some(status) = filter.status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(control_id) = &filter.control_id {
            q.push(" AND control_id = ").push_bind(control_id);
        }
        if let Some(patient_id) = &filter.patient_id {
            q.push(" AND patient_id = ").push_bind(patient_id);
        }
        if let Some(since) = filter.since {
            q.push(" AND received_at >= ").push_bind(micros(since));
        }
        if let Some(until) = filter.until {
            q.push(" AND received_at < ").push_bind(micros(until));
        }
        match (anchor, before) {
            (Some(at), Some(before)) => {
                q.push(" AND (received_at < ").push_bind(at);
                q.push(" OR (received_at = ").push_bind(at);
                q.push(" AND id < ").push_bind(before).push("))");
            }
            (None, Some(before)) => {
                q.push(" AND id < ").push_bind(before);
            }
            _ => {}
        }
        q.push(" ORDER BY received_at DESC, id DESC LIMIT ")
            .push_bind(page_size(filter.limit));
        let rows = q.build().fetch_all(&self.reader).await.map_err(map_err)?;
        rows.iter().map(rows::summary).collect()
    }

    async fn record_event(&self, e: &EventRecord) -> Result<bool, StoreError> {
        let done = insert_event(e)?.execute(&self.writer).await.map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn events_for(&self, correlation_id: Uuid) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, correlation_id, causation_id, kind, subject, patient_id, body, occurred_at \
             FROM events WHERE correlation_id = ?1 ORDER BY occurred_at, id",
        )
        .bind(correlation_id.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(map_err)?;
        rows.iter().map(rows::event).collect()
    }

    async fn insert_dead_letter(&self, d: &DeadLetter) -> Result<(), StoreError> {
        let headers = json(&d.headers, "headers")?;
        sqlx::query(concat!(
            "INSERT INTO dead_letters (",
            dead_letter_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING"
        ))
        .bind(d.id.to_string())
        .bind(&d.stage)
        .bind(&d.subject)
        .bind(&d.reason)
        .bind(i64::from(d.deliveries))
        .bind(d.correlation_id.map(|c| c.to_string()))
        .bind(headers)
        .bind(d.payload.as_ref())
        .bind(micros(d.created_at))
        .bind(d.replayed_at.map(micros))
        .execute(&self.writer)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn list_dead_letters(&self, stage: Option<&str>, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = match stage {
            Some(stage) => {
                sqlx::query(concat!(
                    "SELECT ",
                    dead_letter_columns!(),
                    " FROM dead_letters WHERE stage = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2"
                ))
                .bind(stage)
                .bind(page_size(limit))
                .fetch_all(&self.reader)
                .await
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    dead_letter_columns!(),
                    " FROM dead_letters ORDER BY created_at DESC, id DESC LIMIT ?1"
                ))
                .bind(page_size(limit))
                .fetch_all(&self.reader)
                .await
            }
        }
        .map_err(map_err)?;
        rows.iter().map(rows::dead_letter).collect()
    }

    async fn mark_replayed(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE dead_letters SET replayed_at = ?2 WHERE id = ?1")
            .bind(id.to_string())
            .bind(micros(Utc::now()))
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)")
            .bind(micros(e.at))
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.target)
            .bind(&e.detail)
            .execute(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn audit_for(&self, target: &str) -> Result<Vec<AuditEntry>, StoreError> {
        let rows =
            sqlx::query("SELECT at, actor, action, target, detail FROM audit_log WHERE target = ?1 ORDER BY at, id")
                .bind(target)
                .fetch_all(&self.reader)
                .await
                .map_err(map_err)?;
        rows.iter().map(rows::audit).collect()
    }

    fn registration(&self) -> &dyn RegistrationStore {
        self
    }

    fn clinical(&self) -> &dyn ClinicalStore {
        self
    }

    fn fhir(&self) -> &dyn FhirStore {
        self
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}
