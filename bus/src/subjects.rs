//! Subject names on the backbone.
//!
//! Four families, documented for downstream consumers in `docs/subjects.md`:
//! `medbus.ingress.<protocol>.<channel>` (raw inbound messages),
//! `medbus.events.<domain>.<event>` (canonical events),
//! `medbus.egress.<protocol>.<destination>` (outbound messages waiting for
//! delivery to one destination) and `medbus.dlq.<stage>` (dead letters). Every token is checked so that a
//! channel name from config can never smuggle a wildcard or a dot into a subject.

use std::fmt;

/// The first token of every medbus subject.
pub const ROOT: &str = "medbus";

/// A parsed, valid medbus subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// Raw inbound message of one channel.
    Ingress {
        /// Protocol token, e.g. `hl7v2`.
        protocol: String,
        /// Channel name from config.
        channel: String,
    },
    /// Canonical event, e.g. `patient.registered`.
    Event {
        /// Domain token, e.g. `patient`.
        domain: String,
        /// Event token, e.g. `registered`.
        event: String,
    },
    /// An outbound message for one destination, delivered in order.
    Egress {
        /// Protocol token, e.g. `hl7v2`.
        protocol: String,
        /// Destination name from config.
        destination: String,
    },
    /// Dead letters of one processing stage.
    DeadLetter {
        /// Stage (consumer) name.
        stage: String,
    },
}

/// Why a subject or token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// A token is empty or holds a character NATS gives meaning to.
    #[error("invalid subject token {token:?}: {why}")]
    InvalidToken {
        /// The token as given.
        token: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The subject does not have the shape of any medbus family.
    #[error("not a medbus subject: {0:?}")]
    Unknown(String),
}

/// Checks one token: non-empty, printable ASCII, no whitespace, no `.`, `*` or `>`.
pub fn check_token(token: &str) -> Result<(), SubjectError> {
    let bad = |why| {
        Err(SubjectError::InvalidToken {
            token: token.to_string(),
            why,
        })
    };
    if token.is_empty() {
        return bad("empty");
    }
    if token.len() > 64 {
        return bad("longer than 64 bytes");
    }
    for c in token.chars() {
        match c {
            '.' => return bad("contains '.'"),
            '*' | '>' => return bad("contains a wildcard ('*' or '>')"),
            c if c.is_whitespace() => return bad("contains whitespace"),
            c if !c.is_ascii_graphic() => return bad("contains a non-printable or non-ASCII character"),
            _ => {}
        }
    }
    Ok(())
}

impl Subject {
    /// `medbus.ingress.<protocol>.<channel>`.
    pub fn ingress(protocol: &str, channel: &str) -> Result<Self, SubjectError> {
        check_token(protocol)?;
        check_token(channel)?;
        Ok(Subject::Ingress {
            protocol: protocol.into(),
            channel: channel.into(),
        })
    }

    /// `medbus.events.<domain>.<event>`.
    pub fn event(domain: &str, event: &str) -> Result<Self, SubjectError> {
        check_token(domain)?;
        check_token(event)?;
        Ok(Subject::Event {
            domain: domain.into(),
            event: event.into(),
        })
    }

    /// `medbus.egress.<protocol>.<destination>`.
    pub fn egress(protocol: &str, destination: &str) -> Result<Self, SubjectError> {
        check_token(protocol)?;
        check_token(destination)?;
        Ok(Subject::Egress {
            protocol: protocol.into(),
            destination: destination.into(),
        })
    }

    /// `medbus.dlq.<stage>`.
    pub fn dead_letter(stage: &str) -> Result<Self, SubjectError> {
        check_token(stage)?;
        Ok(Subject::DeadLetter { stage: stage.into() })
    }

    /// Parses a concrete subject (no wildcards).
    pub fn parse(s: &str) -> Result<Self, SubjectError> {
        let tokens: Vec<&str> = s.split('.').collect();
        match tokens.as_slice() {
            [ROOT, "ingress", p, c] => Self::ingress(p, c),
            [ROOT, "events", d, e] => Self::event(d, e),
            [ROOT, "egress", p, d] => Self::egress(p, d),
            [ROOT, "dlq", st] => Self::dead_letter(st),
            _ => Err(SubjectError::Unknown(s.to_string())),
        }
    }

    /// The event kind (`patient.registered`) for event subjects.
    pub fn kind(&self) -> Option<String> {
        match self {
            Subject::Event { domain, event } => Some(format!("{domain}.{event}")),
            _ => None,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Ingress { protocol, channel } => write!(f, "{ROOT}.ingress.{protocol}.{channel}"),
            Subject::Event { domain, event } => write!(f, "{ROOT}.events.{domain}.{event}"),
            Subject::Egress { protocol, destination } => write!(f, "{ROOT}.egress.{protocol}.{destination}"),
            Subject::DeadLetter { stage } => write!(f, "{ROOT}.dlq.{stage}"),
        }
    }
}

/// Wildcard filter for every ingress subject of one protocol (`medbus.ingress.hl7v2.>`).
pub fn ingress_filter(protocol: &str) -> Result<String, SubjectError> {
    check_token(protocol)?;
    Ok(format!("{ROOT}.ingress.{protocol}.>"))
}

/// Wildcard filter for every event of one domain (`medbus.events.patient.>`).
pub fn events_filter(domain: &str) -> Result<String, SubjectError> {
    check_token(domain)?;
    Ok(format!("{ROOT}.events.{domain}.>"))
}

/// Subjects of the four backbone streams: ingress, events, egress, dead letters.
pub const STREAM_SUBJECTS: [(&str, &str); 4] = [
    ("INGRESS", "medbus.ingress.>"),
    ("EVENTS", "medbus.events.>"),
    ("EGRESS", "medbus.egress.>"),
    ("DLQ", "medbus.dlq.>"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_parses_each_family() {
        for s in [
            Subject::ingress("hl7v2", "adt-main").unwrap(),
            Subject::event("result", "critical").unwrap(),
            Subject::event("billing", "charge-posted").unwrap(),
            Subject::egress("hl7v2", "his").unwrap(),
            Subject::dead_letter("router").unwrap(),
        ] {
            let text = s.to_string();
            assert_eq!(Subject::parse(&text).unwrap(), s, "{text}");
        }
        assert_eq!(
            Subject::event("patient", "registered").unwrap().to_string(),
            "medbus.events.patient.registered"
        );
    }

    #[test]
    fn rejects_bad_tokens() {
        for t in ["", "a.b", "a*", ">", "a b", "tab\t", "é", &"x".repeat(65)] {
            assert!(check_token(t).is_err(), "{t:?} should be refused");
        }
        assert!(Subject::ingress("hl7v2", "lab.east").is_err());
        assert!(Subject::parse("medbus.ingress.hl7v2").is_err());
        assert!(Subject::parse("other.events.a.b").is_err());
        assert!(Subject::parse("medbus.events.a.>").is_err());
    }

    #[test]
    fn filters() {
        assert_eq!(ingress_filter("hl7v2").unwrap(), "medbus.ingress.hl7v2.>");
        assert!(events_filter("a.b").is_err());
    }
}
