//! FHIR numbers and amounts: [`Decimal`], [`Quantity`] (a value with a UCUM
//! unit, as results and reference ranges carry), [`QuantityComparator`] and
//! [`Money`] (charges).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// FHIR `decimal`: a finite number, written as a JSON number.
///
/// Held as an `f64`, so trailing zeros (`1.20`) are not kept: the canonical
/// model has no arbitrary-precision numbers, and a JSON reader would drop
/// them anyway. NaN and infinities cannot be built, which is what makes the
/// `Eq` below sound.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Decimal(f64);

impl Eq for Decimal {}

impl Decimal {
    /// The number, `None` when it is not finite (JSON cannot carry it).
    pub fn new(value: f64) -> Option<Self> {
        value.is_finite().then_some(Decimal(value))
    }

    /// Reads a decimal as HL7 (NM) and FHIR write it: optional sign, digits,
    /// optional fraction; no exponent, no blanks inside. `None` otherwise.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
        let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
            return None;
        }
        t.parse::<f64>().ok().and_then(Decimal::new)
    }

    /// The value.
    pub fn value(self) -> f64 {
        self.0
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Whole numbers go out as integers (`1`, not `1.0`), as FHIR examples write them.
        if self.0.fract() == 0.0 && self.0.abs() < 9.0e15 {
            s.serialize_i64(self.0 as i64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        Decimal::new(v).ok_or_else(|| serde::de::Error::custom("a decimal must be finite"))
    }
}

/// FHIR `Quantity.comparator`: how to read the value when it is not exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QuantityComparator {
    /// The real value is below the stated one.
    #[serde(rename = "<")]
    Less,
    /// The real value is at most the stated one.
    #[serde(rename = "<=")]
    LessOrEqual,
    /// The real value is at least the stated one.
    #[serde(rename = ">=")]
    GreaterOrEqual,
    /// The real value is above the stated one.
    #[serde(rename = ">")]
    Greater,
}

impl QuantityComparator {
    /// The comparator a text starts with (`<=5` → `<=`), and the rest.
    pub fn split(text: &str) -> (Option<Self>, &str) {
        for (prefix, c) in [
            ("<=", QuantityComparator::LessOrEqual),
            (">=", QuantityComparator::GreaterOrEqual),
            ("<", QuantityComparator::Less),
            (">", QuantityComparator::Greater),
        ] {
            if let Some(rest) = text.strip_prefix(prefix) {
                return (Some(c), rest);
            }
        }
        (None, text)
    }
}

/// FHIR `Quantity`: a measured amount, its unit as displayed, and the unit
/// coded (UCUM: `system` <http://unitsofmeasure.org>, `code` `mmol/L`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quantity {
    /// The value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Decimal>,
    /// `<`, `<=`, `>=`, `>` when the value is a bound, not a measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparator: Option<QuantityComparator>,
    /// The unit as people read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The unit's code system (UCUM), set only together with `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The unit's code in `system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// FHIR `Money`: an amount in a currency (ISO 4217 code).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    /// The amount; negative for a credit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Decimal>,
    /// ISO 4217 currency code (`USD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn decimals_read_as_hl7_writes_them() {
        for (text, value) in [("5", 5.0), ("-1.5", -1.5), ("+0.03", 0.03), (".5", 0.5), ("7.", 7.0)] {
            assert_eq!(Decimal::parse(text).map(Decimal::value), Some(value), "{text}");
        }
        for bad in ["", ".", "1e5", "1.2.3", "NaN", "inf", "1 000", "--1", "0x10"] {
            assert_eq!(Decimal::parse(bad), None, "{bad}");
        }
        assert_eq!(Decimal::new(f64::NAN), None);
    }

    #[test]
    fn decimals_are_json_numbers() {
        let q = Quantity {
            value: Decimal::parse("4.20"),
            comparator: None,
            unit: Some("mmol/L".into()),
            system: Some("http://unitsofmeasure.org".into()),
            code: Some("mmol/L".into()),
        };
        let v = serde_json::to_value(&q).unwrap();
        assert_eq!(
            v,
            json!({"value": 4.2, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"})
        );
        assert_eq!(serde_json::from_value::<Quantity>(v).unwrap(), q);
        let whole = Money {
            value: Decimal::parse("79.00"),
            currency: Some("USD".into()),
        };
        assert_eq!(
            serde_json::to_string(&whole).unwrap(),
            r#"{"value":79,"currency":"USD"}"#
        );
        assert_eq!(
            serde_json::from_str::<Money>(r#"{"value":79,"currency":"USD"}"#).unwrap(),
            whole
        );
    }

    #[test]
    fn comparators() {
        assert_eq!(
            QuantityComparator::split("<=5"),
            (Some(QuantityComparator::LessOrEqual), "5")
        );
        assert_eq!(
            QuantityComparator::split(">10"),
            (Some(QuantityComparator::Greater), "10")
        );
        assert_eq!(QuantityComparator::split("3.5"), (None, "3.5"));
        assert_eq!(
            serde_json::to_value(QuantityComparator::GreaterOrEqual).unwrap(),
            json!(">=")
        );
    }
}
