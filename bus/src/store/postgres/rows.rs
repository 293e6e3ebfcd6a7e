//! PostgreSQL rows to store types, and sqlx errors to [`StoreError`].

use bytes::Bytes;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::Row;

use crate::backbone::Headers;
use crate::store::{
    AuditEntry, DeadLetter, EventRecord, MessageStatus, MessageSummary, NewMessage, StageRecord, StoreError,
    StoredMessage,
};

/// Columns of `messages` in the order [`stored_message`] reads them.
macro_rules! message_columns {
    () => {
        "id, correlation_id, channel, protocol, control_id, message_type, patient_id, peer, raw, headers, \
         received_at, status, error, updated_at"
    };
}
pub(super) use message_columns;

/// Columns of `dead_letters` in the order [`dead_letter`] reads them.
macro_rules! dead_letter_columns {
    () => {
        "id, stage, subject, reason, deliveries, correlation_id, headers, payload, created_at, replayed_at"
    };
}
pub(super) use dead_letter_columns;

/// Sorts a sqlx error by what the caller should do next.
pub(super) fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut => StoreError::Unavailable("timed out waiting for a PostgreSQL connection".into()),
        sqlx::Error::PoolClosed => StoreError::Unavailable("the PostgreSQL pool is closed".into()),
        sqlx::Error::Io(e) => StoreError::Unavailable(format!("PostgreSQL i/o: {e}")),
        sqlx::Error::Tls(e) => StoreError::Unavailable(format!("PostgreSQL TLS: {e}")),
        sqlx::Error::WorkerCrashed => StoreError::Unavailable("PostgreSQL connection worker crashed".into()),
        sqlx::Error::Configuration(e) => StoreError::Invalid(format!("PostgreSQL configuration: {e}")),
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let text = format!("PostgreSQL {code}: {}", db.message());
            match code.get(..2) {
                // Connection exceptions, lock/serialization conflicts, shutdown
                // and exhausted resources all pass: retry later.
                Some("08") | Some("40") | Some("53") | Some("57") => StoreError::Unavailable(text),
                Some("55") if code == "55P03" => StoreError::Unavailable(text),
                // Integrity violations (unique, check, not null, foreign key) and
                // bad data (e.g. a NUL byte in text) will fail again the same way.
                Some("23") | Some("22") => StoreError::Invalid(text),
                // Bad credentials or no such database: fix the configuration.
                Some("28") | Some("3D") => StoreError::Invalid(text),
                _ => StoreError::Database(text),
            }
        }
        other => StoreError::Database(other.to_string()),
    }
}

/// Parses a stored status; anything else means the row was written by something else.
pub(super) fn status(s: &str) -> Result<MessageStatus, StoreError> {
    MessageStatus::parse(s).ok_or_else(|| StoreError::Database(format!("unknown message status {s:?} in the store")))
}

/// A stored non-negative count as u32.
fn count(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Database(format!("{what} out of range in the store: {v}")))
}

/// A `messages` row (selected with [`message_columns`]) without its stages.
///
/// The table keeps one status and error, so `message.status` and
/// `message.error` mirror the current overall values.
pub(super) fn stored_message(row: &PgRow) -> Result<StoredMessage, StoreError> {
    let status = status(row.try_get::<&str, _>("status").map_err(map_err)?)?;
    let error: Option<String> = row.try_get("error").map_err(map_err)?;
    let message = NewMessage {
        id: row.try_get("id").map_err(map_err)?,
        correlation_id: row.try_get("correlation_id").map_err(map_err)?,
        channel: row.try_get("channel").map_err(map_err)?,
        protocol: row.try_get("protocol").map_err(map_err)?,
        control_id: row.try_get("control_id").map_err(map_err)?,
        message_type: row.try_get("message_type").map_err(map_err)?,
        patient_id: row.try_get("patient_id").map_err(map_err)?,
        peer: row.try_get("peer").map_err(map_err)?,
        raw: Bytes::from(row.try_get::<Vec<u8>, _>("raw").map_err(map_err)?),
        headers: row.try_get::<Json<Headers>, _>("headers").map_err(map_err)?.0,
        received_at: row.try_get("received_at").map_err(map_err)?,
        status,
        error: error.clone(),
    };
    Ok(StoredMessage {
        message,
        status,
        error,
        updated_at: row.try_get("updated_at").map_err(map_err)?,
        stages: Vec::new(),
    })
}

/// A `message_stages` row (stage, status, error, attempts, updated_at).
pub(super) fn stage(row: &PgRow) -> Result<StageRecord, StoreError> {
    Ok(StageRecord {
        stage: row.try_get("stage").map_err(map_err)?,
        status: status(row.try_get::<&str, _>("status").map_err(map_err)?)?,
        error: row.try_get("error").map_err(map_err)?,
        attempts: count(row.try_get("attempts").map_err(map_err)?, "attempts")?,
        updated_at: row.try_get("updated_at").map_err(map_err)?,
    })
}

/// A message browser line.
pub(super) fn summary(row: &PgRow) -> Result<MessageSummary, StoreError> {
    Ok(MessageSummary {
        id: row.try_get("id").map_err(map_err)?,
        channel: row.try_get("channel").map_err(map_err)?,
        protocol: row.try_get("protocol").map_err(map_err)?,
        control_id: row.try_get("control_id").map_err(map_err)?,
        message_type: row.try_get("message_type").map_err(map_err)?,
        patient_id: row.try_get("patient_id").map_err(map_err)?,
        status: status(row.try_get::<&str, _>("status").map_err(map_err)?)?,
        error: row.try_get("error").map_err(map_err)?,
        received_at: row.try_get("received_at").map_err(map_err)?,
    })
}

/// An `events` row.
pub(super) fn event(row: &PgRow) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        id: row.try_get("id").map_err(map_err)?,
        correlation_id: row.try_get("correlation_id").map_err(map_err)?,
        causation_id: row.try_get("causation_id").map_err(map_err)?,
        kind: row.try_get("kind").map_err(map_err)?,
        subject: row.try_get("subject").map_err(map_err)?,
        patient_id: row.try_get("patient_id").map_err(map_err)?,
        body: row.try_get::<Json<serde_json::Value>, _>("body").map_err(map_err)?.0,
        occurred_at: row.try_get("occurred_at").map_err(map_err)?,
    })
}

/// A `dead_letters` row (selected with [`dead_letter_columns`]).
pub(super) fn dead_letter(row: &PgRow) -> Result<DeadLetter, StoreError> {
    Ok(DeadLetter {
        id: row.try_get("id").map_err(map_err)?,
        stage: row.try_get("stage").map_err(map_err)?,
        subject: row.try_get("subject").map_err(map_err)?,
        reason: row.try_get("reason").map_err(map_err)?,
        deliveries: count(row.try_get("deliveries").map_err(map_err)?, "deliveries")?,
        correlation_id: row.try_get("correlation_id").map_err(map_err)?,
        headers: row.try_get::<Json<Headers>, _>("headers").map_err(map_err)?.0,
        payload: Bytes::from(row.try_get::<Vec<u8>, _>("payload").map_err(map_err)?),
        created_at: row.try_get("created_at").map_err(map_err)?,
        replayed_at: row.try_get("replayed_at").map_err(map_err)?,
    })
}

/// An `audit_log` row.
pub(super) fn audit(row: &PgRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        at: row.try_get("at").map_err(map_err)?,
        actor: row.try_get("actor").map_err(map_err)?,
        action: row.try_get("action").map_err(map_err)?,
        target: row.try_get("target").map_err(map_err)?,
        detail: row.try_get("detail").map_err(map_err)?,
    })
}
