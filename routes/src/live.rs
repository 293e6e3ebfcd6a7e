//! The routes in force, replaced whole by a reload.
//!
//! The router takes a snapshot at the start of each batch and routes the
//! whole batch with it, so a reload takes effect between messages: each
//! message is routed by exactly one configuration, never half of each.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::config::Routes;

/// The current routes and how many times they were replaced.
#[derive(Debug, Default)]
pub struct LiveRoutes {
    current: RwLock<Arc<Routes>>,
    generation: AtomicU64,
}

impl LiveRoutes {
    /// Starts with `routes` (generation 0).
    pub fn new(routes: Routes) -> Arc<Self> {
        Arc::new(LiveRoutes {
            current: RwLock::new(Arc::new(routes)),
            generation: AtomicU64::new(0),
        })
    }

    /// The routes in force now.
    pub fn snapshot(&self) -> Arc<Routes> {
        // A poisoned lock still holds a whole Routes: replacing is one assignment.
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `routes` in force; returns the new generation.
    pub fn replace(&self, routes: Routes) -> u64 {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(routes);
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        metrics::gauge!("medbus_routes_generation").set(generation as f64);
        generation
    }

    /// How many reloads took effect.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}
