//! Command-line peers nobody on the team wrote (`openssl s_client`, python
//! tools): whether they run here, and `s_client` driven with one MLLP frame.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Some(()) when `program args…` exits 0; otherwise skips with a `SKIPPED:` line, or
/// panics under `MEDBUS_REQUIRE_SERVICES=1`. `what` names the peer, `install` says how to get it.
pub fn tool(what: &str, program: &str, args: &[&str], install: &str) -> Option<()> {
    let ok = Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(());
    }
    if crate::services_required() {
        panic!(
            "{what} is required (MEDBUS_REQUIRE_SERVICES=1) but `{program} {}` fails: {install}",
            args.join(" ")
        );
    }
    eprintln!("SKIPPED: {what} unavailable ({install}; scripts/test.sh does it)");
    None
}

/// `openssl` when it runs (see [`tool`]).
pub fn openssl() -> Option<()> {
    tool("openssl", "openssl", &["version"], "apt-get install openssl")
}

/// Pipes one MLLP frame into `openssl s_client` against 127.0.0.1:`port`, trusting `ca`
/// and presenting `client` (cert, key) when given, and returns what came back (up to
/// the end of the first frame, or what there was when the server closed, within
/// 10 s; CR shown as newlines), then s_client's stderr after a `--- stderr:` line.
pub fn openssl_s_client(port: u16, ca: &Path, client: Option<(&Path, &Path)>, frame: &[u8]) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-quiet"])
        // Fail on a certificate openssl does not accept, and check the address is in it.
        .args(["-verify_return_error", "-verify_ip", "127.0.0.1", "-CAfile"])
        .arg(ca);
    if let Some((cert, key)) = client {
        cmd.arg("-cert").arg(cert).arg("-key").arg(key);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    // stdin stays open: with -quiet, s_client would otherwise keep waiting anyway (ign_eof).
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(frame).expect("frame written to s_client");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while !got.contains(&0x1c) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(chunk) => got.extend(chunk),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("s_client ends");
    drop(stdin);
    format!(
        "{}\n--- stderr:\n{}",
        String::from_utf8_lossy(&got).replace('\r', "\n"),
        String::from_utf8_lossy(&out.stderr)
    )
}
