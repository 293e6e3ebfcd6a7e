//! Interactions on one resource type: create, update, conditional update,
//! read, vread, search by identifier; and the CapabilityStatement.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method as HttpMethod, StatusCode, Uri};
use bytes::Bytes;
use serde_json::{json, Value};

use super::query::{identifier_token, pairs, IdentifierToken};
use super::reply::{with_meta, Reply};
use super::write::{commit, dry_run, keep_rejected, Known, Planned};
use super::{base_url, capability, references, FhirServer};
use crate::fhir::inbound::{check_resource, parse_json, BundleEntry, Checked, IssueCode, Method, SUPPORTED};

type Server = State<Arc<FhirServer>>;

/// `GET /fhir/metadata`.
pub(super) async fn metadata(headers: HeaderMap) -> Reply {
    Reply::json(StatusCode::OK, capability::statement(&base_url(&headers)))
}

/// `POST /fhir/{type}`: create; with `If-None-Exist: identifier=…` nothing
/// is created when a match exists (200 with it).
pub(super) async fn create(
    State(server): Server,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let condition = headers
        .get("if-none-exist")
        .map(|v| v.to_str().map(str::to_string).unwrap_or_default());
    write_one(&server, &headers, &resource_type, body, Target::Create(condition)).await
}

/// `PUT /fhir/{type}/{id}`: update, or create under that id.
pub(super) async fn update(
    State(server): Server,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    write_one(&server, &headers, &resource_type, body, Target::Update(id)).await
}

/// `PUT /fhir/{type}?identifier=…`: update the one match, or create when none.
pub(super) async fn conditional_update(
    State(server): Server,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let query = query.unwrap_or_default();
    write_one(&server, &headers, &resource_type, body, Target::Conditional(query)).await
}

/// `GET /fhir/{type}/{id}`.
pub(super) async fn read(
    State(server): Server,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    if let Some(refused) = unsupported(&resource_type) {
        return refused;
    }
    match server.store.fhir().fhir_read(&resource_type, &id).await {
        Ok(Some(row)) => Reply::resource(StatusCode::OK, &row, &base_url(&headers)),
        Ok(None) => not_found(&resource_type, &id),
        Err(e) => Reply::store(&e),
    }
}

/// `GET /fhir/{type}/{id}/_history/{vid}`: only the current version is kept.
pub(super) async fn vread(
    State(server): Server,
    Path((resource_type, id, version)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Reply {
    if let Some(refused) = unsupported(&resource_type) {
        return refused;
    }
    match server.store.fhir().fhir_read(&resource_type, &id).await {
        Ok(Some(row)) if row.version.to_string() == version => {
            Reply::resource(StatusCode::OK, &row, &base_url(&headers))
        }
        Ok(Some(row)) => Reply::issue(
            IssueCode::NotFound,
            format!(
                "{resource_type}/{id} is at version {}; earlier versions are not kept",
                row.version
            ),
            None,
        )
        .with_status(StatusCode::NOT_FOUND),
        Ok(None) => not_found(&resource_type, &id),
        Err(e) => Reply::store(&e),
    }
}

/// `GET /fhir/{type}?identifier=…[&_count=n]`: a `searchset` Bundle.
pub(super) async fn search(
    State(server): Server,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Reply {
    if let Some(refused) = unsupported(&resource_type) {
        return refused;
    }
    let query = query.unwrap_or_default();
    let mut token = None;
    let mut count = server.config.max_search_results;
    for (name, value) in pairs(&query) {
        match name.as_str() {
            "identifier" => match identifier_token(&value) {
                Some(t) if token.is_none() => token = Some(t),
                Some(_) => return search_issue("only one identifier parameter is supported"),
                None => return search_issue(&format!("identifier={value:?} is not system|value, |value or value")),
            },
            "_count" => match value.parse::<u32>() {
                Ok(n) => count = n.min(count),
                Err(_) => return search_issue(&format!("_count={value:?} is not a number")),
            },
            // Output format and pretty-printing do not change what is found.
            "_format" | "_pretty" => {}
            other => return search_issue(&format!("search parameter {other:?} is not supported; use identifier")),
        }
    }
    let Some(token) = token else {
        return search_issue("a search needs identifier=system|value");
    };
    let base = base_url(&headers);
    // One more than shown: whether there are more matches than `count`.
    match find(&server, &resource_type, &token, count.saturating_add(1)).await {
        Ok(mut rows) => {
            // The total is known only when every match is shown (R4 lets it be left out otherwise).
            let total = (rows.len() <= count as usize).then_some(rows.len());
            rows.truncate(count as usize);
            let entry: Vec<Value> = rows
                .iter()
                .map(|row| {
                    json!({
                        "fullUrl": format!("{base}/{}/{}", row.resource_type, row.id),
                        "resource": with_meta(row),
                        "search": {"mode": "match"},
                    })
                })
                .collect();
            let mut bundle = json!({
                "resourceType": "Bundle",
                "type": "searchset",
                "link": [{"relation": "self", "url": format!("{base}/{resource_type}?{query}")}],
                "entry": entry,
            });
            if let (Some(total), Value::Object(map)) = (total, &mut bundle) {
                map.insert("total".into(), json!(total));
            }
            Reply::json(StatusCode::OK, bundle)
        }
        Err(reply) => reply,
    }
}

/// What a write names as its target.
enum Target {
    /// POST, with the If-None-Exist query if any.
    Create(Option<String>),
    /// PUT to an id.
    Update(String),
    /// PUT with a search query.
    Conditional(String),
}

/// One resource through the write path.
async fn write_one(
    server: &FhirServer,
    headers: &HeaderMap,
    resource_type: &str,
    body: Result<Bytes, BytesRejection>,
    target: Target,
) -> Reply {
    let verb = match target {
        Target::Create(_) => "create",
        _ => "update",
    };
    let interaction = format!("{verb} {resource_type}");
    let started = std::time::Instant::now();
    let reply = write_checked(server, headers, resource_type, body, target, &interaction).await;
    let outcome = if reply.status.is_success() { "ok" } else { "refused" };
    metrics::counter!("medbus_fhir_requests_total", "interaction" => verb, "status" => reply.status.as_str().to_string())
        .increment(1);
    metrics::histogram!("medbus_fhir_request_seconds", "interaction" => verb, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    reply
}

async fn write_checked(
    server: &FhirServer,
    headers: &HeaderMap,
    resource_type: &str,
    body: Result<Bytes, BytesRejection>,
    target: Target,
    interaction: &str,
) -> Reply {
    if let Some(refused) = unsupported(resource_type) {
        return refused;
    }
    let bytes = match read_body(headers, body) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let checked = match parse_json(&bytes)
        .map_err(|i| vec![i])
        .and_then(|value| check_resource(&value, Some(resource_type)).map(|checked| (value, checked)))
    {
        Ok(ok) => ok,
        Err(issues) => {
            let reason = issues.first().map(|i| i.diagnostics.clone()).unwrap_or_default();
            keep_rejected(server, interaction, &bytes, &reason).await;
            return Reply::issues(issues);
        }
    };
    let (value, checked) = checked;
    let base = base_url(headers);
    let body_id = value.get("id").and_then(Value::as_str).map(str::to_string);
    // Which id, and what is stored under it now.
    let (id, current) = match target {
        Target::Create(condition) => {
            if let Some(condition) = condition {
                match conditional_match(server, resource_type, &condition).await {
                    Ok(Some(row)) => return Reply::resource(StatusCode::OK, &row, &base),
                    Ok(None) => {}
                    Err(reply) => return reply,
                }
            }
            // A client's id on create is ignored (R4: the server assigns it).
            (uuid::Uuid::new_v4().to_string(), None)
        }
        Target::Update(id) => {
            if body_id.as_deref() != Some(id.as_str()) {
                let found = match &body_id {
                    Some(b) => format!("the resource's id is {b}"),
                    None => "the resource has no id".to_string(),
                };
                return Reply::issue(
                    IssueCode::Invalid,
                    format!("{found}; it must equal the id in the URL, {id}"),
                    Some(format!("{resource_type}.id")),
                );
            }
            let current = match server.store.fhir().fhir_read(resource_type, &id).await {
                Ok(row) => row.map(|r| r.version),
                Err(e) => return Reply::store(&e),
            };
            if let Some(reply) = check_if_match(if_match(headers), current) {
                return reply;
            }
            (id, current)
        }
        Target::Conditional(query) => match conditional_match(server, resource_type, &query).await {
            Ok(Some(row)) => {
                if body_id.as_deref().is_some_and(|b| b != row.id) {
                    return Reply::issue(
                        IssueCode::Invalid,
                        format!(
                            "the resource's id differs from the one matching the condition ({})",
                            row.id
                        ),
                        Some(format!("{resource_type}.id")),
                    );
                }
                if let Some(reply) = check_if_match(if_match(headers), Some(row.version)) {
                    return reply;
                }
                (row.id, Some(row.version))
            }
            Ok(None) => {
                let id = match body_id {
                    Some(id) => match server.store.fhir().fhir_read(resource_type, &id).await {
                        Ok(Some(_)) => return id_held_elsewhere(resource_type, &id),
                        Ok(None) => id,
                        Err(e) => return Reply::store(&e),
                    },
                    None => uuid::Uuid::new_v4().to_string(),
                };
                if let Some(reply) = check_if_match(if_match(headers), None) {
                    return reply;
                }
                (id, None)
            }
            Err(reply) => return reply,
        },
    };
    let mut known = Known::new();
    if let Err(issues) = references::resolve(
        server,
        &checked.references,
        "",
        &HashMap::new(),
        &HashSet::new(),
        &mut known,
    )
    .await
    {
        let reply = Reply::issues(issues);
        // A store that could not be reached says nothing about the body: not kept as refused.
        if !reply.status.is_server_error() {
            keep_rejected(server, interaction, &bytes, &first_of(&reply)).await;
        }
        return reply;
    }
    let Checked { identifiers, .. } = checked;
    let planned = Planned::new(resource_type, id, value, &identifiers, current);
    if let Err(issues) = dry_run(std::slice::from_ref(&planned), &known, &|_| String::new()) {
        keep_rejected(server, interaction, &bytes, &first(&issues)).await;
        return Reply::issues(issues);
    }
    let created = planned.created;
    match commit(server, interaction, &base, vec![planned]).await {
        Ok(rows) => match rows.first() {
            Some(row) => Reply::resource(if created { StatusCode::CREATED } else { StatusCode::OK }, row, &base),
            None => Reply::issue(IssueCode::Exception, "the store returned nothing", None)
                .with_status(StatusCode::INTERNAL_SERVER_ERROR),
        },
        Err(reply) => reply,
    }
}

/// One `batch` entry, as if it had been sent alone.
pub(super) async fn batch_entry(server: &FhirServer, headers: &HeaderMap, entry: &BundleEntry) -> Reply {
    let at = format!("Bundle.entry[{}]", entry.index);
    let Some(resource) = &entry.resource else {
        return Reply::issue(
            IssueCode::NotSupported,
            "only POST and PUT entries with a resource are supported in a batch",
            Some(format!("{at}.request.method")),
        );
    };
    let resource_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let url = entry.url.trim_start_matches('/');
    let target = match entry.method {
        Method::Post => Target::Create(entry.if_none_exist.clone()),
        Method::Put => match url.split_once('?') {
            Some((_, query)) => Target::Conditional(query.to_string()),
            None => match references::literal(url) {
                Some((t, id)) if t == resource_type => Target::Update(id),
                _ => {
                    return Reply::issue(
                        IssueCode::Invalid,
                        format!("request.url {url:?} must be {resource_type}/<id> or {resource_type}?identifier=…"),
                        Some(format!("{at}.request.url")),
                    )
                }
            },
        },
        _ => {
            return Reply::issue(
                IssueCode::NotSupported,
                "only POST and PUT entries are supported in a batch",
                Some(format!("{at}.request.method")),
            )
        }
    };
    let mut headers = headers.clone();
    headers.remove(header::IF_MATCH);
    if let Some(tag) = entry
        .if_match
        .as_deref()
        .and_then(|t| header::HeaderValue::from_str(t).ok())
    {
        headers.insert(header::IF_MATCH, tag);
    }
    let body = Bytes::from(serde_json::to_vec(resource).unwrap_or_default());
    let verb = if matches!(target, Target::Create(_)) {
        "create"
    } else {
        "update"
    };
    write_checked(
        server,
        &headers,
        &resource_type,
        Ok(body),
        target,
        &format!("batch {verb} {resource_type}"),
    )
    .await
}

/// The first diagnostics of an OperationOutcome reply.
fn first_of(reply: &Reply) -> String {
    reply
        .body
        .pointer("/issue/0/diagnostics")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn first(issues: &[crate::fhir::inbound::Issue]) -> String {
    issues.first().map(|i| i.diagnostics.clone()).unwrap_or_default()
}

/// The body, or the answer for one that is too large, not JSON, or empty.
pub(super) fn read_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, Reply> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        let media = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if !(media == "application/fhir+json" || media == "application/json" || media.is_empty()) {
            return Err(Reply::issue(
                IssueCode::NotSupported,
                format!("content type {media:?} is not supported; send application/fhir+json"),
                None,
            )
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
    }
    match body {
        Ok(b) => Ok(b),
        Err(rejection) => {
            let status = rejection.status();
            Err(Reply::issue(IssueCode::Structure, rejection.body_text(), None).with_status(status))
        }
    }
}

/// The `If-Match` header, if any (unreadable bytes match no version).
fn if_match(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::IF_MATCH).map(|v| v.to_str().unwrap_or_default())
}

/// `If-Match: W/"<version>"` (a header, or a Bundle entry's `request.ifMatch`)
/// against the stored version: 412 when it differs or nothing is stored.
pub(super) fn check_if_match(if_match: Option<&str>, current: Option<i64>) -> Option<Reply> {
    let wanted = if_match?.trim().trim_start_matches("W/").trim_matches('"');
    let found = match current {
        Some(v) if v.to_string() == wanted => return None,
        Some(v) => format!("the current version is {v}"),
        None => "there is no current version".to_string(),
    };
    Some(
        Reply::issue(
            IssueCode::Conflict,
            format!("If-Match asks for version {wanted}, but {found}"),
            None,
        )
        .with_status(StatusCode::PRECONDITION_FAILED),
    )
}

/// R4 conditional update: no match, and the body's id names a resource the
/// condition did not match; replacing it would change a resource the client
/// did not select.
pub(super) fn id_held_elsewhere(resource_type: &str, id: &str) -> Reply {
    Reply::issue(
        IssueCode::Conflict,
        format!("nothing matches the condition, and {resource_type}/{id} (the resource's id) exists but does not match it; nothing was changed"),
        Some(format!("{resource_type}.id")),
    )
}

/// The one resource a condition (`identifier=…`) matches: None when none,
/// 412 when several, 400 when the condition cannot be read.
pub(super) async fn conditional_match(
    server: &FhirServer,
    resource_type: &str,
    condition: &str,
) -> Result<Option<medbus_bus::store::FhirRow>, Reply> {
    let condition = condition
        .trim_start_matches(&format!("{resource_type}?"))
        .trim_start_matches('?');
    let mut token = None;
    for (name, value) in pairs(condition) {
        match (name.as_str(), identifier_token(&value)) {
            ("identifier", Some(t)) if token.is_none() => token = Some(t),
            _ => {
                return Err(Reply::issue(
                    IssueCode::Invalid,
                    format!("condition {condition:?}: only one identifier=system|value is supported"),
                    None,
                ))
            }
        }
    }
    let Some(token) = token else {
        return Err(Reply::issue(
            IssueCode::Invalid,
            format!("condition {condition:?} has no identifier=system|value"),
            None,
        ));
    };
    let mut rows = find(server, resource_type, &token, 2).await?;
    match rows.len() {
        0 => Ok(None),
        1 => Ok(rows.pop()),
        // R4: several matches of a conditional create or update is 412.
        _ => Err(Reply::issue(
            IssueCode::Duplicate,
            format!("condition {condition:?} matches more than one {resource_type}"),
            None,
        )
        .with_status(StatusCode::PRECONDITION_FAILED)),
    }
}

async fn find(
    server: &FhirServer,
    resource_type: &str,
    token: &IdentifierToken,
    limit: u32,
) -> Result<Vec<medbus_bus::store::FhirRow>, Reply> {
    server
        .store
        .fhir()
        .fhir_search_identifier(resource_type, token.system.as_deref(), &token.value, limit)
        .await
        .map_err(|e| Reply::store(&e))
}

/// 405 for a method a `/fhir` path does not take (axum adds `Allow`).
pub(super) async fn method_not_allowed(method: HttpMethod, uri: Uri) -> Reply {
    Reply::issue(
        IssueCode::NotSupported,
        format!("{method} is not supported on {}", uri.path()),
        None,
    )
    .with_status(StatusCode::METHOD_NOT_ALLOWED)
}

/// 404 for a resource type this server does not hold.
pub(super) fn unsupported(resource_type: &str) -> Option<Reply> {
    (!SUPPORTED.contains(&resource_type)).then(|| {
        Reply::issue(
            IssueCode::NotSupported,
            format!(
                "resource type {resource_type:?} is not supported here (supported: {})",
                SUPPORTED.join(", ")
            ),
            None,
        )
        .with_status(StatusCode::NOT_FOUND)
    })
}

fn not_found(resource_type: &str, id: &str) -> Reply {
    Reply::issue(
        IssueCode::NotFound,
        format!("{resource_type}/{id} does not exist"),
        None,
    )
    .with_status(StatusCode::NOT_FOUND)
}

fn search_issue(why: &str) -> Reply {
    Reply::issue(IssueCode::NotSupported, why, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_is_said_in_plain_words() {
        assert!(check_if_match(None, Some(3)).is_none());
        assert!(check_if_match(Some("W/\"3\""), Some(3)).is_none());
        let stale = check_if_match(Some("W/\"1\""), Some(3)).unwrap();
        assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
        let said = stale.body["issue"][0]["diagnostics"].as_str().unwrap_or_default();
        assert_eq!(said, "If-Match asks for version 1, but the current version is 3");
        let absent = check_if_match(Some("W/\"1\""), None).unwrap();
        let said = absent.body["issue"][0]["diagnostics"].as_str().unwrap_or_default();
        assert_eq!(said, "If-Match asks for version 1, but there is no current version");
    }

    #[test]
    fn a_conditional_update_may_not_take_an_id_it_did_not_match() {
        let r = id_held_elsewhere("Patient", "p9");
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.body["resourceType"], "OperationOutcome");
        assert_eq!(r.body["issue"][0]["code"], "conflict");
    }
}
