//! [`Issue`]s and the OperationOutcome that carries them back to the sender.

use serde_json::{json, Value};

/// FHIR R4 `OperationOutcome.issue.code` (IssueType), the subset medbus uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueCode {
    /// Content invalid against the specification or a profile.
    Invalid,
    /// A structural issue: wrong JSON shape, unknown element, wrong type.
    Structure,
    /// A required element is missing.
    Required,
    /// An element's value is not allowed (bad code, bad date, bad reference).
    Value,
    /// Valid FHIR that medbus does not process.
    NotSupported,
    /// A referenced resource could not be found.
    NotFound,
    /// A version or id conflict.
    Conflict,
    /// Business rules prevented processing.
    Processing,
    /// Something is there twice that may only be there once.
    Duplicate,
    /// An unexpected internal error.
    Exception,
    /// A passing failure (the store cannot be reached): send again later.
    Transient,
}

impl IssueCode {
    /// The FHIR code, e.g. `not-supported`.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueCode::Invalid => "invalid",
            IssueCode::Structure => "structure",
            IssueCode::Required => "required",
            IssueCode::Value => "value",
            IssueCode::NotSupported => "not-supported",
            IssueCode::NotFound => "not-found",
            IssueCode::Conflict => "conflict",
            IssueCode::Processing => "processing",
            IssueCode::Duplicate => "duplicate",
            IssueCode::Exception => "exception",
            IssueCode::Transient => "transient",
        }
    }

    /// The HTTP status FHIR's RESTful API suggests for this kind of failure,
    /// the one mapping the server answers with: 400 when the content is not
    /// valid FHIR or not what medbus takes (also a duplicate `fullUrl` or a
    /// resource written twice in a Bundle), 422 when it is valid but cannot
    /// be processed (business rules, a reference to nothing), 409 on
    /// conflicts, 500 for our own faults, 503 when it may pass. Answers the
    /// code alone cannot tell (404 on read, 412 on a version or condition
    /// precondition, 415) set their status explicitly.
    pub fn http_status(self) -> u16 {
        match self {
            IssueCode::Invalid
            | IssueCode::Structure
            | IssueCode::Required
            | IssueCode::Value
            | IssueCode::NotSupported
            | IssueCode::Duplicate => 400,
            IssueCode::NotFound | IssueCode::Processing => 422,
            IssueCode::Conflict => 409,
            IssueCode::Exception => 500,
            IssueCode::Transient => 503,
        }
    }
}

/// One problem with the input, naming the element (`expression`) when it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// What kind of problem.
    pub code: IssueCode,
    /// What is wrong, in words, for the sender's interface team.
    pub diagnostics: String,
    /// The element as a FHIRPath-like expression: `Patient.birthDate`,
    /// `Bundle.entry[2].resource.subject`.
    pub expression: Option<String>,
}

impl Issue {
    /// An issue about element `expression`.
    pub fn at(code: IssueCode, expression: impl Into<String>, diagnostics: impl Into<String>) -> Self {
        Issue {
            code,
            diagnostics: diagnostics.into(),
            expression: Some(expression.into()),
        }
    }

    /// An issue about the input as a whole.
    pub fn whole(code: IssueCode, diagnostics: impl Into<String>) -> Self {
        Issue {
            code,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    /// The same issue with `prefix` in place of the expression's first
    /// segment when that is the resource type: how a resource's issues are
    /// named inside a Bundle (`Observation.subject` →
    /// `Bundle.entry[2].resource.subject`). An expression starting with an
    /// element (`resourceType`) is appended to `prefix`.
    pub fn within(mut self, prefix: &str) -> Self {
        self.expression = Some(match self.expression.as_deref() {
            None => prefix.to_string(),
            Some(e) => rename(e, prefix),
        });
        self
    }
}

/// `expression` with `prefix` in place of its first segment when that is a
/// resource type (`Observation.subject` → `<prefix>.subject`), else appended
/// to `prefix` (`resourceType` → `<prefix>.resourceType`); see [`Issue::within`].
pub(super) fn rename(expression: &str, prefix: &str) -> String {
    if expression.starts_with(|c: char| c.is_ascii_lowercase()) {
        return format!("{prefix}.{expression}");
    }
    match expression.find(['.', '[']) {
        Some(at) => format!("{prefix}{}", &expression[at..]),
        None => prefix.to_string(),
    }
}

/// The HTTP status for a failed request: the highest of its issues' statuses
/// (a 5xx wins over a 422, which wins over a 400); 400 when there are none.
pub fn http_status(issues: &[Issue]) -> u16 {
    issues.iter().map(|i| i.code.http_status()).max().unwrap_or(400)
}

/// The OperationOutcome JSON for `issues`, each of severity `error` (medbus
/// only answers with an outcome when it refuses the input).
pub fn operation_outcome(issues: &[Issue]) -> Value {
    let issue: Vec<Value> = issues
        .iter()
        .map(|i| {
            let mut v = json!({
                "severity": "error",
                "code": i.code.as_str(),
                "diagnostics": i.diagnostics,
            });
            if let (Some(e), Some(obj)) = (&i.expression, v.as_object_mut()) {
                obj.insert("expression".into(), json!([e]));
            }
            v
        })
        .collect();
    // FHIR requires at least one issue; an empty list is a bug upstream, said so.
    let issue = if issue.is_empty() {
        vec![json!({"severity": "error", "code": "exception", "diagnostics": "no issue was recorded"})]
    } else {
        issue
    };
    json!({"resourceType": "OperationOutcome", "issue": issue})
}
