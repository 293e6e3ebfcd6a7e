//! ADT messages (patient administration): the segments of each trigger event. The caller
//! changes the patient first (admit, discharge, move house); this only writes what is there.

use super::clock::{self, Seconds};
use super::data::DOCTORS;
use super::patient::{Patient, Visit};
use super::segment::{xcn, Seg, FACILITY};

/// The ADT trigger events the simulator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdtEvent {
    /// Admit an inpatient.
    A01,
    /// Register an outpatient or emergency patient.
    A04,
    /// Update patient information.
    A08,
    /// Discharge (end the visit).
    A03,
    /// Cancel an admission.
    A11,
    /// Cancel a discharge.
    A13,
    /// Add person information (no visit).
    A28,
    /// Update person information.
    A31,
    /// Merge patient identifiers (MRG names the identifier that goes away).
    A40,
}

impl AdtEvent {
    /// MSH-9 with its message structure (v2.5 table 0354).
    pub fn message_type(self) -> &'static str {
        match self {
            AdtEvent::A01 => "ADT^A01^ADT_A01",
            AdtEvent::A04 => "ADT^A04^ADT_A01",
            AdtEvent::A08 => "ADT^A08^ADT_A01",
            AdtEvent::A13 => "ADT^A13^ADT_A01",
            AdtEvent::A03 => "ADT^A03^ADT_A03",
            AdtEvent::A11 => "ADT^A11^ADT_A09",
            AdtEvent::A28 => "ADT^A28^ADT_A05",
            AdtEvent::A31 => "ADT^A31^ADT_A05",
            AdtEvent::A40 => "ADT^A40^ADT_A39",
        }
    }

    fn code(self) -> &'static str {
        &self.message_type()[4..7]
    }
}

/// The segments after MSH for `event` about `patient` at `now`. `merged_mrn` is the
/// identifier that an A40 retires.
pub fn segments(event: AdtEvent, patient: &Patient, merged_mrn: Option<&str>, now: Seconds) -> Vec<String> {
    let mut out = vec![
        Seg::new("EVN")
            .set(1, event.code())
            .set(2, clock::dtm(now))
            .set(5, "REG01^CLERK^ANN")
            .build(),
        pid(patient),
    ];
    match event {
        AdtEvent::A40 => {
            let mrn = merged_mrn.unwrap_or_default();
            out.push(Seg::new("MRG").set(1, format!("{mrn}^^^{FACILITY}^MR")).build());
        }
        AdtEvent::A28 | AdtEvent::A31 => out.push(no_visit()),
        _ => match &patient.visit {
            Some(v) => {
                out.push(pv1(v));
                if matches!(event, AdtEvent::A01 | AdtEvent::A04) {
                    out.push(dg1(v));
                }
            }
            None => out.push(no_visit()),
        },
    }
    out
}

/// PID: identifiers with assigning authority, name, birth date, sex, address, phone, account.
pub fn pid(p: &Patient) -> String {
    Seg::new("PID")
        .set(1, "1")
        .set(3, p.identifiers())
        .set(5, p.name())
        .set(7, p.birth_date())
        .set(8, p.sex.to_string())
        .set(11, p.address())
        .set(13, p.home_phone())
        .set(16, p.marital)
        .set(18, format!("{}^^^{FACILITY}^AN", p.account))
        .build()
}

/// PV1 of a visit: class, location, attending doctor, service, visit number, admit and
/// discharge times.
pub fn pv1(v: &Visit) -> String {
    let doctor = xcn(DOCTORS[v.attending]);
    let mut s = Seg::new("PV1")
        .set(1, "1")
        .set(2, v.class.to_string())
        .set(3, v.location.clone())
        .set(4, if v.class == 'E' { "E" } else { "R" })
        .set(7, doctor.clone())
        .set(10, v.service)
        .set(14, if v.class == 'E' { "7" } else { "1" })
        .set(17, doctor)
        .set(19, format!("{}^^^{FACILITY}^VN", v.number))
        .set(44, clock::dtm(v.admitted));
    if let Some(t) = v.discharged {
        // PV1-36 01: discharged to home.
        s = s.set(36, "01").set(45, clock::dtm(t));
    }
    s.build()
}

/// PV1 for messages about a person rather than a visit (class N, not applicable).
fn no_visit() -> String {
    Seg::new("PV1").set(1, "1").set(2, "N").build()
}

/// DG1: the admitting diagnosis, ICD-10-CM.
fn dg1(v: &Visit) -> String {
    Seg::new("DG1")
        .set(1, "1")
        .set(3, format!("{}^{}^I10", v.diagnosis.0, v.diagnosis.1))
        .set(5, clock::dtm(v.admitted))
        .set(6, "A")
        .build()
}
