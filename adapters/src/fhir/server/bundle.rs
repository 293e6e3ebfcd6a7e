//! `POST /fhir` with a Bundle: a `transaction` is processed whole (every
//! entry written in one store transaction, or none; `urn:uuid` references
//! between entries rewritten to the ids assigned), a `batch` entry by entry
//! (each with its own status; entries may not refer to each other).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde_json::{json, Value};

use super::reply::{location, store_issue, Reply};
use super::single::{check_if_match, conditional_match, id_held_elsewhere, read_body};
use super::write::{commit, dry_run, keep_rejected, Known, Planned};
use super::{base_url, references, FhirServer};
use crate::fhir::inbound::{
    check_resource, parse_bundle, parse_json, rewrite_references, BundleEntry, BundleKind, Issue, IssueCode, Method,
};

/// `POST /fhir`.
pub(super) async fn bundle(
    State(server): State<Arc<FhirServer>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let started = std::time::Instant::now();
    let (reply, kind) = run(&server, &headers, body).await;
    metrics::counter!("medbus_fhir_requests_total", "interaction" => kind, "status" => reply.status.as_str().to_string())
        .increment(1);
    metrics::histogram!("medbus_fhir_request_seconds", "interaction" => kind, "outcome" => if reply.status.is_success() { "ok" } else { "refused" })
        .record(started.elapsed().as_secs_f64());
    reply
}

async fn run(server: &FhirServer, headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> (Reply, &'static str) {
    let bytes = match read_body(headers, body) {
        Ok(b) => b,
        Err(reply) => return (reply, "bundle"),
    };
    let parsed = parse_json(&bytes).map_err(|i| vec![i]).and_then(|v| parse_bundle(&v));
    let (kind, entries) = match parsed {
        Ok(ok) => ok,
        Err(issues) => {
            keep_rejected(server, "bundle", &bytes, &first(&issues)).await;
            return (Reply::issues(issues), "bundle");
        }
    };
    match kind {
        BundleKind::Transaction => match transaction(server, headers, entries).await {
            Ok(reply) => (reply, "transaction"),
            Err(stop) => {
                let reason = first(&stop.issues);
                let reply = stop.reply();
                // A store that could not be reached says nothing about the body: not kept as refused.
                if !reply.status.is_server_error() {
                    keep_rejected(server, "transaction", &bytes, &reason).await;
                }
                (reply, "transaction")
            }
        },
        BundleKind::Batch => (batch(server, headers, entries).await, "batch"),
    }
}

fn first(issues: &[Issue]) -> String {
    issues.first().map(|i| i.diagnostics.clone()).unwrap_or_default()
}

fn issue(code: IssueCode, diagnostics: String, expression: String) -> Vec<Issue> {
    vec![Issue {
        code,
        diagnostics,
        expression: Some(expression),
    }]
}

/// Why a transaction stops (nothing written): its issues, and the status
/// when their codes alone do not say it (412: `ifMatch`, several matches).
struct Stop {
    issues: Vec<Issue>,
    status: Option<StatusCode>,
}

impl From<Vec<Issue>> for Stop {
    fn from(issues: Vec<Issue>) -> Self {
        Stop { issues, status: None }
    }
}

impl Stop {
    fn reply(self) -> Reply {
        let reply = Reply::issues(self.issues);
        match self.status {
            Some(status) => reply.with_status(status),
            None => reply,
        }
    }
}

/// What one transaction entry comes to.
enum Resolved {
    /// A conditional create that matched: nothing written.
    Existing(medbus_bus::store::FhirRow),
    /// Written: the index into the planned writes.
    Write(usize),
}

/// A whole transaction, or the issues that stop it (nothing written then).
async fn transaction(server: &FhirServer, headers: &HeaderMap, entries: Vec<BundleEntry>) -> Result<Reply, Stop> {
    let base = base_url(headers);
    // The same issue (and status: 503 when the store may come back) as a single request gets.
    let store_issue = |e: medbus_bus::store::StoreError, at: String| -> Stop {
        vec![Issue {
            expression: Some(at),
            ..store_issue(&e)
        }]
        .into()
    };
    // 1. Each entry's target: an existing match, or an id to write under.
    let mut targets: Vec<(BundleEntry, String, Option<i64>, Option<medbus_bus::store::FhirRow>)> = Vec::new();
    for entry in entries {
        let at = format!("Bundle.entry[{}]", entry.index);
        let Some(resource) = entry.resource.as_ref() else {
            return Err(issue(
                IssueCode::NotSupported,
                "only POST and PUT entries with a resource are supported in a transaction".into(),
                format!("{at}.request.method"),
            )
            .into());
        };
        let resource_type = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let body_id = resource.get("id").and_then(Value::as_str).map(str::to_string);
        let (id, current, existing) = match entry.method {
            Method::Post => match &entry.if_none_exist {
                Some(cond) => match conditional_match(server, &resource_type, cond).await {
                    Ok(Some(row)) => (row.id.clone(), Some(row.version), Some(row)),
                    Ok(None) => (uuid::Uuid::new_v4().to_string(), None, None),
                    Err(reply) => return Err(reply_issues(reply, format!("{at}.request.ifNoneExist"))),
                },
                None => (uuid::Uuid::new_v4().to_string(), None, None),
            },
            Method::Put => {
                let url = entry.url.trim_start_matches('/');
                if let Some((t, query)) = url.split_once('?') {
                    if t != resource_type {
                        return Err(issue(
                            IssueCode::Invalid,
                            format!("request.url names {t}, the resource is a {resource_type}"),
                            format!("{at}.request.url"),
                        )
                        .into());
                    }
                    let current = match conditional_match(server, &resource_type, query).await {
                        Ok(Some(row)) => {
                            if body_id.as_deref().is_some_and(|b| b != row.id) {
                                return Err(issue(
                                    IssueCode::Invalid,
                                    format!(
                                        "the resource's id differs from the one matching the condition ({})",
                                        row.id
                                    ),
                                    format!("{at}.resource.id"),
                                )
                                .into());
                            }
                            Some((row.id, row.version))
                        }
                        Ok(None) => None,
                        Err(reply) => return Err(reply_issues(reply, format!("{at}.request.url"))),
                    };
                    let (id, current) = match current {
                        Some((id, version)) => (id, Some(version)),
                        None => match body_id.clone() {
                            Some(id) => {
                                let stored = server
                                    .store
                                    .fhir()
                                    .fhir_read(&resource_type, &id)
                                    .await
                                    .map_err(|e| store_issue(e, at.clone()))?;
                                if stored.is_some() {
                                    return Err(reply_issues(
                                        id_held_elsewhere(&resource_type, &id),
                                        format!("{at}.resource.id"),
                                    ));
                                }
                                (id, None)
                            }
                            None => (uuid::Uuid::new_v4().to_string(), None),
                        },
                    };
                    if let Some(reply) = check_if_match(entry.if_match.as_deref(), current) {
                        return Err(reply_issues(reply, format!("{at}.request.ifMatch")));
                    }
                    (id, current, None)
                } else {
                    match references::literal(url) {
                        Some((t, id)) if t == resource_type && body_id.as_deref() == Some(id.as_str()) => {
                            let current = server
                                .store
                                .fhir()
                                .fhir_read(&resource_type, &id)
                                .await
                                .map_err(|e| store_issue(e, at.clone()))?
                                .map(|r| r.version);
                            if let Some(reply) = check_if_match(entry.if_match.as_deref(), current) {
                                return Err(reply_issues(reply, format!("{at}.request.ifMatch")));
                            }
                            (id, current, None)
                        }
                        _ => {
                            return Err(issue(
                                IssueCode::Invalid,
                                format!(
                                    "request.url {url:?} must be {resource_type}/<the resource's id> or {resource_type}?identifier=…"
                                ),
                                format!("{at}.request.url"),
                            )
                            .into())
                        }
                    }
                }
            }
            _ => {
                return Err(issue(
                    IssueCode::NotSupported,
                    "only POST and PUT entries are supported in a transaction".into(),
                    format!("{at}.request.method"),
                )
                .into());
            }
        };
        targets.push((entry, id, current, existing));
    }
    // 2. fullUrl → Type/id, and no resource written twice.
    let mut map = HashMap::new();
    let mut local = HashSet::new();
    for (entry, id, _, existing) in &targets {
        let t = entry
            .resource
            .as_ref()
            .and_then(|r| r.get("resourceType"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(full) = &entry.full_url {
            map.insert(full.clone(), format!("{t}/{id}"));
        }
        if existing.is_none() && !local.insert((t.to_string(), id.clone())) {
            return Err(issue(
                IssueCode::Duplicate,
                format!("{t}/{id} is written by two entries"),
                format!("Bundle.entry[{}]", entry.index),
            )
            .into());
        }
    }
    // 3. Rewrite references, resolve them, plan the writes.
    let mut known = Known::new();
    let mut planned = Vec::new();
    let mut resolved = Vec::new();
    let mut entry_of = Vec::new();
    for (entry, id, current, existing) in targets {
        let at = format!("Bundle.entry[{}]", entry.index);
        if let Some(row) = existing {
            resolved.push(Resolved::Existing(row));
            continue;
        }
        let Some(mut resource) = entry.resource else { continue };
        let checked = check_resource(&resource, None).map_err(|issues| prefixed(issues, &at))?;
        references::resolve(
            server,
            &checked.references,
            &format!("{at}.resource"),
            &map,
            &local,
            &mut known,
        )
        .await?;
        rewrite_references(&mut resource, &map);
        let t = checked.resource_type.clone();
        resolved.push(Resolved::Write(planned.len()));
        entry_of.push(entry.index);
        planned.push(Planned::new(&t, id, resource, &checked.identifiers, current));
    }
    dry_run(&planned, &known, &|i| {
        format!("Bundle.entry[{}]", entry_of.get(i).copied().unwrap_or(i))
    })?;
    let created: Vec<bool> = planned.iter().map(|p| p.created).collect();
    let rows = if planned.is_empty() {
        Vec::new()
    } else {
        match commit(server, "transaction", &base, planned).await {
            Ok(rows) => rows,
            Err(reply) => return Ok(reply),
        }
    };
    let entry: Vec<Value> = resolved
        .iter()
        .map(|r| match r {
            Resolved::Existing(row) => response_entry(row, "200 OK", &base),
            Resolved::Write(i) => match rows.get(*i) {
                Some(row) => response_entry(
                    row,
                    if created.get(*i).copied().unwrap_or(false) {
                        "201 Created"
                    } else {
                        "200 OK"
                    },
                    &base,
                ),
                None => json!({"response": {"status": "500 Internal Server Error"}}),
            },
        })
        .collect();
    Ok(Reply::json(
        StatusCode::OK,
        json!({"resourceType": "Bundle", "type": "transaction-response", "entry": entry}),
    ))
}

/// Each entry on its own, as if sent alone; never fails as a whole.
async fn batch(server: &FhirServer, headers: &HeaderMap, entries: Vec<BundleEntry>) -> Reply {
    let base = base_url(headers);
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let reply = super::single::batch_entry(server, headers, &entry).await;
        let status = format!(
            "{} {}",
            reply.status.as_u16(),
            reply.status.canonical_reason().unwrap_or_default()
        );
        let body = if reply.status.is_success() {
            let resource_type = reply
                .body
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let id = reply.body.get("id").and_then(Value::as_str).unwrap_or_default();
            let version = reply
                .body
                .pointer("/meta/versionId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            json!({"response": {"status": status, "location": format!("{base}/{resource_type}/{id}/_history/{version}"), "etag": format!("W/\"{version}\"")}})
        } else {
            json!({"response": {"status": status, "outcome": reply.body}})
        };
        out.push(body);
    }
    Reply::json(
        StatusCode::OK,
        json!({"resourceType": "Bundle", "type": "batch-response", "entry": out}),
    )
}

fn response_entry(row: &medbus_bus::store::FhirRow, status: &str, base: &str) -> Value {
    json!({
        "fullUrl": format!("{base}/{}/{}", row.resource_type, row.id),
        "response": {
            "status": status,
            "location": location(row, base),
            "etag": format!("W/\"{}\"", row.version),
            "lastModified": row.last_updated.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    })
}

/// Issues of one entry, named by where it is in the Bundle.
fn prefixed(issues: Vec<Issue>, at: &str) -> Vec<Issue> {
    issues
        .into_iter()
        .map(|mut i| {
            i.expression = i.expression.map(|e| {
                let inner = e.split_once('.').map_or(e.as_str(), |(_, rest)| rest).to_string();
                format!("{at}.resource.{inner}")
            });
            i
        })
        .collect()
}

/// A reply's issue and status, for a transaction that stops; the expression names the entry.
fn reply_issues(reply: Reply, at: String) -> Stop {
    let diagnostics = reply
        .body
        .pointer("/issue/0/diagnostics")
        .and_then(Value::as_str)
        .unwrap_or("the condition could not be evaluated")
        .to_string();
    let code = match reply.body.pointer("/issue/0/code").and_then(Value::as_str) {
        Some("duplicate") => IssueCode::Duplicate,
        Some("conflict") => IssueCode::Conflict,
        Some("transient") => IssueCode::Transient,
        Some("exception") => IssueCode::Exception,
        _ => IssueCode::Invalid,
    };
    Stop {
        issues: issue(code, diagnostics, at),
        status: Some(reply.status),
    }
}
