//! An in-test MLLP receiver whose answer to each frame follows a plan, shared by
//! the sender and destination tests.

// Each test binary compiles this module and none uses every helper.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use medbus_adapters::hl7::ack::{self, AckCode, AckError};
use medbus_adapters::hl7::mllp_codec::{MllpCodec, MllpItem};
use medbus_adapters::hl7::parser::Message;
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

/// What the server does with the n-th frame it receives (counting from 0, across connections).
#[derive(Clone, Copy)]
pub enum Reply {
    Accept,
    Code(AckCode),
    Silent,
    Hangup,
    StaleThenAccept,
}

pub struct Server {
    /// `host:port`.
    pub addr: String,
    /// MSH-10 of every frame received, in order.
    pub received: Arc<Mutex<Vec<String>>>,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
}

/// Starts a receiver on a free loopback port.
pub async fn server(plan: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Server {
    bind_at("127.0.0.1:0", plan).await
}

/// Starts a receiver on `addr`.
pub async fn bind_at(addr: &str, plan: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let received = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let count = Arc::new(AtomicUsize::new(0));
    let plan = Arc::new(plan);
    let (rec, conns) = (received.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            conns.fetch_add(1, Ordering::SeqCst);
            let (rec, count, plan) = (rec.clone(), count.clone(), plan.clone());
            tokio::spawn(async move {
                let mut f = Framed::new(stream, MllpCodec::new());
                while let Some(Ok(MllpItem::Frame(frame))) = f.next().await {
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    let msg = Message::parse(&frame).unwrap();
                    rec.lock().unwrap().push(msg.control_id().unwrap().text().into_owned());
                    let answer = |code| Bytes::from(ack::build(Some(&msg), code, None, "S"));
                    match plan(n) {
                        Reply::Accept => f.send(answer(AckCode::AA)).await.unwrap(),
                        Reply::Code(c) => {
                            let err = AckError {
                                code: 207,
                                location: None,
                                text: "downstream says no".into(),
                            };
                            f.send(Bytes::from(ack::build(Some(&msg), c, Some(&err), "S")))
                                .await
                                .unwrap()
                        }
                        Reply::Silent => {}
                        Reply::Hangup => return,
                        Reply::StaleThenAccept => {
                            let stale = b"MSH|^~\\&|||||||ACK|S|P|2.5\rMSA|AA|SOMETHING-ELSE\r";
                            f.send(Bytes::from_static(stale)).await.unwrap();
                            f.send(answer(AckCode::AA)).await.unwrap();
                        }
                    }
                }
            });
        }
    });
    Server {
        addr,
        received,
        connections,
    }
}
