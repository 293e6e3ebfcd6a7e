//! ORU^R01 → `result.reported` or `result.corrected`: one event per OBR,
//! carrying a DiagnosticReport and the Observations of its OBXs.
//!
//! The message may hold several patients (PID groups), each with several
//! orders; an ORC applies to the OBR after it. Report fields: OBR-3 (else
//! ORC-3) → filler identifier, OBR-2 (else ORC-2) → placer identifier, one
//! of them required — they link the result to its order (`basedOn`, a
//! ServiceRequest by each number) even when the order arrives later. OBR-4 →
//! code (required); OBR-25 (table 0123) → status, else derived from the
//! OBX-11 statuses; OBR-7 → effective; OBR-22 → issued, and when it
//! happened (else MSH-7). A report whose status or any observation's status
//! is corrected, amended or withdrawn (C, M / A, D, W) is `result.corrected`.
//!
//! Critical values are not decided here: the results service raises
//! `result.critical` from flags and configured thresholds.

use medbus_bus::canonical::{CanonicalEvent, DiagnosticReport, ResultEvent, ServiceRequest};

use super::codes::cwe;
use super::entity::ei;
use super::error::MapError;
use super::observation::{identity, observation, ReportContext};
use super::parties::{subject, Subject};
use super::read::{first, first_comp, instant, time};
use super::result_codes::{is_correction, observation_status, report_status, report_status_from};
use super::types::{code, loc};
use super::Ctx;
use crate::hl7::parser::Segment;

/// One OBX and the NTEs after it.
type Obx<'a> = (Segment<'a>, Vec<Segment<'a>>);

/// One OBR with its patient, ORC and OBXs.
struct Report<'a> {
    pid: Segment<'a>,
    pv1: Option<Segment<'a>>,
    orc: Option<Segment<'a>>,
    obr: Segment<'a>,
    obxs: Vec<Obx<'a>>,
}

/// Splits the message into reports, checking the order of segments.
fn reports<'a>(ctx: &Ctx<'_, 'a>) -> Result<Vec<Report<'a>>, MapError> {
    let mut out: Vec<Report<'a>> = Vec::new();
    let (mut pid, mut pv1, mut orc) = (None, None, None);
    for seg in ctx.msg.segments() {
        match seg.name() {
            "PID" => {
                pid = Some(seg);
                pv1 = None;
                orc = None;
            }
            "PV1" => pv1 = Some(seg),
            "ORC" => orc = Some(seg),
            "OBR" => out.push(Report {
                pid: pid.ok_or_else(|| ctx.no_segment("PID", "before OBR"))?,
                pv1,
                orc: orc.take(),
                obr: seg,
                obxs: Vec::new(),
            }),
            "OBX" => {
                let report = out
                    .last_mut()
                    .filter(|r| Some(r.pid) == pid)
                    .ok_or_else(|| ctx.no_segment("OBR", "before OBX"))?;
                report.obxs.push((seg, Vec::new()));
            }
            "NTE" => {
                // Notes on an observation follow it; notes before the first OBX are on the order.
                if let Some((_, notes)) = out.last_mut().and_then(|r| r.obxs.last_mut()) {
                    notes.push(seg);
                }
            }
            _ => {}
        }
    }
    if out.is_empty() {
        return Err(ctx.no_segment("OBR", "(a result needs one)"));
    }
    Ok(out)
}

/// Maps an ORU^R01.
pub(super) fn map(ctx: &Ctx<'_, '_>) -> Result<Vec<CanonicalEvent>, MapError> {
    if (ctx.code.as_str(), ctx.trigger.as_str()) != ("ORU", "R01") {
        return Err(MapError::UnsupportedEvent {
            message_type: ctx.message_type(),
        });
    }
    let reports = reports(ctx)?;
    // Map each PID once: a message with many orders for one patient repeats none of the work.
    let mut subjects: Vec<(usize, Subject)> = Vec::new();
    let mut events = Vec::with_capacity(reports.len());
    for r in &reports {
        let seq = r.pid.sequence();
        let who = match subjects.iter().find(|(s, _)| *s == seq) {
            Some((_, who)) => who.clone(),
            None => {
                let who = subject(ctx, &r.pid, r.pv1.as_ref())?;
                subjects.push((seq, who.clone()));
                who
            }
        };
        events.push(report(ctx, r, &who)?);
    }
    Ok(events)
}

/// One OBR group → its event.
fn report(ctx: &Ctx<'_, '_>, r: &Report<'_>, who: &Subject) -> Result<CanonicalEvent, MapError> {
    let obr = &r.obr;
    let number = |field: usize, type_code: &str| {
        first(obr, field).and_then(|rep| ei(&rep, Some(type_code))).or_else(|| {
            r.orc
                .and_then(|orc| first(&orc, field))
                .and_then(|rep| ei(&rep, Some(type_code)))
        })
    };
    let (filler, placer) = (number(3, "FILL"), number(2, "PLAC"));
    let order_number = filler
        .clone()
        .or_else(|| placer.clone())
        .ok_or(MapError::MissingField {
            location: loc(obr, "OBR", 3),
            why: "a filler or placer order number (OBR-3/2 or ORC-3/2) links the result to its order",
        })?;
    let code_ = first(obr, 4)
        .and_then(|rep| cwe(&rep, None))
        .ok_or(MapError::MissingField {
            location: loc(obr, "OBR", 4),
            why: "the universal service identifier says what was reported",
        })?;
    // Statuses the OBXs state themselves; an unknown one is reported by the OBX's own mapping.
    let stated: Vec<_> = r
        .obxs
        .iter()
        .filter_map(|(obx, _)| code(first_comp(obx, 11, 1)).and_then(|c| observation_status(&c)))
        .collect();
    let status = match code(first_comp(obr, 25, 1)) {
        Some(c) => report_status(&c).ok_or_else(|| MapError::unknown_code(loc(obr, "OBR", 25), "0123", c))?,
        None => report_status_from(&stated),
    };
    let mut dr = DiagnosticReport::new(status, code_);
    dr.based_on = [&placer, &filler]
        .into_iter()
        .flatten()
        .map(ServiceRequest::reference_by)
        .collect();
    dr.identifier = [filler, placer].into_iter().flatten().collect();
    dr.subject = Some(who.reference.clone());
    dr.encounter = who.encounter.clone();
    dr.effective_date_time = time(ctx, obr, "OBR", 7)?;
    let reported = time(ctx, obr, "OBR", 22)?;
    dr.issued = instant(reported.clone());
    let shared = ReportContext {
        order_number: &order_number,
        based_on: &dr.based_on,
        subject: who,
        report_status: status,
        effective: dr.effective_date_time.clone(),
        issued: dr.issued.clone(),
    };
    let mut seen: Vec<(String, Option<String>)> = Vec::new();
    let mut observations = Vec::with_capacity(r.obxs.len());
    for (obx, notes) in &r.obxs {
        let occurrence = match identity(obx) {
            Some(id) => {
                seen.push(id.clone());
                seen.iter().filter(|s| **s == id).count()
            }
            None => 1,
        };
        observations.push(observation(ctx, obx, notes, &shared, occurrence)?);
    }
    dr.result = observations.iter().map(|o| o.reference()).collect();
    let statuses: Vec<_> = observations.iter().map(|o| o.status).collect();
    let body = ResultEvent {
        report: dr,
        observations,
        patient: who.patient.clone(),
        source_message_type: Some(ctx.message_type()),
        occurred: match reported {
            Some(t) => Some(t),
            None => ctx.occurred()?,
        },
    };
    Ok(if is_correction(status, &statuses) {
        CanonicalEvent::ResultCorrected(body)
    } else {
        CanonicalEvent::ResultReported(body)
    })
}
