//! Loading, checking, selecting and transforming, on small route files.

use std::path::Path;

use medbus_adapters::hl7::parser::Message;

use super::*;

fn known() -> Known {
    Known {
        channels: Some(["adt".to_string(), "lab".to_string()].into()),
        destinations: Some(["his".to_string()].into()),
    }
}

/// Writes `files` (name, text) under a temp dir's `routes/` (and `tables/`), then loads.
fn load_files(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<Routes, Problems>) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let r = load_dir(&dir.path().join("routes"), dir.path(), &known(), true);
    (dir, r)
}

fn ok(files: &[(&str, &str)]) -> (tempfile::TempDir, Routes) {
    let (d, r) = load_files(files);
    (d, r.unwrap_or_else(|p| panic!("{p}")))
}

fn lines(msg: &[u8]) -> String {
    dry_run::segments_on_lines(msg)
}

const ADT: &[u8] = b"MSH|^~\\&|EPIC|NORTH|MEDBUS|H|20240101120000||ADT^A01^ADT_A01|C1|P|2.5\rEVN|A01\rPID|1||123^^^H^MR~456^^^H^PI||DOE^JOHN||19800101|1|||1 MAIN ST^^TOWN||||||||123-45-6789\rPV1|1|I|W1^101^A\r";

const ORU: &[u8] = b"MSH|^~\\&|LIS|LAB1|MEDBUS|H|20240101120000||ORU^R01|L1|P|2.5\rPID|1||123^^^H^MR\rOBR|1|P1|F1|CHEM^Chemistry^L\rOBX|1|NM|GLU^Glucose^L||5.5|mmol/L|3.9-5.8|N\rOBX|2|NM|K^Potassium^L||6.9|mmol/L|3.5-5.1|HH\rOBX|3|ST|NOTE^Note^L||see \\T\\ recheck\r";

#[test]
fn select_filters_by_channel_type_facility_and_fields() {
    let (_d, routes) = ok(&[(
        "routes/r.toml",
        r#"
[routes.adt-all]
channels = ["adt"]
when = { type = "ADT^*" }
to = { services = ["registration"] }

[routes.north-admits]
channels = ["*"]
when = { type = ["ADT^A01", "ADT^A04"], sending_facility = "NORTH", all = [{ field = "PID-3.5", equals = "PI" }] }
to = { services = "registration", destinations = ["his"] }

[routes.critical]
channels = ["lab"]
to = { services = ["notifications"] }
[routes.critical.when]
type = "ORU^R01"
any = [
  { field = "OBX-8", in = ["HH", "LL", "AA"] },
  { field = "OBX-5", gt = 10 },
]
not = { field = "PID-3.1", regex = "^TEST" }

[routes.no-visit]
channels = ["adt"]
when = { type = "ADT", field = "PV1-19", exists = false, not = { sending_application = "X*" } }
to = { services = ["registration"] }
"#,
    )]);
    let names = |msg: &[u8], ch: &str| -> Vec<String> {
        let m = Message::parse(msg).unwrap();
        routes.select(&m, ch).iter().map(|r| r.name().to_string()).collect()
    };
    assert_eq!(names(ADT, "adt"), ["adt-all", "north-admits", "no-visit"]);
    assert_eq!(names(ADT, "lab"), ["north-admits"], "a route takes only its channels");
    assert_eq!(names(ORU, "lab"), ["critical"]);
    assert!(names(ORU, "adt").is_empty(), "filtered");
    let low = String::from_utf8_lossy(ORU).replace("HH", "H").into_bytes();
    assert!(names(&low, "lab").is_empty(), "no critical flag and 6.9 <= 10");
    let test_patient = String::from_utf8_lossy(ORU)
        .replace("PID|1||123", "PID|1||TEST9")
        .into_bytes();
    assert!(names(&test_patient, "lab").is_empty(), "not");
    let a08 = String::from_utf8_lossy(ADT)
        .replace("ADT^A01^ADT_A01", "ADT^A08")
        .into_bytes();
    assert_eq!(names(&a08, "adt"), ["adt-all", "no-visit"]);
    let with_visit = String::from_utf8_lossy(ADT)
        .replace("PV1|1|I|W1^101^A", "PV1|1|I|W1||||||||||||||||V9")
        .into_bytes();
    assert_eq!(names(&with_visit, "adt"), ["adt-all", "north-admits"]);
}

#[test]
fn transforms_change_only_their_place_and_keep_escapes() {
    let (_d, routes) = ok(&[
        (
            "routes/r.toml",
            r#"
[routes.t]
channels = ["adt"]
to = { services = ["registration"] }

[[routes.t.transform]]
set = "MSH-5"
value = "A&B|C"

[[routes.t.transform]]
clear = "PID-19"

[[routes.t.transform]]
translate = "PID-8"
table = "tables/sex.csv"

[[routes.t.transform]]
copy = "PID-3[2].1"
to = "PID-2"

[[routes.t.transform]]
set = "PV1-3.4"
value = "NEW"

[[routes.t.transform]]
set = "PV1-10"
value = "MED"
"#,
        ),
        ("tables/sex.csv", "from,to,display\n1,M,Male\n2,F,Female\n"),
    ]);
    let route = routes.get("t").unwrap();
    let out = route.apply(&Message::parse(ADT).unwrap()).unwrap();
    assert_eq!(
        lines(&out),
        "MSH|^~\\&|EPIC|NORTH|A\\T\\B\\F\\C|H|20240101120000||ADT^A01^ADT_A01|C1|P|2.5\n\
         EVN|A01\n\
         PID|1|456|123^^^H^MR~456^^^H^PI||DOE^JOHN||19800101|M|||1 MAIN ST^^TOWN||||||||\n\
         PV1|1|I|W1^101^A^NEW|||||||MED\n"
    );
    assert_eq!(
        Message::parse(&out).unwrap().get("MSH-5").unwrap().unwrap().text(),
        "A&B|C"
    );
    // Untouched segments are the same bytes, terminators included.
    let crlf = String::from_utf8_lossy(ADT).replace('\r', "\r\n").into_bytes();
    let out = route.apply(&Message::parse(&crlf).unwrap()).unwrap();
    assert!(
        out.windows(9).any(|w| w == b"EVN|A01\r\n"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn map_code_moves_the_local_code_to_the_alternate_and_touches_every_obx() {
    let (_d, routes) = ok(&[
        (
            "routes/lab.toml",
            r#"
[routes.lab]
channels = ["lab"]
when = { type = "ORU^R01" }
to = { services = ["results"] }
transform = [
  { map_code = "OBX-3", table = "tables/lab.csv" },
  { translate = "OBX-8", table = "tables/flags.csv", default = "?" },
]
"#,
        ),
        (
            "tables/lab.csv",
            "from,loinc,display\nGLU,2345-7,\"Glucose [Mass/volume]\"\nK,2823-3,Potassium\n",
        ),
        ("tables/flags.csv", "from,to\nHH,CRIT\n"),
    ]);
    let route = routes.get("lab").unwrap();
    let (out, notes) = route.apply_explained(&Message::parse(ORU).unwrap());
    let out = out.unwrap();
    let text = lines(&out);
    assert!(
        text.contains("OBX|1|NM|2345-7^Glucose [Mass/volume]^LN^GLU^Glucose^L||5.5|mmol/L|3.9-5.8|?\n"),
        "{text}"
    );
    assert!(
        text.contains("OBX|2|NM|2823-3^Potassium^LN^K^Potassium^L||6.9|mmol/L|3.5-5.1|CRIT\n"),
        "{text}"
    );
    assert!(
        text.contains("OBX|3|ST|NOTE^Note^L||see \\T\\ recheck\n"),
        "an absent value is not translated: {text}"
    );
    assert!(notes.iter().any(|n| n.contains("OBX(3)-3[1] unchanged")), "{notes:#?}");
    // A second run leaves LN codes alone.
    let again = route.apply(&Message::parse(&out).unwrap()).unwrap();
    assert!(lines(&again).contains("2345-7^Glucose [Mass/volume]^LN^GLU^Glucose^L|"));
}

#[test]
fn a_miss_can_be_an_error() {
    let (_d, routes) = ok(&[
        (
            "routes/lab.toml",
            "[routes.lab]\nchannels = [\"lab\"]\nto = { services = [\"results\"] }\ntransform = [{ map_code = \"OBX-3\", table = \"tables/lab.csv\", on_miss = \"error\" }]\n",
        ),
        ("tables/lab.csv", "from,loinc\nGLU,2345-7\n"),
    ]);
    let err = routes
        .get("lab")
        .unwrap()
        .apply(&Message::parse(ORU).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("no entry for \"K\""), "{err}");
}

#[test]
fn every_problem_is_reported_with_its_line() {
    let (dir, r) = load_files(&[
        (
            "routes/a.toml",
            r#"[routes.one]
channels = ["adt", "nope"]
when = { field = "PID-x", equals = "1" }
to = { services = ["registration", "billingz"], destinations = ["his", "erp"] }

[routes.two]
channels = ["adt"]
to = { services = ["results"] }
colour = "red"
[routes.two.when]
all = [
  { field = "OBX-5", regex = "([a-z" },
  { lt = 3 },
]
[[routes.two.transform]]
translate = "OBX-3.1"
table = "tables/missing.csv"
[[routes.two.transform]]
map_code = "OBX-3"
table = "tables/bad.csv"
[[routes.two.transform]]
set = "MSH-2"
value = "x"
"#,
        ),
        (
            "routes/b.toml",
            "[routes.one]\nchannels = [\"adt\"]\nto = { services = [\"results\"] }\n",
        ),
        ("routes/c.toml", "[routes.three\nchannels = 1\n"),
        ("tables/bad.csv", "from,loinc\nA,1\nB\nA,2\n"),
    ]);
    let problems = r.unwrap_err().0;
    let shown: Vec<String> = problems
        .iter()
        .map(|p| p.to_string().replace(&format!("{}/", dir.path().display()), ""))
        .collect();
    let want = [
        "routes/a.toml:2: routes.one.channels[1]: unknown channel \"nope\"",
        "routes/a.toml:3: routes.one.when.field: not a field path",
        "routes/a.toml:4: routes.one.to.services[1]: unknown service \"billingz\"",
        "routes/a.toml:4: routes.one.to.destinations[1]: unknown destination \"erp\"",
        "routes/a.toml:9: routes.two.colour: unknown key",
        "routes/a.toml:12: routes.two.when.all[0].regex: not a valid regular expression",
        "routes/a.toml:13: routes.two.when.all[1].lt: lt needs field",
        "routes/a.toml:17: routes.two.transform[0].table: no table file tables/missing.csv",
        "routes/a.toml:22: routes.two.transform[2].set: MSH-2 holds the delimiters",
        "routes/b.toml:1: routes.one: duplicate route name: also defined at",
        "routes/c.toml:1: not valid TOML",
        "tables/bad.csv:3: 1 columns",
        "tables/bad.csv:4: \"A\" is already in the table (line 2)",
    ];
    for w in want {
        assert!(shown.iter().any(|s| s.starts_with(w)), "missing {w:?} in {shown:#?}");
    }
    assert_eq!(shown.len(), want.len(), "{shown:#?}");
}

#[test]
fn routes_dir_is_relative_to_the_config_file() {
    let c = medbus_bus::config::Config::default();
    assert_eq!(
        routes_dir(&c, &config_dir(Some(Path::new("config/medbus.toml")))),
        Path::new("config/routes")
    );
    assert_eq!(
        config_dir(Some(Path::new("medbus.toml"))).join("routes"),
        Path::new("routes")
    );
    assert_eq!(config_dir(None), Path::new(""));
    let (_d, r) = load_files(&[]);
    assert!(
        r.is_err(),
        "an explicitly required directory that is missing is a problem"
    );
}

#[test]
fn a_value_of_the_wrong_type_is_reported_once_without_follow_on_noise() {
    let (dir, r) = load_files(&[(
        "routes/a.toml",
        "[routes.a]\nchannels = [\"adt\"]\nenabled = \"yes\"\nto = { services = [\"results\"] }\nwhen = { field = \"OBX-5\", lt = \"x\", colour = 1 }\n",
    )]);
    let shown: Vec<String> = r
        .unwrap_err()
        .0
        .iter()
        .map(|p| p.to_string().replace(&format!("{}/", dir.path().display()), ""))
        .collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert!(
        shown[0].starts_with("routes/a.toml:3: routes.a.enabled: invalid type"),
        "{shown:#?}"
    );
    assert!(
        shown[1].starts_with("routes/a.toml:5: routes.a.when.lt: invalid type"),
        "{shown:#?}"
    );
    assert!(
        shown[2].starts_with("routes/a.toml:5: routes.a.when.colour: unknown key"),
        "{shown:#?}"
    );
}
