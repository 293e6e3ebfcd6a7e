//! OBX-5 (read by its OBX-2 value type) → Observation.value, OBX-6 → the
//! unit, OBX-7 → the reference range.
//!
//! | OBX-2             | value                                                   |
//! |-------------------|---------------------------------------------------------|
//! | NM                | valueQuantity (a leading `<`, `>=` … becomes comparator) |
//! | SN                | valueQuantity; a range or ratio (`1:128`) valueString   |
//! | ST, TX, FT, TM    | valueString (repetitions joined by line breaks)         |
//! | CE, CWE, CNE, CF  | valueCodeableConcept (the first repetition)             |
//! | ID, IS            | valueCodeableConcept with the code alone                |
//! | DT, DTM, TS       | valueDateTime                                           |
//! | ED, RP and others | not carried (attachments and pointers need their own resources) |
//!
//! Units: OBX-6 with coding system `UCUM` gives the UCUM system and code;
//! otherwise only the unit text is kept, since it may not be valid UCUM.

use medbus_bus::canonical::{
    systems, CodeableConcept, Coding, Decimal, ObservationReferenceRange, ObservationValue, Quantity,
    QuantityComparator,
};

use super::codes::cwe;
use super::error::MapError;
use super::read::first;
use super::types::{code, comp, date_time, loc, reps, text};
use super::Ctx;
use crate::hl7::parser::{Repetition, Segment};

/// The unit of a value: how it reads, and its UCUM code when the sender said it is one.
#[derive(Debug, Clone, Default)]
pub(super) struct Unit {
    unit: Option<String>,
    ucum: Option<String>,
}

/// OBX-6 → [`Unit`].
pub(super) fn unit(obx: &Segment<'_>) -> Unit {
    let Some(rep) = first(obx, 6) else {
        return Unit::default();
    };
    let is_ucum = comp(&rep, 3).is_some_and(|s| s.eq_ignore_ascii_case("UCUM"));
    let code = code(comp(&rep, 1));
    Unit {
        unit: comp(&rep, 2).or_else(|| code.clone()),
        ucum: code.filter(|_| is_ucum),
    }
}

/// A quantity of `value` in `unit`.
fn quantity(value: Decimal, comparator: Option<QuantityComparator>, unit: &Unit) -> Quantity {
    Quantity {
        value: Some(value),
        comparator,
        unit: unit.unit.clone(),
        system: unit.ucum.as_ref().map(|_| systems::UCUM.to_string()),
        code: unit.ucum.clone(),
    }
}

/// A number, possibly after a comparator (`<0.01`), as a quantity.
fn bounded(text: &str, unit: &Unit) -> Option<Quantity> {
    let (comparator, rest) = QuantityComparator::split(text.trim());
    Decimal::parse(rest).map(|v| quantity(v, comparator, unit))
}

/// OBX-5 → the value, read as OBX-2 says. `None` when OBX-5 is empty or of
/// a type not carried.
pub(super) fn value(ctx: &Ctx<'_, '_>, obx: &Segment<'_>, unit: &Unit) -> Result<Option<ObservationValue>, MapError> {
    let values: Vec<_> = reps(obx, 5).map(|(_, r)| r).collect();
    let Some(rep) = values.first() else {
        return Ok(None);
    };
    let value_type = code(first(obx, 2).and_then(|r| comp(&r, 1))).ok_or(MapError::MissingField {
        location: loc(obx, "OBX", 2),
        why: "the value type says how to read OBX-5",
    })?;
    let at = loc(obx, "OBX", 5);
    let invalid = |why: &str| MapError::InvalidField {
        location: at.clone(),
        why: why.to_string(),
    };
    Ok(match value_type.to_ascii_uppercase().as_str() {
        "NM" => {
            let t = text(rep.as_value()).unwrap_or_default();
            let q = bounded(&t, unit).ok_or_else(|| invalid("a NM value must be a decimal number"))?;
            Some(ObservationValue::Quantity(q))
        }
        "SN" => structured_numeric(rep, unit),
        "ST" | "TX" | "FT" | "TM" => {
            let lines: Vec<String> = values.iter().filter_map(|r| text(r.as_value())).collect();
            (!lines.is_empty()).then(|| ObservationValue::String(lines.join("\n")))
        }
        "CE" | "CWE" | "CNE" | "CF" => cwe(rep, None).map(ObservationValue::CodeableConcept),
        "ID" | "IS" => code(comp(rep, 1)).map(|c| {
            ObservationValue::CodeableConcept(CodeableConcept::coded(Coding {
                code: Some(c),
                ..Coding::default()
            }))
        }),
        "DT" | "DTM" | "TS" => date_time(comp(rep, 1), at.clone(), ctx.zone)?.map(ObservationValue::DateTime),
        _ => None,
    })
}

/// SN: `comparator ^ num1 ^ separator ^ num2`. A single number (with its
/// comparator) is a quantity; a range or ratio is kept as its text.
fn structured_numeric(rep: &Repetition<'_>, unit: &Unit) -> Option<ObservationValue> {
    let comparator = comp(rep, 1).unwrap_or_default();
    let (num1, separator, num2) = (comp(rep, 2), comp(rep, 3), comp(rep, 4));
    if separator.is_none() && num2.is_none() {
        let with = if comparator == "=" {
            String::new()
        } else {
            comparator.clone()
        };
        if let Some(q) = num1.as_deref().and_then(|n| bounded(&format!("{with}{n}"), unit)) {
            return Some(ObservationValue::Quantity(q));
        }
    }
    let joined: String = [Some(comparator), num1, separator, num2]
        .into_iter()
        .flatten()
        .collect();
    (!joined.is_empty()).then_some(ObservationValue::String(joined))
}

/// The `-` between the two bounds of `low-high` (not the sign of a negative low).
fn range_dash(text: &str) -> Option<usize> {
    text.char_indices()
        .skip(1)
        .find(|&(i, c)| {
            c == '-'
                && text[..i]
                    .trim_end()
                    .chars()
                    .last()
                    .is_some_and(|p| p.is_ascii_digit() || p == '.')
        })
        .map(|(i, _)| i)
}

/// OBX-7 → reference range: `3.5-5.1` (low and high), `<5` / `<=5` (high),
/// `>10` / `>=10` (low), anything else as text. Bounds FHIR cannot express
/// exactly (`<` and `>` are exclusive, FHIR's are inclusive) keep the text too.
pub(super) fn reference_range(obx: &Segment<'_>, unit: &Unit) -> Option<ObservationReferenceRange> {
    let raw = first(obx, 7).and_then(|r| text(r.as_value()))?;
    let number = |s: &str| Decimal::parse(s).map(|v| quantity(v, None, unit));
    let mut range = ObservationReferenceRange::default();
    match QuantityComparator::split(&raw) {
        (Some(c), rest) => {
            let bound = number(rest);
            let exclusive = matches!(c, QuantityComparator::Less | QuantityComparator::Greater);
            match c {
                QuantityComparator::Less | QuantityComparator::LessOrEqual => range.high = bound,
                QuantityComparator::Greater | QuantityComparator::GreaterOrEqual => range.low = bound,
            }
            if exclusive || (range.low.is_none() && range.high.is_none()) {
                range.text = Some(raw);
            }
        }
        (None, _) => match range_dash(&raw).map(|i| (number(&raw[..i]), number(&raw[i + 1..]))) {
            Some((Some(low), Some(high))) => {
                range.low = Some(low);
                range.high = Some(high);
            }
            _ => range.text = Some(raw),
        },
    }
    Some(range)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hl7::parser::Message;

    fn obx(fields: &str) -> Vec<u8> {
        format!("MSH|^~\\&|LAB|H|M|H|20240101||ORU^R01|1|P|2.5\rOBX|{fields}\r").into_bytes()
    }

    fn range_of(obx7: &str) -> ObservationReferenceRange {
        let raw = obx(&format!("1|NM|2823-3^K^LN||4|mmol/L^mmol/L^UCUM|{obx7}"));
        let msg = Message::parse(&raw).unwrap();
        let seg = msg.segment("OBX", 1).unwrap();
        reference_range(&seg, &unit(&seg)).unwrap()
    }

    fn bounds(r: &ObservationReferenceRange) -> (Option<f64>, Option<f64>, Option<&str>) {
        let v = |q: &Option<Quantity>| q.as_ref().and_then(|q| q.value).map(Decimal::value);
        (v(&r.low), v(&r.high), r.text.as_deref())
    }

    #[test]
    fn reference_ranges() {
        assert_eq!(bounds(&range_of("3.5-5.1")), (Some(3.5), Some(5.1), None));
        assert_eq!(bounds(&range_of("3.5 - 5.1")), (Some(3.5), Some(5.1), None));
        assert_eq!(bounds(&range_of("-1.5-2")), (Some(-1.5), Some(2.0), None));
        assert_eq!(bounds(&range_of("-5--1")), (Some(-5.0), Some(-1.0), None));
        assert_eq!(bounds(&range_of("<5")), (None, Some(5.0), Some("<5")));
        assert_eq!(bounds(&range_of("<=5")), (None, Some(5.0), None));
        assert_eq!(bounds(&range_of(">10")), (Some(10.0), None, Some(">10")));
        assert_eq!(bounds(&range_of(">=10")), (Some(10.0), None, None));
        assert_eq!(bounds(&range_of("negative")), (None, None, Some("negative")));
        assert_eq!(bounds(&range_of("<high")), (None, None, Some("<high")));
        assert_eq!(bounds(&range_of("5")), (None, None, Some("5")));
        let r = range_of("3.5-5.1");
        assert_eq!(r.low.and_then(|q| q.code).as_deref(), Some("mmol/L"));
    }
}
