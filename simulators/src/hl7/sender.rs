//! Sends a stream of generated messages over N concurrent MLLP connections and tallies the
//! answers.
//!
//! Each connection sends one message, waits for its ACK frame, checks MSA-1 and MSA-2, and
//! only then sends the next. Messages are spread over the connections by their ordering key
//! (the patient), so each patient's messages go over one connection in order, as a real
//! feed's would. A timeout or a lost connection closes that connection; it reconnects (with
//! backoff while connects fail) and sends the same message again: at least once, a valid
//! message is done only when AA/CA arrives. Malformed messages are not sent again: a closed
//! connection is a legitimate answer to them.
//!
//! Every run is bounded by its message count and its maximum duration, and only sends to
//! loopback addresses.

mod connection;

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use medbus_adapters::hl7::mllp_codec::DEFAULT_MAX_FRAME;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::generate::GeneratedMessage;
use super::latency::Latencies;
use super::rate::TokenBucket;
use super::report::{Counts, Report};

/// How a run sends.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Where the MLLP listener is; must be a loopback address.
    pub addr: SocketAddr,
    /// Concurrent connections, each with one message in flight.
    pub connections: usize,
    /// How many messages to send.
    pub count: u64,
    /// Target total rate in messages per second; `None` sends as fast as ACKs come back.
    pub rate: Option<f64>,
    /// How long to wait for each ACK before closing the connection and sending again.
    pub ack_timeout: Duration,
    /// How long to wait for a TCP connection.
    pub connect_timeout: Duration,
    /// The run stops after this long, whatever is left.
    pub max_duration: Duration,
    /// Largest ACK frame accepted.
    pub max_frame: usize,
}

impl SenderConfig {
    /// One connection, 1,000 messages, as fast as possible, 5 s ACK timeout, 60 s at most.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            connections: 1,
            count: 1000,
            rate: None,
            ack_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            max_duration: Duration::from_secs(60),
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Load is only ever sent to this machine.
    #[error("{0} is not a loopback address: the simulator only sends to 127.0.0.0/8 or [::1]")]
    NotLoopback(SocketAddr),
    /// Zero connections.
    #[error("at least one connection is needed")]
    NoConnections,
    /// A rate that is zero, negative or not a number.
    #[error("the rate must be a positive number of messages per second, not {0}")]
    BadRate(f64),
    /// A connection task panicked (a bug in the simulator).
    #[error("a connection task failed: {0}")]
    Task(String),
}

/// The report of a run and the control ids accepted in it.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Counts, throughput and latency.
    pub report: Report,
    /// Each MSH-10 answered AA/CA with a matching MSA-2, once, in the order first accepted.
    pub acked: Vec<String>,
}

/// Everything the connection tasks share.
struct Shared {
    addr: SocketAddr,
    ack_timeout: Duration,
    connect_timeout: Duration,
    max_frame: usize,
    deadline: Instant,
    cancel: CancellationToken,
    bucket: Option<TokenBucket>,
}

impl Shared {
    /// Runs `f` unless the deadline passes or the run is cancelled first (then `None`).
    async fn bounded<F: Future>(&self, f: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => None,
            _ = tokio::time::sleep_until(self.deadline) => None,
            out = f => Some(out),
        }
    }
}

/// Queued messages per connection: enough to keep each busy, small enough that a stalled
/// connection holds back little.
const QUEUE: usize = 32;

/// Sends the first `config.count` of `messages`, stopping early at the time limit or when
/// `cancel` fires, and reports what happened.
pub async fn run<I>(config: &SenderConfig, messages: I, cancel: CancellationToken) -> Result<RunResult, SendError>
where
    I: Iterator<Item = GeneratedMessage> + Send + 'static,
{
    if !config.addr.ip().is_loopback() {
        return Err(SendError::NotLoopback(config.addr));
    }
    if config.connections == 0 {
        return Err(SendError::NoConnections);
    }
    if let Some(r) = config.rate.filter(|r| !(r.is_finite() && *r > 0.0)) {
        return Err(SendError::BadRate(r));
    }
    let start = Instant::now();
    let shared = Arc::new(Shared {
        addr: config.addr,
        ack_timeout: config.ack_timeout,
        connect_timeout: config.connect_timeout,
        max_frame: config.max_frame,
        deadline: start + config.max_duration,
        cancel,
        // A burst of one per connection lets every connection start at once.
        bucket: config
            .rate
            .map(|r| TokenBucket::new(r, u32::try_from(config.connections).unwrap_or(u32::MAX))),
    });

    let mut senders = Vec::with_capacity(config.connections);
    let mut tasks = Vec::with_capacity(config.connections);
    for slot in 0..config.connections {
        let (tx, rx) = mpsc::channel(QUEUE);
        senders.push(tx);
        tasks.push(tokio::spawn(connection::run(slot, shared.clone(), rx)));
    }
    let count = config.count;
    let dispatch_shared = shared.clone();
    let dispatcher = tokio::spawn(async move {
        let n = senders.len() as u64;
        for msg in messages.take(usize::try_from(count).unwrap_or(usize::MAX)) {
            let tx = &senders[(msg.key % n) as usize];
            // Stops at the deadline, or when that connection has given up (receiver gone).
            if !matches!(dispatch_shared.bounded(tx.send(msg)).await, Some(Ok(()))) {
                break;
            }
        }
        // Dropping the senders tells each connection that no more messages will come.
    });

    let mut counts = Counts::default();
    let mut latencies = Latencies::default();
    let mut acked = Vec::new();
    let mut seen = HashSet::new();
    let mut sample_errors: Vec<String> = Vec::new();
    for task in tasks {
        let tally = task.await.map_err(|e| SendError::Task(e.to_string()))?;
        counts.add(&tally.counts);
        latencies.merge(tally.latencies);
        acked.extend(tally.acked.into_iter().filter(|id| seen.insert(id.clone())));
        for e in tally.errors {
            if sample_errors.len() < 5 && !sample_errors.contains(&e) {
                sample_errors.push(e);
            }
        }
    }
    dispatcher.await.map_err(|e| SendError::Task(e.to_string()))?;
    let elapsed = start.elapsed().as_secs_f64();

    let unsent = config.count.saturating_sub(counts.sent);
    let answered = counts.accepted
        + counts.rejected_valid
        + counts.msa2_mismatches
        + counts.malformed_rejected
        + counts.malformed_accepted;
    let report = Report {
        target: config.addr.to_string(),
        connections: config.connections,
        rate: config.rate,
        planned: config.count,
        unsent,
        complete: Report::all_as_expected(&counts, unsent),
        throughput_msg_s: if elapsed > 0.0 { answered as f64 / elapsed } else { 0.0 },
        latency: latencies.summary(),
        counts,
        elapsed_s: elapsed,
        sample_errors,
    };
    Ok(RunResult { report, acked })
}
