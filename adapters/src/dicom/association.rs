//! One association: negotiation (dicom-ul), then P-DATA in, DIMSE answers out,
//! until release, abort, a timeout or shutdown.
//!
//! Fragments are put together by `reassembly`; each complete C-STORE is
//! checked (presentation context, SOP class and instance UIDs against the
//! data set), its metadata read off the async workers, and the sink called
//! before the response is sent. A data set over the size cap is answered "out
//! of resources". Anything that breaks the protocol (a fragment on an unknown
//! presentation context, data without a command, an unreadable command set,
//! an unexpected PDU) aborts the association; it never reaches the rest of
//! the SCP. A C-STORE in hand is answered before shutdown aborts.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use dicom_ul::association::server::{DefaultNegotiation, ServerAssociationOptions};
use dicom_ul::association::{Association as _, Error as UlError};
use dicom_ul::pdu::{PDataValue, PDataValueType, PresentationContextResultReason};
use dicom_ul::Pdu;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::access::AeAccess;
use super::budget::MemoryBudget;
use super::dataset;
use super::dimse::{self, command_field, status, Command};
use super::instance::{InstanceSink, ReceivedInstance};
use super::options::ScpOptions;
use super::reassembly::{accepted_context, Buffered, Dropped, Fragments, Ready};
use super::sop_classes;

/// Longest a received instance may take to be written and kept before it is
/// answered with a failure status (0xA700).
const STORE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// What every association of one SCP shares.
pub(super) struct ScpContext {
    pub options: ScpOptions,
    pub sink: Arc<dyn InstanceSink>,
    pub shutdown: CancellationToken,
    /// The memory every association's data sets share.
    pub budget: Arc<MemoryBudget>,
    ae_title: Arc<str>,
    allowed_calling_aes: Arc<[String]>,
}

impl ScpContext {
    pub fn new(options: ScpOptions, sink: Arc<dyn InstanceSink>, shutdown: CancellationToken) -> Self {
        ScpContext {
            ae_title: options.ae_title.trim().into(),
            allowed_calling_aes: options.allowed_calling_aes.clone().into(),
            budget: MemoryBudget::new(options.max_buffered_bytes),
            options,
            sink,
            shutdown,
        }
    }

    /// The metric label naming this SCP.
    pub fn ae(&self) -> String {
        self.ae_title.to_string()
    }

    /// Negotiation settings for a connection from `peer` (its AE checks log the peer).
    fn negotiation(&self, peer: SocketAddr) -> ServerAssociationOptions<'static, AeAccess, DefaultNegotiation> {
        let o = &self.options;
        let mut server = ServerAssociationOptions::new()
            .ae_access_control(AeAccess {
                ae_title: self.ae_title.clone(),
                allowed_calling_aes: self.allowed_calling_aes.clone(),
                peer,
            })
            .ae_title(self.ae_title.to_string())
            .max_pdu_length(o.effective_max_pdu_length())
            .read_timeout(o.idle_timeout)
            .write_timeout(o.idle_timeout)
            .with_abstract_syntax(sop_classes::VERIFICATION);
        for uid in &o.abstract_syntaxes {
            server = server.with_abstract_syntax(uid.clone());
        }
        for uid in &o.transfer_syntaxes {
            server = server.with_transfer_syntax(uid.clone());
        }
        server
    }
}

type Association = dicom_ul::association::server::AsyncServerAssociation<TcpStream>;

/// Serves one connection to its end. Never panics on what the peer sends.
pub(super) async fn serve(ctx: Arc<ScpContext>, stream: TcpStream, peer: SocketAddr) {
    let ae = ctx.ae();
    let deadline = Instant::now() + ctx.options.association_timeout;
    let negotiation = ctx.negotiation(peer);
    let established = tokio::select! {
        _ = ctx.shutdown.cancelled() => return,
        r = tokio::time::timeout_at(deadline, negotiation.establish_async(stream)) => r,
    };
    let mut assoc = match established {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            let reason = match &e {
                UlError::Rejected { .. } => "rejected",
                UlError::Timeout { .. } => "timeout",
                _ => "protocol",
            };
            // An AE title refusal was logged with both titles by `AeAccess`; this line covers every case.
            tracing::warn!(%peer, reason, error = %e, "dicom association not established");
            metrics::counter!("medbus_dicom_associations_total", "ae" => ae, "outcome" => "rejected", "reason" => reason)
                .increment(1);
            return;
        }
        Err(_) => {
            tracing::warn!(%peer, "dicom association not established: association timeout during negotiation");
            metrics::counter!("medbus_dicom_associations_total", "ae" => ae, "outcome" => "rejected", "reason" => "timeout")
                .increment(1);
            return;
        }
    };
    let calling_ae = assoc.peer_ae_title().trim().to_string();
    let called_ae = assoc.called_ae_title().trim().to_string();
    let accepted = assoc
        .presentation_contexts()
        .iter()
        .filter(|pc| pc.reason == PresentationContextResultReason::Acceptance)
        .count();
    metrics::counter!("medbus_dicom_associations_total", "ae" => ae.clone(), "outcome" => "accepted", "reason" => "")
        .increment(1);
    tracing::info!(%peer, calling_ae, accepted_contexts = accepted, "dicom association accepted");

    let mut fragments = Fragments::default();
    let ended = loop {
        let next = tokio::select! {
            _ = ctx.shutdown.cancelled() => None,
            r = tokio::time::timeout_at(deadline, assoc.receive()) => Some(r),
        };
        let Some(next) = next else {
            break abort(assoc, "shutdown").await;
        };
        let pdu = match next {
            Err(_) => break abort(assoc, "association timeout").await,
            Ok(Err(UlError::Timeout { .. })) => break abort(assoc, "idle timeout").await,
            Ok(Err(e)) => {
                tracing::info!(%peer, calling_ae, error = %e, "dicom association read failed");
                break abort(assoc, "read failed").await;
            }
            Ok(Ok(pdu)) => pdu,
        };
        match pdu {
            Pdu::PData { data } => {
                let mut violation = None;
                for pdv in data {
                    match fragments.take(
                        assoc.presentation_contexts(),
                        pdv,
                        ctx.options.max_dataset_bytes,
                        &ctx.budget,
                        &ae,
                    ) {
                        Err(why) => {
                            violation = Some(why);
                            break;
                        }
                        Ok(None) => {}
                        Ok(Some(ready)) => {
                            let (pc, command, answer) =
                                answer(&ctx, &assoc, ready, peer, &calling_ae, &called_ae).await;
                            if let Err(e) = respond(&mut assoc, pc, &command, answer).await {
                                tracing::info!(%peer, calling_ae, error = %e, "dicom response not sent");
                                violation = Some("write failed");
                                break;
                            }
                        }
                    }
                }
                if let Some(why) = violation {
                    tracing::warn!(%peer, calling_ae, reason = why, "dicom association aborted");
                    break abort(assoc, why).await;
                }
            }
            Pdu::ReleaseRQ => {
                let _ = assoc.send(&Pdu::ReleaseRP).await;
                break "released";
            }
            Pdu::AbortRQ { .. } => break "aborted by peer",
            other => {
                tracing::warn!(%peer, calling_ae, pdu = %other.short_description(), "unexpected PDU: aborting the association");
                break abort(assoc, "unexpected PDU").await;
            }
        }
    };
    tracing::info!(%peer, calling_ae, ended, "dicom association ended");
}

/// Sends A-ABORT (bounded in time) and closes; returns `why` for the log line.
async fn abort(assoc: Association, why: &'static str) -> &'static str {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), assoc.abort()).await;
    why
}

/// A status and, on failure, the reason for the Error Comment.
type Answer = (u16, Option<String>);

/// Works out the answer to one complete message (the C-STORE after the sink returned).
async fn answer(
    ctx: &ScpContext,
    assoc: &Association,
    ready: Ready,
    peer: SocketAddr,
    calling_ae: &str,
    called_ae: &str,
) -> (u8, Command, Answer) {
    match ready {
        Ready::Command { pc, command } => {
            let answer = match command.field {
                command_field::C_ECHO_RQ => (status::SUCCESS, None),
                command_field::C_STORE_RQ => (status::CANNOT_UNDERSTAND, Some("C-STORE without a data set".into())),
                other => (
                    status::UNRECOGNIZED_OPERATION,
                    Some(format!("command 0x{other:04X} not served")),
                ),
            };
            (pc, command, answer)
        }
        Ready::WithData { pc, command, data } => {
            let answer = match command.field {
                command_field::C_STORE_RQ => {
                    let answer = store(ctx, assoc, pc, &command, data, peer, calling_ae, called_ae).await;
                    let outcome = if answer.0 == status::SUCCESS {
                        "stored"
                    } else {
                        "failed"
                    };
                    metrics::counter!("medbus_dicom_instances_total", "ae" => ctx.ae(), "outcome" => outcome)
                        .increment(1);
                    if let Some(reason) = &answer.1 {
                        tracing::warn!(%peer, calling_ae, status = format!("0x{:04X}", answer.0), reason, "dicom instance not stored");
                    }
                    answer
                }
                command_field::C_ECHO_RQ => (status::SUCCESS, None),
                other => (
                    status::UNRECOGNIZED_OPERATION,
                    Some(format!("command 0x{other:04X} not served")),
                ),
            };
            (pc, command, answer)
        }
    }
}

/// One C-STORE: checks, metadata, then the sink. Returns the status to answer.
#[allow(clippy::too_many_arguments)]
async fn store(
    ctx: &ScpContext,
    assoc: &Association,
    pc: u8,
    command: &Command,
    data: Result<Buffered, Dropped>,
    peer: SocketAddr,
    calling_ae: &str,
    called_ae: &str,
) -> Answer {
    let Some((abstract_syntax, transfer_syntax)) = accepted_context(assoc.presentation_contexts(), pc) else {
        return (
            status::SOP_CLASS_NOT_SUPPORTED,
            Some("presentation context not accepted".into()),
        );
    };
    let Buffered { bytes, reservation } = match data {
        Ok(buffered) => buffered,
        Err(Dropped::OverLimit) => {
            let limit = ctx.options.max_dataset_bytes;
            return (
                status::OUT_OF_RESOURCES,
                Some(format!("data set over the {limit}-byte limit")),
            );
        }
        Err(Dropped::OverBudget) => {
            metrics::counter!("medbus_dicom_memory_budget_refusals_total", "ae" => ctx.ae()).increment(1);
            return (
                status::OUT_OF_RESOURCES,
                Some("receiving too much at once; send it again later".into()),
            );
        }
    };
    // The data set's memory stays counted until the sink is done with it.
    let _reservation = reservation;
    if command.affected_sop_class_uid.as_deref() != Some(abstract_syntax.as_str()) {
        return (
            status::SOP_CLASS_NOT_SUPPORTED,
            Some("Affected SOP Class UID differs from the presentation context".into()),
        );
    }
    let data = Bytes::from(bytes);
    let (parse_bytes, ts) = (data.clone(), transfer_syntax.clone());
    // Off the async workers: deflated or large data sets take real CPU. A panic in
    // the parser would end this task only; it is answered like a malformed data set.
    let metadata = match tokio::task::spawn_blocking(move || dataset::read_metadata(&parse_bytes, &ts)).await {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => return (status::CANNOT_UNDERSTAND, Some(e.to_string())),
        Err(_) => return (status::CANNOT_UNDERSTAND, Some("data set could not be read".into())),
    };
    if metadata.sop_class_uid != abstract_syntax {
        return (
            status::DATASET_DOES_NOT_MATCH_SOP_CLASS,
            Some("SOP Class UID of the data set differs from the command".into()),
        );
    }
    if command.affected_sop_instance_uid.as_deref() != Some(metadata.sop_instance_uid.as_str()) {
        return (
            status::CANNOT_UNDERSTAND,
            Some("SOP Instance UID of the data set differs from the command".into()),
        );
    }
    let instance = ReceivedInstance {
        calling_ae: calling_ae.to_string(),
        called_ae: called_ae.to_string(),
        peer,
        metadata,
        dataset: data,
        transfer_syntax,
    };
    // Bounded: a hung disk or backbone must not hold the association (and shutdown) forever.
    // The sink writes before it publishes and the publish is deduplicated, so the peer's retry is safe.
    match tokio::time::timeout(STORE_DEADLINE, ctx.sink.store(instance)).await {
        Ok(Ok(())) => (status::SUCCESS, None),
        Ok(Err(e)) => (e.status(), Some(e.to_string())),
        Err(_) => {
            tracing::error!(
                calling_ae,
                "storing an instance took longer than {STORE_DEADLINE:?}; answered out of resources"
            );
            (
                status::OUT_OF_RESOURCES,
                Some(format!(
                    "not stored within {}s; send it again later",
                    STORE_DEADLINE.as_secs()
                )),
            )
        }
    }
}

/// Sends the response command set in one PDV.
async fn respond(assoc: &mut Association, pc: u8, command: &Command, (status, comment): Answer) -> Result<(), String> {
    let bytes = dimse::response(command, status, comment.as_deref()).map_err(|e| e.to_string())?;
    let pdu = Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: pc,
            value_type: PDataValueType::Command,
            is_last: true,
            data: bytes,
        }],
    };
    assoc.send(&pdu).await.map_err(|e| e.to_string())
}
