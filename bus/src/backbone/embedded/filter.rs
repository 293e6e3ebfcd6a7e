//! Subject filters with NATS wildcards, as consumers and streams use them.

/// A subject filter with NATS wildcards: `*` one token, `>` one or more trailing tokens.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Filter(Vec<String>);

impl Filter {
    /// Parses and checks a filter.
    pub fn parse(s: &str) -> Result<Self, String> {
        let tokens: Vec<String> = s.split('.').map(str::to_string).collect();
        for (i, t) in tokens.iter().enumerate() {
            if t.is_empty() || t.chars().any(char::is_whitespace) {
                return Err(format!("filter {s:?} has an empty or blank token"));
            }
            if t.contains('>') && (t != ">" || i + 1 != tokens.len()) {
                return Err(format!("filter {s:?}: '>' must be the whole last token"));
            }
            if t.contains('*') && t != "*" {
                return Err(format!("filter {s:?}: '*' must be a whole token"));
            }
        }
        Ok(Filter(tokens))
    }

    /// True when the concrete `subject` matches.
    pub fn matches(&self, subject: &str) -> bool {
        let mut parts = subject.split('.');
        for t in &self.0 {
            match (t.as_str(), parts.next()) {
                (">", Some(_)) => return true,
                (_, None) => return false,
                ("*", Some(_)) => {}
                (t, Some(p)) if t == p => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_follow_nats_wildcards() {
        let f = |s: &str| Filter::parse(s).unwrap();
        assert!(f("medbus.ingress.>").matches("medbus.ingress.hl7v2.adt"));
        assert!(!f("medbus.ingress.>").matches("medbus.ingress"));
        assert!(f("medbus.events.*.critical").matches("medbus.events.result.critical"));
        assert!(!f("medbus.events.*.critical").matches("medbus.events.result.normal"));
        assert!(!f("medbus.events.*").matches("medbus.events.result.critical"));
        assert!(f("medbus.dlq.router").matches("medbus.dlq.router"));
        assert!(!f("medbus.dlq.router").matches("medbus.dlq.router2"));
        assert!(f(">").matches("a"));
        for bad in ["", "a..b", "a.>.b", "a.b*", "a.>x", "a. b"] {
            assert!(Filter::parse(bad).is_err(), "{bad:?}");
        }
    }
}
