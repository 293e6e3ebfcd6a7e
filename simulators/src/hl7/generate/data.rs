//! Reference data the generator draws from: names, places, clinicians, LOINC-coded tests with
//! UCUM units and ranges, CPT charges. ASCII only, because an HL7 message without MSH-18 is
//! ASCII and some peers (python-hl7's MLLP server) decode it strictly as such.

/// Family names (PID-5.1).
#[rustfmt::skip]
pub const FAMILY_NAMES: &[&str] = &[
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ", "MARTINEZ",
    "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE", "JACKSON", "MARTIN", "LEE",
    "PEREZ", "THOMPSON", "WHITE", "HARRIS", "SANCHEZ", "CLARK", "RAMIREZ", "LEWIS", "ROBINSON", "OKAFOR", "NGUYEN",
    "KIM", "PATEL", "SHAH", "MUELLER", "SCHMIDT", "ROSSI", "DUBOIS", "KOWALSKI", "O'BRIEN", "MCCARTHY", "NAKAMURA",
    "SATO", "MENSAH", "ADEYEMI", "IVANOV", "COHEN", "SILVA", "HANSEN",
];

/// Given names for female patients.
#[rustfmt::skip]
pub const FEMALE_NAMES: &[&str] = &[
    "MARY", "PATRICIA", "JENNIFER", "LINDA", "ELIZABETH", "BARBARA", "SUSAN", "JESSICA", "SARAH", "KAREN", "NANCY",
    "LISA", "AMARA", "PRIYA", "YUKI", "FATIMA", "ELENA", "SOFIA", "CHIAMAKA", "INGRID", "MEI", "ANA", "ROSA",
];

/// Given names for male patients.
#[rustfmt::skip]
pub const MALE_NAMES: &[&str] = &[
    "JAMES", "ROBERT", "JOHN", "MICHAEL", "DAVID", "WILLIAM", "RICHARD", "JOSEPH", "THOMAS", "CHARLES", "DANIEL",
    "MATTHEW", "KWAME", "RAJ", "HIROSHI", "AHMED", "LUCAS", "MATEO", "OLUWASEUN", "LARS", "WEI", "JOSE", "LUIS",
];

/// Street names for addresses (PID-11.1).
#[rustfmt::skip]
pub const STREETS: &[&str] = &[
    "MAIN ST", "OAK AVE", "PINE RD", "MAPLE DR", "CEDAR LN", "ELM ST", "LAKE VIEW RD", "HILLCREST AVE",
    "WASHINGTON BLVD", "PARK PL", "RIVER RD", "SUNSET BLVD", "MILL ST", "CHURCH ST", "HIGHLAND AVE",
];

/// (city, state, zip prefix, area code).
pub const CITIES: &[(&str, &str, &str, &str)] = &[
    ("SPRINGFIELD", "IL", "627", "217"),
    ("MADISON", "WI", "537", "608"),
    ("COLUMBUS", "OH", "432", "614"),
    ("AUSTIN", "TX", "787", "512"),
    ("PORTLAND", "OR", "972", "503"),
    ("ALBANY", "NY", "122", "518"),
    ("RALEIGH", "NC", "276", "919"),
    ("DENVER", "CO", "802", "303"),
];

/// Attending and ordering clinicians: (NPI-like id, family, given).
pub const DOCTORS: &[(&str, &str, &str)] = &[
    ("1234567893", "HOUSE", "GREGORY"),
    ("1477551234", "GREY", "MEREDITH"),
    ("1588667012", "ROSS", "DOUGLAS"),
    ("1699778123", "CARTER", "JOHN"),
    ("1700889234", "BAILEY", "MIRANDA"),
    ("1811990345", "KOVAC", "LUKA"),
    ("1922001456", "PATEL", "NEELA"),
    ("1033112567", "OKONKWO", "ADAEZE"),
];

/// Inpatient units (point of care) with their number of rooms.
pub const WARDS: &[(&str, u64)] = &[
    ("4W", 30),
    ("5E", 24),
    ("ICU", 12),
    ("CCU", 10),
    ("MAT", 16),
    ("ORTHO", 20),
];

/// Outpatient clinics.
pub const CLINICS: &[&str] = &["CARD-CLINIC", "ENDO-CLINIC", "GP-CLINIC", "ORTHO-CLINIC", "DERM-CLINIC"];

/// Hospital services (PV1-10).
pub const SERVICES: &[&str] = &["MED", "SUR", "CAR", "OBS", "ORT", "PUL"];

/// One analyte: LOINC code and name, UCUM unit, reference range, critical limits and the
/// number of decimals it is reported with.
#[derive(Debug, Clone, Copy)]
pub struct Analyte {
    /// LOINC code (OBX-3.1).
    pub loinc: &'static str,
    /// LOINC long common name (OBX-3.2).
    pub name: &'static str,
    /// UCUM unit (OBX-6).
    pub unit: &'static str,
    /// Reference range (OBX-7), low end.
    pub low: f64,
    /// Reference range, high end.
    pub high: f64,
    /// Below this a value is critical (LL); negative when there is no low critical limit.
    pub crit_low: f64,
    /// Above this a value is critical (HH).
    pub crit_high: f64,
    /// Decimals the value is reported with.
    pub decimals: usize,
}

/// An orderable test: the panel's LOINC code, its CPT charge and its analytes.
#[derive(Debug, Clone, Copy)]
pub struct Panel {
    /// LOINC code of the panel (OBR-4.1).
    pub loinc: &'static str,
    /// LOINC name of the panel.
    pub name: &'static str,
    /// CPT code charged for it (FT1-25).
    pub cpt: &'static str,
    /// CPT short description.
    pub cpt_name: &'static str,
    /// Price in cents.
    pub price_cents: u64,
    /// The results it reports, one OBX each.
    pub analytes: &'static [Analyte],
}

const fn a(
    loinc: &'static str,
    name: &'static str,
    unit: &'static str,
    range: (f64, f64),
    crit: (f64, f64),
    decimals: usize,
) -> Analyte {
    Analyte {
        loinc,
        name,
        unit,
        low: range.0,
        high: range.1,
        crit_low: crit.0,
        crit_high: crit.1,
        decimals,
    }
}

/// The orderable lab tests.
pub const PANELS: &[Panel] = &[
    Panel {
        loinc: "51990-0",
        name: "Basic metabolic panel - Blood",
        cpt: "80048",
        cpt_name: "BASIC METABOLIC PANEL",
        price_cents: 4_250,
        analytes: &[
            a(
                "2345-7",
                "Glucose [Mass/volume] in Serum or Plasma",
                "mg/dL",
                (70.0, 99.0),
                (40.0, 500.0),
                0,
            ),
            a(
                "2951-2",
                "Sodium [Moles/volume] in Serum or Plasma",
                "mmol/L",
                (136.0, 145.0),
                (120.0, 160.0),
                0,
            ),
            a(
                "2823-3",
                "Potassium [Moles/volume] in Serum or Plasma",
                "mmol/L",
                (3.5, 5.1),
                (2.5, 6.5),
                1,
            ),
            a(
                "2075-0",
                "Chloride [Moles/volume] in Serum or Plasma",
                "mmol/L",
                (98.0, 107.0),
                (80.0, 120.0),
                0,
            ),
            a(
                "2028-9",
                "Carbon dioxide, total [Moles/volume] in Serum or Plasma",
                "mmol/L",
                (22.0, 29.0),
                (10.0, 40.0),
                0,
            ),
            a(
                "3094-0",
                "Urea nitrogen [Mass/volume] in Serum or Plasma",
                "mg/dL",
                (7.0, 20.0),
                (2.0, 100.0),
                0,
            ),
            a(
                "2160-0",
                "Creatinine [Mass/volume] in Serum or Plasma",
                "mg/dL",
                (0.6, 1.3),
                (0.2, 7.0),
                2,
            ),
            a(
                "17861-6",
                "Calcium [Mass/volume] in Serum or Plasma",
                "mg/dL",
                (8.6, 10.3),
                (6.0, 13.0),
                1,
            ),
        ],
    },
    Panel {
        loinc: "58410-2",
        name: "CBC panel - Blood by Automated count",
        cpt: "85027",
        cpt_name: "COMPLETE BLOOD COUNT AUTOMATED",
        price_cents: 2_875,
        analytes: &[
            a(
                "6690-2",
                "Leukocytes [#/volume] in Blood by Automated count",
                "10*3/uL",
                (4.5, 11.0),
                (1.0, 30.0),
                1,
            ),
            a(
                "789-8",
                "Erythrocytes [#/volume] in Blood by Automated count",
                "10*6/uL",
                (4.2, 5.9),
                (2.0, 8.0),
                2,
            ),
            a(
                "718-7",
                "Hemoglobin [Mass/volume] in Blood",
                "g/dL",
                (12.0, 17.5),
                (7.0, 20.0),
                1,
            ),
            a(
                "4544-3",
                "Hematocrit [Volume Fraction] of Blood by Automated count",
                "%",
                (36.0, 52.0),
                (20.0, 60.0),
                1,
            ),
            a(
                "777-3",
                "Platelets [#/volume] in Blood by Automated count",
                "10*3/uL",
                (150.0, 400.0),
                (20.0, 1000.0),
                0,
            ),
        ],
    },
    Panel {
        loinc: "57698-3",
        name: "Lipid panel with direct LDL - Serum or Plasma",
        cpt: "80061",
        cpt_name: "LIPID PANEL",
        price_cents: 5_600,
        analytes: &[
            a(
                "2093-3",
                "Cholesterol [Mass/volume] in Serum or Plasma",
                "mg/dL",
                (100.0, 199.0),
                (50.0, 500.0),
                0,
            ),
            a(
                "2571-8",
                "Triglyceride [Mass/volume] in Serum or Plasma",
                "mg/dL",
                (35.0, 149.0),
                (10.0, 1000.0),
                0,
            ),
            a(
                "2085-9",
                "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
                "mg/dL",
                (40.0, 90.0),
                (10.0, 150.0),
                0,
            ),
            a(
                "18262-6",
                "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay",
                "mg/dL",
                (50.0, 99.0),
                (10.0, 400.0),
                0,
            ),
        ],
    },
    Panel {
        loinc: "10839-9",
        name: "Troponin I.cardiac [Mass/volume] in Serum or Plasma",
        cpt: "84484",
        cpt_name: "TROPONIN QUANTITATIVE",
        price_cents: 7_900,
        analytes: &[a(
            "10839-9",
            "Troponin I.cardiac [Mass/volume] in Serum or Plasma",
            "ng/mL",
            (0.0, 0.04),
            (-1.0, 0.5),
            2,
        )],
    },
    Panel {
        loinc: "4548-4",
        name: "Hemoglobin A1c/Hemoglobin.total in Blood",
        cpt: "83036",
        cpt_name: "HEMOGLOBIN GLYCOSYLATED A1C",
        price_cents: 3_300,
        analytes: &[a(
            "4548-4",
            "Hemoglobin A1c/Hemoglobin.total in Blood",
            "%",
            (4.0, 5.6),
            (2.0, 15.0),
            1,
        )],
    },
    Panel {
        loinc: "3016-3",
        name: "Thyrotropin [Units/volume] in Serum or Plasma",
        cpt: "84443",
        cpt_name: "THYROID STIMULATING HORMONE",
        price_cents: 6_100,
        analytes: &[a(
            "3016-3",
            "Thyrotropin [Units/volume] in Serum or Plasma",
            "m[IU]/L",
            (0.4, 4.0),
            (0.01, 50.0),
            2,
        )],
    },
    Panel {
        loinc: "6301-6",
        name: "INR in Platelet poor plasma by Coagulation assay",
        cpt: "85610",
        cpt_name: "PROTHROMBIN TIME",
        price_cents: 1_900,
        analytes: &[a(
            "6301-6",
            "INR in Platelet poor plasma by Coagulation assay",
            "{INR}",
            (0.8, 1.2),
            (0.5, 5.0),
            1,
        )],
    },
];

/// Charges that are not a lab test: (CPT, description, price in cents).
pub const VISIT_CHARGES: &[(&str, &str, u64)] = &[
    ("36415", "ROUTINE VENIPUNCTURE", 1_200),
    ("99213", "OFFICE VISIT EST PATIENT LOW", 9_500),
    ("99223", "INITIAL HOSPITAL CARE HIGH", 28_000),
    ("99232", "SUBSEQUENT HOSPITAL CARE MOD", 11_000),
];

/// Appointment reasons (SCH-7) and types (SCH-8).
pub const APPOINTMENT_REASONS: &[(&str, &str)] = &[
    ("ROUTINE", "Routine follow-up"),
    ("CHECKUP", "Annual check-up"),
    ("FOLLOWUP", "Post-discharge follow-up"),
    ("WALKIN", "Walk-in"),
];
