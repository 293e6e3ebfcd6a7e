//! The memory all associations of one SCP may hold in data sets being
//! received. Each association buffers a C-STORE's data set whole before it is
//! stored (the file is written atomically from it), so without a shared
//! bound 32 associations × a 512 MiB data set could ask for 16 GiB. A data set
//! that would take the budget over its limit is read to its end without being
//! kept and answered "out of resources" (0xA700): the sender retries later,
//! and no association waits on another (waiting could deadlock when every
//! association holds part of the budget).
//!
//! It counts the bytes received, not the buffers' capacity: a buffer starts at
//! 1 MiB and doubles as it grows, so the memory really held can be up to about
//! twice the budget (untouched capacity costs address space only).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes in flight across the associations of one SCP, under a limit.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes (at least 1).
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit: limit.max(1),
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// An empty reservation, grown as fragments arrive.
    pub fn reservation(self: &Arc<Self>) -> Reservation {
        Reservation {
            budget: self.clone(),
            bytes: 0,
        }
    }

    fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Part of a [`MemoryBudget`] held by one data set; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl Reservation {
    /// Takes `n` more bytes; false (and nothing taken) when the budget has not got them.
    pub fn grow(&mut self, n: usize) -> bool {
        if self.budget.try_take(n) {
            self.bytes += n;
            true
        } else {
            false
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_limit_and_give_back_on_drop() {
        let budget = MemoryBudget::new(100);
        let mut a = budget.reservation();
        let mut b = budget.reservation();
        assert!(a.grow(60));
        assert!(!b.grow(41), "over the limit");
        assert_eq!(b.bytes(), 0, "a refused growth takes nothing");
        assert!(b.grow(40));
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        assert!(b.grow(60));
        drop(b);
        assert_eq!(budget.used(), 0);
    }
}
