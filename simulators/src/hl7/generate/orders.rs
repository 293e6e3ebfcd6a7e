//! Order-to-bill messages: ORM^O01 orders, ORU^R01 results with LOINC codes, UCUM units,
//! reference ranges and abnormal flags, and DFT^P03 charges with CPT codes.

use super::adt::{pid, pv1};
use super::clock::{self, Seconds};
use super::data::{Analyte, DOCTORS, VISIT_CHARGES};
use super::patient::{Order, Patient};
use super::rng::Rng;
use super::segment::{money, xcn, Seg};

/// ORC-1 order control codes the placer (and, for SC, the filler) sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderControl {
    /// New order.
    New,
    /// Cancel order request.
    Cancel,
    /// Status changed (the lab has the specimen).
    StatusChanged,
    /// Change order (here: raised to stat).
    Change,
    /// Discontinue order.
    Discontinue,
}

impl OrderControl {
    fn code(self) -> (&'static str, &'static str) {
        // (ORC-1, ORC-5 order status)
        match self {
            OrderControl::New => ("NW", ""),
            OrderControl::Cancel => ("CA", "CA"),
            OrderControl::StatusChanged => ("SC", "IP"),
            OrderControl::Change => ("XO", ""),
            OrderControl::Discontinue => ("DC", "DC"),
        }
    }
}

/// OBR-25/OBX-11 result status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultStatus {
    /// Preliminary.
    Preliminary,
    /// Final.
    Final,
    /// Correction of a final result.
    Corrected,
}

fn visit_segments(p: &Patient) -> Vec<String> {
    let mut out = vec![pid(p)];
    if let Some(v) = &p.visit {
        out.push(pv1(v));
    }
    out
}

fn placer(o: &Order) -> String {
    format!("{}^CPOE", o.placer)
}

fn filler(o: &Order) -> String {
    format!("{}^LAB", o.filler)
}

/// ORM^O01 segments after MSH.
pub fn orm(control: OrderControl, p: &Patient, o: &Order, now: Seconds) -> Vec<String> {
    let (orc1, status) = control.code();
    let priority = if control == OrderControl::Change { "S" } else { "R" };
    let doctor = xcn(DOCTORS[o.doctor]);
    let mut out = visit_segments(p);
    out.push(
        Seg::new("ORC")
            .set(1, orc1)
            .set(2, placer(o))
            .set(3, filler(o))
            .set(5, status)
            .set(7, format!("^^^{}^^{priority}", clock::dtm(o.ordered)))
            .set(9, clock::dtm(now))
            .set(12, doctor.clone())
            .build(),
    );
    out.push(
        Seg::new("OBR")
            .set(1, "1")
            .set(2, placer(o))
            .set(3, filler(o))
            .set(4, format!("{}^{}^LN", o.panel.loinc, o.panel.name))
            .set(7, clock::dtm(o.ordered))
            .set(16, doctor)
            .build(),
    );
    out
}

/// A value for `a`: mostly normal, some high or low, a few critical (HH/LL).
pub fn draw_value(rng: &mut Rng, a: &Analyte) -> f64 {
    let span = |lo: f64, hi: f64, rng: &mut Rng| lo + (hi - lo) * (0.1 + 0.8 * rng.unit());
    let can_be_low = a.crit_low > 0.0 && a.low > a.crit_low;
    let v = match rng.below(100) {
        0..=79 => span(a.low, a.high, rng),
        80..=87 if can_be_low => span(a.crit_low, a.low, rng),
        80..=95 => span(a.high, a.crit_high, rng),
        96..=97 if can_be_low => span(a.crit_low * 0.5, a.crit_low * 0.9, rng),
        _ => span(a.crit_high * 1.1, a.crit_high * 1.5, rng),
    };
    round(v, a.decimals)
}

fn round(v: f64, decimals: usize) -> f64 {
    let f = 10f64.powi(decimals as i32);
    (v * f).round() / f
}

/// OBX-8 abnormal flag for `v` (HL7 table 0078): N, L, H, or LL/HH beyond the critical limits.
pub fn flag(a: &Analyte, v: f64) -> &'static str {
    if v < a.crit_low {
        "LL"
    } else if v > a.crit_high {
        "HH"
    } else if v < a.low {
        "L"
    } else if v > a.high {
        "H"
    } else {
        "N"
    }
}

/// ORU^R01 segments after MSH for the values in `o.values`. For a correction, `corrected` is
/// the analyte whose value changed and what it was before.
pub fn oru(status: ResultStatus, p: &Patient, o: &Order, corrected: Option<(usize, f64)>, now: Seconds) -> Vec<String> {
    let code = match status {
        ResultStatus::Preliminary => "P",
        ResultStatus::Final => "F",
        ResultStatus::Corrected => "C",
    };
    let observed = clock::dtm(o.ordered + 600);
    let mut out = visit_segments(p);
    out.push(Seg::new("ORC").set(1, "RE").set(2, placer(o)).set(3, filler(o)).build());
    out.push(
        Seg::new("OBR")
            .set(1, "1")
            .set(2, placer(o))
            .set(3, filler(o))
            .set(4, format!("{}^{}^LN", o.panel.loinc, o.panel.name))
            .set(7, observed.clone())
            .set(16, xcn(DOCTORS[o.doctor]))
            .set(22, clock::dtm(now))
            .set(25, code)
            .build(),
    );
    for (i, (a, v)) in o.panel.analytes.iter().zip(&o.values).enumerate() {
        let changed = corrected.filter(|(idx, _)| *idx == i);
        let obx_status = match (status, changed) {
            (ResultStatus::Corrected, None) => "F",
            _ => code,
        };
        out.push(
            Seg::new("OBX")
                .set(1, (i + 1).to_string())
                .set(2, "NM")
                .set(3, format!("{}^{}^LN", a.loinc, a.name))
                .set(5, format!("{:.*}", a.decimals, v))
                .set(6, format!("{0}^{0}^UCUM", a.unit))
                .set(7, format!("{:.*}-{:.*}", a.decimals, a.low, a.decimals, a.high))
                .set(8, flag(a, *v))
                .set(11, obx_status)
                .set(14, observed.clone())
                .build(),
        );
        if let Some((_, before)) = changed {
            let note = format!(
                "Corrected result. Previously reported as {:.*} {}.",
                a.decimals, before, a.unit
            );
            out.push(Seg::new("NTE").set(1, "1").set(2, "L").set(3, note).build());
        }
    }
    out
}

/// DFT^P03 segments after MSH: the panel's CPT charge and the venipuncture.
pub fn dft(p: &Patient, o: &Order, now: Seconds) -> Vec<String> {
    let mut out = vec![Seg::new("EVN").set(1, "P03").set(2, clock::dtm(now)).build()];
    out.extend(visit_segments(p));
    let (vcpt, vname, vprice) = VISIT_CHARGES[0];
    let charges = [
        (o.panel.cpt, o.panel.cpt_name, o.panel.price_cents),
        (vcpt, vname, vprice),
    ];
    let doctor = xcn(DOCTORS[o.doctor]);
    for (i, (cpt, name, cents)) in charges.iter().enumerate() {
        out.push(
            Seg::new("FT1")
                .set(1, (i + 1).to_string())
                .set(2, format!("T{}-{}", o.filler, i + 1))
                .set(4, clock::dtm(o.ordered))
                .set(5, clock::dtm(now))
                .set(6, "CG")
                .set(7, format!("LAB{cpt}^{name}^99CDM"))
                .set(10, "1")
                .set(11, money(*cents))
                .set(12, money(*cents))
                .set(13, "LAB")
                .set(21, doctor.clone())
                .set(23, filler(o))
                // C4: CPT-4 (HL7 table 0396).
                .set(25, format!("{cpt}^{name}^C4"))
                .build(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hl7::generate::data::PANELS;

    #[test]
    fn flags_agree_with_values_and_criticals_occur() {
        let mut rng = Rng::new(3);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..5000 {
            let a = rng.pick(PANELS[0].analytes);
            let v = draw_value(&mut rng, a);
            let f = flag(a, v);
            match f {
                "N" => assert!(v >= a.low && v <= a.high),
                "HH" => assert!(v > a.crit_high),
                "LL" => assert!(v < a.crit_low),
                _ => {}
            }
            seen.insert(f);
        }
        for f in ["N", "L", "H", "LL", "HH"] {
            assert!(seen.contains(f), "{f} never drawn");
        }
    }
}
