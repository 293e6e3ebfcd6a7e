//! SQLite rows to store types and back (TEXT uuids, INTEGER microseconds,
//! JSON text), and sqlx errors to [`StoreError`].

use bytes::Bytes;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use uuid::Uuid;

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

/// Primary SQLite result codes that mean "try again later".
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_NOMEM: i32 = 7;
const SQLITE_IOERR: i32 = 10;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;
/// Primary codes that mean the request itself is at fault.
const SQLITE_TOOBIG: i32 = 18;
const SQLITE_CONSTRAINT: i32 = 19;
const SQLITE_MISMATCH: i32 = 20;

/// Sorts a sqlx error by what the caller should do next.
pub(super) fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut => StoreError::Unavailable("timed out waiting for a SQLite connection".into()),
        sqlx::Error::PoolClosed => StoreError::Unavailable("the SQLite pool is closed".into()),
        sqlx::Error::Io(e) => StoreError::Unavailable(format!("SQLite i/o: {e}")),
        sqlx::Error::WorkerCrashed => StoreError::Unavailable("SQLite connection worker crashed".into()),
        sqlx::Error::Configuration(e) => StoreError::Invalid(format!("SQLite configuration: {e}")),
        sqlx::Error::Database(db) => {
            // sqlx reports the extended result code; its low byte is the primary code.
            let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(-1);
            let text = format!("SQLite {code}: {}", db.message());
            match code & 0xff {
                SQLITE_BUSY | SQLITE_LOCKED | SQLITE_NOMEM | SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN => {
                    StoreError::Unavailable(text)
                }
                SQLITE_TOOBIG | SQLITE_CONSTRAINT | SQLITE_MISMATCH => StoreError::Invalid(text),
                _ => StoreError::Database(text),
            }
        }
        other => StoreError::Database(other.to_string()),
    }
}

/// A time as stored: microseconds since the Unix epoch (sub-microsecond digits are dropped).
pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// JSON text of a value we serialise ourselves.
pub(super) fn json<T: serde::Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("{what} cannot be stored as JSON: {e}")))
}

fn time(v: i64, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| StoreError::Database(format!("{what} out of range: {v}")))
}

fn uuid(s: &str, what: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Database(format!("{what} is not a UUID ({s:?}): {e}")))
}

fn status(s: &str) -> Result<MessageStatus, StoreError> {
    MessageStatus::parse(s).ok_or_else(|| StoreError::Database(format!("unknown message status {s:?} in the store")))
}

fn count(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Database(format!("{what} out of range in the store: {v}")))
}

/// A column, decoded.
pub(super) fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column).map_err(map_err)
}

fn get_uuid(row: &SqliteRow, column: &str) -> Result<Uuid, StoreError> {
    uuid(get::<&str>(row, column)?, column)
}

fn get_opt_uuid(row: &SqliteRow, column: &str) -> Result<Option<Uuid>, StoreError> {
    get::<Option<&str>>(row, column)?.map(|s| uuid(s, column)).transpose()
}

/// A time column (INTEGER microseconds).
pub(super) fn get_time(row: &SqliteRow, column: &str) -> Result<DateTime<Utc>, StoreError> {
    time(get(row, column)?, column)
}

/// A JSON text column, parsed.
pub(super) fn get_json<T: serde::de::DeserializeOwned>(row: &SqliteRow, column: &str) -> Result<T, StoreError> {
    let text: &str = get(row, column)?;
    serde_json::from_str(text).map_err(|e| StoreError::Database(format!("{column} is not valid JSON: {e}")))
}

/// A `messages` row (selected with [`message_columns`]) without its stages.
///
/// The table keeps one status and error, so `message.status` and
/// `message.error` mirror the current overall values.
pub(super) fn stored_message(row: &SqliteRow) -> Result<StoredMessage, StoreError> {
    let status = status(get(row, "status")?)?;
    let error: Option<String> = get(row, "error")?;
    let message = NewMessage {
        id: get_uuid(row, "id")?,
        correlation_id: get_uuid(row, "correlation_id")?,
        channel: get(row, "channel")?,
        protocol: get(row, "protocol")?,
        control_id: get(row, "control_id")?,
        message_type: get(row, "message_type")?,
        patient_id: get(row, "patient_id")?,
        peer: get(row, "peer")?,
        raw: Bytes::from(get::<Vec<u8>>(row, "raw")?),
        headers: get_json::<Headers>(row, "headers")?,
        received_at: get_time(row, "received_at")?,
        status,
        error: error.clone(),
    };
    Ok(StoredMessage {
        message,
        status,
        error,
        updated_at: get_time(row, "updated_at")?,
        stages: Vec::new(),
    })
}

/// A `message_stages` row (stage, status, error, attempts, updated_at).
pub(super) fn stage(row: &SqliteRow) -> Result<StageRecord, StoreError> {
    Ok(StageRecord {
        stage: get(row, "stage")?,
        status: status(get(row, "status")?)?,
        error: get(row, "error")?,
        attempts: count(get(row, "attempts")?, "attempts")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

/// A message browser line.
pub(super) fn summary(row: &SqliteRow) -> Result<MessageSummary, StoreError> {
    Ok(MessageSummary {
        id: get_uuid(row, "id")?,
        channel: get(row, "channel")?,
        protocol: get(row, "protocol")?,
        control_id: get(row, "control_id")?,
        message_type: get(row, "message_type")?,
        patient_id: get(row, "patient_id")?,
        status: status(get(row, "status")?)?,
        error: get(row, "error")?,
        received_at: get_time(row, "received_at")?,
    })
}

/// An `events` row.
pub(super) fn event(row: &SqliteRow) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        id: get_uuid(row, "id")?,
        correlation_id: get_uuid(row, "correlation_id")?,
        causation_id: get_opt_uuid(row, "causation_id")?,
        kind: get(row, "kind")?,
        subject: get(row, "subject")?,
        patient_id: get(row, "patient_id")?,
        body: get_json(row, "body")?,
        occurred_at: get_time(row, "occurred_at")?,
    })
}

/// A `dead_letters` row (selected with [`dead_letter_columns`]).
pub(super) fn dead_letter(row: &SqliteRow) -> Result<DeadLetter, StoreError> {
    Ok(DeadLetter {
        id: get_uuid(row, "id")?,
        stage: get(row, "stage")?,
        subject: get(row, "subject")?,
        reason: get(row, "reason")?,
        deliveries: count(get(row, "deliveries")?, "deliveries")?,
        correlation_id: get_opt_uuid(row, "correlation_id")?,
        headers: get_json(row, "headers")?,
        payload: Bytes::from(get::<Vec<u8>>(row, "payload")?),
        created_at: get_time(row, "created_at")?,
        replayed_at: get::<Option<i64>>(row, "replayed_at")?
            .map(|v| time(v, "replayed_at"))
            .transpose()?,
    })
}

/// An `audit_log` row.
pub(super) fn audit(row: &SqliteRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        at: get_time(row, "at")?,
        actor: get(row, "actor")?,
        action: get(row, "action")?,
        target: get(row, "target")?,
        detail: get(row, "detail")?,
    })
}
