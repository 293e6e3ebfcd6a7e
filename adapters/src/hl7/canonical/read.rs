//! Small readers the mappings after ADT share: a field's first repetition, one
//! of its components, and a DTM field as a FHIR dateTime.

use medbus_bus::canonical::DateTime;

use super::error::MapError;
use super::types::{comp, date_time, loc, reps};
use super::Ctx;
use crate::hl7::parser::{Repetition, Segment};

/// The first non-empty repetition of field `n`.
pub(super) fn first<'a>(seg: &Segment<'a>, n: usize) -> Option<Repetition<'a>> {
    reps(seg, n).next().map(|(_, r)| r)
}

/// Component `c` of the first repetition of field `n` (a leaf value).
pub(super) fn first_comp(seg: &Segment<'_>, n: usize, c: usize) -> Option<String> {
    first(seg, n).and_then(|r| comp(&r, c))
}

/// Field `n` of `seg` (a DTM, or a TS whose first component is one) as a dateTime.
pub(super) fn time(
    ctx: &Ctx<'_, '_>,
    seg: &Segment<'_>,
    name: &'static str,
    n: usize,
) -> Result<Option<DateTime>, MapError> {
    date_time(first_comp(seg, n, 1), loc(seg, name, n), ctx.zone)
}

/// Component `c` of field `n` as a dateTime (TQ-4 start, EIP dates …).
pub(super) fn time_at(
    ctx: &Ctx<'_, '_>,
    seg: &Segment<'_>,
    name: &'static str,
    n: usize,
    c: usize,
) -> Result<Option<DateTime>, MapError> {
    date_time(first_comp(seg, n, c), loc(seg, name, n).at(1, c), ctx.zone)
}

/// A FHIR `instant`: a dateTime with a time (and so a zone); a date alone is left out.
pub(super) fn instant(t: Option<DateTime>) -> Option<DateTime> {
    t.filter(DateTime::has_time)
}
