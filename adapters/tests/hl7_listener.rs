//! The MLLP listener over loopback, on the embedded backbone: ACK only after
//! the durable ack, resends kept once, bad input answered and kept, bad framing
//! confined to its connection.

use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use medbus_adapters::hl7::listener::{raw_header, Hl7Listener, ListenerContext};
use medbus_adapters::hl7::mllp_codec::{MllpCodec, MllpItem};
use medbus_adapters::hl7::parser::Message;
use medbus_bus::backbone::{self, open_consumer, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::config::{BackboneConfig, ChannelConfig};
use medbus_bus::envelope::Envelope;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

struct Rig {
    addr: std::net::SocketAddr,
    backbone: SharedBackbone,
    shutdown: CancellationToken,
    run: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let backbone = backbone::connect(&BackboneConfig::default(), dir.path()).await.unwrap();
    let shutdown = CancellationToken::new();
    let config = ChannelConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_frame_bytes: 64 * 1024,
        ..Default::default()
    };
    let listener = Hl7Listener::bind(ListenerContext {
        channel: "adt".into(),
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

type Conn = Framed<TcpStream, MllpCodec>;

async fn connect(addr: std::net::SocketAddr) -> Conn {
    Framed::new(TcpStream::connect(addr).await.unwrap(), MllpCodec::new())
}

async fn exchange(c: &mut Conn, msg: &[u8]) -> Vec<u8> {
    c.send(Bytes::copy_from_slice(msg)).await.unwrap();
    next_frame(c).await.expect("an ACK")
}

async fn next_frame(c: &mut Conn) -> Option<Vec<u8>> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), c.next())
            .await
            .expect("answer in time")
        {
            Some(Ok(MllpItem::Frame(f))) => return Some(f.to_vec()),
            Some(Ok(MllpItem::Junk { .. })) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

fn field(ack: &[u8], path: &str) -> String {
    let m = Message::parse(ack).unwrap();
    m.get(path).unwrap().map(|v| v.text().into_owned()).unwrap_or_default()
}

fn adt(id: &str) -> Vec<u8> {
    format!("MSH|^~\\&|REG|HOSP|MEDBUS|HOSP|20240102101500||ADT^A01^ADT_A01|{id}|P|2.5\rEVN|A01|20240102101500\rPID|1||MRN{id}^^^HOSP^MR||DOE^JANE||19800402|F\rPV1|1|I|W1^101^A\r").into_bytes()
}

async fn kept(bb: &SharedBackbone, name: &str) -> Vec<Delivery> {
    let mut c = open_consumer(
        bb,
        ConsumerSpec::new(name, "medbus.ingress.hl7v2.>", &BackboneConfig::default()),
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

#[tokio::test]
async fn accepted_message_is_kept_then_acknowledged_and_a_resend_is_kept_once() {
    let r = rig().await;
    let mut c = connect(r.addr).await;
    let msg = adt("MSG0001");
    let ack = exchange(&mut c, &msg).await;
    assert_eq!(field(&ack, "MSA-1"), "AA");
    assert_eq!(field(&ack, "MSA-2"), "MSG0001");
    assert_eq!(field(&ack, "MSH-9.1"), "ACK");
    let again = exchange(&mut c, &msg).await;
    assert_eq!(field(&again, "MSA-1"), "AA", "a resend is acknowledged again");
    let stored = kept(&r.backbone, "check1").await;
    assert_eq!(stored.len(), 1, "and kept once");
    let d = &stored[0];
    assert_eq!(d.subject, "medbus.ingress.hl7v2.adt");
    assert_eq!(d.dedupe_id.as_deref(), Some("adt:MSG0001"));
    assert_eq!(d.payload.as_ref(), msg.as_slice(), "raw bytes exactly as received");
    let env = Envelope::from_wire(&d.headers, d.payload.clone()).unwrap();
    assert_eq!(env.source.channel, "adt");
    assert!(env.source.peer.is_some());
    r.shutdown.cancel();
    drop(c);
    tokio::time::timeout(Duration::from_secs(5), r.run)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn bad_input_gets_an_error_ack_and_is_kept_with_the_reason() {
    let r = rig().await;
    let mut c = connect(r.addr).await;
    let ack = exchange(&mut c, b"this is not hl7\r").await;
    assert_eq!(field(&ack, "MSA-1"), "AR");
    assert_eq!(field(&ack, "ERR-3.1"), "100");
    let no_id = b"MSH|^~\\&|REG|HOSP|MEDBUS|HOSP|20240102||ADT^A01||P|2.5\rPID|1\r";
    let ack = exchange(&mut c, no_id).await;
    assert_eq!(field(&ack, "MSA-1"), "AE");
    assert_eq!(field(&ack, "ERR-2.1"), "MSH");
    assert_eq!(field(&ack, "ERR-2.3"), "10", "ERR names MSH-10");
    assert!(!field(&ack, "MSA-3").is_empty());
    // The same connection still serves.
    assert_eq!(field(&exchange(&mut c, &adt("OK1")).await, "MSA-1"), "AA");
    let stored = kept(&r.backbone, "check2").await;
    assert_eq!(stored.len(), 3, "rejected messages are kept too");
    let rejected: Vec<_> = stored
        .iter()
        .filter_map(|d| d.headers.get(&format!("Medbus-Raw-{}", raw_header::REJECTED)))
        .collect();
    assert_eq!(rejected.len(), 2, "{stored:?}");
    assert_eq!(stored[0].payload.as_ref(), b"this is not hl7\r");
}

#[tokio::test]
async fn junk_between_frames_is_skipped() {
    let r = rig().await;
    let mut raw = TcpStream::connect(r.addr).await.unwrap();
    let mut bytes = b"\x00\x01garbage\r\n".to_vec();
    bytes.push(0x0B);
    bytes.extend(adt("J1"));
    bytes.extend([0x1C, 0x0D]);
    raw.write_all(&bytes).await.unwrap();
    let mut c = Framed::new(raw, MllpCodec::new());
    let ack = next_frame(&mut c).await.unwrap();
    assert_eq!(field(&ack, "MSA-2"), "J1");
}

#[tokio::test]
async fn oversized_or_truncated_frames_close_only_their_connection() {
    let r = rig().await;
    let mut good = connect(r.addr).await;
    // 10 MiB with no end: the listener closes that connection after the 64 KiB limit.
    let mut big = TcpStream::connect(r.addr).await.unwrap();
    big.write_all(&[0x0B]).await.unwrap();
    let chunk = vec![b'A'; 1 << 20];
    let mut closed = false;
    for _ in 0..10 {
        if big.write_all(&chunk).await.is_err() {
            closed = true;
            break;
        }
    }
    let mut big = Framed::new(big, MllpCodec::new());
    if !closed {
        assert!(
            next_frame(&mut big).await.is_none(),
            "no ACK for an oversized frame: closed"
        );
    }
    // A peer that vanishes mid-frame.
    let mut half = TcpStream::connect(r.addr).await.unwrap();
    half.write_all(b"\x0bMSH|^~\\&|REG|HOSP").await.unwrap();
    drop(half);
    assert_eq!(
        field(&exchange(&mut good, &adt("G1")).await, "MSA-1"),
        "AA",
        "others keep being served"
    );
    assert_eq!(
        kept(&r.backbone, "check3").await.len(),
        1,
        "nothing kept from the broken frames"
    );
}

#[tokio::test]
async fn enhanced_mode_sends_commit_acks_as_asked() {
    let r = rig().await;
    let mut c = connect(r.addr).await;
    let al = b"MSH|^~\\&|LAB|H|MEDBUS|H|2024||ORU^R01|E1|P|2.5|||AL|AL\rOBX|1\r";
    let ack = exchange(&mut c, al).await;
    assert_eq!(field(&ack, "MSA-1"), "CA");
    assert_eq!(field(&ack, "MSA-2"), "E1");
    // NE: no commit ACK at all; the next message on the connection is answered normally.
    let ne = b"MSH|^~\\&|LAB|H|MEDBUS|H|2024||ORU^R01|E2|P|2.5|||NE|AL\rOBX|1\r";
    c.send(Bytes::from_static(ne)).await.unwrap();
    let ack = exchange(&mut c, &adt("E3")).await;
    assert_eq!(field(&ack, "MSA-2"), "E3", "no ACK was sent for E2");
    assert_eq!(kept(&r.backbone, "check4").await.len(), 3);
}

#[tokio::test]
async fn a_backbone_that_cannot_keep_gets_a_reject_not_an_accept() {
    let r = rig().await;
    r.backbone.close().await.unwrap();
    let mut c = connect(r.addr).await;
    let ack = exchange(&mut c, &adt("X1")).await;
    assert_eq!(field(&ack, "MSA-1"), "AR");
    assert!(
        field(&ack, "MSA-3").contains("could not keep"),
        "{}",
        String::from_utf8_lossy(&ack)
    );
}
