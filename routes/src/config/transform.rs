//! Transform steps and how they rewrite a message.
//!
//! Each step edits the bytes of the message: only the place it names changes,
//! everything else stays byte-identical (terminators included). Values given
//! as text are escaped with the message's own delimiters. A path without `(n)`
//! changes every segment with that id; a component path without `[n]` changes
//! the first repetition.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use medbus_adapters::hl7::parser::{decode, encode_into, Delimiters, Message, ParseError, Segment};

use super::code_table::CodeTable;
use super::target::{Level, Spot, Target};

/// What a translation does when the table has no entry for a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// Leave the value as it is (the default).
    Keep,
    /// Fail the route for this message.
    Error,
    /// Write this value instead.
    Default(String),
}

/// One compiled step.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write a text value.
    Set {
        /// Where.
        target: Target,
        /// What (unescaped).
        value: String,
    },
    /// Copy a value from one place to another.
    Copy {
        /// From.
        from: Target,
        /// To.
        to: Target,
    },
    /// Empty a place.
    Clear {
        /// Which.
        target: Target,
    },
    /// Replace a value by its table entry.
    Translate {
        /// Which.
        target: Target,
        /// The table.
        table: Arc<CodeTable>,
        /// On a miss.
        miss: Miss,
    },
    /// Replace a coded element (CWE) by the table's code in its system, keeping the local code as the alternate.
    MapCode {
        /// The coded field or repetition.
        target: Target,
        /// The table (its header names the system).
        table: Arc<CodeTable>,
        /// On a miss (`Keep` or `Error`).
        miss: Miss,
    },
}

/// Why a route could not transform a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// A table had no entry and the step says that is an error.
    #[error("step {step} ({path}): no entry for {value:?} in {table}")]
    NoEntry {
        /// 1-based step number.
        step: usize,
        /// The path as written.
        path: String,
        /// The value looked up.
        value: String,
        /// The table file.
        table: String,
    },
    /// The edited message no longer parses (a bug here: steps only write escaped values).
    #[error("step {step}: the changed message does not parse: {source}")]
    Reparse {
        /// 1-based step number.
        step: usize,
        /// The parser's complaint.
        source: ParseError,
    },
}

/// What a step does at one place.
enum Outcome {
    /// Write these bytes (escaped already); the text says how, for notes.
    Write(Vec<u8>, Cow<'static, str>),
    /// Leave the place alone, and why.
    Keep(Cow<'static, str>),
}

/// A replacement of `start..end` (absolute) by `bytes`.
struct Edit {
    start: usize,
    end: usize,
    bytes: Vec<u8>,
}

/// Applies `steps` to `msg`; `notes` (when given) gets one line per change, for `medbus route test`.
pub fn apply_steps(
    steps: &[Step],
    msg: &Message<'_>,
    mut notes: Option<&mut Vec<String>>,
) -> Result<Vec<u8>, TransformError> {
    let mut buf = msg.as_bytes().to_vec();
    for (i, step) in steps.iter().enumerate() {
        let number = i + 1;
        // The first step reads the message as given; later ones read what the earlier ones wrote.
        let edits = if i == 0 {
            step.edits(msg, number, notes.as_deref_mut())?
        } else {
            let current = Message::parse(&buf).map_err(|source| TransformError::Reparse { step: i, source })?;
            step.edits(&current, number, notes.as_deref_mut())?
        };
        // Back to front, so that earlier offsets stay valid.
        for e in edits.into_iter().rev() {
            buf.splice(e.start..e.end, e.bytes);
        }
    }
    if !steps.is_empty() {
        Message::parse(&buf).map_err(|source| TransformError::Reparse {
            step: steps.len(),
            source,
        })?;
    }
    Ok(buf)
}

/// Where a step acts, for notes and errors: `OBX(2)-3.1` when the message has
/// several OBX, `PID-8` when it has one. Formatted only when shown.
struct Place<'t> {
    target: &'t Target,
    occurrence: usize,
    count: usize,
}

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.target.path();
        f.write_str(path.segment())?;
        if self.count > 1 {
            write!(f, "({})", self.occurrence)?;
        }
        write!(f, "-{}", path.field())?;
        if let Some(r) = path.repetition() {
            write!(f, "[{r}]")?;
        }
        if let Some(c) = path.component() {
            write!(f, ".{c}")?;
        }
        if let Some(sc) = path.subcomponent() {
            write!(f, ".{sc}")?;
        }
        Ok(())
    }
}

fn text(raw: &[u8], d: &Delimiters) -> String {
    String::from_utf8_lossy(&decode(raw, d)).into_owned()
}

fn escaped(value: &str, d: &Delimiters) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    encode_into(value.as_bytes(), d, &mut out);
    out
}

impl Step {
    /// The path the step changes.
    pub fn target(&self) -> &Target {
        match self {
            Step::Set { target, .. }
            | Step::Clear { target }
            | Step::Translate { target, .. }
            | Step::MapCode { target, .. } => target,
            Step::Copy { to, .. } => to,
        }
    }

    fn edits(
        &self,
        msg: &Message<'_>,
        number: usize,
        notes: Option<&mut Vec<String>>,
    ) -> Result<Vec<Edit>, TransformError> {
        let target = self.target();
        let count = msg.segments_named(target.segment()).count();
        let mut edits = Vec::new();
        let mut said = Vec::new();
        for (occurrence, seg) in target.segments(msg) {
            let where_ = Place {
                target,
                occurrence,
                count,
            };
            let spot = target.locate(&seg);
            let d = seg.delimiters();
            match self.new_value(msg, &seg, &spot, number, &where_)? {
                Outcome::Write(bytes, verb) => {
                    if notes.is_some() {
                        let old = text(spot.raw(seg.raw()), &d);
                        said.push(format!("{verb}: {where_} {old:?} → {:?}", text(&bytes, &d)));
                    }
                    let mut replacement = spot.pad;
                    replacement.extend_from_slice(&bytes);
                    edits.push(Edit {
                        start: seg.offset() + spot.start,
                        end: seg.offset() + spot.end,
                        bytes: replacement,
                    });
                }
                Outcome::Keep(why) if notes.is_some() => {
                    said.push(format!("{}: {where_} unchanged ({why})", self.verb()));
                }
                Outcome::Keep(_) => {}
            }
        }
        if notes.is_some() && (count == 0 || (target.is_pinned() && said.is_empty())) {
            said.push(format!("{}: no {target} in the message, nothing changed", self.verb()));
        }
        if let Some(n) = notes {
            n.extend(said);
        }
        Ok(edits)
    }

    fn verb(&self) -> &'static str {
        match self {
            Step::Set { .. } => "set",
            Step::Copy { .. } => "copy",
            Step::Clear { .. } => "clear",
            Step::Translate { .. } => "translate",
            Step::MapCode { .. } => "map_code",
        }
    }

    /// The bytes to write at the target in `seg` and what to say about it; `None` leaves it alone.
    fn new_value(
        &self,
        msg: &Message<'_>,
        seg: &Segment<'_>,
        spot: &Spot,
        number: usize,
        where_: &Place<'_>,
    ) -> Result<Outcome, TransformError> {
        let d = seg.delimiters();
        let current = spot.raw(seg.raw());
        Ok(match self {
            Step::Set { value, .. } => Outcome::Write(escaped(value, &d), "set".into()),
            Step::Clear { .. } if spot.exists() && !current.is_empty() => Outcome::Write(Vec::new(), "clear".into()),
            Step::Clear { .. } => Outcome::Keep("already empty".into()),
            Step::Copy { from, to } => {
                let source = copy_source(msg, seg, from, to);
                let raw = source.as_ref().map(|(s, raw)| (s.delimiters(), *raw));
                let bytes = match raw {
                    None => Vec::new(),
                    // Deeper than it came from: its separators would split the target, so they become escapes.
                    Some((sd, raw)) if to.level() > from.level() => escaped(&text(raw, &sd), &d),
                    Some((_, raw)) => raw.to_vec(),
                };
                if (bytes.as_slice() == current && spot.exists()) || (bytes.is_empty() && !spot.exists()) {
                    Outcome::Keep("the same value".into())
                } else {
                    Outcome::Write(bytes, format!("copy from {from}").into())
                }
            }
            Step::Translate { table, miss, .. } => {
                let value = text(current, &d);
                if value.is_empty() {
                    return Ok(Outcome::Keep("empty".into()));
                }
                match table.get(&value) {
                    Some(e) => Outcome::Write(escaped(&e.to, &d), "translate".into()),
                    None => match miss {
                        Miss::Keep => Outcome::Keep(format!("no entry for {value:?}, kept").into()),
                        Miss::Default(v) => Outcome::Write(
                            escaped(v, &d),
                            format!("translate (no entry for {value:?}, default)").into(),
                        ),
                        Miss::Error => {
                            return Err(TransformError::NoEntry {
                                step: number,
                                path: where_.to_string(),
                                value,
                                table: table.path().display().to_string(),
                            })
                        }
                    },
                }
            }
            Step::MapCode { table, miss, .. } => {
                let Some(system) = table.system() else {
                    return Ok(Outcome::Keep("the table names no system".into()));
                };
                let comp = d.component();
                let parts: Vec<&[u8]> = current.split(|&b| b == comp).collect();
                let part = |i: usize| parts.get(i).copied().unwrap_or_default();
                let code = text(part(0), &d);
                if code.is_empty() {
                    return Ok(Outcome::Keep("no code".into()));
                }
                if text(part(2), &d) == system.hl7_code() {
                    return Ok(Outcome::Keep(format!("already coded in {}", system.hl7_code()).into()));
                }
                let Some(entry) = table.get(&code) else {
                    if *miss == Miss::Error {
                        return Err(TransformError::NoEntry {
                            step: number,
                            path: where_.to_string(),
                            value: code,
                            table: table.path().display().to_string(),
                        });
                    }
                    return Ok(Outcome::Keep(format!("no entry for {code:?}, kept").into()));
                };
                let display: Cow<'_, [u8]> = if entry.display.is_empty() {
                    Cow::Borrowed(part(1))
                } else {
                    Cow::Owned(escaped(&entry.display, &d))
                };
                // CWE: 1-3 the standard code, 4-6 the local one it replaces, 8 the local version, 9+ kept.
                let mut fields: Vec<Cow<'_, [u8]>> = vec![
                    Cow::Owned(escaped(&entry.to, &d)),
                    display,
                    Cow::Borrowed(system.hl7_code().as_bytes()),
                    Cow::Borrowed(part(0)),
                    Cow::Borrowed(part(1)),
                    Cow::Borrowed(part(2)),
                    Cow::Borrowed(b""),
                    Cow::Borrowed(part(6)),
                ];
                fields.extend(parts.iter().skip(8).map(|p| Cow::Borrowed(*p)));
                while fields.last().is_some_and(|f| f.is_empty()) {
                    fields.pop();
                }
                let bytes = fields.join(&comp);
                Outcome::Write(bytes, format!("map_code to {}", system.hl7_code()).into())
            }
        })
    }
}

/// The segment and bytes a copy reads: the same segment when both paths name
/// the same unpinned segment id (each OBX copies its own), else the source's
/// pinned or first occurrence. `None` when the source is absent.
fn copy_source<'a>(
    msg: &Message<'a>,
    seg: &Segment<'a>,
    from: &Target,
    to: &Target,
) -> Option<(Segment<'a>, &'a [u8])> {
    let same = !from.is_pinned() && !to.is_pinned() && from.segment() == to.segment();
    let source = if same {
        *seg
    } else {
        let (_, s) = from.segments(msg).next()?;
        s
    };
    let spot = from.locate(&source);
    spot.exists().then(|| (source, spot.raw(source.raw())))
}

/// True when a step may write `target` (not a delimiter field).
pub fn writable(target: &Target) -> bool {
    !target.is_delimiter_field()
}

/// The level at which `map_code` works: a field or one repetition of it.
pub fn is_coded_element(target: &Target) -> bool {
    matches!(target.level(), Level::Field | Level::Repetition)
}
