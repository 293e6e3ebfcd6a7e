//! MLLP over TLS: our sender against our TLS listener on the embedded
//! backbone, mutual TLS, bad handshakes confined to their connection, bad
//! certificate files refused at bind; and `openssl s_client` (a TLS client
//! nobody here wrote) getting AA. Certificates are made at test time with rcgen.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use medbus_adapters::hl7::listener::{Hl7Listener, ListenerContext, ListenerError};
use medbus_adapters::hl7::parser::Message;
use medbus_adapters::hl7::sender::{MllpSender, SendError, SenderConfig};
use medbus_adapters::hl7::tls::{ClientTls, TlsError};
use medbus_bus::backbone::{self, open_consumer, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::config::{BackboneConfig, ChannelConfig, TlsClientFiles, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Counter totals by `name{channel}`, from a recorder installed for this test binary.
static COUNTS: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();

struct Counting(String);

impl metrics::CounterFn for Counting {
    fn increment(&self, value: u64) {
        if let Some(m) = COUNTS.get() {
            *m.lock().unwrap().entry(self.0.clone()).or_default() += value;
        }
    }
    fn absolute(&self, _: u64) {}
}

struct Recorder;

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_gauge(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn describe_histogram(&self, _: metrics::KeyName, _: Option<metrics::Unit>, _: metrics::SharedString) {}
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let channel = key
            .labels()
            .find(|l| l.key() == "channel")
            .map(|l| l.value().to_string());
        let name = format!("{}{{{}}}", key.name(), channel.unwrap_or_default());
        metrics::Counter::from_arc(Arc::new(Counting(name)))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

/// The total of counter `name` for `channel` (installing the recorder on first use).
fn counter(name: &str, channel: &str) -> u64 {
    COUNTS.get_or_init(|| {
        let _ = metrics::set_global_recorder(Recorder);
        Mutex::default()
    });
    COUNTS
        .get()
        .and_then(|m| m.lock().unwrap().get(&format!("{name}{{{channel}}}")).copied())
        .unwrap_or(0)
}

/// PEM files in a temp dir: a CA, a server and a client it signed, and a client signed by another CA.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn server(&self, client_ca: bool) -> TlsFiles {
        TlsFiles {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            client_ca: client_ca.then(|| self.path("ca.pem")),
        }
    }

    /// Client files trusting our CA, presenting `who`'s certificate (`client`, `stranger`) if any.
    fn client(&self, who: Option<&str>) -> TlsClientFiles {
        TlsClientFiles {
            ca: Some(self.path("ca.pem")),
            cert: who.map(|w| self.path(&format!("{w}.pem"))),
            key: who.map(|w| self.path(&format!("{w}.key"))),
            server_name: None,
        }
    }
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(dir: &Path, name: &str, ca: &CertifiedIssuer<'static, KeyPair>, sans: &[&str], eku: ExtendedKeyUsagePurpose) {
    let mut p = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.extended_key_usages = vec![eku];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, ca).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (ca("medbus test CA"), ca("some other CA"));
    std::fs::write(dir.path().join("ca.pem"), ours.pem()).unwrap();
    std::fs::write(dir.path().join("other-ca.pem"), theirs.pem()).unwrap();
    let server = ExtendedKeyUsagePurpose::ServerAuth;
    leaf(dir.path(), "server", &ours, &["localhost", "127.0.0.1"], server);
    leaf(
        dir.path(),
        "client",
        &ours,
        &["adt-sender"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    leaf(
        dir.path(),
        "stranger",
        &theirs,
        &["stranger"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    Pki { dir }
}

struct Rig {
    addr: std::net::SocketAddr,
    backbone: SharedBackbone,
    shutdown: CancellationToken,
    run: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.run)
            .await
            .expect("listener stops")
            .unwrap();
    }
}

fn channel(tls: TlsFiles) -> ChannelConfig {
    ChannelConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: Some(tls),
        idle_timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

async fn bind(config: ChannelConfig) -> (Result<Hl7Listener, ListenerError>, SharedBackbone, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let backbone = backbone::connect(&BackboneConfig::default(), dir.path()).await.unwrap();
    let listener = Hl7Listener::bind(ListenerContext {
        channel: "adt".into(),
        config,
        backbone: backbone.clone(),
        shutdown: CancellationToken::new(),
    })
    .await;
    (listener, backbone, dir)
}

async fn rig(config: ChannelConfig) -> Rig {
    rig_named("adt", config).await
}

async fn rig_named(name: &str, config: ChannelConfig) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let backbone = backbone::connect(&BackboneConfig::default(), dir.path()).await.unwrap();
    let shutdown = CancellationToken::new();
    let listener = Hl7Listener::bind(ListenerContext {
        channel: name.into(),
        config,
        backbone: backbone.clone(),
        shutdown: shutdown.clone(),
    })
    .await
    .unwrap();
    let addr = listener.local_addr().unwrap();
    let run = tokio::spawn(listener.run());
    Rig {
        addr,
        backbone,
        shutdown,
        run,
        _dir: dir,
    }
}

fn sender(addr: std::net::SocketAddr, files: &TlsClientFiles) -> MllpSender {
    let addr = addr.to_string();
    let tls = ClientTls::new(files, &addr).unwrap();
    MllpSender::new(SenderConfig {
        ack_timeout: Duration::from_secs(5),
        tls: Some(tls),
        ..SenderConfig::new(addr)
    })
}

fn adt(id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|REG|HOSP|MEDBUS|HOSP|20240102101500||ADT^A01^ADT_A01|{id}|P|2.5\rEVN|A01|20240102101500\rPID|1||MRN{id}^^^HOSP^MR||DOE^JANE||19800402|F\rPV1|1|I|W1^101^A\r").into_bytes()
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut f = vec![0x0b];
    f.extend_from_slice(msg);
    f.extend([0x1c, 0x0d]);
    f
}

async fn kept(bb: &SharedBackbone, name: &str) -> Vec<Delivery> {
    let spec = ConsumerSpec::new(name, "medbus.ingress.hl7v2.>", &BackboneConfig::default());
    let mut c = open_consumer(bb, spec).await.unwrap();
    let mut all = Vec::new();
    loop {
        let batch = c.fetch(100, Duration::from_millis(300)).await.unwrap();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

fn control_ids(kept: &[Delivery]) -> Vec<String> {
    kept.iter()
        .map(|d| {
            let m = Message::parse(&d.payload).unwrap();
            m.control_id().unwrap().text().into_owned()
        })
        .collect()
}

#[tokio::test]
async fn our_sender_over_tls_gets_aa_and_the_message_is_kept() {
    let pki = pki();
    let r = rig(channel(pki.server(false))).await;
    let mut s = sender(r.addr, &pki.client(None));
    for id in ["TLS0001", "TLS0002"] {
        let ack = s.send(&adt(id)).await.unwrap();
        assert_eq!(ack.code, "AA", "{id}: {ack:?}");
    }
    assert_eq!(control_ids(&kept(&r.backbone, "tls1").await), ["TLS0001", "TLS0002"]);
    r.stop().await;
}

#[tokio::test]
async fn a_plain_client_on_the_tls_port_is_dropped_and_tls_clients_are_still_served() {
    const FAILURES: &str = "medbus_tls_handshake_failures_total";
    assert_eq!(counter(FAILURES, "plain"), 0);
    let pki = pki();
    let r = rig_named("plain", channel(pki.server(false))).await;
    let mut before = sender(r.addr, &pki.client(None));
    assert_eq!(before.send(&adt("BEFORE1")).await.unwrap().code, "AA");

    let mut plain = TcpStream::connect(r.addr).await.unwrap();
    plain.write_all(&framed(&adt("PLAIN01"))).await.unwrap();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut got))
        .await
        .expect("the plain connection is closed, not left hanging");
    assert!(
        !String::from_utf8_lossy(&got).contains("MSA"),
        "no ACK over plain text: {read:?} {got:?}"
    );

    let ack = before.send(&adt("BEFORE2")).await.unwrap();
    assert_eq!(ack.code, "AA", "the open TLS connection is unaffected");
    let mut after = sender(r.addr, &pki.client(None));
    assert_eq!(
        after.send(&adt("AFTER01")).await.unwrap().code,
        "AA",
        "and new ones are served"
    );
    assert_eq!(
        control_ids(&kept(&r.backbone, "tls2").await),
        ["BEFORE1", "BEFORE2", "AFTER01"],
        "nothing from the plain client"
    );
    assert_eq!(counter(FAILURES, "plain"), 1, "the failed handshake is counted, once");
    r.stop().await;
}

#[tokio::test]
async fn a_client_that_never_starts_the_handshake_is_dropped_after_the_timeout() {
    let pki = pki();
    let r = rig(ChannelConfig {
        idle_timeout: Duration::from_millis(500),
        ..channel(pki.server(false))
    })
    .await;
    let mut silent = TcpStream::connect(r.addr).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
        .await
        .expect("closed by the listener");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    r.stop().await;
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate_from_the_client_ca() {
    let pki = pki();
    let r = rig(channel(pki.server(true))).await;
    for who in [None, Some("stranger")] {
        let mut s = sender(r.addr, &pki.client(who));
        let err = s.send(&adt("REFUSED")).await.unwrap_err();
        assert!(
            matches!(err, SendError::Connect { .. } | SendError::Connection { .. }) && err.is_retryable(),
            "{who:?}: {err}"
        );
    }
    let mut s = sender(r.addr, &pki.client(Some("client")));
    let ack = s.send(&adt("MTLS001")).await.unwrap();
    assert_eq!(ack.code, "AA");
    assert_eq!(control_ids(&kept(&r.backbone, "tls3").await), ["MTLS001"]);
    r.stop().await;
}

#[tokio::test]
async fn our_sender_refuses_a_server_it_does_not_trust() {
    let pki = pki();
    let r = rig(channel(pki.server(false))).await;
    let files = TlsClientFiles {
        ca: Some(pki.path("other-ca.pem")),
        ..Default::default()
    };
    let err = sender(r.addr, &files).send(&adt("UNTRUST")).await.unwrap_err();
    match &err {
        SendError::Connect { why, .. } => assert!(why.contains("TLS handshake failed"), "{why}"),
        other => panic!("expected a connect error, got {other}"),
    }
    assert!(err.is_retryable());
    // A name the certificate does not carry is refused just the same.
    let files = TlsClientFiles {
        server_name: Some("emr.example.org".into()),
        ..pki.client(None)
    };
    let err = sender(r.addr, &files).send(&adt("BADNAME")).await.unwrap_err();
    assert!(matches!(err, SendError::Connect { .. }), "{err}");
    assert!(kept(&r.backbone, "tls4").await.is_empty());
    r.stop().await;
}

fn bind_error(result: Result<Hl7Listener, ListenerError>) -> String {
    match result {
        Ok(_) => panic!("bind should fail"),
        Err(e @ ListenerError::Tls { .. }) => e.to_string(),
        Err(e) => panic!("expected a TLS error, got {e}"),
    }
}

#[tokio::test]
async fn bad_certificate_files_fail_bind_naming_the_file() {
    let pki = pki();
    let key_of_another = TlsFiles {
        key: pki.path("client.key"),
        ..pki.server(false)
    };
    let msg = bind_error(bind(channel(key_of_another)).await.0);
    assert!(
        msg.contains(&pki.path("client.key").display().to_string()) && msg.contains("does not match"),
        "{msg}"
    );
    assert!(msg.starts_with("channel adt: "), "{msg}");

    let missing = TlsFiles {
        cert: pki.path("nowhere.pem"),
        ..pki.server(false)
    };
    let msg = bind_error(bind(channel(missing)).await.0);
    assert!(msg.contains(&pki.path("nowhere.pem").display().to_string()), "{msg}");

    let key_as_cert = TlsFiles {
        cert: pki.path("server.key"),
        ..pki.server(false)
    };
    let msg = bind_error(bind(channel(key_as_cert)).await.0);
    assert!(msg.contains("no certificate in the file"), "{msg}");

    let cert_as_key = TlsFiles {
        key: pki.path("server.pem"),
        ..pki.server(false)
    };
    let msg = bind_error(bind(channel(cert_as_key)).await.0);
    assert!(msg.contains("no private key in the file"), "{msg}");

    let garbage = pki.path("garbage.key");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let msg = bind_error(
        bind(channel(TlsFiles {
            key: garbage,
            ..pki.server(false)
        }))
        .await
        .0,
    );
    assert!(msg.contains("private key cannot be used"), "{msg}");

    let no_ca = TlsFiles {
        client_ca: Some(pki.path("no-ca.pem")),
        ..pki.server(false)
    };
    let msg = bind_error(bind(channel(no_ca)).await.0);
    assert!(msg.contains(&pki.path("no-ca.pem").display().to_string()), "{msg}");
}

#[test]
fn client_files_are_checked_when_the_sender_is_configured() {
    let pki = pki();
    let half = TlsClientFiles {
        cert: Some(pki.path("client.pem")),
        ..pki.client(None)
    };
    assert!(matches!(
        ClientTls::new(&half, "127.0.0.1:2575"),
        Err(TlsError::Incomplete)
    ));
    let key_as_ca = TlsClientFiles {
        ca: Some(pki.path("client.key")),
        ..Default::default()
    };
    assert!(matches!(
        ClientTls::new(&key_as_ca, "127.0.0.1:2575"),
        Err(TlsError::NoCertificate { .. })
    ));
    let bad_name = TlsClientFiles {
        server_name: Some("not a name".into()),
        ..pki.client(None)
    };
    assert!(matches!(
        ClientTls::new(&bad_name, "127.0.0.1:2575"),
        Err(TlsError::ServerName(_))
    ));
    let web_roots = ClientTls::new(&TlsClientFiles::default(), "emr.example.org:2575").unwrap();
    assert_eq!(format!("{:?}", web_roots.server_name()), "DnsName(\"emr.example.org\")");
}

#[tokio::test(flavor = "multi_thread")]
async fn openssl_s_client_gets_aa() {
    let Some(()) = medbus_testkit::peers::openssl() else {
        return;
    };
    let pki = pki();
    let r = rig(channel(pki.server(false))).await;
    let (port, ca) = (r.addr.port(), pki.path("ca.pem"));
    let out = tokio::task::spawn_blocking(move || {
        medbus_testkit::peers::openssl_s_client(port, &ca, None, &framed(&adt("OSSL001")))
    })
    .await
    .unwrap();
    assert!(out.contains("MSA|AA|OSSL001"), "{out}");
    assert_eq!(control_ids(&kept(&r.backbone, "tls5").await), ["OSSL001"]);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn openssl_s_client_with_mutual_tls_gets_aa_only_with_its_certificate() {
    let Some(()) = medbus_testkit::peers::openssl() else {
        return;
    };
    let pki = pki();
    let r = rig(channel(pki.server(true))).await;
    let port = r.addr.port();
    let run = |who: Option<&'static str>, id: &'static str| {
        let (ca, cert, key) = (
            pki.path("ca.pem"),
            who.map(|w| pki.path(&format!("{w}.pem"))),
            who.map(|w| pki.path(&format!("{w}.key"))),
        );
        tokio::task::spawn_blocking(move || {
            let client = cert.as_deref().zip(key.as_deref());
            medbus_testkit::peers::openssl_s_client(port, &ca, client, &framed(&adt(id)))
        })
    };
    let out = run(None, "OSSLNO1").await.unwrap();
    assert!(!out.contains("MSA|"), "no certificate, no answer:\n{out}");
    let out = run(Some("stranger"), "OSSLNO2").await.unwrap();
    assert!(!out.contains("MSA|"), "another CA's certificate, no answer:\n{out}");
    let out = run(Some("client"), "OSSLMT1").await.unwrap();
    assert!(out.contains("MSA|AA|OSSLMT1"), "{out}");
    assert_eq!(control_ids(&kept(&r.backbone, "tls6").await), ["OSSLMT1"]);
    r.stop().await;
}
