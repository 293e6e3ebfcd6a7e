//! A small MLLP ACK server for the sender tests, on 127.0.0.1:0, built on the adapters'
//! `MllpCodec`. It answers AA with MSA-2 = MSH-10 for a message whose MSH is complete, AE
//! for anything else, and can be told to misbehave: drop the connection instead of
//! answering, stay silent once, or echo a wrong MSA-2.

#![allow(dead_code)] // each test file uses a different part

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use medbus_adapters::hl7::mllp_codec::{MllpCodec, MllpItem};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

/// How the server misbehaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Close the connection instead of answering every Nth message received (counted over
    /// all connections). The message counts as received (as if kept, its ACK lost).
    pub drop_every: Option<u64>,
    /// Never answer the Nth message received (the sender must time out and send it again).
    pub silent_at: Option<u64>,
    /// Answer every Nth message with an MSA-2 that is not its MSH-10.
    pub wrong_id_every: Option<u64>,
    /// Close the connection (no answer) on input it cannot read, as python-hl7 does.
    pub close_on_malformed: bool,
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// MSH-10 of every well-formed message received (with repeats).
    pub received: Vec<String>,
    /// MSH-10 of every message answered AA.
    pub acked: HashSet<String>,
    /// Malformed frames received.
    pub malformed: u64,
    /// Connections accepted.
    pub connections: u64,
}

/// A running server; stops when the test's runtime ends.
pub struct AckServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Seen>>,
}

/// MSH-10 when `payload` has a complete MSH (through MSH-12) with the standard delimiters.
fn control_id(payload: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(payload).ok()?;
    let msh = text.split('\r').next()?;
    if !msh.starts_with("MSH|^~\\&|") {
        return None;
    }
    let fields: Vec<&str> = msh.split('|').collect();
    let id = fields.get(9)?;
    let version = fields.get(11)?;
    (!id.is_empty() && !version.is_empty()).then(|| id.to_string())
}

fn ack(code: &str, id: &str) -> Bytes {
    Bytes::from(format!(
        "MSH|^~\\&|TESTACK|T|SIM|T|20240301080000||ACK|A{id}|P|2.5\rMSA|{code}|{id}\r"
    ))
}

impl AckServer {
    pub async fn start(faults: Faults) -> AckServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let counter = Arc::new(AtomicU64::new(0));
        let s = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                s.lock().unwrap().connections += 1;
                tokio::spawn(serve(stream, faults, s.clone(), counter.clone()));
            }
        });
        AckServer { addr, seen }
    }
}

async fn serve(stream: tokio::net::TcpStream, f: Faults, seen: Arc<Mutex<Seen>>, counter: Arc<AtomicU64>) {
    let mut framed = Framed::new(stream, MllpCodec::new());
    while let Some(Ok(item)) = framed.next().await {
        let MllpItem::Frame(payload) = item else { continue };
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = match control_id(&payload) {
            Some(id) => {
                seen.lock().unwrap().received.push(id.clone());
                if f.drop_every.is_some_and(|k| n.checked_rem(k) == Some(0)) {
                    return;
                }
                if f.silent_at == Some(n) {
                    // Hold the connection open without answering until the sender gives up on it.
                    while let Some(Ok(_)) = framed.next().await {}
                    return;
                }
                if f.wrong_id_every.is_some_and(|k| n.checked_rem(k) == Some(0)) {
                    ack("AA", "SOMETHING-ELSE")
                } else {
                    seen.lock().unwrap().acked.insert(id.clone());
                    ack("AA", &id)
                }
            }
            None => {
                seen.lock().unwrap().malformed += 1;
                if f.close_on_malformed {
                    return;
                }
                ack("AE", "")
            }
        };
        if framed.send(answer).await.is_err() {
            return;
        }
    }
}
