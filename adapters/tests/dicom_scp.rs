//! The DICOM storage SCP over loopback, driven by peers nobody here wrote
//! (DCMTK's `echoscu` and `storescu`) and by raw bytes: echo, stores of CT, MR,
//! RLE and deflated instances with their metadata, AE title refusals, unknown
//! SOP classes, sink failures, malformed PDUs and data sets, the association
//! limit, the idle and association timeouts; then the production sink on the
//! embedded backbone (file at the UID path, envelope, resend kept once).
//!
//! Without DCMTK the tests needing it print `SKIPPED:` and pass, unless
//! `MEDBUS_REQUIRE_SERVICES=1` (scripts/test.sh), which makes them fail.
//! `MEDBUS_TEST_DCMTK_BIN=<dir>` points at the DCMTK binaries (default: `PATH`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use dicom_core::value::{PixelFragmentSequence, Value};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::pdu::{PDataValue, PDataValueType};
use dicom_ul::{ClientAssociationOptions, Pdu};
use medbus_adapters::dicom::{
    self, FileAndBackboneSink, InstanceMetadata, InstanceSink, ReceivedInstance, ScpOptions, SinkError,
};
use medbus_bus::backbone::{self, open_consumer, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::config::BackboneConfig;
use medbus_bus::envelope::{Body, Envelope};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------- the rig --

/// Records every instance; fails every store while `fail` holds an error.
#[derive(Default)]
struct MemorySink {
    got: Mutex<Vec<ReceivedInstance>>,
    fail: Mutex<Option<SinkError>>,
}

impl MemorySink {
    fn got(&self) -> Vec<ReceivedInstance> {
        self.got.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl InstanceSink for MemorySink {
    async fn store(&self, instance: ReceivedInstance) -> Result<(), SinkError> {
        if let Some(e) = self.fail.lock().unwrap().clone() {
            return Err(e);
        }
        self.got.lock().unwrap().push(instance);
        Ok(())
    }
}

struct Rig {
    addr: SocketAddr,
    shutdown: CancellationToken,
    run: tokio::task::JoinHandle<()>,
}

impl Rig {
    async fn start(options: ScpOptions, sink: Arc<dyn InstanceSink>) -> Rig {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let run = tokio::spawn(dicom::run(listener, options, sink, shutdown.clone()));
        Rig { addr, shutdown, run }
    }

    /// Stops the SCP and checks it ends (it did not crash or hang on the way).
    async fn stop(self) {
        assert!(!self.run.is_finished(), "the SCP ended before shutdown");
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.run)
            .await
            .expect("SCP stops at shutdown")
            .expect("SCP task did not panic");
    }
}

// ------------------------------------------------------------- DCMTK tools --

/// Where the DCMTK binaries are: `MEDBUS_TEST_DCMTK_BIN`, else `PATH`.
fn dcmtk_bin(tool: &str) -> PathBuf {
    match std::env::var_os("MEDBUS_TEST_DCMTK_BIN") {
        Some(dir) => Path::new(&dir).join(tool),
        None => PathBuf::from(tool),
    }
}

/// Some(()) when DCMTK runs here; else skips (or panics under MEDBUS_REQUIRE_SERVICES=1).
fn dcmtk() -> Option<()> {
    let echoscu = dcmtk_bin("echoscu");
    medbus_testkit::peers::tool(
        "DCMTK (echoscu, storescu)",
        echoscu.to_str().unwrap_or("echoscu"),
        &["--version"],
        "apt-get install dcmtk",
    )
}

/// Runs a DCMTK tool to its end (its own timeouts bound it). TCP_NODELAY=1: Debian's
/// DCMTK otherwise waits ~40 ms per message on Nagle.
async fn run_tool(tool: &str, args: Vec<String>) -> Output {
    let program = dcmtk_bin(tool);
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(&program)
            .args(&args)
            .env("TCP_NODELAY", "1")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{tool} {args:?} did not finish in 60 s"))
    .unwrap_or_else(|e| panic!("{tool} does not run: {e}"));
    out
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `echoscu` from `calling` to `called` at `addr`.
async fn echoscu(addr: SocketAddr, calling: &str, called: &str) -> Output {
    let args = ["-aet", calling, "-aec", called, "-to", "10", "-ta", "10", "-td", "10"]
        .iter()
        .map(|s| s.to_string())
        .chain([addr.ip().to_string(), addr.port().to_string()])
        .collect();
    run_tool("echoscu", args).await
}

/// `storescu -v` of `files` from `calling` to MEDBUS at `addr`.
async fn storescu(addr: SocketAddr, calling: &str, files: &[&Path]) -> Output {
    storescu_with(addr, calling, &[], files).await
}

/// `storescu -v <extra>` of `files` from `calling` to MEDBUS at `addr`.
async fn storescu_with(addr: SocketAddr, calling: &str, extra: &[&str], files: &[&Path]) -> Output {
    let mut args: Vec<String> = [
        "-v", "-aet", calling, "-aec", "MEDBUS", "-to", "10", "-ta", "10", "-td", "10",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    args.push(addr.ip().to_string());
    args.push(addr.port().to_string());
    args.extend(files.iter().map(|f| f.display().to_string()));
    run_tool("storescu", args).await
}

// -------------------------------------------------------------- instances --

/// What a test instance holds.
struct Spec<'a> {
    sop_class: &'a str,
    sop_instance: &'a str,
    study: &'a str,
    series: &'a str,
    modality: &'a str,
    transfer_syntax: &'a str,
}

impl Spec<'_> {
    fn ct(sop_instance: &str) -> Spec<'_> {
        Spec {
            sop_class: uids::CT_IMAGE_STORAGE,
            sop_instance,
            study: "1.2.826.0.1.3680043.10.99.1",
            series: "1.2.826.0.1.3680043.10.99.1.1",
            modality: "CT",
            transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN,
        }
    }
}

/// Writes a small Part-10 instance (4×4 pixels; encapsulated for a compressed syntax).
fn instance_file(dir: &Path, spec: &Spec<'_>) -> PathBuf {
    let s = |tag, vr, v: &str| DataElement::new(tag, vr, PrimitiveValue::from(v));
    let u = |tag, v: u16| DataElement::new(tag, VR::US, PrimitiveValue::from(v));
    let compressed = spec.transfer_syntax != uids::EXPLICIT_VR_LITTLE_ENDIAN
        && spec.transfer_syntax != uids::IMPLICIT_VR_LITTLE_ENDIAN;
    let pixels = if compressed {
        // Fragments as a codec would leave them; nothing here decodes them.
        let fragment = vec![0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
        DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            Value::PixelSequence(PixelFragmentSequence::new(vec![0u32], vec![fragment])),
        )
    } else {
        DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::from(vec![0u8; 32]))
    };
    let obj = InMemDicomObject::from_element_iter([
        s(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100"),
        s(tags::SOP_CLASS_UID, VR::UI, spec.sop_class),
        s(tags::SOP_INSTANCE_UID, VR::UI, spec.sop_instance),
        s(tags::STUDY_DATE, VR::DA, "20260102"),
        s(tags::ACCESSION_NUMBER, VR::SH, "ACC42"),
        s(tags::MODALITY, VR::CS, spec.modality),
        s(tags::PATIENT_NAME, VR::PN, "Doe^Jane"),
        s(tags::PATIENT_ID, VR::LO, "MRN123"),
        s(tags::BODY_PART_EXAMINED, VR::CS, "CHEST"),
        s(tags::STUDY_INSTANCE_UID, VR::UI, spec.study),
        s(tags::SERIES_INSTANCE_UID, VR::UI, spec.series),
        s(tags::NUMBER_OF_FRAMES, VR::IS, "1"),
        u(tags::SAMPLES_PER_PIXEL, 1),
        s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        u(tags::ROWS, 4),
        u(tags::COLUMNS, 4),
        u(tags::BITS_ALLOCATED, 16),
        u(tags::BITS_STORED, 12),
        u(tags::HIGH_BIT, 11),
        u(tags::PIXEL_REPRESENTATION, 0),
        pixels,
    ]);
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .media_storage_sop_class_uid(spec.sop_class)
                .media_storage_sop_instance_uid(spec.sop_instance)
                .transfer_syntax(spec.transfer_syntax),
        )
        .unwrap();
    let path = dir.join(format!("{}.dcm", spec.sop_instance));
    file.write_to_file(&path).unwrap();
    path
}

// ------------------------------------------------------------------ tests --

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_succeeds_and_a_wrong_called_ae_title_is_rejected() {
    if dcmtk().is_none() {
        return;
    }
    let sink = Arc::new(MemorySink::default());
    let rig = Rig::start(ScpOptions::default(), sink).await;
    let ok = echoscu(rig.addr, "ECHOSCU", "MEDBUS").await;
    assert!(ok.status.success(), "echo: {}", text(&ok));
    let wrong = echoscu(rig.addr, "ECHOSCU", "NOTMEDBUS").await;
    assert!(
        !wrong.status.success(),
        "a wrong called AE title was accepted: {}",
        text(&wrong)
    );
    assert!(
        text(&wrong).contains("Called AE Title Not Recognized"),
        "reason given: {}",
        text(&wrong)
    );
    let again = echoscu(rig.addr, "ECHOSCU", "MEDBUS").await;
    assert!(again.status.success(), "echo after a refusal: {}", text(&again));
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ct_mr_compressed_and_deflated_instances_are_stored_with_their_metadata() {
    if dcmtk().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ct = instance_file(dir.path(), &Spec::ct("1.2.826.0.1.3680043.10.99.1.1.1"));
    let mr = instance_file(
        dir.path(),
        &Spec {
            sop_class: uids::MR_IMAGE_STORAGE,
            sop_instance: "1.2.826.0.1.3680043.10.99.2.1.1",
            study: "1.2.826.0.1.3680043.10.99.2",
            series: "1.2.826.0.1.3680043.10.99.2.1",
            modality: "MR",
            transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN,
        },
    );
    let rle = instance_file(
        dir.path(),
        &Spec {
            transfer_syntax: uids::RLE_LOSSLESS,
            ..Spec::ct("1.2.826.0.1.3680043.10.99.1.1.2")
        },
    );
    let sink = Arc::new(MemorySink::default());
    let rig = Rig::start(ScpOptions::default(), sink.clone()).await;
    let out = storescu(rig.addr, "MODALITY", &[&ct, &mr]).await;
    assert!(out.status.success(), "storescu: {}", text(&out));
    assert!(!text(&out).contains("Store Failed"), "{}", text(&out));
    // storescu proposes a compressed syntax only when told to (-xr: RLE Lossless first).
    let out = storescu_with(rig.addr, "MODALITY", &["-xr"], &[&rle]).await;
    assert!(out.status.success(), "storescu -xr: {}", text(&out));
    assert!(!text(&out).contains("Store Failed"), "{}", text(&out));
    // DCMTK logs the no-op "conversion" of a file already in the negotiated syntax.
    assert!(
        text(&out).contains("RLE Lossless -> RLE Lossless"),
        "sent as-is: {}",
        text(&out)
    );
    // Deflated Explicit VR Little Endian (-xd): storescu deflates on the way, the SCP inflates to read.
    let deflated = instance_file(dir.path(), &Spec::ct("1.2.826.0.1.3680043.10.99.1.1.10"));
    let out = storescu_with(rig.addr, "MODALITY", &["-xd"], &[&deflated]).await;
    assert!(out.status.success(), "storescu -xd: {}", text(&out));
    assert!(!text(&out).contains("Store Failed"), "{}", text(&out));

    let got = sink.got();
    assert_eq!(got.len(), 4, "four instances reached the sink: {}", text(&out));
    let deflated_in = &got[3];
    assert_eq!(deflated_in.transfer_syntax, uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN);
    assert_eq!(
        deflated_in.metadata.sop_instance_uid,
        "1.2.826.0.1.3680043.10.99.1.1.10"
    );
    assert_eq!(deflated_in.metadata.patient_id.as_deref(), Some("MRN123"));
    assert_eq!(deflated_in.metadata.body_part_examined.as_deref(), Some("CHEST"));
    let ct_in = &got[0];
    assert_eq!(ct_in.calling_ae, "MODALITY");
    assert_eq!(ct_in.called_ae, "MEDBUS");
    let m = &ct_in.metadata;
    assert_eq!(
        m,
        &InstanceMetadata {
            patient_id: Some("MRN123".into()),
            patient_name: Some("Doe^Jane".into()),
            study_instance_uid: "1.2.826.0.1.3680043.10.99.1".into(),
            series_instance_uid: "1.2.826.0.1.3680043.10.99.1.1".into(),
            sop_instance_uid: "1.2.826.0.1.3680043.10.99.1.1.1".into(),
            sop_class_uid: uids::CT_IMAGE_STORAGE.into(),
            modality: Some("CT".into()),
            accession_number: Some("ACC42".into()),
            study_date: Some("20260102".into()),
            body_part_examined: Some("CHEST".into()),
            number_of_frames: Some(1),
            transfer_syntax_uid: ct_in.transfer_syntax.clone(),
            // Not in the test's data sets: study time, zone, description, numbers.
            ..Default::default()
        }
    );
    assert!(
        [uids::EXPLICIT_VR_LITTLE_ENDIAN, uids::IMPLICIT_VR_LITTLE_ENDIAN].contains(&ct_in.transfer_syntax.as_str()),
        "uncompressed syntax negotiated: {}",
        ct_in.transfer_syntax
    );
    assert_eq!(got[1].metadata.modality.as_deref(), Some("MR"));
    assert_eq!(got[1].metadata.sop_class_uid, uids::MR_IMAGE_STORAGE);
    assert_eq!(got[1].metadata.study_instance_uid, "1.2.826.0.1.3680043.10.99.2");

    // The compressed instance is kept as sent: same syntax, fragments byte for byte.
    let rle_in = &got[2];
    assert_eq!(rle_in.transfer_syntax, uids::RLE_LOSSLESS);
    assert_eq!(rle_in.metadata.transfer_syntax_uid, uids::RLE_LOSSLESS);
    let sent = std::fs::read(&rle).unwrap();
    assert!(
        dataset_of(&sent) == rle_in.dataset,
        "the compressed data set changed on the way"
    );

    // The Part-10 bytes read back as the same instance.
    let part10 = ct_in.to_part10().unwrap();
    assert_eq!(&part10[128..132], b"DICM");
    let back = dicom_object::OpenFileOptions::new()
        .from_reader(&part10[128..])
        .expect("Part-10 bytes read back");
    assert_eq!(back.meta().media_storage_sop_instance_uid(), m.sop_instance_uid);
    let pn = back.element(tags::PATIENT_NAME).unwrap().to_str().unwrap();
    assert_eq!(pn.trim(), "Doe^Jane");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calling_ae_title_off_the_allow_list_is_rejected_and_the_next_association_served() {
    if dcmtk().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ct = instance_file(dir.path(), &Spec::ct("1.2.826.0.1.3680043.10.99.1.1.3"));
    let sink = Arc::new(MemorySink::default());
    let options = ScpOptions {
        allowed_calling_aes: vec!["CT_ROOM_1".into()],
        ..Default::default()
    };
    let rig = Rig::start(options, sink.clone()).await;
    let refused = storescu(rig.addr, "INTRUDER", &[&ct]).await;
    assert!(!refused.status.success(), "INTRUDER was let in: {}", text(&refused));
    assert!(
        text(&refused).contains("Calling AE Title Not Recognized"),
        "reason given: {}",
        text(&refused)
    );
    assert!(sink.got().is_empty());
    let allowed = storescu(rig.addr, "CT_ROOM_1", &[&ct]).await;
    assert!(allowed.status.success(), "allowed AE: {}", text(&allowed));
    assert_eq!(sink.got().len(), 1);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_sop_class_is_not_accepted() {
    if dcmtk().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // RT Plan: a storage SOP class the SCP does not take.
    let rt = instance_file(
        dir.path(),
        &Spec {
            sop_class: uids::RT_PLAN_STORAGE,
            modality: "RTPLAN",
            ..Spec::ct("1.2.826.0.1.3680043.10.99.1.1.4")
        },
    );
    let sink = Arc::new(MemorySink::default());
    let rig = Rig::start(ScpOptions::default(), sink.clone()).await;
    let out = storescu(rig.addr, "MODALITY", &[&rt]).await;
    assert!(!out.status.success(), "RT Plan was stored: {}", text(&out));
    // Refused at negotiation (no presentation context), not by some later failure.
    let said = text(&out).to_lowercase();
    assert!(said.contains("presentation context"), "{said}");
    assert!(sink.got().is_empty());
    let echo = echoscu(rig.addr, "ECHOSCU", "MEDBUS").await;
    assert!(echo.status.success(), "echo afterwards: {}", text(&echo));
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_failure_is_a_failure_status_with_the_reason() {
    if dcmtk().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ct = instance_file(dir.path(), &Spec::ct("1.2.826.0.1.3680043.10.99.1.1.5"));
    let sink = Arc::new(MemorySink::default());
    *sink.fail.lock().unwrap() = Some(SinkError::Unavailable("backbone: not reachable".into()));
    let rig = Rig::start(ScpOptions::default(), sink.clone()).await;
    let out = storescu(rig.addr, "MODALITY", &[&ct]).await;
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("Refused: OutOfResources"), "status A700 reported: {all}");
    assert!(sink.got().is_empty());
    // Once the sink recovers, the same instance goes through.
    *sink.fail.lock().unwrap() = None;
    let again = storescu(rig.addr, "MODALITY", &[&ct]).await;
    assert!(
        again.status.success() && !text(&again).contains("Store Failed"),
        "{}",
        text(&again)
    );
    assert_eq!(sink.got().len(), 1);
    rig.stop().await;
}

// ---------------------------------------------------------- raw protocol --

/// An association from our own dicom-ul client, for messages DCMTK would never send.
async fn client(addr: SocketAddr) -> dicom_ul::association::client::AsyncClientAssociation<TcpStream> {
    ClientAssociationOptions::new()
        .calling_ae_title("RAWSCU")
        .called_ae_title("MEDBUS")
        .with_presentation_context(uids::CT_IMAGE_STORAGE, vec![uids::EXPLICIT_VR_LITTLE_ENDIAN])
        .establish_async(addr)
        .await
        .expect("association")
}

fn store_rq(message_id: u16, sop_instance: &str) -> Vec<u8> {
    let pad = |s: &str| {
        let mut s = s.to_string();
        if s.len() % 2 == 1 {
            s.push('\0');
        }
        PrimitiveValue::from(s)
    };
    let cmd = InMemDicomObject::command_from_element_iter([
        DataElement::new(tags::AFFECTED_SOP_CLASS_UID, VR::UI, pad(uids::CT_IMAGE_STORAGE)),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(0x0001u16)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(message_id)),
        DataElement::new(tags::PRIORITY, VR::US, PrimitiveValue::from(0u16)),
        DataElement::new(tags::COMMAND_DATA_SET_TYPE, VR::US, PrimitiveValue::from(0u16)),
        DataElement::new(tags::AFFECTED_SOP_INSTANCE_UID, VR::UI, pad(sop_instance)),
    ]);
    let mut out = Vec::new();
    let ts = TransferSyntaxRegistry.get(uids::IMPLICIT_VR_LITTLE_ENDIAN).unwrap();
    cmd.write_dataset_with_ts(&mut out, ts).unwrap();
    out
}

fn pdv(pc: u8, value_type: PDataValueType, data: Vec<u8>) -> Pdu {
    Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: pc,
            value_type,
            is_last: true,
            data,
        }],
    }
}

/// (Status, Error Comment) of a response PDU.
fn status_of(pdu: Pdu) -> (u16, String) {
    let Pdu::PData { data } = pdu else {
        panic!("expected P-DATA, got {pdu:?}");
    };
    let ts = TransferSyntaxRegistry.get(uids::IMPLICIT_VR_LITTLE_ENDIAN).unwrap();
    let obj = InMemDicomObject::read_dataset_with_ts(&data[0].data[..], ts).unwrap();
    let status = obj.element(tags::STATUS).unwrap().to_int::<u16>().unwrap();
    let comment = obj
        .element_opt(tags::ERROR_COMMENT)
        .unwrap()
        .map(|e| e.to_str().unwrap().trim().to_string())
        .unwrap_or_default();
    (status, comment)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_data_sets_get_a_failure_status_and_the_association_goes_on() {
    let sink = Arc::new(MemorySink::default());
    let rig = Rig::start(ScpOptions::default(), sink.clone()).await;
    let mut a = client(rig.addr).await;
    let pc = a.presentation_contexts()[0].id;
    let sop = "1.2.826.0.1.3680043.10.99.1.1.6";

    // Garbage, a length running past the end, and nothing at all.
    let garbage = vec![0xFFu8; 37];
    let mut overlong = vec![0x10, 0x00, 0x10, 0x00, b'P', b'N', 0xFF, 0x7F];
    overlong.extend_from_slice(b"Doe^Jane");
    for (i, data) in [garbage, overlong, Vec::new()].into_iter().enumerate() {
        let id = i as u16 + 1;
        a.send(&pdv(pc, PDataValueType::Command, store_rq(id, sop)))
            .await
            .unwrap();
        a.send(&pdv(pc, PDataValueType::Data, data)).await.unwrap();
        let (status, comment) = status_of(a.receive().await.unwrap());
        assert_eq!(status, 0xC000, "case {i}: {comment}");
        assert!(!comment.is_empty(), "case {i}: a reason is given");
    }
    // A well-formed data set whose SOP Instance UID is not the command's.
    let dir = tempfile::tempdir().unwrap();
    let file = instance_file(dir.path(), &Spec::ct("1.2.826.0.1.3680043.10.99.1.1.7"));
    let bytes = std::fs::read(&file).unwrap();
    let dataset = dataset_of(&bytes);
    a.send(&pdv(pc, PDataValueType::Command, store_rq(9, sop)))
        .await
        .unwrap();
    a.send(&pdv(pc, PDataValueType::Data, dataset.clone())).await.unwrap();
    let (status, comment) = status_of(a.receive().await.unwrap());
    assert_eq!(status, 0xC000);
    assert!(comment.contains("SOP Instance UID"), "{comment}");
    // And the right one is stored, on the same association.
    a.send(&pdv(
        pc,
        PDataValueType::Command,
        store_rq(10, "1.2.826.0.1.3680043.10.99.1.1.7"),
    ))
    .await
    .unwrap();
    a.send(&pdv(pc, PDataValueType::Data, dataset)).await.unwrap();
    assert_eq!(status_of(a.receive().await.unwrap()).0, 0x0000);
    a.release().await.unwrap();
    assert_eq!(sink.got().len(), 1);
    rig.stop().await;
}

/// The data set of a Part-10 file written by `instance_file` (Explicit VR LE meta and data set).
fn dataset_of(part10: &[u8]) -> Vec<u8> {
    // Group length (0002,0000) UL sits right after the magic: 132 + 12 + its value.
    let group_len = u32::from_le_bytes([part10[140], part10[141], part10[142], part10[143]]) as usize;
    part10[144 + group_len..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_truncated_and_out_of_order_pdus_do_not_stop_the_scp() {
    let sink = Arc::new(MemorySink::default());
    let options = ScpOptions {
        idle_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let rig = Rig::start(options, sink.clone()).await;
    let cases: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        // A-ASSOCIATE-RQ header claiming 1 GiB, then the connection ends.
        vec![0x01, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x01],
        // A-ASSOCIATE-RQ cut short in its variable items.
        {
            let mut v = vec![0x01, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x01, 0x00, 0x00];
            v.extend_from_slice(b"MEDBUS          RAWSCU          ");
            v.extend_from_slice(&[0u8; 32]);
            v.extend_from_slice(&[0x10, 0x00, 0x00, 0x15]);
            v
        },
        // P-DATA before any association.
        vec![0x04, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x02, 0x01, 0x03],
        // Unknown PDU type.
        vec![0x7F, 0x00, 0x00, 0x00, 0x00, 0x02, 0xAB, 0xCD],
        Vec::new(),
    ];
    for bytes in cases {
        let mut s = TcpStream::connect(rig.addr).await.unwrap();
        let _ = s.write_all(&bytes).await;
        let _ = s.shutdown().await;
        // The SCP closes (after a reject or abort, or at the idle timeout); it never hangs.
        let mut sink_buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink_buf))
            .await
            .expect("the SCP closes a bad connection")
            .ok();
    }
    // Inside an association: a data fragment with no command, then a fragment on an unknown context.
    for bad in [
        pdv(1, PDataValueType::Data, vec![1, 2, 3]),
        pdv(99, PDataValueType::Command, store_rq(1, "1.2.3")),
        pdv(1, PDataValueType::Command, vec![0xFF; 11]),
    ] {
        let mut a = client(rig.addr).await;
        a.send(&bad).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), a.receive())
            .await
            .expect("an answer");
        assert!(
            matches!(answer, Ok(Pdu::AbortRQ { .. }) | Err(_)),
            "a protocol violation aborts: {answer:?}"
        );
    }
    // Still serving.
    let mut a = client(rig.addr).await;
    let pc = a.presentation_contexts()[0].id;
    let dir = tempfile::tempdir().unwrap();
    let file = instance_file(dir.path(), &Spec::ct("1.2.826.0.1.3680043.10.99.1.1.8"));
    a.send(&pdv(
        pc,
        PDataValueType::Command,
        store_rq(1, "1.2.826.0.1.3680043.10.99.1.1.8"),
    ))
    .await
    .unwrap();
    a.send(&pdv(
        pc,
        PDataValueType::Data,
        dataset_of(&std::fs::read(&file).unwrap()),
    ))
    .await
    .unwrap();
    assert_eq!(status_of(a.receive().await.unwrap()).0, 0x0000);
    a.release().await.unwrap();
    assert_eq!(sink.got().len(), 1);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_association_is_closed_and_one_over_the_limit_is_rejected() {
    let sink = Arc::new(MemorySink::default());
    let options = ScpOptions {
        max_associations: 1,
        idle_timeout: Duration::from_millis(700),
        ..Default::default()
    };
    let rig = Rig::start(options, sink).await;
    let mut first = client(rig.addr).await;
    let opened = std::time::Instant::now();
    // The only slot is taken: the next association is rejected (transient).
    let second = ClientAssociationOptions::new()
        .calling_ae_title("RAWSCU")
        .called_ae_title("MEDBUS")
        .with_abstract_syntax(uids::VERIFICATION)
        .establish_async(rig.addr)
        .await;
    let err = match second {
        Ok(_) => panic!("a second association was accepted over the limit of one"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("rejected"), "{err}");
    // The idle one is aborted after the idle timeout, which frees the slot.
    let ended = tokio::time::timeout(Duration::from_secs(5), first.receive())
        .await
        .expect("closed in time");
    assert!(matches!(ended, Ok(Pdu::AbortRQ { .. }) | Err(_)), "{ended:?}");
    // Closed by the idle timeout, not at once.
    let after = opened.elapsed();
    assert!(
        after >= Duration::from_millis(600),
        "closed after {after:?}, before the 700 ms idle timeout"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let third = client(rig.addr).await;
    third.release().await.unwrap();
    rig.stop().await;
}

// ------------------------------------------------- file + backbone sink --

async fn kept(bb: &SharedBackbone, name: &str) -> Vec<Delivery> {
    let mut c = open_consumer(
        bb,
        ConsumerSpec::new(name, "medbus.ingress.dicom.>", &BackboneConfig::default()),
    )
    .await
    .unwrap();
    let mut all = Vec::new();
    loop {
        let batch = c.fetch(100, Duration::from_millis(300)).await.unwrap();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescu_to_file_and_backbone_keeps_the_file_and_the_envelope_once() {
    if dcmtk().is_none() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let backbone = backbone::connect(&BackboneConfig::default(), data.path())
        .await
        .unwrap();
    let root = data.path().join("dicom");
    let sink = Arc::new(FileAndBackboneSink::new(&root, "modalities", backbone.clone()).unwrap());
    let rig = Rig::start(ScpOptions::default(), sink).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::ct("1.2.826.0.1.3680043.10.99.1.1.9");
    let ct = instance_file(dir.path(), &spec);
    let out = storescu(rig.addr, "MODALITY", &[&ct]).await;
    assert!(
        out.status.success() && !text(&out).contains("Store Failed"),
        "{}",
        text(&out)
    );

    let path = root
        .join(spec.study)
        .join(spec.series)
        .join(format!("{}.dcm", spec.sop_instance));
    let first = std::fs::read(&path).expect("file at the UID path");
    assert_eq!(&first[128..132], b"DICM");
    let stored = dicom_object::open_file(&path).expect("a readable Part-10 file");
    assert_eq!(stored.meta().media_storage_sop_instance_uid(), spec.sop_instance);

    // A resend: same file, and the backbone keeps one message.
    let again = storescu(rig.addr, "MODALITY", &[&ct]).await;
    assert!(
        again.status.success() && !text(&again).contains("Store Failed"),
        "{}",
        text(&again)
    );
    assert_eq!(std::fs::read(&path).unwrap(), first, "a resend writes the same bytes");
    let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
    assert_eq!(leftovers, 1, "no temp files left");

    let msgs = kept(&backbone, "dicomcheck").await;
    assert_eq!(msgs.len(), 1, "kept once");
    let d = &msgs[0];
    assert_eq!(d.subject, "medbus.ingress.dicom.modalities");
    assert_eq!(
        d.dedupe_id.as_deref(),
        Some("dicom:modalities:1.2.826.0.1.3680043.10.99.1.1.9")
    );
    let env = Envelope::from_wire(&d.headers, d.payload.clone()).unwrap();
    assert_eq!(env.kind, "dicom.instance");
    assert_eq!(env.source.protocol, "dicom");
    let Body::Raw { headers, bytes } = &env.body else {
        panic!("raw body expected: {:?}", env.body);
    };
    assert_eq!(headers["Content-Type"], "application/json");
    assert_eq!(headers["Calling-Ae"], "MODALITY");
    assert_eq!(
        headers["File"],
        format!("{}/{}/{}.dcm", spec.study, spec.series, spec.sop_instance)
    );
    assert_eq!(headers["File-Bytes"], first.len().to_string());
    let meta: InstanceMetadata = serde_json::from_slice(bytes).unwrap();
    assert_eq!(meta.sop_instance_uid, spec.sop_instance);
    assert_eq!(meta.patient_id.as_deref(), Some("MRN123"));
    assert_eq!(meta.accession_number.as_deref(), Some("ACC42"));
    rig.stop().await;
}

#[tokio::test]
async fn file_and_backbone_sink_refuses_a_uid_that_is_not_a_uid() {
    let data = tempfile::tempdir().unwrap();
    let backbone = backbone::connect(&BackboneConfig::default(), data.path())
        .await
        .unwrap();
    let root = data.path().join("dicom");
    let sink = FileAndBackboneSink::new(&root, "modalities", backbone.clone()).unwrap();
    let instance = ReceivedInstance {
        calling_ae: "MODALITY".into(),
        called_ae: "MEDBUS".into(),
        peer: "127.0.0.1:4000".parse().unwrap(),
        metadata: InstanceMetadata {
            study_instance_uid: "1.2".into(),
            series_instance_uid: "../../../etc".into(),
            sop_instance_uid: "1.2.3".into(),
            sop_class_uid: uids::CT_IMAGE_STORAGE.into(),
            transfer_syntax_uid: uids::EXPLICIT_VR_LITTLE_ENDIAN.into(),
            ..Default::default()
        },
        dataset: Bytes::from_static(b""),
        transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN.into(),
    };
    let err = sink.store(instance).await.unwrap_err();
    assert!(matches!(err, SinkError::Rejected(_)), "{err:?}");
    assert_eq!(err.status(), 0xC000);
    assert!(
        !root.exists() || std::fs::read_dir(&root).unwrap().count() == 0,
        "nothing written"
    );
    assert!(kept(&backbone, "nothing").await.is_empty(), "nothing published");
    assert!(FileAndBackboneSink::new(&root, "bad.channel", backbone).is_err());
}

#[test]
fn fuzz_seeds_written_by_dcmtk_read_in_each_syntax() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/dicom_dataset");
    let read = |name: &str, ts: &str| {
        let bytes = std::fs::read(seeds.join(name)).unwrap();
        dicom::dataset::read_metadata(&bytes, ts)
    };
    for (name, ts) in [
        ("ct_explicit_le", uids::EXPLICIT_VR_LITTLE_ENDIAN),
        ("ct_implicit_le", uids::IMPLICIT_VR_LITTLE_ENDIAN),
        ("ct_deflated", uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN),
    ] {
        let m = read(name, ts).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.sop_instance_uid, "1.2.826.0.1.3680043.10.99.1.1.1", "{name}");
        assert_eq!(m.patient_name.as_deref(), Some("Doe^Jane"), "{name}");
        assert_eq!(m.number_of_frames, Some(1), "{name}");
    }
    assert!(read("ct_explicit_le_truncated", uids::EXPLICIT_VR_LITTLE_ENDIAN).is_err());
    let cmd = std::fs::read(seeds.join("c_store_rq_command")).unwrap();
    let c = dicom::dimse::read_command(&cmd).unwrap();
    assert_eq!((c.field, c.message_id, c.has_data_set), (0x0001, 7, true));
}

fn echo_rq(message_id: u16) -> Vec<u8> {
    let cmd = InMemDicomObject::command_from_element_iter([
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(uids::VERIFICATION),
        ),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(0x0030u16)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(message_id)),
        DataElement::new(tags::COMMAND_DATA_SET_TYPE, VR::US, PrimitiveValue::from(0x0101u16)),
    ]);
    let mut out = Vec::new();
    let ts = TransferSyntaxRegistry.get(uids::IMPLICIT_VR_LITTLE_ENDIAN).unwrap();
    cmd.write_dataset_with_ts(&mut out, ts).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_association_is_aborted_at_the_association_timeout() {
    let sink = Arc::new(MemorySink::default());
    let options = ScpOptions {
        association_timeout: Duration::from_millis(800),
        idle_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let rig = Rig::start(options, sink).await;
    let mut a = ClientAssociationOptions::new()
        .calling_ae_title("RAWSCU")
        .called_ae_title("MEDBUS")
        .with_abstract_syntax(uids::VERIFICATION)
        .establish_async(rig.addr)
        .await
        .expect("association");
    let pc = a.presentation_contexts()[0].id;
    let started = std::time::Instant::now();
    let mut answered = 0;
    // Never idle: an echo every 100 ms, until the SCP ends the association.
    let ended = loop {
        if started.elapsed() > Duration::from_secs(5) {
            panic!("association still open after 5 s ({answered} echoes answered)");
        }
        if a.send(&pdv(pc, PDataValueType::Command, echo_rq(answered + 1)))
            .await
            .is_err()
        {
            break "send failed";
        }
        match tokio::time::timeout(Duration::from_secs(5), a.receive()).await {
            Ok(Ok(Pdu::PData { .. })) => answered += 1,
            Ok(Ok(Pdu::AbortRQ { .. })) => break "aborted",
            Ok(other) => break if other.is_err() { "closed" } else { "other PDU" },
            Err(_) => panic!("no answer in 5 s"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let lasted = started.elapsed();
    assert!(
        answered >= 3,
        "echoes were answered before the timeout ({answered}, {ended})"
    );
    assert!(
        lasted >= Duration::from_millis(600) && lasted < Duration::from_secs(3),
        "ended ({ended}) after {lasted:?}"
    );
    rig.stop().await;
}
