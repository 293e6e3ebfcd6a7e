//! The envelope every message on the backbone travels in.
//!
//! On the wire the envelope's metadata travels in `Medbus-*` headers and the
//! payload is the body itself: the raw inbound bytes for ingress, or the typed
//! body as JSON for events. Downstream consumers can therefore read an event's
//! JSON without unwrapping anything, and raw HL7 is never re-encoded.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::backbone::{Headers, Outgoing};

/// Version of the envelope and body schema; bumped on breaking changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Header names used on the wire.
pub mod header {
    /// Envelope id (UUID v7).
    pub const ID: &str = "Medbus-Id";
    /// Correlation id of the inbound message that started the chain.
    pub const CORRELATION_ID: &str = "Medbus-Correlation-Id";
    /// Id of the parent envelope, if any.
    pub const CAUSATION_ID: &str = "Medbus-Causation-Id";
    /// Kind, e.g. `patient.registered` or `hl7v2.raw`.
    pub const KIND: &str = "Medbus-Kind";
    /// Channel the message came in on.
    pub const CHANNEL: &str = "Medbus-Channel";
    /// Protocol of the channel.
    pub const PROTOCOL: &str = "Medbus-Protocol";
    /// Remote peer (address or AE title).
    pub const PEER: &str = "Medbus-Peer";
    /// When the thing described happened (RFC 3339).
    pub const OCCURRED_AT: &str = "Medbus-Occurred-At";
    /// When medbus received it (RFC 3339).
    pub const RECEIVED_AT: &str = "Medbus-Received-At";
    /// Schema version of envelope and body.
    pub const SCHEMA_VERSION: &str = "Medbus-Schema-Version";
    /// `raw` or `json`.
    pub const BODY: &str = "Medbus-Body";
    /// Prefix of the protocol headers carried with a raw body.
    pub const RAW_PREFIX: &str = "Medbus-Raw-";
    /// On an event the router published for routes: the domain services that
    /// take it, comma-separated (`results,billing`). Absent: every service
    /// that takes its kind (events the services raise themselves).
    pub const SERVICES: &str = "Medbus-Services";
}

/// Where a message came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Channel name from config.
    pub channel: String,
    /// Protocol token (`hl7v2`, `fhir`, `dicom`, `sensor`, `internal`).
    pub protocol: String,
    /// Peer address or identity, when known.
    pub peer: Option<String>,
}

/// The body: raw inbound bytes, or a typed canonical payload as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// Raw inbound payload with the protocol's own headers.
    Raw {
        /// Protocol headers (e.g. MLLP peer details, HTTP content type).
        headers: BTreeMap<String, String>,
        /// The bytes exactly as received.
        #[serde(with = "base64_bytes")]
        bytes: Bytes,
    },
    /// A canonical payload.
    Json {
        /// The payload.
        value: serde_json::Value,
    },
}

/// One message on the backbone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Time-ordered id (UUID v7).
    pub id: Uuid,
    /// Id of the inbound message that started this chain (its own id for ingress).
    pub correlation_id: Uuid,
    /// Id of the envelope this one was derived from.
    pub causation_id: Option<Uuid>,
    /// Where it came from.
    pub source: Source,
    /// What it is: `patient.registered`, `hl7v2.raw`, …
    pub kind: String,
    /// When the described thing happened.
    pub occurred_at: DateTime<Utc>,
    /// When medbus received the inbound message.
    pub received_at: DateTime<Utc>,
    /// Schema version of envelope and body.
    pub schema_version: u32,
    /// The payload.
    pub body: Body,
}

/// Why a wire message could not be read as an envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// A required header is missing.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header holds a value of the wrong shape.
    #[error("header {name} has an invalid value {value:?}")]
    BadHeader {
        /// Header name.
        name: &'static str,
        /// Value found.
        value: String,
    },
    /// A JSON body failed to parse.
    #[error("body is not valid JSON: {0}")]
    BadJson(#[from] serde_json::Error),
    /// The envelope serialises to a schema this build does not know.
    #[error("schema version {0} is newer than this build understands ({SCHEMA_VERSION})")]
    FutureSchema(u32),
}

impl Envelope {
    /// A new ingress envelope: its id is also its correlation id.
    pub fn ingress(source: Source, kind: impl Into<String>, headers: BTreeMap<String, String>, bytes: Bytes) -> Self {
        let id = Uuid::now_v7();
        let now = Utc::now();
        Envelope {
            id,
            correlation_id: id,
            causation_id: None,
            source,
            kind: kind.into(),
            occurred_at: now,
            received_at: now,
            schema_version: SCHEMA_VERSION,
            body: Body::Raw { headers, bytes },
        }
    }

    /// A new event derived from `self`: same correlation id, causation = `self.id`.
    pub fn derive_event(&self, kind: impl Into<String>, value: serde_json::Value) -> Self {
        Envelope {
            id: Uuid::now_v7(),
            correlation_id: self.correlation_id,
            causation_id: Some(self.id),
            source: self.source.clone(),
            kind: kind.into(),
            occurred_at: Utc::now(),
            received_at: self.received_at,
            schema_version: SCHEMA_VERSION,
            body: Body::Json { value },
        }
    }

    /// A new raw message derived from `self` (an outbound message such as an
    /// application ACK): same correlation id, causation = `self.id`.
    pub fn derive_raw(&self, kind: impl Into<String>, headers: BTreeMap<String, String>, bytes: Bytes) -> Self {
        Envelope {
            id: Uuid::now_v7(),
            correlation_id: self.correlation_id,
            causation_id: Some(self.id),
            source: self.source.clone(),
            kind: kind.into(),
            occurred_at: Utc::now(),
            received_at: self.received_at,
            schema_version: SCHEMA_VERSION,
            body: Body::Raw { headers, bytes },
        }
    }

    /// Turns the envelope into a backbone message on `subject` with `dedupe_id`.
    pub fn to_outgoing(&self, subject: String, dedupe_id: String) -> Result<Outgoing, serde_json::Error> {
        let mut h: Headers = BTreeMap::new();
        h.insert(header::ID.into(), self.id.to_string());
        h.insert(header::CORRELATION_ID.into(), self.correlation_id.to_string());
        if let Some(c) = self.causation_id {
            h.insert(header::CAUSATION_ID.into(), c.to_string());
        }
        h.insert(header::KIND.into(), self.kind.clone());
        h.insert(header::CHANNEL.into(), self.source.channel.clone());
        h.insert(header::PROTOCOL.into(), self.source.protocol.clone());
        if let Some(p) = &self.source.peer {
            h.insert(header::PEER.into(), p.clone());
        }
        h.insert(header::OCCURRED_AT.into(), rfc3339(self.occurred_at));
        h.insert(header::RECEIVED_AT.into(), rfc3339(self.received_at));
        h.insert(header::SCHEMA_VERSION.into(), self.schema_version.to_string());
        let payload = match &self.body {
            Body::Raw { headers, bytes } => {
                h.insert(header::BODY.into(), "raw".into());
                for (k, v) in headers {
                    h.insert(format!("{}{k}", header::RAW_PREFIX), v.clone());
                }
                bytes.clone()
            }
            Body::Json { value } => {
                h.insert(header::BODY.into(), "json".into());
                Bytes::from(serde_json::to_vec(value)?)
            }
        };
        Ok(Outgoing {
            subject,
            dedupe_id,
            headers: h,
            payload,
        })
    }

    /// Reads an envelope back from wire headers and payload.
    pub fn from_wire(headers: &Headers, payload: Bytes) -> Result<Self, EnvelopeError> {
        let get = |name: &'static str| {
            headers
                .get(name)
                .map(String::as_str)
                .ok_or(EnvelopeError::MissingHeader(name))
        };
        let uuid = |name: &'static str, v: &str| {
            Uuid::parse_str(v).map_err(|_| EnvelopeError::BadHeader {
                name,
                value: v.to_string(),
            })
        };
        let time = |name: &'static str, v: &str| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| EnvelopeError::BadHeader {
                    name,
                    value: v.to_string(),
                })
        };
        let schema_version: u32 = get(header::SCHEMA_VERSION)?
            .parse()
            .map_err(|_| EnvelopeError::BadHeader {
                name: header::SCHEMA_VERSION,
                value: headers.get(header::SCHEMA_VERSION).cloned().unwrap_or_default(),
            })?;
        if schema_version > SCHEMA_VERSION {
            return Err(EnvelopeError::FutureSchema(schema_version));
        }
        let body = match get(header::BODY)? {
            "raw" => Body::Raw {
                headers: headers
                    .iter()
                    .filter_map(|(k, v)| k.strip_prefix(header::RAW_PREFIX).map(|k| (k.to_string(), v.clone())))
                    .collect(),
                bytes: payload,
            },
            "json" => Body::Json {
                value: serde_json::from_slice(&payload)?,
            },
            other => {
                return Err(EnvelopeError::BadHeader {
                    name: header::BODY,
                    value: other.to_string(),
                })
            }
        };
        Ok(Envelope {
            id: uuid(header::ID, get(header::ID)?)?,
            correlation_id: uuid(header::CORRELATION_ID, get(header::CORRELATION_ID)?)?,
            causation_id: match headers.get(header::CAUSATION_ID) {
                Some(v) => Some(uuid(header::CAUSATION_ID, v)?),
                None => None,
            },
            source: Source {
                channel: get(header::CHANNEL)?.to_string(),
                protocol: get(header::PROTOCOL)?.to_string(),
                peer: headers.get(header::PEER).cloned(),
            },
            kind: get(header::KIND)?.to_string(),
            occurred_at: time(header::OCCURRED_AT, get(header::OCCURRED_AT)?)?,
            received_at: time(header::RECEIVED_AT, get(header::RECEIVED_AT)?)?,
            schema_version,
            body,
        })
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

mod base64_bytes {
    use base64::{engine::general_purpose::STANDARD, Engine};
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map(Bytes::from).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Source {
        Source {
            channel: "adt".into(),
            protocol: "hl7v2".into(),
            peer: Some("127.0.0.1:40000".into()),
        }
    }

    #[test]
    fn raw_round_trips_through_the_wire() {
        let mut ph = BTreeMap::new();
        ph.insert("Control-Id".to_string(), "MSG0001".to_string());
        let env = Envelope::ingress(source(), "hl7v2.raw", ph, Bytes::from_static(b"MSH|^~\\&|A\r"));
        assert_eq!(env.id, env.correlation_id);
        let out = env
            .to_outgoing("medbus.ingress.hl7v2.adt".into(), "adt:MSG0001".into())
            .unwrap();
        assert_eq!(out.payload.as_ref(), b"MSH|^~\\&|A\r");
        let back = Envelope::from_wire(&out.headers, out.payload.clone()).unwrap();
        // Timestamps go through microsecond text; compare after the same rounding.
        assert_eq!(back.id, env.id);
        assert_eq!(back.body, env.body);
        assert_eq!(back.source, env.source);
        assert_eq!(rfc3339(back.received_at), rfc3339(env.received_at));
    }

    #[test]
    fn event_keeps_correlation_and_causation() {
        let raw = Envelope::ingress(source(), "hl7v2.raw", BTreeMap::new(), Bytes::new());
        let ev = raw.derive_event("patient.registered", serde_json::json!({"id": "p1"}));
        assert_eq!(ev.correlation_id, raw.correlation_id);
        assert_eq!(ev.causation_id, Some(raw.id));
        assert!(ev.id > raw.id, "UUID v7 ids are time-ordered");
        let out = ev
            .to_outgoing("medbus.events.patient.registered".into(), ev.id.to_string())
            .unwrap();
        assert_eq!(out.payload.as_ref(), br#"{"id":"p1"}"#);
        let back = Envelope::from_wire(&out.headers, out.payload).unwrap();
        assert_eq!(back.body, ev.body);
        assert_eq!(back.causation_id, Some(raw.id));
    }

    #[test]
    fn wire_errors_name_the_problem() {
        let ev = Envelope::ingress(source(), "x", BTreeMap::new(), Bytes::new());
        let mut out = ev.to_outgoing("s".into(), "d".into()).unwrap();
        out.headers.remove(header::KIND);
        let err = Envelope::from_wire(&out.headers, out.payload.clone()).unwrap_err();
        assert!(err.to_string().contains("Medbus-Kind"), "{err}");
        out.headers.insert(header::KIND.into(), "x".into());
        out.headers.insert(header::SCHEMA_VERSION.into(), "99".into());
        assert!(matches!(
            Envelope::from_wire(&out.headers, out.payload).unwrap_err(),
            EnvelopeError::FutureSchema(99)
        ));
    }

    #[test]
    fn json_form_carries_raw_bytes_as_base64() {
        let env = Envelope::ingress(source(), "k", BTreeMap::new(), Bytes::from_static(&[0, 1, 255]));
        let text = serde_json::to_string(&env).unwrap();
        assert!(text.contains("\"AAH/\""), "{text}");
        let back: Envelope = serde_json::from_str(&text).unwrap();
        assert_eq!(back, env);
    }
}
