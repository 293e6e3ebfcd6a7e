//! Checks a read route and compiles it: paths parsed and regexes built once,
//! tables loaded once, names checked against the configuration. Every problem
//! is collected with its key, so `medbus check` lists them all.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use medbus_bus::config::Problem;
use regex::Regex;

use super::code_table::CodeTable;
use super::condition::{Cmp, Condition, Test, TypePattern};
use super::glob::Glob;
use super::read_file::{ReadRoute, SourceFile};
use super::route::{Route, Service};
use super::spec::{StepSpec, Strings, WhenSpec};
use super::target::Target;
use super::transform::{is_coded_element, writable, Miss, Step};

/// Names the routes may use, from the configuration. `None` skips that check
/// (when the configuration itself did not load).
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// Channel names (`[channels]`).
    pub channels: Option<BTreeSet<String>>,
    /// Destination names (`[destinations]`).
    pub destinations: Option<BTreeSet<String>>,
}

/// Compiles routes, sharing tables between them.
pub struct Compiler<'k> {
    known: &'k Known,
    base_dir: PathBuf,
    tables: HashMap<PathBuf, Option<Arc<CodeTable>>>,
    /// Every problem found so far.
    pub problems: Vec<Problem>,
}

impl<'k> Compiler<'k> {
    /// Tables are found relative to `base_dir` (the config file's directory).
    pub fn new(known: &'k Known, base_dir: &Path) -> Self {
        Compiler {
            known,
            base_dir: base_dir.to_path_buf(),
            tables: HashMap::new(),
            problems: Vec::new(),
        }
    }

    /// Number of distinct tables that loaded.
    pub fn table_count(&self) -> usize {
        self.tables.values().filter(|t| t.is_some()).count()
    }

    fn bad(&mut self, file: &SourceFile, key: &str, message: impl Into<String>) {
        self.problems.push(file.problem(key, message));
    }

    /// The route, or `None` (its problems recorded) when anything is wrong with it.
    pub fn route(&mut self, r: &ReadRoute) -> Option<Route> {
        let before = self.problems.len();
        let file = r.file.as_ref();
        let key = format!("routes.{}", r.name);
        let spec = &r.spec;
        if r.name.is_empty()
            || !r
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            self.bad(file, &key, "a route name is letters, digits, '-' and '_'");
        }
        let channels = self.channels(file, &key, spec.channels.as_ref());
        let when = match &spec.when {
            Some(w) => self.condition(file, &format!("{key}.when"), w),
            None => Condition::All(Vec::new()),
        };
        let steps: Vec<Step> = spec
            .transform
            .iter()
            .enumerate()
            .filter_map(|(i, s)| self.step(file, &format!("{key}.transform[{i}]"), s))
            .collect();
        let (services, destinations) = self.targets(file, &key, spec);
        // A value dropped for its type was reported; what its absence makes the checks say would be noise.
        let added = self.problems.split_off(before);
        let kept = added
            .into_iter()
            .filter(|p| !r.dropped.iter().any(|d| follows_from(&p.key, d)));
        self.problems.extend(kept);
        if self.problems.len() > before || !r.dropped.is_empty() {
            return None;
        }
        Some(Route {
            name: r.name.clone(),
            description: spec.description.clone(),
            file: file.path.clone(),
            line: r.line,
            channels,
            when,
            steps,
            services,
            destinations,
            enabled: spec.enabled.unwrap_or(true),
        })
    }

    fn channels(&mut self, file: &SourceFile, key: &str, list: Option<&Strings>) -> Option<Vec<String>> {
        let key = format!("{key}.channels");
        let Some(Strings(list)) = list.filter(|l| !l.0.is_empty()) else {
            self.bad(
                file,
                &key,
                "required: the channels the route takes from, e.g. [\"adt\"] (\"*\" for all)",
            );
            return None;
        };
        if list.iter().any(|c| c == "*") {
            return None;
        }
        if let Some(known) = &self.known.channels {
            for (i, c) in list.iter().enumerate() {
                if !known.contains(c) {
                    let names = known.iter().cloned().collect::<Vec<_>>().join(", ");
                    self.bad(
                        file,
                        &format!("{key}[{i}]"),
                        format!("unknown channel {c:?}: the config defines [{names}]"),
                    );
                }
            }
        }
        Some(list.clone())
    }

    fn targets(&mut self, file: &SourceFile, key: &str, spec: &super::spec::RouteSpec) -> (Vec<Service>, Vec<String>) {
        let key = format!("{key}.to");
        let Some(to) = &spec.to else {
            self.bad(file, &key, "required: to = { services = [...], destinations = [...] }");
            return (Vec::new(), Vec::new());
        };
        let mut services = Vec::new();
        for (i, s) in to.services.iter().flat_map(|s| s.0.iter()).enumerate() {
            match Service::from_name(s) {
                Some(service) => services.push(service),
                None => {
                    let names: Vec<&str> = Service::ALL.iter().map(|s| s.name()).collect();
                    self.bad(
                        file,
                        &format!("{key}.services[{i}]"),
                        format!("unknown service {s:?}: one of {}", names.join(", ")),
                    );
                }
            }
        }
        let destinations: Vec<String> = to.destinations.iter().flat_map(|d| d.0.iter().cloned()).collect();
        if let Some(known) = &self.known.destinations {
            for (i, d) in destinations.iter().enumerate() {
                if !known.contains(d) {
                    let hint = if known.is_empty() {
                        "the config defines none".to_string()
                    } else {
                        format!(
                            "the config defines [{}]",
                            known.iter().cloned().collect::<Vec<_>>().join(", ")
                        )
                    };
                    self.bad(
                        file,
                        &format!("{key}.destinations[{i}]"),
                        format!("unknown destination {d:?} under [destinations]: {hint}"),
                    );
                }
            }
        }
        if to.services.as_ref().is_none_or(|s| s.0.is_empty()) && destinations.is_empty() {
            self.bad(
                file,
                &key,
                "names no service and no destination: the route would send nowhere",
            );
        }
        (services, destinations)
    }

    fn path(&mut self, file: &SourceFile, key: &str, text: &str) -> Option<Target> {
        match Target::parse(text) {
            Ok(t) => Some(t),
            Err(e) => {
                self.bad(file, key, format!("not a field path: {e}"));
                None
            }
        }
    }

    fn condition(&mut self, file: &SourceFile, key: &str, w: &WhenSpec) -> Condition {
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

    fn step(&mut self, file: &SourceFile, key: &str, s: &StepSpec) -> Option<Step> {
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

    fn table(&mut self, file: &SourceFile, key: &str, name: &str) -> Option<Arc<CodeTable>> {
        let path = self.base_dir.join(name);
        if let Some(t) = self.tables.get(&path) {
            return t.clone();
        }
        if !path.is_file() {
            self.bad(
                file,
                key,
                format!("no table file {name} (looked for {})", path.display()),
            );
            return None;
        }
        let loaded = CodeTable::load(&path, &mut self.problems).map(Arc::new);
        self.tables.insert(path, loaded.clone());
        loaded
    }
}

/// True when a problem at `key` is a consequence of dropping the value at `dropped`:
/// at or under it, or about the table that held it (its missing test or verb).
fn follows_from(key: &str, dropped: &str) -> bool {
    let parent = dropped
        .rfind(['.', '['])
        .and_then(|i| dropped.get(..i))
        .unwrap_or_default();
    key.starts_with(dropped) || key == parent || key == format!("{parent}.field")
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
