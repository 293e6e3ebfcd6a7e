//! Routes from configuration: which messages of which channels a route takes,
//! how it changes them, and where they go. Syntax reference: docs/routes.md.
//!
//! Route files are TOML (`[routes.<name>]` tables) in the directory named by
//! `routes_dir` in the config file; code tables are CSV files whose paths are
//! relative to the config file's directory. [`load`] reads, checks and compiles
//! them all and reports every problem with its file and line; the result runs
//! per message with [`Routes::select`] and [`Route::apply`].
//!
//! Module map:
//! - `spec`: what serde reads; `read_file`: one file into specs with problems;
//!   `key_lines`: the line of every key;
//! - `compile` (with `compile_when`, `compile_step`): checks and compiles a
//!   spec ([`Known`] names from the config);
//! - `condition`, `glob`, `target`: filters and field paths;
//! - `transform`, `code_table`: steps and CSV tables;
//! - `route`: [`Route`], [`Routes`]; `dry_run`: what `medbus route test` shows.

mod code_table;
mod compile;
mod compile_step;
mod compile_when;
mod condition;
pub mod dry_run;
mod glob;
mod key_lines;
mod read_file;
mod route;
mod spec;
mod target;
mod transform;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use medbus_bus::config::{Config, Origin, Problem, Problems};

pub use code_table::{CodeSystem, CodeTable};
pub use compile::Known;
pub use route::{Route, Routes, Service};
pub use transform::{Miss, Step, TransformError};

/// The routes directory of `config`, a relative `routes_dir` taken from `config_dir`.
pub fn routes_dir(config: &Config, config_dir: &Path) -> PathBuf {
    config_dir.join(&config.routes_dir)
}

/// The directory of a config file; empty (the working directory, without a `./` in
/// the paths shown) for a bare file name or no file.
pub fn config_dir(config_file: Option<&Path>) -> PathBuf {
    config_file
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Loads the routes of `config` (whose file is in `config_dir`), checking names against its channels and destinations.
pub fn load(config: &Config, config_dir: &Path) -> Result<Routes, Problems> {
    let known = Known {
        channels: Some(config.channels.keys().cloned().collect()),
        destinations: Some(config.destinations.keys().cloned().collect()),
    };
    let explicit = config.routes_dir != Config::default().routes_dir;
    load_dir(&routes_dir(config, config_dir), config_dir, &known, explicit)
}

/// Loads every `*.toml` under `dir` (sub-directories too, in path order); tables
/// are relative to `base_dir`. A missing `dir` is a problem only when `required`.
pub fn load_dir(dir: &Path, base_dir: &Path, known: &Known, required: bool) -> Result<Routes, Problems> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    if dir.is_dir() {
        collect_files(dir, &mut files, &mut problems);
    } else if required {
        problems.push(Problem {
            origin: Origin::File {
                path: dir.to_path_buf(),
                line: None,
            },
            key: "routes_dir".into(),
            message: "no such directory".into(),
        });
    }
    files.sort();
    let mut compiler = compile::Compiler::new(known, base_dir);
    let mut routes = Vec::new();
    let mut seen: HashMap<String, (PathBuf, usize)> = HashMap::new();
    for file in &files {
        for read in read_file::read_route_file(file, &mut problems) {
            let key = format!("routes.{}", read.name);
            if let Some((other, line)) = seen.get(&read.name) {
                problems.push(read.file.problem(
                    &key,
                    format!("duplicate route name: also defined at {}:{line}", other.display()),
                ));
                continue;
            }
            seen.insert(read.name.clone(), (file.clone(), read.line));
            if let Some(route) = compiler.route(&read) {
                routes.push(route);
            }
        }
    }
    let tables = compiler.table_count();
    let mut sources = files.clone();
    sources.extend(compiler.table_paths());
    problems.append(&mut compiler.problems);
    if !problems.is_empty() {
        sort_problems(&mut problems);
        return Err(Problems(problems));
    }
    Ok(Routes {
        routes,
        tables,
        files: files.len(),
        sources,
    })
}

/// By file, then line: the order an analyst fixes them in.
fn sort_problems(problems: &mut [Problem]) {
    problems.sort_by(|a, b| {
        let at = |p: &Problem| match &p.origin {
            Origin::File { path, line } => (path.clone(), line.unwrap_or(0)),
            _ => (PathBuf::new(), 0),
        };
        at(a).cmp(&at(b))
    });
}

/// Every `*.toml` under `dir` (sub-directories too; names starting with `.` skipped).
pub(crate) fn collect_files(dir: &Path, out: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(Problem {
                origin: Origin::File {
                    path: dir.to_path_buf(),
                    line: None,
                },
                key: String::new(),
                message: format!("cannot read the routes directory: {e}"),
            });
            return;
        }
    };
    let mut seen = BTreeSet::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, out, problems);
        } else if path.extension().is_some_and(|e| e == "toml") && seen.insert(path.clone()) {
            out.push(path);
        }
    }
}
