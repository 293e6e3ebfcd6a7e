//! ACK latency samples and their percentiles. Every sample is kept (8 bytes each, and runs
//! are bounded in count), so percentiles are exact rather than bucketed.

use std::time::Duration;

/// Latency samples, in nanoseconds.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    samples: Vec<u64>,
}

/// Percentiles of a set of samples, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
}

impl Latencies {
    /// Adds one sample.
    pub fn record(&mut self, d: Duration) {
        self.samples.push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds all of `other`'s samples.
    pub fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Percentiles by nearest rank (the smallest sample with at least p of them at or below it).
    pub fn summary(&mut self) -> LatencySummary {
        let n = self.samples.len();
        if n == 0 {
            return LatencySummary::default();
        }
        self.samples.sort_unstable();
        let ms = |ns: u64| ns as f64 / 1e6;
        let at = |p: f64| ms(self.samples[((p * n as f64).ceil() as usize).clamp(1, n) - 1]);
        let sum: u128 = self.samples.iter().map(|s| u128::from(*s)).sum();
        LatencySummary {
            count: n as u64,
            mean_ms: sum as f64 / n as f64 / 1e6,
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: ms(self.samples[n - 1]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut l = Latencies::default();
        for ms in (1..=100).rev() {
            l.record(Duration::from_millis(ms));
        }
        let s = l.summary();
        assert_eq!(
            (s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms),
            (100, 50.0, 90.0, 99.0, 100.0)
        );
        assert!((s.mean_ms - 50.5).abs() < 1e-9);
        assert_eq!(Latencies::default().summary(), LatencySummary::default());
    }
}
