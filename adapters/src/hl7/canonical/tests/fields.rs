//! Field by field: identifiers and authorities, names, dates, gender,
//! address, telecom, death, marital status, zones, event time, PV1 details.

use chrono::FixedOffset;
use medbus_bus::canonical::{
    AddressType, AddressUse, AdministrativeGender, ContactPointSystem, ContactPointUse, Deceased, NameUse,
};
use serde_json::json;

use super::samples::*;
use super::{body, encounter_of, events};
use crate::hl7::canonical::{map_adt_with, MapOptions};
use crate::hl7::parser::Message;

/// The patient of an A28 whose PID has `fields` (PID-3 set unless given).
fn person(fields: &[(usize, &str)]) -> medbus_bus::canonical::Patient {
    let mut all = vec![(3, "1^^^UCH^MR")];
    all.retain(|(n, _)| fields.iter().all(|(m, _)| m != n));
    all.extend_from_slice(fields);
    let raw = msg(&[&msh("A28", "ADT_A05"), "EVN|A28|20240315083000", &seg("PID", &all)]);
    events(&raw).remove(0).patient().clone()
}

/// The encounter of an A01 whose PV1 has `fields`, after `msh7`.
fn visit(msh7: &str, fields: &[(usize, &str)], options: MapOptions) -> medbus_bus::canonical::Encounter {
    let raw = msg(&[
        &format!("MSH|^~\\&|A|B|C|D|{msh7}||ADT^A01|1|P|2.5"),
        "PID|1||1^^^UCH^MR",
        &seg("PV1", fields),
    ]);
    let msg = Message::parse(&raw).unwrap();
    let evs = map_adt_with(&msg, &options).unwrap();
    encounter_of(&evs[1]).encounter.clone()
}

#[test]
fn identifiers_take_their_system_from_the_assigning_authority() {
    let cases = [
        ("1^^^UCH&1.2.840.114350&ISO^MR", Some("urn:oid:1.2.840.114350")),
        ("1^^^UCH&1.2.840.114350&iso^MR", Some("urn:oid:1.2.840.114350")),
        // Not an OID, or not said to be one: the local name is the authority.
        ("1^^^UCH&1.2.X&ISO^MR", Some("urn:medbus:authority:UCH")),
        ("1^^^UCH&1.2.3&L^MR", Some("urn:medbus:authority:UCH")),
        ("1^^^St Mary's^MR", Some("urn:medbus:authority:St%20Mary%27s")),
        ("1^^^&urn:example:ids&URI^MR", Some("urn:example:ids")),
        (
            "1^^^&6BA7B810-9DAD-11D1-80B4-00C04FD430C8&UUID",
            Some("urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
        ),
        ("1^^^&ABC&XX", Some("urn:medbus:authority:ABC")),
        ("1", None),
    ];
    for (cx, system) in cases {
        let p = person(&[(3, cx)]);
        assert_eq!(p.identifier[0].system.as_deref(), system, "{cx}");
    }
    let p = events(&a01()).remove(0).patient().clone();
    let tokens: Vec<_> = p.identifier.iter().filter_map(|i| i.token()).collect();
    assert_eq!(
        tokens,
        [
            "urn:oid:1.2.840.114350|100001",
            "urn:medbus:authority:EMPI|E123456",
            "urn:medbus:authority:SSA|999-88-7777",
            "urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8|X9",
        ]
    );
    let types: Vec<_> = p
        .identifier
        .iter()
        .map(|i| ["MR", "PI", "SS", "PT"].iter().any(|t| i.has_type(t)))
        .collect();
    assert_eq!(types, [true; 4]);
    assert_eq!(
        p.identifier[0].assigner.as_ref().and_then(|a| a.display.as_deref()),
        Some("UCH")
    );
}

#[test]
fn identifier_validity_and_empty_repetitions() {
    let p = person(&[(3, "~^^^UCH^MR~7^^^UCH^MR^^20200101^20301231")]);
    assert_eq!(p.identifier.len(), 1, "repetitions without CX-1 are skipped");
    assert_eq!(
        serde_json::to_value(&p.identifier[0].period).unwrap(),
        json!({"start": "2020-01-01", "end": "2030-12-31"})
    );
    // The key prefers the MR over an earlier identifier of another type.
    let p = person(&[(3, "E1^^^EMPI^PI~M1^^^UCH^MR")]);
    assert_eq!(p.key().as_deref(), Some("urn:medbus:authority:UCH|M1"));
}

#[test]
fn names_repeat_and_decode_escapes() {
    let p = events(&a01()).remove(0).patient().clone();
    assert_eq!(
        serde_json::to_value(&p.name).unwrap(),
        json!([
            {"use": "official", "family": "O'BRIEN&SMITH", "given": ["MARY", "ANNE"], "prefix": ["MS"], "suffix": ["JR"]},
            {"use": "usual", "family": "O'BRIEN", "given": ["MOLLY"]}
        ])
    );
    let p = person(&[(5, "DOE\\X07\\^JANE\\F\\JO^^^^^M~^^^^^^L~\"\"")]);
    assert_eq!(p.name.len(), 1, "an empty or null repetition is no name");
    assert_eq!(p.name[0].family.as_deref(), Some("DOE"), "control characters go");
    assert_eq!(p.name[0].given, ["JANE|JO"]);
    assert_eq!(p.name[0].use_, Some(NameUse::Maiden));
}

#[test]
fn birth_dates_keep_the_precision_sent() {
    for (pid7, date) in [
        ("1980", Some("1980")),
        ("198004", Some("1980-04")),
        ("19800412", Some("1980-04-12")),
        ("198004121030-0500", Some("1980-04-12")),
        ("\"\"", None),
        ("", None),
    ] {
        let p = person(&[(7, pid7)]);
        assert_eq!(p.birth_date.as_ref().map(|d| d.as_str()), date, "{pid7:?}");
    }
}

#[test]
fn sex_codes_follow_the_v2_to_fhir_map() {
    use AdministrativeGender::*;
    for (code, gender) in [
        ("M", Some(Male)),
        ("F", Some(Female)),
        ("O", Some(Other)),
        ("A", Some(Other)),
        ("N", Some(Other)),
        ("U", Some(Unknown)),
        ("X", Some(Unknown)),
        ("\"\"", None),
    ] {
        assert_eq!(person(&[(8, code)]).gender, gender, "{code}");
    }
}

#[test]
fn addresses_and_telecom() {
    let p = events(&a01()).remove(0).patient().clone();
    assert_eq!(p.address[0].line, ["12 MAIN ST^REAR", "APT 4B"]);
    assert_eq!(p.address[0].use_, Some(AddressUse::Home));
    assert_eq!(p.address[1].type_, Some(AddressType::Postal));
    assert_eq!(p.address[1].postal_code.as_deref(), Some("62705"));
    let t: Vec<_> = p
        .telecom
        .iter()
        .map(|c| (c.system, c.value.as_deref(), c.use_))
        .collect();
    use ContactPointSystem::*;
    use ContactPointUse::*;
    assert_eq!(
        t,
        [
            (Some(Phone), Some("(217)555-0101"), Some(Home)),
            (Some(Email), Some("mary@example.com"), Some(Home)),
            (Some(Phone), Some("+1 (217) 5550199"), Some(Mobile)),
            (Some(Phone), Some("(217) 5550123 x45"), Some(Work)),
        ]
    );
    let p = person(&[
        (13, "^PRN^FX^^^^5550000~^^^^^^^^^^^5551234~^PRN^PH"),
        (14, "^WPN^BP^^^^77"),
    ]);
    let t: Vec<_> = p.telecom.iter().map(|c| (c.system, c.value.as_deref())).collect();
    assert_eq!(
        t,
        [
            (Some(Fax), Some("5550000")),
            (Some(Phone), Some("5551234")),
            (Some(Pager), Some("77"))
        ]
    );
}

#[test]
fn death_marital_status() {
    let died = person(&[(29, "20240301101500"), (30, "Y")]);
    assert_eq!(
        serde_json::to_value(&died).unwrap()["deceasedDateTime"],
        json!("2024-03-01T10:15:00-05:00")
    );
    assert_eq!(person(&[(30, "Y")]).deceased, Some(Deceased::Boolean(true)));
    assert_eq!(person(&[(30, "N")]).deceased, Some(Deceased::Boolean(false)));
    assert_eq!(person(&[]).deceased, None);
    let unknown = serde_json::to_value(person(&[(16, "U")]).marital_status).unwrap();
    assert_eq!(
        unknown,
        json!({"coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "code": "UNK", "display": "unknown"},
            {"system": "http://terminology.hl7.org/CodeSystem/v2-0002", "code": "U"}
        ]})
    );
    let common_law = serde_json::to_value(person(&[(16, "C^Common law")]).marital_status).unwrap();
    assert_eq!(
        common_law,
        json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0002", "code": "C", "display": "Common law"}]})
    );
}

#[test]
fn times_without_a_zone_take_msh7s_or_the_configured_one() {
    let fields = [(2, "E"), (19, "V1"), (44, "202403150800"), (45, "202403151000+0100")];
    let utc = MapOptions::default();
    let period = |e: medbus_bus::canonical::Encounter| serde_json::to_value(e.period).unwrap();
    assert_eq!(
        period(visit("20240315083000-0500", &fields, utc)),
        json!({"start": "2024-03-15T08:00:00-05:00", "end": "2024-03-15T10:00:00+01:00"})
    );
    assert_eq!(
        period(visit("20240315083000", &fields, utc))["start"],
        json!("2024-03-15T08:00:00Z")
    );
    let cet = MapOptions {
        local_offset: FixedOffset::east_opt(3600).unwrap(),
    };
    assert_eq!(
        period(visit("20240315083000", &fields, cet))["start"],
        json!("2024-03-15T08:00:00+01:00")
    );
    // MSH-7's zone wins over the configured one: it is what the sender said.
    assert_eq!(
        period(visit("20240315083000-0500", &fields, cet))["start"],
        json!("2024-03-15T08:00:00-05:00")
    );
}

#[test]
fn the_event_time_is_evn6_else_evn2_else_msh7() {
    let occurred = |evn: Option<&str>| {
        let mut segments = vec![msh("A28", "ADT_A05")];
        segments.extend(evn.map(str::to_string));
        segments.push("PID|1||1^^^UCH^MR".into());
        let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
        events(&msg(&refs)).remove(0).occurred().map(|t| t.to_string())
    };
    assert_eq!(
        occurred(Some("EVN|A28|20240101|||X|20231231")).as_deref(),
        Some("2023-12-31")
    );
    assert_eq!(occurred(Some("EVN|A28|20240101")).as_deref(), Some("2024-01-01"));
    assert_eq!(occurred(None).as_deref(), Some("2024-03-15T08:30:00-05:00"));
}

#[test]
fn patient_classes_and_locations() {
    let class = |code: &str| {
        let e = visit("20240315", &[(2, code), (19, "V1")], MapOptions::default());
        (e.class.system.unwrap_or_default(), e.class.code.unwrap_or_default())
    };
    let v3 = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
    let v2 = "http://terminology.hl7.org/CodeSystem/v2-0004";
    for (code, system, fhir) in [
        ("I", v3, "IMP"),
        ("O", v3, "AMB"),
        ("E", v3, "EMER"),
        ("P", v3, "PRENC"),
        ("R", v2, "R"),
        ("B", v2, "B"),
    ] {
        assert_eq!(class(code), (system.to_string(), fhir.to_string()), "{code}");
    }
    let e = visit(
        "20240315",
        &[(2, "I"), (3, "4W^401^A^^^^^^North wing bed A"), (19, "V1")],
        MapOptions::default(),
    );
    assert_eq!(e.location[0].location.display.as_deref(), Some("North wing bed A"));
    // Without PV1-19 the alternate visit id (PV1-50) identifies the visit.
    let e = visit("20240315", &[(2, "I"), (50, "ALT9^^^UCH")], MapOptions::default());
    assert_eq!(e.key().as_deref(), Some("urn:medbus:authority:UCH|ALT9"));
}

#[test]
fn the_account_number_identifies_a_visit_without_a_visit_number() {
    let pid = seg("PID", &[(3, "1^^^UCH^MR"), (18, "ACC7^^^UCH")]);
    let raw = msg(&[&msh("A04", "ADT_A01"), &pid, "PV1|1|O"]);
    let evs = events(&raw);
    let e = &encounter_of(&evs[1]).encounter;
    assert_eq!(e.key().as_deref(), Some("urn:medbus:authority:UCH|ACC7"));
    assert!(e.identifier[0].has_type("AN"));
    assert_eq!(body(&evs[1])["encounter"]["class"]["code"], json!("AMB"));
}
