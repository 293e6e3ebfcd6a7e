//! ORM^O01 and OML^O21 → `order.*` events, one [`ServiceRequest`] per
//! ORC (with its TQ1 and OBR).
//!
//! | ORC-1 (table 0119)           | event             | ServiceRequest.status        |
//! |------------------------------|-------------------|------------------------------|
//! | NW, SN                       | `order.placed`    | ORC-5, else active           |
//! | OK, SC, XO, XR, XX           | `order.updated`   | ORC-5, else active           |
//! | HD, OH, HR / RL, OE, OR      | `order.updated`   | on-hold / active             |
//! | CA, OC, CR, DC, OD, DR       | `order.cancelled` | revoked                      |
//! | CM                           | `order.completed` | completed                    |
//!
//! Fields: ORC-2 (else OBR-2) → placer identifier (`PLAC`), ORC-3 (else
//! OBR-3) → filler identifier (`FILL`), each EI's authority as its system;
//! one of them is required; OBR-18 (IHE radiology's Accession Number) →
//! identifier type `ACSN`, system `urn:medbus:accession`. OBR-4 → code; ORC-5 (table 0038) → status where
//! the table above says so; ORC-7.6 (else TQ1-9, else OBR-27.6) → priority;
//! ORC-9 → authoredOn of a new order, and when it happened (else MSH-7);
//! ORC-12 (else OBR-16) → requester; PID → subject; PV1 → encounter.
//! A second PID ends the orders (OML^O21 prior results are not mapped).

use medbus_bus::canonical::{
    systems, CanonicalEvent, DateTime, ImagingStudy, OrderEvent, ServiceRequest, ServiceRequestIntent,
    ServiceRequestStatus,
};

use super::codes::cwe;
use super::entity::ei;
use super::error::MapError;
use super::order_codes::{control, priority, status, OrderChange};
use super::parties::{practitioner, subject, Subject};
use super::read::{first, first_comp, time};
use super::types::{code, loc};
use super::Ctx;
use crate::hl7::parser::Segment;

/// One order of the message: its ORC, and the TQ1 and OBR that follow it.
#[derive(Debug, Clone, Copy)]
struct Group<'a> {
    orc: Segment<'a>,
    tq1: Option<Segment<'a>>,
    obr: Option<Segment<'a>>,
}

/// The ORC groups, in order. An OBR before any ORC has no control code, so it is an error.
fn groups<'a>(ctx: &Ctx<'_, 'a>) -> Result<Vec<Group<'a>>, MapError> {
    let mut out: Vec<Group<'a>> = Vec::new();
    let mut pids = 0;
    for seg in ctx.msg.segments() {
        match seg.name() {
            "PID" => {
                pids += 1;
                if pids > 1 {
                    break;
                }
            }
            "ORC" => out.push(Group {
                orc: seg,
                tq1: None,
                obr: None,
            }),
            "TQ1" | "OBR" => {
                let group = out.last_mut().ok_or_else(|| ctx.no_segment("ORC", "before its OBR"))?;
                match seg.name() {
                    "TQ1" => {
                        group.tq1.get_or_insert(seg);
                    }
                    _ if group.obr.is_none() => group.obr = Some(seg),
                    // A second OBR under one ORC is a second order with the same control.
                    _ => {
                        let orc = group.orc;
                        out.push(Group {
                            orc,
                            tq1: None,
                            obr: Some(seg),
                        });
                    }
                }
            }
            _ => {}
        }
    }
    if out.is_empty() {
        return Err(ctx.no_segment("ORC", "(an order needs one)"));
    }
    Ok(out)
}

/// Maps an ORM^O01 or OML^O21.
pub(super) fn map(ctx: &Ctx<'_, '_>) -> Result<Vec<CanonicalEvent>, MapError> {
    match (ctx.code.as_str(), ctx.trigger.as_str()) {
        ("ORM", "O01") | ("OML", "O21") => {}
        _ => {
            return Err(MapError::UnsupportedEvent {
                message_type: ctx.message_type(),
            })
        }
    }
    let groups = groups(ctx)?;
    let pid = ctx
        .msg
        .segment("PID", 1)
        .ok_or_else(|| ctx.no_segment("PID", "(orders are about a patient)"))?;
    let pv1 = ctx.msg.segment("PV1", 1);
    let who = subject(ctx, &pid, pv1.as_ref())?;
    let fallback = ctx.occurred()?;
    groups.iter().map(|g| order(ctx, g, &who, fallback.clone())).collect()
}

/// One ORC group → its event.
fn order(
    ctx: &Ctx<'_, '_>,
    g: &Group<'_>,
    who: &Subject,
    fallback: Option<DateTime>,
) -> Result<CanonicalEvent, MapError> {
    let orc = &g.orc;
    let control_code = code(first_comp(orc, 1, 1)).ok_or(MapError::MissingField {
        location: loc(orc, "ORC", 1),
        why: "the order control code says what happened to the order",
    })?;
    let (change, fixed) = control(&control_code)
        .ok_or_else(|| MapError::unknown_code(loc(orc, "ORC", 1), "0119", control_code.clone()))?;
    let status = match (fixed, code(first_comp(orc, 5, 1))) {
        (Some(s), _) => s,
        (None, Some(c)) => status(&c).ok_or_else(|| MapError::unknown_code(loc(orc, "ORC", 5), "0038", c))?,
        (None, None) => ServiceRequestStatus::Active,
    };
    let mut sr = ServiceRequest::new(status, ServiceRequestIntent::Order, who.reference.clone());
    // The ORC numbers, else the OBR's: senders fill one or the other.
    let number = |field: usize, type_code: Option<&str>| {
        first(orc, field)
            .and_then(|r| ei(&r, type_code))
            .or_else(|| g.obr.and_then(|obr| first(&obr, field)).and_then(|r| ei(&r, type_code)))
    };
    sr.identifier.extend(number(2, Some("PLAC")));
    sr.identifier.extend(number(3, Some("FILL")));
    if sr.identifier.is_empty() {
        return Err(MapError::MissingField {
            location: loc(orc, "ORC", 2),
            why: "a placer or filler order number (ORC-2/3 or OBR-2/3) identifies the order",
        });
    }
    // IHE radiology (SWF) carries the Accession Number in OBR-18: the number
    // the modality puts in the images, so the study finds its order by it.
    sr.identifier.extend(
        g.obr
            .and_then(|obr| first_comp(&obr, 18, 1))
            .map(|a| ImagingStudy::accession_identifier(&a, Some(systems::MEDBUS_ACCESSION))),
    );
    sr.code = g.obr.and_then(|obr| first(&obr, 4)).and_then(|r| cwe(&r, None));
    let tq_priority = first_comp(orc, 7, 6)
        .or_else(|| g.tq1.and_then(|tq1| first_comp(&tq1, 9, 1)))
        .or_else(|| g.obr.and_then(|obr| first_comp(&obr, 27, 6)));
    sr.priority = tq_priority.and_then(|p| priority(&p));
    sr.encounter = who.encounter.clone();
    let transaction = time(ctx, orc, "ORC", 9)?;
    if change == OrderChange::Placed {
        sr.authored_on = transaction.clone();
    }
    sr.requester = first(orc, 12)
        .and_then(|r| practitioner(&r))
        .or_else(|| g.obr.and_then(|obr| first(&obr, 16)).and_then(|r| practitioner(&r)));
    let body = OrderEvent {
        service_request: sr,
        patient: who.patient.clone(),
        source_message_type: Some(ctx.message_type()),
        occurred: transaction.or(fallback),
    };
    // A status change (SC and the like) to completed or cancelled is how
    // fillers report those ends: it is that event, not a mere update.
    let change = match (change, body.service_request.status) {
        (OrderChange::Updated, ServiceRequestStatus::Completed) => OrderChange::Completed,
        (OrderChange::Updated, ServiceRequestStatus::Revoked) => OrderChange::Cancelled,
        (other, _) => other,
    };
    Ok(match change {
        OrderChange::Placed => CanonicalEvent::OrderPlaced(body),
        OrderChange::Updated => CanonicalEvent::OrderUpdated(body),
        OrderChange::Cancelled => CanonicalEvent::OrderCancelled(body),
        OrderChange::Completed => CanonicalEvent::OrderCompleted(body),
    })
}
