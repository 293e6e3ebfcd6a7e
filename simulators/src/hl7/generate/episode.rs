//! Episodes: what happens to one patient, as a script of steps decided when the episode
//! starts (admit, update, order, result, charge, discharge). Each step is one message, and
//! steps of one episode are emitted in order, so per-patient order is realistic.

use std::collections::VecDeque;

use super::adt::{self, AdtEvent};
use super::clock::Seconds;
use super::orders::{self, OrderControl, ResultStatus};
use super::patient::{Appointment, Order, Patient, Visit};
use super::rng::Rng;
use super::siu::{self, SiuEvent};
use super::Mix;

/// Counters for identifiers that must be unique across all episodes of a run.
#[derive(Debug, Default)]
pub struct Ids {
    /// Last patient number used (MRNs).
    pub patients: u64,
    /// Last visit number used.
    pub visits: u64,
    /// Last order number used (placer and filler numbers).
    pub orders: u64,
    /// Last appointment number used.
    pub appointments: u64,
}

impl Ids {
    fn next(counter: &mut u64) -> u64 {
        *counter += 1;
        *counter
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// A01 (class I) or A04 (class O/E): starts a visit.
    Admit(char),
    /// A08 with a new address or phone.
    Update,
    Discharge,
    CancelDischarge,
    CancelAdmit,
    AddPerson,
    UpdatePerson,
    /// A28 for a duplicate record of the same person under a second MRN.
    AddDuplicate,
    /// A40 merging the duplicate into the patient.
    Merge,
    /// ORM NW for a new order, which later order steps refer to.
    PlaceOrder,
    Control(OrderControl),
    Result(ResultStatus),
    Correct,
    Charge,
    Schedule(SiuEvent),
}

/// One patient and the messages still to come about them.
#[derive(Debug)]
pub struct Episode {
    patient: Patient,
    steps: VecDeque<Step>,
    order: Option<Order>,
    appointment: Option<Appointment>,
    duplicate_mrn: Option<String>,
}

/// One rendered step: MSH-9 and the segments after MSH.
pub struct Rendered {
    /// MSH-9.
    pub message_type: &'static str,
    /// Every segment after MSH, without terminators.
    pub segments: Vec<String>,
    /// The patient's ordering key.
    pub key: u64,
}

impl Episode {
    /// A new patient with a script drawn for `mix`.
    pub fn new(rng: &mut Rng, ids: &mut Ids, mix: Mix, now: Seconds) -> Self {
        let patient = Patient::new(rng, Ids::next(&mut ids.patients), now);
        let mut steps = VecDeque::new();
        let orders = mix == Mix::Full;
        let roll = rng.below(100);
        match roll {
            0..=34 => {
                steps.push_back(Step::Admit('I'));
                if rng.chance(0.5) {
                    steps.push_back(Step::Update);
                }
                if orders {
                    for _ in 0..rng.range(1, 3) {
                        order_script(rng, &mut steps);
                    }
                }
                steps.push_back(Step::Discharge);
                if rng.chance(0.1) {
                    steps.extend([Step::CancelDischarge, Step::Discharge]);
                }
            }
            35..=54 => {
                steps.push_back(Step::Admit(if rng.chance(0.3) { 'E' } else { 'O' }));
                if rng.chance(0.4) {
                    steps.push_back(Step::Update);
                }
                if orders {
                    for _ in 0..rng.range(1, 2) {
                        order_script(rng, &mut steps);
                    }
                }
                if rng.chance(0.5) {
                    steps.push_back(Step::Discharge);
                }
            }
            55..=59 => steps.extend([Step::Admit('I'), Step::CancelAdmit]),
            60..=69 => steps.extend([Step::AddPerson, Step::AddDuplicate, Step::Merge]),
            70..=84 if orders => {
                steps.push_back(Step::Schedule(SiuEvent::S12));
                let change = rng.one_of(&[
                    None,
                    None,
                    Some(SiuEvent::S13),
                    Some(SiuEvent::S14),
                    Some(SiuEvent::S15),
                ]);
                steps.extend(change.map(Step::Schedule));
                if change != Some(SiuEvent::S15) {
                    steps.push_back(Step::Admit('O'));
                    if rng.chance(0.5) {
                        order_script(rng, &mut steps);
                    }
                }
            }
            _ => {
                steps.extend([Step::AddPerson, Step::UpdatePerson]);
                if rng.chance(0.5) {
                    steps.push_back(Step::UpdatePerson);
                }
            }
        }
        Episode {
            patient,
            steps,
            order: None,
            appointment: None,
            duplicate_mrn: None,
        }
    }

    /// True when every message of the episode has been emitted.
    pub fn is_done(&self) -> bool {
        self.steps.is_empty()
    }

    /// The next message of the episode, changing the patient as the event says.
    pub fn step(&mut self, rng: &mut Rng, ids: &mut Ids, now: Seconds) -> Option<Rendered> {
        let step = self.steps.pop_front()?;
        let p = &mut self.patient;
        let key = p.key;
        let adt = |event: AdtEvent, p: &Patient, merged: Option<&str>| Rendered {
            message_type: event.message_type(),
            segments: adt::segments(event, p, merged, now),
            key,
        };
        let rendered = match step {
            Step::Admit(class) => {
                p.visit = Some(Visit::new(rng, Ids::next(&mut ids.visits), class, now));
                adt(if class == 'I' { AdtEvent::A01 } else { AdtEvent::A04 }, p, None)
            }
            Step::Update => {
                if rng.chance(0.6) {
                    p.move_house(rng);
                } else {
                    p.new_phone(rng);
                }
                adt(AdtEvent::A08, p, None)
            }
            Step::Discharge => {
                if let Some(v) = &mut p.visit {
                    v.discharged = Some(now);
                }
                adt(AdtEvent::A03, p, None)
            }
            Step::CancelDischarge => {
                if let Some(v) = &mut p.visit {
                    v.discharged = None;
                }
                adt(AdtEvent::A13, p, None)
            }
            Step::CancelAdmit => {
                let r = adt(AdtEvent::A11, p, None);
                p.visit = None;
                r
            }
            Step::AddPerson => adt(AdtEvent::A28, p, None),
            Step::UpdatePerson => {
                p.new_phone(rng);
                p.marital = rng.one_of(&["S", "M", "D", "W"]);
                adt(AdtEvent::A31, p, None)
            }
            Step::AddDuplicate => {
                let mut dup = p.clone();
                dup.mrn = format!("MR{:07}", Ids::next(&mut ids.patients));
                dup.empi = format!("E{:09}", 900_000_000 + dup.key);
                self.duplicate_mrn = Some(dup.mrn.clone());
                adt(AdtEvent::A28, &dup, None)
            }
            Step::Merge => adt(AdtEvent::A40, p, self.duplicate_mrn.as_deref()),
            Step::PlaceOrder => {
                let o = Order::new(rng, Ids::next(&mut ids.orders), now);
                let segments = orders::orm(OrderControl::New, p, &o, now);
                self.order = Some(o);
                Rendered {
                    message_type: "ORM^O01^ORM_O01",
                    segments,
                    key,
                }
            }
            Step::Control(c) => {
                let o = self.order.as_ref()?;
                Rendered {
                    message_type: "ORM^O01^ORM_O01",
                    segments: orders::orm(c, p, o, now),
                    key,
                }
            }
            Step::Result(status) => {
                let o = self.order.as_mut()?;
                if o.values.is_empty() || status == ResultStatus::Preliminary {
                    o.values = o.panel.analytes.iter().map(|a| orders::draw_value(rng, a)).collect();
                }
                oru(orders::oru(status, p, o, None, now), key)
            }
            Step::Correct => {
                let o = self.order.as_mut()?;
                let i = rng.below(o.values.len() as u64) as usize;
                let before = *o.values.get(i)?;
                let analyte = o.panel.analytes.get(i)?;
                let mut after = orders::draw_value(rng, analyte);
                if after == before {
                    // A correction that changes nothing is not one: nudge by one reported unit.
                    after += 10f64.powi(-(analyte.decimals as i32));
                }
                o.values[i] = after;
                oru(orders::oru(ResultStatus::Corrected, p, o, Some((i, before)), now), key)
            }
            Step::Charge => {
                let o = self.order.as_ref()?;
                Rendered {
                    message_type: "DFT^P03^DFT_P03",
                    segments: orders::dft(p, o, now),
                    key,
                }
            }
            Step::Schedule(event) => {
                let a = self
                    .appointment
                    .get_or_insert_with(|| Appointment::new(rng, Ids::next(&mut ids.appointments), now));
                match event {
                    SiuEvent::S13 => a.start += 86_400 * rng.range(1, 7) as Seconds,
                    SiuEvent::S14 => a.minutes += 15,
                    _ => {}
                }
                Rendered {
                    message_type: event.message_type(),
                    segments: siu::segments(event, p, a),
                    key,
                }
            }
        };
        Some(rendered)
    }
}

fn oru(segments: Vec<String>, key: u64) -> Rendered {
    Rendered {
        message_type: "ORU^R01^ORU_R01",
        segments,
        key,
    }
}

/// The life of one order: placed, then cancelled or discontinued, or resulted (sometimes
/// preliminary first, sometimes corrected after the final) and charged.
fn order_script(rng: &mut Rng, steps: &mut VecDeque<Step>) {
    steps.push_back(Step::PlaceOrder);
    match rng.below(100) {
        0..=7 => steps.push_back(Step::Control(OrderControl::Cancel)),
        8..=12 => steps.push_back(Step::Control(OrderControl::Discontinue)),
        _ => {
            if rng.chance(0.2) {
                steps.push_back(Step::Control(OrderControl::StatusChanged));
            }
            if rng.chance(0.05) {
                steps.push_back(Step::Control(OrderControl::Change));
            }
            if rng.chance(0.3) {
                steps.push_back(Step::Result(ResultStatus::Preliminary));
            }
            steps.push_back(Step::Result(ResultStatus::Final));
            if rng.chance(0.1) {
                steps.push_back(Step::Correct);
            }
            steps.push_back(Step::Charge);
        }
    }
}
