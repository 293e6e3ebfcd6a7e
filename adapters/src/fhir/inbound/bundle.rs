//! Transaction and batch Bundles: [`parse_bundle`] checks one and lists its
//! entries; [`rewrite_references`] turns `urn:uuid` references into the ids
//! the server assigned.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::check::{check_resource, parse_reference, Checked, RefTarget};
use super::elements;
use super::outcome::{rename, Issue, IssueCode};

/// `Bundle.entry.request.method`, those medbus processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Create.
    Post,
    /// Update (or create with a client id).
    Put,
    /// Read or search.
    Get,
    /// Delete.
    Delete,
}

impl Method {
    /// The HTTP verb, e.g. `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Get => "GET",
            Method::Delete => "DELETE",
        }
    }
}

/// `Bundle.type`, those medbus processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    /// All entries succeed or none does; entries may refer to each other.
    Transaction,
    /// Each entry on its own.
    Batch,
}

/// One entry of a transaction or batch, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleEntry {
    /// `fullUrl`: how other entries refer to this one (`urn:uuid:…`).
    pub full_url: Option<String>,
    /// `request.method`.
    pub method: Method,
    /// `request.url`: `Patient`, `Patient/123`, `Patient?identifier=…`.
    pub url: String,
    /// `request.ifNoneExist`: the search of a conditional create.
    pub if_none_exist: Option<String>,
    /// `request.ifMatch`: the ETag of a version-aware update.
    pub if_match: Option<String>,
    /// The resource of a POST or PUT (checked with [`check_resource`]).
    pub resource: Option<Value>,
    /// What [`check_resource`] found in `resource`.
    pub checked: Option<Checked>,
    /// Position in `Bundle.entry`, for the response Bundle and for issues.
    pub index: usize,
}

/// Checks a transaction or batch Bundle and returns its entries in order.
///
/// `Bundle.type` must be `transaction` or `batch`; every entry needs a
/// `request` with method and url; POST and PUT need a resource, checked with
/// [`check_resource`] (its issues named `Bundle.entry[i].resource…`), whose
/// type matches the url. `fullUrl`s are unique; a `urn:uuid` reference must
/// name another entry's `fullUrl` (transactions only: a batch's entries are
/// independent), and a subject one must name a Patient entry.
pub fn parse_bundle(value: &Value) -> Result<(BundleKind, Vec<BundleEntry>), Vec<Issue>> {
    let Some(obj) = value.as_object() else {
        return Err(vec![Issue::whole(
            IssueCode::Structure,
            "a Bundle must be a JSON object",
        )]);
    };
    match obj.get("resourceType").and_then(Value::as_str) {
        Some("Bundle") => {}
        None => {
            return Err(vec![Issue::at(
                IssueCode::Required,
                "resourceType",
                "resourceType \"Bundle\" is required",
            )])
        }
        Some(other) => {
            return Err(vec![Issue::at(
                IssueCode::Invalid,
                "resourceType",
                format!("expected a Bundle, found {other:?}"),
            )])
        }
    }
    let mut issues = Vec::new();
    unknown_keys(obj, elements::BUNDLE, "Bundle", &mut issues);
    let kind = match obj.get("type") {
        None => Err(Issue::at(IssueCode::Required, "Bundle.type", "Bundle.type is required")),
        Some(Value::String(t)) => match t.as_str() {
            "transaction" => Ok(BundleKind::Transaction),
            "batch" => Ok(BundleKind::Batch),
            t if elements::BUNDLE_TYPES.contains(&t) => Err(Issue::at(
                IssueCode::NotSupported,
                "Bundle.type",
                format!("a {t} Bundle is not processed here: send a transaction or a batch"),
            )),
            t => Err(Issue::at(
                IssueCode::Value,
                "Bundle.type",
                format!("{t:?} is not a FHIR R4 Bundle type"),
            )),
        },
        Some(_) => Err(Issue::at(
            IssueCode::Structure,
            "Bundle.type",
            "Bundle.type must be a string",
        )),
    };
    let kind = match kind {
        Ok(k) => Some(k),
        Err(i) => {
            issues.push(i);
            None
        }
    };
    let raw: &[Value] = match obj.get("entry") {
        None => &[],
        Some(Value::Array(a)) => a,
        Some(_) => {
            issues.push(Issue::at(
                IssueCode::Structure,
                "Bundle.entry",
                "Bundle.entry must be an array",
            ));
            &[]
        }
    };
    let mut entries = Vec::with_capacity(raw.len());
    for (index, e) in raw.iter().enumerate() {
        if let Some(entry) = entry(e, index, &mut issues) {
            entries.push(entry);
        }
    }
    duplicates(&entries, &mut issues);
    if let Some(kind) = kind {
        bundle_references(kind, &entries, &mut issues);
    }
    match kind {
        Some(kind) if issues.is_empty() => Ok((kind, entries)),
        _ => Err(issues),
    }
}

fn unknown_keys(obj: &Map<String, Value>, known: &[&str], at: &str, issues: &mut Vec<Issue>) {
    for key in obj.keys() {
        if key == "modifierExtension" {
            issues.push(Issue::at(
                IssueCode::NotSupported,
                format!("{at}.{key}"),
                "modifierExtension: medbus understands no modifier extension, and a modifier must not be ignored",
            ));
        } else if !known.contains(&key.as_str()) {
            issues.push(Issue::at(
                IssueCode::Structure,
                format!("{at}.{key}"),
                format!("unknown element {key:?}"),
            ));
        }
    }
}

/// An optional string element; a non-string is an issue.
fn string(obj: &Map<String, Value>, key: &str, at: &str, issues: &mut Vec<Issue>) -> Option<String> {
    match obj.get(key) {
        None => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(_) => {
            issues.push(Issue::at(
                IssueCode::Structure,
                format!("{at}.{key}"),
                format!("{key} must be a non-empty string"),
            ));
            None
        }
    }
}

/// One entry, or `None` (with issues) when it cannot be processed.
fn entry(e: &Value, index: usize, issues: &mut Vec<Issue>) -> Option<BundleEntry> {
    let at = format!("Bundle.entry[{index}]");
    let Some(obj) = e.as_object() else {
        issues.push(Issue::at(IssueCode::Structure, at, "an entry must be a JSON object"));
        return None;
    };
    unknown_keys(obj, elements::BUNDLE_ENTRY, &at, issues);
    let full_url = string(obj, "fullUrl", &at, issues);
    let request_at = format!("{at}.request");
    let request = match obj.get("request") {
        Some(Value::Object(r)) => r,
        None => {
            issues.push(Issue::at(
                IssueCode::Required,
                request_at,
                "every entry of a transaction or batch needs a request (method and url)",
            ));
            return None;
        }
        Some(_) => {
            issues.push(Issue::at(IssueCode::Structure, request_at, "request must be an object"));
            return None;
        }
    };
    unknown_keys(request, elements::BUNDLE_REQUEST, &request_at, issues);
    let method = match request.get("method") {
        None => Err(Issue::at(
            IssueCode::Required,
            format!("{request_at}.method"),
            "request.method is required",
        )),
        Some(Value::String(m)) => match m.as_str() {
            "POST" => Ok(Method::Post),
            "PUT" => Ok(Method::Put),
            "GET" => Ok(Method::Get),
            "DELETE" => Ok(Method::Delete),
            "HEAD" | "PATCH" => Err(Issue::at(
                IssueCode::NotSupported,
                format!("{request_at}.method"),
                format!("{m} is not supported in a Bundle: use POST, PUT, GET or DELETE"),
            )),
            _ => Err(Issue::at(
                IssueCode::Value,
                format!("{request_at}.method"),
                format!("{m:?} is not an HTTP verb FHIR allows (GET, HEAD, POST, PUT, DELETE, PATCH)"),
            )),
        },
        Some(_) => Err(Issue::at(
            IssueCode::Structure,
            format!("{request_at}.method"),
            "request.method must be a string",
        )),
    };
    let url = string(request, "url", &request_at, issues);
    if url.is_none() && !request.contains_key("url") {
        issues.push(Issue::at(
            IssueCode::Required,
            format!("{request_at}.url"),
            "request.url is required",
        ));
    }
    let if_none_exist = string(request, "ifNoneExist", &request_at, issues);
    let if_match = string(request, "ifMatch", &request_at, issues);
    let method = match method {
        Ok(m) => m,
        Err(i) => {
            issues.push(i);
            return None;
        }
    };
    let url = url?;
    let resource = obj.get("resource").cloned();
    let mut checked = None;
    if matches!(method, Method::Post | Method::Put) {
        let resource_at = format!("{at}.resource");
        let Some(r) = &resource else {
            issues.push(Issue::at(
                IssueCode::Required,
                resource_at,
                format!("a {} entry needs a resource", method.as_str()),
            ));
            return None;
        };
        match check_resource(r, None) {
            Ok(c) => {
                url_matches(method, &url, r, &c, &at, issues);
                checked = Some(c);
            }
            Err(list) => issues.extend(list.into_iter().map(|i| i.within(&resource_at))),
        }
    }
    Some(BundleEntry {
        full_url,
        method,
        url,
        if_none_exist,
        if_match,
        resource,
        checked,
        index,
    })
}

/// POST goes to `Type`; PUT to `Type/id` (with that id in the resource) or
/// to `Type?search` (a conditional update).
fn url_matches(method: Method, url: &str, resource: &Value, c: &Checked, at: &str, issues: &mut Vec<Issue>) {
    let path = url.split('?').next().unwrap_or_default();
    let mut parts = path.split('/');
    let type_ = parts.next().unwrap_or_default();
    let id = parts.next();
    let url_at = format!("{at}.request.url");
    if type_ != c.resource_type {
        issues.push(Issue::at(
            IssueCode::Invalid,
            url_at,
            format!("the url {url:?} is not for a {}", c.resource_type),
        ));
        return;
    }
    match (method, id) {
        (Method::Post, Some(_)) => issues.push(Issue::at(
            IssueCode::Invalid,
            url_at,
            format!("a POST goes to the type ({type_}), not to {url:?}"),
        )),
        (Method::Put, Some(id)) => match resource.get("id").and_then(Value::as_str) {
            Some(own) if own == id => {}
            Some(own) => issues.push(Issue::at(
                IssueCode::Invalid,
                format!("{at}.resource.id"),
                format!("the resource id {own:?} differs from the id in the url {url:?}"),
            )),
            None => issues.push(Issue::at(
                IssueCode::Required,
                format!("{at}.resource.id"),
                format!("a PUT to {url:?} needs the resource's id to be {id:?}"),
            )),
        },
        (Method::Put, None) if !url.contains('?') => issues.push(Issue::at(
            IssueCode::Invalid,
            url_at,
            format!("a PUT goes to Type/id or Type?search, not to {url:?}"),
        )),
        _ => {}
    }
}

fn duplicates(entries: &[BundleEntry], issues: &mut Vec<Issue>) {
    for (n, e) in entries.iter().enumerate() {
        let Some(url) = &e.full_url else { continue };
        if let Some(first) = entries[..n].iter().find(|f| f.full_url.as_ref() == Some(url)) {
            issues.push(Issue::at(
                IssueCode::Duplicate,
                format!("Bundle.entry[{}].fullUrl", e.index),
                format!("fullUrl {url:?} is also the fullUrl of entry {}", first.index),
            ));
        }
    }
}

/// `urn:uuid` references must name an entry of the same transaction (and a
/// Patient when they are a subject).
fn bundle_references(kind: BundleKind, entries: &[BundleEntry], issues: &mut Vec<Issue>) {
    let type_of = |url: &str| {
        entries
            .iter()
            .find(|e| e.full_url.as_deref() == Some(url))
            .map(|e| e.checked.as_ref().map(|c| c.resource_type.as_str()))
    };
    for e in entries {
        let Some(c) = &e.checked else { continue };
        let prefix = format!("Bundle.entry[{}].resource", e.index);
        for site in &c.references {
            if parse_reference(&site.reference) != Ok(RefTarget::Uuid) {
                continue;
            }
            let at = rename(&format!("{}.reference", site.expression), &prefix);
            if kind == BundleKind::Batch {
                issues.push(Issue::at(
                    IssueCode::Invalid,
                    at,
                    format!(
                        "{:?}: the entries of a batch are processed on their own; send a transaction to refer to another entry",
                        site.reference
                    ),
                ));
                continue;
            }
            match type_of(&site.reference) {
                None => issues.push(Issue::at(
                    IssueCode::NotFound,
                    at,
                    format!("no entry of this Bundle has fullUrl {:?}", site.reference),
                )),
                Some(Some(t)) if t != "Patient" && is_subject(&site.expression) => issues.push(Issue::at(
                    IssueCode::Value,
                    at,
                    format!("the subject must be a Patient, but {:?} is a {t}", site.reference),
                )),
                Some(_) => {}
            }
        }
    }
}

/// `Observation.subject`: the top-level subject of a resource.
fn is_subject(expression: &str) -> bool {
    expression.split_once('.').is_some_and(|(_, rest)| rest == "subject")
}

/// Replaces every `reference` string found anywhere in `resource` that is a
/// key of `map` (e.g. `urn:uuid:abc`) by its value (`Patient/<id>`).
pub fn rewrite_references(resource: &mut Value, map: &HashMap<String, String>) {
    match resource {
        Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                match v {
                    Value::String(s) if k == "reference" => {
                        if let Some(new) = map.get(s.as_str()) {
                            *s = new.clone();
                        }
                    }
                    other => rewrite_references(other, map),
                }
            }
        }
        Value::Array(a) => {
            for v in a {
                rewrite_references(v, map);
            }
        }
        _ => {}
    }
}
