//! Checks of meaning that types cannot express. Pure: binds and connects nothing.

use std::time::Duration;

use super::Config;

/// Every problem as (key, message).
pub fn validate(c: &Config) -> Vec<(String, String)> {
    let mut p = Vec::new();
    let mut bad = |key: &str, msg: String| p.push((key.to_string(), msg));
    let b = &c.backbone;
    if !(b.url == "embedded" || b.url.starts_with("nats://") || b.url.starts_with("tls://")) {
        bad(
            "backbone.url",
            format!(
                "must be \"embedded\" or nats://host:port, got {:?}",
                super::redact_url(&b.url)
            ),
        );
    }
    if b.stream_prefix.is_empty() || !b.stream_prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bad("backbone.stream_prefix", "must be letters, digits and '_' only".into());
    }
    if b.duplicate_window < Duration::from_secs(1) {
        bad("backbone.duplicate_window", "must be at least 1s".into());
    }
    if b.max_age < b.duplicate_window {
        bad("backbone.max_age", "must be at least backbone.duplicate_window".into());
    }
    if b.ack_wait < Duration::from_millis(100) {
        bad("backbone.ack_wait", "must be at least 100ms".into());
    }
    if b.max_deliver == 0 {
        bad("backbone.max_deliver", "must be at least 1".into());
    }
    if b.max_ack_pending == 0 {
        bad("backbone.max_ack_pending", "must be at least 1".into());
    }
    if b.publish_timeout.is_zero() {
        bad("backbone.publish_timeout", "must be more than 0s".into());
    }
    let s = &c.store;
    if !(s.url == "embedded"
        || s.url.starts_with("sqlite:")
        || s.url.starts_with("postgres://")
        || s.url.starts_with("postgresql://"))
    {
        bad(
            "store.url",
            format!(
                "must be \"embedded\", sqlite://PATH or postgres://…, got {:?}",
                super::redact_url(&s.url)
            ),
        );
    }
    if s.max_connections == 0 {
        bad("store.max_connections", "must be at least 1".into());
    }
    if s.connect_timeout.is_zero() {
        bad("store.connect_timeout", "must be more than 0s".into());
    }
    if c.data_dir.as_os_str().is_empty() {
        bad("data_dir", "must not be empty".into());
    }
    if c.log.level.trim().is_empty() {
        bad("log.level", "must not be empty (e.g. \"info\")".into());
    }
    if c.shutdown.deadline.is_zero() {
        bad("shutdown.deadline", "must be more than 0s".into());
    }
    let mut taken = std::collections::HashMap::from([(c.http.addr, "http.addr".to_string())]);
    for (name, ch) in &c.channels {
        let key = |k: &str| format!("channels.{name}.{k}");
        if let Err(e) = crate::subjects::check_token(name) {
            bad(&format!("channels.{name}"), format!("not a usable channel name: {e}"));
        }
        if ch.enabled {
            if let Some(other) = taken.insert(ch.listen, key("listen")) {
                bad(&key("listen"), format!("{} is already used by {other}", ch.listen));
            }
        }
        if !(1024..=64 << 20).contains(&ch.max_frame_bytes) {
            bad(&key("max_frame_bytes"), "must be between 1024 and 67108864".into());
        }
        if ch.idle_timeout.is_zero() {
            bad(&key("idle_timeout"), "must be more than 0s".into());
        }
        if ch.max_connections == 0 {
            bad(&key("max_connections"), "must be at least 1".into());
        }
        if let Some(dest) = &ch.application_acks {
            if !c.destinations.contains_key(dest) {
                bad(
                    &key("application_acks"),
                    format!("no destination named {dest:?} under [destinations]"),
                );
            }
        }
        if let Some(tls) = &ch.tls {
            for (k, msg) in tls.problems() {
                bad(&key(&format!("tls.{k}")), msg);
            }
        }
    }
    for (name, d) in &c.dicom {
        if d.enabled {
            if let Some(other) = taken.insert(d.listen, format!("dicom.{name}.listen")) {
                bad(
                    &format!("dicom.{name}.listen"),
                    format!("{} is already used by {other}", d.listen),
                );
            }
        }
    }
    for (name, d) in &c.destinations {
        p.extend(super::destinations::validate(name, d));
    }
    p.extend(super::notifications::validate(&c.notifications, &c.destinations));
    p.extend(super::services::validate(&c.services));
    p.extend(
        c.subscriptions
            .iter()
            .flat_map(|(n, s)| super::subscriptions::validate(n, s)),
    );
    p.extend(
        c.fhir_destinations
            .iter()
            .flat_map(|(n, d)| super::fhir_destinations::validate(n, d)),
    );
    p.extend(super::fhir_server::validate(&c.fhir));
    p.extend(c.dicom.iter().flat_map(|(n, d)| super::dicom::validate(n, d)));
    for (name, d) in &c.dicom_destinations {
        p.extend(super::dicom_destinations::validate(name, d));
        for channel in d.channels.iter().filter(|ch| !c.dicom.contains_key(*ch)) {
            p.push((
                format!("dicom_destinations.{name}.channels"),
                format!("no DICOM channel named {channel:?} under [dicom]"),
            ));
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(validate(&Config::default()), vec![]);
    }

    #[test]
    fn reports_each_problem() {
        let mut c = Config::default();
        c.backbone.url = "amqp://x".into();
        c.backbone.max_deliver = 0;
        c.store.url = "mysql://x".into();
        let keys: Vec<String> = validate(&c).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["backbone.url", "backbone.max_deliver", "store.url"]);
    }

    #[test]
    fn channels_are_checked() {
        use crate::config::ChannelConfig;
        let mut c = Config::default();
        c.channels.insert("adt".into(), ChannelConfig::default());
        c.channels.insert("lab east".into(), ChannelConfig::default());
        let mut clash = ChannelConfig {
            listen: c.http.addr,
            max_frame_bytes: 10,
            ..Default::default()
        };
        clash.tls = Some(crate::config::TlsFiles {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
            client_ca: Some("/nonexistent/ca.pem".into()),
        });
        c.channels.insert("lab".into(), clash);
        let keys: Vec<String> = validate(&c).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "channels.lab.listen",
                "channels.lab.max_frame_bytes",
                "channels.lab.tls.cert",
                "channels.lab.tls.key",
                "channels.lab.tls.client_ca",
                "channels.lab east",
                "channels.lab east.listen",
            ]
        );
    }
}
