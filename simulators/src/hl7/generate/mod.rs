//! A deterministic, seeded generator of realistic HL7 v2.5 traffic.
//!
//! Patients go through episodes (admit, update, orders, results, charges, discharge;
//! person registration and merges; appointments), several at a time, interleaved the way a
//! hospital's feeds are. Each message knows what it is ([`Kind`]), so a run can check the
//! answers it gets: valid messages and exact resends should be accepted, malformed ones
//! rejected. The same [`GenConfig`] always gives the same bytes.
//!
//! - `rng`, `clock`: the seeded PRNG and the simulated time (no wall clock, for determinism);
//! - `data`: names, places, clinicians, LOINC panels, CPT charges;
//! - `patient`, `episode`: the people and their scripts;
//! - `segment`, `adt`, `orders`, `siu`: the segments of each message type;
//! - `malformed`: how bad messages are made.

mod adt;
mod clock;
mod data;
mod episode;
mod malformed;
mod orders;
mod patient;
mod rng;
mod segment;
mod siu;

use std::collections::VecDeque;

use bytes::Bytes;

pub use malformed::Malformation;

use episode::{Episode, Ids};
use rng::Rng;

/// Which message types to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mix {
    /// ADT only (A01, A04, A08, A03, A11, A13, A28, A31, A40): the registration feed.
    #[default]
    Adt,
    /// ADT plus ORM orders, ORU results, DFT charges and SIU appointments.
    Full,
}

/// What to generate. `Default` is a clean ADT stream with seed 1.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Seeds the PRNG: the same config gives the same bytes.
    pub seed: u64,
    /// Which message types.
    pub mix: Mix,
    /// Share of messages that are malformed, 0.0 to 1.0.
    pub malformed: f64,
    /// Share of messages that are exact resends (same bytes, same MSH-10) of a recent one.
    pub resend: f64,
    /// Put before the sequence number in MSH-10, so that runs against one store do not
    /// collide; `None` means `SIM<seed>-`. Keep it short: MSH-10 is 20 characters in v2.5.
    pub id_prefix: Option<String>,
    /// How many patients have episodes going at once (how interleaved the stream is).
    pub active_patients: usize,
}

impl Default for GenConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            mix: Mix::Adt,
            malformed: 0.0,
            resend: 0.0,
            id_prefix: None,
            active_patients: 200,
        }
    }
}

/// What a generated message is, and so what answer it should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A well-formed message, first time sent: expect AA (or CA).
    Valid,
    /// An exact copy of an earlier valid message: expect AA again, not processed twice.
    Resend,
    /// Broken on purpose: expect AE/AR (or CE/CR), or the connection closed.
    Malformed(Malformation),
}

impl Kind {
    /// True when the right answer is an accept (AA/CA).
    pub fn expects_accept(self) -> bool {
        !matches!(self, Kind::Malformed(_))
    }
}

/// One generated message.
#[derive(Debug, Clone)]
pub struct GeneratedMessage {
    /// Position in the stream, from 0.
    pub index: u64,
    /// What it is.
    pub kind: Kind,
    /// MSH-10 as sent, for valid messages and resends; `None` for malformed ones.
    pub control_id: Option<String>,
    /// MSH-9 (`ADT^A01^ADT_A01`) for valid messages and resends.
    pub message_type: Option<&'static str>,
    /// The ordering key (the patient): messages with one key must go over one connection,
    /// in order, for the receiver to see each patient's events in order.
    pub key: u64,
    /// The message: CR-terminated segments, no MLLP framing.
    pub payload: Bytes,
}

/// How many recent valid messages a resend is drawn from.
const RESEND_WINDOW: usize = 64;

/// An endless iterator of messages; take as many as needed.
#[derive(Debug)]
pub struct Generator {
    config: GenConfig,
    prefix: String,
    rng: Rng,
    now: clock::Seconds,
    next_index: u64,
    next_control: u64,
    ids: Ids,
    active: Vec<Episode>,
    recent: VecDeque<GeneratedMessage>,
}

impl Generator {
    /// A generator for `config`.
    pub fn new(config: GenConfig) -> Self {
        let prefix = config
            .id_prefix
            .clone()
            .unwrap_or_else(|| format!("SIM{}-", config.seed));
        Self {
            rng: Rng::new(config.seed),
            prefix,
            config,
            now: clock::START,
            next_index: 0,
            next_control: 0,
            ids: Ids::default(),
            active: Vec::new(),
            recent: VecDeque::with_capacity(RESEND_WINDOW),
        }
    }

    fn control_id(&mut self) -> String {
        self.next_control += 1;
        format!("{}{:08}", self.prefix, self.next_control)
    }

    fn wrap(&mut self, message_type: &'static str, segments: &[String]) -> (String, String) {
        let control_id = self.control_id();
        let header = segment::Header {
            sending_app: sending_app(message_type),
            timestamp: &clock::dtm(self.now),
            message_type,
            control_id: &control_id,
        };
        let mut text = segment::msh(&header);
        text.push('\r');
        for s in segments {
            text.push_str(s);
            text.push('\r');
        }
        (control_id, text)
    }

    /// The next message of some episode, starting new episodes to keep the pool full.
    fn next_valid(&mut self, index: u64) -> GeneratedMessage {
        loop {
            let start_new = self.active.is_empty()
                || (self.active.len() < self.config.active_patients.max(1) && self.rng.chance(0.3));
            if start_new {
                let e = Episode::new(&mut self.rng, &mut self.ids, self.config.mix, self.now);
                self.active.push(e);
            }
            let i = if start_new {
                self.active.len() - 1
            } else {
                self.rng.below(self.active.len() as u64) as usize
            };
            let rendered = self.active[i].step(&mut self.rng, &mut self.ids, self.now);
            if self.active[i].is_done() {
                self.active.swap_remove(i);
            }
            let Some(r) = rendered else { continue };
            let (control_id, text) = self.wrap(r.message_type, &r.segments);
            return GeneratedMessage {
                index,
                kind: Kind::Valid,
                control_id: Some(control_id),
                message_type: Some(r.message_type),
                key: r.key,
                payload: Bytes::from(text),
            };
        }
    }

    /// A malformed message made from an update about a person outside every episode, so
    /// that no episode is missing a message the receiver rejected.
    fn next_malformed(&mut self, index: u64) -> GeneratedMessage {
        let how = self.rng.one_of(&Malformation::ALL);
        let p = patient::Patient::new(&mut self.rng, 90_000_000 + index, self.now);
        let segments = adt::segments(adt::AdtEvent::A08, &p, None, self.now);
        let (_, text) = self.wrap(adt::AdtEvent::A08.message_type(), &segments);
        GeneratedMessage {
            index,
            kind: Kind::Malformed(how),
            control_id: None,
            message_type: None,
            key: self.rng.next_u64(),
            payload: Bytes::from(malformed::corrupt(how, &text, &mut self.rng)),
        }
    }
}

/// MSH-3 by message type: each feed comes from its own system.
fn sending_app(message_type: &str) -> &'static str {
    match message_type.get(..3) {
        Some("ORM") => "CPOE",
        Some("ORU") => "LAB",
        Some("DFT") => "LAB",
        Some("SIU") => "SCHED",
        _ => "REG",
    }
}

impl Iterator for Generator {
    type Item = GeneratedMessage;

    fn next(&mut self) -> Option<GeneratedMessage> {
        let index = self.next_index;
        self.next_index += 1;
        self.now += self.rng.range(1, 90) as i64;
        let roll = self.rng.unit();
        let msg = if roll < self.config.malformed {
            self.next_malformed(index)
        } else if roll < self.config.malformed + self.config.resend && !self.recent.is_empty() {
            let original = self.rng.pick(self.recent.make_contiguous()).clone();
            GeneratedMessage {
                index,
                kind: Kind::Resend,
                ..original
            }
        } else {
            let m = self.next_valid(index);
            if self.recent.len() == RESEND_WINDOW {
                self.recent.pop_front();
            }
            self.recent.push_back(m.clone());
            m
        };
        Some(msg)
    }
}
