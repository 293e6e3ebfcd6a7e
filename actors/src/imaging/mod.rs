//! The imaging service: DICOM studies from `imaging.instance-stored`, and
//! `imaging.study-completed` when a study has been quiet for a while.
//!
//! - [`merge`]: folding instances into a study (series by UID, instances by
//!   SOP Instance UID, exact counts) — pure, unit-tested.
//! - [`fold`]: a batch of events into the stored studies, each study read and
//!   written once per batch.
//! - [`complete`]: the timer sweep that completes quiet studies through the outbox.
//!
//! Each study is one clinical resource (`ImagingStudy`, key = its Study
//! Instance UID token), `registered` while instances arrive, indexed by its
//! identifiers and naming its order by accession number
//! (`urn:medbus:accession|<value>`), so it is linked to the ServiceRequest
//! with that accession now or when the order arrives second. After the quiet
//! time the sweep makes it `available` and raises `imaging.study-completed`
//! with the whole study; a new instance after that makes it `registered`
//! again and it completes again after the next quiet time.
//!
//! Every study write is conditional on the version it was read at, so no
//! writer ever puts back an older copy of a study another one grew: a fold
//! that lost the race folds again from a fresh read, a sweep that lost it
//! leaves the study for later. Several processes may share the `imaging`
//! consumer. Within one process folds and the sweep also take turns on one
//! lock (see [`Imaging`]), so they do not make each other redo their work.

pub mod complete;
pub mod fold;
pub mod merge;

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Handler, ResponseActFuture, Supervised, WrapFuture};
use medbus_bus::backbone::SharedBackbone;
use medbus_bus::canonical::EventKind;
use medbus_bus::store::{SharedStore, StoreError};

pub use self::complete::run_sweeps;
use crate::faults::FaultInjector;
use crate::feed::{self, Apply, ApplyBatch, ApplyError, FeedSpec};
use crate::outbox;

/// The service name: its durable consumer, its ledger and its outbox.
pub const SERVICE: &str = "imaging";

/// The resource type of its rows.
pub const RESOURCE_TYPE: &str = "ImagingStudy";

/// The event kinds this service applies (it raises `imaging.study-completed` itself).
pub const KINDS: [EventKind; 1] = [EventKind::ImagingInstanceStored];

/// Its feed: durable consumer `imaging` on the one subject of the kind above.
pub fn feed_spec() -> FeedSpec {
    FeedSpec {
        name: SERVICE.into(),
        filter: EventKind::ImagingInstanceStored.subject().to_string(),
        kinds: KINDS.to_vec(),
        lanes: 16,
        linger: FOLD_LINGER,
    }
}

/// How long a batch of instance events waits for more once it has started:
/// each fold rewrites every study it touches once, so at a modality's pace
/// larger batches mean fewer rewrites of the same study (docs/perf.md). A
/// study completes after minutes of quiet, so 50 ms is nothing to it.
pub const FOLD_LINGER: Duration = Duration::from_millis(50);

/// Folds of one batch before a conflict goes back to the feed (which retries later).
const FOLD_ATTEMPTS: u32 = 5;

/// What the actor and the completion sweep share.
pub struct Imaging {
    store: SharedStore,
    backbone: SharedBackbone,
    quiet_time: Duration,
    /// Held by a fold from reading its studies to its commit, and by the sweep
    /// per study: one writer of studies at a time in this process.
    study_lock: tokio::sync::Mutex<()>,
}

impl Imaging {
    /// The service state: studies in `store`, completions published to
    /// `backbone` after `quiet_time` without a new instance.
    pub fn new(store: SharedStore, backbone: SharedBackbone, quiet_time: Duration) -> Arc<Imaging> {
        Arc::new(Imaging {
            store,
            backbone,
            quiet_time,
            study_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Folds `items` (one or a batch) in one store transaction; one flag per
    /// event: true when applied now, false when applied before. When another
    /// process wrote one of its studies between the read and the commit, it
    /// folds again from a fresh read, a few times, before the feed retries.
    async fn apply(&self, items: Vec<Apply>) -> Result<Vec<bool>, ApplyError> {
        let mut attempt = 1;
        let applied = loop {
            let _guard = self.study_lock.lock().await;
            let batch = fold::fold_batch(&self.store, &items).await?;
            match self.store.clinical().apply_clinical(SERVICE, &batch).await {
                Ok(applied) => break applied,
                Err(StoreError::Conflict(why)) if attempt < FOLD_ATTEMPTS => {
                    tracing::debug!(
                        service = SERVICE,
                        attempt,
                        why,
                        "a study moved on while folding; folding again"
                    );
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        };
        // Also when already applied: a retry after a failed publish publishes now.
        outbox::publish_pending(&self.store, &self.backbone, SERVICE).await?;
        Ok(applied)
    }
}

/// The actor.
pub struct ImagingActor {
    imaging: Arc<Imaging>,
    faults: FaultInjector,
}

impl ImagingActor {
    /// A service on `imaging` (shared with its sweep); `faults` is the test switch.
    pub fn new(imaging: Arc<Imaging>, faults: FaultInjector) -> Self {
        ImagingActor { imaging, faults }
    }
}

impl Actor for ImagingActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let (store, backbone) = (self.imaging.store.clone(), self.imaging.backbone.clone());
        ctx.spawn(outbox::publish_at_start(store, backbone, SERVICE).into_actor(self));
    }
}

impl Supervised for ImagingActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(service = SERVICE, "restarting after a failure");
        metrics::counter!("medbus_service_restarts_total", "service" => SERVICE).increment(1);
    }
}

impl Handler<Apply> for ImagingActor {
    type Result = ResponseActFuture<Self, Result<bool, ApplyError>>;

    fn handle(&mut self, msg: Apply, _ctx: &mut Self::Context) -> Self::Result {
        let (imaging, faults) = (self.imaging.clone(), self.faults.clone());
        feed::guarded(SERVICE, self, async move {
            faults.maybe_panic(SERVICE);
            let flags = imaging.apply(vec![msg]).await?;
            Ok(flags.first().copied().unwrap_or(false))
        })
    }
}

impl Handler<ApplyBatch> for ImagingActor {
    type Result = ResponseActFuture<Self, Result<Vec<bool>, ApplyError>>;

    fn handle(&mut self, msg: ApplyBatch, _ctx: &mut Self::Context) -> Self::Result {
        let (imaging, faults) = (self.imaging.clone(), self.faults.clone());
        feed::guarded(SERVICE, self, async move {
            faults.maybe_panic(SERVICE);
            imaging.apply(msg.items).await
        })
    }
}
