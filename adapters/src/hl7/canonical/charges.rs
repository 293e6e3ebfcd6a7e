//! DFT^P03 → `billing.*` events, one ChargeItem per FT1.
//!
//! | FT1-6 (table 0017)            | event                     | ChargeItem.status |
//! |-------------------------------|---------------------------|-------------------|
//! | CG charge                     | `billing.charge-posted`   | billable          |
//! | CD credit                     | `billing.charge-reversed` | aborted           |
//! | PY payment, CO co-pay, AJ adjustment | none: money received or written off is not a charge | |
//!
//! Fields: FT1-2 → identifier in the system of the sending facility (MSH-4,
//! else MSH-3); without FT1-2 the identifier is `<MSH-10>/<FT1-1>`, which a
//! resend repeats, so charges stay idempotent. FT1-7 → code (required; the
//! charge master's coding system as sent), FT1-25 → a second coding (CPT);
//! FT1-4 → occurrence (a range when FT1-4.2 is a date); FT1-5 →
//! enteredDate; FT1-10 → quantity; FT1-11 extended amount (else FT1-12
//! unit amount × quantity) → priceOverride, amounts as `79.00&USD` (CP) or
//! `79.00^USD`; FT1-19 → reason (diagnoses); FT1-23 → supportingInformation
//! (the order, by filler number); PID → subject; PV1 → context.

use medbus_bus::canonical::{
    CanonicalEvent, ChargeEvent, ChargeItem, ChargeItemStatus, ChargeOccurrence, Decimal, Identifier, Money, Period,
    Quantity, Reference, ServiceRequest,
};

use super::codes::cwe;
use super::entity::{authority_at, ei};
use super::error::MapError;
use super::parties::{subject, Subject};
use super::read::{first, first_comp, time, time_at};
use super::types::{code, comp, loc, reps, sub};
use super::Ctx;
use crate::hl7::parser::Segment;

/// What a transaction type says about a line.
enum Line {
    Charge(ChargeItemStatus),
    /// Not a charge: skipped.
    NotACharge,
}

/// Table 0017 → what the line is.
fn transaction_type(code: &str) -> Option<Line> {
    Some(match code {
        "CG" => Line::Charge(ChargeItemStatus::Billable),
        "CD" => Line::Charge(ChargeItemStatus::Aborted),
        "PY" | "CO" | "AJ" => Line::NotACharge,
        _ => return None,
    })
}

/// Maps a DFT^P03.
pub(super) fn map(ctx: &Ctx<'_, '_>) -> Result<Vec<CanonicalEvent>, MapError> {
    if (ctx.code.as_str(), ctx.trigger.as_str()) != ("DFT", "P03") {
        return Err(MapError::UnsupportedEvent {
            message_type: ctx.message_type(),
        });
    }
    let pid = ctx
        .msg
        .segment("PID", 1)
        .ok_or_else(|| ctx.no_segment("PID", "(charges are for a patient)"))?;
    let who = subject(ctx, &pid, ctx.msg.segment("PV1", 1).as_ref())?;
    let occurred = ctx.occurred()?;
    let msh = ctx.msg.msh();
    // The namespace of transaction ids: the sending facility, else the sending application.
    let (system, _) = match first(&msh, 4).map(|r| authority_at(&r, 1)) {
        Some((Some(s), a)) => (Some(s), a),
        _ => first(&msh, 3).map(|r| authority_at(&r, 1)).unwrap_or_default(),
    };
    let control_id = first_comp(&msh, 10, 1);
    let mut events = Vec::new();
    let mut lines = 0;
    for (n, ft1) in ctx.msg.segments_named("FT1").enumerate() {
        lines += 1;
        let kind = code(first_comp(&ft1, 6, 1)).ok_or(MapError::MissingField {
            location: loc(&ft1, "FT1", 6),
            why: "the transaction type says whether the line is a charge or a credit",
        })?;
        let status = match transaction_type(&kind) {
            Some(Line::Charge(status)) => status,
            Some(Line::NotACharge) => continue,
            None => return Err(MapError::unknown_code(loc(&ft1, "FT1", 6), "0017", kind)),
        };
        let id = first_comp(&ft1, 2, 1).or_else(|| {
            let set_id = first_comp(&ft1, 1, 1).unwrap_or_else(|| (n + 1).to_string());
            control_id.as_ref().map(|c| format!("{c}/{set_id}"))
        });
        let identifier = id.map(|value| Identifier {
            system: system.clone(),
            value: Some(value),
            ..Identifier::default()
        });
        let item = charge(ctx, &ft1, status, identifier, &who)?;
        let body = ChargeEvent {
            charge_item: item,
            patient: who.patient.clone(),
            source_message_type: Some(ctx.message_type()),
            occurred: occurred.clone(),
        };
        events.push(match status {
            ChargeItemStatus::Aborted => CanonicalEvent::ChargeReversed(body),
            _ => CanonicalEvent::ChargePosted(body),
        });
    }
    if lines == 0 {
        return Err(ctx.no_segment("FT1", "(a charge needs one)"));
    }
    Ok(events)
}

/// An amount field (CP, or MO at field level) → value and currency.
fn money(ft1: &Segment<'_>, field: usize) -> Result<Option<(Decimal, Option<String>)>, MapError> {
    let Some(rep) = first(ft1, field) else {
        return Ok(None);
    };
    let price = rep.component(1);
    let Some(amount) = price.and_then(|c| sub(c, 1)) else {
        return Ok(None);
    };
    let value = Decimal::parse(&amount).ok_or_else(|| MapError::InvalidField {
        location: loc(ft1, "FT1", field),
        why: "an amount must be a decimal number".into(),
    })?;
    // CP puts the currency in a sub-component; senders writing MO put it in component 2,
    // where CP has its price type (two letters), so three letters there are a currency.
    let currency = price
        .and_then(|c| sub(c, 2))
        .or_else(|| comp(&rep, 2).filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())));
    Ok(Some((value, currency)))
}

/// FT1-4: a DR range (start^end), or a TS whose second component is a precision letter.
fn occurrence(ctx: &Ctx<'_, '_>, ft1: &Segment<'_>) -> Result<Option<ChargeOccurrence>, MapError> {
    let start = time_at(ctx, ft1, "FT1", 4, 1)?;
    let second = first_comp(ft1, 4, 2);
    let end = match second {
        Some(s) if s.bytes().all(|b| b.is_ascii_alphabetic()) => None,
        Some(_) => time_at(ctx, ft1, "FT1", 4, 2)?,
        None => None,
    };
    Ok(match (start, end) {
        (start, Some(end)) => Period::new(start, Some(end)).map(ChargeOccurrence::Period),
        (Some(start), None) => Some(ChargeOccurrence::DateTime(start)),
        (None, None) => None,
    })
}

/// One FT1 → ChargeItem.
fn charge(
    ctx: &Ctx<'_, '_>,
    ft1: &Segment<'_>,
    status: ChargeItemStatus,
    identifier: Option<Identifier>,
    who: &Subject,
) -> Result<ChargeItem, MapError> {
    let mut code_ = first(ft1, 7).and_then(|r| cwe(&r, None));
    // The procedure code (usually CPT) names the same service in a public code system.
    if let Some(procedure) = first(ft1, 25).and_then(|r| cwe(&r, None)) {
        match &mut code_ {
            Some(c) => c.coding.extend(procedure.coding),
            None => code_ = Some(procedure),
        }
    }
    let code_ = code_.ok_or(MapError::MissingField {
        location: loc(ft1, "FT1", 7),
        why: "the transaction code says what is charged",
    })?;
    let mut item = ChargeItem::new(status, code_, who.reference.clone());
    item.identifier.extend(identifier);
    item.context = who.encounter.clone();
    item.occurrence = occurrence(ctx, ft1)?;
    item.entered_date = time(ctx, ft1, "FT1", 5)?;
    let count = match first_comp(ft1, 10, 1) {
        Some(q) => Some(Decimal::parse(&q).ok_or_else(|| MapError::InvalidField {
            location: loc(ft1, "FT1", 10),
            why: "the quantity must be a decimal number".into(),
        })?),
        None => None,
    };
    item.quantity = count.map(|v| Quantity {
        value: Some(v),
        ..Quantity::default()
    });
    let price = match money(ft1, 11)? {
        Some(total) => Some(total),
        None => money(ft1, 12)?.and_then(|(unit, currency)| {
            let n = count.map_or(1.0, Decimal::value);
            Decimal::new(unit.value() * n).map(|v| (v, currency))
        }),
    };
    item.price_override = price.map(|(value, currency)| Money {
        value: Some(value),
        currency,
    });
    item.reason = reps(ft1, 19).filter_map(|(_, r)| cwe(&r, None)).collect();
    item.supporting_information = first(ft1, 23)
        .and_then(|r| ei(&r, Some("FILL")))
        .map(|id| ServiceRequest::reference_by(&id))
        .into_iter()
        .collect::<Vec<Reference>>();
    Ok(item)
}
