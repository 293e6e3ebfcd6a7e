//! [`to_events`]: the canonical events a stored FHIR resource stands for,
//! the same kinds the HL7 v2 mapping produces for the same situation.
//!
//! | resource (status)                                   | event                                     |
//! |-----------------------------------------------------|-------------------------------------------|
//! | Patient                                             | `patient.registered` (created) / `patient.updated` |
//! | Encounter planned                                   | `encounter.planned`                       |
//! | Encounter arrived, triaged, in-progress, onleave, unknown | `encounter.started` (created) / `encounter.updated` |
//! | Encounter finished                                  | `encounter.finished`                      |
//! | Encounter cancelled, entered-in-error               | `encounter.cancelled`                     |
//! | ServiceRequest draft, active, on-hold, unknown      | `order.placed` (created) / `order.updated` |
//! | ServiceRequest completed                            | `order.completed`                         |
//! | ServiceRequest revoked, entered-in-error            | `order.cancelled`                         |
//! | DiagnosticReport, lone Observation                  | `result.reported` / `result.corrected`    |
//! | ChargeItem billable, planned, billed, unknown       | `billing.charge-posted`                   |
//! | ChargeItem aborted, not-billable, entered-in-error  | `billing.charge-reversed`                 |
//! | ImagingStudy                                        | none (kept and searchable only)           |

use medbus_bus::canonical::{
    CanonicalEvent, ChargeEvent, ChargeItem, ChargeItemStatus, ChargeOccurrence, DateTime, DiagnosticReport,
    DiagnosticReportStatus, Encounter, EncounterEvent, EncounterStatus, Identifier, Observation, ObservationStatus,
    OrderEvent, Patient, PatientEvent, Reference, ResultEvent, ServiceRequest, ServiceRequestStatus,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::check::{parse_reference, RefTarget};
use super::outcome::{Issue, IssueCode};
use super::read::read;

/// The identifier system medbus gives a resource that arrived without an
/// identifier with a value: its FHIR id. The domain services key orders,
/// reports, observations and charges by identifier (the HL7 path always has
/// one: placer, filler, OBX ids), so without it such events could not be
/// stored.
pub const FHIR_ID_SYSTEM: &str = "urn:medbus:fhir-id";

/// Looks up a stored (or same-Bundle) resource by type and id.
pub type Lookup<'a> = &'a dyn Fn(&str, &str) -> Option<Value>;

/// The canonical events a stored resource stands for. `created` = it did
/// not exist before. `lookup("Patient", "<id>")` returns a stored or
/// same-bundle resource's JSON. Errors when a needed reference cannot be
/// resolved (`not-found`, naming the element).
///
/// - Each event carries the Patient its `subject` refers to, read into the
///   canonical Patient; the subject reference keeps its literal `Patient/id`
///   and gains the patient's key identifier, as on the HL7 path. A subject
///   given only by identifier makes a patient of that identifier alone.
/// - A lone Observation is reported as `result.reported` with a
///   DiagnosticReport built from it (same identifiers, code, status, subject,
///   times; `result` = that observation), because the results service stores
///   reports with their observations, as an HL7 ORU carries them.
/// - An Encounter, order, report, observation or charge without an
///   identifier with a value gets its id as one (system [`FHIR_ID_SYSTEM`]).
/// - An ImagingStudy yields no event: medbus's `imaging.*` events say what
///   medbus itself holds — `instance-stored` an instance received over DICOM
///   with its file, `study-completed` the imaging service's count of those —
///   and a study described by another system has neither. It is checked,
///   stored and searchable by identifier like any resource.
/// - `sourceMessageType` is `FHIR <Type> create` or `FHIR <Type> update`;
///   `occurred` is the resource's own time where it has one.
pub fn to_events(resource: &Value, created: bool, lookup: Lookup<'_>) -> Result<Vec<CanonicalEvent>, Vec<Issue>> {
    let Some(rt) = resource.get("resourceType").and_then(Value::as_str) else {
        return Err(vec![Issue::at(
            IssueCode::Required,
            "resourceType",
            "resourceType is required",
        )]);
    };
    let smt = Some(format!("FHIR {rt} {}", if created { "create" } else { "update" }));
    let ctx = Ctx { resource, lookup };
    Ok(match rt {
        "Patient" => {
            let patient: Patient = read(resource, rt, true)?;
            let body = PatientEvent {
                patient,
                source_message_type: smt,
                occurred: None,
            };
            vec![if created {
                CanonicalEvent::PatientRegistered(body)
            } else {
                CanonicalEvent::PatientUpdated(body)
            }]
        }
        "Encounter" => vec![encounter(&ctx, created, smt)?],
        "ServiceRequest" => vec![order(&ctx, created, smt)?],
        "DiagnosticReport" => vec![report(&ctx, smt)?],
        "Observation" => vec![lone_observation(&ctx, smt)?],
        "ChargeItem" => vec![charge(&ctx, smt)?],
        "ImagingStudy" => Vec::new(),
        other => {
            return Err(vec![Issue::at(
                IssueCode::NotSupported,
                "resourceType",
                format!("{other} does not map to canonical events"),
            )])
        }
    })
}

/// The canonical events of the resources ONE request writes (a transaction,
/// or a single resource), in order: [`to_events`] of each, except that an
/// Observation a DiagnosticReport of the same request lists in `result`
/// yields no event of its own. The report's `result.reported` carries it, as
/// an ORU carries its OBX segments; its own event would store it a second
/// time under a report made from it, and raise its critical value twice. It
/// is still mapped, so what could not be is refused all the same. Errors are
/// `(index in resources, its issues)`.
pub fn request_events(
    resources: &[(Value, bool)],
    lookup: Lookup<'_>,
) -> Result<Vec<CanonicalEvent>, Vec<(usize, Vec<Issue>)>> {
    let reported = reported_observations(resources.iter().map(|(r, _)| r));
    let mut events = Vec::new();
    let mut failed = Vec::new();
    for (i, (resource, created)) in resources.iter().enumerate() {
        match to_events(resource, *created, lookup) {
            Ok(_) if is_observation_in(resource, &reported) => {}
            Ok(mut e) => events.append(&mut e),
            Err(issues) => failed.push((i, issues)),
        }
    }
    if failed.is_empty() {
        Ok(events)
    } else {
        Err(failed)
    }
}

/// The ids of the Observations the DiagnosticReports among `resources` list in `result`.
fn reported_observations<'a>(resources: impl Iterator<Item = &'a Value>) -> Vec<String> {
    let mut ids = Vec::new();
    for r in resources.filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("DiagnosticReport")) {
        let results = r
            .get("result")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for reference in results
            .iter()
            .filter_map(|x| x.get("reference").and_then(Value::as_str))
        {
            if let Ok(RefTarget::Literal {
                resource_type: "Observation",
                id,
            }) = parse_reference(reference)
            {
                ids.push(id.to_string());
            }
        }
    }
    ids
}

fn is_observation_in(resource: &Value, ids: &[String]) -> bool {
    resource.get("resourceType").and_then(Value::as_str) == Some("Observation")
        && resource
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| ids.iter().any(|i| i == id))
}

struct Ctx<'a> {
    resource: &'a Value,
    lookup: Lookup<'a>,
}

impl Ctx<'_> {
    /// The resource `reference` (at element `at`) points to, which must be a
    /// `want`: a stored one, or one contained in the resource.
    fn resolve<T: DeserializeOwned>(&self, reference: &str, want: &str, at: &str) -> Result<T, Issue> {
        let json = match parse_reference(reference) {
            Ok(RefTarget::Literal { resource_type, id }) if resource_type == want => (self.lookup)(want, id)
                .ok_or_else(|| {
                    Issue::at(
                        IssueCode::NotFound,
                        at,
                        format!("{reference} is not known to medbus: send the {want} first"),
                    )
                })?,
            Ok(RefTarget::Literal { resource_type, .. }) => {
                return Err(Issue::at(
                    IssueCode::Value,
                    at,
                    format!("{reference} must refer to a {want}, not a {resource_type}"),
                ))
            }
            Ok(RefTarget::Contained(id)) => self
                .contained(id)
                .ok_or_else(|| Issue::at(IssueCode::NotFound, at, format!("no contained resource has id {id:?}")))?,
            Ok(RefTarget::Uuid) => {
                return Err(Issue::at(
                    IssueCode::NotFound,
                    at,
                    format!("{reference} was not resolved to an entry of the Bundle"),
                ))
            }
            Err((code, why)) => return Err(Issue::at(code, at, why)),
        };
        if json.get("resourceType").and_then(Value::as_str) != Some(want) {
            return Err(Issue::at(
                IssueCode::Value,
                at,
                format!("{reference} must refer to a {want}"),
            ));
        }
        serde_json::from_value(json).map_err(|e| {
            Issue::at(
                IssueCode::Processing,
                at,
                format!("the {want} {reference} cannot be read: {e}"),
            )
        })
    }

    fn contained(&self, id: &str) -> Option<Value> {
        self.resource
            .get("contained")?
            .as_array()?
            .iter()
            .find(|c| c.get("id").and_then(Value::as_str) == Some(id))
            .cloned()
    }

    /// The patient `subject` names; `subject` gains the patient's logical reference.
    fn patient(&self, subject: Option<&mut Reference>, at: &str) -> Result<Patient, Issue> {
        let Some(subject) = subject else {
            return Err(Issue::at(
                IssueCode::Required,
                at,
                "medbus requires the subject: every event carries its patient",
            ));
        };
        let patient = match &subject.reference {
            Some(r) => self.resolve::<Patient>(r, "Patient", &format!("{at}.reference"))?,
            None => match subject.identifier.clone().filter(|i| i.value.is_some()) {
                Some(identifier) => Patient {
                    identifier: vec![identifier],
                    ..Patient::default()
                },
                None => {
                    return Err(Issue::at(
                        IssueCode::Required,
                        at,
                        "the subject must name the patient by reference or by identifier",
                    ))
                }
            },
        };
        if patient.key().is_none() {
            return Err(Issue::at(
                IssueCode::Processing,
                at,
                "the patient has no identifier with a value: medbus keys patients by identifier",
            ));
        }
        link(subject, &patient.reference());
        Ok(patient)
    }

    /// Adds the encounter's identifier to an `encounter` reference when the
    /// encounter is known; an unknown one stays as sent (no event needs it).
    fn encounter_link(&self, r: Option<&mut Reference>) {
        let Some(r) = r else { return };
        let Some(reference) = r.reference.clone() else { return };
        if let Ok(e) = self.resolve::<Encounter>(&reference, "Encounter", "") {
            let logical = Reference {
                type_: Some("Encounter".into()),
                identifier: e.identifier.iter().find(|i| i.value.is_some()).cloned(),
                ..Reference::default()
            };
            link(r, &logical);
        }
    }
}

/// Fills what `r` lacks from `logical` (type, identifier, display), keeping
/// the literal reference as sent.
fn link(r: &mut Reference, logical: &Reference) {
    if r.type_.is_none() {
        r.type_ = logical.type_.clone();
    }
    if r.identifier.is_none() {
        r.identifier = logical.identifier.as_ref().map(|i| Identifier {
            assigner: None,
            period: None,
            ..i.clone()
        });
    }
    if r.display.is_none() {
        r.display = logical.display.clone();
    }
}

/// Gives a resource without an identifier with a value its id as one (see [`FHIR_ID_SYSTEM`]).
fn ensure_key(identifier: &mut Vec<Identifier>, id: Option<&str>) {
    if identifier.iter().any(|i| i.value.is_some()) {
        return;
    }
    if let Some(id) = id {
        identifier.push(Identifier {
            system: Some(FHIR_ID_SYSTEM.into()),
            value: Some(id.into()),
            ..Identifier::default()
        });
    }
}

fn encounter(ctx: &Ctx<'_>, created: bool, smt: Option<String>) -> Result<CanonicalEvent, Vec<Issue>> {
    let mut e: Encounter = read(ctx.resource, "Encounter", true)?;
    let patient = ctx
        .patient(e.subject.as_mut(), "Encounter.subject")
        .map_err(|i| vec![i])?;
    ensure_key(&mut e.identifier, e.id.as_deref());
    let period = e.period.clone().unwrap_or_default();
    let occurred = match e.status {
        EncounterStatus::Finished => period.end.or(period.start),
        _ => period.start,
    };
    let status = e.status;
    let body = EncounterEvent {
        encounter: e,
        patient,
        source_message_type: smt,
        occurred,
    };
    Ok(match status {
        EncounterStatus::Planned => CanonicalEvent::EncounterPlanned(body),
        EncounterStatus::Finished => CanonicalEvent::EncounterFinished(body),
        EncounterStatus::Cancelled | EncounterStatus::EnteredInError => CanonicalEvent::EncounterCancelled(body),
        EncounterStatus::Arrived
        | EncounterStatus::Triaged
        | EncounterStatus::InProgress
        | EncounterStatus::Onleave
        | EncounterStatus::Unknown => {
            if created {
                CanonicalEvent::EncounterStarted(body)
            } else {
                CanonicalEvent::EncounterUpdated(body)
            }
        }
    })
}

fn order(ctx: &Ctx<'_>, created: bool, smt: Option<String>) -> Result<CanonicalEvent, Vec<Issue>> {
    let mut sr: ServiceRequest = read(ctx.resource, "ServiceRequest", true)?;
    let patient = ctx
        .patient(Some(&mut sr.subject), "ServiceRequest.subject")
        .map_err(|i| vec![i])?;
    ctx.encounter_link(sr.encounter.as_mut());
    ensure_key(&mut sr.identifier, sr.id.as_deref());
    // As on the HL7 path (ORC-9): when the order was made, not when it is to be done.
    let occurred = sr.authored_on.clone();
    let status = sr.status;
    let body = OrderEvent {
        service_request: sr,
        patient,
        source_message_type: smt,
        occurred,
    };
    Ok(match status {
        ServiceRequestStatus::Completed => CanonicalEvent::OrderCompleted(body),
        ServiceRequestStatus::Revoked | ServiceRequestStatus::EnteredInError => CanonicalEvent::OrderCancelled(body),
        ServiceRequestStatus::Draft
        | ServiceRequestStatus::Active
        | ServiceRequestStatus::OnHold
        | ServiceRequestStatus::Unknown => {
            if created {
                CanonicalEvent::OrderPlaced(body)
            } else {
                CanonicalEvent::OrderUpdated(body)
            }
        }
    })
}

/// Report statuses that change what was reported before, and the observation
/// statuses the HL7 path treats the same way (`result_codes::is_correction`).
fn is_correction(report: DiagnosticReportStatus, observations: &[ObservationStatus]) -> bool {
    matches!(
        report,
        DiagnosticReportStatus::Corrected
            | DiagnosticReportStatus::Amended
            | DiagnosticReportStatus::Appended
            | DiagnosticReportStatus::Cancelled
            | DiagnosticReportStatus::EnteredInError
    ) || observations.iter().any(|s| {
        matches!(
            s,
            ObservationStatus::Corrected | ObservationStatus::Amended | ObservationStatus::EnteredInError
        )
    })
}

fn result_event(body: ResultEvent) -> CanonicalEvent {
    let statuses: Vec<ObservationStatus> = body.observations.iter().map(|o| o.status).collect();
    if is_correction(body.report.status, &statuses) {
        CanonicalEvent::ResultCorrected(body)
    } else {
        CanonicalEvent::ResultReported(body)
    }
}

/// An observation of a report: its subject is the report's patient, and it has a key.
fn own_observation(o: &mut Observation, patient: &Patient) {
    match o.subject.as_mut() {
        Some(s) => link(s, &patient.reference()),
        None => o.subject = Some(patient.reference()),
    }
    ensure_key(&mut o.identifier, o.id.as_deref());
}

fn report(ctx: &Ctx<'_>, smt: Option<String>) -> Result<CanonicalEvent, Vec<Issue>> {
    let mut dr: DiagnosticReport = read(ctx.resource, "DiagnosticReport", true)?;
    let patient = ctx
        .patient(dr.subject.as_mut(), "DiagnosticReport.subject")
        .map_err(|i| vec![i])?;
    ctx.encounter_link(dr.encounter.as_mut());
    ensure_key(&mut dr.identifier, dr.id.as_deref());
    let mut issues = Vec::new();
    let mut observations = Vec::with_capacity(dr.result.len());
    for (i, r) in dr.result.iter_mut().enumerate() {
        let at = format!("DiagnosticReport.result[{i}]");
        let Some(reference) = r.reference.clone() else {
            issues.push(Issue::at(
                IssueCode::Required,
                format!("{at}.reference"),
                "medbus reads a report's observations by literal reference (Observation/id)",
            ));
            continue;
        };
        match ctx.resolve::<Observation>(&reference, "Observation", &format!("{at}.reference")) {
            Ok(mut o) => {
                own_observation(&mut o, &patient);
                link(r, &o.reference());
                observations.push(o);
            }
            Err(issue) => issues.push(issue),
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    let occurred = dr.issued.clone().or_else(|| dr.effective_date_time.clone());
    Ok(result_event(ResultEvent {
        report: dr,
        observations,
        patient,
        source_message_type: smt,
        occurred,
    }))
}

fn report_status(s: ObservationStatus) -> DiagnosticReportStatus {
    match s {
        ObservationStatus::Registered => DiagnosticReportStatus::Registered,
        ObservationStatus::Preliminary => DiagnosticReportStatus::Preliminary,
        ObservationStatus::Final => DiagnosticReportStatus::Final,
        ObservationStatus::Amended => DiagnosticReportStatus::Amended,
        ObservationStatus::Corrected => DiagnosticReportStatus::Corrected,
        ObservationStatus::Cancelled => DiagnosticReportStatus::Cancelled,
        ObservationStatus::EnteredInError => DiagnosticReportStatus::EnteredInError,
        ObservationStatus::Unknown => DiagnosticReportStatus::Unknown,
    }
}

fn lone_observation(ctx: &Ctx<'_>, smt: Option<String>) -> Result<CanonicalEvent, Vec<Issue>> {
    let mut o: Observation = read(ctx.resource, "Observation", true)?;
    let patient = ctx
        .patient(o.subject.as_mut(), "Observation.subject")
        .map_err(|i| vec![i])?;
    ctx.encounter_link(o.encounter.as_mut());
    own_observation(&mut o, &patient);
    let mut dr = DiagnosticReport::new(report_status(o.status), o.code.clone());
    dr.identifier = o.identifier.clone();
    dr.based_on = o.based_on.clone();
    dr.subject = o.subject.clone();
    dr.encounter = o.encounter.clone();
    dr.effective_date_time = o.effective_date_time.clone();
    dr.issued = o.issued.clone();
    let mut result = o.reference();
    result.reference = o.id.as_ref().map(|id| format!("Observation/{id}"));
    dr.result = vec![result];
    let occurred = o.issued.clone().or_else(|| o.effective_date_time.clone());
    Ok(result_event(ResultEvent {
        report: dr,
        observations: vec![o],
        patient,
        source_message_type: smt,
        occurred,
    }))
}

fn charge(ctx: &Ctx<'_>, smt: Option<String>) -> Result<CanonicalEvent, Vec<Issue>> {
    let mut c: ChargeItem = read(ctx.resource, "ChargeItem", true)?;
    let patient = ctx
        .patient(Some(&mut c.subject), "ChargeItem.subject")
        .map_err(|i| vec![i])?;
    ctx.encounter_link(c.context.as_mut());
    ensure_key(&mut c.identifier, c.id.as_deref());
    let occurred: Option<DateTime> = match &c.occurrence {
        Some(ChargeOccurrence::DateTime(t)) => Some(t.clone()),
        Some(ChargeOccurrence::Period(p)) => p.start.clone(),
        None => None,
    }
    .or_else(|| c.entered_date.clone());
    let status = c.status;
    let body = ChargeEvent {
        charge_item: c,
        patient,
        source_message_type: smt,
        occurred,
    };
    Ok(match status {
        ChargeItemStatus::Aborted | ChargeItemStatus::NotBillable | ChargeItemStatus::EnteredInError => {
            CanonicalEvent::ChargeReversed(body)
        }
        ChargeItemStatus::Planned
        | ChargeItemStatus::Billable
        | ChargeItemStatus::Billed
        | ChargeItemStatus::Unknown => CanonicalEvent::ChargePosted(body),
    })
}
