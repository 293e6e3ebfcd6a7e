//! `medbus check` on broken route files and tables: every problem, with its
//! file and line; and `medbus route test` on sample messages.

use std::path::Path;
use std::process::{Command, Output};

const CONFIG: &str = r#"
[channels.adt]
listen = "127.0.0.1:0"

[channels.lab]
listen = "127.0.0.1:1"

[destinations.his]
addr = "127.0.0.1:6661"
"#;

const BROKEN: &str = r#"# line 1
[routes.adt-in]
channels = ["adt", "pharmacy"]
to = { services = ["registration", "payroll"], destinations = ["his", "erp"] }

[routes.adt-in.when]
type = "ADT^*"
all = [
  { field = "PID-3.x", equals = "1" },
  { field = "OBX-5", regex = "(unclosed" },
  { field = "OBX-5", gt = 5, colour = "red" },
]

[[routes.adt-in.transform]]
translate = "PID-8"
table = "tables/missing.csv"

[[routes.adt-in.transform]]
map_code = "OBX-3"
table = "tables/lab.csv"

[routes.lab-in]
channels = ["lab"]
to = { services = ["results"] }
"#;

const DUPLICATE: &str = "[routes.lab-in]\nchannels = [\"lab\"]\nto = { services = [\"results\"] }\n";

const BAD_TABLE: &str = "from,loinc,display\nGLU,2345-7,Glucose\nK\nGLU,9999-9\n";

/// Runs the binary with a clean MEDBUS_* environment.
fn medbus(args: &[&str], config: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medbus"));
    cmd.arg("--config").arg(config).args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("MEDBUS_")) {
        cmd.env_remove(k);
    }
    cmd.output().expect("medbus runs")
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

#[test]
fn check_reports_every_route_and_table_problem_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "medbus.toml", CONFIG);
    write(d, "routes/adt.toml", BROKEN);
    write(d, "routes/more/lab.toml", DUPLICATE);
    write(d, "tables/lab.csv", BAD_TABLE);
    let out = medbus(&["check"], &d.join("medbus.toml"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let routes = d.join("routes").display().to_string();
    let tables = d.join("tables").display().to_string();
    let want = [
        format!("{routes}/adt.toml:3: routes.adt-in.channels[1]: unknown channel \"pharmacy\""),
        format!("{routes}/adt.toml:4: routes.adt-in.to.services[1]: unknown service \"payroll\""),
        format!("{routes}/adt.toml:4: routes.adt-in.to.destinations[1]: unknown destination \"erp\""),
        format!("{routes}/adt.toml:9: routes.adt-in.when.all[0].field: not a field path"),
        format!("{routes}/adt.toml:10: routes.adt-in.when.all[1].regex: not a valid regular expression"),
        format!("{routes}/adt.toml:11: routes.adt-in.when.all[2].colour: unknown key"),
        format!("{routes}/adt.toml:16: routes.adt-in.transform[0].table: no table file tables/missing.csv"),
        format!("{routes}/more/lab.toml:1: routes.lab-in: duplicate route name: also defined at {routes}/adt.toml:22"),
        format!("{tables}/lab.csv:3: 1 columns"),
        format!("{tables}/lab.csv:4: \"GLU\" is already in the table (line 2)"),
    ];
    for w in &want {
        assert!(err.contains(w.as_str()), "missing {w:?} in:\n{err}");
    }
    assert!(
        err.starts_with(&format!("{} configuration problems", want.len())),
        "{err}"
    );
}

#[test]
fn check_counts_routes_and_tables_of_a_valid_setup() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "medbus.toml", CONFIG);
    write(d, "routes/lab.toml", DUPLICATE);
    let out = medbus(&["check"], &d.join("medbus.toml"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("2 channel(s), 1 destination(s), 1 route(s) in 1 file(s)"),
        "{stdout}"
    );
}

#[test]
fn route_test_shows_the_path_of_each_message_with_the_shipped_routes() {
    let dir = tempfile::tempdir().unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/medbus.toml");
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("routes/tests/golden");
    // Two messages in MLLP frames, then a line that is no message.
    let mut input = Vec::new();
    for f in [
        "adt-to-registration/input/a01-admit.hl7",
        "critical-results/input/oru-potassium-hh.hl7",
    ] {
        input.push(0x0b);
        input.extend(std::fs::read(golden.join(f)).unwrap());
        input.extend([0x1c, 0x0d]);
    }
    let file = dir.path().join("sample.hl7");
    std::fs::write(&file, &input).unwrap();
    let out = medbus(&["route", "test", file.to_str().unwrap(), "--channel", "adt"], &config);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "2 message(s) from",
        "== message 1: ADT^A01^ADT_A01 control id PAS000101",
        "taken by 1 route(s): adt-to-registration",
        "translate: PID-8 \"2\" → \"F\"",
        "PID|1||100234^^^NORTH^MR~987654^^^NHS^NH||DOE^JANE^Q||19800412|F|",
        "medbus.events.patient.registered",
        "taken by 2 route(s): lab-results-loinc, critical-results",
        "map_code to LN: OBX(2)-3[1] \"K^Potassium^L\" → \"2823-3^Potassium [Moles/volume] in Serum or Plasma^LN^K^Potassium^L\"",
        "2 message(s): 2 routed, 0 filtered, 0 unparseable",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }

    std::fs::write(
        &file,
        b"MSH|^~\\&|A|B|||20240101||ADT^A01|1|P|2.5\rPID|1\n\nNOT A SEGMENT\r",
    )
    .unwrap();
    let out = medbus(&["route", "test", file.to_str().unwrap()], &config);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "an unparseable message: exit 1\n{text}");
    assert!(text.contains("== message 1: cannot"), "{text}");
}
