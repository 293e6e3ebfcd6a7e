//! A configuration problem, located by file and line (or environment variable).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use toml::de::{DeTable, DeValue};

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A config file, with the 1-based line when known.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: Option<usize>,
    },
    /// An environment variable.
    Env(String),
    /// A built-in default.
    Default,
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub origin: Origin,
    /// Dotted key path (`backbone.url`), empty for the whole file.
    pub key: String,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File { path, line: Some(l) } => write!(f, "{}:{l}: ", path.display())?,
            Origin::File { path, line: None } => write!(f, "{}: ", path.display())?,
            Origin::Env(var) => write!(f, "environment {var}: ")?,
            Origin::Default => write!(f, "built-in default: ")?,
        }
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// Every problem found, for reporting all at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(f, "{n} configuration problem{}:", if n == 1 { "" } else { "s" })?;
        for p in &self.0 {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// Line of each key path in a TOML text, so problems found after parsing can
/// still point at the line.
#[derive(Debug, Default)]
pub struct LineIndex {
    lines: HashMap<String, usize>,
}

impl LineIndex {
    /// Indexes `text`; an unparseable text gives an empty index.
    pub fn new(text: &str) -> Self {
        let mut idx = LineIndex::default();
        if let Ok(table) = DeTable::parse(text) {
            let starts = line_starts(text);
            idx.walk(table.get_ref(), "", &starts);
        }
        idx
    }

    fn walk(&mut self, table: &DeTable<'_>, prefix: &str, starts: &[usize]) {
        for (k, v) in table.iter() {
            let path = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            self.lines.insert(path.clone(), line_of(starts, k.span().start));
            if let DeValue::Table(t) = v.get_ref() {
                self.walk(t, &path, starts);
            }
        }
    }

    /// The line of `path`, or of its nearest ancestor that is in the file.
    pub fn line(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return Some(*l);
            }
            p = p.rsplit_once('.')?.0;
        }
    }
}

/// Byte offsets where each line starts.
pub fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// 1-based line of byte `offset`.
pub fn line_of(starts: &[usize], offset: usize) -> usize {
    starts.partition_point(|&s| s <= offset).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lines_of_nested_keys() {
        let text = "data_dir = \"x\"\n\n[backbone]\nurl = \"embedded\"\n\n[store]\n# c\nurl = \"y\"\n";
        let idx = LineIndex::new(text);
        assert_eq!(idx.line("data_dir"), Some(1));
        assert_eq!(idx.line("backbone"), Some(3));
        assert_eq!(idx.line("backbone.url"), Some(4));
        assert_eq!(idx.line("store.url"), Some(8));
        assert_eq!(
            idx.line("store.max_connections"),
            Some(6),
            "falls back to the table line"
        );
        assert_eq!(idx.line("http.addr"), None);
    }
}
