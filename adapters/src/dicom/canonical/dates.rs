//! DICOM DA / TM / Timezone Offset → FHIR `dateTime`.
//!
//! A date and time become an instant only when the data set names its zone
//! (Timezone Offset From UTC, 0008,0201): FHIR requires a zone with a time,
//! and guessing one would state a wrong instant. Without it the date alone is
//! kept. Anything unreadable is absent, never an error: a modality's slip in
//! a date must not cost the instance.

use chrono::{NaiveDate, NaiveTime};
use medbus_bus::canonical::DateTime;

/// `started` of an ImagingStudy from Study Date, Study Time and the offset.
pub fn study_started(date: Option<&str>, time: Option<&str>, offset: Option<&str>) -> Option<DateTime> {
    let date = parse_date(date?)?;
    let full = match (time.and_then(parse_time), offset.and_then(parse_offset)) {
        (Some(t), Some(z)) => format!("{}T{t}{z}", date.format("%Y-%m-%d")),
        _ => date.format("%Y-%m-%d").to_string(),
    };
    DateTime::parse(&full).ok()
}

/// DA: `YYYYMMDD`, or the pre-1993 `YYYY.MM.DD`.
fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let plain: String = match s.len() {
        8 => s.to_string(),
        10 if s.as_bytes()[4] == b'.' && s.as_bytes()[7] == b'.' => s.replace('.', ""),
        _ => return None,
    };
    if !plain.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(&plain, "%Y%m%d").ok()
}

/// TM: `HH`, `HHMM`, `HHMMSS` or `HHMMSS.F{1,6}` (or the old `HH:MM:SS`), as
/// FHIR's `hh:mm:ss[.f]`. A leap second (60) is not kept as such.
fn parse_time(s: &str) -> Option<String> {
    let s = s.trim().replace(':', "");
    let (whole, fraction) = match s.split_once('.') {
        Some((w, f)) if w.len() == 6 && (1..=6).contains(&f.len()) => (w, Some(f)),
        Some(_) => return None,
        None => (s.as_str(), None),
    };
    if !whole.bytes().all(|b| b.is_ascii_digit()) || fraction.is_some_and(|f| !f.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let part = |at: usize| whole.get(at..at + 2).map_or(Some(0), |p| p.parse::<u32>().ok());
    if ![2, 4, 6].contains(&whole.len()) {
        return None;
    }
    let (h, m, sec) = (part(0)?, part(2)?, part(4)?);
    NaiveTime::from_hms_opt(h, m, sec)?;
    Some(match fraction {
        Some(f) => format!("{h:02}:{m:02}:{sec:02}.{f}"),
        None => format!("{h:02}:{m:02}:{sec:02}"),
    })
}

/// Timezone Offset From UTC: `+HHMM` or `-HHMM` (−12:00 … +14:00) → `+HH:MM`.
fn parse_offset(s: &str) -> Option<String> {
    let s = s.trim();
    let (sign, digits) = s.split_at_checked(1)?;
    if !matches!(sign, "+" | "-") || digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u32, u32) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
    let minutes = h * 60 + m;
    let fits = m < 60
        && if sign == "+" {
            minutes <= 14 * 60
        } else {
            minutes <= 12 * 60
        };
    fits.then(|| format!("{sign}{}:{}", &digits[..2], &digits[2..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(d: &str, t: Option<&str>, z: Option<&str>) -> Option<String> {
        study_started(Some(d), t, z).map(|s| s.as_str().to_string())
    }

    #[test]
    fn date_time_and_zone_make_an_instant() {
        assert_eq!(
            started("20261201", Some("101530.25"), Some("+0100")).as_deref(),
            Some("2026-12-01T10:15:30.25+01:00")
        );
        assert_eq!(
            started("20261201", Some("0915"), Some("-0500")).as_deref(),
            Some("2026-12-01T09:15:00-05:00")
        );
        assert_eq!(
            started("2026.12.01", Some("09:15:07"), Some("+0000")).as_deref(),
            Some("2026-12-01T09:15:07+00:00")
        );
    }

    #[test]
    fn without_a_zone_or_a_good_time_the_date_alone() {
        assert_eq!(started("20261201", Some("101530"), None).as_deref(), Some("2026-12-01"));
        assert_eq!(
            started("20261201", Some("256000"), Some("+0100")).as_deref(),
            Some("2026-12-01")
        );
        assert_eq!(
            started("20261201", Some("10.5"), Some("+0100")).as_deref(),
            Some("2026-12-01")
        );
        assert_eq!(
            started("20261201", Some("101530"), Some("+2500")).as_deref(),
            Some("2026-12-01")
        );
        assert_eq!(
            started("20261201", Some("101530"), Some("0100")).as_deref(),
            Some("2026-12-01")
        );
        assert_eq!(started("20261201", None, Some("+0100")).as_deref(), Some("2026-12-01"));
    }

    #[test]
    fn bad_dates_are_absent() {
        for bad in [
            "",
            "2026",
            "20261301",
            "20260230",
            "2026120X",
            "20261201000",
            "2026-12-01",
        ] {
            assert_eq!(started(bad, Some("101530"), Some("+0100")), None, "{bad:?}");
        }
        assert_eq!(study_started(None, Some("101530"), Some("+0100")), None);
    }
}
