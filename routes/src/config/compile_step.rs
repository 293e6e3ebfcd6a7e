//! Compiling transform steps: one verb per step, its companion keys, its table.

use super::compile::Compiler;
use super::read_file::SourceFile;
use super::spec::StepSpec;
use super::target::Target;
use super::transform::{is_coded_element, writable, Miss, Step};

impl Compiler<'_> {
    pub(super) fn step(&mut self, file: &SourceFile, key: &str, s: &StepSpec) -> Option<Step> {
        let sub = |k: &str| format!("{key}.{k}");
        let verbs: Vec<(&str, &String)> = [
            ("set", &s.set),
            ("copy", &s.copy),
            ("clear", &s.clear),
            ("translate", &s.translate),
            ("map_code", &s.map_code),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.as_ref().map(|v| (n, v)))
        .collect();
        let (verb, path) = match verbs.as_slice() {
            [one] => *one,
            [] => {
                self.bad(file, key, "a step is one of set, copy, clear, translate or map_code");
                return None;
            }
            [_, (second, _), ..] => {
                self.bad(
                    file,
                    &sub(second),
                    "one step does one thing: split this into separate steps",
                );
                return None;
            }
        };
        // Keys that belong to another kind of step are mistakes, not extras to ignore.
        let allowed: &[&str] = match verb {
            "set" => &["value"],
            "copy" => &["to"],
            "clear" => &[],
            "translate" => &["table", "default", "on_miss"],
            _ => &["table", "on_miss"],
        };
        for (name, present) in [
            ("value", s.value.is_some()),
            ("to", s.to.is_some()),
            ("table", s.table.is_some()),
            ("default", s.default.is_some()),
            ("on_miss", s.on_miss.is_some()),
        ] {
            if present && !allowed.contains(&name) {
                self.bad(file, &sub(name), format!("{name} does not go with {verb}"));
            }
        }
        let target = self.path(file, &sub(verb), path);
        if let Some(t) = &target {
            if !writable(t) {
                self.bad(
                    file,
                    &sub(verb),
                    format!("{t} holds the delimiters and cannot be changed"),
                );
            }
        }
        match verb {
            "set" => {
                let Some(value) = &s.value else {
                    self.bad(file, key, "set needs value = \"...\"");
                    return None;
                };
                Some(Step::Set {
                    target: target?,
                    value: value.0.clone(),
                })
            }
            "clear" => Some(Step::Clear { target: target? }),
            "copy" => {
                let Some(to) = &s.to else {
                    self.bad(file, key, "copy needs to = \"<path>\"");
                    return None;
                };
                let to = self.path(file, &sub("to"), to)?;
                if !writable(&to) {
                    self.bad(
                        file,
                        &sub("to"),
                        format!("{to} holds the delimiters and cannot be changed"),
                    );
                }
                Some(Step::Copy { from: target?, to })
            }
            _ => self.table_step(file, key, verb, target, s),
        }
    }

    fn table_step(
        &mut self,
        file: &SourceFile,
        key: &str,
        verb: &str,
        target: Option<Target>,
        s: &StepSpec,
    ) -> Option<Step> {
        let sub = |k: &str| format!("{key}.{k}");
        let miss = match (s.on_miss.as_deref(), &s.default) {
            (Some(_), Some(_)) => {
                self.bad(file, &sub("default"), "give default or on_miss, not both");
                Miss::Keep
            }
            (None, Some(d)) => Miss::Default(d.0.clone()),
            (None | Some("keep"), None) => Miss::Keep,
            (Some("error"), None) => Miss::Error,
            (Some(other), None) => {
                self.bad(file, &sub("on_miss"), format!("{other:?}: on_miss is keep or error"));
                Miss::Keep
            }
        };
        let Some(name) = &s.table else {
            self.bad(file, key, format!("{verb} needs table = \"tables/<file>.csv\""));
            return None;
        };
        let table = self.table(file, &sub("table"), name)?;
        let mut target = target?;
        if verb == "translate" {
            return Some(Step::Translate { target, table, miss });
        }
        if !is_coded_element(&target) {
            self.bad(
                file,
                &sub("map_code"),
                format!("{target}: map_code takes a coded field such as OBX-3 (CWE), not a component"),
            );
            return None;
        }
        if target.path().repetition().is_none() {
            // A coded field is mapped in its first repetition; the others are not codes of the same thing.
            target = Target::parse(&format!("{}[1]", target_text(&target))).ok()?;
        }
        if table.system().is_none() {
            self.bad(
                file,
                &sub("table"),
                format!(
                    "{}: map_code needs a table whose header names the system, e.g. from,loinc,display",
                    name
                ),
            );
            return None;
        }
        Some(Step::MapCode { target, table, miss })
    }
}

/// A target as a path again, pinned occurrence included.
fn target_text(t: &Target) -> String {
    let p = t.path();
    if t.is_pinned() {
        format!("{}({})-{}", p.segment(), p.occurrence(), p.field())
    } else {
        format!("{}-{}", p.segment(), p.field())
    }
}
