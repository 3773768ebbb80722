//! What the engine has answered since the server started: queries, errors by Pinot error
//! code, and a latency histogram, for the server's metrics endpoint.
//!
//! Invariants: every answered query is counted exactly once, in `queries` and in one
//! latency bucket; an answer with an exception also counts once under its first error's
//! code. Counters only grow.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// Upper bounds of the latency buckets, in seconds (Prometheus' cumulative `le`).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The engine's counters.
#[derive(Debug, Default)]
pub struct QueryCounters {
    queries: AtomicU64,
    /// Per bucket of [`LATENCY_BUCKETS`] (non-cumulative), then the overflow.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_micros: AtomicU64,
    errors: Mutex<BTreeMap<i32, u64>>,
}

/// A snapshot of [`QueryCounters`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryCountersSnapshot {
    /// Queries answered.
    pub queries: u64,
    /// Queries answered with an error, by Pinot error code.
    pub errors: BTreeMap<i32, u64>,
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS`], then the total (`+Inf`).
    pub latency_cumulative: Vec<u64>,
    /// Sum of the latencies, seconds.
    pub latency_sum_secs: f64,
}

impl QueryCounters {
    /// Counts one answered query.
    pub fn record(&self, took: Duration, error_code: Option<i32>) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.latency_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if let Some(code) = error_code {
            *self.errors.lock().entry(code).or_insert(0) += 1;
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> QueryCountersSnapshot {
        let mut running = 0;
        let latency_cumulative = self
            .buckets
            .iter()
            .map(|b| {
                running += b.load(Ordering::Relaxed);
                running
            })
            .collect();
        QueryCountersSnapshot {
            queries: self.queries.load(Ordering::Relaxed),
            errors: self.errors.lock().clone(),
            latency_cumulative,
            latency_sum_secs: self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_errors_counted_by_code() {
        let c = QueryCounters::default();
        c.record(Duration::from_micros(500), None);
        c.record(Duration::from_millis(30), Some(150));
        c.record(Duration::from_secs(60), Some(250));
        c.record(Duration::from_millis(40), Some(150));
        let s = c.snapshot();
        assert_eq!(s.queries, 4);
        assert_eq!(s.errors, BTreeMap::from([(150, 2), (250, 1)]));
        // <=1ms: 1; <=50ms: 3; +Inf: 4.
        assert_eq!(s.latency_cumulative[0], 1);
        assert_eq!(s.latency_cumulative[4], 3);
        assert_eq!(s.latency_cumulative[LATENCY_BUCKETS.len()], 4);
        assert!((s.latency_sum_secs - 60.0705).abs() < 1e-6);
    }
}
