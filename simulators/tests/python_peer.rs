//! Compatibility with a real peer nobody here wrote: python-hl7's asyncio MLLP server
//! (`pip install hl7`), answering with its own `create_ack()`.
//!
//! Skipped with the reason printed when python3 or the `hl7` package is missing, unless
//! `MEDBUS_REQUIRE_SERVICES=1` (scripts/test.sh), which makes it fail loudly instead.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use medbus_simulators::hl7::generate::{GenConfig, Generator, Mix};
use medbus_simulators::hl7::sender::{self, SenderConfig};
use tokio_util::sync::CancellationToken;

/// The python server process, killed on drop.
struct PythonAckServer {
    child: Child,
    port: u16,
}

impl Drop for PythonAckServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unavailable(why: String) -> Option<PythonAckServer> {
    if medbus_testkit::services_required() {
        panic!("python-hl7 is required (MEDBUS_REQUIRE_SERVICES=1) but unavailable: {why}");
    }
    eprintln!("SKIPPED: python-hl7 unavailable: {why} (pip install hl7; scripts/test.sh runs everything)");
    None
}

fn start_python_server() -> Option<PythonAckServer> {
    let probe = Command::new("python3")
        .args(["-c", "import hl7.mllp; print(hl7.__version__)"])
        .output();
    match probe {
        Err(e) => return unavailable(format!("cannot run python3: {e}")),
        Ok(out) if !out.status.success() => {
            return unavailable(format!(
                "`import hl7.mllp` failed: {}",
                String::from_utf8_lossy(&out.stderr)
                    .trim()
                    .lines()
                    .last()
                    .unwrap_or_default()
            ))
        }
        Ok(_) => {}
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/hl7_ack_server.py");
    let port = medbus_testkit::free_port();
    let mut child = match Command::new("python3")
        .arg(&script)
        .args(["--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return unavailable(format!("cannot start {}: {e}", script.display())),
    };
    let Some(stdout) = child.stdout.take() else {
        return unavailable("no stdout from the python server".into());
    };
    let server = PythonAckServer { child, port };
    // Wait for "READY" on a thread, so a server that hangs cannot hang the test.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(line) if line.starts_with("READY") => {
            eprintln!("python-hl7 ACK server: {}", line.trim());
            Some(server)
        }
        Ok(line) => panic!("python ACK server did not start: {line:?}"),
        Err(_) => panic!("python ACK server did not say READY within 20 s"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_hl7_server_accepts_our_messages_and_its_acks_match() {
    let Some(server) = tokio::task::spawn_blocking(start_python_server).await.unwrap() else {
        return;
    };
    let mut config = SenderConfig::new(format!("127.0.0.1:{}", server.port).parse().unwrap());
    config.connections = 4;
    config.count = 200;
    config.max_duration = Duration::from_secs(60);
    let generator = Generator::new(GenConfig {
        seed: 3,
        mix: Mix::Full,
        id_prefix: Some("PY-".into()),
        ..GenConfig::default()
    });
    let r = sender::run(&config, generator, CancellationToken::new()).await.unwrap();
    eprintln!("{}", r.report);
    let c = &r.report.counts;
    assert_eq!((c.sent, c.aa, c.accepted), (200, 200, 200), "{}", r.report);
    assert_eq!((c.msa2_mismatches, c.unreadable, c.retries), (0, 0, 0), "{}", r.report);
    assert!(r.report.complete);
    assert_eq!(r.acked.len(), 200);
    assert!(r.acked.iter().all(|id| id.starts_with("PY-")));
}

/// medbus's outbound MLLP sender (the destination side, not the simulator)
/// delivering to the same real server: every message accepted, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn medbus_mllp_sender_delivers_to_python_hl7_server() {
    use medbus_adapters::hl7::sender::{MllpSender, SenderConfig as DestinationConfig};
    let Some(server) = tokio::task::spawn_blocking(start_python_server).await.unwrap() else {
        return;
    };
    let mut sender = MllpSender::new(DestinationConfig::new(format!("127.0.0.1:{}", server.port)));
    let stop = CancellationToken::new();
    for i in 0..50 {
        let msg = format!(
            "MSH|^~\\&|MEDBUS|HOSP|EMR|HOSP|20240102101500||ADT^A08^ADT_A01|OUT{i:04}|P|2.5\rEVN|A08|20240102101500\rPID|1||MRN{i}^^^HOSP^MR||DOE^JANE\r"
        );
        let ack = sender.deliver(msg.as_bytes(), &stop).await.expect("delivered");
        assert_eq!(ack.code, "AA", "message {i}: {ack:?}");
    }
}
