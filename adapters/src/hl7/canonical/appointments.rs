//! SIU → `appointment.*` events, one Appointment per message.
//!
//! | trigger | meaning              | event                     | Appointment.status          |
//! |---------|----------------------|---------------------------|-----------------------------|
//! | S12     | new booking          | `appointment.booked`      | SCH-25, else booked         |
//! | S13     | rescheduled          | `appointment.rescheduled` | SCH-25, else booked         |
//! | S14     | modified             | `appointment.rescheduled` | SCH-25, else booked         |
//! | S15     | cancelled            | `appointment.cancelled`   | cancelled                   |
//! | S26     | patient did not come | `appointment.noshow`      | noshow                      |
//!
//! S14 changes details other than the time; it shares `rescheduled` with S13
//! because both say "the booking now reads like this". Fields: SCH-1 →
//! placer id (`PLAC`), SCH-2 → filler id (`FILL`), one required; SCH-25
//! (table 0278, any case; an unknown code leaves the trigger's status) →
//! status; SCH-6 → cancelationReason of S15; SCH-7 → reasonCode (table 0276);
//! SCH-8 → appointmentType (table 0277); AIS-3 → serviceType; start: SCH-11.4,
//! else TQ1-7, else AIS-4, AIL-6, AIP-6; end: SCH-11.5, else TQ1-8, else start
//! plus SCH-9 duration (SCH-10 minutes or hours), which is also
//! minutesDuration. A booking needs a start and an end (or duration) with a
//! time; a cancellation or no-show without them is sent without times.
//! Participants: the patient (PID), AIP-3 clinicians (role AIP-4), AIL-3
//! places, all `accepted`.

use chrono::{Duration, SecondsFormat};
use medbus_bus::canonical::{
    systems, Appointment, AppointmentEvent, AppointmentParticipant, AppointmentStatus, CanonicalEvent, DateTime,
    ParticipationStatus,
};

use super::codes::cwe;
use super::entity::ei;
use super::error::MapError;
use super::parties::{location, practitioner, subject};
use super::read::{first, first_comp, instant, time, time_at};
use super::types::loc;
use super::Ctx;
use crate::hl7::parser::Segment;

/// Table 0278 filler status → Appointment.status (case does not matter: senders differ).
fn filler_status(code: &str) -> Option<AppointmentStatus> {
    use AppointmentStatus as S;
    Some(match code.to_ascii_uppercase().as_str() {
        "PENDING" => S::Pending,
        "WAITLIST" => S::Waitlist,
        "BOOKED" | "OVERBOOK" | "BLOCKED" => S::Booked,
        "STARTED" => S::Arrived,
        "COMPLETE" => S::Fulfilled,
        "CANCELLED" | "DC" => S::Cancelled,
        "DELETED" => S::EnteredInError,
        "NOSHOW" => S::Noshow,
        _ => return None,
    })
}

/// SCH-9 with SCH-10 units → minutes; `None` when the unit is not a time unit we know.
fn duration_minutes(sch: &Segment<'_>) -> Result<Option<u32>, MapError> {
    let Some(amount) = first_comp(sch, 9, 1) else {
        return Ok(None);
    };
    let n: u32 = amount.trim().parse().map_err(|_| MapError::InvalidField {
        location: loc(sch, "SCH", 9),
        why: "the appointment duration must be a whole number".into(),
    })?;
    let unit = first_comp(sch, 10, 1)
        .unwrap_or_else(|| "min".into())
        .to_ascii_lowercase();
    Ok(match unit.as_str() {
        "min" | "mins" | "minute" | "minutes" | "m" => Some(n),
        "h" | "hr" | "hrs" | "hour" | "hours" => n.checked_mul(60),
        _ => None,
    })
}

/// `t` plus `minutes`, in `t`'s own zone.
fn plus_minutes(t: &DateTime, minutes: u32) -> Option<DateTime> {
    let parsed = chrono::DateTime::parse_from_rfc3339(t.as_str()).ok()?;
    let end = parsed.checked_add_signed(Duration::minutes(i64::from(minutes)))?;
    DateTime::parse(&end.to_rfc3339_opts(SecondsFormat::AutoSi, true)).ok()
}

/// The first start time among the resource segments (AIS-4, AIL-6, AIP-6).
fn resource_start(ctx: &Ctx<'_, '_>) -> Result<Option<DateTime>, MapError> {
    for (name, field) in [("AIS", 4), ("AIL", 6), ("AIP", 6)] {
        for seg in ctx.msg.segments_named(name) {
            if let Some(t) = time(ctx, &seg, name, field)? {
                return Ok(Some(t));
            }
        }
    }
    Ok(None)
}

/// Maps an SIU^S12, S13, S14, S15 or S26.
pub(super) fn map(ctx: &Ctx<'_, '_>) -> Result<Vec<CanonicalEvent>, MapError> {
    let trigger_status = match ctx.trigger.as_str() {
        "S12" | "S13" | "S14" => None,
        "S15" => Some(AppointmentStatus::Cancelled),
        "S26" => Some(AppointmentStatus::Noshow),
        _ => {
            return Err(MapError::UnsupportedEvent {
                message_type: ctx.message_type(),
            })
        }
    };
    let sch = ctx
        .msg
        .segment("SCH", 1)
        .ok_or_else(|| ctx.no_segment("SCH", "(the schedule)"))?;
    let pid = ctx
        .msg
        .segment("PID", 1)
        .ok_or_else(|| ctx.no_segment("PID", "(appointments are about a patient)"))?;
    let who = subject(ctx, &pid, ctx.msg.segment("PV1", 1).as_ref())?;
    let status = trigger_status.unwrap_or_else(|| {
        first_comp(&sch, 25, 1)
            .and_then(|c| filler_status(&c))
            .unwrap_or(AppointmentStatus::Booked)
    });
    let mut a = Appointment::new(status);
    a.identifier.extend(first(&sch, 1).and_then(|r| ei(&r, Some("PLAC"))));
    a.identifier.extend(first(&sch, 2).and_then(|r| ei(&r, Some("FILL"))));
    if a.identifier.is_empty() {
        return Err(MapError::MissingField {
            location: loc(&sch, "SCH", 2),
            why: "a filler or placer appointment id (SCH-2/1) identifies the appointment",
        });
    }
    if status == AppointmentStatus::Cancelled {
        a.cancelation_reason = first(&sch, 6).and_then(|r| cwe(&r, None));
    }
    a.reason_code = first(&sch, 7)
        .and_then(|r| cwe(&r, Some(systems::V2_0276)))
        .into_iter()
        .collect();
    a.appointment_type = first(&sch, 8).and_then(|r| cwe(&r, Some(systems::V2_0277)));
    a.service_type = ctx
        .msg
        .segments_named("AIS")
        .filter_map(|ais| first(&ais, 3).and_then(|r| cwe(&r, None)))
        .collect();
    let tq1 = ctx.msg.segment("TQ1", 1);
    let mut start = time_at(ctx, &sch, "SCH", 11, 4)?;
    if start.is_none() {
        start = match &tq1 {
            Some(tq1) => time(ctx, tq1, "TQ1", 7)?,
            None => None,
        };
    }
    if start.is_none() {
        start = resource_start(ctx)?;
    }
    let mut end = time_at(ctx, &sch, "SCH", 11, 5)?;
    if end.is_none() {
        end = match &tq1 {
            Some(tq1) => time(ctx, tq1, "TQ1", 8)?,
            None => None,
        };
    }
    a.minutes_duration = duration_minutes(&sch)?.filter(|m| *m > 0);
    let (start, end) = (instant(start), instant(end));
    let end = end.or_else(|| {
        start
            .as_ref()
            .zip(a.minutes_duration)
            .and_then(|(s, m)| plus_minutes(s, m))
    });
    match (start, end) {
        (Some(s), Some(e)) => {
            a.start = Some(s);
            a.end = Some(e);
        }
        // FHIR lets only proposed, cancelled (and no-show) appointments go without times.
        _ if trigger_status.is_some() => {}
        (None, _) => {
            return Err(MapError::MissingField {
                location: loc(&sch, "SCH", 11),
                why: "a booked appointment needs a start time with hours (SCH-11.4, TQ1-7 or AIS/AIL/AIP)",
            })
        }
        (Some(_), None) => {
            return Err(MapError::MissingField {
                location: loc(&sch, "SCH", 11),
                why: "a booked appointment needs an end time (SCH-11.5, TQ1-8) or a duration (SCH-9)",
            })
        }
    }
    a.participant.push(AppointmentParticipant {
        type_: Vec::new(),
        actor: Some(who.reference.clone()),
        status: ParticipationStatus::Accepted,
    });
    for aip in ctx.msg.segments_named("AIP") {
        if let Some(actor) = first(&aip, 3).and_then(|r| practitioner(&r)) {
            a.participant.push(AppointmentParticipant {
                type_: first(&aip, 4).and_then(|r| cwe(&r, None)).into_iter().collect(),
                actor: Some(actor),
                status: ParticipationStatus::Accepted,
            });
        }
    }
    for ail in ctx.msg.segments_named("AIL") {
        if let Some(actor) = first(&ail, 3).and_then(|r| location(&r)) {
            a.participant.push(AppointmentParticipant {
                type_: Vec::new(),
                actor: Some(actor),
                status: ParticipationStatus::Accepted,
            });
        }
    }
    let body = AppointmentEvent {
        appointment: a,
        patient: who.patient,
        source_message_type: Some(ctx.message_type()),
        occurred: ctx.occurred()?,
    };
    Ok(vec![match ctx.trigger.as_str() {
        "S12" => CanonicalEvent::AppointmentBooked(body),
        "S15" => CanonicalEvent::AppointmentCancelled(body),
        "S26" => CanonicalEvent::AppointmentNoshow(body),
        _ => CanonicalEvent::AppointmentRescheduled(body),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_from_duration_keeps_the_zone() {
        let t = DateTime::parse("2024-03-16T23:30:00-05:00").unwrap();
        assert_eq!(plus_minutes(&t, 45).unwrap().as_str(), "2024-03-17T00:15:00-05:00");
        let z = DateTime::parse("2024-03-16T12:00:00Z").unwrap();
        assert_eq!(plus_minutes(&z, 60).unwrap().as_str(), "2024-03-16T13:00:00Z");
        assert_eq!(filler_status("booked"), Some(AppointmentStatus::Booked));
        assert_eq!(filler_status("Noshow"), Some(AppointmentStatus::Noshow));
        assert_eq!(filler_status("whatever"), None);
    }
}
