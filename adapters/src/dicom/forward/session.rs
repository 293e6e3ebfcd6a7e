//! The one association a destination keeps open to its PACS, reused from
//! instance to instance: negotiating an association costs a round trip or
//! two and, on many PACS, a worker process, so a study of 2,000 images should
//! not pay it 2,000 times.
//!
//! An association is opened for the first instance with its own presentation
//! context (its SOP class in the transfer syntax it was stored in: data sets
//! go out as received, never transcoded). An instance whose context this
//! association did not propose releases it and opens another that proposes
//! every context accepted so far plus the new one, so a mixed stream settles
//! on one association. A context proposed and refused on the current
//! association is a refused SOP class. After an error the association is
//! aborted (its state is unknown) and the next attempt opens a new one; one
//! idle for `association_idle` is released.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use medbus_bus::config::dicom_destinations::DicomDestinationConfig;

use crate::dicom::scu::{Association, Context, Response, ScuConfig, ScuError};

/// Most presentation contexts proposed at once (PS3.8 allows 128; odd ids 1–255).
const MAX_CONTEXTS: usize = 100;

/// What one instance is sent as.
pub(super) struct Outbound<'a> {
    /// SOP Class UID.
    pub sop_class: &'a str,
    /// SOP Instance UID.
    pub sop_instance: &'a str,
    /// The data set's transfer syntax.
    pub transfer_syntax: &'a str,
    /// The data set bytes.
    pub dataset: &'a [u8],
}

/// The kept-open association and what was negotiated on it.
pub(super) struct Session {
    name: String,
    host: String,
    port: u16,
    calling_ae: String,
    called_ae: String,
    max_pdu_length: u32,
    timeout: Duration,
    idle: Duration,
    open: Option<Open>,
    /// Contexts accepted on earlier associations, proposed again on the next.
    known: Vec<Context>,
}

struct Open {
    association: Association,
    /// What was proposed when it was opened (refused = proposed but not accepted).
    proposed: Vec<Context>,
    last_used: Instant,
}

impl Session {
    /// No association yet; one is opened by the first [`Session::store`].
    pub(super) fn new(name: &str, cfg: &DicomDestinationConfig) -> Self {
        Session {
            name: name.to_string(),
            host: cfg.host.trim().to_string(),
            port: cfg.port,
            calling_ae: cfg.calling_ae.clone(),
            called_ae: cfg.called_ae.clone(),
            max_pdu_length: cfg.max_pdu_length,
            timeout: cfg.timeout,
            idle: cfg.association_idle,
            open: None,
            known: Vec::new(),
        }
    }

    /// Sends one instance, opening or re-negotiating the association as needed.
    /// A failure status is a response; an error leaves no association behind.
    ///
    /// A kept association the PACS has meanwhile closed from its side (many close
    /// idle ones sooner than `association_idle`) fails on first use: that is not the
    /// PACS being down, so the instance is sent once more at once, on a new
    /// association, before the failure counts. (Whether the PACS got it the first
    /// time is unknown; it keeps one copy per SOP Instance UID.)
    pub(super) async fn store(&mut self, o: &Outbound<'_>) -> Result<Response, ScuError> {
        let reused = self
            .open
            .as_ref()
            .is_some_and(|open| open.association.accepts(o.sop_class, o.transfer_syntax));
        let result = self.store_once(o).await;
        match result {
            Err(ScuError::Transport(_) | ScuError::Protocol(_)) if reused => {
                tracing::debug!(destination = %self.name, "kept association gone: sending on a new one");
                self.store_once(o).await
            }
            other => other,
        }
    }

    async fn store_once(&mut self, o: &Outbound<'_>) -> Result<Response, ScuError> {
        let wanted = Context::new(o.sop_class, o.transfer_syntax);
        if let Some(open) = &self.open {
            if !open.association.accepts(o.sop_class, o.transfer_syntax) {
                if open.proposed.contains(&wanted) {
                    return Err(ScuError::ContextRejected {
                        addr: open.association.addr(),
                        abstract_syntax: wanted.abstract_syntax,
                        transfer_syntax: wanted.transfer_syntax,
                    });
                }
                tracing::debug!(destination = %self.name, "new presentation context: re-negotiating");
                self.release().await;
            }
        }
        if self.open.is_none() {
            self.open = Some(self.establish(&wanted).await?);
        }
        let Some(open) = self.open.as_mut() else {
            return Err(ScuError::Protocol("no association".into()));
        };
        let result = open
            .association
            .store(o.sop_class, o.transfer_syntax, o.sop_instance, o.dataset)
            .await;
        open.last_used = Instant::now();
        match &result {
            // Refused before anything was sent (a context the PACS did not accept): the
            // association is as good as before.
            Err(ScuError::ContextRejected { .. }) | Ok(_) => {}
            Err(_) => self.abort().await,
        }
        result
    }

    async fn establish(&mut self, wanted: &Context) -> Result<Open, ScuError> {
        let addr = self.resolve().await?;
        let mut proposed: Vec<Context> = self.known.iter().filter(|c| *c != wanted).cloned().collect();
        // The newest contexts matter most: keep room for the one needed now.
        let excess = (proposed.len() + 1).saturating_sub(MAX_CONTEXTS);
        proposed.drain(..excess);
        proposed.push(wanted.clone());
        let cfg = ScuConfig {
            addr,
            calling_ae: self.calling_ae.clone(),
            called_ae: self.called_ae.clone(),
            connect_timeout: self.timeout,
            response_timeout: self.timeout,
            // One setting for both: a PDU not taken for `timeout` is as dead as an answer
            // not given in that time; a whole instance is not limited.
            write_timeout: self.timeout,
            max_pdu_length: self.max_pdu_length,
        };
        let association = match Association::establish(&cfg, &proposed).await {
            Ok(a) => a,
            Err(e) => {
                if matches!(e, ScuError::ContextRejected { .. }) {
                    // Nothing proposed was accepted: none of it is worth proposing again.
                    self.known.clear();
                }
                return Err(e);
            }
        };
        metrics::counter!("medbus_dicom_forward_associations_total", "destination" => self.name.clone()).increment(1);
        self.known = proposed
            .iter()
            .filter(|c| association.accepts(&c.abstract_syntax, &c.transfer_syntax))
            .cloned()
            .collect();
        tracing::debug!(destination = %self.name, %addr, contexts = self.known.len(), "association open");
        Ok(Open {
            association,
            proposed,
            last_used: Instant::now(),
        })
    }

    /// The PACS's address, looked up for each association (a PACS behind a DNS
    /// name may move).
    async fn resolve(&self) -> Result<SocketAddr, ScuError> {
        let unresolved = |reason: String| ScuError::Associate {
            addr: SocketAddr::from(([0, 0, 0, 0], self.port)),
            reason,
        };
        let lookup = tokio::time::timeout(self.timeout, tokio::net::lookup_host((self.host.as_str(), self.port)));
        match lookup.await {
            Err(_) => Err(unresolved(format!("resolving {} timed out", self.host))),
            Ok(Err(e)) => Err(unresolved(format!("cannot resolve {}: {e}", self.host))),
            Ok(Ok(mut addrs)) => addrs
                .next()
                .ok_or_else(|| unresolved(format!("{} has no address", self.host))),
        }
    }

    /// Releases the association when it has been idle for `association_idle`.
    pub(super) async fn close_if_idle(&mut self) {
        if self.open.as_ref().is_some_and(|o| o.last_used.elapsed() >= self.idle) {
            tracing::debug!(destination = %self.name, "association idle: releasing");
            self.release().await;
        }
    }

    /// A graceful A-RELEASE (an abort when the PACS does not answer it).
    pub(super) async fn release(&mut self) {
        if let Some(open) = self.open.take() {
            if let Err(e) = open.association.release().await {
                tracing::debug!(destination = %self.name, error = %e, "release not answered");
            }
        }
    }

    /// An A-ABORT: the association's state is unknown (an error, or shutdown mid-message).
    pub(super) async fn abort(&mut self) {
        if let Some(open) = self.open.take() {
            open.association.abort().await;
        }
    }
}
