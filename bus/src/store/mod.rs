//! The store: messages (raw bytes, status per stage, errors, attempts),
//! canonical events, dead letters, the audit log, registration data
//! (patients, identifiers, encounters; see [`registration`]) and clinical
//! resources with their outbox (see [`clinical`]) and the resources FHIR
//! clients write (see [`fhir`]).
//!
//! Two implementations behind one trait, chosen by `store.url`:
//! [`postgres`] for production and [`sqlite`] for the embedded default. Each
//! has its own migrations (`bus/migrations/<backend>`) embedded at compile
//! time, so building needs no database. One conformance suite
//! (`bus/tests/store_conformance.rs`) runs against both.

pub mod clinical;
mod event_log;
pub mod fhir;
mod messages;
pub mod postgres;
pub mod registration;
pub mod sqlite;

pub use self::clinical::{ClinicalChange, ClinicalStore, OutboxEntry, ResourceRow, ResourceWrite};
pub use self::fhir::{FhirCommit, FhirIdentifier, FhirRequestState, FhirRow, FhirStore, FhirWrite, WriteMode};
pub use self::registration::{EncounterRow, PatientRow, RegistrationChange, RegistrationStore, MAX_MERGE_HOPS};

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::backbone::Headers;
use crate::config::StoreConfig;

/// A shared handle on whichever store the config chose.
pub type SharedStore = Arc<dyn Store>;

/// Store failures, sorted by what the caller should do next.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or timed out: retry with backoff.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The request conflicts with what is stored or is malformed: do not retry.
    #[error("invalid store request: {0}")]
    Invalid(String),
    /// Anything else from the database (a bug or corruption): surface it.
    #[error("store error: {0}")]
    Database(String),
    /// Migrations failed at start.
    #[error("store migration failed: {0}")]
    Migration(String),
    /// The write conflicts with what is stored (an id or identifier taken,
    /// a version moved on): retrying the same write fails the same way.
    #[error("store conflict: {0}")]
    Conflict(String),
}

impl StoreError {
    /// True when retrying later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Overall status of an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Kept and acknowledged; processing not finished.
    Received,
    /// Every stage finished.
    Processed,
    /// Dropped on purpose by a route filter.
    Filtered,
    /// A stage failed; may be retried.
    Errored,
    /// Refused at the door (bad input); kept with the error, never acknowledged as accepted.
    Rejected,
    /// Gave up after the configured attempts; in the dead-letter stream.
    DeadLettered,
}

impl MessageStatus {
    /// The text stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Received => "received",
            MessageStatus::Processed => "processed",
            MessageStatus::Filtered => "filtered",
            MessageStatus::Errored => "errored",
            MessageStatus::Rejected => "rejected",
            MessageStatus::DeadLettered => "dead_lettered",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "received" => MessageStatus::Received,
            "processed" => MessageStatus::Processed,
            "filtered" => MessageStatus::Filtered,
            "errored" => MessageStatus::Errored,
            "rejected" => MessageStatus::Rejected,
            "dead_lettered" => MessageStatus::DeadLettered,
            _ => return None,
        })
    }
}

/// An inbound message to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// Envelope id (UUID v7).
    pub id: Uuid,
    /// Correlation id (equal to `id` for inbound messages).
    pub correlation_id: Uuid,
    /// Channel name.
    pub channel: String,
    /// Protocol token.
    pub protocol: String,
    /// Sender's control id (MSH-10, SOP Instance UID, FHIR resource id). With
    /// `channel` it is the natural key: a second message with both equal is a duplicate.
    pub control_id: Option<String>,
    /// Message type, e.g. `ADT^A01`.
    pub message_type: Option<String>,
    /// Main patient identifier, for operators' searches.
    pub patient_id: Option<String>,
    /// Remote peer.
    pub peer: Option<String>,
    /// Raw bytes exactly as received.
    pub raw: Bytes,
    /// Protocol headers.
    pub headers: Headers,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Initial status (`Received`, or `Rejected` with `error`).
    pub status: MessageStatus,
    /// Why it was rejected, if it was.
    pub error: Option<String>,
}

/// The result of keeping a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Newly stored.
    Inserted,
    /// The same channel + control id (or id) was already stored under `existing`.
    Duplicate {
        /// Id of the stored message.
        existing: Uuid,
    },
}

/// The outcome of one stage of one message, for [`Store::record_stages`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageOutcome {
    /// The message.
    pub message_id: Uuid,
    /// Stage name (`router`, …).
    pub stage: String,
    /// Its outcome, which becomes the message's overall status.
    pub status: MessageStatus,
    /// Why, for a failure.
    pub error: Option<String>,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// What was stored.
    pub message: NewMessage,
    /// Current overall status.
    pub status: MessageStatus,
    /// Latest error, if any.
    pub error: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Status per stage, in the order stages were first recorded.
    pub stages: Vec<StageRecord>,
}

/// The state of one processing stage of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRecord {
    /// Stage name (`ingress`, `router`, `registration`, a destination).
    pub stage: String,
    /// Its status.
    pub status: MessageStatus,
    /// Its latest error.
    pub error: Option<String>,
    /// How many times the stage ran.
    pub attempts: u32,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Search filter for the message browser. Every field narrows; `None` matches all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageFilter {
    /// Channel name.
    pub channel: Option<String>,
    /// Overall status.
    pub status: Option<MessageStatus>,
    /// Control id.
    pub control_id: Option<String>,
    /// Patient identifier.
    pub patient_id: Option<String>,
    /// Received at or after.
    pub since: Option<DateTime<Utc>>,
    /// Received before.
    pub until: Option<DateTime<Utc>>,
    /// Page: only ids older than this (UUID v7 order = time order).
    pub before_id: Option<Uuid>,
    /// Page size (capped at 1000; 0 means 100).
    pub limit: u32,
}

/// One line of the message browser (no raw bytes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageSummary {
    /// Id.
    pub id: Uuid,
    /// Channel.
    pub channel: String,
    /// Protocol.
    pub protocol: String,
    /// Control id.
    pub control_id: Option<String>,
    /// Message type.
    pub message_type: Option<String>,
    /// Patient id.
    pub patient_id: Option<String>,
    /// Status.
    pub status: MessageStatus,
    /// Latest error.
    pub error: Option<String>,
    /// Arrival time.
    pub received_at: DateTime<Utc>,
}

/// A canonical event as recorded in the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Envelope id; recording the same id twice is a no-op.
    pub id: Uuid,
    /// Correlation id.
    pub correlation_id: Uuid,
    /// Parent envelope.
    pub causation_id: Option<Uuid>,
    /// Kind, e.g. `patient.registered`.
    pub kind: String,
    /// Subject it was published on.
    pub subject: String,
    /// Patient it concerns, if any.
    pub patient_id: Option<String>,
    /// Body.
    pub body: serde_json::Value,
    /// When the described thing happened.
    pub occurred_at: DateTime<Utc>,
}

/// A message that a stage gave up on.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Id of this dead letter.
    pub id: Uuid,
    /// Stage that gave up.
    pub stage: String,
    /// Original subject.
    pub subject: String,
    /// Why.
    pub reason: String,
    /// Deliveries made.
    pub deliveries: u32,
    /// Correlation id of the message, when known.
    pub correlation_id: Option<Uuid>,
    /// Headers as they were.
    pub headers: Headers,
    /// Payload as it was.
    pub payload: Bytes,
    /// When it was dead-lettered.
    pub created_at: DateTime<Utc>,
    /// When an operator replayed it, if they did.
    pub replayed_at: Option<DateTime<Utc>>,
}

/// One audit log entry: who read or changed what.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who (token name, `cli`, `system`).
    pub actor: String,
    /// What (`message.read`, `message.replay`, `deadletter.replay`, …).
    pub action: String,
    /// On what (an id).
    pub target: String,
    /// Free-form detail without PHI.
    pub detail: Option<String>,
}

/// The store.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `postgres` or `sqlite`.
    fn kind(&self) -> &'static str;

    /// How many write transactions can make progress at once: writers that
    /// batch (the FHIR server's group commit) run no more workers than this,
    /// since a worker waiting for a busy connection only splits the batch.
    fn concurrent_writers(&self) -> usize;

    /// Readiness: Ok when a trivial query succeeds now.
    async fn check(&self) -> Result<(), StoreError>;

    /// Keeps an inbound message; a second one with the same id, or the same
    /// channel + control id, is reported as a duplicate and not stored.
    async fn insert_message(&self, m: &NewMessage) -> Result<InsertOutcome, StoreError> {
        let mut out = self.insert_messages(std::slice::from_ref(m)).await?;
        out.pop()
            .ok_or_else(|| StoreError::Database("no outcome for an inserted message".into()))
    }

    /// Keeps several messages in one transaction (one commit), each as
    /// [`Store::insert_message`] would, in order; outcomes in the same order.
    /// An error rolls all of them back.
    async fn insert_messages(&self, ms: &[NewMessage]) -> Result<Vec<InsertOutcome>, StoreError>;

    /// Records the outcome of one stage (attempts += 1) and sets the message's
    /// overall status and error to it.
    async fn record_stage(
        &self,
        message_id: Uuid,
        stage: &str,
        status: MessageStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let record = StageOutcome {
            message_id,
            stage: stage.to_string(),
            status,
            error: error.map(str::to_string),
        };
        self.record_stages(std::slice::from_ref(&record)).await
    }

    /// Records several stage outcomes in one transaction, in order, each as
    /// [`Store::record_stage`] would. An error (a message that is not there)
    /// rolls all of them back.
    async fn record_stages(&self, records: &[StageOutcome]) -> Result<(), StoreError>;

    /// Keeps messages whose stage already decided, with their outcomes, in
    /// one transaction: each message as [`Store::insert_messages`] keeps it
    /// (its status and error as given), then each outcome as
    /// [`Store::record_stages`] records it. A message kept before (the same
    /// id delivered again) takes the outcome. The default takes two
    /// transactions; a store overrides it to write each row once.
    async fn record_messages(&self, ms: &[NewMessage], outcomes: &[StageOutcome]) -> Result<(), StoreError> {
        if !ms.is_empty() {
            self.insert_messages(ms).await?;
        }
        if outcomes.is_empty() {
            return Ok(());
        }
        self.record_stages(outcomes).await
    }

    /// The message with its stages, or None.
    async fn get_message(&self, id: Uuid) -> Result<Option<StoredMessage>, StoreError>;

    /// The message kept for channel + control id, or None.
    async fn find_message(&self, channel: &str, control_id: &str) -> Result<Option<StoredMessage>, StoreError>;

    /// Newest first, narrowed by `filter`.
    async fn list_messages(&self, filter: &MessageFilter) -> Result<Vec<MessageSummary>, StoreError>;

    /// Appends an event to the event log; false when its id was already there.
    async fn record_event(&self, e: &EventRecord) -> Result<bool, StoreError>;

    /// Events of one correlation id, oldest first.
    async fn events_for(&self, correlation_id: Uuid) -> Result<Vec<EventRecord>, StoreError>;

    /// Keeps a dead letter; the same id twice is a no-op.
    async fn insert_dead_letter(&self, d: &DeadLetter) -> Result<(), StoreError>;

    /// Dead letters, newest first, optionally of one stage.
    async fn list_dead_letters(&self, stage: Option<&str>, limit: u32) -> Result<Vec<DeadLetter>, StoreError>;

    /// Marks a dead letter replayed now; false when no such id.
    async fn mark_replayed(&self, id: Uuid) -> Result<bool, StoreError>;

    /// Appends to the audit log.
    async fn audit(&self, e: &AuditEntry) -> Result<(), StoreError>;

    /// Audit entries about `target`, oldest first.
    async fn audit_for(&self, target: &str) -> Result<Vec<AuditEntry>, StoreError>;

    /// The registration domain store (patients, identifiers, encounters) on
    /// the same database; its writes share the event log with [`Store::record_event`].
    fn registration(&self) -> &dyn RegistrationStore;

    /// The clinical resource store (orders, results, charges, notifications,
    /// the per-service applied ledger and the outbox) on the same database;
    /// its writes share the event log with [`Store::record_event`].
    fn clinical(&self) -> &dyn ClinicalStore;

    /// The resources FHIR clients create and update (the `/fhir` server) on
    /// the same database.
    fn fhir(&self) -> &dyn FhirStore;

    /// Closes the pool.
    async fn close(&self);
}

/// Opens the store named by `cfg.url` and runs its migrations:
/// `embedded` (SQLite under `data_dir`), `sqlite://…` or `postgres://…`.
pub async fn connect(cfg: &StoreConfig, data_dir: &Path) -> Result<SharedStore, StoreError> {
    let url = cfg.url.as_str();
    if url == "embedded" {
        let path = data_dir.join("medbus.db");
        Ok(Arc::new(sqlite::SqliteStore::open_file(&path, cfg).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open_url(url, cfg).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PostgresStore::connect(url, cfg).await?))
    } else {
        Err(StoreError::Invalid(format!(
            "store.url must be \"embedded\", sqlite://PATH or postgres://…, got {:?}",
            crate::config::redact_url(url)
        )))
    }
}
