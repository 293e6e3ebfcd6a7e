//! Bodies of the system events ([`super::SystemEventKind`]): medbus reporting
//! on itself. They name no patient and carry no PHI.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Body of `system.destination-unreachable` and `system.destination-recovered`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationStatusEvent {
    /// The destination's name from config.
    pub destination: String,
    /// Its protocol token (`hl7v2`).
    pub protocol: String,
    /// Where it is (`host:port`).
    pub addr: String,
    /// When delivery first failed: the start of the outage (both kinds).
    pub since: DateTime<Utc>,
    /// Unreachable: the first failure, e.g. `cannot connect to …: connection refused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Recovered: when delivery worked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_at: Option<DateTime<Utc>>,
}

impl DestinationStatusEvent {
    /// The event as a backbone message of `kind` on its subject, from source
    /// `internal` / the destination; the envelope id is the dedupe id.
    pub fn to_outgoing(&self, kind: super::SystemEventKind) -> Result<crate::backbone::Outgoing, serde_json::Error> {
        let source = crate::envelope::Source {
            channel: self.destination.clone(),
            protocol: "internal".into(),
            peer: Some(self.addr.clone()),
        };
        let mut env = crate::envelope::Envelope::ingress(source, kind.as_str(), Default::default(), Default::default());
        env.body = crate::envelope::Body::Json {
            value: serde_json::to_value(self)?,
        };
        env.to_outgoing(kind.subject().to_string(), env.id.to_string())
    }
}
