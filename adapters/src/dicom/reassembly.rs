//! P-DATA reassembly: command and data set fragments (PDVs) in, complete DIMSE
//! messages out, with size caps — the command set 64 KiB, the data set
//! [`ScpOptions::max_dataset_bytes`](super::ScpOptions::max_dataset_bytes). A data
//! set over its cap is read to its last fragment and dropped, so the
//! association stays in step and the request can be answered. Fragments that
//! break the protocol (an unknown presentation context, data without a
//! command, a command inside a data set, an unreadable command set) are
//! errors: the association is aborted.

use dicom_ul::pdu::{PDataValue, PDataValueType, PresentationContextNegotiated, PresentationContextResultReason};

use super::dimse::{self, Command};
use super::sop_classes::trim_uid;

/// Largest command set accepted (real ones are a few hundred bytes).
const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// A complete DIMSE message, ready to answer.
pub(super) enum Ready {
    /// A command without a data set.
    Command { pc: u8, command: Command },
    /// A command with its data set (`None` when it went over the cap and was dropped).
    WithData {
        pc: u8,
        command: Command,
        data: Option<Vec<u8>>,
    },
}

/// A command waiting for its data set fragments.
struct PendingData {
    pc: u8,
    command: Command,
    data: Vec<u8>,
    over_cap: bool,
}

/// Reassembly state between PDUs.
#[derive(Default)]
pub(super) struct Fragments {
    command: Vec<u8>,
    pending: Option<PendingData>,
}

impl Fragments {
    /// Takes one PDV; Some when it completes a message, Err (a reason) on a protocol violation.
    pub fn take(
        &mut self,
        contexts: &[PresentationContextNegotiated],
        pdv: PDataValue,
        max_dataset: usize,
        ae: &str,
    ) -> Result<Option<Ready>, &'static str> {
        let pc = pdv.presentation_context_id;
        if accepted_context(contexts, pc).is_none() {
            return Err("fragment on a presentation context not accepted");
        }
        match pdv.value_type {
            PDataValueType::Command => {
                if self.pending.is_some() {
                    return Err("command fragment while a data set was expected");
                }
                if self.command.len() + pdv.data.len() > MAX_COMMAND_BYTES {
                    return Err("command set over 64 KiB");
                }
                self.command.extend_from_slice(&pdv.data);
                if !pdv.is_last {
                    return Ok(None);
                }
                let bytes = std::mem::take(&mut self.command);
                let command = dimse::read_command(&bytes).map_err(|_| "unreadable command set")?;
                if command.has_data_set {
                    self.pending = Some(PendingData {
                        pc,
                        command,
                        data: Vec::new(),
                        over_cap: false,
                    });
                    return Ok(None);
                }
                Ok(Some(Ready::Command { pc, command }))
            }
            PDataValueType::Data => {
                let Some(pending) = self.pending.as_mut() else {
                    return Err("data fragment without a command");
                };
                if pending.pc != pc {
                    return Err("data fragment on another presentation context");
                }
                metrics::counter!("medbus_dicom_received_bytes_total", "ae" => ae.to_string())
                    .increment(pdv.data.len() as u64);
                if !pending.over_cap {
                    if pending.data.len() + pdv.data.len() > max_dataset {
                        // Keep reading to the last fragment so the association stays in step; free the memory now.
                        pending.over_cap = true;
                        pending.data = Vec::new();
                    } else {
                        pending.data.extend_from_slice(&pdv.data);
                    }
                }
                if !pdv.is_last {
                    return Ok(None);
                }
                let Some(p) = self.pending.take() else {
                    return Err("data fragment without a command");
                };
                Ok(Some(Ready::WithData {
                    pc: p.pc,
                    command: p.command,
                    data: (!p.over_cap).then_some(p.data),
                }))
            }
        }
    }
}

/// The (abstract syntax, transfer syntax) of an accepted presentation context.
pub(super) fn accepted_context(contexts: &[PresentationContextNegotiated], pc: u8) -> Option<(String, String)> {
    contexts
        .iter()
        .find(|c| c.id == pc && c.reason == PresentationContextResultReason::Acceptance)
        .map(|c| {
            (
                trim_uid(&c.abstract_syntax).to_string(),
                trim_uid(&c.transfer_syntax).to_string(),
            )
        })
}
