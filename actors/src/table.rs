//! The small CSV tables services read at start-up (critical limits, the
//! charge master), kept beside the config like the route code tables.
//!
//! The first row names the columns, exactly as the service expects them;
//! each later row has that many fields. Fields may be quoted
//! (`"PANEL, BASIC"`, `""` for a quote inside). Blank lines and lines
//! starting with `#` are skipped. A bad line is an error naming the file and
//! the line: a service refuses to start rather than misread a clinical table.

use std::fmt;
use std::path::{Path, PathBuf};

/// A table could not be read, or a line of it is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    /// The file.
    pub path: PathBuf,
    /// The line (1-based), when the problem is on one.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl TableError {
    /// A problem on `line` of `path`.
    pub fn at(path: &Path, line: usize, message: impl Into<String>) -> Self {
        TableError {
            path: path.to_path_buf(),
            line: Some(line),
            message: message.into(),
        }
    }
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for TableError {}

/// One data row: its line and its fields, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Line in the file (1-based).
    pub line: usize,
    /// The fields, as many as the header names.
    pub fields: Vec<String>,
}

/// Reads `path`, whose header must be `columns` (case and blanks aside).
pub fn read(path: &Path, columns: &[&str]) -> Result<Vec<Row>, TableError> {
    let bytes = std::fs::read(path).map_err(|e| TableError {
        path: path.to_path_buf(),
        line: None,
        message: format!("cannot read: {e}"),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| TableError {
        path: path.to_path_buf(),
        line: None,
        message: format!("not UTF-8: {e}"),
    })?;
    parse(path, &text, columns)
}

/// Parses the text of a table (see [`read`]); `path` names it in errors.
pub fn parse(path: &Path, text: &str, columns: &[&str]) -> Result<Vec<Row>, TableError> {
    let wanted = columns.join(",");
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((header_line, header)) = lines.next() else {
        return Err(TableError {
            path: path.to_path_buf(),
            line: None,
            message: format!("empty: the first row must name the columns, {wanted}"),
        });
    };
    let names = split_row(header).map_err(|why| TableError::at(path, header_line, why))?;
    let matches =
        names.len() == columns.len() && names.iter().zip(columns).all(|(n, c)| n.trim().eq_ignore_ascii_case(c));
    if !matches {
        return Err(TableError::at(
            path,
            header_line,
            format!("the first row must name the columns {wanted}; found {header:?}"),
        ));
    }
    let mut rows = Vec::new();
    for (line, text) in lines {
        let fields = split_row(text).map_err(|why| TableError::at(path, line, why))?;
        if fields.len() != columns.len() {
            return Err(TableError::at(
                path,
                line,
                format!("{} fields; a row is {wanted}", fields.len()),
            ));
        }
        let fields = fields.into_iter().map(|f| f.trim().to_string()).collect();
        rows.push(Row { line, fields });
    }
    Ok(rows)
}

/// Splits one row (RFC 4180 quoting, one line per row).
fn split_row(row: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = row.chars().peekable();
    let mut quoted = false;
    // True right after a closing quote: only a comma (or the end) may follow.
    let mut closed = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                    closed = true;
                }
            }
            '"' if field.trim().is_empty() && !closed => {
                field.clear();
                quoted = true;
            }
            ',' if !quoted => {
                fields.push(std::mem::take(&mut field));
                closed = false;
            }
            c if closed && !c.is_whitespace() => {
                return Err(format!("text after a closing quote in field {}", fields.len() + 1));
            }
            c => field.push(c),
        }
    }
    if quoted {
        return Err(format!("a quote in field {} is not closed", fields.len() + 1));
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_with_quotes_comments_and_blank_lines() {
        let text = "# a comment\nCode, Price\n\nA,\"1,5\"\n\"say \"\"hi\"\"\", 2 \r\n";
        let rows = parse(Path::new("t.csv"), text, &["code", "price"]).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 4);
        assert_eq!(rows[0].fields, ["A", "1,5"]);
        assert_eq!(rows[1].fields, ["say \"hi\"", "2"]);
    }

    #[test]
    fn errors_name_the_file_and_the_line() {
        let e = parse(Path::new("t.csv"), "code,price\nA,1\nB\n", &["code", "price"]).unwrap_err();
        assert_eq!(e.to_string(), "t.csv:3: 1 fields; a row is code,price");
        let e = parse(Path::new("t.csv"), "code,cost\n", &["code", "price"]).unwrap_err();
        assert_eq!(e.line, Some(1));
        let e = parse(Path::new("t.csv"), "code,price\n\"A,1\n", &["code", "price"]).unwrap_err();
        assert!(e.message.contains("not closed"), "{e}");
        let e = parse(Path::new("t.csv"), "code,price\n\"A\"x,1\n", &["code", "price"]).unwrap_err();
        assert!(e.message.contains("closing quote"), "{e}");
        assert!(parse(Path::new("t.csv"), "# only\n", &["code"]).is_err());
        let e = read(Path::new("/nonexistent/t.csv"), &["code"]).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/t.csv: cannot read"), "{e}");
    }
}
