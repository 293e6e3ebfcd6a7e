//! FHIR primitive types whose lexical form is constrained: [`Date`] and
//! [`DateTime`]. They are strings on the wire, checked when built and when
//! read, so that an invalid date can never reach a FHIR consumer.

use std::fmt;

use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Why a string is not a FHIR `date` or `dateTime`. The value itself is not
/// kept: it may be a birth date, and errors end up in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a FHIR {kind}: {reason}")]
pub struct PrimitiveError {
    /// `date` or `dateTime`.
    pub kind: &'static str,
    /// What is wrong, in words.
    pub reason: &'static str,
}

/// FHIR `date`: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, a real calendar date, year 0001 to 9999.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Date(String);

/// FHIR `dateTime`: a [`Date`] form, or `YYYY-MM-DDThh:mm:ss[.f+](Z|±hh:mm)`.
/// FHIR requires seconds and a time zone whenever a time is given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DateTime(String);

fn digits(s: &str, len: usize) -> Option<u32> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Checks the date part and returns its precision (1 = year, 2 = month, 3 = day).
fn check_date(s: &str, kind: &'static str) -> Result<usize, PrimitiveError> {
    let err = |reason| PrimitiveError { kind, reason };
    let mut parts = s.split('-');
    let year = parts
        .next()
        .and_then(|y| digits(y, 4))
        .ok_or(err("the year must be 4 digits"))?;
    if year == 0 {
        return Err(err("year 0000 does not exist"));
    }
    let Some(m) = parts.next() else { return Ok(1) };
    let month = digits(m, 2).ok_or(err("the month must be 2 digits"))?;
    if !(1..=12).contains(&month) {
        return Err(err("the month must be 01 to 12"));
    }
    let Some(d) = parts.next() else { return Ok(2) };
    let day = digits(d, 2).ok_or(err("the day must be 2 digits"))?;
    // Year 0001..9999 always fits in i32.
    if NaiveDate::from_ymd_opt(year as i32, month, day).is_none() {
        return Err(err("the day does not exist in that month"));
    }
    if parts.next().is_some() {
        return Err(err("too many '-' separated parts"));
    }
    Ok(3)
}

/// Checks `hh:mm:ss[.f+](Z|±hh:mm)`.
fn check_time(s: &str) -> Result<(), PrimitiveError> {
    let err = |reason| PrimitiveError {
        kind: "dateTime",
        reason,
    };
    let split = s
        .find(['Z', '+', '-'])
        .ok_or(err("a time needs a time zone (Z or ±hh:mm)"))?;
    let (time, zone) = s.split_at(split);
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (time, None),
    };
    let mut hms = hms.split(':');
    let (h, m, sec) = (hms.next(), hms.next(), hms.next());
    let ok = |v: Option<&str>, max| v.and_then(|v| digits(v, 2)).is_some_and(|v| v <= max);
    if !ok(h, 23) || !ok(m, 59) || !ok(sec, 60) || hms.next().is_some() {
        return Err(err("the time must be hh:mm:ss (seconds are required)"));
    }
    if fraction.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return Err(err("fractional seconds must be digits"));
    }
    if zone == "Z" {
        return Ok(());
    }
    let (zh, zm) = zone
        .get(1..)
        .and_then(|z| z.split_once(':'))
        .and_then(|(h, m)| Some((digits(h, 2)?, digits(m, 2)?)))
        .ok_or(err("the time zone must be Z or ±hh:mm"))?;
    if zm > 59 || zh > 14 || (zh == 14 && zm != 0) {
        return Err(err("the time zone offset is out of range"));
    }
    Ok(())
}

impl Date {
    /// Checks `s` and wraps it.
    pub fn parse(s: &str) -> Result<Self, PrimitiveError> {
        check_date(s, "date")?;
        Ok(Date(s.to_string()))
    }

    /// The text, e.g. `1980-04`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl DateTime {
    /// Checks `s` and wraps it.
    pub fn parse(s: &str) -> Result<Self, PrimitiveError> {
        match s.split_once('T') {
            None => {
                check_date(s, "dateTime")?;
            }
            Some((date, time)) => {
                if check_date(date, "dateTime")? != 3 {
                    return Err(PrimitiveError {
                        kind: "dateTime",
                        reason: "a time needs a full date",
                    });
                }
                check_time(time)?;
            }
        }
        Ok(DateTime(s.to_string()))
    }

    /// The text, e.g. `2024-03-15T08:30:00-05:00`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the value has a time (and so a time zone), not only a date.
    pub fn has_time(&self) -> bool {
        self.0.contains('T')
    }

    /// The instant in UTC; a partial value (`2024`, `2024-03-15`) is read as
    /// its first moment in UTC, which is as good as it gets without a zone.
    pub fn to_utc(&self) -> Option<chrono::DateTime<Utc>> {
        let full = match self.0.len() {
            4 => format!("{}-01-01T00:00:00Z", self.0),
            7 => format!("{}-01T00:00:00Z", self.0),
            10 => format!("{}T00:00:00Z", self.0),
            _ => self.0.clone(),
        };
        chrono::DateTime::parse_from_rfc3339(&full)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

impl From<Date> for DateTime {
    /// Every FHIR `date` is also a valid `dateTime`.
    fn from(d: Date) -> Self {
        DateTime(d.0)
    }
}

macro_rules! string_impls {
    ($t:ident) => {
        impl TryFrom<String> for $t {
            type Error = PrimitiveError;
            fn try_from(s: String) -> Result<Self, PrimitiveError> {
                $t::parse(&s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
string_impls!(Date);
string_impls!(DateTime);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_each_precision() {
        for ok in ["1980", "1980-04", "1980-04-12", "2024-02-29", "0001"] {
            assert_eq!(Date::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "80",
            "0000",
            "1980-4",
            "1980-13",
            "1980-00",
            "2023-02-29",
            "1980-04-31",
            "1980-04-12-1",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Date::parse("1980-04-12T10:00:00Z").is_err());
    }

    #[test]
    fn date_times_need_seconds_and_a_zone() {
        for ok in [
            "2024",
            "2024-03",
            "2024-03-15",
            "2024-03-15T08:30:00Z",
            "2024-03-15T08:30:00.125-05:00",
            "2024-03-15T23:59:60+14:00",
        ] {
            assert_eq!(DateTime::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "2024-03-15T08:30",
            "2024-03-15T08:30:00",
            "2024-03T08:30:00Z",
            "2024-03-15T24:00:00Z",
            "2024-03-15T08:30:00+15:00",
            "2024-03-15T08:30:00+0500",
            "2024-03-15T08:30:00.Z",
        ] {
            assert!(DateTime::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn errors_never_carry_the_value() {
        let e = Date::parse("1980-13-01").unwrap_err();
        assert!(!e.to_string().contains("1980"), "{e}");
    }

    #[test]
    fn serde_checks_on_the_way_in() {
        let d: Date = serde_json::from_str("\"1980-04\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1980-04\"");
        assert!(serde_json::from_str::<Date>("\"1980-4\"").is_err());
        assert!(serde_json::from_str::<DateTime>("\"2024-03-15T08:30\"").is_err());
    }

    #[test]
    fn utc_instants() {
        let t = DateTime::parse("2024-03-15T08:30:00-05:00").unwrap().to_utc().unwrap();
        assert_eq!(t.to_rfc3339(), "2024-03-15T13:30:00+00:00");
        let d = DateTime::parse("2024-03").unwrap().to_utc().unwrap();
        assert_eq!(d.to_rfc3339(), "2024-03-01T00:00:00+00:00");
    }
}
