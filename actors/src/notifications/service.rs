//! [`Notifier`]: what every source of notifications shares — the config, the
//! store, the HTTP client — and delivery with retries.
//!
//! Delivery runs as a task on the runtime the notifier was made on (the main
//! multi-threaded one), not on the actor thread, so a slow webhook never
//! holds up the feed. A record is delivered by at most one task in this
//! process at a time; the retry sweep picks up records a crash left pending.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use medbus_bus::config::notifications::NotificationsConfig;
use medbus_bus::store::{SharedStore, StoreError};
use uuid::Uuid;

use super::record::{NotificationRecord, Status};
use super::rules::{plan, Occurrence};
use super::throttle::Throttle;
use super::{ledger, smtp, webhook, Failure, NotifyError};

/// The notifications service's shared state. Cheap to share as `Arc<Notifier>`.
pub struct Notifier {
    store: SharedStore,
    cfg: NotificationsConfig,
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
    in_flight: Mutex<HashSet<Uuid>>,
    /// Held while deciding and recording, so throttling sees one event at a time.
    decide: tokio::sync::Mutex<()>,
}

impl Notifier {
    /// A notifier for `cfg` writing to `store`. Call it on the runtime that
    /// should run deliveries (inside `#[tokio::main]`, not on the actor system).
    pub fn new(store: SharedStore, cfg: NotificationsConfig) -> Result<Arc<Notifier>, NotifyError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| NotifyError::Setup(format!("not inside a tokio runtime: {e}")))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("medbus/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| NotifyError::Setup(format!("HTTP client: {e}")))?;
        Ok(Arc::new(Notifier {
            store,
            cfg,
            http,
            runtime,
            in_flight: Mutex::new(HashSet::new()),
            decide: tokio::sync::Mutex::new(()),
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &NotificationsConfig {
        &self.cfg
    }

    /// The store.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// The lock held while deciding and recording notifications.
    pub(crate) async fn decision_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.decide.lock().await
    }

    /// Records the notifications `occ` makes (by every matching rule, or by
    /// `only`) that are not recorded yet, and starts delivering those not
    /// suppressed. Returns how many were new. For sources outside the event
    /// feed (dead letters, destinations): idempotent by notification id.
    pub async fn record_and_send(self: &Arc<Self>, occ: &Occurrence, only: Option<&str>) -> Result<usize, StoreError> {
        let mut send = Vec::new();
        let mut new = 0;
        {
            let _guard = self.decide.lock().await;
            let mut throttle = Throttle::new();
            for mut rec in plan(&self.cfg, occ, only, Utc::now()) {
                if ledger::load(&*self.store, rec.id).await?.is_some() {
                    continue;
                }
                let token = throttle.decide(&*self.store, &self.cfg, &mut rec).await?;
                self.store.clinical().upsert_resource(&rec.to_write(token)).await?;
                new += 1;
                if rec.status == Status::Pending {
                    send.push(rec.id);
                }
            }
        }
        for id in send {
            self.spawn_delivery(id);
        }
        Ok(new)
    }

    /// Starts delivering notification `id` unless a task here already does.
    pub fn spawn_delivery(self: &Arc<Self>, id: Uuid) {
        {
            let mut set = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if !set.insert(id) {
                return;
            }
        }
        let me = self.clone();
        self.runtime.spawn(async move {
            if let Err(e) = me.deliver(id).await {
                // Left pending: the retry sweep takes it up again.
                tracing::warn!(notification = %id, error = %e, "notification delivery interrupted");
            }
            me.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        });
    }

    /// True while a task here delivers `id`.
    pub fn is_in_flight(&self, id: Uuid) -> bool {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).contains(&id)
    }

    /// Delivers a pending notification, retrying with backoff; records every
    /// attempt and the outcome.
    async fn deliver(&self, id: Uuid) -> Result<(), StoreError> {
        let store = &*self.store;
        loop {
            let Some(rec) = ledger::load(store, id).await? else {
                return Ok(());
            };
            // Sent, failed, or acknowledged (through a sibling) before it went out.
            if rec.status != Status::Pending {
                return Ok(());
            }
            let attempt = rec.attempts + 1;
            let (max_attempts, initial, longest) = match self.retry_policy(&rec) {
                Some(p) => p,
                None => {
                    let why = format!("no channel named {:?} (configuration changed)", rec.recipient.channel);
                    self.finish(
                        id,
                        attempt - 1,
                        Err(Failure {
                            message: why,
                            retryable: false,
                        }),
                    )
                    .await?;
                    return Ok(());
                }
            };
            if attempt > max_attempts {
                let why = rec.last_error.clone().unwrap_or_else(|| "no attempts left".into());
                self.finish(
                    id,
                    rec.attempts,
                    Err(Failure {
                        message: why,
                        retryable: false,
                    }),
                )
                .await?;
                return Ok(());
            }
            let result = self.attempt(&rec, attempt).await;
            let done = match &result {
                Ok(()) => true,
                Err(f) => !f.retryable || attempt >= max_attempts,
            };
            if done {
                self.finish(id, attempt, result).await?;
                return Ok(());
            }
            let why = result.err().map(|f| f.message).unwrap_or_default();
            tracing::info!(notification = %id, attempt, error = %why, "notification attempt failed; retrying");
            ledger::update(store, id, |r| {
                r.attempts = attempt;
                r.last_error = Some(why);
                true
            })
            .await?;
            // Doubling from the first backoff, up to the longest.
            let delay = initial
                .saturating_mul(1 << attempt.saturating_sub(1).min(16))
                .min(longest);
            tokio::time::sleep(delay).await;
        }
    }

    /// Attempts allowed, first and longest backoff, for `rec`'s channel.
    fn retry_policy(&self, rec: &NotificationRecord) -> Option<(u32, Duration, Duration)> {
        let name = &rec.recipient.channel;
        if let Some(w) = self.cfg.webhooks.get(name) {
            Some((w.max_attempts.max(1), w.initial_backoff, w.max_backoff))
        } else {
            let e = self.cfg.email.get(name)?;
            Some((e.max_attempts.max(1), e.initial_backoff, e.max_backoff))
        }
    }

    /// One attempt over the recipient's channel.
    async fn attempt(&self, rec: &NotificationRecord, attempt: u32) -> Result<(), Failure> {
        let base = self.cfg.ack_base_url.as_str();
        let name = &rec.recipient.channel;
        if let Some(w) = self.cfg.webhooks.get(name) {
            webhook::send(&self.http, w, rec, &webhook::body(rec, base, attempt)).await
        } else if let Some(e) = self.cfg.email.get(name) {
            let Some(to) = rec.recipient.address.as_deref() else {
                return Err(Failure {
                    message: "an e-mail recipient without an address".into(),
                    retryable: false,
                });
            };
            smtp::send(e, rec, to, base).await
        } else {
            Err(Failure {
                message: format!("no channel named {name:?}"),
                retryable: false,
            })
        }
    }

    /// Records the outcome of the last attempt.
    async fn finish(&self, id: Uuid, attempts: u32, result: Result<(), Failure>) -> Result<(), StoreError> {
        let escalates = |r: &NotificationRecord| {
            r.escalation_of.is_none() && self.cfg.rules.get(&r.rule).is_some_and(|x| x.escalate_after.is_some())
        };
        let now = Utc::now();
        let outcome = if result.is_ok() { "sent" } else { "failed" };
        let updated = ledger::update(&*self.store, id, |r| {
            r.attempts = attempts;
            match &result {
                Ok(()) => {
                    r.sent_at = Some(now);
                    // Acknowledged while it was being sent: it stays acknowledged.
                    if r.status == Status::Pending {
                        r.status = if escalates(r) {
                            Status::AwaitingAck
                        } else {
                            Status::Sent
                        };
                    }
                }
                Err(f) => {
                    r.last_error = Some(f.message.clone());
                    if r.status == Status::Pending {
                        r.status = Status::Failed;
                        r.status_reason = Some(format!("not delivered after {attempts} attempt(s): {}", f.message));
                    }
                }
            }
            true
        })
        .await?;
        if let Some(r) = updated {
            metrics::counter!("medbus_notifications_total", "rule" => r.rule.clone(), "outcome" => outcome)
                .increment(1);
            match &result {
                Ok(()) => {
                    tracing::info!(notification = %id, rule = %r.rule, channel = %r.recipient.channel, attempts, "notification sent")
                }
                Err(f) => {
                    tracing::warn!(notification = %id, rule = %r.rule, channel = %r.recipient.channel, attempts, error = %f.message, "notification failed")
                }
            }
        }
        Ok(())
    }
}
