//! ORM^O01 and OML^O21: which event each order control gives, the whole
//! ServiceRequest of a new order, and the errors.

use medbus_bus::canonical::{RequestPriority, ServiceRequestStatus};
use serde_json::json;

use super::samples::*;
use super::{body, events, kinds, location, order_of, refused};
use crate::hl7::canonical::MapError;

#[test]
fn each_control_code_gives_its_event_and_status() {
    use ServiceRequestStatus as S;
    let cases = [
        ("NW", "", "order.placed", S::Active),
        ("NW", "HD", "order.placed", S::OnHold),
        ("SN", "", "order.placed", S::Active),
        ("XO", "", "order.updated", S::Active),
        ("SC", "IP", "order.updated", S::Active),
        // A status change to completed or cancelled is that event.
        ("SC", "CM", "order.completed", S::Completed),
        ("SC", "DC", "order.cancelled", S::Revoked),
        ("SC", "ER", "order.updated", S::EnteredInError),
        ("OK", "", "order.updated", S::Active),
        ("HD", "", "order.updated", S::OnHold),
        ("RL", "", "order.updated", S::Active),
        ("CA", "CA", "order.cancelled", S::Revoked),
        ("OC", "", "order.cancelled", S::Revoked),
        ("DC", "DC", "order.cancelled", S::Revoked),
        ("OD", "", "order.cancelled", S::Revoked),
        ("CM", "CM", "order.completed", S::Completed),
        // The control decides: a cancel is revoked whatever ORC-5 says.
        ("CA", "IP", "order.cancelled", S::Revoked),
    ];
    for (control, status, kind, expected) in cases {
        let evs = events(&orm(control, status));
        assert_eq!(kinds(&evs), [kind], "{control}/{status}");
        assert_eq!(order_of(&evs[0]).service_request.status, expected, "{control}/{status}");
        assert_eq!(evs[0].source_message_type(), Some("ORM^O01"));
    }
}

#[test]
fn a_new_order_in_full() {
    let evs = events(&orm("NW", ""));
    let mr_type = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR", "display": "Medical record number"}]});
    assert_eq!(
        body(&evs[0])["serviceRequest"],
        json!({
            "resourceType": "ServiceRequest",
            "identifier": [
                {
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}]},
                    "system": "urn:oid:2.16.840.1.113883.19.1",
                    "value": "PL1001",
                    "assigner": {"display": "CPOE"}
                },
                {
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "FILL"}]},
                    "system": "urn:medbus:authority:LAB",
                    "value": "FL2001",
                    "assigner": {"display": "LAB"}
                }
            ],
            "status": "active",
            "intent": "order",
            "priority": "stat",
            "code": {"coding": [{"system": "http://loinc.org", "code": "51990-0", "display": "Basic metabolic panel - Blood"}]},
            "subject": {
                "type": "Patient",
                "identifier": {"type": mr_type, "system": "urn:oid:1.2.840.114350", "value": "100001"},
                "display": "DOE, JANE"
            },
            "encounter": {
                "type": "Encounter",
                "identifier": {
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "VN", "display": "Visit number"}]},
                    "system": "urn:oid:1.2.840.114350.1",
                    "value": "V100"
                }
            },
            "authoredOn": "2024-03-15T08:25:00-05:00",
            "requester": {
                "type": "Practitioner",
                "identifier": {"system": "urn:oid:2.16.840.1.113883.4.6", "value": "1234", "assigner": {"display": "NPI"}},
                "display": "DR MARCUS WELBY"
            }
        })
    );
    assert_eq!(body(&evs[0])["occurred"], json!("2024-03-15T08:25:00-05:00"));
    assert_eq!(evs[0].patient_key().as_deref(), Some("urn:oid:1.2.840.114350|100001"));
    assert_eq!(
        order_of(&evs[0]).service_request.key().as_deref(),
        Some("urn:oid:2.16.840.1.113883.19.1|PL1001")
    );
}

#[test]
fn only_a_new_order_says_when_it_was_authored() {
    let evs = events(&orm("XO", ""));
    let sr = &order_of(&evs[0]).service_request;
    assert_eq!(sr.authored_on, None);
    // The change still says when it happened.
    assert_eq!(evs[0].occurred().map(|t| t.as_str()), Some("2024-03-15T08:25:00-05:00"));
}

#[test]
fn two_orders_in_one_message() {
    let evs = events(&orm_two_orders());
    assert_eq!(kinds(&evs), ["order.placed", "order.placed"]);
    let second = &order_of(&evs[1]).service_request;
    // Numbers from OBR-2/3 when ORC-2/3 are empty; requester from ORC-12; no ORC-9, so MSH-7.
    assert_eq!(second.key().as_deref(), Some("urn:medbus:authority:CPOE|PL1002"));
    assert_eq!(second.identifier[1].value.as_deref(), Some("FL2002"));
    assert_eq!(
        second.requester.as_ref().and_then(|r| r.display.as_deref()),
        Some("RITA REFER")
    );
    assert_eq!(second.priority, None);
    assert_eq!(evs[1].occurred().map(|t| t.as_str()), Some("2024-03-15T08:30:00-05:00"));
}

#[test]
fn oml_o21_with_tq1_priority_and_no_visit() {
    let evs = events(&oml());
    assert_eq!(kinds(&evs), ["order.placed"]);
    let e = order_of(&evs[0]);
    assert_eq!(e.source_message_type.as_deref(), Some("OML^O21"));
    let sr = &e.service_request;
    assert_eq!(sr.priority, Some(RequestPriority::Asap));
    assert_eq!(sr.encounter, None);
    assert_eq!(sr.key().as_deref(), Some("urn:medbus:authority:CPOE|PL3001"));
    assert_eq!(
        sr.code.as_ref().map(|c| c.coding[0].code.as_deref()),
        Some(Some("2823-3"))
    );
}

#[test]
fn bad_orders_name_the_field_and_code() {
    let e = refused(&orm("ZZ", ""));
    assert_eq!(
        e,
        MapError::UnknownCode {
            location: crate::hl7::canonical::FieldLocation::new("ORC", 4, 1),
            table: "0119",
            code: "ZZ".into()
        }
    );
    assert_eq!(e.hl7_error_code(), 103);
    assert_eq!(e.to_ack_error().location, Some(("ORC".to_string(), 4, Some(1))));
    // Something that is not a code could be patient data in the wrong field: not repeated.
    let e = refused(&orm("DOE JANE 19800412", ""));
    assert!(
        e.to_string().contains("(not a code)") && !e.to_string().contains("JANE"),
        "{e}"
    );
    let e = refused(&orm("SC", "QQ"));
    assert_eq!(location(&e).as_deref(), Some("ORC-5"));
    assert!(e.to_string().contains("0038"), "{e}");
    let e = refused(&orm("", ""));
    assert_eq!((location(&e).as_deref(), e.hl7_error_code()), (Some("ORC-1"), 101));
    let no_numbers = msg(&[&msh("ORM^O01"), PID, "ORC|NW", "OBR|1|||2823-3^K^LN"]);
    let e = refused(&no_numbers);
    assert_eq!(location(&e).as_deref(), Some("ORC-2"));
    assert!(e.to_string().contains("order number"), "{e}");
    let e = refused(&msg(&[&msh("ORM^O01"), PID, OBR_ORDER]));
    assert!(matches!(e, MapError::NoSegment { segment: "ORC", .. }), "{e}");
    assert_eq!(e.hl7_error_code(), 100);
    let e = refused(&msg(&[&msh("ORM^O01"), &orc("NW", ""), OBR_ORDER]));
    assert_eq!(e.to_string(), "ORM^O01 has no PID segment (orders are about a patient)");
    let e = refused(&msg(&[&msh("ORM^O01"), "PID|1||^^^UCH^MR", &orc("NW", "")]));
    assert_eq!(location(&e).as_deref(), Some("PID-3"));
    let e = refused(&msg(&[
        &msh("ORM^O01"),
        PID,
        &seg("ORC", &[(1, "NW"), (2, "P1"), (9, "2024-03-15")]),
    ]));
    assert_eq!((location(&e).as_deref(), e.hl7_error_code()), (Some("ORC-9"), 102));
}

#[test]
fn a_radiology_order_carries_its_accession_number_from_obr_18() {
    // OBR-18 (Placer Field 1) is where IHE radiology puts the Accession Number.
    let obr = "OBR|1|PL4001^RIS|FL4001^PACS|71020^XR CHEST 2 VIEWS^C4|||20240315082000|||||||||||ACC4001";
    let evs = events(&msg(&[&msh("ORM^O01^ORM_O01"), PID, PV1, &orc("NW", ""), obr]));
    let sr = &order_of(&evs[0]).service_request;
    assert_eq!(
        sr.key().as_deref(),
        Some("urn:oid:2.16.840.1.113883.19.1|PL1001"),
        "the placer number stays the key"
    );
    assert_eq!(sr.identifier.len(), 3, "placer, filler, accession");
    assert_eq!(
        serde_json::to_value(&sr.identifier[2]).unwrap(),
        json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN", "display": "Accession ID"}]},
            "system": "urn:medbus:accession",
            "value": "ACC4001"
        })
    );
    // Without OBR-18, no accession identifier.
    let evs = events(&orm("NW", ""));
    assert!(!order_of(&evs[0])
        .service_request
        .identifier
        .iter()
        .any(|i| i.has_type("ACSN")));
}
