//! One connection slot: connect, send, await the ACK, classify it; on a timeout or a lost
//! connection, reconnect and send the same message again.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use medbus_adapters::hl7::mllp_codec::{MllpCodec, MllpError, MllpItem};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::Framed;

use super::Shared;
use crate::hl7::ack::{self, AckCode};
use crate::hl7::generate::{GeneratedMessage, Kind};
use crate::hl7::latency::Latencies;
use crate::hl7::report::Counts;

type Link = Framed<TcpStream, MllpCodec>;

/// What one connection did.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub counts: Counts,
    pub latencies: Latencies,
    pub acked: Vec<String>,
    pub errors: Vec<String>,
}

/// How one send ended.
enum Exchange {
    /// An ACK frame (not yet parsed).
    Answer(Bytes),
    /// No answer within the ACK timeout.
    Timeout,
    /// The connection failed: closed, reset, or broken framing.
    Lost(String),
    /// The payload cannot be framed (contains VT or FS): a generator bug, never sent.
    Unsendable(String),
}

/// Waits between reconnects: 10 ms, doubling to 1 s, reset by any answer. Short at first so
/// a dropped connection costs little; capped so a restarted server is found within a second.
struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (self.0 * 2).min(Self::MAX);
        d
    }
}

/// The loop of one connection slot, until its queue is empty and closed, the deadline
/// passes, or the run is cancelled.
pub(super) async fn run(slot: usize, shared: Arc<Shared>, mut queue: mpsc::Receiver<GeneratedMessage>) -> Tally {
    let mut t = Tally::default();
    let mut link: Option<Link> = None;
    let mut opened = 0u64;
    let mut backoff = Backoff(Backoff::FIRST);
    // A message to send (again) before taking the next from the queue, and whether it was
    // sent already.
    let mut pending: Option<(GeneratedMessage, bool)> = None;
    loop {
        let (msg, sent_before) = match pending.take() {
            Some(p) => p,
            None => match shared.bounded(queue.recv()).await {
                Some(Some(m)) => (m, false),
                _ => break,
            },
        };
        let framed = match link.as_mut() {
            Some(f) => f,
            None => match shared.bounded(connect(&shared)).await {
                None => {
                    t.give_up(&msg, sent_before);
                    break;
                }
                Some(Ok(f)) => {
                    if opened > 0 {
                        t.counts.reconnects += 1;
                    }
                    opened += 1;
                    link.insert(f)
                }
                Some(Err(e)) => {
                    t.counts.connect_failures += 1;
                    tracing::debug!(slot, error = %e, "connect failed");
                    pending = Some((msg, sent_before));
                    if shared.bounded(tokio::time::sleep(backoff.next())).await.is_none() {
                        break;
                    }
                    continue;
                }
            },
        };
        if let Some(bucket) = &shared.bucket {
            if shared.bounded(bucket.acquire()).await.is_none() {
                t.give_up(&msg, sent_before);
                break;
            }
        }
        if sent_before {
            t.counts.retries += 1;
        } else {
            t.first_send(&msg);
        }
        let started = Instant::now();
        let Some(result) = shared
            .bounded(exchange(framed, msg.payload.clone(), shared.ack_timeout))
            .await
        else {
            t.give_up(&msg, true);
            break;
        };
        let failure = match result {
            Exchange::Answer(frame) => {
                t.latencies.record(started.elapsed());
                backoff = Backoff(Backoff::FIRST);
                t.answer(&msg, &frame);
                continue;
            }
            Exchange::Unsendable(e) => {
                tracing::error!(slot, index = msg.index, error = %e, "generated message cannot be framed");
                t.give_up(&msg, true);
                continue;
            }
            Exchange::Timeout => {
                t.counts.timeouts += 1;
                "ACK timeout".to_string()
            }
            Exchange::Lost(e) => {
                t.counts.connection_errors += 1;
                e
            }
        };
        // A late ACK on this connection could be taken for the next message's: start afresh.
        link = None;
        let id = msg.control_id.as_deref().unwrap_or("-");
        tracing::debug!(slot, control_id = id, error = %failure, "no ACK; reconnecting");
        if msg.kind.expects_accept() {
            pending = Some((msg, true));
            if shared.bounded(tokio::time::sleep(backoff.next())).await.is_none() {
                if let Some((m, _)) = pending.take() {
                    t.give_up(&m, true);
                }
                break;
            }
        } else {
            t.counts.malformed_unanswered += 1;
        }
    }
    t
}

async fn connect(shared: &Shared) -> Result<Link, String> {
    let stream = tokio::time::timeout(shared.connect_timeout, TcpStream::connect(shared.addr))
        .await
        .map_err(|_| format!("no connection within {:?}", shared.connect_timeout))?
        .map_err(|e| e.to_string())?;
    // One small message per round trip: Nagle would add tens of milliseconds to each.
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(Framed::new(stream, MllpCodec::with_max_frame(shared.max_frame)))
}

/// Sends one frame and waits for the next frame back, skipping junk between frames.
async fn exchange(link: &mut Link, payload: Bytes, timeout: Duration) -> Exchange {
    let round_trip = async {
        match link.send(payload).await {
            Ok(()) => {}
            Err(e @ MllpError::ForbiddenByte { .. }) => return Exchange::Unsendable(e.to_string()),
            Err(e) => return Exchange::Lost(e.to_string()),
        }
        loop {
            match link.next().await {
                Some(Ok(MllpItem::Frame(frame))) => return Exchange::Answer(frame),
                Some(Ok(MllpItem::Junk { .. })) => continue,
                Some(Err(e)) => return Exchange::Lost(e.to_string()),
                None => return Exchange::Lost("connection closed by the peer".to_string()),
            }
        }
    };
    tokio::time::timeout(timeout, round_trip)
        .await
        .unwrap_or(Exchange::Timeout)
}

impl Tally {
    fn first_send(&mut self, msg: &GeneratedMessage) {
        self.counts.sent += 1;
        match msg.kind {
            Kind::Valid => self.counts.valid_sent += 1,
            Kind::Resend => self.counts.resends_sent += 1,
            Kind::Malformed(_) => self.counts.malformed_sent += 1,
        }
    }

    /// The run ends with `msg` unfinished.
    fn give_up(&mut self, msg: &GeneratedMessage, sent: bool) {
        if !sent {
            return; // Counted as unsent from the totals.
        }
        if msg.kind.expects_accept() {
            self.counts.unacked += 1;
        } else {
            self.counts.malformed_unanswered += 1;
        }
    }

    fn note(&mut self, error: String) {
        if self.errors.len() < 5 && !self.errors.contains(&error) {
            self.errors.push(error);
        }
    }

    fn answer(&mut self, msg: &GeneratedMessage, frame: &[u8]) {
        let c = &mut self.counts;
        let expects_accept = msg.kind.expects_accept();
        let ack = match ack::parse(frame) {
            Ok(a) => a,
            Err(e) => {
                c.unreadable += 1;
                if expects_accept {
                    c.rejected_valid += 1;
                    self.note(format!("unreadable answer: {e}"));
                } else {
                    c.malformed_unanswered += 1;
                }
                return;
            }
        };
        match &ack.code {
            AckCode::AA => c.aa += 1,
            AckCode::AE => c.ae += 1,
            AckCode::AR => c.ar += 1,
            AckCode::CA => c.ca += 1,
            AckCode::CE => c.ce += 1,
            AckCode::CR => c.cr += 1,
            AckCode::Other(_) => c.other_code += 1,
        }
        if !expects_accept {
            if ack.code.is_accept() {
                c.malformed_accepted += 1;
            } else {
                c.malformed_rejected += 1;
            }
            return;
        }
        let sent_id = msg.control_id.as_deref().unwrap_or_default();
        if ack.control_id != sent_id {
            c.msa2_mismatches += 1;
            tracing::warn!(sent = sent_id, acked = %ack.control_id, "MSA-2 does not match MSH-10");
        } else if ack.code.is_accept() {
            c.accepted += 1;
            self.acked.push(ack.control_id);
        } else {
            c.rejected_valid += 1;
            let text = ack.text.unwrap_or_default();
            self.note(format!("{:?} to {}: {text}", ack.code, msg.message_type.unwrap_or("?")));
        }
    }
}
