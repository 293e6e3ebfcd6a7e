//! Checks a read route and compiles it: paths parsed and regexes built once,
//! tables loaded once, names checked against the configuration. Every problem
//! is collected with its key, so `medbus check` lists them all.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use medbus_bus::config::Problem;

use super::code_table::CodeTable;
use super::condition::Condition;
use super::read_file::{ReadRoute, SourceFile};
use super::route::{Route, Service};
use super::spec::Strings;
use super::target::Target;
use super::transform::Step;

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

    /// The table files the routes named (loaded or not), for watching them.
    pub fn table_paths(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self.tables.keys().cloned().collect();
        out.sort();
        out
    }

    /// Number of distinct tables that loaded.
    pub fn table_count(&self) -> usize {
        self.tables.values().filter(|t| t.is_some()).count()
    }

    pub(super) fn bad(&mut self, file: &SourceFile, key: &str, message: impl Into<String>) {
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

    pub(super) fn path(&mut self, file: &SourceFile, key: &str, text: &str) -> Option<Target> {
        match Target::parse(text) {
            Ok(t) => Some(t),
            Err(e) => {
                self.bad(file, key, format!("not a field path: {e}"));
                None
            }
        }
    }

    pub(super) fn table(&mut self, file: &SourceFile, key: &str, name: &str) -> Option<Arc<CodeTable>> {
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
