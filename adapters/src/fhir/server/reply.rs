//! Answers of the FHIR server: `application/fhir+json` bodies, the status
//! [`Issue`]s call for, and the headers a FHIR client reads (Location, ETag,
//! Last-Modified).

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use medbus_bus::store::{FhirRow, StoreError};
use serde_json::{json, Value};

use crate::fhir::inbound::{http_status, operation_outcome, Issue, IssueCode};

/// The media type of every answer.
pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// One answer: status, extra headers and a FHIR JSON body.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Location, ETag, Last-Modified …
    pub headers: Vec<(HeaderName, String)>,
    /// A resource, a Bundle or an OperationOutcome.
    pub body: Value,
}

impl Reply {
    /// A body with a status and no extra headers.
    pub fn json(status: StatusCode, body: Value) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body,
        }
    }

    /// An OperationOutcome with the status its issues call for ([`http_status`]).
    pub fn issues(issues: Vec<Issue>) -> Self {
        let status = StatusCode::from_u16(http_status(&issues)).unwrap_or(StatusCode::BAD_REQUEST);
        Reply::json(status, operation_outcome(&issues))
    }

    /// One issue.
    pub fn issue(code: IssueCode, diagnostics: impl Into<String>, expression: Option<String>) -> Self {
        Reply::issues(vec![Issue {
            code,
            diagnostics: diagnostics.into(),
            expression,
        }])
    }

    /// A stored resource, with its version headers.
    pub fn resource(status: StatusCode, row: &FhirRow, base: &str) -> Self {
        let mut reply = Reply::json(status, with_meta(row));
        reply.headers = version_headers(row, base);
        reply
    }

    /// What a store failure means to the client (see [`store_issue`]).
    pub fn store(e: &StoreError) -> Self {
        Reply::issues(vec![store_issue(e)])
    }

    /// The same answer with another status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

/// What a store failure means to the client: `transient` (503) when it may
/// pass, `conflict` (409) for a concurrent change or an identifier held by
/// another resource, `exception` (500) otherwise.
pub fn store_issue(e: &StoreError) -> Issue {
    let (code, diagnostics) = match e {
        StoreError::Unavailable(_) => (
            IssueCode::Transient,
            format!("the store cannot be reached now; nothing was kept, send again later ({e})"),
        ),
        StoreError::Conflict(why) => (IssueCode::Conflict, why.clone()),
        StoreError::Invalid(why) => (IssueCode::Invalid, why.clone()),
        _ => {
            tracing::error!(error = %e, "fhir store failure");
            (IssueCode::Exception, "the store failed; nothing was kept".to_string())
        }
    };
    Issue {
        code,
        diagnostics,
        expression: None,
    }
}

/// The resource as stored, with `id` and `meta.versionId`/`meta.lastUpdated` from its row.
pub fn with_meta(row: &FhirRow) -> Value {
    let mut body = row.resource.clone();
    if let Value::Object(map) = &mut body {
        map.insert("id".into(), Value::String(row.id.clone()));
        let meta = map.entry("meta").or_insert_with(|| json!({}));
        if let Value::Object(meta) = meta {
            meta.insert("versionId".into(), Value::String(row.version.to_string()));
            meta.insert(
                "lastUpdated".into(),
                Value::String(row.last_updated.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            );
        }
    }
    body
}

/// `Location: <base>/<Type>/<id>/_history/<v>`, `ETag: W/"<v>"`, `Last-Modified`.
pub fn version_headers(row: &FhirRow, base: &str) -> Vec<(HeaderName, String)> {
    vec![
        (header::LOCATION, location(row, base)),
        (header::ETAG, format!("W/\"{}\"", row.version)),
        (
            header::LAST_MODIFIED,
            row.last_updated.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        ),
    ]
}

/// Where the version just written can be read again.
pub fn location(row: &FhirRow, base: &str) -> String {
    format!("{base}/{}/{}/_history/{}", row.resource_type, row.id, row.version)
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_that_cannot_be_reached_is_503_wherever_it_is_met() {
        let e = StoreError::Unavailable("connection refused".into());
        assert_eq!(Reply::store(&e).status, StatusCode::SERVICE_UNAVAILABLE);
        // A transaction's lookups give the issue, not the reply: it calls for the same status.
        assert_eq!(http_status(&[store_issue(&e)]), 503);
        assert_eq!(
            Reply::store(&StoreError::Conflict("Patient/1 already exists".into())).status,
            StatusCode::CONFLICT
        );
    }

    #[test]
    fn the_status_follows_the_worst_issue() {
        let issues = vec![
            Issue::whole(IssueCode::Value, "bad date"),
            Issue::whole(IssueCode::NotFound, "Patient/x does not exist"),
        ];
        assert_eq!(Reply::issues(issues).status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            Reply::issue(IssueCode::NotSupported, "no", None).status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            Reply::issue(IssueCode::Duplicate, "twice", None).status,
            StatusCode::BAD_REQUEST
        );
    }
}
