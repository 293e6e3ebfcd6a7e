//! Commands: `serve` (the default), `check`, `route test`, `bench backbone`, `config keys`, `version`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

// Declared here rather than in main.rs, which this change leaves alone; the file is src/route_test.rs.
#[path = "route_test.rs"]
mod route_test;

/// medbus: a healthcare integration bus.
#[derive(Debug, Parser)]
#[command(name = "medbus", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: ConfigArgs,
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Config file (default: $MEDBUS_CONFIG, else config/medbus.toml when present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run medbus (the default when no command is given).
    Serve {
        /// Log as JSON lines (overrides log.format).
        #[arg(long)]
        log_json: bool,
    },
    /// Check the configuration, route files and code tables; exit 0 when valid, 2 listing every problem when not.
    Check,
    /// Route files.
    #[command(subcommand)]
    Route(RouteCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Configuration reference.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Publish-with-durable-ack and consume-and-ack throughput of a backbone.
    Backbone(crate::bench::BenchArgs),
}

#[derive(Debug, Subcommand)]
enum RouteCommand {
    /// Show, sending nothing, which routes take each message in FILE, the message after their
    /// transforms and the canonical events; exit 1 when a message cannot be parsed.
    Test(route_test::RouteTestArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Every key with its environment variable and default.
    Keys,
}

/// Runs the chosen command.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve { log_json: false }) {
        Command::Serve { log_json } => crate::serve::run(&cli.config, log_json).await,
        Command::Check => crate::check::run(&cli.config),
        Command::Route(RouteCommand::Test(args)) => route_test::run(&cli.config, &args),
        Command::Bench(BenchCommand::Backbone(args)) => crate::bench::run(args).await,
        Command::Config(ConfigCommand::Keys) => {
            for (key, default) in medbus_bus::config::known_keys() {
                println!(
                    "{key:32} {:40} default {default}",
                    medbus_bus::config::env_var_for(&key)
                );
            }
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("medbus {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}

/// The config file: `--config`, else `$MEDBUS_CONFIG`, else `config/medbus.toml` when present.
pub fn config_file(args: &ConfigArgs, env: &std::collections::BTreeMap<String, String>) -> Option<PathBuf> {
    args.config
        .clone()
        .or_else(|| medbus_bus::config::load::default_file(env))
}

/// Loads the layered configuration, printing every problem on failure.
pub fn load_config(args: &ConfigArgs) -> Result<(medbus_bus::config::Config, Option<PathBuf>), ExitCode> {
    let env = medbus_bus::config::load::process_env();
    let file = config_file(args, &env);
    match medbus_bus::config::load(file.as_deref(), &env) {
        Ok(c) => Ok((c, file)),
        Err(problems) => {
            eprint!("{problems}");
            Err(ExitCode::from(2))
        }
    }
}
