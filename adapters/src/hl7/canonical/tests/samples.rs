//! Realistic ADT messages (CR-terminated, as sent over MLLP) for the mapping tests.

/// Joins segments with CR, the HL7 terminator.
pub fn msg(segments: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in segments {
        out.extend_from_slice(s.as_bytes());
        out.push(b'\r');
    }
    out
}

/// MSH for `ADT^<trigger>` with a zoned MSH-7.
pub fn msh(trigger: &str, structure: &str) -> String {
    format!("MSH|^~\\&|EPIC|UCH|MEDBUS|UCH|20240315083000-0500||ADT^{trigger}^{structure}|MSG-{trigger}|P|2.5.1")
}

/// A segment from `(field number, value)` pairs; other fields are empty.
pub fn seg(name: &str, fields: &[(usize, &str)]) -> String {
    let max = fields.iter().map(|(n, _)| *n).max().unwrap_or(0);
    let mut parts = vec![""; max];
    for (n, v) in fields {
        parts[n - 1] = v;
    }
    format!("{name}|{}", parts.join("|"))
}

/// PID with four assigning authorities (OID, local namespace, SSA, UUID),
/// two names (legal and display), escapes, home phone, e-mail, mobile, work phone.
pub fn pid_full() -> String {
    seg(
        "PID",
        &[
            (1, "1"),
            (
                3,
                "100001^^^UCH&1.2.840.114350&ISO^MR~E123456^^^EMPI^PI~999-88-7777^^^SSA^SS\
                 ~X9^^^&6ba7b810-9dad-11d1-80b4-00c04fd430c8&UUID^PT",
            ),
            (5, "O'BRIEN\\T\\SMITH^MARY^ANNE^JR^MS^^L~O'BRIEN^MOLLY^^^^^D"),
            (7, "19800412"),
            (8, "F"),
            (
                11,
                "12 MAIN ST\\S\\REAR^APT 4B^SPRINGFIELD^IL^62701^USA^H~PO BOX 7^^SPRINGFIELD^IL^62705^USA^M",
            ),
            (
                13,
                "(217)555-0101^PRN^PH~^NET^Internet^mary@example.com~^PRN^CP^^1^217^5550199",
            ),
            (14, "^WPN^PH^^^217^5550123^45"),
            (16, "M^Married"),
            (18, "ACCT0001"),
        ],
    )
}

/// PV1 of an inpatient stay: location, attending with an NPI authority,
/// referring and admitting doctors, visit number with its authority, admit
/// time without a zone (MSH-7's applies), and `discharge` in PV1-45 if given.
pub fn pv1_inpatient(discharge: &str) -> String {
    seg(
        "PV1",
        &[
            (1, "1"),
            (2, "I"),
            (3, "4W^401^A^UCH"),
            (7, "1234^WELBY^MARCUS^^^DR^^^NPI&2.16.840.1.113883.4.6&ISO^L^^^NPI"),
            (8, "5678^REFER^RITA"),
            (10, "MED"),
            (14, "7^Emergency room"),
            (17, "9999^ADMIT^ALAN"),
            (19, "V100^^^UCH&1.2.840.114350.1&ISO^VN"),
            (
                36,
                if discharge.is_empty() {
                    ""
                } else {
                    "01^Discharged to home"
                },
            ),
            (44, "202403150800"),
            (45, discharge),
        ],
    )
}

/// ADT^A01 admit.
pub fn a01() -> Vec<u8> {
    msg(&[
        &msh("A01", "ADT_A01"),
        "EVN|A01|20240315083000|||JSMITH^SMITH^JOHN|20240315082500",
        &pid_full(),
        &pv1_inpatient(""),
        "AL1|1|DA|PCN^Penicillin^L|SV|Hives",
    ])
}

/// ADT^A04 outpatient registration: year-only birth date, unknown sex code,
/// a visit number without authority, a 2.3-style message without MSH-9.3.
pub fn a04() -> Vec<u8> {
    msg(&[
        "MSH|^~\\&|REG|CLINIC|MEDBUS|UCH|20240316091500||ADT^A04|C4|P|2.3",
        "EVN|A04|20240316091500",
        "PID|1||555^^^CLINIC^MR||NGUYEN^WEI||1980|X",
        &seg(
            "PV1",
            &[
                (2, "O"),
                (3, "CARDIO CLINIC"),
                (10, "CAR"),
                (19, "V555"),
                (44, "20240316091000"),
            ],
        ),
    ])
}

/// ADT^A05 pre-admit: month-precision birth date.
pub fn a05() -> Vec<u8> {
    msg(&[
        &msh("A05", "ADT_A05"),
        "EVN|A05|20240315083000",
        "PID|1||100002^^^UCH&1.2.840.114350&ISO^MR||GARCIA^CARLOS||198004|M",
        &seg(
            "PV1",
            &[
                (2, "P"),
                (3, "PREOP^^^UCH"),
                (10, "SUR"),
                (19, "V200^^^UCH&1.2.840.114350.1&ISO^VN"),
            ],
        ),
    ])
}

/// ADT^A08 update with a visit.
pub fn a08() -> Vec<u8> {
    msg(&[
        &msh("A08", "ADT_A01"),
        "EVN|A08|20240316100000",
        &pid_full(),
        &pv1_inpatient(""),
    ])
}

/// ADT^A08 about a person without a visit (PV1-2 N).
pub fn a08_no_visit() -> Vec<u8> {
    msg(&[&msh("A08", "ADT_A01"), "EVN|A08|20240316100000", &pid_full(), "PV1|1|N"])
}

/// ADT^A03 discharge with PV1-45 and a discharge disposition.
pub fn a03() -> Vec<u8> {
    msg(&[
        &msh("A03", "ADT_A03"),
        "EVN|A03|20240318120000",
        &pid_full(),
        &pv1_inpatient("202403181130-0500"),
    ])
}

/// ADT^A03 discharge without PV1-45: the event time ends the visit.
pub fn a03_no_discharge_time() -> Vec<u8> {
    msg(&[
        &msh("A03", "ADT_A03"),
        "EVN|A03|20240318120000",
        &pid_full(),
        &pv1_inpatient(""),
    ])
}

/// ADT^A11 cancel admit.
pub fn a11() -> Vec<u8> {
    msg(&[
        &msh("A11", "ADT_A09"),
        "EVN|A11|20240315090000",
        &pid_full(),
        &pv1_inpatient(""),
    ])
}

/// ADT^A13 cancel discharge, still carrying the discharge time it cancels.
pub fn a13() -> Vec<u8> {
    msg(&[
        &msh("A13", "ADT_A01"),
        "EVN|A13|20240318130000",
        &pid_full(),
        &pv1_inpatient("202403181130-0500"),
    ])
}

/// ADT^A28 add person, with a death date, and PV1-2 N.
pub fn a28() -> Vec<u8> {
    msg(&[
        &msh("A28", "ADT_A05"),
        "EVN|A28|20240315083000",
        &seg(
            "PID",
            &[
                (3, "300^^^GENERAL HOSP^MR"),
                (5, "KOWALSKI^PIOTR"),
                (7, "19400101"),
                (8, "M"),
                (29, "20240301101500"),
            ],
        ),
        "PV1|1|N",
    ])
}

/// ADT^A31 update person, with the death indicator only.
pub fn a31() -> Vec<u8> {
    msg(&[
        &msh("A31", "ADT_A05"),
        "EVN|A31|20240315083000",
        &seg(
            "PID",
            &[
                (3, "300^^^GENERAL HOSP^MR"),
                (5, "KOWALSKI^PIOTR"),
                (7, "19400101"),
                (8, "M"),
                (16, "W"),
                (30, "Y"),
            ],
        ),
        "PV1|1|N",
    ])
}

/// ADT^A40 merging two duplicates in one message (two PID/MRG groups).
pub fn a40() -> Vec<u8> {
    msg(&[
        &msh("A40", "ADT_A39"),
        "EVN|A40|20240315083000",
        "PID|1||100001^^^UCH&1.2.840.114350&ISO^MR||DOE^JANE",
        "MRG|100009^^^UCH&1.2.840.114350&ISO^MR~E777^^^EMPI^PI",
        "PID|2||100003^^^UCH&1.2.840.114350&ISO^MR||ROE^RICHARD",
        "MRG|100004^^^UCH&1.2.840.114350&ISO^MR",
    ])
}

/// The A01 with another delimiter set: `#` fields, `$` components, `*`
/// repetitions, `@` escape, `!` sub-components.
pub fn a01_nonstandard() -> Vec<u8> {
    msg(&[
        "MSH#$*@!#EPIC#UCH#MEDBUS#UCH#20240315083000-0500##ADT$A01$ADT_A01#MSG-A01#P#2.5.1",
        "EVN#A01#20240315083000",
        "PID#1##100001$$$UCH!1.2.840.114350!ISO$MR##O'BRIEN@T@SMITH$MARY##19800412#F",
        &format!("PV1#1#I#4W$401$A{}V100{}202403150800", "#".repeat(16), "#".repeat(25)),
    ])
}

/// Every well-formed sample, for the robustness tests.
pub fn all() -> Vec<Vec<u8>> {
    vec![
        a01(),
        a04(),
        a05(),
        a08(),
        a08_no_visit(),
        a03(),
        a03_no_discharge_time(),
        a11(),
        a13(),
        a28(),
        a31(),
        a40(),
        a01_nonstandard(),
    ]
}
