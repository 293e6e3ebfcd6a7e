//! The DICOM router stage: each instance the SCP kept becomes one
//! `imaging.instance-stored` event.
//!
//! Each ingress message on `medbus.ingress.dicom.<channel>` (kind
//! `dicom.instance`) carries the instance's metadata as JSON and, in raw
//! headers, where its file is (see `medbus_adapters::dicom::ingest`). For each:
//! 1. record the message in the store, with the SOP Instance UID as control
//!    id: a resend of the same instance seen after the backbone's dedupe
//!    window is kept once and not processed again;
//! 2. map it (`medbus_adapters::dicom::canonical`: the Patient with the
//!    channel's `patient_id_authority`, the ImagingStudy with the one series
//!    and instance, the accession and the order it names). A body that is not
//!    instance metadata, or UIDs that are not UIDs, are recorded as
//!    dead-lettered and go to `medbus.dlq.router_dicom` with the reason (the
//!    raw body stays in the store);
//! 3. publish the event with dedupe id `<ingress id>:0`, so a redelivery
//!    publishes nothing new; record the outcome; ack.
//!
//! Lanes go by the patient's key, else the Study Instance UID, so one
//! patient's (and one study's) instances are published in the order received.
//! Batching, lanes and settling are `batch`'s (crate-private); store or backbone
//! trouble naks with a delay.

mod read;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use medbus_bus::backbone::{open_consumer, BackboneError, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::config::{BackboneConfig, Config};
use medbus_bus::store::{MessageStatus, NewMessage, SharedStore, StageOutcome};
use tokio_util::sync::CancellationToken;

use crate::batch::{Decision, Stage};
use crate::failure::Failure;
use read::Ready;

/// Durable consumer name, also the dead-letter stage (`medbus.dlq.router_dicom`).
pub const CONSUMER: &str = "router_dicom";
/// Stage name recorded in the store (the same stage as the other routers').
pub const STAGE: &str = "router";
/// Deliveries taken at once.
const BATCH: usize = 256;
/// Lanes a batch is spread over.
const LANES: usize = 16;

/// What the DICOM router needs.
#[derive(Clone)]
pub struct DicomRouterContext {
    /// Backbone to consume from and publish to.
    pub backbone: SharedBackbone,
    /// Store for message records.
    pub store: SharedStore,
    /// Consumer settings.
    pub backbone_config: BackboneConfig,
    /// DICOM channel name → the authority of its Patient IDs
    /// (`[dicom.<name>] patient_id_authority`); absent: no system.
    pub patient_id_authorities: Arc<BTreeMap<String, String>>,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
}

impl DicomRouterContext {
    /// The router's context from the configuration; None when no DICOM
    /// channel is enabled (nothing to route).
    pub fn from_config(
        config: &Config,
        backbone: SharedBackbone,
        store: SharedStore,
        shutdown: &CancellationToken,
    ) -> Option<Self> {
        if !config.dicom.values().any(|c| c.enabled) {
            return None;
        }
        let patient_id_authorities = config
            .dicom
            .iter()
            .filter_map(|(name, c)| {
                medbus_bus::config::dicom::patient_id_authority(c).map(|a| (name.clone(), a.to_string()))
            })
            .collect();
        Some(DicomRouterContext {
            backbone,
            store,
            backbone_config: config.backbone.clone(),
            patient_id_authorities: Arc::new(patient_id_authorities),
            shutdown: shutdown.clone(),
        })
    }
}

/// Runs until shutdown.
pub async fn run(ctx: DicomRouterContext) -> Result<(), BackboneError> {
    let spec = ConsumerSpec::new(CONSUMER, "medbus.ingress.dicom.>", &ctx.backbone_config);
    let mut consumer = open_consumer(&ctx.backbone, spec).await?;
    tracing::info!(consumer = CONSUMER, "dicom router consuming");
    let shutdown = ctx.shutdown.clone();
    consumer
        .run_batches(CONSUMER, BATCH, Duration::from_secs(1), &shutdown, |batch| async {
            crate::batch::route_batch(&ctx, batch).await;
            true
        })
        .await;
    tracing::info!(consumer = CONSUMER, "dicom router stopped");
    Ok(())
}

/// [`run`], logging an error it stops with: what the binary spawns.
pub async fn serve(ctx: DicomRouterContext) {
    if let Err(e) = run(ctx).await {
        tracing::error!(error = %e, "dicom router stopped with an error");
    }
}

impl Stage for DicomRouterContext {
    type Ready = Ready;
    const PROTOCOL: &'static str = "dicom";
    const LANES: usize = LANES;
    // A resent instance comes under a new id: the SOP Instance UID (control id) finds it.
    const RECORD_FIRST: bool = true;

    fn store(&self) -> &SharedStore {
        &self.store
    }

    fn prepare(&self, d: &Delivery) -> Result<Ready, Failure> {
        read::prepare(d, &self.patient_id_authorities).map_err(Failure::Permanent)
    }

    fn record(r: &Ready) -> &NewMessage {
        &r.record
    }

    fn lane_key(_: &Delivery, r: &Ready) -> Option<String> {
        r.lane.clone()
    }

    type Ahead = ();

    async fn look_ahead<'a>(&'a self, _: Vec<&'a Ready>) {}

    fn decide<'a>(&'a self, _: &'a Delivery, r: &'a Ready, _: &'a ()) -> impl Future<Output = Decision> + Send + 'a {
        decide(self, r)
    }
}

/// Publishes the instance's event, or dead-letters what does not map.
async fn decide(ctx: &DicomRouterContext, r: &Ready) -> Decision {
    let stage = |status, error: Option<String>| {
        Some(StageOutcome {
            message_id: r.env.id,
            stage: STAGE.to_string(),
            status,
            error,
        })
    };
    let event = match &r.event {
        Ok(event) => event,
        Err(why) => {
            return Decision {
                stage: stage(MessageStatus::DeadLettered, Some(why.clone())),
                result: Err(Failure::Permanent(why.clone())),
            }
        }
    };
    let dedupe = format!("{}:0", r.env.id);
    match crate::publish::publish_event(&ctx.backbone, &r.env, event, dedupe, None).await {
        Ok(()) => Decision {
            stage: stage(MessageStatus::Processed, None),
            result: Ok(1),
        },
        Err(e) => Decision {
            stage: None,
            result: Err(e.into()),
        },
    }
}
