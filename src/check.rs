//! `medbus check`: validates the layered configuration, the route files and
//! their code tables, and the services' tables together, without binding or connecting.

use std::process::ExitCode;

use medbus_bus::config::{Config, Problems};
use medbus_routes::config::{config_dir, Known};

use crate::cli::{config_file, ConfigArgs};

/// Exit 0 and a summary when valid; exit 2 with every problem when not.
pub fn run(args: &ConfigArgs) -> ExitCode {
    let env = medbus_bus::config::load::process_env();
    let file = config_file(args, &env);
    let dir = config_dir(file.as_deref());
    let (config, mut problems) = match medbus_bus::config::load(file.as_deref(), &env) {
        Ok(c) => (Some(c), Vec::new()),
        Err(Problems(p)) => (None, p),
    };
    let routes = match &config {
        Some(c) => medbus_routes::config::load(c, &dir),
        // The config did not load: still check the route files, without the channel and destination names.
        None => {
            let routes_dir = medbus_routes::config::routes_dir(&Config::default(), &dir);
            medbus_routes::config::load_dir(&routes_dir, &dir, &Known::default(), false)
        }
    };
    let routes = match routes {
        Ok(r) => Some(r),
        Err(Problems(p)) => {
            problems.extend(p);
            None
        }
    };
    // The services' tables (critical limits, charge master): their problems name file and line.
    let table_problems = config
        .as_ref()
        .and_then(|c| crate::services::load_tables(c, &dir).err());
    let (Some(c), Some(routes), true, None) = (config, routes, problems.is_empty(), &table_problems) else {
        if !problems.is_empty() {
            eprint!("{}", Problems(problems));
        }
        if let Some(t) = &table_problems {
            eprintln!("{t}");
        }
        return ExitCode::from(2);
    };
    let from = file
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "built-in defaults".into());
    println!(
        "ok: {from} is valid (backbone {}, store {}, http {})",
        medbus_bus::config::redact_url(&c.backbone.url),
        medbus_bus::config::redact_url(&c.store.url),
        c.http.addr
    );
    println!(
        "ok: {} channel(s), {} destination(s), {} route(s) in {} file(s) under {}, {} code table(s)",
        c.channels.len(),
        c.destinations.len(),
        routes.len(),
        routes.file_count(),
        medbus_routes::config::routes_dir(&c, &dir).display(),
        routes.table_count()
    );
    ExitCode::SUCCESS
}
