//! Starts the domain services: each an actix actor under a supervisor on the
//! actor System, fed by its durable consumer. The tables the results and
//! billing services read are loaded first: a bad table stops start-up with
//! its file and line, as a bad route file does.

use std::path::Path;

use actix::Supervised;
use medbus_actors::faults::FaultInjector;
use medbus_actors::feed::{DomainActor, FeedSpec};
use medbus_actors::system::ActorSystem;
use medbus_bus::backbone::SharedBackbone;
use medbus_bus::config::Config;
use medbus_bus::store::SharedStore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the services share.
pub struct ServiceDeps<'a> {
    /// The actor System.
    pub actors: &'a ActorSystem,
    /// Where feed and background tasks run.
    pub tasks: &'a TaskTracker,
    /// The configuration.
    pub config: &'a Config,
    /// The backbone.
    pub backbone: SharedBackbone,
    /// The store.
    pub store: SharedStore,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
}

/// Loads the service tables; every problem, one per line.
pub struct Tables {
    critical: medbus_actors::results::critical::CriticalLimits,
    charge_master: medbus_actors::billing::charge_master::ChargeMaster,
}

/// Reads the critical-value limits and the charge master named in `[services]`.
pub fn load_tables(config: &Config, config_dir: &Path) -> Result<Tables, String> {
    let s = &config.services;
    let mut problems = Vec::new();
    let critical = if s.results.critical_values.as_os_str().is_empty() {
        Default::default()
    } else {
        medbus_actors::results::critical::CriticalLimits::load(&config_dir.join(&s.results.critical_values))
            .unwrap_or_else(|e| {
                problems.push(e.to_string());
                Default::default()
            })
    };
    let charge_master = if s.billing.charge_master.as_os_str().is_empty() {
        Default::default()
    } else {
        medbus_actors::billing::charge_master::ChargeMaster::load(&config_dir.join(&s.billing.charge_master))
            .unwrap_or_else(|e| {
                problems.push(e.to_string());
                Default::default()
            })
    };
    if problems.is_empty() {
        Ok(Tables {
            critical,
            charge_master,
        })
    } else {
        Err(problems.join("\n"))
    }
}

/// Starts every enabled service; an error names the one that did not start.
pub async fn start(deps: &ServiceDeps<'_>, tables: Tables) -> Result<(), String> {
    let (store, backbone) = (deps.store.clone(), deps.backbone.clone());
    let s = &deps.config.services;
    {
        let store = store.clone();
        feed(deps, medbus_actors::registration::feed_spec(), move || {
            medbus_actors::registration::RegistrationActor::new(store, FaultInjector::default())
        })
        .await?;
    }
    if s.orders.enabled {
        let store = store.clone();
        feed(deps, medbus_actors::orders::feed_spec(), move || {
            medbus_actors::orders::OrdersActor::new(store, FaultInjector::default())
        })
        .await?;
    }
    if s.results.enabled {
        let (store, backbone, limits) = (store.clone(), backbone.clone(), tables.critical);
        feed(deps, medbus_actors::results::feed_spec(), move || {
            medbus_actors::results::ResultsActor::new(store, backbone, limits, FaultInjector::default())
        })
        .await?;
    }
    if s.billing.enabled {
        let (store, backbone, master) = (store.clone(), backbone.clone(), tables.charge_master);
        feed(deps, medbus_actors::billing::feed_spec(), move || {
            medbus_actors::billing::BillingActor::new(store, backbone, master, FaultInjector::default())
        })
        .await?;
    }
    if s.imaging.enabled {
        let imaging = medbus_actors::imaging::Imaging::new(store.clone(), backbone.clone(), s.imaging.quiet_time);
        let for_actor = imaging.clone();
        feed(deps, medbus_actors::imaging::feed_spec(), move || {
            medbus_actors::imaging::ImagingActor::new(for_actor, FaultInjector::default())
        })
        .await?;
        deps.tasks
            .spawn(medbus_actors::imaging::run_sweeps(imaging, deps.shutdown.clone()));
    }
    let n = &deps.config.notifications;
    if n.enabled {
        let notifier = medbus_actors::notifications::Notifier::new(store.clone(), n.clone())
            .map_err(|e| format!("notifications: {e}"))?;
        let for_actor = notifier.clone();
        feed(deps, medbus_actors::notifications::feed_spec(), move || {
            medbus_actors::notifications::NotificationsActor::new(for_actor, FaultInjector::default())
        })
        .await?;
        let (cfg, stop) = (deps.config.backbone.clone(), deps.shutdown.clone());
        deps.tasks.spawn(async move {
            if let Err(e) = medbus_actors::notifications::run_background(notifier, backbone, cfg, stop).await {
                tracing::error!(error = %e, "notifications background work stopped with an error");
            }
        });
    }
    Ok(())
}

/// Starts `make()` under a supervisor and its feed `spec`.
async fn feed<A>(
    deps: &ServiceDeps<'_>,
    spec: FeedSpec,
    make: impl FnOnce() -> A + Send + 'static,
) -> Result<(), String>
where
    A: DomainActor + Supervised,
{
    let name = spec.name.clone();
    let addr = deps
        .actors
        .supervise(make)
        .await
        .map_err(|e| format!("{name} service: {e}"))?;
    let (bb, cfg, stop) = (
        deps.backbone.clone(),
        deps.config.backbone.clone(),
        deps.shutdown.clone(),
    );
    deps.tasks.spawn(async move {
        if let Err(e) = medbus_actors::feed::run(bb, &cfg, spec, addr, stop).await {
            tracing::error!(service = %name, error = %e, "feed stopped with an error");
        }
    });
    Ok(())
}
