//! What a route file says, as serde reads it: plain data, checked and compiled
//! by [`compile`](super::compile). Every field is optional here so that a
//! missing key is reported by the checks with its line, not as a serde error.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

/// One `[routes.<name>]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RouteSpec {
    /// What the route is for, shown by `medbus route test`.
    pub description: Option<String>,
    /// Inbound channels whose messages the route considers (`"*"`: all).
    pub channels: Option<Strings>,
    /// The filter; absent takes every message of the channels.
    pub when: Option<WhenSpec>,
    /// Changes applied in order.
    pub transform: Vec<StepSpec>,
    /// Where the message goes.
    pub to: Option<ToSpec>,
    /// False keeps the route in the files but takes nothing. Default true.
    pub enabled: Option<bool>,
}

/// A filter: every key present must hold (an implicit `all`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WhenSpec {
    /// MSH-9 patterns (`ADT^A01`, `ADT^*`, `ORU`); any may match.
    #[serde(rename = "type")]
    pub message_type: Option<Strings>,
    /// MSH-4.1 patterns; any may match.
    pub sending_facility: Option<Strings>,
    /// MSH-3.1 patterns; any may match.
    pub sending_application: Option<Strings>,
    /// A field path tested by the operators beside it.
    pub field: Option<String>,
    /// The value equals this text (decoded).
    pub equals: Option<Text>,
    /// The value is one of these.
    #[serde(rename = "in")]
    pub one_of: Option<Strings>,
    /// The value matches this regular expression (anywhere; anchor with `^…$`).
    pub regex: Option<String>,
    /// The value is a number less than this.
    pub lt: Option<f64>,
    /// … at most this.
    pub le: Option<f64>,
    /// … more than this.
    pub gt: Option<f64>,
    /// … at least this.
    pub ge: Option<f64>,
    /// The field has a value (true) or has none (false).
    pub exists: Option<bool>,
    /// Every condition holds.
    pub all: Option<Vec<WhenSpec>>,
    /// At least one condition holds.
    pub any: Option<Vec<WhenSpec>>,
    /// The condition does not hold.
    pub not: Option<Box<WhenSpec>>,
}

/// One transform step: exactly one of `set`, `copy`, `clear`, `translate`, `map_code`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StepSpec {
    /// Path to write `value` to.
    pub set: Option<String>,
    /// The text written by `set` (escaped for the message).
    pub value: Option<Text>,
    /// Path to copy from, to `to`.
    pub copy: Option<String>,
    /// Where `copy` writes.
    pub to: Option<String>,
    /// Path to empty.
    pub clear: Option<String>,
    /// Path whose value is looked up in `table` and replaced.
    pub translate: Option<String>,
    /// Coded field (CWE/CE) mapped to the system named by `table`'s header.
    pub map_code: Option<String>,
    /// Code table, relative to the config file's directory (`tables/lab-codes.csv`).
    pub table: Option<String>,
    /// Written when the table has no entry (instead of `on_miss`).
    pub default: Option<Text>,
    /// `keep` (default) or `error` when the table has no entry.
    pub on_miss: Option<String>,
}

/// Where a route sends what it takes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ToSpec {
    /// Domain services (`registration`, `orders`, `results`, `billing`, `notifications`, `imaging`).
    pub services: Option<Strings>,
    /// Destination names from `[destinations]` in the config file.
    pub destinations: Option<Strings>,
}

/// A scalar written as text: `"A"`, `5`, `2.5` and `true` all read as their text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

/// One text or a list of them (`"adt"` or `["adt", "lab"]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Strings(pub Vec<String>);

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor).map(Text)
    }
}

struct StringsVisitor;

impl<'de> Visitor<'de> for StringsVisitor {
    type Value = Strings;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a list of strings")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Strings, E> {
        Ok(Strings(vec![v.to_string()]))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Strings, E> {
        Ok(Strings(vec![v.to_string()]))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Strings, E> {
        Ok(Strings(vec![v.to_string()]))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strings, A::Error> {
        let mut out = Vec::new();
        while let Some(Text(t)) = seq.next_element::<Text>()? {
            out.push(t);
        }
        Ok(Strings(out))
    }
}

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StringsVisitor)
    }
}
