//! Reading JSON into the canonical structs with every failure named by its
//! element: serde_path_to_error gives the path of a type error, serde_ignored
//! the names the structs skip (refused unless R4 knows them somewhere).

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::elements;
use super::outcome::{Issue, IssueCode};

/// Reads `value` as a `T`; `root` names it in issues (`Patient`,
/// `Observation.valueQuantity`). Unknown nested element names are issues too;
/// names directly under a resource's root are left to the top-level check,
/// which knows the exact R4 list (`top_level_checked`).
pub(super) fn read<T: DeserializeOwned>(value: &Value, root: &str, top_level_checked: bool) -> Result<T, Vec<Issue>> {
    let mut track = serde_path_to_error::Track::new();
    let mut unknown: Vec<Issue> = Vec::new();
    let result: Result<T, serde_json::Error> = {
        let de = serde_path_to_error::Deserializer::new(value, &mut track);
        serde_ignored::deserialize(de, |path| {
            let mut segments = Vec::new();
            ignored_segments(&path, &mut segments);
            let Some(Seg::Key(name)) = segments.last() else {
                return;
            };
            let is_root_level = segments.len() == 1;
            if (is_root_level && top_level_checked) || elements::is_nested(name) {
                return;
            }
            unknown.push(Issue::at(
                IssueCode::Structure,
                expression(root, &segments),
                format!("unknown element {name:?}: not an element of any FHIR R4 datatype"),
            ));
        })
    };
    match result {
        Ok(t) if unknown.is_empty() => Ok(t),
        Ok(_) => Err(unknown),
        Err(e) => {
            let segments: Vec<Seg> = track
                .path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
                    serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
                    // Enum variants and unknown steps are not elements.
                    _ => None,
                })
                .collect();
            unknown.push(from_serde(&e, root, segments));
            Err(unknown)
        }
    }
}

/// One step of an element path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn ignored_segments(path: &serde_ignored::Path<'_>, out: &mut Vec<Seg>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            ignored_segments(parent, out);
            out.push(Seg::Index(*index));
        }
        Path::Map { parent, key } => {
            ignored_segments(parent, out);
            out.push(Seg::Key(key.clone()));
        }
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => {
            ignored_segments(parent, out)
        }
    }
}

/// `Patient` + [name, 0, given] → `Patient.name[0].given`.
fn expression(root: &str, segments: &[Seg]) -> String {
    let mut e = root.to_string();
    for s in segments {
        match s {
            Seg::Key(k) => {
                e.push('.');
                e.push_str(k);
            }
            Seg::Index(i) => e.push_str(&format!("[{i}]")),
        }
    }
    e
}

/// The issue for a serde error at `segments`. serde's messages are the only
/// classification it offers: a wrong JSON type is a structure problem, a
/// missing field a required one, anything else (bad code, bad date) a value.
fn from_serde(e: &serde_json::Error, root: &str, mut segments: Vec<Seg>) -> Issue {
    let message = e.to_string();
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        segments.push(Seg::Key(field.to_string()));
        return Issue::at(
            IssueCode::Required,
            expression(root, &segments),
            format!("{field} is required"),
        );
    }
    let code = if message.starts_with("invalid type") || message.starts_with("invalid length") {
        IssueCode::Structure
    } else {
        IssueCode::Value
    };
    Issue::at(code, expression(root, &segments), message)
}
