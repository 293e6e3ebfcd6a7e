//! `medbus serve`: starts the backbone, the store and the HTTP server, then
//! waits for SIGINT/SIGTERM. On a signal: stop accepting, let in-flight work
//! finish, close the backbone (flush) and the store, exit 0 — or exit 1 when
//! the shutdown deadline passes first. A second signal forces the exit.

use std::process::ExitCode;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::{load_config, ConfigArgs};
use crate::http::{router, AppState};

/// Runs until a shutdown signal.
pub async fn run(args: &ConfigArgs, log_json: bool) -> ExitCode {
    let (config, file) = match load_config(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(e) = crate::telemetry::init_logging(&config.log, log_json) {
        eprintln!("medbus: {e}");
        return ExitCode::from(2);
    }
    let metrics = match crate::telemetry::init_metrics() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // Routes are checked before anything starts: a broken route file stops start-up, as `medbus check` would.
    let config_dir = medbus_routes::config::config_dir(file.as_deref());
    let routes = match medbus_routes::config::load(&config, &config_dir) {
        Ok(r) => r,
        Err(problems) => {
            eprint!("{problems}");
            tracing::error!(
                problems = problems.0.len(),
                "the route files have problems; not starting"
            );
            return ExitCode::from(2);
        }
    };
    let tables = match crate::services::load_tables(&config, &config_dir) {
        Ok(t) => t,
        Err(problems) => {
            eprintln!("{problems}");
            tracing::error!("the service tables have problems; not starting");
            return ExitCode::from(2);
        }
    };
    let from = file
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "built-in defaults".into());
    tracing::info!(config = %from, version = env!("CARGO_PKG_VERSION"), "medbus starting");
    if let Err(e) = std::fs::create_dir_all(&config.data_dir) {
        tracing::error!(data_dir = %config.data_dir.display(), error = %e, "cannot create the data directory");
        return ExitCode::FAILURE;
    }
    let backbone = match medbus_bus::backbone::connect(&config.backbone, &config.data_dir).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "backbone failed to start");
            return ExitCode::FAILURE;
        }
    };
    let store = match medbus_bus::store::connect(&config.store, &config.data_dir).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "store failed to start");
            let _ = backbone.close().await;
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        backbone = backbone.kind(),
        store = store.kind(),
        "backbone and store ready"
    );

    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let listener = match tokio::net::TcpListener::bind(config.http.addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(addr = %config.http.addr, error = %e, "cannot bind the HTTP address");
            let _ = backbone.close().await;
            store.close().await;
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(addr = %config.http.addr, "http listening (/healthz, /readyz, /metrics)");
    for (name, channel) in config.channels.iter().filter(|(_, c)| c.enabled) {
        let ctx = medbus_adapters::hl7::listener::ListenerContext {
            channel: name.clone(),
            config: channel.clone(),
            backbone: backbone.clone(),
            shutdown: shutdown.clone(),
        };
        match medbus_adapters::hl7::listener::Hl7Listener::bind(ctx).await {
            Ok(listener) => {
                tasks.spawn(listener.run());
            }
            Err(e) => {
                tracing::error!(error = %e, "channel failed to start");
                shutdown.cancel();
                tasks.close();
                tasks.wait().await;
                let _ = backbone.close().await;
                store.close().await;
                return ExitCode::FAILURE;
            }
        }
    }
    if let Err(e) = crate::dicom_channels::start(&tasks, &config, &backbone, &shutdown).await {
        tracing::error!(error = %e, "dicom channel failed to start");
        shutdown.cancel();
        tasks.close();
        tasks.wait().await;
        let _ = backbone.close().await;
        store.close().await;
        return ExitCode::FAILURE;
    }
    let app = router(AppState {
        backbone: backbone.clone(),
        store: store.clone(),
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
    });
    let app = if config.fhir.enabled {
        let server =
            medbus_adapters::fhir::server::FhirServer::new(backbone.clone(), store.clone(), config.fhir.clone());
        match server {
            Ok(server) => {
                tracing::info!(channel = %config.fhir.channel, "fhir server at /fhir");
                app.merge(medbus_adapters::fhir::server::router(server))
            }
            Err(e) => {
                tracing::error!(error = %e, "fhir server failed to start");
                return ExitCode::FAILURE;
            }
        }
    } else {
        app
    };
    let http_stop = shutdown.clone();
    tasks.spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move { http_stop.cancelled().await });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "http server failed");
        }
    });
    // Domain services: actix actors on their own System thread, fed by durable consumers.
    let actors = match medbus_actors::system::ActorSystem::start() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "domain services failed to start");
            return ExitCode::FAILURE;
        }
    };
    let deps = crate::services::ServiceDeps {
        actors: &actors,
        tasks: &tasks,
        config: &config,
        backbone: backbone.clone(),
        store: store.clone(),
        shutdown: shutdown.clone(),
    };
    if let Err(e) = crate::services::start(&deps, tables).await {
        tracing::error!(error = %e, "a domain service failed to start");
        return ExitCode::FAILURE;
    }
    crate::routing::start(
        &tasks,
        &config,
        config_dir,
        routes,
        backbone.clone(),
        store.clone(),
        &shutdown,
    );
    for (name, dest) in config.destinations.iter().filter(|(_, d)| d.enabled) {
        let ctx = medbus_adapters::hl7::destination::DestinationContext {
            name: name.clone(),
            config: dest.clone(),
            backbone: backbone.clone(),
            backbone_config: config.backbone.clone(),
            shutdown: shutdown.clone(),
        };
        tasks.spawn(async move {
            let name = ctx.name.clone();
            if let Err(e) = medbus_adapters::hl7::destination::run(ctx).await {
                tracing::error!(destination = %name, error = %e, "destination stopped with an error");
            }
        });
    }
    crate::subscriptions::start(&tasks, &config, &backbone, &shutdown);
    crate::fhir_destinations::start(&tasks, &config, &backbone, &shutdown);
    crate::dicom_destinations::start(&tasks, &config, &backbone, &shutdown);
    let upkeep_stop = shutdown.clone();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = upkeep_stop.cancelled() => break,
                _ = tick.tick() => metrics.run_upkeep(),
            }
        }
    });
    tasks.close();

    let signal = wait_for_signal().await;
    tracing::info!(signal, deadline = ?config.shutdown.deadline, "shutting down: no new work, finishing in-flight");
    shutdown.cancel();
    let drain = async {
        tasks.wait().await;
        // Feeds have stopped: no more work reaches the actors.
        let _ = tokio::task::spawn_blocking(move || actors.stop()).await;
        if let Err(e) = backbone.close().await {
            tracing::warn!(error = %e, "backbone close");
        }
        store.close().await;
    };
    tokio::select! {
        _ = drain => {
            tracing::info!("medbus stopped");
            ExitCode::SUCCESS
        }
        _ = tokio::time::sleep(config.shutdown.deadline) => {
            tracing::error!("shutdown deadline passed with work in flight; exiting");
            ExitCode::FAILURE
        }
        s = wait_for_signal() => {
            tracing::error!(signal = s, "second signal: exiting now");
            ExitCode::FAILURE
        }
    }
}

/// Waits for SIGINT or SIGTERM and names it.
async fn wait_for_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
