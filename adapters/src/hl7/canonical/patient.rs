//! PID → Patient, and MRG → the identifiers a merge retires.

use medbus_bus::canonical::{
    systems, AdministrativeGender, CodeableConcept, Coding, ContactPointUse, Deceased, Identifier, Patient,
};

use super::error::MapError;
use super::time::Dtm;
use super::types::{address, coded, comp, cx, date_time, loc, name, reps, telecom, text};
use super::Ctx;
use crate::hl7::parser::Segment;

/// HL7 table 0001 → AdministrativeGender, as the HL7 v2-to-FHIR concept map
/// has it (A ambiguous and N not applicable → other). Codes outside the table
/// read as unknown: something was sent, and it does not say which.
fn gender(code: &str) -> AdministrativeGender {
    match code {
        "M" => AdministrativeGender::Male,
        "F" => AdministrativeGender::Female,
        "O" | "A" | "N" => AdministrativeGender::Other,
        _ => AdministrativeGender::Unknown,
    }
}

/// HL7 table 0002 → v3 MaritalStatus (R4 value set); the source's own coding
/// is kept beside it, and alone when v3 has no counterpart.
fn marital_status(code: &str, display: Option<String>) -> CodeableConcept {
    let v3 = match code {
        "A" | "E" => Some(("L", "Legally Separated")),
        "D" => Some(("D", "Divorced")),
        "I" => Some(("I", "Interlocutory")),
        "M" => Some(("M", "Married")),
        "N" => Some(("A", "Annulled")),
        "P" | "R" => Some(("T", "Domestic partner")),
        "S" => Some(("S", "Never Married")),
        "W" => Some(("W", "Widowed")),
        "B" => Some(("U", "unmarried")),
        _ => None,
    };
    let mut coding: Vec<Coding> = v3
        .map(|(c, d)| Coding::new(systems::V3_MARITAL_STATUS, c, Some(d)))
        .into_iter()
        .collect();
    if code == "U" {
        coding.push(Coding::new(systems::V3_NULL_FLAVOR, "UNK", Some("unknown")));
    }
    coding.push(Coding::new(systems::V2_0002, code, display.as_deref()));
    CodeableConcept { coding, text: None }
}

/// The identifiers of a CX field (PID-3, MRG-1), skipping repetitions without CX-1.
pub(super) fn identifiers(
    ctx: &Ctx<'_, '_>,
    seg: &Segment<'_>,
    segment: &'static str,
    field: usize,
) -> Result<Vec<Identifier>, MapError> {
    let at = loc(seg, segment, field);
    let mut out = Vec::new();
    for (r, rep) in reps(seg, field) {
        out.extend(cx(&rep, &at, r, None, ctx.zone)?);
    }
    Ok(out)
}

/// PID → Patient. PID-3 must hold at least one identifier: without one the
/// patient cannot be found again, and events about it cannot be ordered.
pub(super) fn patient(ctx: &Ctx<'_, '_>, pid: &Segment<'_>) -> Result<Patient, MapError> {
    let identifier = identifiers(ctx, pid, "PID", 3)?;
    if identifier.is_empty() {
        return Err(MapError::MissingField {
            location: loc(pid, "PID", 3),
            why: "the patient identifier list is needed to identify the patient",
        });
    }
    let first = |n: usize| reps(pid, n).next().map(|(_, rep)| rep);
    let birth_date = match first(7).and_then(|r| text(r.as_value())) {
        None => None,
        Some(v) => Some(
            Dtm::parse(&v)
                .and_then(|d| d.to_date())
                .map_err(|why| MapError::InvalidField {
                    location: loc(pid, "PID", 7),
                    why: why.to_string(),
                })?,
        ),
    };
    let death = date_time(first(29).and_then(|r| comp(&r, 1)), loc(pid, "PID", 29), ctx.zone)?;
    let deceased = match (death, first(30).and_then(|r| comp(&r, 1)).as_deref()) {
        (Some(t), _) => Some(Deceased::DateTime(t)),
        (None, Some("Y")) => Some(Deceased::Boolean(true)),
        (None, Some("N")) => Some(Deceased::Boolean(false)),
        (None, _) => None,
    };
    let telecom = reps(pid, 13)
        .filter_map(|(_, r)| telecom(&r, ContactPointUse::Home))
        .chain(reps(pid, 14).filter_map(|(_, r)| telecom(&r, ContactPointUse::Work)))
        .collect();
    Ok(Patient {
        identifier,
        name: reps(pid, 5).filter_map(|(_, r)| name(&r, 0)).collect(),
        telecom,
        gender: first(8).and_then(|r| comp(&r, 1)).map(|g| gender(&g)),
        birth_date,
        deceased,
        address: reps(pid, 11).filter_map(|(_, r)| address(&r)).collect(),
        marital_status: first(16).and_then(|r| match super::types::code(comp(&r, 1)) {
            Some(c) => Some(marital_status(&c, comp(&r, 2))),
            None => coded(&r, systems::V2_0002),
        }),
        ..Patient::default()
    })
}
