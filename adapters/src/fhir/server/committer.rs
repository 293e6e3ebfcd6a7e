//! Group commit: the store writes of requests in flight at the same moment
//! share one database transaction, so a burst of clients pays for one
//! commit (and one log flush) per batch instead of one per request.
//!
//! A request hands its writes to a queue and waits for its own result. A few
//! workers each take what is queued (up to [`MAX_BATCH`] requests, never
//! waiting for more: an idle server commits a lone request at once) and
//! commit it with [`FhirStore::fhir_commit_many`], which falls back to one
//! transaction per request when the batch fails, so one request's conflict
//! is never another's.
//!
//! [`FhirStore::fhir_commit_many`]: medbus_bus::store::FhirStore::fhir_commit_many

use std::sync::Arc;

use medbus_bus::store::{FhirCommit, FhirRow, FhirWrite, SharedStore, StoreError};
use tokio::sync::{mpsc, oneshot, Mutex};

/// Most requests in one transaction.
const MAX_BATCH: usize = 64;
/// Transactions in progress at once, at most: one commits while the next
/// fills. A store with fewer concurrent writers gets fewer workers (SQLite:
/// one), so requests that arrive during a commit join the next batch instead
/// of queueing for the writer in batches of one (2,053 against 1,523 req/s,
/// 16 clients, embedded; docs/perf.md).
const WORKERS: usize = 4;

type Reply = oneshot::Sender<Result<Vec<FhirRow>, StoreError>>;

/// The queue in front of the store's FHIR writes.
pub(super) struct Committer {
    queue: mpsc::Sender<(FhirCommit, Reply)>,
}

impl Committer {
    /// Starts the workers (on the current tokio runtime); they stop when the
    /// committer is dropped and the queue is empty.
    pub fn start(store: SharedStore) -> Self {
        let (queue, rx) = mpsc::channel(MAX_BATCH * WORKERS * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..WORKERS.min(store.concurrent_writers()).max(1) {
            tokio::spawn(work(store.clone(), rx.clone()));
        }
        Committer { queue }
    }

    /// Writes `writes` and marks `request` committed, in a transaction
    /// shared with other requests in flight; this request's result.
    pub async fn commit(&self, request: String, writes: Vec<FhirWrite>) -> Result<Vec<FhirRow>, StoreError> {
        let stopped = || StoreError::Unavailable("the FHIR store writer has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((FhirCommit { request, writes }, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// One worker: takes what is queued, commits it, answers each request.
async fn work(store: SharedStore, rx: Arc<Mutex<mpsc::Receiver<(FhirCommit, Reply)>>>) {
    loop {
        let mut commits = Vec::new();
        let mut replies = Vec::new();
        {
            let mut rx = rx.lock().await;
            let Some((c, r)) = rx.recv().await else { return };
            commits.push(c);
            replies.push(r);
            while commits.len() < MAX_BATCH {
                let Ok((c, r)) = rx.try_recv() else { break };
                commits.push(c);
                replies.push(r);
            }
        }
        metrics::histogram!("medbus_fhir_commit_batch_requests").record(commits.len() as f64);
        let started = std::time::Instant::now();
        let results = store.fhir().fhir_commit_many(&commits).await;
        metrics::histogram!("medbus_fhir_stage_seconds", "stage" => "store").record(started.elapsed().as_secs_f64());
        for (reply, result) in replies.into_iter().zip(results) {
            // The request may have given up (its deadline passed): nothing to tell.
            let _ = reply.send(result);
        }
    }
}
