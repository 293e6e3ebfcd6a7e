//! SIU scheduling messages: S12 (booked), S13 (rescheduled), S14 (modified), S15 (cancelled).

use super::adt::pid;
use super::clock::{self, Seconds};
use super::data::DOCTORS;
use super::patient::{Appointment, Patient};
use super::segment::{xcn, Seg, FACILITY};

/// The scheduling trigger events the simulator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiuEvent {
    /// New appointment booked.
    S12,
    /// Appointment rescheduled.
    S13,
    /// Appointment modified.
    S14,
    /// Appointment cancelled.
    S15,
}

impl SiuEvent {
    /// MSH-9; all four share the SIU_S12 structure.
    pub fn message_type(self) -> &'static str {
        match self {
            SiuEvent::S12 => "SIU^S12^SIU_S12",
            SiuEvent::S13 => "SIU^S13^SIU_S12",
            SiuEvent::S14 => "SIU^S14^SIU_S12",
            SiuEvent::S15 => "SIU^S15^SIU_S12",
        }
    }

    /// SCH-6 event reason and SCH-25 filler status (HL7 table 0278).
    fn reason_and_status(self) -> (&'static str, &'static str) {
        match self {
            SiuEvent::S12 => ("S12^New appointment booked", "Booked"),
            SiuEvent::S13 => ("S13^Appointment rescheduled", "Booked"),
            SiuEvent::S14 => ("S14^Appointment modified", "Booked"),
            SiuEvent::S15 => ("S15^Appointment cancelled", "Cancelled"),
        }
    }
}

/// SIU segments after MSH: SCH, PID, RGS, AIL (the clinic) and AIP (the clinician).
pub fn segments(event: SiuEvent, p: &Patient, a: &Appointment) -> Vec<String> {
    let (reason, status) = event.reason_and_status();
    let start = clock::dtm(a.start);
    let end = clock::dtm(a.start + a.minutes as Seconds * 60);
    let doctor = xcn(DOCTORS[a.doctor]);
    let minutes = a.minutes.to_string();
    vec![
        Seg::new("SCH")
            .set(1, format!("{}^CPOE", a.placer))
            .set(2, format!("{}^SCHED", a.filler))
            .set(6, reason)
            .set(7, format!("{}^{}", a.reason.0, a.reason.1))
            .set(8, "NORMAL")
            .set(9, minutes.clone())
            .set(10, "min")
            .set(11, format!("^^{minutes}^{start}^{end}"))
            .set(16, doctor.clone())
            .set(25, status)
            .build(),
        pid(p),
        Seg::new("RGS").set(1, "1").set(2, "A").build(),
        Seg::new("AIL")
            .set(1, "1")
            .set(2, "A")
            .set(3, format!("{}^^^{FACILITY}", a.clinic))
            .set(6, start.clone())
            .set(9, minutes.clone())
            .set(10, "min")
            .build(),
        Seg::new("AIP")
            .set(1, "1")
            .set(2, "A")
            .set(3, doctor)
            .set(4, "D")
            .set(6, start)
            .set(9, minutes)
            .set(10, "min")
            .build(),
    ]
}
