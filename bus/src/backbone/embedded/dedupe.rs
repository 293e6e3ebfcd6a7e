//! The duplicate window: dedupe ids stored within `duplicate_window`, and the
//! sequence each was stored at. Owned by the writer, which alone assigns sequences.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Dedupe ids seen recently. Like JetStream, the window runs from the first
/// store of an id; a duplicate does not extend it.
#[derive(Debug)]
pub(crate) struct DedupeWindow {
    window_ms: u64,
    ids: HashMap<Arc<str>, u64>,
    /// (stored at, sequence, id) in store order, for expiry from the front.
    order: VecDeque<(u64, u64, Arc<str>)>,
}

impl DedupeWindow {
    pub fn new(window_ms: u64) -> Self {
        DedupeWindow {
            window_ms,
            ids: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The sequence `id` was stored at, if inside the window.
    pub fn get(&self, id: &str) -> Option<u64> {
        self.ids.get(id).copied()
    }

    /// Records `id` stored at `seq` at `ts_ms`, unless already too old.
    pub fn insert(&mut self, id: &str, seq: u64, ts_ms: u64, now_ms: u64) {
        if id.is_empty() || ts_ms.saturating_add(self.window_ms) <= now_ms {
            return;
        }
        let id: Arc<str> = Arc::from(id);
        self.ids.insert(id.clone(), seq);
        self.order.push_back((ts_ms, seq, id));
    }

    /// Forgets ids stored before `now_ms - window`.
    pub fn expire(&mut self, now_ms: u64) {
        let cutoff = now_ms.saturating_sub(self.window_ms);
        while let Some((ts, seq, id)) = self.order.front() {
            if *ts > cutoff {
                break;
            }
            // Only if not re-stored later under the same id.
            if self.ids.get(id) == Some(seq) {
                self.ids.remove(id);
            }
            self.order.pop_front();
        }
    }

    /// Ids currently remembered.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_expires_from_first_store() {
        let mut w = DedupeWindow::new(1000);
        w.insert("a", 1, 10_000, 10_000);
        w.insert("b", 2, 10_500, 10_500);
        w.insert("old", 3, 1_000, 10_500);
        w.insert("", 4, 10_500, 10_500);
        assert_eq!(
            (w.get("a"), w.get("b"), w.get("old"), w.len()),
            (Some(1), Some(2), None, 2)
        );
        w.expire(11_000);
        assert_eq!((w.get("a"), w.get("b")), (None, Some(2)));
        // Re-stored after expiry: the older queue entry must not remove the new one.
        w.insert("b", 9, 11_400, 11_400);
        w.expire(11_600);
        assert_eq!(w.get("b"), Some(9));
        w.expire(12_400);
        assert_eq!(w.len(), 0);
    }
}
