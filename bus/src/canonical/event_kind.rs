//! [`EventKind`]: the names of the canonical events, and their subjects
//! `medbus.events.<domain>.<event>`. The catalogue table is in `events`.

use crate::subjects::Subject;

/// Every canonical event kind, with its domain and event tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `patient.registered`: a source asserts a patient exists (create or refresh).
    PatientRegistered,
    /// `patient.updated`: a source changed a patient's demographics.
    PatientUpdated,
    /// `patient.merged`: one or more identifiers were merged into a surviving patient.
    PatientMerged,
    /// `encounter.planned`: a visit is expected (pre-admission).
    EncounterPlanned,
    /// `encounter.started`: a visit began (admission, outpatient or emergency registration).
    EncounterStarted,
    /// `encounter.updated`: visit details changed.
    EncounterUpdated,
    /// `encounter.finished`: the visit ended (discharge).
    EncounterFinished,
    /// `encounter.cancelled`: the visit was cancelled before it began (cancel admit).
    EncounterCancelled,
    /// `encounter.reopened`: a discharge was cancelled; the visit is in progress again.
    EncounterReopened,
    /// `order.placed`: a new order (HL7 ORC-1 `NW`).
    OrderPlaced,
    /// `order.updated`: an order changed or its status moved on (`XO`, `SC`, holds).
    OrderUpdated,
    /// `order.cancelled`: an order was cancelled or discontinued (`CA`, `OC`, `DC` …).
    OrderCancelled,
    /// `order.completed`: an order was done (`CM`).
    OrderCompleted,
    /// `appointment.booked`: an appointment was booked (SIU S12).
    AppointmentBooked,
    /// `appointment.rescheduled`: a booked appointment moved or changed (S13, S14).
    AppointmentRescheduled,
    /// `appointment.cancelled`: an appointment was cancelled (S15).
    AppointmentCancelled,
    /// `appointment.noshow`: the patient did not come (S26).
    AppointmentNoshow,
    /// `result.reported`: a report and its observations, preliminary or final.
    ResultReported,
    /// `result.corrected`: a report changed after it was reported (corrected, amended, withdrawn).
    ResultCorrected,
    /// `result.critical`: one value a service judged critical (flag or threshold).
    ResultCritical,
    /// `billing.charge-posted`: a billable charge.
    ChargePosted,
    /// `billing.charge-reversed`: a charge credited back.
    ChargeReversed,
    /// `imaging.instance-stored`: a DICOM instance was received and kept.
    ImagingInstanceStored,
    /// `imaging.study-completed`: a study had no new instance for the quiet time.
    ImagingStudyCompleted,
}

impl EventKind {
    /// All kinds, in catalogue order.
    pub const ALL: [EventKind; 24] = [
        EventKind::PatientRegistered,
        EventKind::PatientUpdated,
        EventKind::PatientMerged,
        EventKind::EncounterPlanned,
        EventKind::EncounterStarted,
        EventKind::EncounterUpdated,
        EventKind::EncounterFinished,
        EventKind::EncounterCancelled,
        EventKind::EncounterReopened,
        EventKind::OrderPlaced,
        EventKind::OrderUpdated,
        EventKind::OrderCancelled,
        EventKind::OrderCompleted,
        EventKind::AppointmentBooked,
        EventKind::AppointmentRescheduled,
        EventKind::AppointmentCancelled,
        EventKind::AppointmentNoshow,
        EventKind::ResultReported,
        EventKind::ResultCorrected,
        EventKind::ResultCritical,
        EventKind::ChargePosted,
        EventKind::ChargeReversed,
        EventKind::ImagingInstanceStored,
        EventKind::ImagingStudyCompleted,
    ];

    /// `(domain, event)` tokens of the subject.
    pub fn tokens(self) -> (&'static str, &'static str) {
        match self {
            EventKind::PatientRegistered => ("patient", "registered"),
            EventKind::PatientUpdated => ("patient", "updated"),
            EventKind::PatientMerged => ("patient", "merged"),
            EventKind::EncounterPlanned => ("encounter", "planned"),
            EventKind::EncounterStarted => ("encounter", "started"),
            EventKind::EncounterUpdated => ("encounter", "updated"),
            EventKind::EncounterFinished => ("encounter", "finished"),
            EventKind::EncounterCancelled => ("encounter", "cancelled"),
            EventKind::EncounterReopened => ("encounter", "reopened"),
            EventKind::OrderPlaced => ("order", "placed"),
            EventKind::OrderUpdated => ("order", "updated"),
            EventKind::OrderCancelled => ("order", "cancelled"),
            EventKind::OrderCompleted => ("order", "completed"),
            EventKind::AppointmentBooked => ("appointment", "booked"),
            EventKind::AppointmentRescheduled => ("appointment", "rescheduled"),
            EventKind::AppointmentCancelled => ("appointment", "cancelled"),
            EventKind::AppointmentNoshow => ("appointment", "noshow"),
            EventKind::ResultReported => ("result", "reported"),
            EventKind::ResultCorrected => ("result", "corrected"),
            EventKind::ResultCritical => ("result", "critical"),
            EventKind::ChargePosted => ("billing", "charge-posted"),
            EventKind::ChargeReversed => ("billing", "charge-reversed"),
            EventKind::ImagingInstanceStored => ("imaging", "instance-stored"),
            EventKind::ImagingStudyCompleted => ("imaging", "study-completed"),
        }
    }

    /// The kind string, `patient.registered`, as in the envelope's `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PatientRegistered => "patient.registered",
            EventKind::PatientUpdated => "patient.updated",
            EventKind::PatientMerged => "patient.merged",
            EventKind::EncounterPlanned => "encounter.planned",
            EventKind::EncounterStarted => "encounter.started",
            EventKind::EncounterUpdated => "encounter.updated",
            EventKind::EncounterFinished => "encounter.finished",
            EventKind::EncounterCancelled => "encounter.cancelled",
            EventKind::EncounterReopened => "encounter.reopened",
            EventKind::OrderPlaced => "order.placed",
            EventKind::OrderUpdated => "order.updated",
            EventKind::OrderCancelled => "order.cancelled",
            EventKind::OrderCompleted => "order.completed",
            EventKind::AppointmentBooked => "appointment.booked",
            EventKind::AppointmentRescheduled => "appointment.rescheduled",
            EventKind::AppointmentCancelled => "appointment.cancelled",
            EventKind::AppointmentNoshow => "appointment.noshow",
            EventKind::ResultReported => "result.reported",
            EventKind::ResultCorrected => "result.corrected",
            EventKind::ResultCritical => "result.critical",
            EventKind::ChargePosted => "billing.charge-posted",
            EventKind::ChargeReversed => "billing.charge-reversed",
            EventKind::ImagingInstanceStored => "imaging.instance-stored",
            EventKind::ImagingStudyCompleted => "imaging.study-completed",
        }
    }

    /// The kind for a kind string, `None` for one outside the catalogue.
    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The subject, `medbus.events.<domain>.<event>`.
    pub fn subject(self) -> Subject {
        // The tokens are constants known to be valid, so no check is needed.
        let (domain, event) = self.tokens();
        Subject::Event {
            domain: domain.into(),
            event: event.into(),
        }
    }
}

/// Operational events about medbus itself, on `medbus.events.system.<event>`.
///
/// Kept apart from [`EventKind`]: every canonical event carries a patient and
/// reads as a `CanonicalEvent`; these carry none, so the domain feeds (which
/// parse [`EventKind`] only) skip them, and whoever watches them reads the body
/// ([`super::DestinationStatusEvent`]) directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemEventKind {
    /// `system.destination-unreachable`: delivery to a destination failed after it had worked.
    DestinationUnreachable,
    /// `system.destination-recovered`: delivery to that destination works again.
    DestinationRecovered,
}

impl SystemEventKind {
    /// All system kinds.
    pub const ALL: [SystemEventKind; 2] = [
        SystemEventKind::DestinationUnreachable,
        SystemEventKind::DestinationRecovered,
    ];

    /// The kind string, as in the envelope's `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            SystemEventKind::DestinationUnreachable => "system.destination-unreachable",
            SystemEventKind::DestinationRecovered => "system.destination-recovered",
        }
    }

    /// The kind for a kind string, `None` for any other.
    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The subject, `medbus.events.system.<event>`.
    pub fn subject(self) -> Subject {
        let event = match self {
            SystemEventKind::DestinationUnreachable => "destination-unreachable",
            SystemEventKind::DestinationRecovered => "destination-recovered",
        };
        Subject::Event {
            domain: "system".into(),
            event: event.into(),
        }
    }
}

#[cfg(test)]
mod system_tests {
    use super::*;

    #[test]
    fn system_kinds_have_valid_subjects_and_are_not_canonical_kinds() {
        for k in SystemEventKind::ALL {
            let subject = k.subject();
            assert_eq!(Subject::parse(&subject.to_string()).unwrap(), subject);
            assert_eq!(subject.kind().as_deref(), Some(k.as_str()));
            assert_eq!(SystemEventKind::parse(k.as_str()), Some(k));
            assert_eq!(EventKind::parse(k.as_str()), None);
        }
        assert_eq!(
            SystemEventKind::DestinationUnreachable.subject().to_string(),
            "medbus.events.system.destination-unreachable"
        );
    }
}
