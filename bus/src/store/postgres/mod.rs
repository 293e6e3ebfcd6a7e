//! PostgreSQL store: the production backend.
//!
//! Native types throughout (uuid, timestamptz, bytea, jsonb). Duplicates are
//! found by the database itself (`ON CONFLICT DO NOTHING` against the primary
//! key and the partial unique index on channel + control id), so concurrent
//! inserts from several medbus processes race correctly.

mod batch;
mod clinical;
mod fhir;
mod registration;
mod rows;

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::postgres::{PgArguments, PgPool, PgPoolOptions};
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use self::rows::{dead_letter_columns, map_err, message_columns};
use super::messages::{fresh_and_kept, set_based};
use super::{
    AuditEntry, ClinicalStore, DeadLetter, EventRecord, FhirStore, InsertOutcome, MessageFilter, MessageSummary,
    NewMessage, RegistrationStore, StageOutcome, Store, StoreError, StoredMessage,
};
use crate::config::{redact_url, StoreConfig};

/// How a message is looked up.
enum Key<'a> {
    /// By id.
    Id(Uuid),
    /// By channel + control id.
    Natural(&'a str, &'a str),
}

/// Inserts `m` inside `tx`. No conflict target: both the primary key and the
/// partial unique index on (channel, control_id) make a duplicate. A racing
/// insert of the same key blocks here until the other commits, then counts as
/// a conflict.
async fn insert_one(tx: &mut sqlx::PgConnection, m: &NewMessage) -> Result<InsertOutcome, StoreError> {
    let done = sqlx::query(
        "INSERT INTO messages (id, correlation_id, channel, protocol, control_id, message_type, patient_id, \
         peer, raw, headers, received_at, status, error, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING",
    )
    .bind(m.id)
    .bind(m.correlation_id)
    .bind(&m.channel)
    .bind(&m.protocol)
    .bind(&m.control_id)
    .bind(&m.message_type)
    .bind(&m.patient_id)
    .bind(&m.peer)
    .bind(m.raw.as_ref())
    .bind(Json(&m.headers))
    .bind(m.received_at)
    .bind(m.status.as_str())
    .bind(&m.error)
    .bind(Utc::now())
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    if done.rows_affected() == 1 {
        return Ok(InsertOutcome::Inserted);
    }
    // Rows are never deleted, so the conflicting one is still there; an id
    // match is reported before a channel + control id match.
    let existing: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM messages WHERE id = $1 OR (channel = $2 AND control_id = $3) \
         ORDER BY (id = $1) DESC LIMIT 1",
    )
    .bind(m.id)
    .bind(&m.channel)
    .bind(&m.control_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(map_err)?;
    match existing {
        Some(existing) => Ok(InsertOutcome::Duplicate { existing }),
        None => Err(StoreError::Database(format!(
            "message {} conflicted on insert but no conflicting row was found",
            m.id
        ))),
    }
}

/// Records one stage outcome inside `tx`. Updating the message first locks its
/// row, so concurrent records of one message apply one after the other.
async fn record_one(
    tx: &mut sqlx::PgConnection,
    r: &StageOutcome,
    now: chrono::DateTime<Utc>,
) -> Result<(), StoreError> {
    let updated = sqlx::query("UPDATE messages SET status = $2, error = $3, updated_at = $4 WHERE id = $1")
        .bind(r.message_id)
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
    sqlx::query(
        "INSERT INTO message_stages (message_id, stage, status, error, attempts, first_at, updated_at) \
         VALUES ($1, $2, $3, $4, 1, $5, $5) \
         ON CONFLICT (message_id, stage) DO UPDATE SET status = EXCLUDED.status, error = EXCLUDED.error, \
         attempts = message_stages.attempts + 1, updated_at = EXCLUDED.updated_at",
    )
    .bind(r.message_id)
    .bind(&r.stage)
    .bind(r.status.as_str())
    .bind(&r.error)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// A page size from a caller's limit: 0 means 100, never more than 1000.
fn page_size(limit: u32) -> i64 {
    i64::from(if limit == 0 { 100 } else { limit.min(1000) })
}

/// Appends `firsts` (each id once, in id order: see
/// [`first_copies`](crate::store::event_log::first_copies)) to the event log
/// in one statement instead of one per event; the ids it appended (not in
/// the log before).
async fn insert_events(
    tx: &mut sqlx::PgConnection,
    firsts: &[&EventRecord],
    now: chrono::DateTime<Utc>,
) -> Result<HashSet<Uuid>, StoreError> {
    let inserted: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO events (id, correlation_id, causation_id, kind, subject, patient_id, body, occurred_at, \
         recorded_at) \
         SELECT e.*, $9 FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], \
         $7::jsonb[], $8::timestamptz[]) AS e \
         ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    .bind(firsts.iter().map(|e| e.id).collect::<Vec<_>>())
    .bind(firsts.iter().map(|e| e.correlation_id).collect::<Vec<_>>())
    .bind(firsts.iter().map(|e| e.causation_id).collect::<Vec<_>>())
    .bind(firsts.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
    .bind(firsts.iter().map(|e| e.subject.as_str()).collect::<Vec<_>>())
    .bind(firsts.iter().map(|e| e.patient_id.as_deref()).collect::<Vec<_>>())
    .bind(firsts.iter().map(|e| Json(&e.body)).collect::<Vec<_>>())
    .bind(firsts.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(inserted.into_iter().collect())
}

/// The insertion of `e` into the event log; it affects no row when the id is
/// already there. Shared by [`Store::record_event`] and the registration
/// and clinical transactions.
fn insert_event(e: &EventRecord) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(
        "INSERT INTO events (id, correlation_id, causation_id, kind, subject, patient_id, body, occurred_at, \
         recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
    )
    .bind(e.id)
    .bind(e.correlation_id)
    .bind(e.causation_id)
    .bind(&e.kind)
    .bind(&e.subject)
    .bind(&e.patient_id)
    .bind(Json(&e.body))
    .bind(e.occurred_at)
    .bind(Utc::now())
}

/// The PostgreSQL store: one pool shared by every caller.
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects a pool of up to `cfg.max_connections` (waiting at most
    /// `cfg.connect_timeout` for a connection) and runs the migrations.
    pub async fn connect(url: &str, cfg: &StoreConfig) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections.max(1))
            .acquire_timeout(cfg.connect_timeout)
            .connect(url)
            .await
            .map_err(|e| match map_err(e) {
                StoreError::Unavailable(m) => StoreError::Unavailable(format!("{}: {m}", redact_url(url))),
                StoreError::Invalid(m) => StoreError::Invalid(format!("{}: {m}", redact_url(url))),
                other => other,
            })?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(PostgresStore { pool })
    }

    /// Reads a message row and its stages in one snapshot, so the overall
    /// status never disagrees with the stages shown beside it.
    async fn load(&self, key: Key<'_>) -> Result<Option<StoredMessage>, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(map_err)?;
        let row = match key {
            Key::Id(id) => {
                sqlx::query(concat!("SELECT ", message_columns!(), " FROM messages WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
            }
            Key::Natural(channel, control_id) => {
                sqlx::query(concat!(
                    "SELECT ",
                    message_columns!(),
                    " FROM messages WHERE channel = $1 AND control_id = $2"
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
             WHERE message_id = $1 ORDER BY seq",
        )
        .bind(stored.message.id)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        stored.stages = stages.iter().map(rows::stage).collect::<Result<_, _>>()?;
        tx.commit().await.map_err(map_err)?;
        Ok(Some(stored))
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn concurrent_writers(&self) -> usize {
        self.pool.options().get_max_connections() as usize
    }

    async fn check(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }

    async fn insert_messages(&self, ms: &[NewMessage]) -> Result<Vec<InsertOutcome>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let out = match ms {
            [] => Vec::new(),
            [m] => vec![insert_one(&mut tx, m).await?],
            _ => batch::insert_messages(&mut tx, ms).await?,
        };
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    async fn record_stages(&self, records: &[StageOutcome]) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if records.len() > 1 && set_based(records) {
            batch::record_stages(&mut tx, records, now).await?;
        } else {
            for r in records {
                record_one(&mut tx, r, now).await?;
            }
        }
        tx.commit().await.map_err(map_err)
    }

    async fn record_messages(&self, ms: &[NewMessage], outcomes: &[StageOutcome]) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let inserted = match ms {
            [] => Vec::new(),
            [m] => vec![insert_one(&mut tx, m).await?],
            _ => batch::insert_messages(&mut tx, ms).await?,
        };
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
            for r in outcomes {
                record_one(&mut tx, r, now).await?;
            }
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
        let anchor = match filter.before_id {
            Some(before) => {
                sqlx::query_scalar::<_, chrono::DateTime<Utc>>("SELECT received_at FROM messages WHERE id = $1")
                    .bind(before)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?
                    .map(|at| (before, at))
            }
            None => None,
        };
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT id, channel, protocol, control_id, message_type, patient_id, status, error, received_at \
             FROM messages WHERE TRUE",
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
            q.push(" AND received_at >= ").push_bind(since);
        }
        if let Some(until) = filter.until {
            q.push(" AND received_at < ").push_bind(until);
        }
        match (anchor, filter.before_id) {
            (Some((before, at)), _) => {
                q.push(" AND (received_at < ").push_bind(at);
                q.push(" OR (received_at = ").push_bind(at);
                q.push(" AND id < ").push_bind(before).push("))");
            }
            (None, Some(before)) => {
                q.push(" AND id < ").push_bind(before);
            }
            (None, None) => {}
        }
        q.push(" ORDER BY received_at DESC, id DESC LIMIT ")
            .push_bind(page_size(filter.limit));
        let rows = q.build().fetch_all(&self.pool).await.map_err(map_err)?;
        rows.iter().map(rows::summary).collect()
    }

    async fn record_event(&self, e: &EventRecord) -> Result<bool, StoreError> {
        let done = insert_event(e).execute(&self.pool).await.map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn events_for(&self, correlation_id: Uuid) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, correlation_id, causation_id, kind, subject, patient_id, body, occurred_at \
             FROM events WHERE correlation_id = $1 ORDER BY occurred_at, id",
        )
        .bind(correlation_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(rows::event).collect()
    }

    async fn insert_dead_letter(&self, d: &DeadLetter) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO dead_letters (",
            dead_letter_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING"
        ))
        .bind(d.id)
        .bind(&d.stage)
        .bind(&d.subject)
        .bind(&d.reason)
        .bind(i64::from(d.deliveries))
        .bind(d.correlation_id)
        .bind(Json(&d.headers))
        .bind(d.payload.as_ref())
        .bind(d.created_at)
        .bind(d.replayed_at)
        .execute(&self.pool)
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
                    " FROM dead_letters WHERE stage = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
                ))
                .bind(stage)
                .bind(page_size(limit))
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    dead_letter_columns!(),
                    " FROM dead_letters ORDER BY created_at DESC, id DESC LIMIT $1"
                ))
                .bind(page_size(limit))
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(map_err)?;
        rows.iter().map(rows::dead_letter).collect()
    }

    async fn mark_replayed(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE dead_letters SET replayed_at = $2 WHERE id = $1")
            .bind(id)
            .bind(Utc::now())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(e.at)
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.target)
            .bind(&e.detail)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn audit_for(&self, target: &str) -> Result<Vec<AuditEntry>, StoreError> {
        let rows =
            sqlx::query("SELECT at, actor, action, target, detail FROM audit_log WHERE target = $1 ORDER BY at, id")
                .bind(target)
                .fetch_all(&self.pool)
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
        self.pool.close().await;
    }
}
