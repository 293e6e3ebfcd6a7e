//! Code tables: CSV files kept beside the config (`tables/lab-codes.csv`).
//!
//! The first row names the columns: `from,to[,display]` for a plain
//! translation, or `from,<system>[,display]` for codes of a known system
//! (`loinc`, `snomed`, `cpt`, `icd10`), which `map_code` needs. Fields may be
//! quoted (`"Glucose, serum"`, `""` for a quote inside). Blank lines and lines
//! starting with `#` are skipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use medbus_bus::config::{Origin, Problem};

/// A code system a table can map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeSystem {
    /// LOINC (HL7 `LN`).
    Loinc,
    /// SNOMED CT (HL7 `SCT`).
    Snomed,
    /// CPT-4 (HL7 `C4`).
    Cpt,
    /// ICD-10 (HL7 `I10`).
    Icd10,
}

impl CodeSystem {
    /// From a table header (`loinc`, `LOINC`, `snomed`…).
    pub fn from_header(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "loinc" | "ln" => Some(CodeSystem::Loinc),
            "snomed" | "snomed-ct" | "sct" => Some(CodeSystem::Snomed),
            "cpt" | "c4" => Some(CodeSystem::Cpt),
            "icd10" | "icd-10" | "i10" => Some(CodeSystem::Icd10),
            _ => None,
        }
    }

    /// The HL7 v2 coding system code (table 0396), written in CWE.3.
    pub fn hl7_code(self) -> &'static str {
        match self {
            CodeSystem::Loinc => "LN",
            CodeSystem::Snomed => "SCT",
            CodeSystem::Cpt => "C4",
            CodeSystem::Icd10 => "I10",
        }
    }
}

/// One row: the code it becomes, and its display text (may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The new code.
    pub to: String,
    /// Its display text.
    pub display: String,
}

/// A loaded table.
#[derive(Debug, Clone)]
pub struct CodeTable {
    path: PathBuf,
    system: Option<CodeSystem>,
    entries: HashMap<String, Entry>,
}

impl CodeTable {
    /// The file it came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The system its header names, if any.
    pub fn system(&self) -> Option<CodeSystem> {
        self.system
    }

    /// The entry for `code`.
    pub fn get(&self, code: &str) -> Option<&Entry> {
        self.entries.get(code)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads `path`, reporting every bad row with its line. A table with bad
    /// rows is still returned (without them), so its users are checked too.
    pub fn load(path: &Path, problems: &mut Vec<Problem>) -> Option<CodeTable> {
        let at = |line: Option<usize>, message: String| Problem {
            origin: Origin::File {
                path: path.to_path_buf(),
                line,
            },
            key: String::new(),
            message,
        };
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                problems.push(at(None, format!("cannot read: {e}")));
                return None;
            }
        };
        let mut rows = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
            .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
        let mut table = CodeTable {
            path: path.to_path_buf(),
            system: None,
            entries: HashMap::new(),
        };
        let Some((header_line, header)) = rows.next() else {
            problems.push(at(
                None,
                "empty: the first row must name the columns, from,to[,display]".into(),
            ));
            return Some(table);
        };
        match split_row(header).as_deref() {
            Ok([from, to, rest @ ..])
                if from.trim().eq_ignore_ascii_case("from")
                    && rest.len() <= 1
                    && rest.iter().all(|d| d.trim().eq_ignore_ascii_case("display")) =>
            {
                let to = to.trim();
                if !to.eq_ignore_ascii_case("to") {
                    match CodeSystem::from_header(to) {
                        Some(system) => table.system = Some(system),
                        None => problems.push(at(
                            Some(header_line),
                            format!("unknown code system {to:?} in the header: use to, loinc, snomed, cpt or icd10"),
                        )),
                    }
                }
            }
            _ => problems.push(at(
                Some(header_line),
                format!(
                    "the first row must name the columns: from,to[,display] or from,loinc[,display]; found {header:?}"
                ),
            )),
        }
        let mut first_seen: HashMap<String, usize> = HashMap::new();
        for (line, row) in rows {
            let fields = match split_row(row) {
                Ok(f) => f,
                Err(why) => {
                    problems.push(at(Some(line), why));
                    continue;
                }
            };
            let (from, to, display) = match fields.as_slice() {
                [from, to] => (from.trim(), to.trim(), ""),
                [from, to, display] => (from.trim(), to.trim(), display.trim()),
                other => {
                    problems.push(at(
                        Some(line),
                        format!("{} columns; a row is from,to[,display]", other.len()),
                    ));
                    continue;
                }
            };
            if from.is_empty() || to.is_empty() {
                problems.push(at(Some(line), "from and to must not be empty".into()));
                continue;
            }
            if let Some(first) = first_seen.get(from) {
                problems.push(at(
                    Some(line),
                    format!("{from:?} is already in the table (line {first})"),
                ));
                continue;
            }
            first_seen.insert(from.to_string(), line);
            table.entries.insert(
                from.to_string(),
                Entry {
                    to: to.to_string(),
                    display: display.to_string(),
                },
            );
        }
        Some(table)
    }
}

/// Splits one CSV row (RFC 4180 quoting, one line per row).
fn split_row(row: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = row.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.trim().is_empty() && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (false, '"') => return Err("a quote inside an unquoted value: quote the whole value".into()),
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote (a row is one line)".into());
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_split_with_quotes() {
        assert_eq!(split_row("a,b,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            split_row("GLU,\"2345-7\",\"Glucose, \"\"serum\"\"\"").unwrap(),
            ["GLU", "2345-7", "Glucose, \"serum\""]
        );
        assert_eq!(split_row("a,,").unwrap(), ["a", "", ""]);
        assert!(split_row("a,\"b").is_err());
        assert!(split_row("a,b\"c").is_err());
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(
            &p,
            "from,loinc,display\nGLU,2345-7,Glucose\n\n# note\nK,2823-3\nNA\nGLU,x\n,y\nA,B,C,D\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        let t = CodeTable::load(&p, &mut problems).unwrap();
        assert_eq!(t.system(), Some(CodeSystem::Loinc));
        assert_eq!(t.len(), 2);
        assert_eq!(t.get("GLU").unwrap().display, "Glucose");
        let lines: Vec<Option<usize>> = problems
            .iter()
            .map(|p| match &p.origin {
                Origin::File { line, .. } => *line,
                _ => None,
            })
            .collect();
        assert_eq!(lines, [Some(6), Some(7), Some(8), Some(9)], "{problems:#?}");
    }
}
