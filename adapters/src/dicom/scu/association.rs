//! One association as a storage SCU: establish it proposing exactly the presentation
//! contexts needed (one transfer syntax each: data sets are sent as stored, never
//! transcoded), then C-STORE (or C-ECHO) one message at a time over it, then release it.
//!
//! Nothing the peer sends can panic this: every PDU and response field is checked and a
//! surprise becomes an [`ScuError`].

use std::net::SocketAddr;
use std::time::Duration;

use dicom_ul::association::client::{AsyncClientAssociation, ClientAssociationOptions};
use dicom_ul::association::Error as UlError;
use dicom_ul::pdu::{AssociationRJResult, PDataValueType, Pdu, PresentationContextResultReason};
use tokio::net::TcpStream;

use super::command::{self as dimse, Response};
use super::pdata::{self, WriteError};

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
    /// Limit on waiting for a response, counted from the last byte of the request sent.
    pub response_timeout: Duration,
    /// Limit on writing one P-DATA-TF PDU (at most the SCP's maximum PDU length, and at most
    /// 1 MiB): an SCP that takes none of it for this long has stopped reading. Sending a
    /// whole data set has no limit of its own, so a large instance over a slow link takes
    /// the time it needs as long as it keeps moving.
    pub write_timeout: Duration,
    /// Largest PDU we receive (Maximum Length Received we announce).
    pub max_pdu_length: u32,
}

impl ScuConfig {
    /// Defaults for `addr`: MODSIM calling ANY-SCP, 30 s to associate, 30 s per PDU written,
    /// 30 s per response, 16 KiB PDUs received (responses are small).
    pub fn new(addr: SocketAddr) -> Self {
        ScuConfig {
            addr,
            calling_ae: "MODSIM".into(),
            called_ae: "ANY-SCP".into(),
            connect_timeout: Duration::from_secs(30),
            response_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_pdu_length: 16_384,
        }
    }
}

/// A presentation context to propose: one SOP class in one transfer syntax.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Context {
    /// SOP Class UID (abstract syntax).
    pub abstract_syntax: String,
    /// Transfer syntax UID.
    pub transfer_syntax: String,
}

impl Context {
    /// `abstract_syntax` in `transfer_syntax`.
    pub fn new(abstract_syntax: &str, transfer_syntax: &str) -> Self {
        Context {
            abstract_syntax: abstract_syntax.into(),
            transfer_syntax: transfer_syntax.into(),
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
    /// The SCP rejected the association (A-ASSOCIATE-RJ). A permanent rejection will not
    /// pass by itself (wrong AE title, unsupported application context); a transient one may.
    #[error("{addr} rejected the association ({}): {reason}", if *.permanent { "permanent" } else { "transient" })]
    Rejected {
        /// The SCP.
        addr: SocketAddr,
        /// Result field of the A-ASSOCIATE-RJ was "rejected-permanent".
        permanent: bool,
        /// Source and reason of the rejection.
        reason: String,
    },
    /// The SCP accepted none of the presentation contexts proposed, or not the one a
    /// message needs.
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
    /// No progress within the limit: a PDU not taken whole within the write timeout, or no
    /// response within the response timeout.
    #[error("no progress sending, or no response, within {0:?}")]
    Timeout(Duration),
    /// The peer sent something the protocol does not allow here.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// An established association and the presentation contexts the SCP accepted.
pub struct Association {
    inner: AsyncClientAssociation<TcpStream>,
    addr: SocketAddr,
    /// Accepted contexts and their presentation context ids.
    accepted: Vec<(Context, u8)>,
    peer_max_pdu: u32,
    next_message_id: u16,
    response_timeout: Duration,
    write_timeout: Duration,
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
    /// Connects and proposes each of `contexts` (at most 128, PS3.8 9.3.2.2) in its one
    /// transfer syntax. Succeeds when the SCP accepts at least one; [`Association::accepts`]
    /// says which.
    pub async fn establish(cfg: &ScuConfig, contexts: &[Context]) -> Result<Self, ScuError> {
        let associate = |reason: String| ScuError::Associate { addr: cfg.addr, reason };
        let Some(first) = contexts.first() else {
            return Err(associate("no presentation context to propose".into()));
        };
        let mut options = ClientAssociationOptions::new()
            .calling_ae_title(cfg.calling_ae.as_str())
            .called_ae_title(cfg.called_ae.as_str())
            .max_pdu_length(cfg.max_pdu_length)
            .connection_timeout(cfg.connect_timeout);
        for c in contexts {
            options = options.with_presentation_context(c.abstract_syntax.as_str(), vec![c.transfer_syntax.as_str()]);
        }
        let rejected = || ScuError::ContextRejected {
            addr: cfg.addr,
            abstract_syntax: first.abstract_syntax.clone(),
            transfer_syntax: first.transfer_syntax.clone(),
        };
        let mut inner = match tokio::time::timeout(cfg.connect_timeout, options.establish_async(cfg.addr)).await {
            Err(_) => return Err(associate(format!("no answer within {:?}", cfg.connect_timeout))),
            Ok(Err(UlError::Rejected { association_rj, .. })) => {
                return Err(ScuError::Rejected {
                    addr: cfg.addr,
                    permanent: association_rj.result == AssociationRJResult::Permanent,
                    reason: format!("{:?}", association_rj.source),
                })
            }
            Ok(Err(UlError::NoAcceptedPresentationContexts { .. })) => return Err(rejected()),
            Ok(Err(e)) => return Err(associate(chain(&e))),
            Ok(Ok(a)) => a,
        };
        // Without it, the tail of each message waits for the peer's delayed ACK (Nagle).
        inner
            .inner_stream()
            .set_nodelay(true)
            .map_err(|e| associate(format!("TCP_NODELAY: {e}")))?;
        // Each context proposed one transfer syntax, so an accepted one is that pair; the
        // SCP's choice is checked anyway (a peer answering with another syntax is not trusted).
        let accepted: Vec<(Context, u8)> = inner
            .presentation_contexts()
            .iter()
            .filter(|pc| pc.reason == PresentationContextResultReason::Acceptance)
            .filter_map(|pc| {
                let c = Context::new(&pc.abstract_syntax, pc.transfer_syntax.trim_end_matches('\0'));
                contexts.contains(&c).then_some((c, pc.id))
            })
            .collect();
        if accepted.is_empty() {
            let _ = inner.abort().await;
            return Err(rejected());
        }
        let peer_max_pdu = inner.acceptor_max_pdu_length();
        Ok(Association {
            inner,
            addr: cfg.addr,
            accepted,
            peer_max_pdu,
            next_message_id: 1,
            response_timeout: cfg.response_timeout,
            write_timeout: cfg.write_timeout,
        })
    }

    /// True when the SCP accepted `sop_class` in `transfer_syntax` on this association.
    pub fn accepts(&self, sop_class: &str, transfer_syntax: &str) -> bool {
        self.pc_id(sop_class, transfer_syntax).is_some()
    }

    fn pc_id(&self, sop_class: &str, transfer_syntax: &str) -> Option<u8> {
        self.accepted
            .iter()
            .find(|(c, _)| c.abstract_syntax == sop_class && c.transfer_syntax == transfer_syntax)
            .map(|(_, id)| *id)
    }

    /// The SCP's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The largest PDU the SCP accepts (what data sets are fragmented to).
    pub fn peer_max_pdu(&self) -> u32 {
        self.peer_max_pdu
    }

    /// Sends one C-STORE-RQ with `dataset` (encoded in `transfer_syntax`, which must have
    /// been accepted with `sop_class`) and returns the C-STORE-RSP. A failure status is a
    /// response, not an error.
    pub async fn store(
        &mut self,
        sop_class: &str,
        transfer_syntax: &str,
        sop_instance: &str,
        dataset: &[u8],
    ) -> Result<Response, ScuError> {
        let pc_id = self.context_for(sop_class, transfer_syntax)?;
        let id = self.message_id();
        let command = dimse::c_store_rq(id, sop_class, sop_instance);
        self.exchange(pc_id, id, &command, Some(dataset), dimse::C_STORE_RSP)
            .await
    }

    /// Sends a C-ECHO-RQ and returns the C-ECHO-RSP (the association must have been
    /// established for the Verification SOP class in Implicit VR Little Endian).
    pub async fn echo(&mut self) -> Result<Response, ScuError> {
        let pc_id = self.context_for(
            dicom_dictionary_std::uids::VERIFICATION,
            dicom_dictionary_std::uids::IMPLICIT_VR_LITTLE_ENDIAN,
        )?;
        let id = self.message_id();
        let command = dimse::c_echo_rq(id);
        self.exchange(pc_id, id, &command, None, dimse::C_ECHO_RSP).await
    }

    fn context_for(&self, sop_class: &str, transfer_syntax: &str) -> Result<u8, ScuError> {
        self.pc_id(sop_class, transfer_syntax)
            .ok_or_else(|| ScuError::ContextRejected {
                addr: self.addr,
                abstract_syntax: sop_class.into(),
                transfer_syntax: transfer_syntax.into(),
            })
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

    /// Sends one message and reads its response. Sending is limited per PDU (the write
    /// timeout), not as a whole; the response wait has its own limit from the last byte sent.
    async fn exchange(
        &mut self,
        pc_id: u8,
        id: u16,
        command: &[u8],
        dataset: Option<&[u8]>,
        expect: u16,
    ) -> Result<Response, ScuError> {
        let (max_pdu, write_limit) = (self.peer_max_pdu, self.write_timeout);
        let stream = self.inner.inner_stream();
        let sent = match pdata::write(stream, pc_id, true, command, max_pdu, write_limit).await {
            Ok(()) => match dataset {
                Some(data) => pdata::write(stream, pc_id, false, data, max_pdu, write_limit).await,
                None => Ok(()),
            },
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => {}
            Err(WriteError::Stalled) => return Err(ScuError::Timeout(write_limit)),
            Err(WriteError::Io(e)) => return Err(ScuError::Transport(format!("sending message {id}: {e}"))),
        }
        let limit = self.response_timeout;
        match tokio::time::timeout(limit, self.read_response(id, expect)).await {
            Err(_) => Err(ScuError::Timeout(limit)),
            Ok(r) => r,
        }
    }

    async fn read_response(&mut self, id: u16, expect: u16) -> Result<Response, ScuError> {
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
    let verification = Context::new(
        dicom_dictionary_std::uids::VERIFICATION,
        dicom_dictionary_std::uids::IMPLICIT_VR_LITTLE_ENDIAN,
    );
    let mut a = Association::establish(cfg, &[verification]).await?;
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
