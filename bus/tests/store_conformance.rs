//! One store conformance suite, run against SQLite (always) and PostgreSQL
//! (a throwaway database per test; skipped with a notice when PostgreSQL is
//! absent, a failure when `MEDBUS_REQUIRE_SERVICES=1`).
//!
//! Each case is an async fn taking a [`Harness`]; `conformance!` turns it into
//! `sqlite::<case>` and `postgres::<case>` tests.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, DurationRound, TimeDelta, TimeZone, Utc};
use medbus_bus::config::StoreConfig;
use medbus_bus::store::postgres::PostgresStore;
use medbus_bus::store::sqlite::SqliteStore;
use medbus_bus::store::*;
use serde_json::json;
use uuid::{NoContext, Timestamp, Uuid};

/// A store under test, how to open it again, and what keeps its database alive.
struct Harness {
    store: SharedStore,
    kind: &'static str,
    reopen_at: String,
    _keep: Keep,
}

enum Keep {
    Dir { _dir: tempfile::TempDir },
    Pg { _db: medbus_testkit::PgDatabase },
}

fn cfg() -> StoreConfig {
    StoreConfig {
        url: String::new(),
        max_connections: 8,
        connect_timeout: Duration::from_secs(10),
    }
}

impl Harness {
    async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nested").join("medbus.db");
        let store = SqliteStore::open_file(&path, &cfg()).await.expect("open sqlite");
        Harness {
            store: Arc::new(store),
            kind: "sqlite",
            reopen_at: path.to_string_lossy().into_owned(),
            _keep: Keep::Dir { _dir: dir },
        }
    }

    async fn postgres() -> Option<Harness> {
        let db = medbus_testkit::PgDatabase::create().await?;
        let store = PostgresStore::connect(&db.url, &cfg()).await.expect("connect postgres");
        Some(Harness {
            store: Arc::new(store),
            kind: "postgres",
            reopen_at: db.url.clone(),
            _keep: Keep::Pg { _db: db },
        })
    }

    /// A second, independent store on the same database (migrations run again).
    async fn reopen(&self) -> SharedStore {
        match self.kind {
            "sqlite" => Arc::new(
                SqliteStore::open_file(self.reopen_at.as_ref(), &cfg())
                    .await
                    .expect("reopen"),
            ),
            _ => Arc::new(
                PostgresStore::connect(&self.reopen_at, &cfg())
                    .await
                    .expect("reconnect"),
            ),
        }
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let h = super::Harness::sqlite().await;
                    super::cases::$case(&h).await;
                    h.store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(h) = super::Harness::postgres().await else { return };
                    super::cases::$case(&h).await;
                    h.store.close().await;
                }
            )*
        }
    };
}

conformance!(
    check_ok,
    insert_get_round_trips_every_field,
    duplicate_by_channel_and_control_id,
    same_control_id_on_another_channel,
    record_stage_counts_and_sets_status,
    list_messages_filters,
    list_messages_pages_newest_first,
    list_messages_default_limit,
    events_idempotent_oldest_first,
    dead_letters,
    audit_log,
    reopen_keeps_data,
    concurrent_inserts,
    batch_insert_reports_each_outcome_in_order,
    batch_stages_are_all_or_nothing,
    record_messages_keeps_each_with_its_outcome,
    registration_upsert_reads_back,
    registration_redelivery_changes_nothing,
    registration_version_increments_on_replace,
    registration_identifier_lookup,
    registration_merge_moves_identifiers_and_encounters,
    registration_merge_of_unknown_creates_stub,
    registration_encounters_oldest_first,
    registration_event_in_log,
    registration_failure_rolls_back_event,
    registration_concurrent_redelivery_applies_once,
    clinical_insert_then_replace,
    clinical_same_event_twice_changes_nothing,
    clinical_two_services_apply_one_event_once_each,
    clinical_duplicate_within_one_batch,
    clinical_result_before_order_is_linked_late,
    clinical_result_after_order_is_linked_at_write,
    clinical_find_by_identifier_and_token_move,
    clinical_queries_by_patient_status_and_count,
    clinical_emit_goes_to_outbox_and_log,
    clinical_outbox_pending_and_published,
    clinical_error_rolls_back_the_whole_batch,
    clinical_concurrent_redelivery_applies_once_per_service,
    clinical_order_and_result_written_at_once_are_linked,
    clinical_conditional_write_refuses_a_stale_read,
    clinical_link_at_write_refused_across_patients,
    clinical_late_link_refused_across_patients,
    clinical_unknown_patient_still_links,
    clinical_refused_resource_linked_by_the_right_order,
    clinical_replace_under_another_patient_drops_the_link,
    clinical_order_moved_to_another_patient_lets_go,
    clinical_patient_without_issuer_matches_by_value,
    fhir_create_read_round_trip,
    fhir_update_bumps_version_and_replaces_identifiers,
    fhir_same_id_twice_in_one_batch,
    fhir_create_on_existing_id_conflicts,
    fhir_identifier_held_by_another_id_rolls_back_batch,
    fhir_identifiers_are_per_type_and_system,
    fhir_update_if_version,
    fhir_search_oldest_first_with_limit,
    fhir_count_per_type,
    fhir_invalid_writes,
    fhir_concurrent_creates_of_one_identifier,
    fhir_concurrent_creates_of_one_id,
    fhir_request_marks_follow_the_transaction,
    fhir_commit_many_isolates_a_failing_request,
    fhir_fresh_create_batch_takes_the_batched_path,
    fhir_conflicting_create_batch_falls_back,
);

/// A fixed, microsecond-exact base time; each test has its own database.
fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).single().expect("valid time")
}

/// A UUID v7 carrying time `t`, so id order follows time order.
fn id_at(t: DateTime<Utc>) -> Uuid {
    let secs = u64::try_from(t.timestamp()).expect("after 1970");
    Uuid::new_v7(Timestamp::from_unix(NoContext, secs, t.timestamp_subsec_nanos()))
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

/// A message on `channel` with `control_id`, received at `at`.
fn msg(channel: &str, control_id: Option<&str>, at: DateTime<Utc>) -> NewMessage {
    let id = id_at(at);
    NewMessage {
        id,
        correlation_id: id,
        channel: channel.into(),
        protocol: "hl7v2".into(),
        control_id: control_id.map(Into::into),
        message_type: Some("ADT^A01".into()),
        patient_id: Some("P1".into()),
        peer: Some("10.0.0.7:40112".into()),
        raw: Bytes::from_static(b"MSH|^~\\&|LAB|H|MEDBUS|H|20240501||ADT^A01|1|P|2.5\r"),
        headers: BTreeMap::from([("mllp.peer".to_string(), "10.0.0.7".to_string())]),
        received_at: at,
        status: MessageStatus::Received,
        error: None,
    }
}

/// Inserts and asserts it was new.
async fn put(s: &SharedStore, m: &NewMessage) {
    assert_eq!(
        s.insert_message(m).await.expect("insert"),
        InsertOutcome::Inserted,
        "{:?}",
        m.control_id
    );
}

/// Now, cut to what every backend keeps (microseconds).
fn now_us() -> DateTime<Utc> {
    Utc::now().duration_trunc(TimeDelta::microseconds(1)).expect("truncate")
}

#[path = "store_conformance/clinical.rs"]
mod clinical;
#[path = "store_conformance/fhir.rs"]
mod fhir;
#[path = "store_conformance/messages.rs"]
mod messages;
#[path = "store_conformance/records.rs"]
mod records;
#[path = "store_conformance/registration.rs"]
mod registration;
/// Every case, by name, for `conformance!`.
mod cases {
    pub use super::clinical::*;
    pub use super::fhir::*;
    pub use super::messages::*;
    pub use super::records::*;
    pub use super::registration::*;
}

/// SQLite opening paths beyond the shared cases.
mod sqlite_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_url_is_one_database() {
        // With several pooled connections each would see its own empty database.
        let store: SharedStore = Arc::new(SqliteStore::open_url("sqlite::memory:", &cfg()).await.expect("open"));
        let tasks = (0..16).map(|i| {
            let s = store.clone();
            tokio::spawn(async move {
                s.insert_message(&msg("mem", Some(&format!("M{i}")), base() + secs(i)))
                    .await
            })
        });
        for r in futures::future::join_all(tasks).await {
            assert_eq!(r.expect("task").expect("insert"), InsertOutcome::Inserted);
        }
        let all = store.list_messages(&MessageFilter::default()).await.expect("list");
        assert_eq!(all.len(), 16);
        let found = store.find_message("mem", "M3").await.expect("find").expect("stored");
        store
            .record_stage(found.message.id, "router", MessageStatus::Processed, None)
            .await
            .expect("record");
        store.check().await.expect("check");
        store.close().await;
    }

    #[tokio::test]
    async fn file_url_creates_directories_and_reopens() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a").join("b").join("m.db");
        let url = format!("sqlite://{}", path.display());
        let store = SqliteStore::open_url(&url, &cfg()).await.expect("open");
        let m = msg("adt", Some("U1"), base());
        assert_eq!(store.insert_message(&m).await.expect("insert"), InsertOutcome::Inserted);
        store.close().await;
        assert!(path.is_file(), "{} missing", path.display());
        let again = SqliteStore::open_file(&path, &cfg()).await.expect("reopen");
        assert_eq!(again.get_message(m.id).await.expect("get").expect("stored").message, m);
        again.close().await;
    }

    #[tokio::test]
    async fn embedded_config_is_a_wal_file_under_data_dir() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let config = StoreConfig {
            url: "embedded".into(),
            ..cfg()
        };
        let store = connect(&config, &data_dir).await.expect("connect");
        assert_eq!(store.kind(), "sqlite");
        put(&store, &msg("adt", Some("E1"), base())).await;
        assert!(data_dir.join("medbus.db").is_file());
        // The write-ahead log exists while the store is open: WAL mode is on.
        assert!(data_dir.join("medbus.db-wal").is_file(), "no WAL file");
        store.close().await;
    }
}

/// Connection failures are sorted for the caller.
mod errors {
    use super::*;

    #[tokio::test]
    async fn unreachable_postgres_is_retryable() {
        let config = StoreConfig {
            connect_timeout: Duration::from_secs(2),
            ..cfg()
        };
        let started = std::time::Instant::now();
        let err = PostgresStore::connect("postgres://postgres@127.0.0.1:1/none", &config)
            .await
            .err()
            .expect("port 1 has no PostgreSQL");
        assert!(
            matches!(err, StoreError::Unavailable(_)) && err.is_retryable(),
            "{err:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn unknown_url_is_invalid() {
        let config = StoreConfig {
            url: "mysql://root:secret@db/medbus".into(),
            ..cfg()
        };
        let err = connect(&config, &PathBuf::from("unused")).await.err().expect("refused");
        assert!(
            matches!(&err, StoreError::Invalid(m) if !m.contains("secret")),
            "{err:?}"
        );
    }
}
