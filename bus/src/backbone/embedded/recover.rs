//! Opening the log: read every segment in order, cut a torn tail off the
//! newest one, and rebuild the index, consumer positions and dedupe window.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::dedupe::DedupeWindow;
use super::log::{self, Record};
use super::state::{ConsumerState, MsgMeta, SegmentInfo, State};
use super::{storage, unix_ms, Settings};
use crate::backbone::BackboneError;

/// What the log held.
pub(crate) struct Recovered {
    pub state: State,
    pub dedupe: DedupeWindow,
    pub next_consumer: u32,
    pub next_segment: u64,
}

/// `seg-<20 digits>.log`: names sort in id order.
pub(crate) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:020}.log"))
}

fn segment_id(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    if digits.len() != 20 {
        return None;
    }
    digits.parse().ok()
}

/// Segment ids in `dir`, ascending; removes leftovers of an interrupted rewrite.
fn list_segments(dir: &Path) -> Result<Vec<u64>, BackboneError> {
    let mut ids = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| storage(format!("cannot list {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| storage(format!("cannot list {}", dir.display()), e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".compact") {
            // A rewrite that did not reach its rename: the original is intact.
            fs::remove_file(entry.path()).map_err(|e| storage(format!("cannot remove {name}"), e))?;
        } else if let Some(id) = segment_id(&name) {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Reads the log in `dir`.
pub(crate) fn recover(dir: &Path, settings: &Settings) -> Result<Recovered, BackboneError> {
    fs::create_dir_all(dir).map_err(|e| storage(format!("cannot create {}", dir.display()), e))?;
    let now = unix_ms();
    let keep_after = now.saturating_sub(settings.max_age_ms);
    let mut state = State::default();
    let mut dedupe = DedupeWindow::new(settings.duplicate_window_ms);
    let mut unknown = HashSet::new();
    let ids = list_segments(dir)?;
    for (i, &id) in ids.iter().enumerate() {
        let path = segment_path(dir, id);
        let data = fs::read(&path).map_err(|e| storage(format!("cannot read {}", path.display()), e))?;
        let mut seg_range = SegmentInfo::new(path.clone(), Arc::new(open_read(&path)?), 0);
        let last = i + 1 == ids.len();
        let scan = log::scan(&path, &data, last, |offset, len, rec| {
            let bad = |why: String| {
                BackboneError::Storage(format!("embedded log {} at offset {offset}: {why}", path.display()))
            };
            match rec {
                Record::Publish(p) => {
                    state.last_seq = state.last_seq.max(p.seq);
                    seg_range.add(p.seq, p.ts_ms);
                    dedupe.insert(p.dedupe_id, p.seq, p.ts_ms, now);
                    if p.ts_ms >= keep_after {
                        let subject = state.intern(p.subject);
                        let meta = MsgMeta {
                            subject,
                            ts_ms: p.ts_ms,
                            segment: id,
                            offset,
                            len,
                        };
                        state.index.insert(p.seq, meta);
                    }
                }
                Record::Consumer(c) => state.upsert_consumer(c.id, ConsumerState::spec_of(&c)).map_err(bad)?,
                Record::Ack { consumer, seq } | Record::Term { consumer, seq } => {
                    match state.consumers.get_mut(&consumer) {
                        Some(c) => {
                            c.mark(seq);
                        }
                        None => {
                            unknown.insert(consumer);
                        }
                    }
                }
                Record::Floor { consumer, floor } => match state.consumers.get_mut(&consumer) {
                    Some(c) => c.floor = c.floor.max(floor),
                    None => {
                        unknown.insert(consumer);
                    }
                },
                Record::LastSeq(seq) => state.last_seq = state.last_seq.max(seq),
                Record::Commit { .. } => {}
            }
            Ok(())
        })?;
        if let Some((at, why)) = scan.torn {
            tracing::warn!(
                file = %path.display(),
                offset = at,
                dropped_bytes = data.len() - scan.valid_end,
                why,
                "embedded log: torn tail after a crash cut off (it was never acknowledged)"
            );
            truncate(&path, scan.valid_end as u64)?;
        }
        if scan.valid_end == 0 {
            // Nothing committed (a crash while the segment was being created).
            fs::remove_file(&path).map_err(|e| storage(format!("cannot remove {}", path.display()), e))?;
            continue;
        }
        seg_range.bytes = scan.valid_end as u64;
        state.segments.insert(id, seg_range);
    }
    if !unknown.is_empty() {
        tracing::warn!(consumers = ?unknown, "embedded log: acks for unknown consumer ids ignored");
    }
    let State {
        index,
        consumers,
        last_seq,
        ..
    } = &mut state;
    for c in consumers.values_mut() {
        c.advance(index, *last_seq);
    }
    let next_consumer = state.consumers.keys().max().map_or(1, |m| m + 1);
    let next_segment = ids.last().map_or(1, |m| m + 1);
    tracing::info!(
        dir = %dir.display(),
        segments = state.segments.len(),
        messages = state.index.len(),
        last_seq = state.last_seq,
        consumers = state.consumers.len(),
        dedupe_ids = dedupe.len(),
        "embedded log recovered"
    );
    Ok(Recovered {
        state,
        dedupe,
        next_consumer,
        next_segment,
    })
}

/// A read handle on a segment.
pub(crate) fn open_read(path: &Path) -> Result<File, BackboneError> {
    File::open(path).map_err(|e| storage(format!("cannot open {}", path.display()), e))
}

fn truncate(path: &Path, len: u64) -> Result<(), BackboneError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| storage(format!("cannot open {} to cut its torn tail", path.display()), e))?;
    f.set_len(len)
        .and_then(|_| f.sync_all())
        .map_err(|e| storage(format!("cannot cut the torn tail of {}", path.display()), e))
}
