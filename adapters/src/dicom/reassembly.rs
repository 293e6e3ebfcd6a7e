//! P-DATA reassembly: command and data set fragments (PDVs) in, complete DIMSE
//! messages out, with size caps — the command set 64 KiB, the data set
//! [`ScpOptions::max_dataset_bytes`](super::ScpOptions::max_dataset_bytes), and
//! every association's data sets together the SCP's [`MemoryBudget`]. A data
//! set over either is read to its last fragment and dropped, so the
//! association stays in step and the request can be answered. Fragments that
//! break the protocol (an unknown presentation context, data without a
//! command, a command inside a data set, an unreadable command set) are
//! errors: the association is aborted.

use std::sync::Arc;

use dicom_ul::pdu::{PDataValue, PDataValueType, PresentationContextNegotiated, PresentationContextResultReason};

use super::budget::{MemoryBudget, Reservation};
use super::dimse::{self, Command};
use super::sop_classes::trim_uid;

/// Capacity a data set's buffer starts with.
const FIRST_RESERVE: usize = 1 << 20;

/// Largest command set accepted (real ones are a few hundred bytes).
const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// A complete DIMSE message, ready to answer.
pub(super) enum Ready {
    /// A command without a data set.
    Command { pc: u8, command: Command },
    /// A command with its data set, or why the data set was not kept.
    WithData {
        pc: u8,
        command: Command,
        data: Result<Buffered, Dropped>,
    },
}

/// A data set held in memory, with its share of the budget (given back when dropped).
pub(super) struct Buffered {
    /// The data set bytes.
    pub bytes: Vec<u8>,
    /// Its part of the SCP's memory budget.
    pub reservation: Reservation,
}

/// Why a data set was read to its end but not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dropped {
    /// Bigger than `max_dataset_bytes`.
    OverLimit,
    /// The associations together hold the whole memory budget.
    OverBudget,
}

/// A command waiting for its data set fragments.
struct PendingData {
    pc: u8,
    command: Command,
    data: Vec<u8>,
    reservation: Reservation,
    dropped: Option<Dropped>,
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
        budget: &Arc<MemoryBudget>,
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
                        reservation: budget.reservation(),
                        dropped: None,
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
                if pending.dropped.is_none() {
                    if pending.data.capacity() == 0 {
                        // One allocation for most data sets instead of doubling (and copying)
                        // from the first fragment up; only touched pages take memory.
                        pending.data.reserve(FIRST_RESERVE.min(max_dataset));
                    }
                    let dropped = if pending.data.len() + pdv.data.len() > max_dataset {
                        Some(Dropped::OverLimit)
                    } else if !pending.reservation.grow(pdv.data.len()) {
                        Some(Dropped::OverBudget)
                    } else {
                        None
                    };
                    match dropped {
                        None => pending.data.extend_from_slice(&pdv.data),
                        Some(why) => {
                            // Keep reading to the last fragment so the association stays in step; free the memory now.
                            pending.dropped = Some(why);
                            pending.data = Vec::new();
                            pending.reservation = budget.reservation();
                        }
                    }
                }
                if !pdv.is_last {
                    return Ok(None);
                }
                let Some(p) = self.pending.take() else {
                    return Err("data fragment without a command");
                };
                let data = match p.dropped {
                    Some(why) => Err(why),
                    None => Ok(Buffered {
                        bytes: p.data,
                        reservation: p.reservation,
                    }),
                };
                Ok(Some(Ready::WithData {
                    pc: p.pc,
                    command: p.command,
                    data,
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

#[cfg(test)]
mod tests {
    use dicom_ul::pdu::{PDataValue, PDataValueType, PresentationContextNegotiated, PresentationContextResultReason};

    use super::*;
    use crate::dicom::scu::command::c_store_rq;

    const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

    fn contexts() -> Vec<PresentationContextNegotiated> {
        vec![PresentationContextNegotiated {
            id: 1,
            reason: PresentationContextResultReason::Acceptance,
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            abstract_syntax: CT.into(),
        }]
    }

    fn pdv(command: bool, is_last: bool, data: Vec<u8>) -> PDataValue {
        PDataValue {
            presentation_context_id: 1,
            value_type: if command {
                PDataValueType::Command
            } else {
                PDataValueType::Data
            },
            is_last,
            data,
        }
    }

    /// Feeds one C-STORE with `chunks` data fragments of `size` bytes; the data set outcome.
    fn store(f: &mut Fragments, budget: &Arc<MemoryBudget>, chunks: usize, size: usize) -> Result<Buffered, Dropped> {
        let cs = contexts();
        let command = pdv(true, true, c_store_rq(1, CT, "1.2.3"));
        assert!(matches!(f.take(&cs, command, 1 << 20, budget, "T"), Ok(None)));
        for i in 0..chunks {
            let last = i + 1 == chunks;
            match f.take(&cs, pdv(false, last, vec![7; size]), 1 << 20, budget, "T") {
                Ok(None) if !last => {}
                Ok(Some(Ready::WithData { data, .. })) if last => return data,
                _ => panic!("fragment {i} not taken as expected"),
            }
        }
        unreachable!("the last fragment completes the message")
    }

    #[test]
    fn a_data_set_holds_its_bytes_in_the_budget_until_dropped() {
        let budget = MemoryBudget::new(10_000);
        let mut f = Fragments::default();
        let held = store(&mut f, &budget, 4, 1000).expect("kept");
        assert_eq!(held.bytes.len(), 4000);
        assert_eq!(budget.used(), 4000);
        drop(held);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_data_set_over_the_shared_budget_is_read_to_its_end_and_dropped() {
        let budget = MemoryBudget::new(5000);
        let mut a = Fragments::default();
        let held = store(&mut a, &budget, 3, 1000).expect("first fits");
        let mut b = Fragments::default();
        assert_eq!(store(&mut b, &budget, 3, 1000).err(), Some(Dropped::OverBudget));
        assert_eq!(budget.used(), 3000, "the dropped one gave its part back");
        // The association is still in step: its next C-STORE is read normally.
        drop(held);
        assert!(store(&mut b, &budget, 3, 1000).is_ok());
    }

    #[test]
    fn a_data_set_over_the_size_limit_is_dropped_without_touching_the_budget() {
        let budget = MemoryBudget::new(usize::MAX);
        let mut f = Fragments::default();
        let cs = contexts();
        let command = pdv(true, true, c_store_rq(1, CT, "1.2.3"));
        assert!(matches!(f.take(&cs, command, 1500, &budget, "T"), Ok(None)));
        assert!(matches!(
            f.take(&cs, pdv(false, false, vec![0; 1000]), 1500, &budget, "T"),
            Ok(None)
        ));
        let done = f.take(&cs, pdv(false, true, vec![0; 1000]), 1500, &budget, "T");
        assert!(matches!(
            done,
            Ok(Some(Ready::WithData {
                data: Err(Dropped::OverLimit),
                ..
            }))
        ));
        assert_eq!(budget.used(), 0);
    }
}
