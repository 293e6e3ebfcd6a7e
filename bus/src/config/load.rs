//! The layered loader: built-in defaults, then the file, then `MEDBUS_*`
//! environment variables; then validation. Every problem is collected and
//! reported at once with file and line (or the environment variable).
//!
//! Unknown keys are collected with `serde_ignored` rather than refused with
//! `deny_unknown_fields`, which would stop at the first one; type errors carry
//! their key path through `serde_path_to_error`; each section is read on its
//! own so that a mistake in one does not hide mistakes in another.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::problem::{line_of, line_starts, LineIndex, Origin, Problem, Problems};
use super::validate::validate;
use super::Config;

/// Environment variables with the `MEDBUS_` prefix that are not config keys.
const NOT_CONFIG_VARS: [&str; 4] = [
    "MEDBUS_CONFIG",
    "MEDBUS_REQUIRE_SERVICES",
    "MEDBUS_NATS_SERVER",
    "MEDBUS_TEST_POSTGRES_URL",
];

/// The environment variable that sets `key` (`backbone.url` → `MEDBUS_BACKBONE_URL`).
pub fn env_var_for(key: &str) -> String {
    format!("MEDBUS_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Every settable key (dotted path) with its default value, in file order;
/// a subscription's keys as `subscriptions.<name>.<key>`.
pub fn known_keys() -> Vec<(String, toml::Value)> {
    let mut out = Vec::new();
    if let Ok(toml::Value::Table(t)) = toml::Value::try_from(Config::default()) {
        flatten(&t, "", &mut out);
    }
    let sub = super::subscriptions::known_keys();
    out.extend(sub.into_iter().map(|(k, v)| (format!("subscriptions.<name>.{k}"), v)));
    let fhir = super::fhir_destinations::known_keys();
    out.extend(
        fhir.into_iter()
            .map(|(k, v)| (format!("fhir_destinations.<name>.{k}"), v)),
    );
    let dicom = super::dicom::known_keys();
    out.extend(dicom.into_iter().map(|(k, v)| (format!("dicom.<name>.{k}"), v)));
    let dicom_destinations = super::dicom_destinations::known_keys();
    out.extend(
        dicom_destinations
            .into_iter()
            .map(|(k, v)| (format!("dicom_destinations.<name>.{k}"), v)),
    );
    out
}

fn flatten(t: &toml::Table, prefix: &str, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in t {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(inner) => flatten(inner, &path, out),
            other => out.push((path, other.clone())),
        }
    }
}

/// Loads the configuration: defaults, then `file` (if any), then `env`.
pub fn load(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Config, Problems> {
    let mut problems = Vec::new();
    let mut table = toml::Table::new();
    let mut lines = LineIndex::default();
    let file_path = file.map(Path::to_path_buf);
    if let Some(path) = file {
        match std::fs::read_to_string(path) {
            Err(e) => problems.push(Problem {
                origin: Origin::File {
                    path: path.to_path_buf(),
                    line: None,
                },
                key: String::new(),
                message: format!("cannot read: {e}"),
            }),
            Ok(text) => match text.parse::<toml::Table>() {
                Ok(t) => {
                    lines = LineIndex::new(&text);
                    table = t;
                }
                Err(e) => {
                    let line = e.span().map(|s| line_of(&line_starts(&text), s.start));
                    problems.push(Problem {
                        origin: Origin::File {
                            path: path.to_path_buf(),
                            line,
                        },
                        key: String::new(),
                        message: format!("not valid TOML: {}", e.message()),
                    });
                }
            },
        }
    }
    let from_env = apply_env(&mut table, env, &mut problems);
    let origin = |key: &str| -> Origin {
        if let Some(var) = from_env.get(key) {
            return Origin::Env(var.clone());
        }
        match &file_path {
            Some(p) => Origin::File {
                path: p.clone(),
                line: lines.line(key),
            },
            None => Origin::Default,
        }
    };
    let mut config = Config::default();
    for (key, value) in table {
        let mut found = Vec::new();
        match key.as_str() {
            "data_dir" => read(&key, value, &mut config.data_dir, &mut found),
            "http" => read(&key, value, &mut config.http, &mut found),
            "backbone" => read(&key, value, &mut config.backbone, &mut found),
            "store" => read(&key, value, &mut config.store, &mut found),
            "log" => read(&key, value, &mut config.log, &mut found),
            "shutdown" => read(&key, value, &mut config.shutdown, &mut found),
            "channels" => read(&key, value, &mut config.channels, &mut found),
            "destinations" => read(&key, value, &mut config.destinations, &mut found),
            "routes_dir" => read(&key, value, &mut config.routes_dir, &mut found),
            "services" => read(&key, value, &mut config.services, &mut found),
            "notifications" => read(&key, value, &mut config.notifications, &mut found),
            "subscriptions" => read(&key, value, &mut config.subscriptions, &mut found),
            "fhir_destinations" => read(&key, value, &mut config.fhir_destinations, &mut found),
            "fhir" => read(&key, value, &mut config.fhir, &mut found),
            "dicom" => read(&key, value, &mut config.dicom, &mut found),
            "dicom_destinations" => read(&key, value, &mut config.dicom_destinations, &mut found),
            _ => found.push((key.clone(), "unknown key".to_string())),
        }
        problems.extend(found.into_iter().map(|(k, message)| Problem {
            origin: origin(&k),
            key: k,
            message,
        }));
    }
    for (key, message) in validate(&config) {
        problems.push(Problem {
            origin: origin(&key),
            key,
            message,
        });
    }
    // File order first (by line), then environment variables.
    problems.sort_by_key(|p| match &p.origin {
        Origin::File { line, .. } => (0, line.unwrap_or(0), String::new()),
        Origin::Env(var) => (1, 0, var.clone()),
        Origin::Default => (2, 0, String::new()),
    });
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(Problems(problems))
    }
}

/// Deserialises one section into `slot`, collecting unknown keys and type
/// errors. A key with a bad value is reported, dropped (its default stands) and
/// the section read again, so one bad value does not hide the next.
fn read<T: DeserializeOwned>(
    section: &str,
    mut value: toml::Value,
    slot: &mut T,
    problems: &mut Vec<(String, String)>,
) {
    for _ in 0..64 {
        let mut unknown = Vec::new();
        let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
        let ignored = serde_ignored::Deserializer::new(value.clone(), &mut on_unknown);
        match serde_path_to_error::deserialize::<_, T>(ignored) {
            Ok(v) => {
                *slot = v;
                problems.extend(
                    unknown
                        .into_iter()
                        .map(|u| (format!("{section}.{u}"), "unknown key".to_string())),
                );
                return;
            }
            Err(e) => {
                let inner = e.path().to_string();
                let top_level = inner == "." || inner.is_empty();
                let key = if top_level {
                    section.to_string()
                } else {
                    format!("{section}.{inner}")
                };
                problems.push((key, clean(&e.into_inner().to_string())));
                if top_level || !remove_path(&mut value, &inner) {
                    return;
                }
            }
        }
    }
}

/// Removes `a.b.c` from a table value; false when it is not there.
fn remove_path(value: &mut toml::Value, path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return false };
    let mut v = value;
    for p in parts {
        match v.get_mut(p) {
            Some(inner) => v = inner,
            None => return false,
        }
    }
    v.as_table_mut().is_some_and(|t| t.remove(last).is_some())
}

/// serde's messages mention internals; keep the useful part.
fn clean(msg: &str) -> String {
    msg.lines().next().unwrap_or(msg).trim().to_string()
}

/// Applies `MEDBUS_*` variables onto `table`; returns key → variable for each applied.
fn apply_env(
    table: &mut toml::Table,
    env: &BTreeMap<String, String>,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, String> {
    let known: Vec<String> = known_keys().into_iter().map(|(k, _)| k).collect();
    let by_var: BTreeMap<String, &String> = known.iter().map(|k| (env_var_for(k), k)).collect();
    let mut applied = BTreeMap::new();
    for (var, raw) in env.iter().filter(|(v, _)| v.starts_with("MEDBUS_")) {
        if NOT_CONFIG_VARS.contains(&var.as_str()) || var.starts_with("MEDBUS_TEST_") {
            continue;
        }
        // A subscription's keys are known only once the file names it.
        let named = super::subscriptions::env_key(table, var)
            .or_else(|| super::fhir_destinations::env_key(table, var))
            .or_else(|| super::dicom::env_key(table, var))
            .or_else(|| super::dicom_destinations::env_key(table, var));
        let Some(key) = by_var.get(var).map(|k| k.as_str()).or(named.as_deref()) else {
            problems.push(Problem {
                origin: Origin::Env(var.clone()),
                key: String::new(),
                message: "not a medbus setting (see docs/configuration.md for the list)".into(),
            });
            continue;
        };
        let key = key.to_string();
        set_path(table, &key, env_value(raw));
        applied.insert(key, var.clone());
    }
    applied
}

/// An environment value as TOML: numbers and booleans as such, anything else a string.
fn env_value(raw: &str) -> toml::Value {
    if let Ok(t) = format!("v = {raw}").parse::<toml::Table>() {
        if let Some(v) = t.get("v") {
            if !matches!(v, toml::Value::Table(_) | toml::Value::Datetime(_)) {
                return v.clone();
            }
        }
    }
    toml::Value::String(raw.to_string())
}

fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut t = table;
    for p in parts {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(inner) = entry else { return };
        t = inner;
    }
    t.insert(last.to_string(), value);
}

/// The process environment as a map.
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

/// The default config file, when it exists: `MEDBUS_CONFIG`, else `config/medbus.toml`.
pub fn default_file(env: &BTreeMap<String, String>) -> Option<PathBuf> {
    if let Some(p) = env.get("MEDBUS_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from("config/medbus.toml");
    p.exists().then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("medbus.toml");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn no_file_no_env_gives_defaults() {
        assert_eq!(load(None, &env(&[])).unwrap(), Config::default());
    }

    #[test]
    fn layers_file_then_env() {
        let (_d, p) = write("data_dir = \"/srv/x\"\n[backbone]\nurl = \"nats://127.0.0.1:4222\"\nack_wait = \"5s\"\n");
        let c = load(
            Some(&p),
            &env(&[
                ("MEDBUS_BACKBONE_ACK_WAIT", "750ms"),
                ("MEDBUS_BACKBONE_MAX_DELIVER", "9"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/srv/x"));
        assert_eq!(c.backbone.url, "nats://127.0.0.1:4222");
        assert_eq!(c.backbone.ack_wait, Duration::from_millis(750), "env beats file");
        assert_eq!(c.backbone.max_deliver, 9, "numbers from env are numbers");
        assert_eq!(c.store, Default::default());
    }

    #[test]
    fn every_problem_is_reported_with_its_line_or_variable() {
        let (_d, p) = write(
            "[http]\naddr = \"nowhere\"\n\n[backbone]\nurl = \"nats://x:4222\"\nack_wiat = \"1s\"\n\n[store]\nmax_connections = \"many\"\n\n[extra]\nx = 1\n",
        );
        let problems = load(
            Some(&p),
            &env(&[("MEDBUS_BACKBONE_MAX_DELIVER", "0"), ("MEDBUS_NOPE", "1")]),
        )
        .unwrap_err()
        .0;
        let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        let file = p.display().to_string();
        let want = [
            format!("{file}:2: http.addr:"),
            format!("{file}:6: backbone.ack_wiat: unknown key"),
            format!("{file}:9: store.max_connections:"),
            format!("{file}:11: extra: unknown key"),
            "environment MEDBUS_NOPE: not a medbus setting".to_string(),
            "environment MEDBUS_BACKBONE_MAX_DELIVER: backbone.max_deliver: must be at least 1".to_string(),
        ];
        for w in &want {
            assert!(
                shown.iter().any(|s| s.starts_with(w.as_str())),
                "missing {w:?} in {shown:#?}"
            );
        }
        assert_eq!(shown.len(), want.len(), "{shown:#?}");
    }

    #[test]
    fn a_subscription_secret_comes_from_the_environment() {
        let (_d, p) = write(
            "[subscriptions.erp-main]\nsubject = \"medbus.events.patient.>\"\nurl = \"http://127.0.0.1:9/hook\"\n",
        );
        let c = load(Some(&p), &env(&[("MEDBUS_SUBSCRIPTIONS_ERP_MAIN_SECRET", "s3cret")])).unwrap();
        assert_eq!(c.subscriptions["erp-main"].secret.expose(), "s3cret");
        let problems = load(Some(&p), &env(&[])).unwrap_err().0;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].to_string().contains("MEDBUS_SUBSCRIPTIONS_ERP_MAIN_SECRET"),
            "{}",
            problems[0]
        );
        let keys: Vec<String> = known_keys().into_iter().map(|(k, _)| k).collect();
        assert!(keys.contains(&"subscriptions.<name>.secret".to_string()), "{keys:?}");
    }

    #[test]
    fn toml_syntax_error_has_a_line() {
        let (_d, p) = write("[backbone]\nurl = \"embedded\"\nmax_deliver = = 3\n");
        let problems = load(Some(&p), &env(&[])).unwrap_err().0;
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0]
                .to_string()
                .starts_with(&format!("{}:3: not valid TOML", p.display())),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn missing_file_is_a_problem() {
        let problems = load(Some(Path::new("/nonexistent/medbus.toml")), &env(&[]))
            .unwrap_err()
            .0;
        assert!(problems[0].message.starts_with("cannot read"));
    }

    #[test]
    fn every_key_has_an_env_var_and_the_shipped_file_is_valid() {
        let keys: Vec<String> = known_keys().into_iter().map(|(k, _)| k).collect();
        assert!(keys.contains(&"backbone.url".to_string()) && keys.contains(&"data_dir".to_string()));
        assert_eq!(env_var_for("http.addr"), "MEDBUS_HTTP_ADDR");
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/medbus.toml");
        let mut c = load(Some(&shipped), &env(&[])).unwrap();
        let adt = c.channels.remove("adt").expect("the shipped file has the adt channel");
        assert_eq!(
            adt,
            crate::config::ChannelConfig::default(),
            "its settings spell out the channel defaults"
        );
        // The shipped file names the example tables beside it; without a file there are none.
        assert_eq!(
            c.services.results.critical_values,
            Path::new("tables/critical_values.csv")
        );
        assert_eq!(c.services.billing.charge_master, Path::new("tables/charge_master.csv"));
        c.services = Default::default();
        let dicom = c
            .dicom
            .remove("modalities")
            .expect("the shipped file has a DICOM channel");
        assert_eq!(
            dicom,
            crate::config::dicom::DicomChannelConfig::default(),
            "its settings spell out the DICOM channel defaults"
        );
        assert_eq!(c, Config::default(), "the rest spells out the defaults");
    }
}
