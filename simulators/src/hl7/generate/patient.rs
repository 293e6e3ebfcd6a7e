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
    pub mrn: String,
    /// Enterprise id (second PID-3 repetition).
    pub empi: String,
    pub family: String,
    pub given: &'static str,
    pub middle: char,
    pub sex: char,
    pub birth: Seconds,
    pub street: String,
    pub city: usize,
    pub zip: String,
    pub phone: String,
    pub marital: &'static str,
    pub account: String,
    pub visit: Option<Visit>,
}

/// An encounter (PV1).
#[derive(Debug, Clone)]
pub struct Visit {
    pub number: String,
    /// PV1-2: I inpatient, O outpatient, E emergency.
    pub class: char,
    /// PV1-3 as a PL: `unit^room^bed^facility`.
    pub location: String,
    pub attending: usize,
    pub service: &'static str,
    pub admitted: Seconds,
    pub discharged: Option<Seconds>,
    /// Admitting diagnosis (ICD-10-CM code, text).
    pub diagnosis: (&'static str, &'static str),
}

/// A lab order and, once resulted, the values reported for it.
#[derive(Debug, Clone)]
pub struct Order {
    pub placer: String,
    pub filler: String,
    pub panel: &'static Panel,
    pub doctor: usize,
    pub ordered: Seconds,
    /// The values last reported, one per analyte, so a correction can change one of them.
    pub values: Vec<f64>,
}

/// A scheduled appointment (SIU).
#[derive(Debug, Clone)]
pub struct Appointment {
    pub placer: String,
    pub filler: String,
    pub start: Seconds,
    pub minutes: u64,
    pub clinic: &'static str,
    pub doctor: usize,
    pub reason: (&'static str, &'static str),
}

const DIAGNOSES: &[(&str, &str)] = &[
    ("I21.4", "Non-ST elevation (NSTEMI) myocardial infarction"),
    ("J18.9", "Pneumonia, unspecified organism"),
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("N39.0", "Urinary tract infection, site not specified"),
    ("I50.9", "Heart failure, unspecified"),
    ("S72.001A", "Fracture of unspecified part of neck of right femur, initial encounter"),
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
            'F' => *rng.pick(data::FEMALE_NAMES),
            'M' => *rng.pick(data::MALE_NAMES),
            _ => {
                let names = if rng.chance(0.5) { data::FEMALE_NAMES } else { data::MALE_NAMES };
                *rng.pick(names)
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
            marital: *rng.pick(&["S", "M", "D", "W"]),
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
                let (ward, rooms) = *rng.pick(data::WARDS);
                let bed = if rng.chance(0.5) { "A" } else { "B" };
                format!("{ward}^{}^{bed}^{FACILITY}", 100 + rng.range(1, rooms))
            }
        };
        Visit {
            number: format!("V{:08}", n),
            class,
            location,
            attending: rng.below(data::DOCTORS.len() as u64) as usize,
            service: *rng.pick(data::SERVICES),
            admitted: now,
            discharged: None,
            diagnosis: *rng.pick(DIAGNOSES),
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
            minutes: *rng.pick(&[15u64, 20, 30, 45, 60]),
            clinic: *rng.pick(data::CLINICS),
            doctor: rng.below(data::DOCTORS.len() as u64) as usize,
            reason: *rng.pick(data::APPOINTMENT_REASONS),
        }
    }
}
