//! Line of every key and array element of a TOML text, so that a problem found
//! after parsing (a bad value, an unknown channel) still points at its line.
//!
//! Keys are written as serde_path_to_error writes them: `routes.lab.when.all[1].field`.

use std::collections::HashMap;

use medbus_bus::config::problem::{line_of, line_starts};
use toml::de::{DeTable, DeValue};

/// Key path → 1-based line.
#[derive(Debug, Default)]
pub struct KeyLines {
    lines: HashMap<String, usize>,
}

impl KeyLines {
    /// Indexes `text`; an unparseable text gives an empty index (its syntax error is reported apart).
    pub fn new(text: &str) -> Self {
        let mut idx = KeyLines::default();
        if let Ok(table) = DeTable::parse(text) {
            let starts = line_starts(text);
            idx.table(table.get_ref(), "", &starts);
        }
        idx
    }

    fn table(&mut self, table: &DeTable<'_>, prefix: &str, starts: &[usize]) {
        for (k, v) in table.iter() {
            let path = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            self.lines.insert(path.clone(), line_of(starts, k.span().start));
            self.value(v.get_ref(), &path, starts);
        }
    }

    fn value(&mut self, value: &DeValue<'_>, path: &str, starts: &[usize]) {
        match value {
            DeValue::Table(t) => self.table(t, path, starts),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    self.lines.insert(p.clone(), line_of(starts, item.span().start));
                    self.value(item.get_ref(), &p, starts);
                }
            }
            _ => {}
        }
    }

    /// The line of `path`, or of its nearest ancestor in the text.
    pub fn line(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p = p.get(..cut)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_inside_arrays_and_arrays_of_tables_have_lines() {
        let text = "[routes.a]\nchannels = [\"x\",\n  \"y\"]\nwhen = { all = [\n  { field = \"PID-3\" },\n  { bad = 1 },\n] }\n\n[[routes.a.transform]]\nset = \"MSH-5\"\n\n[[routes.a.transform]]\nclear = \"PID-19\"\n";
        let idx = KeyLines::new(text);
        assert_eq!(idx.line("routes.a"), Some(1));
        assert_eq!(idx.line("routes.a.channels[1]"), Some(3));
        assert_eq!(idx.line("routes.a.when.all[0].field"), Some(5));
        assert_eq!(idx.line("routes.a.when.all[1].bad"), Some(6));
        assert_eq!(idx.line("routes.a.transform[0].set"), Some(10));
        assert_eq!(idx.line("routes.a.transform[1].clear"), Some(13));
        assert_eq!(
            idx.line("routes.a.transform[1].table"),
            Some(12),
            "an absent key falls back to its table"
        );
        assert_eq!(idx.line("routes.a.to.services"), Some(1));
    }
}
