//! The compiled `when` filter of a route and how a message is tested against it.
//!
//! A path without an occurrence (`OBX-8`) holds when any segment of that name
//! satisfies the test; a component path without a repetition (`PID-3.5`) when
//! any repetition does. `(n)` and `[n]` pin one.

use std::borrow::Cow;

use medbus_adapters::hl7::parser::{Message, Value};
use regex::Regex;

use super::glob::Glob;
use super::target::Target;

/// What the header says, read once per message for every route.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    /// MSH-9.1.
    pub code: Cow<'a, str>,
    /// MSH-9.2 (empty when absent).
    pub trigger: Cow<'a, str>,
    /// MSH-9.3 (empty when absent).
    pub structure: Cow<'a, str>,
    /// MSH-4.1.
    pub facility: Cow<'a, str>,
    /// MSH-3.1.
    pub application: Cow<'a, str>,
}

impl<'a> Facts<'a> {
    /// Reads the header fields the filters use.
    pub fn of(msg: &Message<'a>) -> Self {
        let component = |field: usize, n: usize| -> Cow<'a, str> {
            msg.msh()
                .field(field)
                .and_then(|f| f.component(n))
                .map(|c| c.text())
                .unwrap_or_default()
        };
        Facts {
            code: component(9, 1),
            trigger: component(9, 2),
            structure: component(9, 3),
            facility: component(4, 1),
            application: component(3, 1),
        }
    }
}

/// An MSH-9 pattern: code, trigger and structure globs (`ADT^A0*`).
#[derive(Debug, Clone)]
pub struct TypePattern {
    code: Glob,
    trigger: Glob,
    structure: Glob,
}

impl TypePattern {
    /// `ADT` means `ADT^*`; a part not written matches anything.
    pub fn new(pattern: &str) -> Self {
        let mut parts = pattern.split('^');
        let mut next = || Glob::new(parts.next().filter(|p| !p.is_empty()).unwrap_or("*"));
        TypePattern {
            code: next(),
            trigger: next(),
            structure: next(),
        }
    }

    fn matches(&self, f: &Facts<'_>) -> bool {
        self.code.matches(&f.code) && self.trigger.matches(&f.trigger) && self.structure.matches(&f.structure)
    }
}

/// A comparison of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `lt`
    Lt,
    /// `le`
    Le,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
}

/// One test of a field value.
#[derive(Debug, Clone)]
pub enum Test {
    /// The decoded text equals this.
    Equals(String),
    /// The decoded text is one of these.
    In(Vec<String>),
    /// The decoded text matches.
    Regex(Regex),
    /// The value is a number and compares so.
    Number(Cmp, f64),
    /// The value is present and not the HL7 null `""`.
    Exists,
}

impl Test {
    fn holds(&self, value: &Value<'_>) -> bool {
        match self {
            Test::Exists => !value.is_empty() && !value.is_null(),
            Test::Equals(s) => value.text() == s.as_str(),
            Test::In(list) => {
                let text = value.text();
                list.iter().any(|s| s.as_str() == text)
            }
            Test::Regex(re) => re.is_match(&value.text()),
            Test::Number(cmp, limit) => match value.text().trim().parse::<f64>() {
                Ok(n) => match cmp {
                    Cmp::Lt => n < *limit,
                    Cmp::Le => n <= *limit,
                    Cmp::Gt => n > *limit,
                    Cmp::Ge => n >= *limit,
                },
                Err(_) => false,
            },
        }
    }
}

/// A compiled filter.
#[derive(Debug, Clone)]
pub enum Condition {
    /// Every one holds (empty: always true).
    All(Vec<Condition>),
    /// At least one holds.
    Any(Vec<Condition>),
    /// It does not hold.
    Not(Box<Condition>),
    /// MSH-9 matches one of the patterns.
    MessageType(Vec<TypePattern>),
    /// MSH-4.1 matches one of the patterns.
    Facility(Vec<Glob>),
    /// MSH-3.1 matches one of the patterns.
    Application(Vec<Glob>),
    /// Some value at the path passes every test.
    Field(Target, Vec<Test>),
}

impl Condition {
    /// True when `msg` (with its header `facts`) passes.
    pub fn holds(&self, msg: &Message<'_>, facts: &Facts<'_>) -> bool {
        match self {
            Condition::All(list) => list.iter().all(|c| c.holds(msg, facts)),
            Condition::Any(list) => list.iter().any(|c| c.holds(msg, facts)),
            Condition::Not(c) => !c.holds(msg, facts),
            Condition::MessageType(patterns) => patterns.iter().any(|p| p.matches(facts)),
            Condition::Facility(globs) => globs.iter().any(|g| g.matches(&facts.facility)),
            Condition::Application(globs) => globs.iter().any(|g| g.matches(&facts.application)),
            Condition::Field(target, tests) => target.any_value(msg, |v| tests.iter().all(|t| t.holds(&v))),
        }
    }
}
