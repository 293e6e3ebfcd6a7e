//! The resources of the result events: observations, their report, and for
//! a critical value a Communication (an alert) about them.

use medbus_bus::canonical::{
    CodeableConcept, CriticalReason, CriticalResultEvent, DiagnosticReport, Observation, ObservationValue, Reference,
    ResultEvent,
};
use serde_json::json;

use super::links::{first_with_value, patient_reference, resolve};
use super::resources::{keyed, patient, Mapped};
use super::FhirError;

/// FHIR's CommunicationCategory code system (`alert`).
const COMMUNICATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/communication-category";

fn observation(o: &Observation, subject: &Reference) -> Result<Mapped, FhirError> {
    let mut o = o.clone();
    o.subject = Some(subject.clone());
    o.encounter.iter_mut().for_each(resolve);
    o.based_on.iter_mut().for_each(resolve);
    let key = first_with_value(&o.identifier).cloned();
    keyed("Observation", key.as_ref(), &o)
}

fn report(r: &DiagnosticReport, subject: &Reference) -> Result<Mapped, FhirError> {
    let mut r = r.clone();
    r.subject = Some(subject.clone());
    r.encounter.iter_mut().for_each(resolve);
    r.based_on.iter_mut().for_each(resolve);
    r.result.iter_mut().for_each(resolve);
    let key = first_with_value(&r.identifier).cloned();
    keyed("DiagnosticReport", key.as_ref(), &r)
}

/// The patient, each observation, then the report listing them.
pub(super) fn result(b: &ResultEvent) -> Result<Vec<Mapped>, FhirError> {
    let subject = patient_reference(&b.patient)?;
    let mut out = vec![patient(&b.patient)?];
    for o in &b.observations {
        out.push(observation(o, &subject)?);
    }
    out.push(report(&b.report, &subject)?);
    Ok(out)
}

/// The patient, the observation and its report (the same resources, ids
/// included, as `result.reported` gave), and a Communication: an `alert`
/// about both, saying what is critical and why, keyed by the observation's
/// identifier.
pub(super) fn critical(b: &CriticalResultEvent) -> Result<Vec<Mapped>, FhirError> {
    let subject = patient_reference(&b.patient)?;
    let obs = observation(&b.observation, &subject)?;
    let rep = report(&b.report, &subject)?;
    let key = first_with_value(&b.observation.identifier).cloned();
    let about = |type_: &str, id: &str| json!({"reference": format!("{type_}/{id}"), "type": type_});
    let mut communication = json!({
        "resourceType": "Communication",
        "identifier": key.as_ref().map(|k| vec![k.clone()]),
        "status": "completed",
        "category": [{"coding": [{"system": COMMUNICATION_CATEGORY, "code": "alert", "display": "Alert"}]}],
        "priority": "stat",
        "subject": subject,
        "about": [about("Observation", &obs.id), about("DiagnosticReport", &rep.id)],
        "payload": [{"contentString": alert_text(&b.observation, &b.reason)}],
    });
    if let (Some(sent), Some(object)) = (b.occurred.as_ref(), communication.as_object_mut()) {
        object.insert("sent".into(), json!(sent));
    }
    let alert = keyed("Communication", key.as_ref(), &communication)?;
    Ok(vec![patient(&b.patient)?, obs, rep, alert])
}

/// `Critical result: Potassium = 6.8 mmol/L (flagged HH)`.
fn alert_text(o: &Observation, reason: &CriticalReason) -> String {
    let what = concept_text(&o.code).unwrap_or_else(|| "observation".into());
    let value = match &o.value {
        Some(ObservationValue::Quantity(q)) => {
            let v = q.value.map(|d| d.to_string()).unwrap_or_default();
            let unit = q.unit.as_deref().or(q.code.as_deref()).unwrap_or_default();
            format!(" = {v} {unit}").trim_end().to_string()
        }
        Some(ObservationValue::String(s)) => format!(" = {s}"),
        Some(ObservationValue::CodeableConcept(c)) => concept_text(c).map(|t| format!(" = {t}")).unwrap_or_default(),
        Some(ObservationValue::DateTime(d)) => format!(" = {}", d.as_str()),
        None => String::new(),
    };
    let why = match reason {
        CriticalReason::Flag(code) => format!("flagged {code}"),
        CriticalReason::Threshold { low, high } => match (low, high) {
            (Some(l), Some(h)) => format!("outside the critical limits {l} to {h}"),
            (Some(l), None) => format!("below the critical limit {l}"),
            (None, Some(h)) => format!("above the critical limit {h}"),
            (None, None) => "past a critical limit".into(),
        },
    };
    format!("Critical result: {what}{value} ({why})")
}

/// The concept's text, else the first coding's display, else its code.
fn concept_text(c: &CodeableConcept) -> Option<String> {
    c.text.clone().or_else(|| {
        c.coding
            .iter()
            .find_map(|x| x.display.clone().or_else(|| x.code.clone()))
    })
}
