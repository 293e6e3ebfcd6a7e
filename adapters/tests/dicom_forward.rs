//! The DICOM destination (forwarding received instances to a PACS) against
//! real peers nobody here wrote and against our own SCP scripted to refuse,
//! on the embedded backbone. Instances enter as the storage SCP keeps them
//! (`FileAndBackboneSink`: the Part-10 file under the channel's root, the
//! envelope on `medbus.ingress.dicom.<channel>`).
//!
//! - DCMTK `storescp`: every instance arrives with its data set byte for byte,
//!   over one association (plus one re-negotiation when a new SOP class comes),
//!   released when idle; while it is down the destination retries, reports
//!   the PACS unreachable, then delivers and reports it recovered.
//! - our SCP answering 0xA700 once: retried, delivered once; 0xC000: dead-
//!   lettered at once with the status and Error Comment in the dead letter;
//!   always 0xA700: dead-lettered after `max_attempts`; a SOP class it does not
//!   take, and a missing file: dead-lettered, and the next instance goes on.
//! - Orthanc: N instances arrive, checked through its REST API.
//! - a large instance through a throttled relay (a slow link) to storescp is
//!   delivered although it takes longer than `timeout` in all.
//! - shutdowns while the PACS is down, more than `max_deliver` of them (embedded
//!   backbone and JetStream), dead-letter nothing; crashes still dead-letter after
//!   `max_deliver`.
//!
//! `storescp` and Orthanc bind every interface, so they run in a private network
//! namespace (testkit `netns`), reached through relays on 127.0.0.1. Without DCMTK,
//! Orthanc or the right to make a namespace the tests print `SKIPPED:` and pass,
//! unless `MEDBUS_REQUIRE_SERVICES=1` (scripts/test.sh), which makes them fail.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use medbus_adapters::dicom::forward::{self, DicomForwardContext, DLQ_ERROR_COMMENT, DLQ_STATUS};
use medbus_adapters::dicom::scu::file;
use medbus_adapters::dicom::{
    self, FileAndBackboneSink, InstanceMetadata, InstanceSink, ReceivedInstance, ScpOptions, SinkError,
};
use medbus_bus::backbone::{self, dead_letter, open_consumer, ConsumerSpec, Headers, SharedBackbone};
use medbus_bus::canonical::SystemEventKind;
use medbus_bus::config::dicom_destinations::DicomDestinationConfig;
use medbus_bus::config::BackboneConfig;
use medbus_testkit::netns::Isolated;
use medbus_testkit::orthanc::Orthanc;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const CHANNEL: &str = "modalities";
const STUDY: &str = "1.2.826.0.1.3680043.10.77.1";

// ---------------------------------------------------------------- instances --

/// An image instance of `side`×`side` 16-bit pixels (pixels vary with `n` so two differ).
fn dataset_sized(sop_class: &str, modality: &str, sop_instance: &str, series: &str, n: u16, side: u16) -> Vec<u8> {
    let s = |tag, vr, v: &str| DataElement::new(tag, vr, PrimitiveValue::from(v));
    let u = |tag, v: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(v));
    let pixels: Vec<u8> = (0..u32::from(side) * u32::from(side))
        .flat_map(|i| ((i as u16).wrapping_mul(n + 1) & 0x0FFF).to_le_bytes())
        .collect();
    let obj = InMemDicomObject::from_element_iter([
        s(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100"),
        s(tags::SOP_CLASS_UID, VR::UI, sop_class),
        s(tags::SOP_INSTANCE_UID, VR::UI, sop_instance),
        s(tags::STUDY_DATE, VR::DA, "20260102"),
        s(tags::ACCESSION_NUMBER, VR::SH, "ACC77"),
        s(tags::MODALITY, VR::CS, modality),
        s(tags::PATIENT_NAME, VR::PN, "Doe^Jane"),
        s(tags::PATIENT_ID, VR::LO, "MRN77"),
        s(tags::STUDY_INSTANCE_UID, VR::UI, STUDY),
        s(tags::SERIES_INSTANCE_UID, VR::UI, series),
        s(tags::SERIES_NUMBER, VR::IS, "1"),
        s(tags::INSTANCE_NUMBER, VR::IS, &n.to_string()),
        u(tags::SAMPLES_PER_PIXEL, 1),
        s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        u(tags::ROWS, side),
        u(tags::COLUMNS, side),
        u(tags::BITS_ALLOCATED, 16),
        u(tags::BITS_STORED, 12),
        u(tags::HIGH_BIT, 11),
        u(tags::PIXEL_REPRESENTATION, 0),
        DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::from(pixels)),
    ]);
    let ts = TransferSyntaxRegistry
        .get(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .expect("explicit VR LE");
    let mut out = Vec::new();
    obj.write_dataset_with_ts(&mut out, ts).unwrap();
    out
}

/// One instance as the test sends it.
struct Sent {
    sop_instance: String,
    dataset: Vec<u8>,
    file: PathBuf,
}

/// The embedded backbone and the channel's storage, as serve sets them up.
struct Bus {
    data: tempfile::TempDir,
    bb: SharedBackbone,
    cfg: BackboneConfig,
    sink: FileAndBackboneSink,
}

impl Bus {
    async fn new() -> Bus {
        Self::with(BackboneConfig {
            ack_wait: Duration::from_secs(5),
            ..BackboneConfig::default()
        })
        .await
    }

    /// As [`Bus::new`] with backbone settings `cfg` (embedded, or a NATS url).
    async fn with(cfg: BackboneConfig) -> Bus {
        let data = tempfile::tempdir().unwrap();
        let bb = backbone::connect(&cfg, data.path()).await.unwrap();
        let sink = FileAndBackboneSink::new(data.path().join("dicom"), CHANNEL, bb.clone()).unwrap();
        Bus { data, bb, cfg, sink }
    }

    fn root(&self) -> PathBuf {
        self.data.path().join("dicom")
    }

    /// Receives instance `n` of class `sop_class` as the SCP would: file, then envelope.
    async fn receive(&self, sop_class: &str, modality: &str, n: u16) -> Sent {
        self.receive_sized(sop_class, modality, n, 64).await
    }

    /// As [`Bus::receive`], with `side`×`side` pixels.
    async fn receive_sized(&self, sop_class: &str, modality: &str, n: u16, side: u16) -> Sent {
        let sop_instance = format!("{STUDY}.{}.{n}", if modality == "MR" { 2 } else { 1 });
        let series = format!("{STUDY}.{}", if modality == "MR" { 2 } else { 1 });
        let dataset = dataset_sized(sop_class, modality, &sop_instance, &series, n, side);
        let metadata = InstanceMetadata {
            study_instance_uid: STUDY.into(),
            series_instance_uid: series.clone(),
            sop_instance_uid: sop_instance.clone(),
            sop_class_uid: sop_class.into(),
            modality: Some(modality.into()),
            transfer_syntax_uid: uids::EXPLICIT_VR_LITTLE_ENDIAN.into(),
            ..Default::default()
        };
        let instance = ReceivedInstance {
            calling_ae: "CT1".into(),
            called_ae: "MEDBUS".into(),
            peer: "127.0.0.1:5000".parse().unwrap(),
            metadata,
            dataset: Bytes::from(dataset.clone()),
            transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN.into(),
        };
        self.sink.store(instance).await.unwrap();
        let file = self
            .root()
            .join(STUDY)
            .join(&series)
            .join(format!("{sop_instance}.dcm"));
        Sent {
            sop_instance,
            dataset,
            file,
        }
    }

    /// Starts destination `pacs` sending to `addr`.
    fn forward(&self, addr: SocketAddr, called_ae: &str, tune: impl FnOnce(&mut DicomDestinationConfig)) -> Forwarder {
        let mut config = DicomDestinationConfig {
            host: addr.ip().to_string(),
            port: addr.port(),
            called_ae: called_ae.into(),
            timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_millis(400),
            ..Default::default()
        };
        tune(&mut config);
        let shutdown = CancellationToken::new();
        let ctx = DicomForwardContext {
            name: "pacs".into(),
            config,
            storage_roots: BTreeMap::from([(CHANNEL.to_string(), self.root())]),
            backbone: self.bb.clone(),
            backbone_config: self.cfg.clone(),
            shutdown: shutdown.clone(),
        };
        Forwarder {
            shutdown,
            run: tokio::spawn(forward::run(ctx)),
        }
    }

    /// Up to `n` messages on `filter` (waiting up to 30 s for them), then `extra` more for strays.
    async fn collect(&self, name: &str, filter: &str, n: usize, extra: Duration) -> Vec<(String, Headers, Bytes)> {
        let mut c = open_consumer(&self.bb, ConsumerSpec::new(name, filter, &self.cfg))
            .await
            .unwrap();
        let mut out = Vec::new();
        let start = Instant::now();
        while out.len() < n && start.elapsed() < Duration::from_secs(30) {
            for d in c.fetch(10, Duration::from_millis(200)).await.unwrap() {
                out.push((d.subject.clone(), d.headers.clone(), d.payload.clone()));
                d.ack().await.unwrap();
            }
        }
        for d in c.fetch(10, extra).await.unwrap() {
            out.push((d.subject.clone(), d.headers.clone(), d.payload.clone()));
            d.ack().await.unwrap();
        }
        out
    }

    async fn dead_letters(&self, n: usize) -> Vec<Headers> {
        self.collect("ops", "medbus.dlq.>", n, Duration::from_millis(500))
            .await
            .into_iter()
            .map(|(subject, headers, _)| {
                assert_eq!(subject, "medbus.dlq.dicom_pacs");
                headers
            })
            .collect()
    }

    /// The destination status events, as (subject, body).
    async fn status_events(&self, n: usize) -> Vec<(String, Value)> {
        self.collect("watch", "medbus.events.system.>", n, Duration::from_millis(300))
            .await
            .into_iter()
            .map(|(subject, _, payload)| (subject, serde_json::from_slice(&payload).unwrap()))
            .collect()
    }
}

struct Forwarder {
    shutdown: CancellationToken,
    run: JoinHandle<Result<(), backbone::BackboneError>>,
}

impl Forwarder {
    async fn stop(self) {
        assert!(!self.run.is_finished(), "the destination ended before shutdown");
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.run)
            .await
            .expect("stops at shutdown")
            .expect("no panic")
            .expect("no error");
    }
}

async fn eventually(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ------------------------------------------------------------- storescp --

/// DCMTK's storescp in a private namespace, relayed from 127.0.0.1:`port`, writing to `out`.
struct StoreScp {
    _server: Isolated,
    addr: SocketAddr,
    log: PathBuf,
}

fn dcmtk_bin(tool: &str) -> String {
    match std::env::var_os("MEDBUS_TEST_DCMTK_BIN") {
        Some(dir) => Path::new(&dir).join(tool).display().to_string(),
        None => tool.to_string(),
    }
}

/// Some(()) when storescp runs here; else skips (or panics under MEDBUS_REQUIRE_SERVICES=1).
fn have_storescp() -> Option<()> {
    medbus_testkit::peers::tool(
        "DCMTK storescp",
        &dcmtk_bin("storescp"),
        &["--version"],
        "apt-get install dcmtk",
    )
}

impl StoreScp {
    /// Starts storescp (verbose, so its log shows each association) relayed from
    /// 127.0.0.1:`here` (0: any port); None when namespaces cannot be made (skipped or panics).
    fn start(out: &Path, here: u16) -> Option<StoreScp> {
        let log = out.with_extension("log");
        std::fs::create_dir_all(out).unwrap();
        let args = ["-v", "-od", &out.display().to_string(), "104"].map(String::from);
        let server = match Isolated::spawn(&dcmtk_bin("storescp"), &args, out, &log, &[(104, here)]) {
            Ok(s) => s,
            Err(why) => {
                assert!(
                    !medbus_testkit::services_required(),
                    "storescp in a private network namespace is required (MEDBUS_REQUIRE_SERVICES=1): {why}"
                );
                eprintln!("SKIPPED: storescp in a private network namespace: {why}");
                return None;
            }
        };
        let addr = server.addr(104).unwrap();
        Some(StoreScp {
            _server: server,
            addr,
            log,
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn associations(&self) -> usize {
        self.log().matches("Association Received").count()
    }
}

/// The files storescp wrote (`<modality>.<SOP Instance UID>`), by SOP Instance UID.
fn written(dir: &Path) -> BTreeMap<String, PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let (_, uid) = name.split_once('.')?;
                    Some((uid.to_string(), e.path()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The data set of a Part-10 file, as bytes.
fn dataset_of(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    file::read(&bytes).unwrap().dataset.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescp_gets_every_data_set_byte_for_byte_over_one_kept_association() {
    if have_storescp().is_none() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let Some(scp) = StoreScp::start(&out.path().join("in"), 0) else {
        return;
    };
    let bus = Bus::new().await;
    let mut sent = Vec::new();
    // CT ×3, then MR (a new context: one re-negotiation), then both again on that association.
    for (class, modality, n) in [
        (uids::CT_IMAGE_STORAGE, "CT", 1),
        (uids::CT_IMAGE_STORAGE, "CT", 2),
        (uids::CT_IMAGE_STORAGE, "CT", 3),
        (uids::MR_IMAGE_STORAGE, "MR", 4),
        (uids::CT_IMAGE_STORAGE, "CT", 5),
        (uids::MR_IMAGE_STORAGE, "MR", 6),
    ] {
        sent.push(bus.receive(class, modality, n).await);
    }
    let started = Instant::now();
    let fwd = bus.forward(scp.addr, "STORESCP", |c| c.association_idle = Duration::from_secs(2));
    let dir = out.path().join("in");
    eventually("6 files written by storescp", Duration::from_secs(30), || {
        written(&dir).len() == 6
    })
    .await;
    let elapsed = started.elapsed();
    let files = written(&dir);
    for s in &sent {
        let path = &files[&s.sop_instance];
        assert_eq!(dataset_of(path), s.dataset, "{} arrived byte for byte", s.sop_instance);
    }
    assert_eq!(
        scp.associations(),
        2,
        "one association, re-negotiated once for MR; log:\n{}",
        scp.log()
    );
    // Idle for association_idle (2 s): released, not aborted.
    eventually("the idle association released", Duration::from_secs(10), || {
        scp.log().contains("Association Release")
    })
    .await;
    assert!(!scp.log().contains("Association Aborted"), "{}", scp.log());
    assert!(bus.dead_letters(0).await.is_empty());
    eprintln!("storescp: 6 instances in {elapsed:?}");
    fwd.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_storescp_is_down_the_destination_retries_then_delivers() {
    if have_storescp().is_none() {
        return;
    }
    let bus = Bus::new().await;
    let port = medbus_testkit::free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut sent = Vec::new();
    for n in 1..=3 {
        sent.push(bus.receive(uids::CT_IMAGE_STORAGE, "CT", n).await);
    }
    // One attempt per instance: the outage must not use it up (no association, no attempt).
    let fwd = bus.forward(addr, "STORESCP", |c| c.max_attempts = 1);
    let down = bus.status_events(1).await;
    assert_eq!(down.len(), 1, "{down:?}");
    assert_eq!(down[0].0, SystemEventKind::DestinationUnreachable.subject().to_string());
    assert_eq!(down[0].1["destination"], "pacs");
    assert_eq!(down[0].1["protocol"], "dicom");
    assert_eq!(down[0].1["addr"], addr.to_string());
    assert!(
        down[0].1["reason"].as_str().unwrap_or("").contains("cannot associate"),
        "{down:?}"
    );

    // Now the PACS comes up on that port.
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("in");
    let Some(scp) = StoreScp::start(&dir, port) else {
        fwd.stop().await;
        return;
    };
    eventually("3 files once storescp is up", Duration::from_secs(30), || {
        written(&dir).len() == 3
    })
    .await;
    let files = written(&dir);
    for s in &sent {
        assert_eq!(dataset_of(&files[&s.sop_instance]), s.dataset);
    }
    let up = bus.status_events(1).await;
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0].0, SystemEventKind::DestinationRecovered.subject().to_string());
    assert!(bus.dead_letters(0).await.is_empty());
    assert_eq!(scp.associations(), 1, "{}", scp.log());
    fwd.stop().await;
}

// ------------------------------------------------- our SCP, scripted --

/// Answers the n-th C-STORE (from 0) as `plan` says; records what it kept.
struct Scripted {
    calls: AtomicUsize,
    kept: std::sync::Mutex<Vec<ReceivedInstance>>,
    plan: Box<dyn Fn(usize) -> Result<(), SinkError> + Send + Sync>,
}

#[async_trait::async_trait]
impl InstanceSink for Scripted {
    async fn store(&self, instance: ReceivedInstance) -> Result<(), SinkError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        (self.plan)(n)?;
        self.kept.lock().unwrap().push(instance);
        Ok(())
    }
}

struct Peer {
    addr: SocketAddr,
    sink: Arc<Scripted>,
    shutdown: CancellationToken,
}

impl Peer {
    async fn start(plan: impl Fn(usize) -> Result<(), SinkError> + Send + Sync + 'static) -> Peer {
        Self::start_with(ScpOptions::default(), plan).await
    }

    async fn start_with(
        options: ScpOptions,
        plan: impl Fn(usize) -> Result<(), SinkError> + Send + Sync + 'static,
    ) -> Peer {
        Self::start_at("127.0.0.1:0".parse().unwrap(), options, plan).await
    }

    async fn start_at(
        at: SocketAddr,
        options: ScpOptions,
        plan: impl Fn(usize) -> Result<(), SinkError> + Send + Sync + 'static,
    ) -> Peer {
        let listener = tokio::net::TcpListener::bind(at).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sink = Arc::new(Scripted {
            calls: AtomicUsize::new(0),
            kept: Default::default(),
            plan: Box::new(plan),
        });
        let shutdown = CancellationToken::new();
        tokio::spawn(dicom::run(listener, options, sink.clone(), shutdown.clone()));
        Peer { addr, sink, shutdown }
    }

    fn calls(&self) -> usize {
        self.sink.calls.load(Ordering::SeqCst)
    }

    fn kept(&self) -> Vec<String> {
        self.sink
            .kept
            .lock()
            .unwrap()
            .iter()
            .map(|i| i.metadata.sop_instance_uid.clone())
            .collect()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_resources_is_retried_and_cannot_understand_dead_letters_with_the_status() {
    let peer = Peer::start(|n| match n {
        0 => Err(SinkError::Unavailable("disk full".into())),
        2 => Err(SinkError::Rejected("bad pixel data".into())),
        _ => Ok(()),
    })
    .await;
    let bus = Bus::new().await;
    let a = bus.receive(uids::CT_IMAGE_STORAGE, "CT", 1).await;
    let b = bus.receive(uids::CT_IMAGE_STORAGE, "CT", 2).await;
    let c = bus.receive(uids::CT_IMAGE_STORAGE, "CT", 3).await;
    let fwd = bus.forward(peer.addr, "MEDBUS", |_| {});
    eventually("a and c kept", Duration::from_secs(20), || peer.kept().len() == 2).await;
    // a: 0xA700 then success; b: 0xC000 at once (no retry); c: success. In backbone order.
    assert_eq!(peer.kept(), [a.sop_instance.clone(), c.sop_instance.clone()]);
    assert_eq!(peer.calls(), 4, "a twice, b once, c once");
    let dead = bus.dead_letters(1).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let h = &dead[0];
    assert_eq!(h[DLQ_STATUS], "0xC000");
    assert_eq!(h[DLQ_ERROR_COMMENT], "bad pixel data");
    let reason = &h[dead_letter::header::REASON];
    assert!(reason.contains("0xC000 (error: cannot understand)"), "{reason}");
    assert!(
        reason.contains("bad pixel data") && reason.contains("attempt 1"),
        "{reason}"
    );
    assert_eq!(
        h["Medbus-Raw-Sop-Instance-Uid"], b.sop_instance,
        "the instance is named"
    );
    fwd.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pacs_rejecting_our_association_dead_letters_nothing_and_is_reported_unreachable() {
    // The PACS knows itself as OTHER: every association calling MEDBUS is rejected (permanent).
    let options = ScpOptions {
        ae_title: "OTHER".into(),
        ..ScpOptions::default()
    };
    let peer = Peer::start_with(options, |_| Ok(())).await;
    let bus = Bus::new().await;
    bus.receive(uids::CT_IMAGE_STORAGE, "CT", 1).await;
    bus.receive(uids::CT_IMAGE_STORAGE, "CT", 2).await;
    let fwd = bus.forward(peer.addr, "MEDBUS", |c| c.max_attempts = 1);
    let down = bus.status_events(1).await;
    assert_eq!(down.len(), 1, "{down:?}");
    assert_eq!(down[0].0, SystemEventKind::DestinationUnreachable.subject().to_string());
    let reason = down[0].1["reason"].as_str().unwrap_or("").to_string();
    assert!(reason.contains("rejected the association (permanent)"), "{reason}");
    // Many rejections later (backoff 50–400 ms), still nothing dead-lettered or stored.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        bus.dead_letters(0).await.is_empty(),
        "a config mistake must not empty the queue"
    );
    assert_eq!(peer.calls(), 0);
    fwd.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_out_of_resources_dead_letters_after_max_attempts() {
    let peer = Peer::start(|_| Err(SinkError::Unavailable("storage offline".into()))).await;
    let bus = Bus::new().await;
    bus.receive(uids::CT_IMAGE_STORAGE, "CT", 1).await;
    let fwd = bus.forward(peer.addr, "MEDBUS", |c| c.max_attempts = 3);
    let dead = bus.dead_letters(1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(peer.calls(), 3);
    assert_eq!(dead[0][DLQ_STATUS], "0xA700");
    let reason = &dead[0][dead_letter::header::REASON];
    assert!(reason.contains("not stored after 3 attempts"), "{reason}");
    fwd.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_sop_class_and_a_missing_file_dead_letter_and_the_queue_moves_on() {
    let peer = Peer::start(|_| Ok(())).await;
    let bus = Bus::new().await;
    let first = bus.receive(uids::CT_IMAGE_STORAGE, "CT", 1).await;
    // A SOP class our SCP does not take: refused at negotiation.
    let odd = bus.receive("1.2.826.0.1.3680043.10.77.999", "OT", 2).await;
    let gone = bus.receive(uids::CT_IMAGE_STORAGE, "CT", 3).await;
    std::fs::remove_file(&gone.file).unwrap();
    let last = bus.receive(uids::CT_IMAGE_STORAGE, "CT", 4).await;
    let fwd = bus.forward(peer.addr, "MEDBUS", |_| {});
    eventually("first and last kept", Duration::from_secs(20), || {
        peer.kept().len() == 2
    })
    .await;
    assert_eq!(peer.kept(), [first.sop_instance.clone(), last.sop_instance.clone()]);
    let dead = bus.dead_letters(2).await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    let by_uid: BTreeMap<&str, &str> = dead
        .iter()
        .map(|h| {
            (
                h["Medbus-Raw-Sop-Instance-Uid"].as_str(),
                h[dead_letter::header::REASON].as_str(),
            )
        })
        .collect();
    let refused = by_uid[odd.sop_instance.as_str()];
    assert!(refused.contains("refused SOP class"), "{refused}");
    let missing = by_uid[gone.sop_instance.as_str()];
    assert!(missing.contains("is missing"), "{missing}");
    fwd.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_association_the_pacs_closed_while_idle_is_replaced_without_a_failed_attempt() {
    // The PACS drops associations idle for 300 ms; ours would keep them 30 s.
    let options = ScpOptions {
        idle_timeout: Duration::from_millis(300),
        ..ScpOptions::default()
    };
    let peer = Peer::start_with(options, |_| Ok(())).await;
    let bus = Bus::new().await;
    let first = bus.receive(uids::CT_IMAGE_STORAGE, "CT", 1).await;
    // max_attempts 1: a failed attempt would dead-letter the second instance.
    let fwd = bus.forward(peer.addr, "MEDBUS", |c| c.max_attempts = 1);
    eventually("the first kept", Duration::from_secs(20), || peer.kept().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let second = bus.receive(uids::CT_IMAGE_STORAGE, "CT", 2).await;
    eventually("the second kept", Duration::from_secs(20), || peer.kept().len() == 2).await;
    assert_eq!(peer.kept(), [first.sop_instance, second.sop_instance]);
    assert!(bus.dead_letters(0).await.is_empty());
    let events = bus.status_events(0).await;
    assert!(events.is_empty(), "not reported unreachable: {events:?}");
    fwd.stop().await;
}

// --------------------------------------------------------------- Orthanc --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orthanc_stores_every_instance_forwarded() {
    let Some(orthanc) = tokio::task::spawn_blocking(Orthanc::start).await.unwrap() else {
        return;
    };
    let bus = Bus::new().await;
    const N: u16 = 20;
    let mut uids_sent = BTreeSet::new();
    for n in 1..=N {
        uids_sent.insert(bus.receive(uids::CT_IMAGE_STORAGE, "CT", n).await.sop_instance);
    }
    let started = Instant::now();
    let fwd = bus.forward(orthanc.dicom_addr(), Orthanc::AE_TITLE, |_| {});
    let get = |path: &'static str| {
        let o = &orthanc;
        move || o.http_get(path)
    };
    let mut count = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while count < N as usize && Instant::now() < deadline {
        let body = tokio::task::block_in_place(get("/instances")).unwrap();
        count = serde_json::from_str::<Vec<String>>(&body).unwrap().len();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    let log = std::fs::read_to_string(orthanc.log()).unwrap_or_default();
    assert_eq!(count, N as usize, "instances in Orthanc; its log:\n{log}");
    let expanded = tokio::task::block_in_place(get("/instances?expand")).unwrap();
    let got: BTreeSet<String> = serde_json::from_str::<Vec<Value>>(&expanded)
        .unwrap()
        .iter()
        .map(|i| i["MainDicomTags"]["SOPInstanceUID"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(got, uids_sent);
    assert!(bus.dead_letters(0).await.is_empty());
    eprintln!("Orthanc: {N} instances in {elapsed:?}");
    fwd.stop().await;
}

// ------------------------------------------------------ slow link --

/// A TCP relay to `upstream` passing at most about `rate` bytes/s towards it: a slow
/// link. Its small receive buffer makes the sender's writes wait on the link rather
/// than vanish into buffers.
async fn slow_relay(upstream: SocketAddr, rate: usize) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(16).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = server.set_nodelay(true);
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_server, mut to_server) = server.into_split();
                let back = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                    let _ = to_client.shutdown().await;
                });
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = match from_client.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if to_server.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
                }
                let _ = to_server.shutdown().await;
                let _ = back.await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_instance_over_a_slow_link_is_delivered_not_timed_out() {
    if have_storescp().is_none() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("in");
    let Some(scp) = StoreScp::start(&dir, 0) else {
        return;
    };
    // About 16 MiB at about 4 MB/s: some 4–5 s on the wire, against a 2 s timeout. The
    // timeout bounds each PDU written and the answer after the last byte, not the whole.
    let relay = slow_relay(scp.addr, 4_000_000).await;
    let bus = Bus::new().await;
    let sent = bus.receive_sized(uids::CT_IMAGE_STORAGE, "CT", 1, 2900).await;
    let started = Instant::now();
    // One attempt: a timeout would dead-letter it.
    let fwd = bus.forward(relay, "STORESCP", |c| {
        c.timeout = Duration::from_secs(2);
        c.max_attempts = 1;
    });
    let delivered = Instant::now() + Duration::from_secs(60);
    while written(&dir).is_empty() && Instant::now() < delivered {
        let dead = bus.dead_letters(0).await;
        assert!(dead.is_empty(), "dead-lettered: {dead:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    let files = written(&dir);
    assert_eq!(files.len(), 1, "storescp log:\n{}", scp.log());
    // storescp writes the file as it receives; wait for the answer to be settled too.
    eventually("the file complete", Duration::from_secs(20), || {
        std::fs::read(&files[&sent.sop_instance]).is_ok_and(|b| file::read(&b).is_ok_and(|p| p.dataset == sent.dataset))
    })
    .await;
    assert!(
        elapsed > Duration::from_secs(3),
        "the link was not slow ({elapsed:?}): the test proves nothing"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(bus.dead_letters(0).await.is_empty());
    eprintln!("slow link: {} bytes in {elapsed:?}", sent.dataset.len());
    fwd.stop().await;
}

// ------------------------------------------------------ shutdown --

/// Runs the destination against `addr` (nothing listening) until it has tried the
/// instance (its unreachable report), then ends it: cleanly, or as a crash would.
async fn run_until_tried(bus: &Bus, addr: SocketAddr, crash: bool) {
    let fwd = bus.forward(addr, "MEDBUS", |_| {});
    let down = bus.status_events(1).await;
    assert_eq!(down.len(), 1, "tried, not dead-lettered: {down:?}");
    assert_eq!(down[0].0, SystemEventKind::DestinationUnreachable.subject().to_string());
    if crash {
        // Dropped mid-work: nothing settled, nothing given back (the ack wait expires).
        fwd.run.abort();
        let _ = fwd.run.await;
    } else {
        fwd.stop().await;
    }
}

/// More shutdowns than `max_deliver` while the PACS is down, then the PACS comes up:
/// the instance is delivered, not dead-lettered.
async fn restarts_never_dead_letter(bus: Bus) {
    // The consumer as an earlier version made it (backbone max_deliver): it is updated.
    drop(
        open_consumer(
            &bus.bb,
            ConsumerSpec::new("dicom_pacs", "medbus.ingress.dicom.>", &bus.cfg),
        )
        .await
        .unwrap(),
    );
    let port = medbus_testkit::free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let sent = bus.receive(uids::CT_IMAGE_STORAGE, "CT", 1).await;
    for _ in 0..bus.cfg.max_deliver + 2 {
        run_until_tried(&bus, addr, false).await;
    }
    assert!(bus.dead_letters(0).await.is_empty());
    let peer = Peer::start_at(addr, ScpOptions::default(), |_| Ok(())).await;
    let fwd = bus.forward(addr, "MEDBUS", |_| {});
    let deadline = Instant::now() + Duration::from_secs(30);
    while peer.kept().is_empty() {
        let dead = bus.dead_letters(0).await;
        assert!(dead.is_empty(), "dead-lettered: {dead:?}");
        assert!(Instant::now() < deadline, "not kept within 30 s once the PACS is up");
    }
    // At least once: a redelivery (an ack wait run out on a loaded machine) may send it twice.
    let kept: BTreeSet<String> = peer.kept().into_iter().collect();
    assert_eq!(kept, BTreeSet::from([sent.sop_instance]));
    assert!(bus.dead_letters(0).await.is_empty());
    fwd.stop().await;
}

/// `max_deliver` 2; an ack wait of `ack_wait` (how soon a crashed run's deliveries come again).
fn few_deliveries(url: &str, ack_wait: Duration) -> BackboneConfig {
    BackboneConfig {
        url: url.into(),
        ack_wait,
        max_deliver: 2,
        ..BackboneConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdowns_while_the_pacs_is_down_never_dead_letter_embedded() {
    restarts_never_dead_letter(Bus::with(few_deliveries("embedded", Duration::from_secs(5))).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdowns_while_the_pacs_is_down_never_dead_letter_jetstream() {
    let Some(nats) = medbus_testkit::NatsServer::start() else {
        return;
    };
    restarts_never_dead_letter(Bus::with(few_deliveries(&nats.url(), Duration::from_secs(5))).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_crashing_on_an_instance_every_time_still_dead_letters_it() {
    let bus = Bus::with(few_deliveries("embedded", Duration::from_secs(2))).await;
    let addr: SocketAddr = ([127, 0, 0, 1], medbus_testkit::free_port()).into();
    let sent = bus.receive(uids::CT_IMAGE_STORAGE, "CT", 1).await;
    // Shutdowns do not count; crashes do: max_deliver (2) of them dead-letter it.
    for crash in [false, false, true, false, true] {
        run_until_tried(&bus, addr, crash).await;
    }
    let fwd = bus.forward(addr, "MEDBUS", |_| {});
    let dead = bus.dead_letters(1).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["Medbus-Raw-Sop-Instance-Uid"], sent.sop_instance);
    let reason = &dead[0][dead_letter::header::REASON];
    assert!(
        reason.contains("not settled after 2 deliveries") && reason.contains("3 given back at shutdown"),
        "{reason}"
    );
    fwd.stop().await;
}
