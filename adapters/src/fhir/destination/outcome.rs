//! A FHIR server's explanation (its OperationOutcome, or the start of
//! whatever else it answered) as one line for a dead letter's reason.

use serde_json::Value;

/// Most bytes of a server's explanation kept in a dead letter: enough for
/// several issues with their diagnostics, small enough for a message header.
pub const KEPT_BYTES: usize = 4096;

/// Most bytes of an answer that is not an OperationOutcome (an HTML error page) kept.
const KEPT_OTHER_BYTES: usize = 512;

/// The issues of an OperationOutcome, `error invalid: <diagnostics> (<details>) at <expression>`
/// each, joined by `; `; `None` when `v` is not an OperationOutcome with issues.
pub fn summary(v: &Value) -> Option<String> {
    if v.get("resourceType").and_then(Value::as_str) != Some("OperationOutcome") {
        return None;
    }
    let issues = v.get("issue")?.as_array()?;
    let text: Vec<String> = issues.iter().map(issue).collect();
    (!text.is_empty()).then(|| text.join("; "))
}

/// One issue: severity and code (both required by R4), then what it says and where.
fn issue(i: &Value) -> String {
    let field = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or("?");
    let mut out = format!("{} {}", field("severity"), field("code"));
    let diagnostics = i.get("diagnostics").and_then(Value::as_str);
    let details = i.pointer("/details/text").and_then(Value::as_str);
    let mut said = diagnostics.into_iter().chain(details).peekable();
    if said.peek().is_some() {
        out.push(':');
    }
    for (n, s) in said.enumerate() {
        out.push_str(if n == 0 { " " } else { " / " });
        out.push_str(s);
    }
    // `location` is deprecated in R4 but older servers still fill only it.
    let at: Vec<&str> = ["expression", "location"]
        .iter()
        .filter_map(|k| i.get(*k).and_then(Value::as_array))
        .find(|a| !a.is_empty())
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !at.is_empty() {
        out.push_str(" at ");
        out.push_str(&at.join(", "));
    }
    out
}

/// What a server's answer `body` says: `OperationOutcome: <summary>` when it
/// is one, else the start of the body; one line of at most [`KEPT_BYTES`].
pub fn explain(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match parsed.as_ref().and_then(summary) {
        Some(s) => one_line(&format!("OperationOutcome: {s}"), KEPT_BYTES),
        None if body.iter().all(u8::is_ascii_whitespace) => "(empty answer)".into(),
        None => one_line(&String::from_utf8_lossy(body), KEPT_OTHER_BYTES),
    }
}

/// `text` on one line (a message header cannot hold a line break), cut on a
/// character boundary to at most `max` bytes, `…` marking a cut.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.len() <= max {
        return flat;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !flat.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &flat[..end])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn issues_keep_severity_code_diagnostics_and_where() {
        let oo = json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "invalid", "diagnostics": "birthDate is not a date",
             "expression": ["Patient.birthDate"]},
            {"severity": "warning", "code": "business-rule", "details": {"text": "MRN reissued"},
             "location": ["/f:Patient"]},
            {"severity": "fatal", "code": "exception"}
        ]});
        assert_eq!(
            summary(&oo).as_deref(),
            Some(
                "error invalid: birthDate is not a date at Patient.birthDate; \
                 warning business-rule: MRN reissued at /f:Patient; fatal exception"
            )
        );
        assert_eq!(summary(&json!({"resourceType": "Patient"})), None);
        assert_eq!(summary(&json!({"resourceType": "OperationOutcome", "issue": []})), None);
        let text = explain(oo.to_string().as_bytes());
        assert!(text.starts_with("OperationOutcome: error invalid"), "{text}");
    }

    #[test]
    fn other_answers_are_kept_short_and_on_one_line() {
        assert_eq!(
            explain(b"<html>\r\n<b>Bad Gateway</b>\n</html>"),
            "<html>  <b>Bad Gateway</b> </html>"
        );
        assert_eq!(explain(b"  \n"), "(empty answer)");
        let page = "é".repeat(1000);
        let kept = explain(page.as_bytes());
        assert!(kept.len() <= 512 && kept.ends_with('…'), "{}", kept.len());
        let huge = json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "invalid", "diagnostics": "x\ny".repeat(5000)}
        ]});
        let kept = explain(huge.to_string().as_bytes());
        assert!(kept.len() <= KEPT_BYTES && !kept.contains('\n'), "{}", kept.len());
    }
}
