//! Realistic orders, results, appointments and charges (CR-terminated, as
//! sent over MLLP), in the shapes lab systems, schedulers and billing feeds send.

/// Joins segments with CR, the HL7 terminator.
pub fn msg(segments: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in segments {
        out.extend_from_slice(s.as_bytes());
        out.push(b'\r');
    }
    out
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

/// MSH for `type^trigger^structure`, from the lab's zone (-05:00).
pub fn msh(message_type: &str) -> String {
    format!("MSH|^~\\&|EPIC|UCH|MEDBUS|UCH|20240315083000-0500||{message_type}|MSG-1|P|2.5.1")
}

/// The patient of every sample: MRN with an OID authority.
pub const PID: &str = "PID|1||100001^^^UCH&1.2.840.114350&ISO^MR||DOE^JANE||19800412|F";

/// A visit with its number.
pub const PV1: &str = "PV1|1|I|4W^401^A^UCH|||||||MED|||||||||V100^^^UCH&1.2.840.114350.1&ISO^VN";

/// An ORC with control `control`, order status `status` (ORC-5), the usual numbers and times.
pub fn orc(control: &str, status: &str) -> String {
    seg(
        "ORC",
        &[
            (1, control),
            (2, "PL1001^CPOE^2.16.840.1.113883.19.1^ISO"),
            (3, "FL2001^LAB"),
            (5, status),
            (7, "^^^20240315082000^^S"),
            (9, "20240315082500"),
            (12, "1234^WELBY^MARCUS^^^DR^^^NPI&2.16.840.1.113883.4.6&ISO"),
        ],
    )
}

/// The OBR of a basic metabolic panel order.
pub const OBR_ORDER: &str =
    "OBR|1|PL1001^CPOE^2.16.840.1.113883.19.1^ISO|FL2001^LAB|51990-0^Basic metabolic panel - Blood^LN|||20240315082000";

/// ORM^O01 with one order under control `control`.
pub fn orm(control: &str, status: &str) -> Vec<u8> {
    msg(&[&msh("ORM^O01^ORM_O01"), PID, PV1, &orc(control, status), OBR_ORDER])
}

/// ORM^O01 placing two orders at once; the second has its numbers only in OBR.
pub fn orm_two_orders() -> Vec<u8> {
    msg(&[
        &msh("ORM^O01^ORM_O01"),
        PID,
        PV1,
        &orc("NW", ""),
        OBR_ORDER,
        "ORC|NW|||||||||||5678^REFER^RITA",
        "OBR|2|PL1002^CPOE|FL2002^LAB|2093-3^Cholesterol [Mass/volume] in Serum or Plasma^LN",
    ])
}

/// OML^O21 (v2.5 lab order): no PV1, priority in TQ1-9, numbers only in OBR, a specimen.
pub fn oml() -> Vec<u8> {
    msg(&[
        &msh("OML^O21^OML_O21"),
        PID,
        &seg("ORC", &[(1, "NW"), (9, "20240315082500")]),
        &seg("TQ1", &[(1, "1"), (7, "20240315090000"), (9, "A^ASAP^HL70485")]),
        "OBR|1|PL3001^CPOE|FL3001^LAB|2823-3^Potassium [Moles/volume] in Serum or Plasma^LN",
        "SPM|1|SP1||BLD^Blood^HL70487",
    ])
}

/// ORU^R01 (final) of a chemistry panel, every kind of value the mapping reads:
/// NM with a critical flag, NM with a comparator, SN, ST, CWE, a TX report in
/// three lines, and an NTE on the potassium.
pub fn oru_final() -> Vec<u8> {
    msg(&[
        &msh("ORU^R01^ORU_R01"),
        PID,
        PV1,
        "ORC|RE|PL1001^CPOE^2.16.840.1.113883.19.1^ISO|FL2001^LAB",
        "OBR|1|PL1001^CPOE^2.16.840.1.113883.19.1^ISO|FL2001^LAB|51990-0^Basic metabolic panel - Blood^LN|||20240315082000|||||||||1234^WELBY^MARCUS||||||202403150915|||F",
        "OBX|1|NM|2823-3^Potassium [Moles/volume] in Serum or Plasma^LN||6.8|mmol/L^mmol/L^UCUM|3.5-5.1|HH|||F|||20240315082000",
        "NTE|1|L|Called to Dr Welby at 09:20.",
        "OBX|2|NM|2951-2^Sodium^LN||140|mmol/L^^UCUM|135-145|N|||F",
        "OBX|3|NM|2093-3^Cholesterol^LN||<50|mg/dL^mg/dL^UCUM|<200|L|||F",
        "OBX|4|SN|33914-3^eGFR^LN||>^60|mL/min/{1.73_m2}^^UCUM|>=60|N|||F",
        "OBX|5|ST|5778-6^Color of Urine^LN||Straw||||||F",
        "OBX|6|CWE|600-7^Bacteria identified in Blood by Culture^LN||3092008^Staphylococcus aureus^SCT|||A|||F",
        "OBX|7|TX|11526-1^Pathology study^LN||Specimen received in formalin.||||||F",
        "OBX|8|TX|11526-1^Pathology study^LN||No malignancy seen.||||||F",
        "OBX|9|TX|11526-1^Pathology study^LN||See addendum.||||||F",
    ])
}

/// ORU^R01 correcting the potassium of [`oru_final`]: OBR-25 C, the changed OBX C.
pub fn oru_corrected() -> Vec<u8> {
    msg(&[
        &msh("ORU^R01^ORU_R01"),
        PID,
        PV1,
        "OBR|1|PL1001^CPOE^2.16.840.1.113883.19.1^ISO|FL2001^LAB|51990-0^Basic metabolic panel - Blood^LN|||20240315082000|||||||||||||||202403151030|||C",
        "OBX|1|NM|2823-3^Potassium [Moles/volume] in Serum or Plasma^LN||4.2|mmol/L^mmol/L^UCUM|3.5-5.1|N|||C",
        "NTE|1|L|Corrected result. Previously reported as 6.8 mmol/L (hemolysed).",
        "OBX|2|NM|2951-2^Sodium^LN||140|mmol/L^^UCUM|135-145|N|||F",
    ])
}

/// ORU^R01 for two patients, the second with a preliminary result and no OBR-25.
pub fn oru_two_patients() -> Vec<u8> {
    msg(&[
        &msh("ORU^R01^ORU_R01"),
        PID,
        "OBR|1||FL2001^LAB|2823-3^Potassium^LN",
        "OBX|1|NM|2823-3^Potassium^LN||4.0|mmol/L^^UCUM|||||F",
        "PID|2||100002^^^UCH&1.2.840.114350&ISO^MR||ROE^RICHARD",
        "PV1|1|O|CLINIC||||||||||||||||V200",
        "OBR|1|PL9^CPOE||718-7^Hemoglobin^LN",
        "OBX|1|NM|718-7^Hemoglobin^LN||6.1|g/dL^^UCUM|12.0-17.5|LL|||P",
    ])
}

/// SIU^`trigger` with SCH-11 times and SCH-25 `status`.
pub fn siu(trigger: &str, status: &str) -> Vec<u8> {
    msg(&[
        &msh(&format!("SIU^{trigger}^SIU_S12")),
        &seg(
            "SCH",
            &[
                (1, "AP100^CPOE"),
                (2, "SC100^SCHED"),
                (6, "CANC^Patient request^L"),
                (7, "FOLLOWUP^Follow-up"),
                (8, "Normal"),
                (9, "30"),
                (10, "min"),
                (11, "^^30^202403201400^202403201430"),
                (25, status),
            ],
        ),
        PID,
        "RGS|1|A",
        "AIS|1|A|93000^ECG^C4|202403201400|||30|min",
        "AIL|1|A|CARDIO^^^UCH",
        "AIP|1|A|1234^WELBY^MARCUS^^^DR^^^NPI|D^Doctor",
    ])
}

/// SIU^S12 with the time in TQ1 (v2.5 style) and a duration instead of an end.
pub fn siu_tq1() -> Vec<u8> {
    msg(&[
        &msh("SIU^S12^SIU_S12"),
        &seg("SCH", &[(2, "SC200^SCHED"), (7, "ROUTINE"), (9, "15"), (25, "Booked")]),
        &seg("TQ1", &[(1, "1"), (7, "202403221015")]),
        PID,
        "AIS|1|A|FLU^Influenza vaccination^L||||15|min",
    ])
}

/// DFT^P03 with a charge, a credit, a payment and a charge without FT1-2.
pub fn dft() -> Vec<u8> {
    msg(&[
        &msh("DFT^P03^DFT_P03"),
        "EVN|P03|20240315120000",
        PID,
        PV1,
        &seg(
            "FT1",
            &[
                (1, "1"),
                (2, "T100"),
                (4, "20240315082000^20240315091500"),
                (5, "20240315120000"),
                (6, "CG"),
                (7, "LAB80048^BASIC METABOLIC PANEL^99CDM"),
                (10, "1"),
                (11, "45.00&USD"),
                (12, "45.00&USD"),
                (13, "LAB"),
                (19, "I10^Essential hypertension^I10"),
                (23, "FL2001^LAB"),
                (25, "80048^BASIC METABOLIC PANEL^C4"),
            ],
        ),
        &seg(
            "FT1",
            &[
                (1, "2"),
                (2, "T101"),
                (4, "20240315082000"),
                (6, "CD"),
                (7, "LAB36415^ROUTINE VENIPUNCTURE^99CDM"),
                (10, "-1"),
                (11, "-12.00&USD"),
            ],
        ),
        &seg(
            "FT1",
            &[
                (1, "3"),
                (2, "T102"),
                (6, "PY"),
                (7, "CASH^Cash payment^L"),
                (11, "20.00&USD"),
            ],
        ),
        &seg(
            "FT1",
            &[
                (1, "4"),
                (4, "20240315082000"),
                (6, "CG"),
                (7, "LAB85025^CBC^99CDM"),
                (10, "2"),
                (12, "9.50^USD"),
            ],
        ),
    ])
}
