//! Starts one delivery loop per enabled webhook subscription (`[subscriptions.*]`).

use medbus_bus::backbone::SharedBackbone;
use medbus_bus::config::Config;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Spawns the delivery loop of each enabled subscription on `tasks`.
pub fn start(tasks: &TaskTracker, config: &Config, backbone: &SharedBackbone, shutdown: &CancellationToken) {
    for (name, sub) in config.subscriptions.iter().filter(|(_, s)| s.enabled) {
        let ctx = medbus_adapters::webhook::SubscriptionContext {
            name: name.clone(),
            config: sub.clone(),
            backbone: backbone.clone(),
            backbone_config: config.backbone.clone(),
            shutdown: shutdown.clone(),
        };
        tasks.spawn(async move {
            let name = ctx.name.clone();
            if let Err(e) = medbus_adapters::webhook::run(ctx).await {
                tracing::error!(subscription = %name, error = %e, "subscription stopped with an error");
            }
        });
    }
}
