//! Golden tests of the example routes in config/routes: one test per folder
//! under tests/golden/<route>/, each input message run through that route with
//! the shipped config/medbus.toml and compared with expected/<input>.txt (the
//! message after the route's transforms) and expected/<input>.json (the
//! canonical events). A message the route does not take expects a .txt saying
//! so and no .json.
//!
//! `BLESS=1 cargo test -p medbus-routes --test golden` writes the expected files
//! from what the routes do now; review the diff before committing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use medbus_adapters::hl7::parser::Message;
use medbus_routes::config::dry_run::{events, segments_on_lines, split_messages};

/// One `#[test]` per folder, so that each shows up (and fails) by name.
macro_rules! golden {
    ($($test:ident => $folder:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check_folder($folder);
            }
        )*
        /// Every folder with a test above.
        const FOLDERS: &[&str] = &[$($folder),*];
    };
}

golden! {
    adt_to_registration => "adt-to-registration",
    lab_results_loinc => "lab-results-loinc",
    critical_results => "critical-results",
    orders => "orders",
    appointments => "appointments",
    charges => "charges",
}

const NOT_TAKEN: &str = "not taken: the route's filter does not match this message\n";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn shipped_routes() -> medbus_routes::config::Routes {
    let config_file = root().join("../config/medbus.toml");
    let config = medbus_bus::config::load(Some(&config_file), &BTreeMap::new()).unwrap_or_else(|p| panic!("{p}"));
    let dir = medbus_routes::config::config_dir(Some(&config_file));
    medbus_routes::config::load(&config, &dir).unwrap_or_else(|p| panic!("{p}"))
}

/// What the route makes of one input file: (txt, json) as they are expected.
fn actual(route: &medbus_routes::config::Route, input: &[u8]) -> (String, Option<String>) {
    let parts = split_messages(input);
    assert_eq!(parts.len(), 1, "one message per input file");
    let raw = parts[0].as_ref().expect("input splits");
    let msg = Message::parse(raw).expect("input parses");
    if !route.matches(&msg) {
        return (NOT_TAKEN.to_string(), None);
    }
    match route.apply(&msg) {
        Ok(out) => {
            let json = serde_json::to_string_pretty(&events(&out).to_json()).expect("json") + "\n";
            (segments_on_lines(&out), Some(json))
        }
        Err(e) => (format!("transform failed: {e}\n"), None),
    }
}

fn check_folder(name: &str) {
    let routes = shipped_routes();
    let route = routes
        .get(name)
        .unwrap_or_else(|| panic!("no route {name:?} in config/routes"));
    let folder = root().join("tests/golden").join(name);
    let bless = std::env::var_os("BLESS").is_some();
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(folder.join("input"))
        .expect("input folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "hl7"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "{name}: no input/*.hl7");
    let mut failures = Vec::new();
    for input in inputs {
        let stem = input
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("file name")
            .to_string();
        let (txt, json) = actual(route, &std::fs::read(&input).expect("read input"));
        let txt_path = folder.join("expected").join(format!("{stem}.txt"));
        let json_path = folder.join("expected").join(format!("{stem}.json"));
        if bless {
            std::fs::create_dir_all(folder.join("expected")).expect("expected folder");
            std::fs::write(&txt_path, &txt).expect("write");
            match &json {
                Some(j) => std::fs::write(&json_path, j).expect("write"),
                None => {
                    let _ = std::fs::remove_file(&json_path);
                }
            }
            continue;
        }
        let want_txt = std::fs::read_to_string(&txt_path).unwrap_or_default();
        if want_txt != txt {
            failures.push(format!("{stem}.txt differs\n--- expected\n{want_txt}--- actual\n{txt}"));
        }
        let want_json = std::fs::read_to_string(&json_path).ok();
        if want_json != json {
            failures.push(format!(
                "{stem}.json differs\n--- expected\n{}\n--- actual\n{}",
                want_json.as_deref().unwrap_or("(no file)"),
                json.as_deref()
                    .unwrap_or("(no file: the route does not take it or failed)")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "golden {name}: {} difference(s) (BLESS=1 rewrites the expected files)\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_golden_folder_has_a_test_and_every_example_route_a_folder() {
    let mut folders: Vec<String> = std::fs::read_dir(root().join("tests/golden"))
        .expect("golden folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(String::from))
        .collect();
    folders.sort();
    let mut listed: Vec<String> = FOLDERS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(folders, listed, "add each folder to golden! {{ }} in tests/golden.rs");
    let mut routes: Vec<String> = shipped_routes().iter().map(|r| r.name().to_string()).collect();
    routes.sort();
    assert_eq!(routes, listed, "each route in config/routes has a golden folder");
}
