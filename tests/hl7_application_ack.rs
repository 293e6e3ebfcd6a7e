//! Enhanced-mode acknowledgments through the real binary: the sender gets a
//! commit ACK (CA) on its connection, and later an application ACK from the
//! processing outcome (AA, or AE naming the field) at the channel's
//! `application_acks` destination — delivered even though that receiver was
//! down when the messages came in. MSH-16 decides which outcomes get one;
//! original-mode messages never do.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{mllp_exchange, Medbus};

/// An MLLP receiver standing in for the sending system's inbound interface:
/// records every frame and answers AA with MSA-2 = its MSH-10.
fn receiver(listener: TcpListener, got: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let got = got.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(2).position(|w| w == [0x1c, 0x0d]) {
                        let frame: Vec<u8> = buf.drain(..end + 2).collect();
                        let text = String::from_utf8_lossy(&frame[1..frame.len() - 2]).into_owned();
                        let id = field(&text, "MSH", 10);
                        got.lock().unwrap().push(text);
                        let ack =
                            format!("\x0bMSH|^~\\&|HIS|H|MEDBUS|H|20240102||ACK|R{id}|P|2.5\rMSA|AA|{id}\r\x1c\r");
                        if conn.write_all(ack.as_bytes()).is_err() {
                            return;
                        }
                    }
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
}

/// Field `n` of the first `seg` segment (MSH counts MSH-1 as the separator).
fn field(msg: &str, seg: &str, n: usize) -> String {
    let line = msg.split(['\r', '\n']).find(|l| l.starts_with(seg)).unwrap_or_default();
    let idx = if seg == "MSH" { n - 1 } else { n };
    line.split('|').nth(idx).unwrap_or_default().to_string()
}

fn adt(id: &str, msh15: &str, msh16: &str, pid3: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|REG|HOSP|MEDBUS|HOSP|20240102101500||ADT^A04^ADT_A01|{id}|P|2.5|||{msh15}|{msh16}\r\
         EVN|A04|20240102101500\rPID|1||{pid3}||ROE^RICHARD||19700101|M\rPV1|1|O{}|V{id}\r",
        "|".repeat(16)
    )
    .into_bytes()
}

#[test]
fn application_acks_follow_msh16_and_reach_the_destination_once_it_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let mllp = medbus_testkit::free_port();
    let back = medbus_testkit::free_port();
    let config = dir.path().join("medbus.toml");
    std::fs::write(
        &config,
        format!(
            "[channels.adt]\nlisten = \"127.0.0.1:{mllp}\"\napplication_acks = \"reg\"\n\n\
             [destinations.reg]\naddr = \"127.0.0.1:{back}\"\ninitial_backoff = \"50ms\"\nmax_backoff = \"200ms\"\n"
        ),
    )
    .unwrap();
    let mut m = Medbus::start(dir.path(), &[("MEDBUS_CONFIG", config.display().to_string())]);
    let addr = ("127.0.0.1", mllp);

    // The receiver is down while the messages come in: commit ACKs must not wait for it.
    let sent = [
        (adt("APP1", "AL", "AL", "P1^^^HOSP^MR"), "CA", Some("AA")),
        (adt("APP2", "AL", "AL", ""), "CA", Some("AE")),
        (adt("APP3", "AL", "ER", "P3^^^HOSP^MR"), "CA", None),
        (adt("APP4", "", "", "P4^^^HOSP^MR"), "AA", None),
        (adt("APP5", "NE", "SU", "P5^^^HOSP^MR"), "", Some("AA")),
    ];
    for (i, (msg, commit, _)) in sent.iter().enumerate() {
        let answer = mllp_exchange_maybe(addr, msg, !commit.is_empty());
        if commit.is_empty() {
            assert!(answer.is_empty(), "MSH-15 NE: no commit ACK expected, got {answer}");
        } else {
            assert_eq!(field(&answer, "MSA", 1), *commit, "message {i}: {answer}");
            assert_eq!(field(&answer, "MSA", 2), format!("APP{}", i + 1));
        }
    }

    std::thread::sleep(Duration::from_millis(500));
    let got = Arc::new(Mutex::new(Vec::new()));
    receiver(TcpListener::bind(("127.0.0.1", back)).unwrap(), got.clone());
    let expected: Vec<(String, &str)> = sent
        .iter()
        .enumerate()
        .filter_map(|(i, (_, _, app))| app.map(|code| (format!("APP{}", i + 1), code)))
        .collect();
    let start = Instant::now();
    while got.lock().unwrap().len() < expected.len() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // A moment more, so an ACK that should not exist has the time to show up.
    std::thread::sleep(Duration::from_millis(700));
    let got = got.lock().unwrap().clone();
    let seen: Vec<(String, String)> = got.iter().map(|a| (field(a, "MSA", 2), field(a, "MSA", 1))).collect();
    let want: Vec<(String, String)> = expected.iter().map(|(id, c)| (id.clone(), c.to_string())).collect();
    assert_eq!(seen, want, "application ACKs received, in order:\n{got:#?}");
    for a in &got {
        assert_eq!(field(a, "MSH", 9), "ACK^A04^ACK", "{a}");
        assert_eq!(field(a, "MSH", 5), "REG", "back to the sending application: {a}");
    }
    let ae = &got[1];
    assert_eq!(field(ae, "ERR", 3).split('^').next(), Some("101"), "{ae}");
    assert!(field(ae, "ERR", 8).contains("PID-3"), "{ae}");
    assert_eq!(m.terminate(Duration::from_secs(20)), Some(0));
}

/// Sends one frame; waits for an answer only when one is expected.
fn mllp_exchange_maybe(addr: (&str, u16), msg: &[u8], expect_answer: bool) -> String {
    if expect_answer {
        return mllp_exchange(addr, msg);
    }
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut frame = vec![0x0b];
    frame.extend_from_slice(msg);
    frame.extend_from_slice(&[0x1c, 0x0d]);
    s.write_all(&frame).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    let mut buf = [0u8; 1024];
    match s.read(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(_) => String::new(),
    }
}
