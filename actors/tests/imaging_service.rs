//! The imaging service on the embedded backbone, with SQLite and with
//! PostgreSQL: `imaging.instance-stored` in, one ImagingStudy per study with
//! exact counts out, linked to its order by accession number whichever comes
//! first, completed once per quiet spell, through redeliveries, resends and
//! injected panics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use medbus_actors::faults::FaultInjector;
use medbus_actors::feed;
use medbus_actors::imaging::{self, Imaging, ImagingActor};
use medbus_actors::system::ActorSystem;
use medbus_bus::backbone::{self, open_consumer, ConsumerSpec, SharedBackbone};
use medbus_bus::canonical::{
    systems, Coding, EventKind, Identifier, ImagingEvent, ImagingStudy, ImagingStudyInstance, ImagingStudySeries,
    ImagingStudyStatus, Patient, StoredInstance,
};
use medbus_bus::config::{BackboneConfig, StoreConfig};
use medbus_bus::envelope::{Body, Envelope, Source};
use medbus_bus::store::clinical::{ResourceRow, ResourceWrite};
use medbus_bus::store::{self, SharedStore};
use medbus_testkit::PgDatabase;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const HOSP: &str = "urn:medbus:authority:HOSP";
const RIS: &str = "urn:medbus:authority:RIS";
/// Long enough that no study completes unless a test wants it to.
const NEVER: Duration = Duration::from_secs(3600);

struct Rig {
    backbone: SharedBackbone,
    store: SharedStore,
    cfg: BackboneConfig,
    shutdown: CancellationToken,
    system: Option<ActorSystem>,
    _dir: tempfile::TempDir,
    // Last: dropped after the store's pool.
    _db: Option<PgDatabase>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(s) = self.system.take() {
            s.stop();
        }
    }
}

async fn rig() -> Rig {
    rig_on(StoreConfig::default(), None).await
}

/// None (the test skips, saying why) when no PostgreSQL answers, unless
/// `MEDBUS_REQUIRE_SERVICES=1` makes that a failure.
async fn pg_rig() -> Option<Rig> {
    let db = PgDatabase::create().await?;
    let cfg = StoreConfig {
        url: db.url.clone(),
        ..Default::default()
    };
    Some(rig_on(cfg, Some(db)).await)
}

async fn rig_on(store_cfg: StoreConfig, db: Option<PgDatabase>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BackboneConfig {
        ack_wait: Duration::from_secs(2),
        ..Default::default()
    };
    let backbone = backbone::connect(&cfg, dir.path()).await.unwrap();
    let store = store::connect(&store_cfg, dir.path()).await.unwrap();
    Rig {
        backbone,
        store,
        cfg,
        shutdown: CancellationToken::new(),
        system: Some(ActorSystem::start().unwrap()),
        _dir: dir,
        _db: db,
    }
}

impl Rig {
    /// Starts the service (actor, feed and completion sweep) with `quiet_time`.
    async fn imaging(&self, quiet_time: Duration, faults: &FaultInjector) {
        let shared = Imaging::new(self.store.clone(), self.backbone.clone(), quiet_time);
        let (for_actor, f) = (shared.clone(), faults.clone());
        let addr = self
            .system
            .as_ref()
            .unwrap()
            .supervise(move || ImagingActor::new(for_actor, f))
            .await
            .unwrap();
        let (bb, cfg, stop) = (self.backbone.clone(), self.cfg.clone(), self.shutdown.clone());
        tokio::spawn(async move { feed::run(bb, &cfg, imaging::feed_spec(), addr, stop).await });
        tokio::spawn(imaging::run_sweeps(shared, self.shutdown.clone()));
    }

    /// Publishes an `imaging.instance-stored`; returns its envelope.
    async fn publish(&self, body: Value) -> Envelope {
        let source = Source {
            channel: "modalities".into(),
            protocol: "dicom".into(),
            peer: None,
        };
        let root = Envelope::ingress(source, "dicom.instance", Default::default(), bytes::Bytes::new());
        let env = root.derive_event(EventKind::ImagingInstanceStored.as_str(), body);
        self.republish(&env, "first").await;
        env
    }

    /// Publishes `env` again under another dedupe id, as a redelivery would.
    async fn republish(&self, env: &Envelope, attempt: &str) {
        let out = env
            .to_outgoing(
                EventKind::ImagingInstanceStored.subject().to_string(),
                format!("{}:{attempt}", env.id),
            )
            .unwrap();
        self.backbone.publish(out).await.unwrap();
    }

    async fn study(&self, uid: &str) -> Option<ResourceRow> {
        self.store
            .clinical()
            .resource(imaging::RESOURCE_TYPE, &format!("urn:dicom:uid|urn:oid:{uid}"))
            .await
            .unwrap()
    }

    /// Waits until study `uid` holds `instances` with `status`, then a moment
    /// more for anything extra to arrive; returns the row as it stands.
    async fn settled(&self, uid: &str, instances: u64, status: &str) -> ResourceRow {
        let mut last = None;
        for _ in 0..400 {
            last = self.study(uid).await;
            if last
                .as_ref()
                .is_some_and(|r| r.status == status && r.resource["numberOfInstances"] == json!(instances))
            {
                tokio::time::sleep(Duration::from_millis(400)).await;
                return self.study(uid).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("study {uid}: wanted {instances} instances, {status}; have {last:?}");
    }

    /// Every `imaging.study-completed` published, waiting until at least
    /// `expected` came and then a while more for any extra.
    async fn completions(&self, expected: usize) -> Vec<Envelope> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("check_{}", N.fetch_add(1, Ordering::SeqCst));
        let kind = EventKind::ImagingStudyCompleted;
        let spec = ConsumerSpec::new(name, kind.subject().to_string(), &self.cfg);
        let mut c = open_consumer(&self.backbone, spec).await.unwrap();
        let mut got = Vec::new();
        let mut quiet = 0;
        for _ in 0..300 {
            let batch = c.fetch(100, Duration::from_millis(100)).await.unwrap();
            if batch.is_empty() && got.len() >= expected {
                quiet += 1;
                if quiet >= 15 {
                    break;
                }
            }
            for d in batch {
                got.push(Envelope::from_wire(&d.headers, d.payload.clone()).unwrap());
                d.ack().await.unwrap();
            }
        }
        got
    }
}

macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(super::rig().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgresql() {
                if let Some(r) = super::pg_rig().await {
                    super::$scenario(r).await
                }
            }
        }
    )*};
}

on_both_stores!(
    instances_of_two_series_make_one_study_with_exact_counts,
    redeliveries_and_resent_instances_change_nothing,
    a_study_before_its_order_is_linked_when_the_order_arrives,
    a_study_after_its_order_is_linked_at_once,
    a_study_with_another_patients_accession_stays_unlinked,
    a_quiet_study_completes_once_and_again_after_a_new_instance,
    injected_panics_lose_nothing_and_double_nothing,
    sweeps_racing_in_several_processes_complete_each_study_once,
    folds_racing_in_two_processes_lose_no_instance,
);

/// The `imaging.instance-stored` body of instance `n` of study `study` (two
/// series: even instances CT, odd ones SR), of patient `mrn`, with `accession`.
fn instance(study: &str, n: u32, mrn: &str, accession: Option<&str>) -> Value {
    let (series, modality) = if n.is_multiple_of(2) { ("1", "CT") } else { ("2", "SR") };
    let patient = Patient {
        identifier: vec![Identifier {
            system: Some(HOSP.into()),
            value: Some(mrn.into()),
            ..Identifier::default()
        }],
        ..Patient::default()
    };
    let mut identifier = vec![ImagingStudy::study_uid_identifier(study)];
    identifier.extend(accession.map(|a| ImagingStudy::accession_identifier(a, None)));
    let sop = format!("{study}.{series}.{n}");
    let body = ImagingEvent {
        imaging_study: ImagingStudy {
            resource_type: Default::default(),
            id: None,
            identifier,
            status: ImagingStudyStatus::Registered,
            modality: vec![Coding::new(systems::DICOM_DCM, modality, None)],
            subject: patient.reference(),
            started: None,
            based_on: Vec::new(),
            number_of_series: Some(1),
            number_of_instances: Some(1),
            description: Some("CT CHEST".into()),
            series: vec![ImagingStudySeries {
                uid: format!("{study}.{series}"),
                number: series.parse().ok(),
                modality: Coding::new(systems::DICOM_DCM, modality, None),
                body_site: None,
                number_of_instances: Some(1),
                instance: vec![ImagingStudyInstance {
                    uid: sop.clone(),
                    sop_class: Coding::new(systems::URI, "urn:oid:1.2.840.10008.5.1.4.1.1.2", None),
                    number: Some(n),
                }],
            }],
        },
        patient,
        instance: Some(StoredInstance {
            channel: "modalities".into(),
            file: format!("{study}/{study}.{series}/{sop}.dcm"),
            file_bytes: 1024,
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            calling_ae: Some("CT1".into()),
            number_of_frames: None,
        }),
        source_message_type: Some("C-STORE".into()),
        occurred: None,
    };
    serde_json::to_value(body).unwrap()
}

fn body_of(env: &Envelope) -> Value {
    match &env.body {
        Body::Json { value } => value.clone(),
        other => panic!("not a JSON body: {other:?}"),
    }
}

/// Checks study `row` holds instances `0..n` in two series with exact counts.
fn assert_counts(row: &ResourceRow, n: u64) {
    let r = &row.resource;
    assert_eq!(r["numberOfInstances"], json!(n));
    assert_eq!(r["numberOfSeries"], json!(2));
    let series = r["series"].as_array().unwrap();
    let held: u64 = series
        .iter()
        .map(|s| s["instance"].as_array().unwrap().len() as u64)
        .sum();
    assert_eq!(held, n, "no instance twice");
    assert_eq!(series[0]["numberOfInstances"], json!(n.div_ceil(2)));
    assert_eq!(series[1]["numberOfInstances"], json!(n / 2));
    assert_eq!(r["modality"].as_array().unwrap().len(), 2, "CT and SR, each once");
}

async fn instances_of_two_series_make_one_study_with_exact_counts(r: Rig) {
    // Published before the service starts, so they arrive as batches.
    for n in 0..300 {
        r.publish(instance("1.2.9.1", n, "M1", None)).await;
    }
    r.imaging(NEVER, &FaultInjector::default()).await;
    let row = r.settled("1.2.9.1", 300, "registered").await;
    assert_counts(&row, 300);
    assert_eq!(row.patient_key.as_deref(), Some(format!("{HOSP}|M1").as_str()));
    assert!(
        row.version <= 5,
        "folded per batch, not rewritten per instance (version {})",
        row.version
    );
    assert_eq!(r.store.clinical().count_resources("ImagingStudy").await.unwrap(), 1);
    let by_uid = r
        .store
        .clinical()
        .find_by_identifier("ImagingStudy", "urn:dicom:uid|urn:oid:1.2.9.1")
        .await
        .unwrap();
    assert_eq!(by_uid.map(|s| s.key), Some(row.key));
}

async fn redeliveries_and_resent_instances_change_nothing(r: Rig) {
    r.imaging(NEVER, &FaultInjector::default()).await;
    let mut sent = Vec::new();
    for n in 0..40 {
        sent.push(r.publish(instance("1.2.9.2", n, "M2", Some("A2"))).await);
    }
    let before = r.settled("1.2.9.2", 40, "registered").await;
    for env in &sent {
        r.republish(env, "again").await;
    }
    for n in 0..40 {
        // The modality sends the same instances again: new events, same SOP Instance UIDs.
        r.publish(instance("1.2.9.2", n, "M2", Some("A2"))).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = r.settled("1.2.9.2", 40, "registered").await;
    assert_counts(&after, 40);
    assert_eq!(after.version, before.version, "nothing was written again");
    assert_eq!(after.resource, before.resource);
    for env in &sent {
        assert_eq!(r.store.events_for(env.correlation_id).await.unwrap().len(), 1);
    }
}

/// A ServiceRequest with accession number `acsn`, as the orders service keeps it.
async fn store_order(r: &Rig, placer: &str, acsn: &str) -> String {
    store_order_of(r, placer, acsn, None).await
}

/// [`store_order`] for the patient with hospital number `mrn` (None: unknown).
async fn store_order_of(r: &Rig, placer: &str, acsn: &str, mrn: Option<&str>) -> String {
    let key = format!("{RIS}|{placer}");
    let write = ResourceWrite {
        resource_type: "ServiceRequest".into(),
        key: key.clone(),
        patient_key: mrn.map(|m| format!("{HOSP}|{m}")),
        status: "active".into(),
        identifiers: vec![key.clone(), ImagingStudy::accession_token(acsn)],
        order_tokens: Vec::new(),
        resource: json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order"}),
    };
    r.store.clinical().upsert_resource(&write).await.unwrap();
    key
}

async fn a_study_before_its_order_is_linked_when_the_order_arrives(r: Rig) {
    r.imaging(NEVER, &FaultInjector::default()).await;
    for n in 0..4 {
        r.publish(instance("1.2.9.3", n, "M3", Some("A3"))).await;
    }
    let row = r.settled("1.2.9.3", 4, "registered").await;
    assert_eq!(row.order_key, None, "no order yet");
    let order = store_order(&r, "P3", "A3").await;
    let row = r.study("1.2.9.3").await.unwrap();
    assert_eq!(
        row.order_key.as_deref(),
        Some(order.as_str()),
        "linked when the order came"
    );
    let linked = r
        .store
        .clinical()
        .resources_of_order("ImagingStudy", &order)
        .await
        .unwrap();
    assert_eq!(linked.len(), 1);
    // Later instances keep the link.
    r.publish(instance("1.2.9.3", 4, "M3", Some("A3"))).await;
    let row = r.settled("1.2.9.3", 5, "registered").await;
    assert_eq!(row.order_key.as_deref(), Some(order.as_str()));
}

async fn a_study_after_its_order_is_linked_at_once(r: Rig) {
    let order = store_order(&r, "P4", "A4").await;
    r.imaging(NEVER, &FaultInjector::default()).await;
    r.publish(instance("1.2.9.4", 0, "M4", Some("A4"))).await;
    // A study without an accession number is kept, and linked to nothing.
    r.publish(instance("1.2.9.5", 0, "M4", None)).await;
    let row = r.settled("1.2.9.4", 1, "registered").await;
    assert_eq!(row.order_key.as_deref(), Some(order.as_str()));
    let other = r.settled("1.2.9.5", 1, "registered").await;
    assert_eq!(other.order_key, None);
}

async fn a_study_with_another_patients_accession_stays_unlinked(r: Rig) {
    // Two departments reuse accession numbers for different patients; the
    // modality sends the accession alone, so only the patient tells them apart.
    let m12 = store_order_of(&r, "P12", "A12", Some("M12")).await;
    r.imaging(NEVER, &FaultInjector::default()).await;
    r.publish(instance("1.2.9.12", 0, "N12", Some("A12"))).await;
    r.publish(instance("1.2.9.13", 0, "M12", Some("A12"))).await;
    let foreign = r.settled("1.2.9.12", 1, "registered").await;
    assert_eq!(foreign.order_key, None, "not linked to another patient's order");
    let own = r.settled("1.2.9.13", 1, "registered").await;
    assert_eq!(own.order_key.as_deref(), Some(m12.as_str()));
    // The order second: another patient's is not linked, the study's own is.
    r.publish(instance("1.2.9.14", 0, "N14", Some("A14"))).await;
    r.settled("1.2.9.14", 1, "registered").await;
    store_order_of(&r, "P14", "A14", Some("M14")).await;
    assert_eq!(r.study("1.2.9.14").await.unwrap().order_key, None);
    let n14 = store_order_of(&r, "P14N", "A14", Some("N14")).await;
    assert_eq!(
        r.study("1.2.9.14").await.unwrap().order_key.as_deref(),
        Some(n14.as_str())
    );
    // Later instances keep the link.
    r.publish(instance("1.2.9.14", 1, "N14", Some("A14"))).await;
    let row = r.settled("1.2.9.14", 2, "registered").await;
    assert_eq!(row.order_key.as_deref(), Some(n14.as_str()));
}

async fn a_quiet_study_completes_once_and_again_after_a_new_instance(r: Rig) {
    r.imaging(Duration::from_secs(1), &FaultInjector::default()).await;
    for n in 0..6 {
        r.publish(instance("1.2.9.6", n, "M6", Some("A6"))).await;
    }
    let row = r.settled("1.2.9.6", 6, "available").await;
    assert_counts(&row, 6);
    let first = r.completions(1).await;
    assert_eq!(first.len(), 1, "one completion per quiet spell");
    let body = body_of(&first[0]);
    let study: ImagingStudy = serde_json::from_value(body["imagingStudy"].clone()).unwrap();
    assert_eq!(study.status, ImagingStudyStatus::Available);
    assert_eq!(study.number_of_instances, Some(6));
    assert_eq!(study.series.len(), 2);
    assert_eq!(study.accession(), Some("A6"));
    assert_eq!(body["patient"]["identifier"][0]["value"], json!("M6"));
    assert_eq!(first[0].kind, "imaging.study-completed");

    // A late instance: registered again, then complete again with it.
    r.publish(instance("1.2.9.6", 6, "M6", Some("A6"))).await;
    r.settled("1.2.9.6", 7, "available").await;
    let both = r.completions(2).await;
    assert_eq!(both.len(), 2, "completed again, once");
    assert_ne!(both[0].id, both[1].id);
    let again = body_of(&both[1]);
    assert_eq!(again["imagingStudy"]["numberOfInstances"], json!(7));
    // A resent instance after completion changes nothing: no third completion.
    r.publish(instance("1.2.9.6", 3, "M6", Some("A6"))).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(r.completions(2).await.len(), 2);
    assert_eq!(r.study("1.2.9.6").await.unwrap().status, "available");
}

async fn injected_panics_lose_nothing_and_double_nothing(r: Rig) {
    let faults = FaultInjector::default();
    faults.inject_panics(4);
    r.imaging(NEVER, &faults).await;
    let mut sent = Vec::new();
    for n in 0..30 {
        for study in ["1.2.9.7", "1.2.9.8"] {
            sent.push(r.publish(instance(study, n, &format!("M{study}"), None)).await);
        }
    }
    for study in ["1.2.9.7", "1.2.9.8"] {
        assert_counts(&r.settled(study, 30, "registered").await, 30);
    }
    assert_eq!(faults.pending(), 0, "every injected panic fired");
    for env in &sent {
        assert_eq!(r.store.events_for(env.correlation_id).await.unwrap().len(), 1);
    }
}

async fn sweeps_racing_in_several_processes_complete_each_study_once(r: Rig) {
    // The service folds (its own sweep waits an hour); three sweeps, as three
    // processes would run them, each with its own lock, race to complete.
    r.imaging(NEVER, &FaultInjector::default()).await;
    let studies: Vec<String> = (0..12).map(|s| format!("1.2.9.10.{s}")).collect();
    for uid in &studies {
        for n in 0..3 {
            r.publish(instance(uid, n, "M10", None)).await;
        }
    }
    for uid in &studies {
        r.settled(uid, 3, "registered").await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let sweeper = || Imaging::new(r.store.clone(), r.backbone.clone(), Duration::from_secs(1));
    let (a, b, c) = (sweeper(), sweeper(), sweeper());
    let mut completed = 0;
    for _ in 0..5 {
        let (x, y, z) = tokio::join!(
            imaging::complete::sweep(&a),
            imaging::complete::sweep(&b),
            imaging::complete::sweep(&c)
        );
        completed += x.unwrap() + y.unwrap() + z.unwrap();
    }
    assert_eq!(completed, studies.len(), "each study completed by one sweep");
    for uid in &studies {
        r.settled(uid, 3, "available").await;
    }
    let out = r.completions(studies.len()).await;
    assert_eq!(out.len(), studies.len(), "one completion per study, whoever swept it");
}

/// An `imaging.instance-stored` as the feed hands it to the actor.
fn apply_of(body: Value) -> feed::Apply {
    let kind = EventKind::ImagingInstanceStored;
    let event = medbus_bus::canonical::CanonicalEvent::from_json(kind, body.clone()).unwrap();
    let id = uuid::Uuid::now_v7();
    feed::Apply {
        record: medbus_bus::store::EventRecord {
            id,
            correlation_id: id,
            causation_id: None,
            kind: kind.as_str().into(),
            subject: kind.subject().to_string(),
            patient_id: event.patient_key(),
            body,
            occurred_at: chrono::Utc::now(),
        },
        event,
    }
}

async fn folds_racing_in_two_processes_lose_no_instance(r: Rig) {
    // Two services, each with its own lock (as two processes sharing the
    // consumer), fold batches of one study at the same moment: the loser of
    // each race folds again from a fresh read, so every instance is kept.
    let actor = || {
        let shared = Imaging::new(r.store.clone(), r.backbone.clone(), NEVER);
        r.system
            .as_ref()
            .unwrap()
            .supervise(move || ImagingActor::new(shared, FaultInjector::default()))
    };
    let (a, b) = (actor().await.unwrap(), actor().await.unwrap());
    for round in 0..10u32 {
        let batch = |side: u32| feed::ApplyBatch {
            items: (0..10)
                .map(|n| apply_of(instance("1.2.9.11", round * 20 + side * 10 + n, "M11", None)))
                .collect(),
        };
        let (x, y) = tokio::join!(a.send(batch(0)), b.send(batch(1)));
        assert_eq!(x.unwrap().unwrap(), [true; 10]);
        assert_eq!(y.unwrap().unwrap(), [true; 10]);
    }
    let row = r.study("1.2.9.11").await.unwrap();
    assert_counts(&row, 200);
    assert!(
        row.version <= 20,
        "one write per batch that won (version {})",
        row.version
    );
}
