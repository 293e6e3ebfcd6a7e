//! What both stores decide the same way when they keep a batch of messages
//! with set-based statements: the outcome of each insert, which stage
//! outcomes can be written set-based, and which messages were new.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::{InsertOutcome, NewMessage, StageOutcome, StoreError};

/// The outcome of each message of a batch insert, the same as inserting them
/// one by one in order. `inserted` holds the ids the insert returned; `kept`
/// the (id, channel, control id) of the rows the others conflicted with.
/// Only the first copy of an id counts as inserted: a second copy in the
/// same batch is a duplicate of the first.
pub(crate) fn insert_outcomes(
    ms: &[NewMessage],
    mut inserted: HashSet<Uuid>,
    kept: &[(Uuid, String, Option<String>)],
) -> Result<Vec<InsertOutcome>, StoreError> {
    let by_id: HashSet<Uuid> = kept.iter().map(|(id, _, _)| *id).collect();
    let by_key: HashMap<(&str, &str), Uuid> = kept
        .iter()
        .filter_map(|(id, ch, cid)| cid.as_deref().map(|cid| ((ch.as_str(), cid), *id)))
        .collect();
    ms.iter()
        .map(|m| {
            if inserted.remove(&m.id) {
                return Ok(InsertOutcome::Inserted);
            }
            // An id match is reported before a channel + control id match.
            if by_id.contains(&m.id) {
                return Ok(InsertOutcome::Duplicate { existing: m.id });
            }
            m.control_id
                .as_deref()
                .and_then(|cid| by_key.get(&(m.channel.as_str(), cid)))
                .map(|existing| InsertOutcome::Duplicate { existing: *existing })
                .ok_or_else(|| {
                    StoreError::Database(format!(
                        "message {} conflicted on insert but no conflicting row was found",
                        m.id
                    ))
                })
        })
        .collect()
}

/// True when stage outcomes can be recorded set-based (one UPDATE of the
/// messages and one upsert of the stages): each message at most once, so
/// every statement has one row per target. Otherwise the store goes row by row.
pub(crate) fn set_based(records: &[StageOutcome]) -> bool {
    let mut seen = HashSet::with_capacity(records.len());
    records.iter().all(|r| seen.insert(r.message_id))
}

/// The outcomes of messages inserted just now (which carry their status
/// already: only the stage row is written), then those of messages kept
/// before (the message row is updated too).
pub(crate) fn fresh_and_kept(
    ms: &[NewMessage],
    inserted: &[InsertOutcome],
    outcomes: &[StageOutcome],
) -> (Vec<StageOutcome>, Vec<StageOutcome>) {
    let fresh: HashSet<Uuid> = ms
        .iter()
        .zip(inserted)
        .filter(|(_, o)| matches!(o, InsertOutcome::Inserted))
        .map(|(m, _)| m.id)
        .collect();
    outcomes.iter().cloned().partition(|o| fresh.contains(&o.message_id))
}
