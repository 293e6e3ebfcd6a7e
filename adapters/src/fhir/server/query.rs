//! Search parameters: the query string, and FHIR's `identifier` token
//! (`system|value`, `|value` for "no system", `value` for any system) with
//! its `\` escapes.

/// An identifier to search by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierToken {
    /// `None`: any system; `Some("")`: no system; otherwise that system.
    pub system: Option<String>,
    /// The value.
    pub value: String,
}

/// The decoded `name=value` pairs of a query string, in order.
pub fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Reads `system|value` with FHIR's escapes (`\|`, `\,`, `\$`, `\\`). An
/// empty value is refused (None).
pub fn identifier_token(raw: &str) -> Option<IdentifierToken> {
    let mut parts: Vec<String> = vec![String::new()];
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(last)) = (chars.next(), parts.last_mut()) {
                    last.push(next);
                }
            }
            '|' => parts.push(String::new()),
            other => {
                if let Some(last) = parts.last_mut() {
                    last.push(other);
                }
            }
        }
    }
    let token = match parts.as_slice() {
        [value] => IdentifierToken {
            system: None,
            value: value.clone(),
        },
        [system, value] => IdentifierToken {
            system: Some(system.clone()),
            value: value.clone(),
        },
        _ => return None,
    };
    (!token.value.is_empty()).then_some(token)
}

/// Percent-decoding with `+` as space (form encoding); bad escapes are kept as written.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_with_and_without_system() {
        let t = identifier_token("urn:oid:1.2|MRN-1").unwrap();
        assert_eq!(t.system.as_deref(), Some("urn:oid:1.2"));
        assert_eq!(t.value, "MRN-1");
        assert_eq!(identifier_token("|X").unwrap().system.as_deref(), Some(""));
        assert_eq!(identifier_token("X").unwrap().system, None);
        assert_eq!(identifier_token(r"s|a\|b").unwrap().value, "a|b");
        assert!(identifier_token("s|").is_none());
        assert!(identifier_token("a|b|c").is_none());
    }

    #[test]
    fn query_pairs_are_decoded() {
        let p = pairs("identifier=urn%3Aoid%3A1%7CMRN%201&_count=5&flag");
        assert_eq!(p[0], ("identifier".into(), "urn:oid:1|MRN 1".into()));
        assert_eq!(p[1], ("_count".into(), "5".into()));
        assert_eq!(p[2], ("flag".into(), String::new()));
        assert_eq!(pairs("a=%zz%4")[0].1, "%zz%4");
    }
}
