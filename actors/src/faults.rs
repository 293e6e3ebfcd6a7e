//! A switch tests use to make a service panic while handling an event, to
//! prove that the supervisor restarts it and that nothing is lost or doubled.
//! Production code never sets it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Panics to inject, shared between a test and a service.
#[derive(Debug, Clone, Default)]
pub struct FaultInjector(Arc<AtomicU32>);

impl FaultInjector {
    /// The next `n` events handled panic.
    pub fn inject_panics(&self, n: u32) {
        self.0.store(n, Ordering::SeqCst);
    }

    /// Panics once per injected fault; does nothing otherwise.
    pub fn maybe_panic(&self, service: &str) {
        let taken = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if taken {
            panic!("injected fault in {service}");
        }
    }

    /// Faults still to fire.
    pub fn pending(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}
