//! Reading one route file: TOML syntax, then each `[routes.<name>]` table into a
//! [`RouteSpec`] on its own, so that a mistake in one route does not hide the
//! next. Unknown keys are collected (`serde_ignored`) rather than refused, and
//! type errors carry their key (`serde_path_to_error`); both get their line
//! from [`KeyLines`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use medbus_bus::config::problem::{line_of, line_starts};
use medbus_bus::config::{Origin, Problem};

use super::key_lines::KeyLines;
use super::spec::RouteSpec;

/// A file being read: its path and key lines, to place problems.
#[derive(Debug)]
pub struct SourceFile {
    /// The file.
    pub path: PathBuf,
    /// Line of each key.
    pub lines: KeyLines,
}

impl SourceFile {
    /// A problem at `key` (its line, or its nearest ancestor's).
    pub fn problem(&self, key: &str, message: impl Into<String>) -> Problem {
        Problem {
            origin: Origin::File {
                path: self.path.clone(),
                line: self.lines.line(key),
            },
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// One route as read, before checking.
#[derive(Debug)]
pub struct ReadRoute {
    /// Its name (the key under `[routes]`).
    pub name: String,
    /// Where it is.
    pub file: Arc<SourceFile>,
    /// Line of its table.
    pub line: usize,
    /// What it says, without the values that had the wrong type.
    pub spec: RouteSpec,
    /// Keys whose values were dropped for having the wrong type (already reported).
    pub dropped: Vec<String>,
}

/// Reads `path`; routes that read are returned in file order, problems appended to `problems`.
pub fn read_route_file(path: &Path, problems: &mut Vec<Problem>) -> Vec<ReadRoute> {
    let whole_file = |line: Option<usize>, message: String| Problem {
        origin: Origin::File {
            path: path.to_path_buf(),
            line,
        },
        key: String::new(),
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(whole_file(None, format!("cannot read: {e}")));
            return Vec::new();
        }
    };
    let table = match text.parse::<toml::Table>() {
        Ok(t) => t,
        Err(e) => {
            let line = e.span().map(|s| line_of(&line_starts(&text), s.start));
            problems.push(whole_file(line, format!("not valid TOML: {}", e.message().trim())));
            return Vec::new();
        }
    };
    let file = Arc::new(SourceFile {
        path: path.to_path_buf(),
        lines: KeyLines::new(&text),
    });
    let mut out = Vec::new();
    for (key, value) in table {
        if key != "routes" {
            problems.push(file.problem(&key, "unknown key: a route file holds [routes.<name>] tables"));
            continue;
        }
        let toml::Value::Table(routes) = value else {
            problems.push(file.problem("routes", "must be a table of routes: [routes.<name>]"));
            continue;
        };
        for (name, route) in routes {
            let prefix = format!("routes.{name}");
            if !route.is_table() {
                problems.push(file.problem(&prefix, "a route is a table: [routes.<name>] with channels, when, to…"));
                continue;
            }
            let mut dropped = Vec::new();
            if let Some(spec) = read_route(route, &prefix, &file, problems, &mut dropped) {
                out.push(ReadRoute {
                    line: file.lines.line(&prefix).unwrap_or(0),
                    name,
                    file: file.clone(),
                    spec,
                    dropped,
                });
            }
        }
    }
    // toml tables are sorted by key; the file's order is the order interface teams expect.
    out.sort_by_key(|r| r.line);
    out
}

/// Deserialises one route, reporting unknown keys and type errors. A key with a
/// bad value is dropped and the route read again, so one bad value does not hide the next.
fn read_route(
    mut value: toml::Value,
    prefix: &str,
    file: &SourceFile,
    problems: &mut Vec<Problem>,
    dropped: &mut Vec<String>,
) -> Option<RouteSpec> {
    for _ in 0..64 {
        let mut unknown = Vec::new();
        let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(ignored_key(&path.to_string()));
        let ignored = serde_ignored::Deserializer::new(value.clone(), &mut on_unknown);
        match serde_path_to_error::deserialize::<_, RouteSpec>(ignored) {
            Ok(spec) => {
                for u in unknown {
                    let key = format!("{prefix}.{u}");
                    problems.push(file.problem(&key, "unknown key"));
                }
                return Some(spec);
            }
            Err(e) => {
                let inner = e.path().to_string();
                let whole = inner == "." || inner.is_empty();
                let key = if whole {
                    prefix.to_string()
                } else {
                    format!("{prefix}.{inner}")
                };
                let message = e
                    .into_inner()
                    .message()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                problems.push(file.problem(&key, message));
                if whole || !remove_key(&mut value, &inner) {
                    return None;
                }
                dropped.push(key);
            }
        }
    }
    None
}

/// serde_ignored writes `when.?.all.?.1.feild`; the rest of medbus writes `when.all[1].feild`.
fn ignored_key(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.').filter(|p| *p != "?" && !p.is_empty()) {
        if part.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// Removes the key at `a.b[2].c` from a table value; false when it cannot (it
/// is not there, or it is an array element, whose removal would shift the others).
fn remove_key(value: &mut toml::Value, path: &str) -> bool {
    let Some((parent, last)) = path.rsplit_once('.').map_or(Some(("", path)), Some) else {
        return false;
    };
    if last.contains('[') {
        return false;
    }
    let mut v = value;
    for part in parent.split('.').filter(|p| !p.is_empty()) {
        let (key, indices) = match part.split_once('[') {
            Some((k, rest)) => (k, rest),
            None => (part, ""),
        };
        let Some(inner) = v.get_mut(key) else { return false };
        v = inner;
        for index in indices.split(['[', ']']).filter(|s| !s.is_empty()) {
            let Ok(i) = index.parse::<usize>() else { return false };
            let Some(inner) = v.get_mut(i) else { return false };
            v = inner;
        }
    }
    v.as_table_mut().is_some_and(|t| t.remove(last).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_ignored_paths_are_written_like_the_others() {
        assert_eq!(ignored_key("when.?.all.?.1.feild"), "when.all[1].feild");
        assert_eq!(ignored_key("transform.0.sett"), "transform[0].sett");
        assert_eq!(ignored_key("colour"), "colour");
    }

    #[test]
    fn a_bad_value_is_removed_by_its_path() {
        let mut v: toml::Value = toml::from_str("[when]\nall = [{ lt = \"x\", field = \"A\" }]\n").unwrap();
        assert!(remove_key(&mut v, "when.all[0].lt"));
        assert_eq!(v["when"]["all"][0].as_table().unwrap().len(), 1);
        assert!(!remove_key(&mut v, "when.all[0]"));
        assert!(!remove_key(&mut v, "nope.x"));
    }
}
