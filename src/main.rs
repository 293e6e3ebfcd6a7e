//! The `medbus` binary: command line and wiring only. The work is done by the
//! workspace crates (`bus` for backbone, store and config).
//!
//! - `cli`: the commands and their flags.
//! - `serve`: starts backbone, store and the HTTP server; shuts down on signal.
//! - `http`: /healthz, /readyz and /metrics.
//! - `routing`: the HL7 router and the route reload watcher.
//! - `services`: the domain services (registration, orders, results, billing, notifications).
//! - `subscriptions`: the webhook subscriptions' delivery loops.
//! - `sse`: `/api/v1/events`, events as Server-Sent Events.
//! - `telemetry`: tracing and the Prometheus recorder.
//! - `check`: `medbus check`.
//! - `bench`: `medbus bench backbone`.

mod bench;
mod check;
mod cli;
mod dicom_channels;
mod dicom_destinations;
mod fhir_destinations;
mod http;
mod routing;
mod serve;
mod services;
mod sse;
mod subscriptions;
mod telemetry;

use std::process::ExitCode;

/// mimalloc instead of glibc malloc: a FHIR request allocates thousands of
/// small JSON values across the runtime's threads, and glibc's allocator took
/// about a quarter of medbus's CPU in the FHIR benchmark (docs/perf.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("medbus: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(cli::run(cli))
}
