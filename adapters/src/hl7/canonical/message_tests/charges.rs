//! DFT^P03: charges, credits and payments, amounts, identifiers, and the errors.

use medbus_bus::canonical::{ChargeItemStatus, ChargeOccurrence};
use serde_json::json;

use super::samples::*;
use super::{body, charge_of, events, kinds, location, refused};
use crate::hl7::canonical::MapError;

#[test]
fn charges_and_credits_but_not_payments() {
    let evs = events(&dft());
    assert_eq!(
        kinds(&evs),
        [
            "billing.charge-posted",
            "billing.charge-reversed",
            "billing.charge-posted"
        ]
    );
    let statuses: Vec<_> = evs.iter().map(|e| charge_of(e).charge_item.status).collect();
    assert_eq!(
        statuses,
        [
            ChargeItemStatus::Billable,
            ChargeItemStatus::Aborted,
            ChargeItemStatus::Billable
        ]
    );
    assert!(evs
        .iter()
        .all(|e| e.patient_key().as_deref() == Some("urn:oid:1.2.840.114350|100001")));
    assert_eq!(evs[0].occurred().map(|t| t.as_str()), Some("2024-03-15T12:00:00-05:00"));
}

#[test]
fn a_charge_in_full() {
    let v = body(&events(&dft())[0]);
    let mut c = v["chargeItem"].clone();
    assert_eq!(c["subject"]["identifier"]["value"], json!("100001"));
    c.as_object_mut().unwrap().remove("subject");
    assert_eq!(
        c,
        json!({
            "resourceType": "ChargeItem",
            "identifier": [{"system": "urn:medbus:authority:UCH", "value": "T100"}],
            "status": "billable",
            "code": {"coding": [
                {"system": "urn:medbus:codesystem:99CDM", "code": "LAB80048", "display": "BASIC METABOLIC PANEL"},
                {"system": "http://www.ama-assn.org/go/cpt", "code": "80048", "display": "BASIC METABOLIC PANEL"}
            ]},
            "context": {"type": "Encounter", "identifier": {
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "VN", "display": "Visit number"}]},
                "system": "urn:oid:1.2.840.114350.1", "value": "V100"}},
            "occurrencePeriod": {"start": "2024-03-15T08:20:00-05:00", "end": "2024-03-15T09:15:00-05:00"},
            "quantity": {"value": 1},
            "priceOverride": {"value": 45, "currency": "USD"},
            "enteredDate": "2024-03-15T12:00:00-05:00",
            "reason": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10", "display": "Essential hypertension"}]}],
            "supportingInformation": [{"type": "ServiceRequest", "identifier": {
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "FILL"}]},
                "system": "urn:medbus:authority:LAB", "value": "FL2001"}}]
        })
    );
}

#[test]
fn credits_unit_prices_and_derived_identifiers() {
    let evs = events(&dft());
    let credit = &charge_of(&evs[1]).charge_item;
    assert_eq!(
        credit.price_override.as_ref().and_then(|m| m.value).map(|d| d.value()),
        Some(-12.0)
    );
    assert_eq!(
        credit.quantity.as_ref().and_then(|q| q.value).map(|d| d.value()),
        Some(-1.0)
    );
    assert!(matches!(credit.occurrence, Some(ChargeOccurrence::DateTime(_))));
    let derived = &charge_of(&evs[2]).charge_item;
    // No FT1-2: MSH-10 and FT1-1, which a resend repeats.
    assert_eq!(derived.key().as_deref(), Some("urn:medbus:authority:UCH|MSG-1/4"));
    // No extended amount: unit price (MO style, currency in component 2) times quantity.
    let price = derived.price_override.as_ref().unwrap();
    assert_eq!(
        (price.value.map(|d| d.value()), price.currency.as_deref()),
        (Some(19.0), Some("USD"))
    );
}

#[test]
fn a_dft_of_payments_only_gives_no_event() {
    let raw = msg(&[
        &msh("DFT^P03"),
        PID,
        &seg("FT1", &[(1, "1"), (6, "PY"), (7, "CASH"), (11, "20.00&USD")]),
    ]);
    assert_eq!(events(&raw), []);
}

#[test]
fn bad_charges() {
    let line = |fields: &[(usize, &str)]| {
        let ft1 = seg("FT1", fields);
        refused(&msg(&[&msh("DFT^P03"), PID, &ft1]))
    };
    let e = line(&[(1, "1"), (6, "ZZ"), (7, "X")]);
    assert_eq!((location(&e).as_deref(), e.hl7_error_code()), (Some("FT1-6"), 103));
    assert!(e.to_string().contains("0017"), "{e}");
    let e = line(&[(1, "1"), (7, "X")]);
    assert_eq!((location(&e).as_deref(), e.hl7_error_code()), (Some("FT1-6"), 101));
    let e = line(&[(1, "1"), (6, "CG")]);
    assert_eq!(location(&e).as_deref(), Some("FT1-7"));
    let e = line(&[(1, "1"), (6, "CG"), (7, "X"), (11, "forty&USD")]);
    assert_eq!((location(&e).as_deref(), e.hl7_error_code()), (Some("FT1-11"), 102));
    let e = line(&[(1, "1"), (6, "CG"), (7, "X"), (10, "two")]);
    assert_eq!(location(&e).as_deref(), Some("FT1-10"));
    let e = line(&[(1, "1"), (4, "2024-03-15"), (6, "CG"), (7, "X")]);
    assert_eq!(location(&e).as_deref(), Some("FT1-4[1].1"));
    let e = refused(&msg(&[&msh("DFT^P03"), PID]));
    assert!(matches!(e, MapError::NoSegment { segment: "FT1", .. }), "{e}");
    let e = refused(&msg(&[&msh("DFT^P11"), PID]));
    assert!(matches!(e, MapError::UnsupportedEvent { .. }), "{e}");
}
