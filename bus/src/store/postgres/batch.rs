//! Batch writes as a few set-based statements (`UNNEST` of arrays) instead of
//! one statement per row: against PostgreSQL the round trips, not the rows,
//! are what a batch of hundreds of messages costs.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::rows::map_err;
use crate::store::messages::insert_outcomes;
#[cfg(doc)]
use crate::store::messages::set_based;
use crate::store::{InsertOutcome, NewMessage, StageOutcome, StoreError};

/// Inserts `ms` with one INSERT and resolves the duplicates with one SELECT.
/// Same outcomes as inserting them one by one in order: a row that conflicts
/// with an earlier one of the same batch is a duplicate of that one.
pub(super) async fn insert_messages(
    tx: &mut PgConnection,
    ms: &[NewMessage],
) -> Result<Vec<InsertOutcome>, StoreError> {
    let now = Utc::now();
    let ids: Vec<Uuid> = ms.iter().map(|m| m.id).collect();
    let channels: Vec<&str> = ms.iter().map(|m| m.channel.as_str()).collect();
    let control_ids: Vec<Option<&str>> = ms.iter().map(|m| m.control_id.as_deref()).collect();
    // WITH ORDINALITY + ORDER BY: rows are inserted in batch order, so of two
    // rows sharing a channel + control id the first one wins, as one by one.
    let inserted: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO messages (id, correlation_id, channel, protocol, control_id, message_type, patient_id, \
         peer, raw, headers, received_at, status, error, updated_at) \
         SELECT id, correlation_id, channel, protocol, control_id, message_type, patient_id, peer, raw, headers, \
         received_at, status, error, $14 \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
         $8::text[], $9::bytea[], $10::jsonb[], $11::timestamptz[], $12::text[], $13::text[]) WITH ORDINALITY \
         AS b(id, correlation_id, channel, protocol, control_id, message_type, patient_id, peer, raw, headers, \
         received_at, status, error, ord) ORDER BY ord \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(&ids)
    .bind(ms.iter().map(|m| m.correlation_id).collect::<Vec<_>>())
    .bind(&channels)
    .bind(ms.iter().map(|m| m.protocol.as_str()).collect::<Vec<_>>())
    .bind(&control_ids)
    .bind(ms.iter().map(|m| m.message_type.as_deref()).collect::<Vec<_>>())
    .bind(ms.iter().map(|m| m.patient_id.as_deref()).collect::<Vec<_>>())
    .bind(ms.iter().map(|m| m.peer.as_deref()).collect::<Vec<_>>())
    .bind(ms.iter().map(|m| m.raw.as_ref()).collect::<Vec<&[u8]>>())
    .bind(ms.iter().map(|m| Json(&m.headers)).collect::<Vec<_>>())
    .bind(ms.iter().map(|m| m.received_at).collect::<Vec<_>>())
    .bind(ms.iter().map(|m| m.status.as_str()).collect::<Vec<_>>())
    .bind(ms.iter().map(|m| m.error.as_deref()).collect::<Vec<_>>())
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    let inserted: HashSet<Uuid> = inserted.into_iter().collect();
    if inserted.len() == ms.len() {
        return Ok(vec![InsertOutcome::Inserted; ms.len()]);
    }
    // Rows are never deleted, so whatever a skipped row conflicted with is there.
    let kept: Vec<(Uuid, String, Option<String>)> = sqlx::query_as(
        "SELECT id, channel, control_id FROM messages WHERE id = ANY($1) \
         OR (channel, control_id) IN (SELECT * FROM UNNEST($2::text[], $3::text[]))",
    )
    .bind(&ids)
    .bind(&channels)
    .bind(&control_ids)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    insert_outcomes(ms, inserted, &kept)
}

/// Records stage outcomes with one UPDATE and one upsert (see
/// [`set_based`]); fails (the caller rolls back) when a message is not there.
pub(super) async fn record_stages(
    tx: &mut PgConnection,
    records: &[StageOutcome],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let ids: Vec<Uuid> = records.iter().map(|r| r.message_id).collect();
    let statuses: Vec<&str> = records.iter().map(|r| r.status.as_str()).collect();
    let errors: Vec<Option<&str>> = records.iter().map(|r| r.error.as_deref()).collect();
    // Updating the messages first locks their rows, as one by one does.
    let updated: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE messages m SET status = b.status, error = b.error, updated_at = $4 \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS b(id, status, error) \
         WHERE m.id = b.id RETURNING m.id",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&errors)
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(map_err)?;
    if updated.len() != records.len() {
        let found: HashSet<Uuid> = updated.into_iter().collect();
        if let Some(r) = records.iter().find(|r| !found.contains(&r.message_id)) {
            return Err(StoreError::Invalid(format!(
                "no message {} to record stage {:?} on",
                r.message_id, r.stage
            )));
        }
    }
    upsert_stages(tx, records, now).await
}

/// The stage rows of `records` (attempts += 1 on a row already there),
/// without touching the messages: for messages inserted with their outcome.
pub(super) async fn upsert_stages(
    tx: &mut PgConnection,
    records: &[StageOutcome],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let ids: Vec<Uuid> = records.iter().map(|r| r.message_id).collect();
    let stages: Vec<&str> = records.iter().map(|r| r.stage.as_str()).collect();
    let statuses: Vec<&str> = records.iter().map(|r| r.status.as_str()).collect();
    let errors: Vec<Option<&str>> = records.iter().map(|r| r.error.as_deref()).collect();
    sqlx::query(
        "INSERT INTO message_stages (message_id, stage, status, error, attempts, first_at, updated_at) \
         SELECT id, stage, status, error, 1, $5, $5 \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[]) AS b(id, stage, status, error) \
         ON CONFLICT (message_id, stage) DO UPDATE SET status = EXCLUDED.status, error = EXCLUDED.error, \
         attempts = message_stages.attempts + 1, updated_at = EXCLUDED.updated_at",
    )
    .bind(&ids)
    .bind(&stages)
    .bind(&statuses)
    .bind(&errors)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    Ok(())
}
