//! Compiling a `when` table: patterns, field paths and regexes built once.

use regex::Regex;

use super::compile::Compiler;
use super::condition::{Cmp, Condition, Test, TypePattern};
use super::glob::Glob;
use super::read_file::SourceFile;
use super::spec::{Strings, WhenSpec};

impl Compiler<'_> {
    pub(super) fn condition(&mut self, file: &SourceFile, key: &str, w: &WhenSpec) -> Condition {
        let mut all = Vec::new();
        let sub = |k: &str| format!("{key}.{k}");
        if let Some(Strings(types)) = &w.message_type {
            if types.is_empty() {
                self.bad(file, &sub("type"), "an empty list matches nothing");
            }
            for t in types {
                if t.split('^').count() > 3 {
                    self.bad(file, &sub("type"), format!("{t:?}: a type is CODE^TRIGGER[^STRUCTURE]"));
                }
            }
            all.push(Condition::MessageType(
                types.iter().map(|t| TypePattern::new(t)).collect(),
            ));
        }
        if let Some(Strings(list)) = &w.sending_facility {
            all.push(Condition::Facility(list.iter().map(|g| Glob::new(g)).collect()));
        }
        if let Some(Strings(list)) = &w.sending_application {
            all.push(Condition::Application(list.iter().map(|g| Glob::new(g)).collect()));
        }
        if let Some(c) = self.field_condition(file, key, w) {
            all.push(c);
        }
        for (name, list) in [("all", &w.all), ("any", &w.any)] {
            let Some(list) = list else { continue };
            if name == "any" && list.is_empty() {
                self.bad(file, &sub("any"), "an empty any = [] never holds");
            }
            let items: Vec<Condition> = list
                .iter()
                .enumerate()
                .map(|(i, c)| self.condition(file, &format!("{key}.{name}[{i}]"), c))
                .collect();
            all.push(if name == "all" {
                Condition::All(items)
            } else {
                Condition::Any(items)
            });
        }
        if let Some(not) = &w.not {
            all.push(Condition::Not(Box::new(self.condition(file, &sub("not"), not))));
        }
        match all.len() {
            1 => all.pop().unwrap_or(Condition::All(Vec::new())),
            _ => Condition::All(all),
        }
    }

    fn field_condition(&mut self, file: &SourceFile, key: &str, w: &WhenSpec) -> Option<Condition> {
        let sub = |k: &str| format!("{key}.{k}");
        let mut tests = Vec::new();
        let mut written = Vec::new();
        if let Some(v) = &w.equals {
            written.push("equals");
            tests.push(Test::Equals(v.0.clone()));
        }
        if let Some(Strings(list)) = &w.one_of {
            written.push("in");
            if list.is_empty() {
                self.bad(file, &sub("in"), "an empty list never holds");
            }
            tests.push(Test::In(list.clone()));
        }
        if let Some(re) = &w.regex {
            written.push("regex");
            match Regex::new(re) {
                Ok(r) => tests.push(Test::Regex(r)),
                Err(e) => {
                    let why = e.to_string();
                    let why = why
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .trim()
                        .trim_start_matches("error: ")
                        .to_string();
                    self.bad(file, &sub("regex"), format!("not a valid regular expression: {why}"));
                }
            }
        }
        for (name, value, cmp) in [
            ("lt", w.lt, Cmp::Lt),
            ("le", w.le, Cmp::Le),
            ("gt", w.gt, Cmp::Gt),
            ("ge", w.ge, Cmp::Ge),
        ] {
            if let Some(v) = value {
                written.push(name);
                tests.push(Test::Number(cmp, v));
            }
        }
        let absent = match w.exists {
            Some(true) => {
                tests.push(Test::Exists);
                false
            }
            Some(false) => {
                if !written.is_empty() {
                    self.bad(
                        file,
                        &sub("exists"),
                        "exists = false cannot go with other tests of the field",
                    );
                }
                tests.push(Test::Exists);
                true
            }
            None => false,
        };
        match &w.field {
            None => {
                if let Some(first) = written.first().copied().or(w.exists.map(|_| "exists")) {
                    self.bad(file, &sub(first), format!("{first} needs field = \"<path>\" beside it"));
                }
                None
            }
            Some(path) => {
                if written.is_empty() && w.exists.is_none() {
                    self.bad(
                        file,
                        &sub("field"),
                        "a field needs a test beside it: equals, in, regex, lt, le, gt, ge or exists",
                    );
                }
                let target = self.path(file, &sub("field"), path)?;
                let c = Condition::Field(target, tests);
                Some(if absent { Condition::Not(Box::new(c)) } else { c })
            }
        }
    }
}
