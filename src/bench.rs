//! `medbus bench backbone`: prints publish and consume throughput of the
//! configured (or given) backbone. A benchmark, not a test: it asserts nothing.

use std::process::ExitCode;

use clap::Args;
use medbus_bus::bench::{run as run_bench, BenchPlan};

/// Flags of `medbus bench backbone`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Backbone: `embedded` (a fresh temporary log) or nats://host:port.
    #[arg(long, default_value = "embedded")]
    url: String,
    /// Messages per phase.
    #[arg(long, default_value_t = 20_000)]
    count: usize,
    /// Payload bytes.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Publishes in flight in the concurrent phase.
    #[arg(long, default_value_t = 64)]
    inflight: usize,
}

/// Runs the benchmark and prints a table.
pub async fn run(args: BenchArgs) -> ExitCode {
    let cfg = medbus_bus::config::BackboneConfig {
        url: args.url.clone(),
        ..Default::default()
    };
    let run_id = uuid_like();
    let dir = std::env::temp_dir().join(format!("medbus-bench-{run_id}"));
    let backbone = match medbus_bus::backbone::connect(&cfg, &dir).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("medbus bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let plan = BenchPlan {
        count: args.count,
        size: args.size,
        inflight: args.inflight,
    };
    println!(
        "backbone {} ({}), {} messages of {} B per phase",
        backbone.kind(),
        medbus_bus::config::redact_url(&args.url),
        plan.count,
        plan.size
    );
    let result = run_bench(backbone.clone(), &cfg, &plan, &run_id).await;
    let _ = backbone.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(figures) => {
            for f in &figures {
                println!(
                    "  {:40} {:>10.0} msg/s  ({} in {:.2?})",
                    f.label,
                    f.rate(),
                    f.count,
                    f.elapsed
                );
            }
            let ours = figures
                .iter()
                .find(|f| f.label.starts_with("publish,") && !f.label.contains(" 1 in"));
            let bare = figures
                .iter()
                .find(|f| f.label.starts_with("bare") && !f.label.contains(" 1 in"));
            if let (Some(o), Some(b)) = (ours, bare) {
                println!(
                    "  medbus layer vs bare async-nats ({} in flight): {:.0}%",
                    plan.inflight,
                    100.0 * o.rate() / b.rate()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("medbus bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A short unique run id from the clock and pid (subject-token safe).
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", nanos & 0xffff_ffff_ffff, std::process::id())
}
