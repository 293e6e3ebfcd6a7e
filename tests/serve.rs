//! End to end: the real binary on the embedded default and on NATS + PostgreSQL.

mod support;

use std::time::Duration;

use support::Medbus;

#[test]
fn embedded_default_is_healthy_ready_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // The shipped default config, as `cargo run --release` uses it, on a free MLLP port.
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/medbus.toml");
    let mllp_port = medbus_testkit::free_port();
    let dicom_port = medbus_testkit::free_port();
    let text = std::fs::read_to_string(&shipped).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:2575\""));
    assert!(text.contains("listen = \"127.0.0.1:11112\""));
    let config = dir.path().join("medbus.toml");
    support::copy_shipped_routes_and_tables(dir.path());
    std::fs::write(
        &config,
        text.replace("127.0.0.1:2575", &format!("127.0.0.1:{mllp_port}"))
            .replace("127.0.0.1:11112", &format!("127.0.0.1:{dicom_port}")),
    )
    .unwrap();
    let mut m = Medbus::start(dir.path(), &[("MEDBUS_CONFIG", config.display().to_string())]);
    let (code, body) = m.get("/healthz").unwrap();
    assert_eq!(code, 200, "{body}");
    let (code, body) = m
        .wait_until(Duration::from_secs(10), |c| c == Some(200), "/readyz")
        .unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("\"embedded\"") && body.contains("\"sqlite\""), "{body}");
    assert!(
        dir.path().join("data/medbus.db").exists(),
        "SQLite store created under data_dir"
    );
    assert!(
        dir.path().join("data/backbone").is_dir(),
        "embedded log created under data_dir"
    );
    // The default channel accepts ADT at once.
    let ack = support::mllp_exchange(
        ("127.0.0.1", mllp_port),
        b"MSH|^~\\&|REG|HOSP|MEDBUS|HOSP|20240102||ADT^A01|E2E1|P|2.5\rPID|1||123^^^HOSP^MR\r",
    );
    assert!(ack.contains("MSA|AA|E2E1"), "{ack:?}");
    // The default DICOM channel stores what a modality sends, under data_dir.
    let report = send_dicom(dicom_port, 3);
    assert_eq!((report.succeeded, report.failed), (3, 0), "{:?}", report.failures);
    let stored = count_files(&dir.path().join("data/dicom/modalities"), "dcm");
    assert_eq!(stored, 3, "instance files under data/dicom/modalities");
    let (code, metrics) = m.get("/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("medbus_ready"), "readiness gauge exported:\n{metrics}");
    assert!(
        metrics.contains("medbus_acks_total{channel=\"adt\",code=\"AA\"} 1"),
        "{metrics}"
    );
    assert_eq!(m.terminate(Duration::from_secs(15)), Some(0), "SIGTERM exits 0");
}

/// Sends `n` small generated CT instances to the SCP on `port` (AE MEDBUS) over one association.
fn send_dicom(port: u16, n: u64) -> medbus_simulators::dicom::report::SendReport {
    use medbus_simulators::dicom::{generate, scu, send};
    let gen = generate::Generator::new(generate::GenerateConfig {
        patients: 1,
        studies_per_patient: 1,
        series_per_study: 1,
        instances: n,
        pixel_bytes: 2048,
        ..Default::default()
    })
    .unwrap();
    let mut scu = scu::ScuConfig::new(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    scu.called_ae = "MEDBUS".into();
    let cfg = send::SendConfig {
        scu,
        associations: 1,
        max_duration: Duration::from_secs(30),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(send::run(
        &cfg,
        std::sync::Arc::new(gen),
        tokio_util::sync::CancellationToken::new(),
    ))
}

/// Files ending in `.ext` anywhere under `dir`.
fn count_files(dir: &std::path::Path, ext: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| e.path())
        .map(|p| {
            if p.is_dir() {
                count_files(&p, ext)
            } else {
                usize::from(p.extension().is_some_and(|x| x == ext))
            }
        })
        .sum()
}

#[test]
fn readyz_follows_nats_going_away_and_coming_back() {
    let Some(mut nats) = medbus_testkit::NatsServer::start() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = rt.block_on(medbus_testkit::PgDatabase::create()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut m = Medbus::start(
        dir.path(),
        &[
            ("MEDBUS_BACKBONE_URL", nats.url()),
            ("MEDBUS_STORE_URL", db.url.clone()),
        ],
    );
    let (_, body) = m
        .wait_until(Duration::from_secs(10), |c| c == Some(200), "/readyz")
        .unwrap();
    assert!(body.contains("jetstream") && body.contains("postgres"), "{body}");

    nats.stop();
    let (_, body) = m
        .wait_until(Duration::from_secs(20), |c| c == Some(503), "/readyz")
        .unwrap();
    assert!(body.contains("\"backbone\"") && body.contains("not ready"), "{body}");
    assert!(
        body.contains("\"store\":{\"kind\":\"postgres\",\"status\":\"ok\"}"),
        "store still fine: {body}"
    );

    nats.restart();
    m.wait_until(Duration::from_secs(30), |c| c == Some(200), "/readyz");
    assert_eq!(m.terminate(Duration::from_secs(15)), Some(0));
}

#[test]
fn check_lists_every_problem_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(
        &file,
        "data_dir = \"./data\"\n\n[backbone]\nurl = \"amqp://nope\"\nmax_deliver = 0\n\n[store]\nurll = \"x\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_medbus"))
        .args(["check", "--config"])
        .arg(&file)
        .env_remove("MEDBUS_BACKBONE_URL")
        .env_remove("MEDBUS_STORE_URL")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let f = file.display().to_string();
    for want in [
        format!("{f}:4: backbone.url: must be"),
        format!("{f}:5: backbone.max_deliver: must be at least 1"),
        format!("{f}:8: store.urll: unknown key"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(err.contains("3 configuration problems"), "{err}");
}

#[test]
fn check_accepts_the_shipped_config() {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/medbus.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_medbus"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));
}
