//! What both stores decide the same way when a service applies a batch of
//! events: which copies to append to the event log (or mark applied), and
//! which events of the batch are new.

use std::collections::HashSet;

use uuid::Uuid;

use super::EventRecord;

/// The events of `batch` to append to the log (or mark applied): the first
/// copy of each id (a later one is a redelivery, and one statement may not
/// meet the same key twice), in id order, so two batches sharing events (a
/// redelivery racing the first delivery) wait on each other's ids in the same
/// order, never in a cycle.
pub(crate) fn first_copies<C>(batch: &[(EventRecord, Vec<C>)]) -> Vec<&EventRecord> {
    let mut seen = HashSet::with_capacity(batch.len());
    let mut firsts: Vec<&EventRecord> = batch.iter().map(|(e, _)| e).filter(|e| seen.insert(e.id)).collect();
    firsts.sort_by_key(|e| e.id);
    firsts
}

/// For each event of `batch`, true when it is new to this batch's write: its
/// id is in `inserted` (what the insert returned) and it is the first copy
/// of that id in the batch.
pub(crate) fn appended<C>(batch: &[(EventRecord, Vec<C>)], mut inserted: HashSet<Uuid>) -> Vec<bool> {
    batch.iter().map(|(e, _)| inserted.remove(&e.id)).collect()
}

/// For each event of a clinical `batch`, true when its changes are applied
/// now: `marked` holds the ids the ledger took as new (see [`appended`]), and
/// a follow-up raised by an earlier event of the batch counts as applied
/// already (the service never applies its own follow-ups), as one by one.
pub(crate) fn applied_now(batch: &[(EventRecord, Vec<super::ClinicalChange>)], marked: HashSet<Uuid>) -> Vec<bool> {
    let mut raised = HashSet::new();
    batch
        .iter()
        .zip(appended(batch, marked))
        .map(|((e, changes), new)| {
            let new = new && !raised.contains(&e.id);
            if new {
                raised.extend(changes.iter().filter_map(|c| match c {
                    super::ClinicalChange::Emit(f) => Some(f.id),
                    _ => None,
                }));
            }
            new
        })
        .collect()
}
