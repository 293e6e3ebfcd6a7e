//! Reference resolution: a literal reference to a resource type this server
//! holds must name a resource it holds or one written in the same request
//! (`referencePolicy: enforced` in the CapabilityStatement). References to
//! other types (Practitioner, Organization …) are kept as written.

use std::collections::HashSet;

use super::reply::store_issue;
use super::write::Known;
use super::FhirServer;
use crate::fhir::inbound::{Issue, IssueCode, RefSite, SUPPORTED};

/// `Type/id` (or `Type/id/_history/v`) → (type, id); None for anything else.
pub(super) fn literal(reference: &str) -> Option<(String, String)> {
    let mut parts = reference.split('/');
    let (t, id) = (parts.next()?, parts.next()?);
    match (parts.next(), parts.next(), parts.next()) {
        (None, None, None) | (Some("_history"), Some(_), None) => {}
        _ => return None,
    }
    (!t.is_empty() && !id.is_empty()).then(|| (t.to_string(), id.to_string()))
}

/// Checks every site; adds the stored resources they name to `known`.
/// `local` holds what the same request writes. `map` turns a Bundle's
/// `fullUrl`s into `Type/id`.
pub(super) async fn resolve(
    server: &FhirServer,
    sites: &[RefSite],
    prefix: &str,
    map: &std::collections::HashMap<String, String>,
    local: &HashSet<(String, String)>,
    known: &mut Known,
) -> Result<(), Vec<Issue>> {
    let mut issues = Vec::new();
    for site in sites {
        let written = site.reference.as_str();
        if written.starts_with('#') {
            continue;
        }
        let reference = map.get(written).map(String::as_str).unwrap_or(written);
        // Inside a Bundle: `Bundle.entry[2].resource.subject` rather than `Observation.subject`.
        let expression = if prefix.is_empty() {
            site.expression.clone()
        } else {
            let inner = site
                .expression
                .split_once('.')
                .map_or(site.expression.as_str(), |(_, rest)| rest);
            format!("{prefix}.{inner}")
        };
        if reference.starts_with("urn:uuid:") || reference.starts_with("urn:oid:") {
            issues.push(Issue {
                code: IssueCode::NotFound,
                diagnostics: format!("{written} names no entry of this request (no entry has it as fullUrl)"),
                expression: Some(expression),
            });
            continue;
        }
        let Some(key) = literal(reference) else { continue };
        if !SUPPORTED.contains(&key.0.as_str()) || local.contains(&key) || known.contains_key(&key) {
            continue;
        }
        match server.store.fhir().fhir_read(&key.0, &key.1).await {
            Ok(Some(row)) => {
                known.insert(key, row.resource);
            }
            Ok(None) => issues.push(Issue {
                code: IssueCode::NotFound,
                diagnostics: format!("{}/{} does not exist on this server", key.0, key.1),
                expression: Some(expression),
            }),
            Err(e) => {
                // The store's code (503 when it may pass), as a lookup outside a reference gets.
                let issue = store_issue(&e);
                issues.push(Issue {
                    diagnostics: format!("could not look up {}/{}: {}", key.0, key.1, issue.diagnostics),
                    expression: Some(expression),
                    ..issue
                })
            }
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(issues)
    }
}

#[cfg(test)]
mod tests {
    use super::literal;

    #[test]
    fn literal_references() {
        assert_eq!(literal("Patient/1"), Some(("Patient".into(), "1".into())));
        assert_eq!(literal("Patient/1/_history/2"), Some(("Patient".into(), "1".into())));
        assert_eq!(literal("Patient"), None);
        assert_eq!(literal("Patient/1/x"), None);
        assert_eq!(literal("/1"), None);
    }
}
