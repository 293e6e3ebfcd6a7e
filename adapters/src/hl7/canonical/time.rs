//! HL7 v2 date/time (DTM, and the TS that wraps it) to FHIR `date` and `dateTime`.
//!
//! DTM is `YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`: precision is
//! whatever the sender gave. FHIR `date` keeps year or month precision as is
//! (`1980`, `1980-04`); FHIR `dateTime` needs seconds and a zone once there is
//! a time, so an hour- or minute-precision time is padded with zeros and a
//! time without a zone gets the message's zone (see [`MapOptions`](super::MapOptions)).

use chrono::FixedOffset;
use medbus_bus::canonical::{Date, DateTime};

/// A DTM split into its parts; all digits, ranges checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Dtm<'a> {
    date: &'a str,
    time: Option<&'a str>,
    fraction: Option<&'a str>,
    /// Offset from UTC in seconds, when the value carries one.
    pub(super) offset: Option<i32>,
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// Two digits at `at` as a number (the caller checked they are digits).
fn two(s: &str, at: usize) -> u32 {
    s.get(at..at + 2).and_then(|d| d.parse().ok()).unwrap_or(0)
}

impl<'a> Dtm<'a> {
    /// Parses the first component of a TS/DTM (`19800412^D` reads `19800412`).
    pub(super) fn parse(text: &'a str) -> Result<Self, &'static str> {
        let text = text.split('^').next().unwrap_or_default().trim();
        let (main, offset) = match text.find(['+', '-']) {
            Some(i) => (
                text.get(..i).unwrap_or_default(),
                Some(text.get(i..).unwrap_or_default()),
            ),
            None => (text, None),
        };
        let (digits, fraction) = match main.split_once('.') {
            Some((d, f)) => (d, Some(f)),
            None => (main, None),
        };
        if !all_digits(digits) || ![4, 6, 8, 10, 12, 14].contains(&digits.len()) {
            return Err("a date/time must be YYYY[MM[DD[HH[MM[SS]]]]] digits");
        }
        if let Some(f) = fraction {
            if digits.len() != 14 || f.is_empty() || f.len() > 4 || !all_digits(f) {
                return Err("fractional seconds must follow seconds and be 1 to 4 digits");
            }
        }
        if digits.len() >= 6 && !(1..=12).contains(&two(digits, 4)) {
            return Err("the month must be 01 to 12");
        }
        if digits.len() >= 8 && !(1..=31).contains(&two(digits, 6)) {
            return Err("the day must be 01 to 31");
        }
        let limits = [
            (8, 23, "the hour must be 00 to 23"),
            (10, 59, "the minutes must be 00 to 59"),
        ];
        for (at, max, why) in limits.into_iter().chain([(12, 59, "the seconds must be 00 to 59")]) {
            if digits.len() > at && two(digits, at) > max {
                return Err(why);
            }
        }
        let offset = match offset {
            None => None,
            Some(z) => {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                let hhmm = z.get(1..).unwrap_or_default();
                if hhmm.len() != 4 || !all_digits(hhmm) || two(hhmm, 2) > 59 {
                    return Err("the time zone must be +HHMM or -HHMM");
                }
                Some(sign * (two(hhmm, 0) * 3600 + two(hhmm, 2) * 60) as i32)
            }
        };
        let (date, time) = digits.split_at(digits.len().min(8));
        Ok(Dtm {
            date,
            time: (!time.is_empty()).then_some(time),
            fraction,
            offset,
        })
    }

    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    fn date_text(&self) -> String {
        // `get` rather than indexing: the lengths were checked, but a slip must not panic.
        let part = |from: usize, to: usize| self.date.get(from..to).unwrap_or_default();
        match self.date.len() {
            4 => self.date.to_string(),
            6 => format!("{}-{}", part(0, 4), part(4, 6)),
            _ => format!("{}-{}-{}", part(0, 4), part(4, 6), part(6, 8)),
        }
    }

    /// The date, at the precision given; any time is dropped (a birth date).
    pub(super) fn to_date(&self) -> Result<Date, &'static str> {
        Date::parse(&self.date_text()).map_err(|e| e.reason)
    }

    /// The date/time, a time padded to seconds, with the value's own zone or else `zone`.
    pub(super) fn to_date_time(&self, zone: FixedOffset) -> Result<DateTime, &'static str> {
        let date = self.date_text();
        let Some(time) = self.time else {
            return DateTime::parse(&date).map_err(|e| e.reason);
        };
        let padded = format!("{time:0<6}");
        let part = |from: usize| padded.get(from..from + 2).unwrap_or("00");
        let fraction = self.fraction.map(|f| format!(".{f}")).unwrap_or_default();
        let offset = self.offset.unwrap_or(zone.local_minus_utc());
        let zone = if offset == 0 {
            "Z".to_string()
        } else {
            let sign = if offset < 0 { '-' } else { '+' };
            let abs = offset.unsigned_abs();
            format!("{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60)
        };
        let text = format!("{date}T{}:{}:{}{fraction}{zone}", part(0), part(2), part(4));
        DateTime::parse(&text).map_err(|e| e.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    #[test]
    fn dates_keep_their_precision() {
        for (hl7, fhir) in [
            ("1980", "1980"),
            ("198004", "1980-04"),
            ("19800412", "1980-04-12"),
            ("198004121030", "1980-04-12"),
            ("19800412^D", "1980-04-12"),
            ("19800412-0500", "1980-04-12"),
        ] {
            assert_eq!(Dtm::parse(hl7).unwrap().to_date().unwrap().as_str(), fhir, "{hl7}");
        }
    }

    #[test]
    fn date_times_are_padded_and_zoned() {
        let est = FixedOffset::west_opt(5 * 3600).unwrap();
        for (hl7, zone, fhir) in [
            ("2024", utc(), "2024"),
            ("20240315", est, "2024-03-15"),
            ("2024031508", utc(), "2024-03-15T08:00:00Z"),
            ("202403150830", est, "2024-03-15T08:30:00-05:00"),
            ("20240315083015.25+0130", est, "2024-03-15T08:30:15.25+01:30"),
            ("20240315083015-0000", est, "2024-03-15T08:30:15Z"),
        ] {
            assert_eq!(
                Dtm::parse(hl7).unwrap().to_date_time(zone).unwrap().as_str(),
                fhir,
                "{hl7}"
            );
        }
    }

    #[test]
    fn bad_values_say_why() {
        for bad in [
            "",
            "80",
            "19801",
            "1980a412",
            "19801301",
            "19800432",
            "2024031525",
            "202403150860",
            "20240315083000.",
            "2024031508.5",
            "20240315083000+05",
            "20240315083000+0575",
        ] {
            assert!(Dtm::parse(bad).is_err(), "{bad:?}");
        }
        // Digits fine, calendar not: 31 April.
        assert!(Dtm::parse("19800431").unwrap().to_date().is_err());
        // A zone FHIR cannot express.
        assert!(Dtm::parse("20240315083000+1500").unwrap().to_date_time(utc()).is_err());
    }
}
