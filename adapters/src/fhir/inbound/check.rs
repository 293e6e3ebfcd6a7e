//! [`check_resource`]: is this JSON a FHIR R4 resource medbus can take?
//! Every issue names its element, so the sender can fix the message.

use medbus_bus::canonical::{
    Annotation, ChargeItem, CodeableConcept, Coding, DateTime, Decimal, DiagnosticReport, Encounter, Identifier,
    Observation, Patient, Period, Quantity, Reference, ServiceRequest,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::elements::{self, Shape, SUPPORTED};
use super::outcome::{Issue, IssueCode};
use super::read::read;

/// What a resource that passed [`check_resource`] says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Its `resourceType`, one of [`SUPPORTED`].
    pub resource_type: String,
    /// Its top-level identifiers that have a value: (system, value).
    pub identifiers: Vec<(Option<String>, String)>,
    /// Every `reference` string in it, where it was found.
    pub references: Vec<RefSite>,
}

/// One literal reference in a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSite {
    /// The Reference element, e.g. `Observation.subject`, `DiagnosticReport.result[1]`.
    pub expression: String,
    /// The reference as written: `Patient/123`, `urn:uuid:…`, `#contained`.
    pub reference: String,
}

/// What a `reference` string points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefTarget<'a> {
    /// `Type/id`.
    Literal {
        /// The resource type.
        resource_type: &'a str,
        /// The logical id.
        id: &'a str,
    },
    /// `urn:uuid:…`: another entry of the same Bundle.
    Uuid,
    /// `#id`: a contained resource.
    Contained(&'a str),
}

/// Parses a reference string; `Err` says what is wrong with it, with the
/// issue code (absolute URLs are valid FHIR but not followed by medbus).
pub fn parse_reference(reference: &str) -> Result<RefTarget<'_>, (IssueCode, String)> {
    if let Some(uuid) = reference.strip_prefix("urn:uuid:") {
        return if is_uuid(uuid) {
            Ok(RefTarget::Uuid)
        } else {
            Err((IssueCode::Value, format!("bad reference {reference:?}: not a urn:uuid")))
        };
    }
    if let Some(id) = reference.strip_prefix('#') {
        return Ok(RefTarget::Contained(id));
    }
    if reference.starts_with("http://") || reference.starts_with("https://") {
        return Err((
            IssueCode::NotSupported,
            format!("absolute reference {reference:?}: medbus only follows Type/id, urn:uuid and #contained"),
        ));
    }
    // `Type/id/_history/n` is a valid versioned reference; the version is not used.
    let mut parts = reference.split('/');
    let (Some(type_), Some(id)) = (parts.next(), parts.next()) else {
        return Err((
            IssueCode::Value,
            format!("bad reference {reference:?}: expected Type/id, urn:uuid:<uuid> or #id"),
        ));
    };
    let versioned = match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => true,
        (Some("_history"), Some(v), None) => is_id(v),
        _ => false,
    };
    if !elements::is_resource_type(type_) {
        return Err((
            IssueCode::Value,
            format!("bad reference {reference:?}: {type_:?} is not a FHIR R4 resource type"),
        ));
    }
    if !is_id(id) || !versioned {
        return Err((
            IssueCode::Value,
            format!("bad reference {reference:?}: the id must be 1 to 64 of A-Z a-z 0-9 - ."),
        ));
    }
    Ok(RefTarget::Literal {
        resource_type: type_,
        id,
    })
}

/// FHIR `id`: `[A-Za-z0-9\-\.]{1,64}`.
pub fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n)
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `ImagingStudy` elements checked on the way in. An inbound
/// ImagingStudy raises no event (see `events::to_events`: the `imaging.*`
/// events are about instances medbus received), so this only checks the
/// shape; it is deliberately laxer than the canonical `ImagingStudy`, which
/// needs every series to have a modality and instances a SOP class, as
/// medbus's own studies always do but another system's need not.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // read only to check the shape; no event uses the values
struct ImagingStudyCheck {
    #[serde(default)]
    identifier: Vec<Identifier>,
    status: ImagingStudyStatus,
    #[serde(default)]
    modality: Vec<Coding>,
    subject: Reference,
    #[serde(default)]
    encounter: Option<Reference>,
    #[serde(default)]
    started: Option<DateTime>,
    #[serde(default)]
    based_on: Vec<Reference>,
    #[serde(default)]
    number_of_series: Option<u32>,
    #[serde(default)]
    number_of_instances: Option<u32>,
    #[serde(default)]
    procedure_code: Vec<CodeableConcept>,
    #[serde(default)]
    description: Option<String>,
}

/// R4 `ImagingStudy.status`.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ImagingStudyStatus {
    Registered,
    Available,
    Cancelled,
    EnteredInError,
    Unknown,
}

/// Checks one resource. `expected` = the type from the URL (None inside
/// bundles). Errors name the element; as many are reported as can be found
/// in one pass, so that a sender fixes them all at once.
///
/// Nested elements the canonical model does not read (e.g. `Observation.component`)
/// are accepted as a whole when R4 has them; their insides are not checked.
pub fn check_resource(value: &Value, expected: Option<&str>) -> Result<Checked, Vec<Issue>> {
    let Some(obj) = value.as_object() else {
        return Err(vec![Issue::whole(
            IssueCode::Structure,
            format!("a resource must be a JSON object, not {}", kind_of(value)),
        )]);
    };
    let resource_type = resource_type(obj, expected)?;
    let rt = resource_type.as_str();
    let mut issues = Vec::new();

    for key in obj.keys() {
        if key != "resourceType" && !elements::is_top_level(rt, key) {
            issues.push(Issue::at(
                IssueCode::Structure,
                format!("{rt}.{key}"),
                format!("unknown element {key:?}: not an element of a FHIR R4 {rt}"),
            ));
        }
    }
    for (choice, names) in elements::choices(rt) {
        let present: Vec<&str> = names.iter().copied().filter(|n| obj.contains_key(*n)).collect();
        if present.len() > 1 {
            issues.push(Issue::at(
                IssueCode::Structure,
                format!("{rt}.{choice}"),
                format!("only one of {} may be present", present.join(", ")),
            ));
        }
    }
    if let Some(id) = obj.get("id") {
        if !id.as_str().is_some_and(is_id) {
            issues.push(Issue::at(
                IssueCode::Value,
                format!("{rt}.id"),
                "an id must be a string of 1 to 64 of A-Z a-z 0-9 - .",
            ));
        }
    }
    for (name, why) in elements::required(rt) {
        if obj.get(*name).is_none_or(is_empty) {
            let what = why.map_or_else(|| format!("{rt}.{name} is required (1..1 in FHIR R4)"), str::to_string);
            issues.push(Issue::at(IssueCode::Required, format!("{rt}.{name}"), what));
        }
    }
    let identifiers = identifiers(obj);
    // A non-array identifier is a type error, which the typed read names.
    let identifier_is_list = obj.get("identifier").is_none_or(Value::is_array);
    if rt == "Patient" && identifiers.is_empty() && identifier_is_list {
        issues.push(Issue::at(
            IssueCode::Required,
            "Patient.identifier",
            "medbus keys patients by identifier: at least one identifier with a value is required",
        ));
    }

    let mut walk = Walk::default();
    walk.value(value, rt);
    issues.append(&mut walk.issues);
    check_references(obj, &walk.references, &mut issues);
    check_subject(obj, rt, &mut issues);

    let mut typed = typed(obj, rt, value);
    // A missing element is reported once, by the required check above.
    typed.retain(|t| !issues.iter().any(|i| i.expression == t.expression));
    issues.append(&mut typed);

    if issues.is_empty() {
        Ok(Checked {
            resource_type,
            identifiers,
            references: walk.references,
        })
    } else {
        Err(issues)
    }
}

/// The `resourceType`: present, a string, supported, and the expected one.
fn resource_type(obj: &Map<String, Value>, expected: Option<&str>) -> Result<String, Vec<Issue>> {
    let at = |code, d: String| Err(vec![Issue::at(code, "resourceType", d)]);
    let rt = match obj.get("resourceType") {
        None => return at(IssueCode::Required, "resourceType is required".into()),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return at(
                IssueCode::Structure,
                format!("resourceType must be a string, not {}", kind_of(other)),
            )
        }
    };
    if !SUPPORTED.contains(&rt.as_str()) {
        let known = if elements::is_resource_type(&rt) {
            "a FHIR R4 resource type medbus does not accept"
        } else {
            "not a FHIR R4 resource type"
        };
        return at(
            IssueCode::NotSupported,
            format!(
                "resourceType {rt:?} is {known}; medbus accepts {}",
                SUPPORTED.join(", ")
            ),
        );
    }
    if let Some(e) = expected.filter(|e| *e != rt) {
        return at(
            IssueCode::Invalid,
            format!("resourceType is {rt:?} but the request is for {e:?}"),
        );
    }
    Ok(rt)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// FHIR JSON never has `null`, `""`, `[]` or `{}` as an element's value.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn identifiers(obj: &Map<String, Value>) -> Vec<(Option<String>, String)> {
    let Some(Value::Array(list)) = obj.get("identifier") else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|i| {
            let value = i.get("value")?.as_str()?.trim();
            let system = i.get("system").and_then(Value::as_str).map(str::to_string);
            (!value.is_empty()).then(|| (system, value.to_string()))
        })
        .collect()
}

/// One pass over the whole tree: nulls, modifier extensions, references.
#[derive(Default)]
struct Walk {
    issues: Vec<Issue>,
    references: Vec<RefSite>,
}

impl Walk {
    fn value(&mut self, v: &Value, at: &str) {
        match v {
            Value::Object(o) => {
                for (k, child) in o {
                    let here = format!("{at}.{k}");
                    match (k.as_str(), child) {
                        // A modifier changes the meaning of what holds it: one
                        // medbus does not understand must not be ignored.
                        ("modifierExtension", _) => self.issues.push(Issue::at(
                            IssueCode::NotSupported,
                            here,
                            "modifierExtension: medbus understands no modifier extension, and a modifier must not be ignored",
                        )),
                        (_, Value::Null) => self.issues.push(Issue::at(
                            IssueCode::Structure,
                            here,
                            "null is not allowed in FHIR JSON: leave the element out",
                        )),
                        ("reference", Value::String(r)) => self.references.push(RefSite {
                            expression: at.to_string(),
                            reference: r.clone(),
                        }),
                        ("reference", other) => self.issues.push(Issue::at(
                            IssueCode::Structure,
                            here,
                            format!("a reference must be a string, not {}", kind_of(other)),
                        )),
                        _ => self.value(child, &here),
                    }
                }
            }
            // Nulls inside arrays are how FHIR JSON aligns primitive arrays
            // with their `_name` extensions, so they are allowed there.
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    self.value(child, &format!("{at}[{i}]"));
                }
            }
            _ => {}
        }
    }
}

fn check_references(obj: &Map<String, Value>, refs: &[RefSite], issues: &mut Vec<Issue>) {
    let contained: Vec<&str> = match obj.get("contained") {
        Some(Value::Array(c)) => c.iter().filter_map(|r| r.get("id")?.as_str()).collect(),
        _ => Vec::new(),
    };
    for site in refs {
        let at = format!("{}.reference", site.expression);
        match parse_reference(&site.reference) {
            Err((code, why)) => issues.push(Issue::at(code, at, why)),
            // `#` alone is the container itself.
            Ok(RefTarget::Contained(id)) if !id.is_empty() && !contained.contains(&id) => issues.push(Issue::at(
                IssueCode::Value,
                at,
                format!(
                    "bad reference {:?}: no contained resource has id {id:?}",
                    site.reference
                ),
            )),
            Ok(_) => {}
        }
    }
}

/// The subject of every non-Patient resource medbus takes must be a Patient:
/// each event carries its patient.
fn check_subject(obj: &Map<String, Value>, rt: &str, issues: &mut Vec<Issue>) {
    if rt == "Patient" {
        return;
    }
    let Some(subject) = obj.get("subject").and_then(Value::as_object) else {
        return;
    };
    if let Some(t) = subject.get("type").and_then(Value::as_str).filter(|t| *t != "Patient") {
        issues.push(Issue::at(
            IssueCode::Value,
            format!("{rt}.subject.type"),
            format!("the subject must be a Patient, not a {t}"),
        ));
    }
    let reference = subject.get("reference").and_then(Value::as_str);
    if let Some(Ok(RefTarget::Literal { resource_type, .. })) = reference.map(parse_reference) {
        if resource_type != "Patient" {
            issues.push(Issue::at(
                IssueCode::Value,
                format!("{rt}.subject.reference"),
                format!("the subject must be a Patient, not a {resource_type}"),
            ));
        }
    }
    if reference.is_none() && subject.get("identifier").is_none() {
        issues.push(Issue::at(
            IssueCode::Required,
            format!("{rt}.subject"),
            "the subject must name the patient by reference or by identifier",
        ));
    }
    if let Some(Ok(RefTarget::Contained(id))) = reference.map(parse_reference) {
        let target = match obj.get("contained") {
            Some(Value::Array(c)) => c.iter().find(|r| r.get("id").and_then(Value::as_str) == Some(id)),
            _ => None,
        };
        if let Some(t) = target.and_then(|t| t.get("resourceType")).and_then(Value::as_str) {
            if t != "Patient" {
                issues.push(Issue::at(
                    IssueCode::Value,
                    format!("{rt}.subject.reference"),
                    format!("the subject must be a Patient, not a {t}"),
                ));
            }
        }
    }
}

/// Reads `v` as `shape`, naming issues from `at`.
fn read_shape(v: &Value, at: &str, shape: Shape) -> Result<(), Vec<Issue>> {
    match shape {
        Shape::Bool => read::<bool>(v, at, false).map(drop),
        Shape::Int => read::<i64>(v, at, false).map(drop),
        Shape::Decimal => read::<Decimal>(v, at, false).map(drop),
        Shape::Str => read::<String>(v, at, false).map(drop),
        Shape::Strs => read::<Vec<String>>(v, at, false).map(drop),
        Shape::DateTime => read::<DateTime>(v, at, false).map(drop),
        Shape::Period => read::<Period>(v, at, false).map(drop),
        Shape::Quantity => read::<Quantity>(v, at, false).map(drop),
        Shape::Identifier => read::<Identifier>(v, at, false).map(drop),
        Shape::Concept => read::<CodeableConcept>(v, at, false).map(drop),
        Shape::Concepts => read::<Vec<CodeableConcept>>(v, at, false).map(drop),
        Shape::Reference => read::<Reference>(v, at, false).map(drop),
        Shape::References => read::<Vec<Reference>>(v, at, false).map(drop),
        Shape::Annotations => read::<Vec<Annotation>>(v, at, false).map(drop),
    }
}

/// Reads the resource into its canonical struct, after the elements the
/// struct does not read (`elements::unmodelled`) and the choice elements it
/// flattens, one by one: a flattened element's errors would lose their path.
fn typed(obj: &Map<String, Value>, rt: &str, value: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    for (key, v) in obj {
        let at = format!("{rt}.{key}");
        let flattened = match (rt, key.as_str()) {
            ("Patient", "deceasedDateTime")
            | ("Observation", "valueDateTime")
            | ("ChargeItem", "occurrenceDateTime") => Some(Shape::DateTime),
            ("Observation", "valueQuantity") => Some(Shape::Quantity),
            ("Observation", "valueCodeableConcept") => Some(Shape::Concept),
            ("Observation", "valueString") => Some(Shape::Str),
            ("ChargeItem", "occurrencePeriod") => Some(Shape::Period),
            _ => None,
        };
        let r = match flattened.or_else(|| elements::unmodelled(rt, key)) {
            Some(shape) => read_shape(v, &at, shape),
            None => Ok(()),
        };
        if let Err(mut e) = r {
            issues.append(&mut e);
        }
    }
    if !issues.is_empty() {
        return issues;
    }
    let r = match rt {
        "Patient" => read::<Patient>(value, rt, true).map(drop),
        "Encounter" => read::<Encounter>(value, rt, true).map(drop),
        "ServiceRequest" => read::<ServiceRequest>(value, rt, true).map(drop),
        "Observation" => read::<Observation>(value, rt, true).map(drop),
        "DiagnosticReport" => read::<DiagnosticReport>(value, rt, true).map(drop),
        "ChargeItem" => read::<ChargeItem>(value, rt, true).map(drop),
        "ImagingStudy" => read::<ImagingStudyCheck>(value, rt, true).map(drop),
        _ => Ok(()),
    };
    r.err().unwrap_or_default()
}
