//! Publishing a service's follow-up events (a critical result, a derived
//! charge) from its outbox.
//!
//! A service writes follow-ups to the outbox in the same transaction as the
//! event that raised them, so they are never lost and never raised twice; it
//! publishes them only after that commit. Each goes out with its event id as
//! the backbone dedupe id, so publishing one twice (two handlers racing, a
//! crash between publish and [`ClinicalStore::mark_published`]) stores it
//! once. A failed publish leaves the rest pending: the next event, the feed's
//! retry, or the service's next start publishes them.
//!
//! [`ClinicalStore::mark_published`]: medbus_bus::store::clinical::ClinicalStore::mark_published

use medbus_bus::backbone::{BackboneError, SharedBackbone};
use medbus_bus::envelope::{Body, Envelope, Source, SCHEMA_VERSION};
use medbus_bus::store::clinical::OutboxEntry;
use medbus_bus::store::{SharedStore, StoreError};

use crate::feed::ApplyError;

/// Outbox entries read (and published) at a time.
const PAGE: u32 = 256;

/// Follow-ups could not all be published; the rest stay in the outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Reading the outbox or marking entries failed.
    #[error("outbox: {0}")]
    Store(#[from] StoreError),
    /// The backbone refused or did not confirm a publish.
    #[error("publishing follow-up event {id}: {source}")]
    Publish {
        /// The event.
        id: uuid::Uuid,
        /// Why.
        source: BackboneError,
    },
    /// An outbox entry does not serialise (it was written by this build, so a bug).
    #[error("follow-up event {id} does not serialise: {why}")]
    Serialise {
        /// The event.
        id: uuid::Uuid,
        /// Why.
        why: String,
    },
}

impl From<OutboxError> for ApplyError {
    /// The event is committed; what failed is only its follow-ups. An error
    /// the feed retries (not bad input) brings the event back, the ledger
    /// skips it, and the follow-ups are published then.
    fn from(e: OutboxError) -> Self {
        match e {
            OutboxError::Store(e) => ApplyError::Store(e),
            other => ApplyError::Store(StoreError::Unavailable(format!(
                "{other} (committed; kept in the outbox and published on retry)"
            ))),
        }
    }
}

/// The envelope a follow-up goes out in: its own id, correlation and
/// causation (not new ones, as [`Envelope::derive_event`] would make), from
/// the service as an internal source.
pub fn envelope(entry: &OutboxEntry) -> Envelope {
    let e = &entry.event;
    Envelope {
        id: e.id,
        correlation_id: e.correlation_id,
        causation_id: e.causation_id,
        source: Source {
            channel: entry.service.clone(),
            protocol: "internal".into(),
            peer: None,
        },
        kind: e.kind.clone(),
        occurred_at: e.occurred_at,
        received_at: entry.created_at,
        schema_version: SCHEMA_VERSION,
        body: Body::Json { value: e.body.clone() },
    }
}

/// Publishes every pending follow-up of `service`, oldest first, and marks
/// each published; returns how many went out.
pub async fn publish_pending(
    store: &SharedStore,
    backbone: &SharedBackbone,
    service: &str,
) -> Result<usize, OutboxError> {
    let mut sent = 0;
    loop {
        let page = store.clinical().pending_outbox(service, PAGE).await?;
        let full = page.len() == PAGE as usize;
        let mut published = Vec::with_capacity(page.len());
        let mut failure = None;
        for entry in &page {
            let id = entry.event.id;
            let wire = match envelope(entry).to_outgoing(entry.event.subject.clone(), id.to_string()) {
                Ok(w) => w,
                Err(e) => {
                    failure = Some(OutboxError::Serialise { id, why: e.to_string() });
                    break;
                }
            };
            if let Err(source) = backbone.publish(wire).await {
                failure = Some(OutboxError::Publish { id, source });
                break;
            }
            published.push(id);
        }
        // What went out is marked even when a later one failed, so it is not sent again.
        if !published.is_empty() {
            store.clinical().mark_published(&published).await?;
            sent += published.len();
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if !full {
            return Ok(sent);
        }
    }
}

/// [`publish_pending`] when a service starts (or restarts): what a crash
/// left in the outbox goes out without waiting for the next event. A failure
/// is logged; the next event publishes it.
pub async fn publish_at_start(store: SharedStore, backbone: SharedBackbone, service: &'static str) {
    match publish_pending(&store, &backbone, service).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(service, published = n, "published follow-up events left in the outbox"),
        Err(e) => tracing::warn!(service, error = %e, "follow-up events still in the outbox"),
    }
}
