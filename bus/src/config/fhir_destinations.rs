//! FHIR destinations (`[fhir_destinations.<name>]`): canonical events pushed
//! to a downstream FHIR R4 server as transaction Bundles, one event at a time,
//! with retries and a dead letter carrying the server's OperationOutcome.
//! Each destination has its own durable consumer (`fhir_<name>`), so one slow
//! server never holds up another. See docs/fhir.md.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::subscriptions::{check_pattern, Secret};

/// One FHIR destination (`[fhir_destinations.<name>]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FhirDestinationConfig {
    /// Base URL of the FHIR R4 server (`https://emr.example/fhir`); the
    /// transaction Bundle is POSTed to it. Required.
    pub url: String,
    /// Subject patterns of the events to push (`medbus.events.patient.>`).
    /// Default `["medbus.events.>"]`: every canonical event.
    pub events: Vec<String>,
    /// How long one POST may take. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts per event before it is dead-lettered. Default 8.
    pub max_attempts: u32,
    /// First retry delay; doubles on each failure up to `max_backoff`. Default `1s`.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Longest retry delay, also the most a `Retry-After` is waited. Default `5m`.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Optional `Authorization: Bearer` token. Keep it out of the file: set
    /// `MEDBUS_FHIR_DESTINATIONS_<NAME>_BEARER_TOKEN` (name upper-cased, any
    /// character other than a letter or digit as `_`).
    pub bearer_token: Secret,
    /// False stops delivery (events wait on the backbone) without removing the destination. Default true.
    pub enabled: bool,
}

impl Default for FhirDestinationConfig {
    fn default() -> Self {
        FhirDestinationConfig {
            url: String::new(),
            events: vec!["medbus.events.>".into()],
            timeout: Duration::from_secs(10),
            max_attempts: 8,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            bearer_token: Secret::default(),
            enabled: true,
        }
    }
}

impl FhirDestinationConfig {
    /// True when `subject` matches one of the `events` patterns.
    pub fn wants(&self, subject: &str) -> bool {
        self.events.iter().any(|p| pattern_matches(p, subject))
    }
}

/// True when the concrete `subject` matches the NATS pattern (`*` one token,
/// a final `>` one or more tokens).
pub fn pattern_matches(pattern: &str, subject: &str) -> bool {
    let mut parts = subject.split('.');
    for t in pattern.split('.') {
        match (t, parts.next()) {
            (">", Some(_)) => return true,
            (_, None) => return false,
            ("*", Some(_)) => {}
            (t, Some(p)) if t == p => {}
            _ => return false,
        }
    }
    parts.next().is_none()
}

const CONSUMER_PREFIX: &str = "fhir_";

/// Longest destination name: the consumer `fhir_<name>` must stay a 64-byte token.
pub const MAX_NAME_LEN: usize = 64 - CONSUMER_PREFIX.len();

/// The delivery consumer (and dead-letter stage) of a FHIR destination.
pub fn consumer_name(destination: &str) -> String {
    format!("{CONSUMER_PREFIX}{destination}")
}

/// The environment variable that sets `key` of FHIR destination `name`
/// (`emr-main`, `bearer_token` → `MEDBUS_FHIR_DESTINATIONS_EMR_MAIN_BEARER_TOKEN`).
pub fn env_var(name: &str, key: &str) -> String {
    super::named::env_var("fhir_destinations", name, key)
}

/// The config key (`fhir_destinations.<name>.<key>`) an environment variable
/// sets, for the destinations named in the file `table` (names appear only in
/// the file, so the loader cannot list these variables in advance).
pub fn env_key(table: &toml::Table, var: &str) -> Option<String> {
    super::named::env_key(table, "fhir_destinations", &known_keys(), var)
}

/// Every key of one FHIR destination with its default, for `medbus config keys`.
pub fn known_keys() -> Vec<(String, toml::Value)> {
    super::named::known_keys::<FhirDestinationConfig>()
}

/// Why `url` is not a usable base URL, if it is not.
fn url_problem(url: &str) -> Option<String> {
    if url.is_empty() {
        return Some("required: the base URL of the FHIR server, e.g. \"https://emr.example/fhir\"".into());
    }
    let shown = super::redact_url(url);
    let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else {
        return Some(format!("must be an http:// or https:// URL, got {shown:?}"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Some(format!("has no host: {shown:?}"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("must not contain spaces: {shown:?}"));
    }
    if url.contains(['?', '#']) {
        // The Bundle goes to the base itself; a query would not be a FHIR base.
        return Some(format!("must be the server's base URL, without ? or #: {shown:?}"));
    }
    None
}

/// Problems with one FHIR destination, as (key, message).
pub fn validate(name: &str, d: &FhirDestinationConfig) -> Vec<(String, String)> {
    let mut p = Vec::new();
    let key = |k: &str| format!("fhir_destinations.{name}.{k}");
    if let Err(e) = crate::subjects::check_token(name) {
        p.push((
            format!("fhir_destinations.{name}"),
            format!("not a usable FHIR destination name: {e}"),
        ));
    } else if name.len() > MAX_NAME_LEN {
        p.push((
            format!("fhir_destinations.{name}"),
            format!("FHIR destination names are at most {MAX_NAME_LEN} characters"),
        ));
    }
    if let Some(why) = url_problem(&d.url) {
        p.push((key("url"), why));
    }
    if d.events.is_empty() {
        p.push((
            key("events"),
            "names no pattern: give at least one, e.g. [\"medbus.events.>\"]".into(),
        ));
    }
    for pattern in &d.events {
        if let Err(e) = check_pattern(pattern) {
            p.push((key("events"), e));
        }
    }
    for (k, v) in [("timeout", d.timeout), ("initial_backoff", d.initial_backoff)] {
        if v.is_zero() {
            p.push((key(k), "must be more than 0s".into()));
        }
    }
    if d.max_backoff < d.initial_backoff {
        p.push((key("max_backoff"), "must be at least initial_backoff".into()));
    }
    if d.max_attempts == 0 {
        p.push((key("max_attempts"), "must be at least 1".into()));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> FhirDestinationConfig {
        FhirDestinationConfig {
            url: "https://emr.example/fhir".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_fhir_destination_needs_a_usable_url_and_patterns() {
        assert!(validate("emr", &good()).is_empty());
        let keys: Vec<String> = validate("emr", &FhirDestinationConfig::default())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["fhir_destinations.emr.url"]);
        let bad = FhirDestinationConfig {
            url: "ftp://x".into(),
            events: vec![],
            max_attempts: 0,
            timeout: Duration::ZERO,
            initial_backoff: Duration::from_secs(600),
            ..good()
        };
        let keys: Vec<String> = validate("a.b", &bad).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "fhir_destinations.a.b",
                "fhir_destinations.a.b.url",
                "fhir_destinations.a.b.events",
                "fhir_destinations.a.b.timeout",
                "fhir_destinations.a.b.max_backoff",
                "fhir_destinations.a.b.max_attempts",
            ]
        );
        let patterns = FhirDestinationConfig {
            events: vec!["medbus.events.patient.>".into(), "medbus.ingress.>".into(), "".into()],
            ..good()
        };
        assert_eq!(validate("emr", &patterns).len(), 2, "each bad pattern is named");
        assert_eq!(validate(&"x".repeat(MAX_NAME_LEN + 1), &good()).len(), 1);
        assert!(validate(&"x".repeat(MAX_NAME_LEN), &good()).is_empty());
        assert_eq!(consumer_name(&"x".repeat(MAX_NAME_LEN)).len(), 64);
    }

    #[test]
    fn urls_must_be_a_fhir_base() {
        for ok in [
            "http://127.0.0.1:8080/fhir",
            "https://emr.example/fhir/",
            "https://user:pw@emr.example",
        ] {
            assert_eq!(url_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "emr.example/fhir",
            "http://",
            "https:///fhir",
            "http://:80/fhir",
            "http://emr example/fhir",
            "http://emr.example/fhir?x=1",
        ] {
            assert!(url_problem(bad).is_some(), "{bad:?}");
        }
        let why = url_problem("ftp://u:secret@h").unwrap_or_default();
        assert!(!why.contains("secret"), "passwords are not shown: {why}");
    }

    #[test]
    fn patterns_select_events() {
        let d = FhirDestinationConfig {
            events: vec!["medbus.events.patient.>".into(), "medbus.events.*.critical".into()],
            ..good()
        };
        assert!(d.wants("medbus.events.patient.registered"));
        assert!(d.wants("medbus.events.result.critical"));
        assert!(!d.wants("medbus.events.result.reported"));
        assert!(!d.wants("medbus.events.patient"));
        assert!(good().wants("medbus.events.order.placed"));
        assert!(pattern_matches(
            "medbus.events.order.placed",
            "medbus.events.order.placed"
        ));
        assert!(!pattern_matches(
            "medbus.events.order.placed",
            "medbus.events.order.placed.x"
        ));
        assert!(!pattern_matches("medbus.events.*", "medbus.events.order.placed"));
    }

    #[test]
    fn the_token_comes_from_the_environment_by_name() {
        let d = FhirDestinationConfig {
            bearer_token: Secret::new("s3cr3t-value"),
            ..good()
        };
        assert!(!format!("{d:?}").contains("s3cr3t"), "tokens never print");
        assert_eq!(
            env_var("emr-main", "bearer_token"),
            "MEDBUS_FHIR_DESTINATIONS_EMR_MAIN_BEARER_TOKEN"
        );
        let table: toml::Table = "[fhir_destinations.emr-main]\nurl = \"http://x\"\n".parse().unwrap();
        assert_eq!(
            env_key(&table, "MEDBUS_FHIR_DESTINATIONS_EMR_MAIN_BEARER_TOKEN").as_deref(),
            Some("fhir_destinations.emr-main.bearer_token")
        );
        assert_eq!(env_key(&table, "MEDBUS_FHIR_DESTINATIONS_OTHER_BEARER_TOKEN"), None);
        let keys: Vec<String> = known_keys().into_iter().map(|(k, _)| k).collect();
        for k in ["url", "events", "bearer_token", "max_attempts", "enabled"] {
            assert!(keys.contains(&k.to_string()), "{k}: {keys:?}");
        }
    }

    #[test]
    fn the_loader_reads_the_table_and_the_token_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("medbus.toml");
        std::fs::write(
            &path,
            "[fhir_destinations.emr-main]\nurl = \"http://127.0.0.1:9/fhir\"\nevents = [\"medbus.events.patient.>\"]\nmax_backoff = \"30s\"\n",
        )
        .unwrap();
        let env = [(
            "MEDBUS_FHIR_DESTINATIONS_EMR_MAIN_BEARER_TOKEN".to_string(),
            "t0ken".to_string(),
        )]
        .into_iter()
        .collect();
        let c = crate::config::load(Some(&path), &env).unwrap();
        let d = &c.fhir_destinations["emr-main"];
        assert_eq!(d.bearer_token.expose(), "t0ken");
        assert_eq!(d.events, ["medbus.events.patient.>"]);
        assert_eq!(d.max_backoff, Duration::from_secs(30));
        assert_eq!(d.max_attempts, 8, "defaults fill the rest");
        std::fs::write(
            &path,
            "[fhir_destinations.emr]\nurl = \"emr.example\"\nevents = []\nretries = 3\n",
        )
        .unwrap();
        let problems = crate::config::load(Some(&path), &Default::default())
            .unwrap_err()
            .to_string();
        for k in [
            "fhir_destinations.emr.url",
            "fhir_destinations.emr.events",
            "fhir_destinations.emr.retries",
        ] {
            assert!(problems.contains(k), "{k} in {problems}");
        }
        let keys: Vec<String> = crate::config::known_keys().into_iter().map(|(k, _)| k).collect();
        assert!(keys.contains(&"fhir_destinations.<name>.bearer_token".to_string()));
    }
}
