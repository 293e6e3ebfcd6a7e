//! A deterministic HL7 v2 corpus for the parse benchmark: ADT, ORU and ORM
//! messages of a few KB, with repetitions, sub-components and some escapes,
//! the shape of what registration systems and lab analysers send.
//!
//! The corpus is written to a file (one message per line: segments end with
//! CR, messages with LF) so that `hl7_python.py` parses the very same bytes.

use std::fmt::Write as _;

/// xorshift64*: deterministic and dependency-free; quality is irrelevant here.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.below(10) as u8)).collect()
    }
}

const FAMILY: &[&str] = &[
    "SMITH", "O'BRIEN", "GARCIA", "NGUYEN", "MULLER", "KOWALSKI", "OKAFOR", "TANAKA", "DUBOIS",
];
const GIVEN: &[&str] = &[
    "MARY", "JOHN", "AISHA", "WEI", "CARLOS", "ANNA", "PIOTR", "YUKI", "FATIMA", "LUCAS",
];
const STREETS: &[&str] = &["MAIN ST", "OAK AVE", "ELM RD", "PARK LN", "HIGH ST"];
const CITIES: &[&str] = &[
    "SPRINGFIELD^IL^62701",
    "RIVERSIDE^CA^92501",
    "FAIRVIEW^TN^37062",
    "MADISON^WI^53703",
];
const LABS: &[(&str, &str, &str, &str)] = &[
    ("2345-7", "Glucose", "mg/dL", "70-99"),
    ("2160-0", "Creatinine", "mg/dL", "0.6-1.3"),
    ("2951-2", "Sodium", "mmol/L", "135-145"),
    ("2823-3", "Potassium", "mmol/L", "3.5-5.1"),
    ("2075-0", "Chloride", "mmol/L", "98-107"),
    ("6690-2", "Leukocytes", "10*3/uL", "4.5-11.0"),
    ("789-8", "Erythrocytes", "10*6/uL", "4.2-5.9"),
    ("718-7", "Hemoglobin", "g/dL", "12.0-17.5"),
    ("4544-3", "Hematocrit", "%", "36-50"),
    ("777-3", "Platelets", "10*3/uL", "150-400"),
    ("2093-3", "Cholesterol", "mg/dL", "<200"),
    ("1742-6", "ALT", "U/L", "7-56"),
];

fn msh(out: &mut String, r: &mut Rng, kind: &str, n: usize) {
    let version = r.pick(&["2.3", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8"]);
    let ts = format!(
        "2024{:02}{:02}{:02}{:02}{:02}",
        1 + r.below(12),
        1 + r.below(28),
        r.below(24),
        r.below(60),
        r.below(60)
    );
    let _ = write!(
        out,
        "MSH|^~\\&|{}|{}|MEDBUS|UCH|{ts}||{kind}|MSG{n:08}|P|{version}|||AL|NE||UNICODE UTF-8\r",
        r.pick(&["EPIC", "CERNER", "LABSYS", "RADIS"]),
        r.pick(&["UCH", "NORTH^1.2.840.1^ISO", "EAST"]),
    );
}

fn pid(out: &mut String, r: &mut Rng) {
    let (fam, giv) = (r.pick(FAMILY), r.pick(GIVEN));
    let _ = write!(
        out,
        "PID|1||{}^^^UCH&1.2.840.114350&ISO^MR~{}-{}-{}^^^SSA^SS~{}^^^NHS^NH||{fam}^{giv}^{}^^{}||19{}{:02}{:02}|{}|||{} {}^APT {}^{}^USA^H||({})555-{}^PRN^PH~^NET^Internet^{}@example.org|({})555-{}^WPN^PH|{}|{}||ACCT{}|||||||||||N\r",
        r.digits(8),
        r.digits(3),
        r.digits(2),
        r.digits(4),
        r.digits(10),
        r.pick(GIVEN),
        r.pick(&["MR", "MS", "DR"]),
        50 + r.below(50),
        1 + r.below(12),
        1 + r.below(28),
        r.pick(&["F", "M", "U"]),
        1 + r.below(999),
        r.pick(STREETS),
        r.below(20),
        r.pick(CITIES),
        r.digits(3),
        r.digits(4),
        giv.to_lowercase(),
        r.digits(3),
        r.digits(4),
        r.pick(&["ENG", "SPA", "FRE"]),
        r.pick(&["M", "S", "D", "W"]),
        r.digits(9),
    );
}

fn pv1(out: &mut String, r: &mut Rng) {
    let doc = format!(
        "{}^{}^{}^^^DR^^^NPI&2.16.840.1.113883.4.6&ISO",
        r.digits(6),
        r.pick(FAMILY),
        r.pick(GIVEN)
    );
    let _ = write!(
        out,
        "PV1|1|{}|{}W^{}^{}^UCH^^^^{}||||{doc}|{doc}||{}||||{}|||{doc}|{}|V{}|||||||||||||||||||||||||2024{:02}{:02}{:02}0000\r",
        r.pick(&["I", "O", "E"]),
        1 + r.below(9),
        100 + r.below(900),
        r.pick(&["A", "B"]),
        r.pick(&["MED WARD", "SURG WARD", "ICU"]),
        r.pick(&["MED", "SUR", "CAR", "ONC"]),
        r.pick(&["ADM", "EMR", "REF"]),
        r.pick(&["IN", "OUT", "ER"]),
        r.digits(9),
        1 + r.below(12),
        1 + r.below(28),
        r.below(24),
    );
}

fn adt(out: &mut String, r: &mut Rng, n: usize) {
    let trigger = r.pick(&["A01", "A04", "A08", "A03"]);
    msh(out, r, &format!("ADT^{trigger}^ADT_A01"), n);
    let _ = write!(
        out,
        "EVN|{trigger}|20240315083000|||{}^{}^{}\r",
        r.digits(5),
        r.pick(FAMILY),
        r.pick(GIVEN)
    );
    pid(out, r);
    let _ = write!(
        out,
        "PD1|||UCH CLINIC^^{}|{}^{}^{}\r",
        r.digits(4),
        r.digits(6),
        r.pick(FAMILY),
        r.pick(GIVEN)
    );
    for i in 1..=1 + r.below(3) {
        let _ = write!(
            out,
            "NK1|{i}|{}^{}|{}^{}^HL70063|{} {}^^{}|({})555-{}\r",
            r.pick(FAMILY),
            r.pick(GIVEN),
            r.pick(&["SPO", "CHD", "PAR", "SIB"]),
            r.pick(&["Spouse", "Child", "Parent", "Sibling"]),
            1 + r.below(999),
            r.pick(STREETS),
            r.pick(CITIES),
            r.digits(3),
            r.digits(4),
        );
    }
    pv1(out, r);
    let _ = write!(
        out,
        "PV2|||{}^{}\r",
        r.pick(&["CHEST PAIN", "FEVER", "FALL"]),
        r.pick(&["Chest pain", "Fever", "Fall"])
    );
    for (i, (code, text)) in [("8302-2", "Body height"), ("29463-7", "Body weight")]
        .iter()
        .enumerate()
    {
        let _ = write!(
            out,
            "OBX|{}|NM|{code}^{text}^LN||{}|cm^cm^UCUM|||||F\r",
            i + 1,
            50 + r.below(150)
        );
    }
    for i in 1..=r.below(4) {
        let _ = write!(
            out,
            "AL1|{i}|DA|{}^{}^L|{}|{}\r",
            r.pick(&["PCN", "SULFA", "LATEX"]),
            r.pick(&["Penicillin", "Sulfonamides", "Latex"]),
            r.pick(&["SV", "MO", "MI"]),
            r.pick(&["Hives", "Rash \\T\\ itching", "Anaphylaxis"])
        );
    }
    for i in 1..=1 + r.below(4) {
        let _ = write!(
            out,
            "DG1|{i}||I{}^{}^I10||2024031{}|A\r",
            r.digits(2),
            r.pick(&["Hypertension", "Diabetes", "Asthma"]),
            r.below(9)
        );
    }
    let _ = write!(
        out,
        "GT1|1||{}^{}||{} {}^^{}|({})555-{}|||||SE^Self\rIN1|1|{}^{}|{}|{}^^PO BOX {}^{}|||GRP{}||||||||{}^{}|SEL^Self|19700101\r",
        r.pick(FAMILY),
        r.pick(GIVEN),
        1 + r.below(999),
        r.pick(STREETS),
        r.pick(CITIES),
        r.digits(3),
        r.digits(4),
        r.pick(&["BCBS", "AETNA", "MEDICARE"]),
        r.pick(&["Blue Cross", "Aetna", "Medicare"]),
        r.digits(6),
        r.pick(&["Blue Cross", "Aetna"]),
        r.digits(4),
        r.pick(CITIES),
        r.digits(6),
        r.pick(FAMILY),
        r.pick(GIVEN),
    );
    let _ = write!(
        out,
        "ZPI|1|{}^{}|Note: patient prefers \\F\\ interpreter\r",
        r.pick(&["VIP", "STD"]),
        r.pick(&["Very important", "Standard"])
    );
}

fn oru(out: &mut String, r: &mut Rng, n: usize) {
    msh(out, r, "ORU^R01^ORU_R01", n);
    pid(out, r);
    pv1(out, r);
    let order = r.digits(8);
    let _ = write!(out, "ORC|RE|ORD{order}^EPIC|FIL{order}^LAB||CM\r");
    let _ = write!(out, "OBR|1|ORD{order}^EPIC|FIL{order}^LAB|24323-8^Comprehensive metabolic panel^LN|||20240315090000|||||||20240315091500||{}^{}^{}||||||20240315101500|||F\r", r.digits(6), r.pick(FAMILY), r.pick(GIVEN));
    for i in 1..=10 + r.below(30) {
        let (code, name, unit, range) = LABS[r.below(LABS.len() as u64) as usize];
        let value = format!("{}.{}", r.below(300), r.below(10));
        let flag = r.pick(&["N", "N", "N", "H", "L"]);
        let _ = write!(out, "OBX|{i}|NM|{code}^{name}^LN||{value}|{unit}^{unit}^UCUM|{range}|{flag}|||F|||20240315100000|LAB^Main lab^L\r");
    }
    let _ = write!(out, "OBX|99|TX|NOTE^Comment^L||Specimen slightly hemolyzed.\\.br\\Repeat if K \\T\\ LDH high.||||||F\rNTE|1|L|Verified by {} \\T\\ {}\r", r.pick(FAMILY), r.pick(FAMILY));
}

fn orm(out: &mut String, r: &mut Rng, n: usize) {
    msh(out, r, "ORM^O01^ORM_O01", n);
    pid(out, r);
    pv1(out, r);
    for i in 1..=1 + r.below(3) {
        let order = r.digits(8);
        let _ = write!(
            out,
            "ORC|NW|ORD{order}^EPIC||GRP{}|SC||^^^20240316080000^^R||20240315|{}^{}^{}\r",
            r.digits(5),
            r.digits(6),
            r.pick(FAMILY),
            r.pick(GIVEN)
        );
        let _ = write!(
            out,
            "OBR|{i}|ORD{order}^EPIC||{}^{}^L|||20240315120000||||N|||||{}^{}^{}|||||||||1^^^20240316080000^^R\r",
            r.pick(&["CBC", "BMP", "XR CHEST", "CT HEAD"]),
            r.pick(&[
                "Complete blood count",
                "Basic metabolic panel",
                "Chest X-ray 2 views",
                "CT head w/o contrast"
            ]),
            r.digits(6),
            r.pick(FAMILY),
            r.pick(GIVEN)
        );
        let _ = write!(
            out,
            "NTE|1||Patient {} \\T\\ fasting since midnight\r",
            r.pick(&["anxious", "calm"])
        );
        let _ = write!(
            out,
            "DG1|1||R{}^{}^I10\r",
            r.digits(2),
            r.pick(&["Chest pain", "Headache", "Fatigue"])
        );
    }
}

/// `count` messages (about 40% ADT, 40% ORU, 20% ORM), the same on every call.
pub fn messages(count: usize) -> Vec<Vec<u8>> {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    (0..count)
        .map(|n| {
            let mut s = String::with_capacity(4096);
            match r.below(5) {
                0 | 1 => adt(&mut s, &mut r, n),
                2 | 3 => oru(&mut s, &mut r, n),
                _ => orm(&mut s, &mut r, n),
            }
            s.into_bytes()
        })
        .collect()
}
