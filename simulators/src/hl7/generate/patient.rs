//! The simulated people and things messages are about: patients, visits, orders and
//! appointments, each with identifiers that are unique within a seed.

use super::clock::{self, Seconds};
use super::data::{self, Panel};
use super::rng::Rng;
use super::segment::FACILITY;

/// A patient as the registration system knows them.
#[derive(Debug, Clone)]
pub struct Patient {
    /// The ordering key: messages about one patient go over one connection, in order.
    pub key: u64,
    /// Medical record number (PID-3, type MR).
    pub mrn: String,
    /// Enterprise id (second PID-3 repetition).
    pub empi: String,
    /// Name (PID-5): family, given, middle initial.
    pub family: String,
    /// Given name.
    pub given: &'static str,
    /// Middle initial.
    pub middle: char,
    /// Administrative sex (PID-8): F, M or U.
    pub sex: char,
    /// Date of birth (PID-7).
    pub birth: Seconds,
    /// Street line of the address (PID-11.1).
    pub street: String,
    /// Index into `CITIES` (city, state, zip prefix, area code).
    pub city: usize,
    /// Zip code.
    pub zip: String,
    /// Local part of the home phone (PID-13).
    pub phone: String,
    /// Marital status (PID-16).
    pub marital: &'static str,
    /// Patient account number (PID-18).
    pub account: String,
    /// The current visit, if any.
    pub visit: Option<Visit>,
}

/// An encounter (PV1).
#[derive(Debug, Clone)]
pub struct Visit {
    /// Visit number (PV1-19).
    pub number: String,
    /// PV1-2: I inpatient, O outpatient, E emergency.
    pub class: char,
    /// PV1-3 as a PL: `unit^room^bed^facility`.
    pub location: String,
    /// Attending doctor (PV1-7), index into `DOCTORS`.
    pub attending: usize,
    /// Hospital service (PV1-10).
    pub service: &'static str,
    /// Admit time (PV1-44).
    pub admitted: Seconds,
    /// Discharge time (PV1-45), once discharged.
    pub discharged: Option<Seconds>,
    /// Admitting diagnosis (ICD-10-CM code, text).
    pub diagnosis: (&'static str, &'static str),
}

/// A lab order and, once resulted, the values reported for it.
#[derive(Debug, Clone)]
pub struct Order {
    /// Placer order number (ORC-2, OBR-2).
    pub placer: String,
    /// Filler order number (ORC-3, OBR-3).
    pub filler: String,
    /// What was ordered.
    pub panel: &'static Panel,
    /// Ordering provider, index into `DOCTORS`.
    pub doctor: usize,
    /// When it was ordered.
    pub ordered: Seconds,
    /// The values last reported, one per analyte, so a correction can change one of them.
    pub values: Vec<f64>,
}

/// A scheduled appointment (SIU).
#[derive(Debug, Clone)]
pub struct Appointment {
    /// Placer appointment id (SCH-1).
    pub placer: String,
    /// Filler appointment id (SCH-2).
    pub filler: String,
    /// Start time.
    pub start: Seconds,
    /// Duration in minutes.
    pub minutes: u64,
    /// Where (AIL-3).
    pub clinic: &'static str,
    /// With whom (AIP-3), index into `DOCTORS`.
    pub doctor: usize,
    /// Reason code and text (SCH-7).
    pub reason: (&'static str, &'static str),
}

const DIAGNOSES: &[(&str, &str)] = &[
    ("I21.4", "Non-ST elevation (NSTEMI) myocardial infarction"),
    ("J18.9", "Pneumonia, unspecified organism"),
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("N39.0", "Urinary tract infection, site not specified"),
    ("I50.9", "Heart failure, unspecified"),
    (
        "S72.001A",
        "Fracture of unspecified part of neck of right femur, initial encounter",
    ),
    ("O80", "Encounter for full-term uncomplicated delivery"),
    ("K35.80", "Unspecified acute appendicitis"),
];

impl Patient {
    /// A new patient numbered `n` (unique in the run), born 0 to 95 years before `now`.
    pub fn new(rng: &mut Rng, n: u64, now: Seconds) -> Self {
        let sex = match rng.below(100) {
            0 => 'U',
            1..=50 => 'F',
            _ => 'M',
        };
        let given = match sex {
            'F' => rng.one_of(data::FEMALE_NAMES),
            'M' => rng.one_of(data::MALE_NAMES),
            _ => {
                let names = if rng.chance(0.5) {
                    data::FEMALE_NAMES
                } else {
                    data::MALE_NAMES
                };
                rng.one_of(names)
            }
        };
        let age_days = rng.below(95 * 365) as i64;
        let mut p = Patient {
            key: n,
            mrn: format!("MR{:07}", n),
            empi: format!("E{:09}", n.wrapping_mul(7).wrapping_add(100_000_000)),
            family: rng.pick(data::FAMILY_NAMES).to_string(),
            given,
            middle: (b'A' + rng.below(26) as u8) as char,
            sex,
            birth: now - age_days * 86_400 - rng.below(86_400) as i64,
            street: String::new(),
            city: 0,
            zip: String::new(),
            phone: String::new(),
            marital: rng.one_of(&["S", "M", "D", "W"]),
            account: format!("AC{:08}", n),
            visit: None,
        };
        p.move_house(rng);
        p.new_phone(rng);
        p
    }

    /// A new address (the usual content of an A08 update).
    pub fn move_house(&mut self, rng: &mut Rng) {
        self.street = format!("{} {}", rng.range(1, 9999), rng.pick(data::STREETS));
        self.city = rng.below(data::CITIES.len() as u64) as usize;
        self.zip = format!("{}{:02}", data::CITIES[self.city].2, rng.below(100));
    }

    /// A new home phone number.
    pub fn new_phone(&mut self, rng: &mut Rng) {
        self.phone = format!("555{:04}", rng.below(10_000));
    }

    /// PID-3: the MRN and the enterprise id, each with its assigning authority.
    pub fn identifiers(&self) -> String {
        format!("{}^^^{FACILITY}^MR~{}^^^EMPI^PI", self.mrn, self.empi)
    }

    /// PID-5.
    pub fn name(&self) -> String {
        format!("{}^{}^{}^^^^L", self.family, self.given, self.middle)
    }

    /// PID-7.
    pub fn birth_date(&self) -> String {
        clock::date(self.birth)
    }

    /// PID-11.
    pub fn address(&self) -> String {
        let (city, state, _, _) = data::CITIES[self.city];
        format!("{}^^{city}^{state}^{}^USA^H", self.street, self.zip)
    }

    /// PID-13 as an XTN with area code and local number.
    pub fn home_phone(&self) -> String {
        format!("^PRN^PH^^1^{}^{}", data::CITIES[self.city].3, self.phone)
    }
}

impl Visit {
    /// A visit numbered `n` starting at `now`: inpatient, outpatient or emergency.
    pub fn new(rng: &mut Rng, n: u64, class: char, now: Seconds) -> Self {
        let location = match class {
            'O' => format!("{}^^^{FACILITY}", rng.pick(data::CLINICS)),
            'E' => format!("ED^{:02}^^{FACILITY}", rng.range(1, 40)),
            _ => {
                let (ward, rooms) = rng.one_of(data::WARDS);
                let bed = if rng.chance(0.5) { "A" } else { "B" };
                format!("{ward}^{}^{bed}^{FACILITY}", 100 + rng.range(1, rooms))
            }
        };
        Visit {
            number: format!("V{:08}", n),
            class,
            location,
            attending: rng.below(data::DOCTORS.len() as u64) as usize,
            service: rng.one_of(data::SERVICES),
            admitted: now,
            discharged: None,
            diagnosis: rng.one_of(DIAGNOSES),
        }
    }
}

impl Order {
    /// Order number `n` for a random panel, placed at `now`.
    pub fn new(rng: &mut Rng, n: u64, now: Seconds) -> Self {
        Order {
            placer: format!("PL{:08}", n),
            filler: format!("FL{:08}", n),
            panel: rng.pick(data::PANELS),
            doctor: rng.below(data::DOCTORS.len() as u64) as usize,
            ordered: now,
            values: Vec::new(),
        }
    }
}

impl Appointment {
    /// Appointment number `n`, one to thirty days after `now`, in clinic hours.
    pub fn new(rng: &mut Rng, n: u64, now: Seconds) -> Self {
        let day = (now.div_euclid(86_400) + rng.range(1, 30) as i64) * 86_400;
        Appointment {
            placer: format!("AP{:08}", n),
            filler: format!("SC{:08}", n),
            start: day + 8 * 3600 + rng.below(18) as i64 * 1800,
            minutes: rng.one_of(&[15u64, 20, 30, 45, 60]),
            clinic: rng.one_of(data::CLINICS),
            doctor: rng.below(data::DOCTORS.len() as u64) as usize,
            reason: rng.one_of(data::APPOINTMENT_REASONS),
        }
    }
}
