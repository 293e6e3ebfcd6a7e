//! Batch writes on SQLite as multi-row statements instead of one statement
//! per row: every sqlx SQLite statement is a hop to the driver's worker
//! thread (two thread wake-ups), and those hops, not the rows, are what a
//! router's batch of messages or a service's batch of events costs.

use std::collections::HashSet;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::rows::{json, map_err, micros};
use crate::store::messages::insert_outcomes;
use crate::store::{EventRecord, InsertOutcome, NewMessage, StageOutcome, StoreError};

/// Rows per statement: at most 14 parameters a row keeps a statement far
/// below SQLite's limit of 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

/// A stored id (TEXT) as a UUID.
fn uuid(id: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(id).map_err(|e| StoreError::Database(format!("stored id {id:?} is not a UUID: {e}")))
}

/// The ids a statement returned.
fn uuids(ids: Vec<String>) -> Result<HashSet<Uuid>, StoreError> {
    ids.iter().map(|id| uuid(id)).collect()
}

/// Inserts `ms` with one multi-row INSERT per [`ROWS_PER_STATEMENT`], then
/// finds what the skipped ones conflicted with in one SELECT. The same
/// outcomes as inserting them one by one (rows go in in order, so of two
/// sharing a channel + control id the first wins).
pub(super) async fn insert_messages(
    tx: &mut SqliteConnection,
    ms: &[NewMessage],
) -> Result<Vec<InsertOutcome>, StoreError> {
    let now = micros(chrono::Utc::now());
    let headers = ms
        .iter()
        .map(|m| json(&m.headers, "headers"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut inserted = HashSet::with_capacity(ms.len());
    for (chunk, headers) in ms.chunks(ROWS_PER_STATEMENT).zip(headers.chunks(ROWS_PER_STATEMENT)) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO messages (id, correlation_id, channel, protocol, control_id, message_type, patient_id, \
             peer, raw, headers, received_at, status, error, updated_at) ",
        );
        q.push_values(chunk.iter().zip(headers), |mut row, (m, headers)| {
            row.push_bind(m.id.to_string())
                .push_bind(m.correlation_id.to_string())
                .push_bind(m.channel.as_str())
                .push_bind(m.protocol.as_str())
                .push_bind(m.control_id.as_deref())
                .push_bind(m.message_type.as_deref())
                .push_bind(m.patient_id.as_deref())
                .push_bind(m.peer.as_deref())
                .push_bind(m.raw.as_ref())
                .push_bind(headers.as_str())
                .push_bind(micros(m.received_at))
                .push_bind(m.status.as_str())
                .push_bind(m.error.as_deref())
                .push_bind(now);
        });
        // No conflict target: the primary key and the partial unique index
        // on (channel, control_id) both make a duplicate.
        q.push(" ON CONFLICT DO NOTHING RETURNING id");
        let ids: Vec<String> = q.build_query_scalar().fetch_all(&mut *tx).await.map_err(map_err)?;
        inserted.extend(uuids(ids)?);
    }
    if inserted.len() == ms.len() {
        return Ok(vec![InsertOutcome::Inserted; ms.len()]);
    }
    // Still inside the write lock: whatever a skipped row conflicted with is there.
    let mut q = QueryBuilder::<Sqlite>::new("SELECT id, channel, control_id FROM messages WHERE id IN (");
    q.push_values(ms, |mut row, m| {
        row.push_bind(m.id.to_string());
    });
    q.push(") OR (channel, control_id) IN (");
    q.push_values(ms, |mut row, m| {
        row.push_bind(m.channel.as_str()).push_bind(m.control_id.as_deref());
    });
    q.push(")");
    let rows: Vec<(String, String, Option<String>)> = q.build_query_as().fetch_all(&mut *tx).await.map_err(map_err)?;
    let kept = rows
        .into_iter()
        .map(|(id, channel, control_id)| Ok((uuid(&id)?, channel, control_id)))
        .collect::<Result<Vec<_>, _>>()?;
    insert_outcomes(ms, inserted, &kept)
}

/// Records stage outcomes with one UPDATE of the messages and one upsert of
/// the stages (each message at most once: see
/// [`set_based`](crate::store::messages::set_based)); fails, and the caller
/// rolls back, when a message is not there.
pub(super) async fn record_stages(
    tx: &mut SqliteConnection,
    records: &[StageOutcome],
    now: i64,
) -> Result<(), StoreError> {
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        // VALUES columns are column1, column2, … in SQLite.
        let mut q =
            QueryBuilder::<Sqlite>::new("UPDATE messages SET status = b.column2, error = b.column3, updated_at = ");
        q.push_bind(now).push(" FROM (");
        q.push_values(chunk, |mut row, r| {
            row.push_bind(r.message_id.to_string())
                .push_bind(r.status.as_str())
                .push_bind(r.error.as_deref());
        });
        q.push(") AS b WHERE messages.id = b.column1 RETURNING messages.id");
        let updated: Vec<String> = q.build_query_scalar().fetch_all(&mut *tx).await.map_err(map_err)?;
        if updated.len() != chunk.len() {
            let found = uuids(updated)?;
            if let Some(r) = chunk.iter().find(|r| !found.contains(&r.message_id)) {
                return Err(StoreError::Invalid(format!(
                    "no message {} to record stage {:?} on",
                    r.message_id, r.stage
                )));
            }
        }
    }
    upsert_stages(tx, records, now).await
}

/// The stage rows of `records` (attempts += 1 on a row already there),
/// without touching the messages: for messages inserted with their outcome.
/// Each message at most once, so each row's `seq` subquery sees only rows
/// from before the statement.
pub(super) async fn upsert_stages(
    tx: &mut SqliteConnection,
    records: &[StageOutcome],
    now: i64,
) -> Result<(), StoreError> {
    for chunk in records.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO message_stages (message_id, stage, seq, status, error, attempts, first_at, updated_at) ",
        );
        q.push_values(chunk, |mut row, r| {
            let id = r.message_id.to_string();
            row.push_bind(id.clone())
                .push_bind(r.stage.as_str())
                // seq numbers a message's stages in first-recorded order; the
                // write lock makes the MAX() + 1 safe.
                .push("(SELECT COALESCE(MAX(seq) + 1, 0) FROM message_stages WHERE message_id = ")
                .push_bind_unseparated(id)
                .push_unseparated(")")
                .push_bind(r.status.as_str())
                .push_bind(r.error.as_deref())
                .push("1")
                .push_bind(now)
                .push_bind(now);
        });
        q.push(
            " ON CONFLICT (message_id, stage) DO UPDATE SET status = excluded.status, error = excluded.error, \
             attempts = message_stages.attempts + 1, updated_at = excluded.updated_at",
        );
        q.build().execute(&mut *tx).await.map_err(map_err)?;
    }
    Ok(())
}

/// Appends `events` (each id once; bodies already encoded, in the same
/// order) to the event log with one multi-row INSERT per
/// [`ROWS_PER_STATEMENT`]; the ids it appended (not already in the log).
pub(super) async fn insert_events(
    tx: &mut SqliteConnection,
    events: &[(&EventRecord, String)],
    now: i64,
) -> Result<HashSet<Uuid>, StoreError> {
    let mut appended = HashSet::with_capacity(events.len());
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (id, correlation_id, causation_id, kind, subject, patient_id, body, occurred_at, \
             recorded_at) ",
        );
        q.push_values(chunk, |mut row, (e, body)| {
            row.push_bind(e.id.to_string())
                .push_bind(e.correlation_id.to_string())
                .push_bind(e.causation_id.map(|c| c.to_string()))
                .push_bind(e.kind.as_str())
                .push_bind(e.subject.as_str())
                .push_bind(e.patient_id.as_deref())
                .push_bind(body.as_str())
                .push_bind(micros(e.occurred_at))
                .push_bind(now);
        });
        q.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
        let ids: Vec<String> = q.build_query_scalar().fetch_all(&mut *tx).await.map_err(map_err)?;
        appended.extend(uuids(ids)?);
    }
    Ok(appended)
}

/// Records (service, event id) for every one of `events` (each once) with one
/// multi-row INSERT per [`ROWS_PER_STATEMENT`]; the ids not there before.
pub(super) async fn mark_applied_all(
    tx: &mut SqliteConnection,
    service: &str,
    events: &[&EventRecord],
    now: i64,
) -> Result<HashSet<Uuid>, StoreError> {
    let mut new = HashSet::with_capacity(events.len());
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO service_applied (service, event_id, applied_at) ");
        q.push_values(chunk, |mut row, e| {
            row.push_bind(service).push_bind(e.id.to_string()).push_bind(now);
        });
        q.push(" ON CONFLICT (service, event_id) DO NOTHING RETURNING event_id");
        let ids: Vec<String> = q.build_query_scalar().fetch_all(&mut *tx).await.map_err(map_err)?;
        new.extend(uuids(ids)?);
    }
    Ok(new)
}
