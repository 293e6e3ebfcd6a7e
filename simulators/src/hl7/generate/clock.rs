//! Simulated time. Timestamps come from a clock that starts at a fixed instant and moves on
//! by a few seconds per message, never from the wall clock, so a seed gives the same bytes.

/// Seconds since 1970-01-01T00:00:00 (UTC; HL7 timestamps here carry no offset).
pub type Seconds = i64;

/// 2024-03-01T08:00:00, the start of every simulated day.
pub const START: Seconds = 1_709_280_000;

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// HL7 DTM to the second: `YYYYMMDDHHMMSS`.
pub fn dtm(t: Seconds) -> String {
    let (y, mo, d) = civil(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!("{y:04}{mo:02}{d:02}{:02}{:02}{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// HL7 DT: `YYYYMMDD`.
pub fn date(t: Seconds) -> String {
    let (y, mo, d) = civil(t.div_euclid(86_400));
    format!("{y:04}{mo:02}{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(dtm(START), "20240301080000");
        assert_eq!(dtm(0), "19700101000000");
        assert_eq!(date(-86_400), "19691231");
        // 2000-02-29 exists.
        assert_eq!(date(951_782_400), "20000229");
    }
}
