//! One association as a storage SCU: establish it proposing exactly the presentation context
//! needed, then C-STORE (or C-ECHO) one message at a time over it, then release it.
//!
//! Nothing the peer sends can panic this: every PDU and response field is checked and a
//! surprise becomes an [`ScuError`].

use std::net::SocketAddr;
use std::time::Duration;

use dicom_ul::association::client::{AsyncClientAssociation, ClientAssociationOptions};
use dicom_ul::pdu::{PDataValueType, Pdu, PresentationContextResultReason};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::dimse::{self, Response};
use super::pdata;

/// The largest response command set accepted.
const MAX_RESPONSE: usize = 64 * 1024;

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct ScuConfig {
    /// The SCP.
    pub addr: SocketAddr,
    /// Our AE title (Calling AE).
    pub calling_ae: String,
    /// The SCP's AE title (Called AE).
    pub called_ae: String,
    /// Limit on the TCP connection plus association negotiation. Generous by default: an
    /// SCP that serves one association at a time (dcmtk storescp without `--fork`) leaves
    /// the others waiting for their A-ASSOCIATE-AC until it is done with the first.
    pub connect_timeout: Duration,
    /// Limit on one request: sending it and reading its response.
    pub response_timeout: Duration,
}

impl ScuConfig {
    /// Defaults for `addr`: MODSIM calling ANY-SCP, 30 s to associate, 30 s per response.
    pub fn new(addr: SocketAddr) -> Self {
        ScuConfig {
            addr,
            calling_ae: "MODSIM".into(),
            called_ae: "ANY-SCP".into(),
            connect_timeout: Duration::from_secs(30),
            response_timeout: Duration::from_secs(30),
        }
    }
}

/// What went wrong on an association.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScuError {
    /// No association: connection refused, timed out, or the SCP rejected it.
    #[error("cannot associate with {addr}: {reason}")]
    Associate {
        /// The SCP.
        addr: SocketAddr,
        /// Why (the whole error chain).
        reason: String,
    },
    /// The SCP accepted the association but not the presentation context we need.
    #[error("{addr} did not accept {abstract_syntax} in {transfer_syntax}")]
    ContextRejected {
        /// The SCP.
        addr: SocketAddr,
        /// The SOP class proposed.
        abstract_syntax: String,
        /// The transfer syntax proposed.
        transfer_syntax: String,
    },
    /// The connection failed while sending or receiving.
    #[error("connection lost: {0}")]
    Transport(String),
    /// No response within the response timeout.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The peer sent something the protocol does not allow here.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// An established association with one accepted presentation context.
pub struct Association {
    inner: AsyncClientAssociation<TcpStream>,
    addr: SocketAddr,
    pc_id: u8,
    peer_max_pdu: u32,
    next_message_id: u16,
    response_timeout: Duration,
    out: Vec<u8>,
}

/// `e` and its sources, joined: dicom-ul's top-level messages ("failed to connect") hide
/// the useful part ("Connection refused") in the chain.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

impl Association {
    /// Connects and negotiates `abstract_syntax` in `transfer_syntax` (the only context proposed).
    pub async fn establish(cfg: &ScuConfig, abstract_syntax: &str, transfer_syntax: &str) -> Result<Self, ScuError> {
        let associate = |reason: String| ScuError::Associate { addr: cfg.addr, reason };
        let options = ClientAssociationOptions::new()
            .calling_ae_title(cfg.calling_ae.as_str())
            .called_ae_title(cfg.called_ae.as_str())
            .with_presentation_context(abstract_syntax, vec![transfer_syntax])
            .connection_timeout(cfg.connect_timeout);
        let mut inner = match tokio::time::timeout(cfg.connect_timeout, options.establish_async(cfg.addr)).await {
            Err(_) => return Err(associate(format!("no answer within {:?}", cfg.connect_timeout))),
            Ok(Err(e)) => return Err(associate(chain(&e))),
            Ok(Ok(a)) => a,
        };
        // Without it, the tail of each message waits for the peer's delayed ACK (Nagle).
        inner
            .inner_stream()
            .set_nodelay(true)
            .map_err(|e| associate(format!("TCP_NODELAY: {e}")))?;
        let accepted = inner.presentation_contexts().iter().find(|pc| {
            pc.reason == PresentationContextResultReason::Acceptance
                && pc.abstract_syntax == abstract_syntax
                && pc.transfer_syntax.trim_end_matches('\0') == transfer_syntax
        });
        let Some(pc_id) = accepted.map(|pc| pc.id) else {
            let _ = inner.abort().await;
            return Err(ScuError::ContextRejected {
                addr: cfg.addr,
                abstract_syntax: abstract_syntax.into(),
                transfer_syntax: transfer_syntax.into(),
            });
        };
        let peer_max_pdu = inner.acceptor_max_pdu_length();
        Ok(Association {
            inner,
            addr: cfg.addr,
            pc_id,
            peer_max_pdu,
            next_message_id: 1,
            response_timeout: cfg.response_timeout,
            out: Vec::new(),
        })
    }

    /// The SCP's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The largest PDU the SCP accepts (what data sets are fragmented to).
    pub fn peer_max_pdu(&self) -> u32 {
        self.peer_max_pdu
    }

    /// Sends one C-STORE-RQ with `dataset` (already in the negotiated transfer syntax) and
    /// returns the C-STORE-RSP. A failure status is a response, not an error.
    pub async fn store(&mut self, sop_class: &str, sop_instance: &str, dataset: &[u8]) -> Result<Response, ScuError> {
        let id = self.message_id();
        let command = dimse::c_store_rq(id, sop_class, sop_instance);
        self.exchange(id, &command, Some(dataset), dimse::C_STORE_RSP).await
    }

    /// Sends a C-ECHO-RQ and returns the C-ECHO-RSP (the association must have been
    /// established for the Verification SOP class).
    pub async fn echo(&mut self) -> Result<Response, ScuError> {
        let id = self.message_id();
        let command = dimse::c_echo_rq(id);
        self.exchange(id, &command, None, dimse::C_ECHO_RSP).await
    }

    /// A graceful A-RELEASE.
    pub async fn release(self) -> Result<(), ScuError> {
        let limit = self.response_timeout;
        match tokio::time::timeout(limit, self.inner.release()).await {
            Err(_) => Err(ScuError::Timeout(limit)),
            Ok(Err(e)) => Err(ScuError::Transport(chain(&e))),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Abandons the association with an A-ABORT (after an error, when state is unknown).
    pub async fn abort(self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.inner.abort()).await;
    }

    fn message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        id
    }

    async fn exchange(
        &mut self,
        id: u16,
        command: &[u8],
        dataset: Option<&[u8]>,
        expect: u16,
    ) -> Result<Response, ScuError> {
        let limit = self.response_timeout;
        match tokio::time::timeout(limit, self.exchange_inner(id, command, dataset, expect)).await {
            Err(_) => Err(ScuError::Timeout(limit)),
            Ok(r) => r,
        }
    }

    async fn exchange_inner(
        &mut self,
        id: u16,
        command: &[u8],
        dataset: Option<&[u8]>,
        expect: u16,
    ) -> Result<Response, ScuError> {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        pdata::frame(&mut out, self.pc_id, true, command, self.peer_max_pdu);
        if let Some(data) = dataset {
            pdata::frame(&mut out, self.pc_id, false, data, self.peer_max_pdu);
        }
        let written = self.inner.inner_stream().write_all(&out).await;
        // Keep the buffer's capacity for the next message.
        self.out = out;
        written.map_err(|e| ScuError::Transport(format!("sending message {id}: {e}")))?;

        let mut rsp = Vec::new();
        loop {
            let pdu =
                self.inner.receive().await.map_err(|e| {
                    ScuError::Transport(format!("waiting for the response to message {id}: {}", chain(&e)))
                })?;
            match pdu {
                Pdu::PData { data } => {
                    for pdv in data {
                        if pdv.value_type != PDataValueType::Command {
                            return Err(ScuError::Protocol(format!(
                                "a data set fragment where the response to message {id} was expected"
                            )));
                        }
                        rsp.extend_from_slice(&pdv.data);
                        // A response command set is about 200 bytes; a peer streaming
                        // fragments without end is broken, not slow.
                        if rsp.len() > MAX_RESPONSE {
                            return Err(ScuError::Protocol(format!(
                                "response to message {id} exceeds {MAX_RESPONSE} bytes"
                            )));
                        }
                        if pdv.is_last {
                            return check(Response::parse(&rsp), id, expect);
                        }
                    }
                }
                Pdu::AbortRQ { source } => {
                    return Err(ScuError::Transport(format!(
                        "the SCP aborted the association ({source:?})"
                    )))
                }
                Pdu::ReleaseRQ => {
                    return Err(ScuError::Protocol(format!(
                        "the SCP asked to release while message {id} was unanswered"
                    )))
                }
                other => {
                    return Err(ScuError::Protocol(format!(
                        "unexpected {} while waiting for the response to message {id}",
                        pdu_name(&other)
                    )))
                }
            }
        }
    }
}

fn check(parsed: Result<Response, String>, id: u16, expect: u16) -> Result<Response, ScuError> {
    let r = parsed.map_err(ScuError::Protocol)?;
    if r.command_field != expect {
        return Err(ScuError::Protocol(format!(
            "response command field 0x{:04X}, expected 0x{expect:04X}",
            r.command_field
        )));
    }
    if r.responding_to != id {
        return Err(ScuError::Protocol(format!(
            "response to message {} while waiting for {id}",
            r.responding_to
        )));
    }
    Ok(r)
}

fn pdu_name(p: &Pdu) -> &'static str {
    match p {
        Pdu::Unknown { .. } => "unknown PDU",
        Pdu::AssociationRQ(_) => "A-ASSOCIATE-RQ",
        Pdu::AssociationAC(_) => "A-ASSOCIATE-AC",
        Pdu::AssociationRJ(_) => "A-ASSOCIATE-RJ",
        Pdu::PData { .. } => "P-DATA-TF",
        Pdu::ReleaseRQ => "A-RELEASE-RQ",
        Pdu::ReleaseRP => "A-RELEASE-RP",
        Pdu::AbortRQ { .. } => "A-ABORT",
    }
}

/// Opens an association for Verification, sends one C-ECHO, releases; returns the status
/// and the round-trip time of the echo itself.
pub async fn echo(cfg: &ScuConfig) -> Result<(u16, Duration), ScuError> {
    let mut a = Association::establish(
        cfg,
        dicom_dictionary_std::uids::VERIFICATION,
        super::generate::Syntax::Implicit.uid(),
    )
    .await?;
    let started = std::time::Instant::now();
    let r = match a.echo().await {
        Ok(r) => r,
        Err(e) => {
            a.abort().await;
            return Err(e);
        }
    };
    let rtt = started.elapsed();
    a.release().await?;
    Ok((r.status, rtt))
}
