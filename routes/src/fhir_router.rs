//! The FHIR router stage: what the FHIR server kept becomes canonical events.
//! The batching, ordering and settling are `batch`'s (crate-private).
//!
//! Each ingress message on `medbus.ingress.fhir.<channel>` is a transaction
//! Bundle of the resources one request wrote, as the server resolved them
//! (ids assigned, references rewritten; `POST` entries were created, `PUT`
//! ones updated). Deliveries go in lanes by the request's Patient (the
//! `Medbus-Raw-Patient` header the server sets), one at a time per lane, so
//! one patient's events keep the order of its requests. The server's marks
//! of a fetched batch's requests are read in one statement, and the batch's
//! messages are recorded, each with its outcome, in one transaction after
//! deciding (`batch`, `Stage::RECORD_FIRST` false: a request has no control
//! id, only a redelivery of the same id repeats it). For each delivery:
//! 1. a body the server refused is recorded as rejected and acked;
//! 2. wait for the server's commit of the request (the store marks it in the
//!    resources' transaction); a request the store refused, or that was not
//!    committed within [`COMMIT_GRACE`], is recorded rejected: its client got
//!    an error, so it yields no events;
//! 3. map the request's resources to canonical events (`fhir::inbound::request_events`:
//!    a DiagnosticReport carries the Observations of the request it lists),
//!    looking references up in the same Bundle first, then among the
//!    server's stored resources (a reference was checked before the request
//!    was accepted, so it names something that exists);
//! 4. publish each event with dedupe id `<ingress id>:<n>` (a redelivery
//!    publishes nothing new); then the message is recorded with its outcome
//!    (raw bytes, channel, interaction, status) and acked.
//!
//! The server dry-ran the same mapping before it answered, so a mapping
//! failure here means the referenced data changed in between: dead-lettered
//! with the reason. Store or backbone trouble naks with a delay.

use crate::batch::{Decision, Stage};
use crate::failure::Failure;
use std::collections::HashMap;
use std::time::Duration;

use medbus_adapters::fhir::inbound::request_events;
use medbus_adapters::fhir::server::raw_header;
use medbus_bus::backbone::{open_consumer, BackboneError, ConsumerSpec, Delivery, SharedBackbone};
use medbus_bus::config::BackboneConfig;
use medbus_bus::envelope::{Body, Envelope};
use medbus_bus::store::{FhirRequestState, MessageStatus, NewMessage, SharedStore, StageOutcome};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Pauses before the batch's missing request marks are read again (about
/// 40 ms in all): a commit in flight normally lands within a few milliseconds.
const LOOK_AHEAD_PAUSES: [Duration; 4] = [
    Duration::from_millis(2),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(20),
];

/// Durable consumer name, also the dead-letter stage (`medbus.dlq.router_fhir`).
pub const CONSUMER: &str = "router_fhir";
/// Stage name recorded in the store (the same stage as HL7's router).
pub const STAGE: &str = "router";
/// How long after receipt a kept request may still be committed by the
/// server: longer than the server waits for the store
/// (`medbus_adapters::fhir::server::STORE_DEADLINE`).
pub const COMMIT_GRACE: Duration = Duration::from_secs(30);
const _: () = assert!(COMMIT_GRACE.as_secs() > medbus_adapters::fhir::server::STORE_DEADLINE.as_secs());

/// What the FHIR router needs.
#[derive(Clone)]
pub struct FhirRouterContext {
    /// Backbone to consume from and publish to.
    pub backbone: SharedBackbone,
    /// Store for message records and the server's resources.
    pub store: SharedStore,
    /// Consumer settings.
    pub backbone_config: BackboneConfig,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
}

/// Runs until shutdown.
pub async fn run(ctx: FhirRouterContext) -> Result<(), BackboneError> {
    let spec = ConsumerSpec::new(CONSUMER, "medbus.ingress.fhir.>", &ctx.backbone_config);
    let mut consumer = open_consumer(&ctx.backbone, spec).await?;
    tracing::info!(consumer = CONSUMER, "fhir router consuming");
    let shutdown = ctx.shutdown.clone();
    consumer
        .run_batches(CONSUMER, 256, Duration::from_secs(1), &shutdown, |batch| async {
            crate::batch::route_batch(&ctx, batch).await;
            true
        })
        .await;
    tracing::info!(consumer = CONSUMER, "fhir router stopped");
    Ok(())
}

/// Requests routed side by side (of different patients).
const LANES: usize = 16;

/// The patient a kept request is about (a header the server sets), so that
/// one patient's requests share a lane; None spreads it by position.
fn lane_key(d: &Delivery) -> Option<String> {
    d.headers
        .get(&format!(
            "{}{}",
            medbus_bus::envelope::header::RAW_PREFIX,
            raw_header::PATIENT
        ))
        .cloned()
}

impl Stage for FhirRouterContext {
    type Ready = Ready;
    const PROTOCOL: &'static str = "fhir";
    const LANES: usize = LANES;
    // No control id: only a redelivery of the same id repeats a request.
    const RECORD_FIRST: bool = false;

    fn store(&self) -> &SharedStore {
        &self.store
    }

    fn prepare(&self, d: &Delivery) -> Result<Ready, Failure> {
        prepare(d)
    }

    fn record(r: &Ready) -> &NewMessage {
        &r.record
    }

    fn lane_key(d: &Delivery, _: &Ready) -> Option<String> {
        lane_key(d)
    }

    type Ahead = HashMap<String, FhirRequestState>;

    /// The server's marks of the batch's requests, read at once. The server
    /// keeps a request on the backbone a moment before its commit marks it,
    /// so a busy router often reads a batch before the last commits land:
    /// the missing marks are read again together, after short pauses, for
    /// up to [`LOOK_AHEAD_PAUSES`] (one statement per pause instead of one
    /// per request). A request still not marked (or a failed read) is looked
    /// up again by `not_stored`, which waits up to [`COMMIT_GRACE`].
    async fn look_ahead<'a>(&'a self, ready: Vec<&'a Ready>) -> HashMap<String, FhirRequestState> {
        let mut missing: Vec<String> = ready
            .iter()
            .filter(|r| r.entries.is_ok())
            .map(|r| r.env.id.to_string())
            .collect();
        let mut marks = HashMap::with_capacity(missing.len());
        for pause in std::iter::once(Duration::ZERO).chain(LOOK_AHEAD_PAUSES) {
            if missing.is_empty() || self.shutdown.is_cancelled() {
                break;
            }
            tokio::time::sleep(pause).await;
            match self.store.fhir().fhir_requests(&missing).await {
                Ok(found) => {
                    missing.retain(|id| !found.contains_key(id));
                    marks.extend(found);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "could not read the batch's request marks; one by one");
                    break;
                }
            }
        }
        marks
    }

    fn decide<'a>(
        &'a self,
        d: &'a Delivery,
        r: &'a Ready,
        marks: &'a HashMap<String, FhirRequestState>,
    ) -> impl std::future::Future<Output = Decision> + Send + 'a {
        decide(self, d, r, marks)
    }
}

/// A delivery read, before anything is written.
pub(crate) struct Ready {
    env: Envelope,
    record: NewMessage,
    /// The request's resources (and whether each was created), or why there are none.
    entries: Result<Vec<(Value, bool)>, String>,
    /// True when the server kept the body as refused.
    rejected: bool,
}

/// Reads a delivery: the envelope, the message record, the resources.
fn prepare(d: &Delivery) -> Result<Ready, Failure> {
    let env = Envelope::from_wire(&d.headers, d.payload.clone())
        .map_err(|e| Failure::Permanent(format!("not a medbus envelope: {e}")))?;
    let Body::Raw { headers, bytes } = &env.body else {
        return Err(Failure::Permanent("ingress envelope without a raw body".into()));
    };
    let rejected = headers.get(raw_header::REJECTED).cloned();
    let entries: Result<Vec<(Value, bool)>, String> = match &rejected {
        Some(why) => Err(why.clone()),
        None => serde_json::from_slice::<Value>(bytes)
            .map_err(|e| format!("kept body is not JSON: {e}"))
            .map(|bundle| {
                bundle
                    .get("entry")
                    .and_then(Value::as_array)
                    .map(|entries| {
                        entries
                            .iter()
                            .filter_map(|e| {
                                let created = e.pointer("/request/method").and_then(Value::as_str) == Some("POST");
                                Some((e.get("resource")?.clone(), created))
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            }),
    };
    let record = NewMessage {
        id: env.id,
        correlation_id: env.correlation_id,
        channel: env.source.channel.clone(),
        protocol: env.source.protocol.clone(),
        control_id: None,
        message_type: headers.get(raw_header::INTERACTION).cloned(),
        patient_id: entries
            .as_ref()
            .ok()
            .and_then(|e| e.iter().find_map(|(r, _)| patient_identifier(r))),
        peer: env.source.peer.clone(),
        raw: bytes.clone(),
        headers: headers.clone(),
        received_at: env.received_at,
        status: if rejected.is_some() {
            MessageStatus::Rejected
        } else {
            MessageStatus::Received
        },
        error: rejected.clone(),
    };
    Ok(Ready {
        rejected: rejected.is_some(),
        env,
        record,
        entries,
    })
}

/// Decides a recorded delivery: waits for the request's commit, maps its
/// resources and publishes the events.
async fn decide(
    ctx: &FhirRouterContext,
    d: &Delivery,
    r: &Ready,
    marks: &HashMap<String, FhirRequestState>,
) -> Decision {
    let stage = |status, error: Option<String>| {
        Some(StageOutcome {
            message_id: r.env.id,
            stage: STAGE.to_string(),
            status,
            error,
        })
    };
    let entries = match &r.entries {
        Ok(entries) => entries,
        Err(why) if r.rejected => {
            return Decision {
                stage: stage(MessageStatus::Rejected, Some(why.clone())),
                result: Ok(0),
            }
        }
        Err(why) => {
            return Decision {
                stage: stage(MessageStatus::DeadLettered, Some(why.clone())),
                result: Err(Failure::Permanent(why.clone())),
            }
        }
    };
    let failed = |f: Failure| Decision {
        stage: None,
        result: Err(f),
    };
    match not_stored(ctx, d, &r.env, marks).await {
        Ok(None) => {}
        Ok(Some(why)) => {
            return Decision {
                stage: stage(MessageStatus::Rejected, Some(why)),
                result: Ok(0),
            }
        }
        Err(f) => return failed(f),
    }
    let known = match lookups(ctx, entries).await {
        Ok(known) => known,
        Err(f) => return failed(f),
    };
    let lookup = |t: &str, id: &str| known.get(&(t.to_string(), id.to_string())).cloned();
    // One request's events together: a report carries the observations it lists.
    let events = match request_events(entries, &lookup) {
        Ok(events) => events,
        Err(failed) => {
            let why = failed
                .iter()
                .flat_map(|(i, issues)| {
                    issues
                        .iter()
                        .map(move |issue| format!("entry {i}: {}", issue.diagnostics))
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Decision {
                stage: stage(MessageStatus::DeadLettered, Some(why.clone())),
                result: Err(Failure::Permanent(format!("resources do not map to events: {why}"))),
            };
        }
    };
    for (n, event) in events.iter().enumerate() {
        let dedupe = format!("{}:{n}", r.env.id);
        if let Err(e) = crate::publish::publish_event(&ctx.backbone, &r.env, event, dedupe, None).await {
            return failed(e.into());
        }
    }
    Decision {
        stage: stage(MessageStatus::Processed, None),
        result: Ok(events.len()),
    }
}

/// Why the request was not stored, or None when it was. The server keeps a
/// request on the backbone before it writes the resources, and the client
/// gets a 2xx only when that write commits (marking the request in the same
/// transaction): a request the store refused (the client got 4xx/5xx) must
/// yield no events. The mark normally exists by the time the router sees the
/// request; when it does not yet, the commit is in flight, so wait for it up
/// to [`COMMIT_GRACE`] after receipt (the server gives up on the store well
/// before that), keeping the delivery alive meanwhile.
async fn not_stored(
    ctx: &FhirRouterContext,
    d: &Delivery,
    env: &Envelope,
    marks: &HashMap<String, FhirRequestState>,
) -> Result<Option<String>, Failure> {
    let request = env.id.to_string();
    let mut last_renew = std::time::Instant::now();
    let mut read_ahead = marks.get(&request).cloned();
    loop {
        let mark = match read_ahead.take() {
            Some(mark) => Some(mark),
            None => ctx.store.fhir().fhir_request(&request).await?,
        };
        match mark {
            Some(FhirRequestState::Committed) => return Ok(None),
            Some(FhirRequestState::Refused(why)) => {
                return Ok(Some(format!(
                    "not stored, the client was answered with an error: {why}"
                )))
            }
            None => {}
        }
        let age = (chrono::Utc::now() - env.received_at).to_std().unwrap_or_default();
        if age >= COMMIT_GRACE {
            return Ok(Some(format!(
                "not stored: no commit within {COMMIT_GRACE:?} of receipt (the server stopped or gave up on the store; \
                 the client got no 2xx)"
            )));
        }
        if ctx.shutdown.is_cancelled() {
            return Err(Failure::Transient(
                "shutting down while waiting for the request's commit".into(),
            ));
        }
        if last_renew.elapsed() >= Duration::from_secs(5) {
            if let Err(e) = d.in_progress().await {
                tracing::debug!(error = %e, "could not renew a delivery");
            }
            last_renew = std::time::Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The Bundle's own resources by (type, id), and the stored resources its
/// literal references name.
async fn lookups(
    ctx: &FhirRouterContext,
    entries: &[(Value, bool)],
) -> Result<HashMap<(String, String), Value>, Failure> {
    let mut known = HashMap::new();
    for (resource, _) in entries {
        if let (Some(t), Some(id)) = (
            resource.get("resourceType").and_then(Value::as_str),
            resource.get("id").and_then(Value::as_str),
        ) {
            known.insert((t.to_string(), id.to_string()), resource.clone());
        }
    }
    let mut wanted = Vec::new();
    for (resource, _) in entries {
        collect_references(resource, &mut wanted);
    }
    for key in wanted {
        if known.contains_key(&key) {
            continue;
        }
        if let Some(row) = ctx.store.fhir().fhir_read(&key.0, &key.1).await? {
            known.insert(key, row.resource);
        }
    }
    Ok(known)
}

/// Every literal `Type/id` reference anywhere in `value`.
fn collect_references(value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("reference") {
                let mut parts = r.split('/');
                if let (Some(t), Some(id), None) = (parts.next(), parts.next(), parts.next()) {
                    if medbus_adapters::fhir::inbound::SUPPORTED.contains(&t) {
                        out.push((t.to_string(), id.to_string()));
                    }
                }
            }
            for v in map.values() {
                collect_references(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

/// The first identifier value of a Patient, for the message record's patient column.
fn patient_identifier(resource: &Value) -> Option<String> {
    if resource.get("resourceType").and_then(Value::as_str) != Some("Patient") {
        return None;
    }
    resource
        .pointer("/identifier/0/value")
        .and_then(Value::as_str)
        .map(str::to_string)
}
