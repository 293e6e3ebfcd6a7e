//! The HL7 tables of result status: 0123 (OBR-25, the report) and 0085
//! (OBX-11, each observation), as FHIR statuses.

use medbus_bus::canonical::{DiagnosticReportStatus, ObservationStatus};

/// Table 0123 → DiagnosticReport.status: O/I/S (ordered, no result, scheduled)
/// registered; A (some results) partial; P and R (not verified) preliminary;
/// C corrected; M (corrected, not final) amended; F final; X cancelled; Z/Y
/// (no record of the order) unknown.
pub(super) fn report_status(code: &str) -> Option<DiagnosticReportStatus> {
    use DiagnosticReportStatus as S;
    Some(match code {
        "O" | "I" | "S" => S::Registered,
        "A" => S::Partial,
        "P" | "R" => S::Preliminary,
        "C" => S::Corrected,
        "M" => S::Amended,
        "F" => S::Final,
        "X" => S::Cancelled,
        "Y" | "Z" => S::Unknown,
        _ => return None,
    })
}

/// Table 0085 → Observation.status: C corrected; A amended; D (delete) and W
/// (wrong, withdrawn) entered-in-error; F and U (made final) final; I and O
/// (pending, order only) registered; P, R, S (not verified, partial)
/// preliminary; N (not asked) and X (cannot be obtained) cancelled.
pub(super) fn observation_status(code: &str) -> Option<ObservationStatus> {
    use ObservationStatus as S;
    Some(match code {
        "C" => S::Corrected,
        "A" => S::Amended,
        "D" | "W" => S::EnteredInError,
        "F" | "U" => S::Final,
        "I" | "O" => S::Registered,
        "P" | "R" | "S" => S::Preliminary,
        "N" | "X" => S::Cancelled,
        _ => return None,
    })
}

/// A report's status from its observations when OBR-25 is empty: any
/// correction makes it corrected, all final makes it final, any preliminary
/// preliminary; otherwise the source did not say.
pub(super) fn report_status_from(observations: &[ObservationStatus]) -> DiagnosticReportStatus {
    use ObservationStatus as O;
    if observations.contains(&O::Corrected) {
        DiagnosticReportStatus::Corrected
    } else if observations.contains(&O::Amended) {
        DiagnosticReportStatus::Amended
    } else if !observations.is_empty() && observations.iter().all(|s| *s == O::Final) {
        DiagnosticReportStatus::Final
    } else if observations.contains(&O::Preliminary) {
        DiagnosticReportStatus::Preliminary
    } else {
        DiagnosticReportStatus::Unknown
    }
}

/// The observation status an OBX without OBX-11 takes from its report.
pub(super) fn observation_status_from(report: DiagnosticReportStatus) -> ObservationStatus {
    use DiagnosticReportStatus as R;
    match report {
        R::Registered => ObservationStatus::Registered,
        R::Partial | R::Preliminary => ObservationStatus::Preliminary,
        R::Final | R::Appended => ObservationStatus::Final,
        R::Amended => ObservationStatus::Amended,
        R::Corrected => ObservationStatus::Corrected,
        R::Cancelled => ObservationStatus::Cancelled,
        R::EnteredInError => ObservationStatus::EnteredInError,
        R::Unknown => ObservationStatus::Unknown,
    }
}

/// True for the statuses that change what was reported before: the report
/// then goes out as `result.corrected`.
pub(super) fn is_correction(report: DiagnosticReportStatus, observations: &[ObservationStatus]) -> bool {
    matches!(
        report,
        DiagnosticReportStatus::Corrected | DiagnosticReportStatus::Amended | DiagnosticReportStatus::EnteredInError
    ) || observations.iter().any(|s| {
        matches!(
            s,
            ObservationStatus::Corrected | ObservationStatus::Amended | ObservationStatus::EnteredInError
        )
    })
}
