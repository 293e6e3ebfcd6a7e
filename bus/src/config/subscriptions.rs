//! Webhook subscriptions for downstream consumers (`[subscriptions.<name>]`):
//! every event on a subject pattern under `medbus.events.>` is POSTed to a URL,
//! signed with HMAC-SHA256, in order, with retries and a dead letter when the
//! receiver refuses for good. Each subscription has its own durable consumer
//! (`subscription_<name>`), so one slow receiver never holds up another.
//! See docs/topics.md.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret that never prints: `Debug` and `Display` show `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `s`.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the one place that needs it (signing).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no secret is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl Serialize for Secret {
    // Serialised only for `medbus config keys`, whose defaults are empty; never the value.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "***" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// One webhook subscription (`[subscriptions.<name>]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriptionConfig {
    /// Subject pattern under `medbus.events.>`, with NATS wildcards
    /// (`medbus.events.patient.>`, `medbus.events.*.critical`). Required.
    pub subject: String,
    /// `http://` or `https://` URL each event is POSTed to. Required.
    pub url: String,
    /// HMAC-SHA256 key of the `Medbus-Signature` header. Required. Keep it out
    /// of the file: set `MEDBUS_SUBSCRIPTIONS_<NAME>_SECRET` (name upper-cased,
    /// any character other than a letter or digit as `_`).
    pub secret: Secret,
    /// How long one POST may take. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts per event before it is dead-lettered. Default 10.
    pub max_attempts: u32,
    /// First retry delay; doubles on each failure up to `max_backoff`. Default `500ms`.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Longest retry delay. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// False stops delivery (events wait on the backbone) without removing the subscription. Default true.
    pub enabled: bool,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        SubscriptionConfig {
            subject: String::new(),
            url: String::new(),
            secret: Secret::default(),
            timeout: Duration::from_secs(10),
            max_attempts: 10,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            enabled: true,
        }
    }
}

/// Longest subscription name: the consumer `subscription_<name>` must stay a 64-byte token.
pub const MAX_NAME_LEN: usize = 64 - CONSUMER_PREFIX.len();

const CONSUMER_PREFIX: &str = "subscription_";

/// The delivery consumer (and dead-letter stage) of a subscription.
pub fn consumer_name(subscription: &str) -> String {
    format!("{CONSUMER_PREFIX}{subscription}")
}

/// The environment variable that sets `key` of subscription `name`
/// (`emr-main`, `secret` → `MEDBUS_SUBSCRIPTIONS_EMR_MAIN_SECRET`).
pub fn env_var(name: &str, key: &str) -> String {
    super::named::env_var("subscriptions", name, key)
}

/// The config key (`subscriptions.<name>.<key>`) an environment variable sets,
/// for the subscriptions named in the file `table`. Names appear only in the
/// file, so the loader cannot list these variables in advance.
pub fn env_key(table: &toml::Table, var: &str) -> Option<String> {
    super::named::env_key(table, "subscriptions", &known_keys(), var)
}

/// Every key of one subscription with its default, for `medbus config keys`.
pub fn known_keys() -> Vec<(String, toml::Value)> {
    super::named::known_keys::<SubscriptionConfig>()
}

/// Checks a subject pattern: `medbus.events.` then tokens, each a valid token,
/// `*`, or a final `>`. Also used for the SSE endpoint's `?subject=`.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    let rest = pattern
        .strip_prefix("medbus.events.")
        .ok_or_else(|| format!("{pattern:?} must start with medbus.events. (e.g. medbus.events.patient.>)"))?;
    let tokens: Vec<&str> = rest.split('.').collect();
    for (i, t) in tokens.iter().enumerate() {
        match *t {
            ">" if i + 1 == tokens.len() => {}
            ">" => return Err(format!("{pattern:?}: '>' may only be the last token")),
            "*" => {}
            t => crate::subjects::check_token(t).map_err(|e| format!("{pattern:?}: {e}"))?,
        }
    }
    Ok(())
}

/// Problems with one subscription, as (key, message).
pub fn validate(name: &str, s: &SubscriptionConfig) -> Vec<(String, String)> {
    let mut p = Vec::new();
    let key = |k: &str| format!("subscriptions.{name}.{k}");
    if let Err(e) = crate::subjects::check_token(name) {
        p.push((
            format!("subscriptions.{name}"),
            format!("not a usable subscription name: {e}"),
        ));
    } else if name.len() > MAX_NAME_LEN {
        p.push((
            format!("subscriptions.{name}"),
            format!("subscription names are at most {MAX_NAME_LEN} characters"),
        ));
    }
    if s.subject.is_empty() {
        p.push((key("subject"), "required: e.g. \"medbus.events.patient.>\"".into()));
    } else if let Err(e) = check_pattern(&s.subject) {
        p.push((key("subject"), e));
    }
    if s.url.is_empty() {
        p.push((key("url"), "required: the http:// or https:// URL to POST to".into()));
    } else if !(s.url.starts_with("http://") || s.url.starts_with("https://")) {
        p.push((
            key("url"),
            format!("must be an http:// or https:// URL, got {:?}", s.url),
        ));
    }
    if s.enabled && s.secret.is_empty() {
        p.push((
            key("secret"),
            format!(
                "required: the HMAC key; set it in the environment as {}",
                env_var(name, "secret")
            ),
        ));
    }
    for (k, v) in [("timeout", s.timeout), ("initial_backoff", s.initial_backoff)] {
        if v.is_zero() {
            p.push((key(k), "must be more than 0s".into()));
        }
    }
    if s.max_backoff < s.initial_backoff {
        p.push((key("max_backoff"), "must be at least initial_backoff".into()));
    }
    if s.max_attempts == 0 {
        p.push((key("max_attempts"), "must be at least 1".into()));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> SubscriptionConfig {
        SubscriptionConfig {
            subject: "medbus.events.patient.>".into(),
            url: "https://erp.example/hooks/medbus".into(),
            secret: Secret::new("k"),
            ..Default::default()
        }
    }

    #[test]
    fn a_subscription_needs_subject_url_and_secret() {
        assert!(validate("erp", &good()).is_empty());
        let keys: Vec<String> = validate("erp", &SubscriptionConfig::default())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            [
                "subscriptions.erp.subject",
                "subscriptions.erp.url",
                "subscriptions.erp.secret"
            ]
        );
        let off = SubscriptionConfig {
            enabled: false,
            secret: Secret::default(),
            ..good()
        };
        assert!(validate("erp", &off).is_empty(), "a disabled one needs no secret");
        let bad = SubscriptionConfig {
            subject: "medbus.ingress.>".into(),
            url: "ftp://x".into(),
            max_attempts: 0,
            initial_backoff: Duration::from_secs(90),
            ..good()
        };
        let keys: Vec<String> = validate("a.b", &bad).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "subscriptions.a.b",
                "subscriptions.a.b.subject",
                "subscriptions.a.b.url",
                "subscriptions.a.b.max_backoff",
                "subscriptions.a.b.max_attempts"
            ]
        );
        assert_eq!(validate(&"x".repeat(MAX_NAME_LEN + 1), &good()).len(), 1);
        assert!(validate(&"x".repeat(MAX_NAME_LEN), &good()).is_empty());
        assert_eq!(consumer_name(&"x".repeat(MAX_NAME_LEN)).len(), 64);
    }

    #[test]
    fn patterns_stay_under_medbus_events() {
        for ok in [
            "medbus.events.>",
            "medbus.events.patient.>",
            "medbus.events.*.critical",
            "medbus.events.result.critical",
        ] {
            assert_eq!(check_pattern(ok), Ok(()), "{ok}");
        }
        for bad in [
            "medbus.events",
            "medbus.events.",
            "medbus.>",
            "medbus.dlq.router",
            "medbus.events.>.x",
            "medbus.events.pat*",
            "medbus.events.a b",
        ] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_never_print_and_env_vars_are_found_by_name() {
        let s = good();
        assert!(!format!("{s:?}").contains("\"k\""), "{s:?}");
        assert_eq!(env_var("emr-main", "secret"), "MEDBUS_SUBSCRIPTIONS_EMR_MAIN_SECRET");
        let table: toml::Table = "[subscriptions.emr-main]\nurl = \"http://x\"\n".parse().unwrap();
        assert_eq!(
            env_key(&table, "MEDBUS_SUBSCRIPTIONS_EMR_MAIN_SECRET").as_deref(),
            Some("subscriptions.emr-main.secret")
        );
        assert_eq!(env_key(&table, "MEDBUS_SUBSCRIPTIONS_OTHER_SECRET"), None);
        let keys: Vec<String> = known_keys().into_iter().map(|(k, _)| k).collect();
        assert!(keys.contains(&"secret".to_string()) && keys.contains(&"max_attempts".to_string()));
    }
}
