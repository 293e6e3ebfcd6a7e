//! Inbound FHIR R4 JSON: checking what senders POST and PUT to `/fhir`, and
//! turning stored resources into the same canonical events the HL7 v2 path
//! produces. Pure functions; the REST server does the IO.
//!
//! How the server uses it:
//! 1. [`parse_json`] the body (invalid JSON → one `structure` issue);
//! 2. [`check_resource`] a single resource, or [`parse_bundle`] a
//!    transaction/batch (each POST/PUT resource checked the same way);
//! 3. for a transaction, assign ids, [`rewrite_references`] the `urn:uuid`s;
//! 4. store, then [`request_events`] of the stored resources (each one's
//!    [`to_events`], less the Observations a report of the request carries)
//!    and publish the events.
//!
//! Any failure is a list of [`Issue`]s: [`operation_outcome`] is the body of
//! the 4xx answer and [`http_status`] its status.
//!
//! Files: `outcome` (issues, OperationOutcome), `elements` (R4 element and
//! type lists), `read` (typed reading with element paths), `check`
//! (resource checks, references), `bundle` (Bundles, reference rewriting),
//! `events` (resources → canonical events).

mod bundle;
mod check;
mod elements;
mod events;
mod outcome;
mod read;

#[cfg(test)]
mod tests;

pub use bundle::{parse_bundle, rewrite_references, BundleEntry, BundleKind, Method};
pub use check::{check_resource, is_id, parse_reference, Checked, RefSite, RefTarget};
pub use elements::SUPPORTED;
pub use events::{request_events, to_events, Lookup, FHIR_ID_SYSTEM};
pub use outcome::{http_status, operation_outcome, Issue, IssueCode};

use serde_json::Value;

/// Parses a request body as JSON. Invalid JSON is one `structure` issue
/// saying where (`line L column C: …`); an empty body says so.
pub fn parse_json(bytes: &[u8]) -> Result<Value, Issue> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Issue::whole(
            IssueCode::Structure,
            "the body is empty: a FHIR JSON resource is expected",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let message = e.to_string();
        // serde_json appends " at line L column C"; it goes in front instead.
        let message = match message.rfind(" at line ") {
            Some(at) => &message[..at],
            None => message.as_str(),
        };
        Issue::whole(
            IssueCode::Structure,
            format!("line {} column {}: {message}", e.line(), e.column()),
        )
    })
}
