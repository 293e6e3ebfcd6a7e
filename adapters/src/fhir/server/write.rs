//! The write path every interaction shares: dry-run the canonical events,
//! keep the accepted resources raw on the backbone (durable ack), write them
//! to the store in one transaction. See the module doc of `server`.

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use bytes::Bytes;
use medbus_bus::backbone::BackboneError;
use medbus_bus::envelope::{Envelope, Source};
use medbus_bus::store::{FhirIdentifier, FhirRow, FhirWrite, WriteMode};
use serde_json::{json, Value};

use super::reply::Reply;
use super::{raw_header, FhirServer};
use crate::fhir::inbound::{request_events, Issue, IssueCode};

/// How long a request waits for the store to commit its resources before it
/// is answered 503; well inside the FHIR router's grace for a commit.
pub const STORE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15);

/// Resources already stored or in the same request, by (type, id): what
/// references resolve to and what the event mapping looks up.
pub(super) type Known = HashMap<(String, String), Value>;

/// One resource about to be written.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    /// Its type.
    pub resource_type: String,
    /// Its id (assigned, or the one updated).
    pub id: String,
    /// True when no resource has this id yet.
    pub created: bool,
    /// The version it will have once written.
    pub version: i64,
    /// The resource, with `id` set and the server's meta elements removed.
    pub resource: Value,
    /// Its business identifiers, indexed for search and conditions.
    pub identifiers: Vec<FhirIdentifier>,
    /// Create, or replace the version read.
    pub mode: WriteMode,
}

impl Planned {
    /// A resource to write: sets `id`, drops `meta.versionId`/`lastUpdated`
    /// (the server's to set), and works out version and mode from what is
    /// stored under the id now (`current` = its version, if any).
    pub fn new(
        resource_type: &str,
        id: String,
        mut resource: Value,
        identifiers: &[(Option<String>, String)],
        current: Option<i64>,
    ) -> Self {
        if let Value::Object(map) = &mut resource {
            map.insert("id".into(), Value::String(id.clone()));
            if let Some(Value::Object(meta)) = map.get_mut("meta") {
                meta.remove("versionId");
                meta.remove("lastUpdated");
            }
            if map
                .get("meta")
                .is_some_and(|m| m.as_object().is_some_and(|m| m.is_empty()))
            {
                map.remove("meta");
            }
        }
        let (created, version, mode) = match current {
            Some(v) => (false, v + 1, WriteMode::UpdateIfVersion(v)),
            None => (true, 1, WriteMode::Create),
        };
        Planned {
            resource_type: resource_type.to_string(),
            id,
            created,
            version,
            resource,
            identifiers: identifiers
                .iter()
                .map(|(system, value)| FhirIdentifier {
                    system: system.clone(),
                    value: value.clone(),
                })
                .collect(),
            mode,
        }
    }

    fn key(&self) -> (String, String) {
        (self.resource_type.clone(), self.id.clone())
    }
}

/// Checks that each planned resource maps to canonical events, looking up
/// references in `known` and in the batch itself. Issues name the entry
/// through `expression_of(i)` (e.g. `Bundle.entry[2].resource`).
pub(super) fn dry_run(
    planned: &[Planned],
    known: &Known,
    expression_of: &dyn Fn(usize) -> String,
) -> Result<usize, Vec<Issue>> {
    let mut all = known.clone();
    for p in planned {
        all.insert(p.key(), p.resource.clone());
    }
    let lookup = |t: &str, id: &str| all.get(&(t.to_string(), id.to_string())).cloned();
    let resources: Vec<(Value, bool)> = planned.iter().map(|p| (p.resource.clone(), p.created)).collect();
    request_events(&resources, &lookup)
        .map(|events| events.len())
        .map_err(|failed| {
            failed
                .into_iter()
                .flat_map(|(i, found)| {
                    let at = expression_of(i);
                    found.into_iter().map(move |mut issue| {
                        if !at.is_empty() {
                            issue.diagnostics = format!("{at}: {}", issue.diagnostics);
                        }
                        issue
                    })
                })
                .collect()
        })
}

/// Keeps `planned` raw on the backbone, then writes it to the store in one
/// transaction; the rows as stored, or the answer to give instead.
pub(super) async fn commit(
    server: &FhirServer,
    interaction: &str,
    base: &str,
    planned: Vec<Planned>,
) -> Result<Vec<FhirRow>, Reply> {
    let entries: Vec<Value> = planned
        .iter()
        .map(|p| {
            let mut resource = p.resource.clone();
            if let Value::Object(map) = &mut resource {
                let meta = map.entry("meta").or_insert_with(|| json!({}));
                if let Value::Object(meta) = meta {
                    meta.insert("versionId".into(), Value::String(p.version.to_string()));
                }
            }
            let (method, url) = if p.created {
                ("POST", p.resource_type.clone())
            } else {
                ("PUT", format!("{}/{}", p.resource_type, p.id))
            };
            json!({
                "fullUrl": format!("{base}/{}/{}", p.resource_type, p.id),
                "resource": resource,
                "request": {"method": method, "url": url},
            })
        })
        .collect();
    let kept = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let bytes = Bytes::from(serde_json::to_vec(&kept).unwrap_or_default());
    let patient = patient_of(&planned);
    let started = std::time::Instant::now();
    let outcome = keep(server, interaction, None, patient.as_deref(), bytes).await;
    metrics::histogram!("medbus_fhir_stage_seconds", "stage" => "keep").record(started.elapsed().as_secs_f64());
    let request = match outcome {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, interaction, "fhir request not kept; answering 503");
            return Err(Reply::issue(
                IssueCode::Exception,
                format!("the request could not be kept durably; nothing was stored, send again later ({e})"),
                None,
            )
            .with_status(StatusCode::SERVICE_UNAVAILABLE));
        }
    };
    let writes: Vec<FhirWrite> = planned
        .into_iter()
        .map(|p| FhirWrite {
            resource_type: p.resource_type,
            id: p.id,
            identifiers: p.identifiers,
            resource: p.resource,
            mode: p.mode,
        })
        .collect();
    // The request is marked committed in the resources' transaction, or
    // refused when the store says no: the FHIR router turns only committed
    // requests into events (a refused one's client got an error).
    let started = std::time::Instant::now();
    let written = tokio::time::timeout(STORE_DEADLINE, server.committer.commit(request.clone(), writes)).await;
    metrics::histogram!("medbus_fhir_stage_seconds", "stage" => "commit").record(started.elapsed().as_secs_f64());
    let rows = match written {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            refuse(server, &request, &e.to_string()).await;
            return Err(Reply::store(&e));
        }
        Err(_) => {
            // A refusal that lands first makes a late commit fail on the
            // request's mark, so the client's 503 and the router agree.
            let why = format!("the store did not answer within {STORE_DEADLINE:?}");
            refuse(server, &request, &why).await;
            tracing::error!(interaction, "{why}; answering 503");
            return Err(
                Reply::issue(IssueCode::Transient, format!("{why}; send again later"), None)
                    .with_status(StatusCode::SERVICE_UNAVAILABLE),
            );
        }
    };
    metrics::counter!("medbus_fhir_resources_written_total").increment(rows.len() as u64);
    Ok(rows)
}

/// The Patient a request is about (its logical id): the first Patient
/// written, else the first `subject` that references a Patient. The FHIR
/// router keeps one patient's requests in order by it.
fn patient_of(planned: &[Planned]) -> Option<String> {
    if let Some(p) = planned.iter().find(|p| p.resource_type == "Patient") {
        return Some(p.id.clone());
    }
    planned.iter().find_map(|p| {
        let r = p.resource.pointer("/subject/reference")?.as_str()?;
        r.strip_prefix("Patient/").map(str::to_string)
    })
}

/// Marks a kept request refused so the router yields no events for it. Best
/// effort: when the store cannot take even that, the router waits for a
/// commit that never comes and records the request rejected after its grace.
async fn refuse(server: &FhirServer, request: &str, why: &str) {
    if let Err(e) = server.store.fhir().fhir_refuse(request, why).await {
        tracing::warn!(error = %e, request, "could not mark a refused fhir request");
    }
}

/// Keeps a body that was refused, with the reason, so it can be fixed and
/// sent again. Best effort: the client gets its 4xx either way.
pub(super) async fn keep_rejected(server: &FhirServer, interaction: &str, body: &Bytes, reason: &str) {
    if body.is_empty() {
        return;
    }
    if let Err(e) = keep(server, interaction, Some(reason), None, body.clone()).await {
        tracing::warn!(error = %e, interaction, "refused fhir body not kept");
    }
}

/// Publishes one raw body to the channel's ingress subject and waits for the
/// durable ack; one retry with the same dedupe id when the outcome is unknown.
async fn keep(
    server: &FhirServer,
    interaction: &str,
    rejected: Option<&str>,
    patient: Option<&str>,
    bytes: Bytes,
) -> Result<String, BackboneError> {
    let mut headers = BTreeMap::new();
    headers.insert(raw_header::INTERACTION.to_string(), interaction.to_string());
    if let Some(why) = rejected {
        headers.insert(raw_header::REJECTED.to_string(), why.chars().take(1000).collect());
    }
    if let Some(p) = patient {
        headers.insert(raw_header::PATIENT.to_string(), p.to_string());
    }
    let source = Source {
        channel: server.config.channel.clone(),
        protocol: "fhir".into(),
        peer: None,
    };
    let envelope = Envelope::ingress(source, "fhir.raw", headers, bytes);
    let request = envelope.id.to_string();
    let dedupe = format!("fhir:{}:{}", server.config.channel, envelope.id);
    medbus_bus::backbone::keep::keep_durably(server.backbone.as_ref(), &server.subject, &envelope, dedupe).await?;
    Ok(request)
}
