//! MLLP over TLS through the real binary: a channel with `tls` answers
//! `openssl s_client` (a TLS client nobody here wrote) with AA, and a key
//! that does not match its certificate stops `medbus serve` naming the file.
//! The certificate is made by openssl too, so its PEM is not rcgen's.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::Medbus;

/// A self-signed P-256 certificate for 127.0.0.1 as `<name>.pem` and `<name>.key` in `dir`.
fn self_signed(dir: &Path, name: &str) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args(["-days", "2", "-subj", "/CN=medbus test", "-addext"])
        .arg("subjectAltName=IP:127.0.0.1,DNS:localhost")
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.pem")))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn config(dir: &Path, port: u16, key: &str) -> std::path::PathBuf {
    let path = dir.join("medbus.toml");
    let text = format!(
        "[channels.adt]\nlisten = \"127.0.0.1:{port}\"\ntls = {{ cert = {:?}, key = {:?} }}\n",
        dir.join("server.pem").display().to_string(),
        dir.join(key).display().to_string(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_tls_channel_answers_openssl_s_client_with_aa() {
    let Some(()) = medbus_testkit::peers::openssl() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    self_signed(dir.path(), "server");
    let port = medbus_testkit::free_port();
    let config = config(dir.path(), port, "server.key");
    let mut m = Medbus::start(dir.path(), &[("MEDBUS_CONFIG", config.display().to_string())]);
    let msg = "MSH|^~\\&|OSSL|HOSP|MEDBUS|HOSP|20240102101500||ADT^A04^ADT_A01|TLSBIN1|P|2.5\rEVN|A04|20240102101500\rPID|1||TLSBIN1^^^HOSP^MR||ROE^RICHARD||19700101|M\r";
    let mut frame = vec![0x0b];
    frame.extend(msg.as_bytes());
    frame.extend([0x1c, 0x0d]);
    let out = medbus_testkit::peers::openssl_s_client(port, &dir.path().join("server.pem"), None, &frame);
    assert!(out.contains("MSA|AA|TLSBIN1"), "{out}\n--- medbus log:\n{}", log(&m));
    // Plain MLLP on the TLS port gets no answer, and medbus keeps serving.
    let plain = support::mllp_exchange(("127.0.0.1", port), msg.as_bytes());
    assert!(!plain.contains("MSA"), "{plain}");
    assert!(
        medbus_testkit::peers::openssl_s_client(port, &dir.path().join("server.pem"), None, &frame)
            .contains("MSA|AA|TLSBIN1")
    );
    assert!(log(&m).contains("tls handshake failed"), "{}", log(&m));
    assert_eq!(m.terminate(Duration::from_secs(15)), Some(0));
}

#[test]
fn a_key_that_does_not_match_the_certificate_stops_serve_naming_the_file() {
    let Some(()) = medbus_testkit::peers::openssl() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    self_signed(dir.path(), "server");
    self_signed(dir.path(), "other");
    let config = config(dir.path(), medbus_testkit::free_port(), "other.key");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medbus"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MEDBUS_")) {
        cmd.env_remove(k);
    }
    let out = cmd
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env("MEDBUS_CONFIG", &config)
        .env("MEDBUS_HTTP_ADDR", format!("127.0.0.1:{}", medbus_testkit::free_port()))
        .env("MEDBUS_DATA_DIR", dir.path().join("data"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    let key = dir.path().join("other.key").display().to_string();
    assert!(text.contains(&key) && text.contains("does not match"), "{text}");
}

fn log(m: &Medbus) -> String {
    std::fs::read_to_string(&m.log).unwrap_or_default()
}
