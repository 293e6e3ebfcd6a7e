//! The batch skeleton the FHIR and DICOM routers share: a fetched batch
//! costs two store transactions, not two per delivery.
//!
//! 1. each delivery is read ([`Stage::prepare`]); one that cannot be read is
//!    dead-lettered at once;
//! 2. every message is recorded in one transaction; a copy of a message
//!    already kept under another id (a resend seen after the backbone's
//!    dedupe window) is acked and not processed again. When this transaction
//!    fails, each delivery goes steps 2–4 on its own;
//! 3. the deliveries are decided lane by lane ([`Stage::lane_key`]: one
//!    patient's or study's in order, lanes side by side); a lane stops at its
//!    first transient failure, so nothing overtakes a delivery to be retried;
//! 4. every outcome is recorded in one transaction, then each delivery is
//!    settled: ack, nak with a growing delay, or dead-letter. A delivery whose
//!    events are out but whose outcome was not recorded is delivered again
//!    (publishing is idempotent by dedupe id).
//!
//! A stage whose messages have no control id ([`Stage::RECORD_FIRST`] false,
//! the FHIR router) skips step 2: only a redelivery of the same id can repeat
//! a message, so each message is recorded once, with its outcome, in step 4's
//! transaction — one transaction per batch and one write per row.

use std::future::Future;
use std::time::Duration;

use medbus_bus::backbone::lanes::split_by_key;
use medbus_bus::backbone::Delivery;
use medbus_bus::store::{InsertOutcome, NewMessage, SharedStore, StageOutcome};

use crate::failure::Failure;

/// What routing decided for one delivery: the outcome to record (None when
/// nothing is to be recorded now) and how to settle it (Ok: events published).
pub(crate) struct Decision {
    pub stage: Option<StageOutcome>,
    pub result: Result<usize, Failure>,
}

/// One router stage, as the skeleton drives it.
pub(crate) trait Stage: Sync {
    /// A delivery read, before anything is written.
    type Ready: Send + Sync;
    /// Protocol label of logs and the `medbus_routed_total` metric.
    const PROTOCOL: &'static str;
    /// Lanes a batch is spread over.
    const LANES: usize;
    /// True when a copy of a message can arrive under another id (a control
    /// id the store dedupes by): messages are recorded before deciding, as
    /// step 2 says. False when only a redelivery of the same id can repeat a
    /// message: each message is recorded once, with its outcome, after
    /// deciding (one transaction per batch, no second write of the row).
    const RECORD_FIRST: bool;
    /// The store messages and outcomes are recorded in.
    fn store(&self) -> &SharedStore;
    /// Reads a delivery; an error is settled at once (a permanent one dead-letters).
    fn prepare(&self, d: &Delivery) -> Result<Self::Ready, Failure>;
    /// The message record of a read delivery.
    fn record(r: &Self::Ready) -> &NewMessage;
    /// What keeps deliveries in order: the same key, the same lane. None spreads by position.
    fn lane_key(d: &Delivery, r: &Self::Ready) -> Option<String>;
    /// What the stage reads once for a whole batch before deciding any of it
    /// (one store round trip instead of one per delivery).
    type Ahead: Send + Sync;
    /// Reads [`Stage::Ahead`] for the deliveries about to be decided.
    fn look_ahead<'a>(&'a self, ready: Vec<&'a Self::Ready>) -> impl Future<Output = Self::Ahead> + Send + 'a;
    /// Decides a delivery (recorded already when [`Stage::RECORD_FIRST`]):
    /// publishes its events, says what to record.
    fn decide<'a>(
        &'a self,
        d: &'a Delivery,
        r: &'a Self::Ready,
        ahead: &'a Self::Ahead,
    ) -> impl Future<Output = Decision> + Send + 'a;
}

/// Routes a fetched batch (see the module documentation).
pub(crate) async fn route_batch<S: Stage>(stage: &S, batch: Vec<Delivery>) {
    let mut ready = Vec::with_capacity(batch.len());
    for d in batch {
        match stage.prepare(&d) {
            Ok(r) => ready.push((d, r)),
            Err(f) => settle::<S>(d, Err(f)).await,
        }
    }
    if ready.is_empty() {
        return;
    }
    if !S::RECORD_FIRST {
        return decide_then_record(stage, ready).await;
    }
    let records: Vec<NewMessage> = ready.iter().map(|(_, r)| S::record(r).clone()).collect();
    let inserted = match stage.store().insert_messages(&records).await {
        Ok(out) => out,
        Err(e) => {
            tracing::warn!(protocol = S::PROTOCOL, error = %e, messages = ready.len(), "batch insert failed; routing one by one");
            let lanes = split_by_key(ready, S::LANES, |(d, r)| S::lane_key(d, r));
            futures::future::join_all(lanes.into_iter().map(|lane| async move {
                for (d, r) in lane {
                    route_one(stage, d, r).await;
                }
            }))
            .await;
            return;
        }
    };
    let mut fresh = Vec::with_capacity(ready.len());
    for ((d, r), outcome) in ready.into_iter().zip(inserted) {
        match outcome {
            // A copy of a message another delivery recorded: nothing to do.
            InsertOutcome::Duplicate { existing } if existing != S::record(&r).id => settle::<S>(d, Ok(0)).await,
            _ => fresh.push((d, r)),
        }
    }
    let decided = decide_in_lanes(stage, fresh).await;
    let stages: Vec<StageOutcome> = decided.iter().filter_map(|(_, dec)| dec.stage.clone()).collect();
    let recorded = if stages.is_empty() {
        Ok(())
    } else {
        stage.store().record_stages(&stages).await.map_err(|e| e.to_string())
    };
    settle_decided::<S>(decided, recorded).await;
}

/// The batch of a stage that records after deciding: decide every delivery,
/// then record each message with its outcome in one transaction (a delivery
/// that failed transiently is recorded as received, to be decided again).
async fn decide_then_record<S: Stage>(stage: &S, ready: Vec<(Delivery, S::Ready)>) {
    let mut records: Vec<NewMessage> = ready.iter().map(|(_, r)| S::record(r).clone()).collect();
    let decided = decide_in_lanes(stage, ready).await;
    let stages: Vec<StageOutcome> = decided.iter().filter_map(|(_, dec)| dec.stage.clone()).collect();
    for outcome in &stages {
        if let Some(m) = records.iter_mut().find(|m| m.id == outcome.message_id) {
            m.status = outcome.status;
            m.error = outcome.error.clone();
        }
    }
    let recorded = stage
        .store()
        .record_messages(&records, &stages)
        .await
        .map_err(|e| e.to_string());
    settle_decided::<S>(decided, recorded).await;
}

/// Decides deliveries lane by lane after reading what the batch needs
/// ([`Stage::look_ahead`]); a lane stops at its first transient failure.
async fn decide_in_lanes<S: Stage>(stage: &S, ready: Vec<(Delivery, S::Ready)>) -> Vec<(Delivery, Decision)> {
    let ahead = stage.look_ahead(ready.iter().map(|(_, r)| r).collect()).await;
    let ahead = &ahead;
    let lanes = split_by_key(ready, S::LANES, |(d, r)| S::lane_key(d, r));
    let decided: Vec<Vec<(Delivery, Decision)>> = futures::future::join_all(lanes.into_iter().map(|lane| async move {
        let mut out = Vec::with_capacity(lane.len());
        let mut stopped: Option<String> = None;
        for (d, r) in lane {
            let decision = match &stopped {
                Some(why) => Decision {
                    stage: None,
                    result: Err(Failure::Transient(format!(
                        "behind an earlier failure in its lane: {why}"
                    ))),
                },
                None => stage.decide(&d, &r, ahead).await,
            };
            if let Err(Failure::Transient(why)) = &decision.result {
                stopped.get_or_insert_with(|| why.clone());
            }
            out.push((d, decision));
        }
        out
    }))
    .await;
    decided.into_iter().flatten().collect()
}

/// Settles decided deliveries once their outcomes were recorded (or not).
async fn settle_decided<S: Stage>(decided: Vec<(Delivery, Decision)>, recorded: Result<(), String>) {
    futures::future::join_all(decided.into_iter().map(|(d, dec)| {
        let result = match (&recorded, dec.result) {
            // Events are out but the outcome is not recorded: deliver again (publishing is idempotent).
            (Err(why), _) if dec.stage.is_some() => Err(Failure::Transient(why.clone())),
            (_, result) => result,
        };
        settle::<S>(d, result)
    }))
    .await;
}

/// One delivery on its own: record, decide, record the outcome, settle.
async fn route_one<S: Stage>(stage: &S, d: Delivery, r: S::Ready) {
    let result = async {
        if let InsertOutcome::Duplicate { existing } = stage.store().insert_message(S::record(&r)).await? {
            if existing != S::record(&r).id {
                return Ok(0);
            }
        }
        let ahead = stage.look_ahead(vec![&r]).await;
        let decision = stage.decide(&d, &r, &ahead).await;
        if let Some(outcome) = &decision.stage {
            stage.store().record_stages(std::slice::from_ref(outcome)).await?;
        }
        decision.result
    }
    .await;
    settle::<S>(d, result).await;
}

/// Settles a delivery by its result: ack, nak with a growing delay, or dead-letter.
pub(crate) async fn settle<S: Stage>(d: Delivery, result: Result<usize, Failure>) {
    let (outcome, settled) = match result {
        Ok(_) => ("routed", d.ack().await),
        Err(Failure::Transient(why)) => {
            tracing::warn!(protocol = S::PROTOCOL, subject = %d.subject, reason = %why, "routing failed; will retry");
            let delay = Duration::from_millis(500) * d.delivered.min(20);
            ("retrying", d.nak(delay, &why).await.map(|_| ()))
        }
        Err(Failure::Permanent(why)) => {
            tracing::warn!(protocol = S::PROTOCOL, subject = %d.subject, reason = %why, "message dead-lettered");
            ("dead_lettered", d.reject(&why).await)
        }
    };
    if let Err(e) = settled {
        tracing::warn!(error = %e, "could not settle a delivery");
    }
    metrics::counter!("medbus_routed_total", "channel" => S::PROTOCOL, "outcome" => outcome).increment(1);
}
