//! `medbus check`: validates the layered configuration without binding or connecting.

use std::process::ExitCode;

use crate::cli::{load_config, ConfigArgs};

/// Exit 0 and a summary when valid; exit 2 with every problem when not.
pub fn run(args: &ConfigArgs) -> ExitCode {
    match load_config(args) {
        Ok((c, file)) => {
            let from = file
                .map(|f| f.display().to_string())
                .unwrap_or_else(|| "built-in defaults".into());
            println!(
                "ok: {from} is valid (backbone {}, store {}, http {})",
                medbus_bus::config::redact_url(&c.backbone.url),
                medbus_bus::config::redact_url(&c.store.url),
                c.http.addr
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
