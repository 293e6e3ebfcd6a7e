//! Stable logical ids and the references and search URLs built from them.
//!
//! A resource's id is a name-based UUID (v5) of `<ResourceType>/<natural key>`,
//! the key being the `system|value` token of its key identifier. The same
//! order, patient or result therefore gets the same id from every event and on
//! every machine, so a resend is an update of the same resource, and a
//! reference can be written before (or without) the target being looked up.

use medbus_bus::canonical::Identifier;
use uuid::Uuid;

/// The namespace of medbus's name-based ids. Fixed forever: changing it
/// would give every resource already sent downstream a new id.
const NAMESPACE: Uuid = Uuid::from_u128(0xb570_08f0_6744_4231_b2e8_9933_b829_aad3);

/// The logical id of the `resource_type` resource whose natural key is `key`
/// (`system|value`): 36 characters of `[0-9a-f-]`, within FHIR's
/// `[A-Za-z0-9\-\.]{1,64}`.
pub fn logical_id(resource_type: &str, key: &str) -> String {
    Uuid::new_v5(&NAMESPACE, format!("{resource_type}/{key}").as_bytes()).to_string()
}

/// The literal reference `ResourceType/id` to the resource keyed by `key`.
pub fn literal(resource_type: &str, key: &str) -> String {
    format!("{resource_type}/{}", logical_id(resource_type, key))
}

/// The conditional URL `Type?identifier=system|value` that finds the resource
/// by its key identifier; `None` when the identifier has no value.
///
/// `|`, `,`, `$` and `\` inside the system or value are escaped with `\` (FHIR
/// search escaping), then everything but unreserved characters and `:/` is
/// percent-encoded, so a value with spaces or `&` stays one parameter.
pub fn conditional_url(resource_type: &str, identifier: &Identifier) -> Option<String> {
    let value = identifier.value.as_deref()?;
    let system = identifier.system.as_deref().unwrap_or_default();
    Some(format!(
        "{resource_type}?identifier={}|{}",
        encode(&escape(system)),
        encode(&escape(value))
    ))
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '|' | ',' | '$' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
