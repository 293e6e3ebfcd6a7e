//! OBX (with the NTEs after it) → Observation.
//!
//! OBX-3 → code (required); OBX-11 (table 0085) → status, else the report's;
//! OBX-2/5/6 → value, OBX-7 → reference range (see `values`); OBX-8 →
//! interpretation (see `interpretation`); OBX-14 (else OBR-7) →
//! effectiveDateTime; OBR-22 → issued; NTE-3 → note. Identifiers: first one
//! derived from the order number, the code and OBX-4 sub-id
//! (`FL123/2823-3[/sub]`), which stays the same across preliminary, final
//! and corrected results; then OBX-21 when sent.

use medbus_bus::canonical::{Annotation, DateTime, DiagnosticReportStatus, Identifier, Observation, Reference};

use super::codes::cwe;
use super::entity::{derived, ei};
use super::error::MapError;
use super::interpretation::interpretation;
use super::parties::Subject;
use super::read::{first, first_comp, time};
use super::result_codes::{observation_status, observation_status_from};
use super::types::{code, comp, loc, reps};
use super::values::{reference_range, unit, value};
use super::Ctx;
use crate::hl7::parser::Segment;

/// What an OBX takes from its OBR and the message.
pub(super) struct ReportContext<'r> {
    /// The order number observation identifiers derive from (filler, else placer).
    pub(super) order_number: &'r Identifier,
    /// The ServiceRequest references (placer, filler).
    pub(super) based_on: &'r [Reference],
    /// The patient and visit.
    pub(super) subject: &'r Subject,
    /// The report's status, for an OBX without OBX-11.
    pub(super) report_status: DiagnosticReportStatus,
    /// OBR-7, for an OBX without OBX-14.
    pub(super) effective: Option<DateTime>,
    /// OBR-22 as an instant.
    pub(super) issued: Option<DateTime>,
}

/// The part of OBX-3 (and OBX-4 sub-id) an observation's derived identifier uses.
pub(super) fn identity(obx: &Segment<'_>) -> Option<(String, Option<String>)> {
    let rep = first(obx, 3)?;
    let what = code(comp(&rep, 1)).or_else(|| comp(&rep, 2))?;
    Some((what, first_comp(obx, 4, 1)))
}

/// OBX → Observation. `occurrence` numbers repeats of the same code and
/// sub-id within one OBR (text reports send many), so identifiers stay unique.
pub(super) fn observation(
    ctx: &Ctx<'_, '_>,
    obx: &Segment<'_>,
    notes: &[Segment<'_>],
    report: &ReportContext<'_>,
    occurrence: usize,
) -> Result<Observation, MapError> {
    let missing_code = || MapError::MissingField {
        location: loc(obx, "OBX", 3),
        why: "the observation identifier says what was observed",
    };
    let obs_code = first(obx, 3).and_then(|r| cwe(&r, None)).ok_or_else(missing_code)?;
    let (what, sub_id) = identity(obx).ok_or_else(missing_code)?;
    let status = match code(first_comp(obx, 11, 1)) {
        Some(c) => observation_status(&c).ok_or_else(|| MapError::unknown_code(loc(obx, "OBX", 11), "0085", c))?,
        None => observation_status_from(report.report_status),
    };
    let mut o = Observation::new(status, obs_code);
    let occurrence_part = (occurrence > 1).then(|| occurrence.to_string());
    let parts: Vec<&str> = [Some(what.as_str()), sub_id.as_deref(), occurrence_part.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    o.identifier.push(derived(report.order_number, &parts));
    o.identifier.extend(first(obx, 21).and_then(|r| ei(&r, None)));
    o.based_on = report.based_on.to_vec();
    o.subject = Some(report.subject.reference.clone());
    o.encounter = report.subject.encounter.clone();
    o.effective_date_time = time(ctx, obx, "OBX", 14)?.or_else(|| report.effective.clone());
    o.issued = report.issued.clone();
    let u = unit(obx);
    o.value = value(ctx, obx, &u)?;
    o.interpretation = reps(obx, 8)
        .filter_map(|(_, r)| code(comp(&r, 1)))
        .map(|flag| interpretation(&flag))
        .collect();
    o.reference_range = reference_range(obx, &u).into_iter().collect();
    o.note = notes
        .iter()
        .filter_map(|nte| {
            let lines: Vec<String> = reps(nte, 3)
                .filter_map(|(_, r)| super::types::text(r.as_value()))
                .collect();
            (!lines.is_empty()).then(|| Annotation { text: lines.join("\n") })
        })
        .collect();
    Ok(o)
}
