//! A token bucket shared by all connections, so `--rate` is the total across them.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Hands out permits at `rate` per second with a small burst allowance. Waiters reserve
/// their token before sleeping (the balance may go negative), so they are served in the
/// order they asked and the long-run rate holds however many connections share it.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// `rate` permits per second (must be > 0); up to `burst` may be taken at once after a pause.
    pub fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate,
            burst,
            state: Mutex::new(State {
                tokens: burst,
                last: Instant::now(),
            }),
        }
    }

    /// How long the caller must wait for its permit (zero when one is in the bucket).
    fn reserve(&self) -> Duration {
        // A poisoned lock only means another connection panicked mid-update; the numbers
        // are still usable, and a load generator should carry on.
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(s.last).as_secs_f64() * self.rate;
        s.tokens = (s.tokens + refill).min(self.burst);
        s.last = now;
        s.tokens -= 1.0;
        if s.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-s.tokens / self.rate)
        }
    }

    /// Waits for one permit.
    pub async fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn holds_the_rate_across_tasks() {
        let bucket = std::sync::Arc::new(TokenBucket::new(100.0, 1));
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let b = bucket.clone();
                tokio::spawn(async move {
                    for _ in 0..50 {
                        b.acquire().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // 200 permits at 100/s with one in the bucket at the start: 1.99 s.
        let took = start.elapsed().as_secs_f64();
        assert!((1.9..2.1).contains(&took), "{took}");
    }
}
