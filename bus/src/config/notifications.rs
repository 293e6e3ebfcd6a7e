//! Notification rules (`[notifications]`): which happenings become webhook
//! calls and e-mails, to whom, how often, and when to escalate.
//!
//! Channels are named once (`[notifications.webhooks.<name>]`,
//! `[notifications.email.<name>]`) and rules (`[notifications.rules.<name>]`)
//! send to them. Rule and channel names share the subject-token rules, since
//! they appear in notification ids and metrics. See docs/notifications.md.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::destinations::DestinationConfig;

/// `[notifications]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Run the notifications service. Default true (with no rules it sends nothing).
    pub enabled: bool,
    /// Prefix for the acknowledge link in messages, e.g. `https://medbus.hospital.example`.
    /// Empty (default): the link is the path `/api/v1/notifications/<id>/acknowledge` alone.
    pub ack_base_url: String,
    /// How often the escalation and retry sweep runs. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub sweep_every: Duration,
    /// Webhook channels by name (`[notifications.webhooks.oncall]`).
    pub webhooks: BTreeMap<String, WebhookChannel>,
    /// E-mail channels by name (`[notifications.email.mail]`).
    pub email: BTreeMap<String, EmailChannel>,
    /// Rules by name (`[notifications.rules.critical]`).
    pub rules: BTreeMap<String, RuleConfig>,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            enabled: true,
            ack_base_url: String::new(),
            sweep_every: Duration::from_secs(10),
            webhooks: BTreeMap::new(),
            email: BTreeMap::new(),
            rules: BTreeMap::new(),
        }
    }
}

/// A webhook: each notification is one JSON POST.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookChannel {
    /// `http://` or `https://` URL to POST to. Required.
    pub url: String,
    /// Extra request headers. A value `env:NAME` is read from the environment
    /// variable NAME when sending, so tokens stay out of the file.
    pub headers: BTreeMap<String, String>,
    /// How long one request may take. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts before the notification is recorded as failed. Default 5.
    pub max_attempts: u32,
    /// First retry delay; doubles on each failure up to `max_backoff`. Default `500ms`.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Longest retry delay. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for WebhookChannel {
    fn default() -> Self {
        WebhookChannel {
            url: String::new(),
            headers: BTreeMap::new(),
            timeout: Duration::from_secs(5),
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// An SMTP relay: each notification is one plain-text e-mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailChannel {
    /// `host:port` of the relay. Required.
    pub smtp: String,
    /// Sender address, e.g. `medbus@hospital.example`. Required.
    pub from: String,
    /// Upgrade the connection with STARTTLS (and require it). Default false:
    /// a relay on loopback or the local network, as hospitals usually run.
    pub starttls: bool,
    /// How long one SMTP exchange may take. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts before the notification is recorded as failed. Default 5.
    pub max_attempts: u32,
    /// First retry delay; doubles on each failure up to `max_backoff`. Default `1s`.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Longest retry delay. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for EmailChannel {
    fn default() -> Self {
        EmailChannel {
            smtp: String::new(),
            from: String::new(),
            starttls: false,
            timeout: Duration::from_secs(10),
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// Who a rule notifies: a channel, and for e-mail the address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// A channel name under `webhooks` or `email`.
    pub channel: String,
    /// The e-mail address (e-mail channels only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl Recipient {
    /// `channel` or `channel:address`: names the recipient in ids and records.
    pub fn label(&self) -> String {
        match &self.address {
            Some(a) => format!("{}:{a}", self.channel),
            None => self.channel.clone(),
        }
    }
}

/// One rule (`[notifications.rules.<name>]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleConfig {
    /// What fires it: `result.critical`; `deadletter` (any stage) or
    /// `deadletter.<stage>`; `destination.down` (any destination) or
    /// `destination.down.<name>`. Required.
    pub on: String,
    /// Who is notified. Required.
    pub to: Vec<Recipient>,
    /// A repeat with the same key inside this window is recorded as
    /// suppressed, not sent. The key: patient + observation code for critical
    /// results, the stage for dead letters, the destination for destinations.
    /// Default none: every occurrence is sent.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Duration>,
    /// When a notification of this rule is not acknowledged this long after
    /// it was sent, `escalate_to` is notified (once). Default none.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub escalate_after: Option<Duration>,
    /// Who is notified on escalation.
    pub escalate_to: Vec<Recipient>,
    /// `destination.down` only: how long a destination must stay unreachable
    /// (without recovering) before the rule fires. Default `5m`.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub down_for: Option<Duration>,
}

/// Default `down_for` of `destination.down` rules.
pub const DEFAULT_DOWN_FOR: Duration = Duration::from_secs(300);

impl RuleConfig {
    /// What fires the rule, or why `on` is not understood.
    pub fn trigger(&self) -> Result<Trigger, String> {
        Trigger::parse(&self.on)
    }

    /// How long a destination must be down (`destination.down` rules).
    pub fn down_for(&self) -> Duration {
        self.down_for.unwrap_or(DEFAULT_DOWN_FOR)
    }
}

/// The happening a rule listens for, parsed from `on`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A `result.critical` event.
    CriticalResult,
    /// A dead letter, of any stage or of one.
    DeadLetter {
        /// Only this stage, when given.
        stage: Option<String>,
    },
    /// A destination unreachable for `down_for`, any or one.
    DestinationDown {
        /// Only this destination, when given.
        destination: Option<String>,
    },
}

impl Trigger {
    /// Parses `on`.
    pub fn parse(on: &str) -> Result<Trigger, String> {
        let named = |rest: &str| -> Result<Option<String>, String> {
            crate::subjects::check_token(rest).map_err(|e| e.to_string())?;
            Ok(Some(rest.to_string()))
        };
        match on {
            "result.critical" => Ok(Trigger::CriticalResult),
            "deadletter" => Ok(Trigger::DeadLetter { stage: None }),
            "destination.down" => Ok(Trigger::DestinationDown { destination: None }),
            _ => {
                if let Some(stage) = on.strip_prefix("deadletter.") {
                    Ok(Trigger::DeadLetter { stage: named(stage)? })
                } else if let Some(d) = on.strip_prefix("destination.down.") {
                    Ok(Trigger::DestinationDown { destination: named(d)? })
                } else {
                    Err(format!(
                        "must be result.critical, deadletter[.<stage>] or destination.down[.<destination>], got {on:?}"
                    ))
                }
            }
        }
    }

    /// True for a dead letter of `stage`.
    pub fn matches_dead_letter(&self, stage: &str) -> bool {
        matches!(self, Trigger::DeadLetter { stage: s } if s.as_deref().is_none_or(|s| s == stage))
    }

    /// True for destination `name` being down.
    pub fn matches_destination(&self, name: &str) -> bool {
        matches!(self, Trigger::DestinationDown { destination: d } if d.as_deref().is_none_or(|d| d == name))
    }
}

/// Problems with `[notifications]`, as (key, message). `destinations` are the
/// configured ones, which `destination.down.<name>` must name.
pub fn validate(c: &NotificationsConfig, destinations: &BTreeMap<String, DestinationConfig>) -> Vec<(String, String)> {
    let mut p = Vec::new();
    let mut bad = |key: String, msg: String| p.push((key, msg));
    if c.sweep_every.is_zero() {
        bad("notifications.sweep_every".into(), "must be more than 0s".into());
    }
    let base = c.ack_base_url.as_str();
    if !(base.is_empty() || base.starts_with("http://") || base.starts_with("https://")) {
        bad(
            "notifications.ack_base_url".into(),
            format!("must be empty or an http(s):// URL, got {base:?}"),
        );
    }
    for (name, w) in &c.webhooks {
        let key = |k: &str| format!("notifications.webhooks.{name}.{k}");
        if let Err(e) = crate::subjects::check_token(name) {
            bad(
                format!("notifications.webhooks.{name}"),
                format!("not a usable name: {e}"),
            );
        }
        if c.email.contains_key(name) {
            bad(
                format!("notifications.webhooks.{name}"),
                "an e-mail channel has the same name".into(),
            );
        }
        if w.url.is_empty() {
            bad(key("url"), "required: the http(s):// URL to POST to".into());
        } else if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
            bad(
                key("url"),
                format!("must be an http:// or https:// URL, got {:?}", w.url),
            );
        }
        for h in w.headers.keys() {
            if h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
                bad(key(&format!("headers.{h}")), "not a usable header name".into());
            }
        }
        p_retry(
            &mut bad,
            &key,
            w.timeout,
            w.max_attempts,
            w.initial_backoff,
            w.max_backoff,
        );
    }
    for (name, e) in &c.email {
        let key = |k: &str| format!("notifications.email.{name}.{k}");
        if let Err(err) = crate::subjects::check_token(name) {
            bad(
                format!("notifications.email.{name}"),
                format!("not a usable name: {err}"),
            );
        }
        match e.smtp.rsplit_once(':') {
            _ if e.smtp.is_empty() => bad(key("smtp"), "required: host:port of the SMTP relay".into()),
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {}
            _ => bad(key("smtp"), format!("must be host:port, got {:?}", e.smtp)),
        }
        if !looks_like_address(&e.from) {
            bad(key("from"), format!("required: an e-mail address, got {:?}", e.from));
        }
        p_retry(
            &mut bad,
            &key,
            e.timeout,
            e.max_attempts,
            e.initial_backoff,
            e.max_backoff,
        );
    }
    for (name, r) in &c.rules {
        let key = |k: &str| format!("notifications.rules.{name}.{k}");
        if let Err(e) = crate::subjects::check_token(name) {
            bad(
                format!("notifications.rules.{name}"),
                format!("not a usable rule name: {e}"),
            );
        }
        let trigger = match r.trigger() {
            Ok(t) => Some(t),
            Err(e) => {
                bad(key("on"), e);
                None
            }
        };
        if let Some(Trigger::DestinationDown { destination: Some(d) }) = &trigger {
            if !destinations.contains_key(d) {
                bad(key("on"), format!("no destination named {d:?} under [destinations]"));
            }
        }
        if r.down_for.is_some() && !matches!(trigger, Some(Trigger::DestinationDown { .. }) | None) {
            bad(key("down_for"), "only for destination.down rules".into());
        }
        if r.down_for.is_some_and(|d| d.is_zero()) {
            bad(key("down_for"), "must be more than 0s".into());
        }
        if r.to.is_empty() {
            bad(key("to"), "required: at least one recipient".into());
        }
        for (k, list) in [("to", &r.to), ("escalate_to", &r.escalate_to)] {
            for (i, rc) in list.iter().enumerate() {
                if let Some(msg) = recipient_problem(c, rc) {
                    bad(key(&format!("{k}[{i}]")), msg);
                }
            }
        }
        match (r.escalate_after, r.escalate_to.is_empty()) {
            (Some(d), _) if d.is_zero() => bad(key("escalate_after"), "must be more than 0s".into()),
            (Some(_), true) => bad(key("escalate_to"), "required with escalate_after".into()),
            (None, false) => bad(key("escalate_after"), "required with escalate_to".into()),
            _ => {}
        }
        if r.throttle.is_some_and(|d| d.is_zero()) {
            bad(key("throttle"), "must be more than 0s (or left out)".into());
        }
    }
    p
}

fn p_retry(
    bad: &mut impl FnMut(String, String),
    key: &impl Fn(&str) -> String,
    timeout: Duration,
    max_attempts: u32,
    initial: Duration,
    max: Duration,
) {
    if timeout.is_zero() {
        bad(key("timeout"), "must be more than 0s".into());
    }
    if max_attempts == 0 {
        bad(key("max_attempts"), "must be at least 1".into());
    }
    if initial.is_zero() {
        bad(key("initial_backoff"), "must be more than 0s".into());
    }
    if max < initial {
        bad(key("max_backoff"), "must be at least initial_backoff".into());
    }
}

/// Why `r` cannot receive, if it cannot.
fn recipient_problem(c: &NotificationsConfig, r: &Recipient) -> Option<String> {
    if c.webhooks.contains_key(&r.channel) {
        return r
            .address
            .as_ref()
            .map(|_| format!("{:?} is a webhook: it takes no address", r.channel));
    }
    if c.email.contains_key(&r.channel) {
        return match &r.address {
            Some(a) if looks_like_address(a) => None,
            Some(a) => Some(format!("not an e-mail address: {a:?}")),
            None => Some(format!("{:?} is an e-mail channel: give the address", r.channel)),
        };
    }
    Some(format!(
        "no channel named {:?} under [notifications.webhooks] or [notifications.email]",
        r.channel
    ))
}

/// A plausible `local@domain` (the mailer checks it fully when sending).
fn looks_like_address(a: &str) -> bool {
    match a.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !domain.is_empty() && !a.chars().any(|c| c.is_whitespace() || c == ',')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> NotificationsConfig {
        toml::from_str(text).unwrap()
    }

    const EXAMPLE: &str = r#"
        ack_base_url = "https://medbus.example"
        [webhooks.oncall]
        url = "https://pager.example/hook"
        headers = { Authorization = "env:PAGER_TOKEN" }
        max_attempts = 3
        [email.mail]
        smtp = "127.0.0.1:25"
        from = "medbus@hospital.example"
        [rules.critical]
        on = "result.critical"
        to = [{ channel = "oncall" }, { channel = "mail", address = "lab@hospital.example" }]
        throttle = "15m"
        escalate_after = "10m"
        escalate_to = [{ channel = "mail", address = "chief@hospital.example" }]
        [rules.dlq]
        on = "deadletter"
        to = [{ channel = "oncall" }]
        [rules.his_down]
        on = "destination.down"
        to = [{ channel = "oncall" }]
        down_for = "2m"
    "#;

    #[test]
    fn the_example_is_valid_and_round_trips() {
        let c = parse(EXAMPLE);
        assert_eq!(validate(&c, &BTreeMap::new()), vec![]);
        assert_eq!(c.rules["critical"].trigger(), Ok(Trigger::CriticalResult));
        assert_eq!(c.rules["critical"].throttle, Some(Duration::from_secs(900)));
        assert_eq!(c.rules["his_down"].down_for(), Duration::from_secs(120));
        assert_eq!(
            c.webhooks["oncall"].timeout,
            Duration::from_secs(5),
            "defaults fill the rest"
        );
        let text = toml::to_string(&c).unwrap();
        assert_eq!(parse(&text), c);
        // The loader lists every key of the defaults, so they must serialise.
        assert!(toml::Value::try_from(NotificationsConfig::default()).is_ok());
    }

    #[test]
    fn triggers() {
        assert_eq!(
            Trigger::parse("deadletter.router"),
            Ok(Trigger::DeadLetter {
                stage: Some("router".into())
            })
        );
        let t = Trigger::parse("destination.down.his").unwrap();
        assert!(t.matches_destination("his") && !t.matches_destination("lab"));
        assert!(Trigger::parse("deadletter").unwrap().matches_dead_letter("x"));
        for bad in ["patient.registered", "deadletter.", "destination.down.a*", ""] {
            assert!(Trigger::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reports_each_problem() {
        let c = parse(
            r#"
            sweep_every = "0s"
            [webhooks.hook]
            url = "ftp://x"
            max_attempts = 0
            [email.mail]
            smtp = "nowhere"
            [rules.a]
            on = "patient.registered"
            to = [{ channel = "mail" }, { channel = "hook", address = "a@b" }, { channel = "ghost" }]
            down_for = "1m"
            escalate_to = [{ channel = "hook" }]
            [rules.b]
            on = "destination.down.his"
            throttle = "0s"
            "#,
        );
        let keys: Vec<String> = validate(&c, &BTreeMap::new()).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "notifications.sweep_every",
                "notifications.webhooks.hook.url",
                "notifications.webhooks.hook.max_attempts",
                "notifications.email.mail.smtp",
                "notifications.email.mail.from",
                "notifications.rules.a.on",
                "notifications.rules.a.to[0]",
                "notifications.rules.a.to[1]",
                "notifications.rules.a.to[2]",
                "notifications.rules.a.escalate_after",
                "notifications.rules.b.on",
                "notifications.rules.b.to",
                "notifications.rules.b.throttle",
            ]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<NotificationsConfig>("[rules.a]\non = \"deadletter\"\nsend_to = []\n").is_err());
    }
}
