//! HL7 v2 → canonical events ([`CanonicalEvent`]): what the router publishes
//! for each message. [`map_message`] chooses by MSH-9: ADT ([`map_adt`],
//! below), ORM/OML orders (`orders`), ORU results (`results`), SIU
//! appointments (`appointments`) and DFT charges (`charges`) — each of those
//! modules documents its own rules. Any other type is [`MapError::NotMapped`].
//!
//! ADT: what the router publishes for each admission, discharge,
//! registration, update and merge.
//!
//! | trigger | meaning                   | events                                        |
//! |---------|---------------------------|-----------------------------------------------|
//! | A01     | admit                     | patient.registered, encounter.started         |
//! | A04     | register outpatient / ER  | patient.registered, encounter.started         |
//! | A05     | pre-admit                 | patient.registered, encounter.planned         |
//! | A08     | update patient            | patient.updated (+ encounter.updated with a visit) |
//! | A03     | discharge                 | encounter.finished                            |
//! | A11     | cancel admit / visit      | encounter.cancelled                           |
//! | A13     | cancel discharge          | encounter.reopened                            |
//! | A28     | add person                | patient.registered                            |
//! | A31     | update person             | patient.updated                               |
//! | A40     | merge patient identifiers | patient.merged (one per PID/MRG pair)         |
//!
//! Field rules (HL7 v2-to-FHIR where it has one): PID-3 → identifiers, PID-5
//! → names, PID-7 → birthDate at the precision sent, PID-8 → gender, PID-11 →
//! addresses, PID-13/14 → telecom (home/work), PID-16 → marital status,
//! PID-29/30 → deceased; PV1-2 → class, PV1-19 (else PV1-50, else PID-18) →
//! visit identifier, PV1-3 → location, PV1-7/8/9/17 → participants, PV1-44/45
//! → period; EVN-6 (else EVN-2, else MSH-7) → when it occurred. Values are
//! read decoded (escapes undone); the HL7 null `""` reads as not sent.
//!
//! Module map: `types` (CX, HD, XPN, XAD, XTN, CWE), `time` (DTM), `patient`
//! (PID, MRG), `encounter` (PV1), `error` ([`MapError`]); for the other
//! types: `dispatch` ([`map_message`]), `entity` (EI, order numbers),
//! `codes` (CWE with coding systems), `parties` (patient, visit, clinician
//! and place references), `read` (first repetition, DTM fields), `orders`
//! with `order_codes`, `results` with `observation`, `result_codes`,
//! `values` and `interpretation`, `appointments`, `charges`.

mod appointments;
mod charges;
mod codes;
mod dispatch;
mod encounter;
mod entity;
mod error;
mod interpretation;
mod observation;
mod order_codes;
mod orders;
mod parties;
mod patient;
mod read;
mod result_codes;
mod results;
mod time;
mod types;
mod values;

#[cfg(test)]
mod message_tests;
#[cfg(test)]
mod tests;

use chrono::{FixedOffset, Offset, Utc};
use medbus_bus::canonical::{
    DateTime, EncounterEvent, EncounterStatus, LinkType, MergeEvent, PatientEvent, PatientLink, Reference,
};

pub use dispatch::{map_message, map_message_with};
pub use error::{FieldLocation, MapError};
pub use medbus_bus::canonical::{CanonicalEvent, EventKind};

use self::encounter::{encounter, patient_class, status_from_times, visit_identifier, VisitState};
use self::time::Dtm;
use self::types::{loc, text};
use crate::hl7::parser::{Message, Segment};

/// The ADT triggers [`map_adt`] maps.
pub const SUPPORTED: [&str; 10] = ["A01", "A03", "A04", "A05", "A08", "A11", "A13", "A28", "A31", "A40"];

/// The message types [`map_message`] maps, for errors and docs.
pub const MAPPED_TYPES: &str =
    "ADT^A01/A03/A04/A05/A08/A11/A13/A28/A31/A40, ORM^O01, OML^O21, ORU^R01, SIU^S12/S13/S14/S15/S26, DFT^P03";

/// How to read what a message leaves unsaid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapOptions {
    /// Zone of times sent without one, when MSH-7 has none either (HL7 says
    /// such times are the sender's local time). UTC unless the channel knows better.
    pub local_offset: FixedOffset,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            local_offset: Utc.fix(),
        }
    }
}

/// What every part of the mapping needs to know about the message.
pub(super) struct Ctx<'s, 'a> {
    msg: &'s Message<'a>,
    /// Zone for times without one: MSH-7's, else the configured one.
    zone: FixedOffset,
    /// The message code (`ADT`).
    code: String,
    /// The trigger event (`A01`).
    trigger: String,
}

/// Maps an ADT message with the default [`MapOptions`].
pub fn map_adt(msg: &Message<'_>) -> Result<Vec<CanonicalEvent>, MapError> {
    map_adt_with(msg, &MapOptions::default())
}

/// Maps an ADT message to canonical events, in the order they must be applied.
pub fn map_adt_with(msg: &Message<'_>, options: &MapOptions) -> Result<Vec<CanonicalEvent>, MapError> {
    let message_type = msg.message_type();
    let code = message_type.as_ref().map(|t| t.code.trim()).unwrap_or_default();
    if code != "ADT" {
        return Err(MapError::NotAdt {
            found: code.to_string(),
        });
    }
    let trigger = message_type
        .and_then(|t| t.trigger.map(|t| t.trim().to_string()))
        .filter(|t| !t.is_empty())
        .or_else(|| msg.get("EVN-1").ok().flatten().and_then(text))
        .ok_or(MapError::MissingTrigger)?;
    // Refuse an unmapped trigger first, so that it is named as such rather than by a field it has.
    if !SUPPORTED.contains(&trigger.as_str()) {
        return Err(MapError::UnsupportedTrigger { trigger });
    }
    let ctx = Ctx::new(msg, options, "ADT", trigger);
    let occurred = ctx.occurred()?;
    let source = Some(format!("ADT^{}", ctx.trigger));
    let patient_event = |patient| PatientEvent {
        patient,
        source_message_type: source.clone(),
        occurred: occurred.clone(),
    };
    let visit = |status| -> Result<EncounterEvent, MapError> {
        let pid = ctx.required("PID")?;
        let pv1 = ctx.required("PV1")?;
        let patient = patient::patient(&ctx, &pid)?;
        let state = VisitState {
            status,
            occurred: occurred.as_ref(),
        };
        Ok(EncounterEvent {
            encounter: encounter(&ctx, &pv1, &pid, &patient, state)?,
            patient,
            source_message_type: source.clone(),
            occurred: occurred.clone(),
        })
    };
    let registered = || -> Result<CanonicalEvent, MapError> {
        let patient = patient::patient(&ctx, &ctx.required("PID")?)?;
        Ok(CanonicalEvent::PatientRegistered(patient_event(patient)))
    };
    Ok(match ctx.trigger.as_str() {
        "A01" | "A04" => vec![
            registered()?,
            CanonicalEvent::EncounterStarted(visit(EncounterStatus::InProgress)?),
        ],
        "A05" => vec![
            registered()?,
            CanonicalEvent::EncounterPlanned(visit(EncounterStatus::Planned)?),
        ],
        "A28" => vec![registered()?],
        "A31" => {
            let patient = patient::patient(&ctx, &ctx.required("PID")?)?;
            vec![CanonicalEvent::PatientUpdated(patient_event(patient))]
        }
        "A08" => {
            let pid = ctx.required("PID")?;
            let patient = patient::patient(&ctx, &pid)?;
            let mut events = vec![CanonicalEvent::PatientUpdated(patient_event(patient))];
            if let Some(pv1) = ctx.msg.segment("PV1", 1) {
                // An update about a person without a visit (class N, no visit number) has no encounter to update.
                let has_class = patient_class(&pv1).is_some_and(|c| c != "N");
                if has_class && visit_identifier(&ctx, &pv1, &pid)?.is_some() {
                    events.push(CanonicalEvent::EncounterUpdated(visit(status_from_times(&pv1))?));
                }
            }
            events
        }
        "A03" => vec![CanonicalEvent::EncounterFinished(visit(EncounterStatus::Finished)?)],
        "A11" => vec![CanonicalEvent::EncounterCancelled(visit(EncounterStatus::Cancelled)?)],
        "A13" => vec![CanonicalEvent::EncounterReopened(visit(EncounterStatus::InProgress)?)],
        "A40" => merges(&ctx, source, occurred)?,
        other => {
            return Err(MapError::UnsupportedTrigger {
                trigger: other.to_string(),
            })
        }
    })
}

/// A40: one merge per PID with its MRG (ADT_A39 repeats the PID/MRG group).
fn merges(
    ctx: &Ctx<'_, '_>,
    source: Option<String>,
    occurred: Option<DateTime>,
) -> Result<Vec<CanonicalEvent>, MapError> {
    let mut events = Vec::new();
    let mut pending: Option<Segment<'_>> = None;
    for seg in ctx.msg.segments() {
        match seg.name() {
            "PID" if pending.is_some() => return Err(ctx.missing("MRG")),
            "PID" => pending = Some(seg),
            "MRG" => {
                let pid = pending.take().ok_or_else(|| ctx.missing("PID"))?;
                let mut surviving = patient::patient(ctx, &pid)?;
                let merged = patient::identifiers(ctx, &seg, "MRG", 1)?;
                if merged.is_empty() {
                    return Err(MapError::MissingField {
                        location: loc(&seg, "MRG", 1),
                        why: "the prior patient identifier list says which record is merged away",
                    });
                }
                surviving.link = merged
                    .iter()
                    .map(|id| PatientLink {
                        other: Reference {
                            type_: Some("Patient".into()),
                            identifier: Some(id.clone()),
                            ..Reference::default()
                        },
                        type_: LinkType::Replaces,
                    })
                    .collect();
                events.push(CanonicalEvent::PatientMerged(MergeEvent {
                    surviving,
                    merged,
                    source_message_type: source.clone(),
                    occurred: occurred.clone(),
                }));
            }
            _ => {}
        }
    }
    match (pending, events.is_empty()) {
        (Some(_), _) => Err(ctx.missing("MRG")),
        (None, true) => Err(ctx.missing("PID")),
        (None, false) => Ok(events),
    }
}

impl<'s, 'a> Ctx<'s, 'a> {
    /// The context of `msg`, whose MSH-9 reads `code^trigger`.
    fn new(msg: &'s Message<'a>, options: &MapOptions, code: &str, trigger: String) -> Self {
        let zone = msg
            .timestamp()
            .and_then(|t| Dtm::parse(&t.first().text()).ok()?.offset)
            .and_then(FixedOffset::east_opt)
            .unwrap_or(options.local_offset);
        Ctx {
            msg,
            zone,
            code: code.to_string(),
            trigger,
        }
    }

    /// `ORU^R01`: what the message is, for `sourceMessageType` and errors.
    fn message_type(&self) -> String {
        format!("{}^{}", self.code, self.trigger)
    }

    /// The error for a segment a message other than ADT lacks.
    fn no_segment(&self, segment: &'static str, context: &'static str) -> MapError {
        MapError::NoSegment {
            message_type: self.message_type(),
            segment,
            context,
        }
    }

    fn missing(&self, segment: &'static str) -> MapError {
        MapError::MissingSegment {
            trigger: self.trigger.clone(),
            segment,
        }
    }

    /// The first segment `name`, or the error naming it.
    fn required(&self, name: &'static str) -> Result<Segment<'_>, MapError> {
        self.msg.segment(name, 1).ok_or_else(|| self.missing(name))
    }

    /// When the event happened: EVN-6 (event occurred), else EVN-2 (recorded), else MSH-7.
    fn occurred(&self) -> Result<Option<DateTime>, MapError> {
        let msh = self.msg.msh();
        let evn = self.msg.segment("EVN", 1);
        let candidates = [
            (evn.as_ref(), "EVN", 6),
            (evn.as_ref(), "EVN", 2),
            (Some(&msh), "MSH", 7),
        ];
        for (seg, name, field) in candidates {
            let Some(seg) = seg else { continue };
            let value = types::reps(seg, field).next().and_then(|(_, r)| types::comp(&r, 1));
            if let Some(t) = types::date_time(value, loc(seg, name, field), self.zone)? {
                return Ok(Some(t));
            }
        }
        Ok(None)
    }
}
