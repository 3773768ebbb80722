//! How many rows the next consuming segment may hold (PINOT-SPEC §2.13): the controller's
//! flush-threshold decision, made when a segment is created.
//!
//! The row threshold of each new segment: `rows` divided by the partitions a server consumes
//! ("default"), `segment.rows` as is ("fixed"), or size-based autotune learning the
//! rows-per-byte ratio of committed segments ([`learn`], [`next_threshold`]); what autotune
//! knows is kept with each committed segment in the catalog ([`Autotune`]).

use rand::Rng;
use riffle_catalog::{Autotune, StopReason};
use riffle_config::FlushConfig;

/// Pinot's cap when no row threshold is configured (divided by partitions per server).
pub const DEFAULT_ROWS: u64 = 5_000_000;
/// Autotune: smallest threshold.
pub const MIN_THRESHOLD: u64 = 10_000;
/// Autotune: weight of a new rows/bytes sample.
pub const NEW_RATIO_WEIGHT: f64 = 0.1;
/// Autotune: growth when the previous segment ended on time.
pub const TIME_LIMIT_MULTIPLIER: f64 = 1.1;

/// Learns from a committed segment.
pub fn learn(
    a: &mut Autotune,
    rows: u64,
    size_bytes: u64,
    threshold: u64,
    time_consumed_ms: i64,
    reason: StopReason,
) {
    if rows == 0 || size_bytes == 0 || reason == StopReason::ForceCommit {
        if a.rows_per_byte.is_none() {
            a.last_threshold = threshold;
        }
        return;
    }
    a.last_rows = rows;
    a.last_size = size_bytes;
    a.last_threshold = threshold;
    a.last_time_consumed_ms = time_consumed_ms;
    let r = rows as f64 / size_bytes as f64;
    a.rows_per_byte = Some(match a.rows_per_byte {
        None => r,
        Some(old) => NEW_RATIO_WEIGHT * r + (1.0 - NEW_RATIO_WEIGHT) * old,
    });
}

/// The row threshold of the next segment under autotune.
pub fn next_threshold(a: &Autotune, flush: &FlushConfig, rng: &mut impl Rng) -> u64 {
    let Some(ratio) = a.rows_per_byte else {
        let base = if a.last_threshold > 0 {
            a.last_threshold
        } else {
            flush.autotune_initial_rows
        };
        return base;
    };
    let desired = flush
        .segment_size_bytes
        .filter(|s| *s > 0)
        .unwrap_or(FlushConfig::DEFAULT_TARGET_SIZE) as f64;
    let (rows, size) = (a.last_rows as f64, a.last_size as f64);
    let target = if a.last_rows < a.last_threshold && size < desired {
        // The time limit ended the last segment: grow a little from what it reached.
        let mut n = rows;
        if flush.time_ms < a.last_time_consumed_ms && a.last_time_consumed_ms > 0 {
            n = flush.time_ms as f64 * rows / a.last_time_consumed_ms as f64;
        }
        n * TIME_LIMIT_MULTIPLIER
    } else if size < desired / 2.0 {
        rows * 1.5
    } else if size > desired * 1.5 {
        rows / 2.0
    } else {
        desired * ratio
    };
    let v = flush.variance_fraction;
    let factor = if v > 0.0 {
        rng.random_range((1.0 - v)..=(1.0 + v))
    } else {
        1.0
    };
    (target * factor).clamp(MIN_THRESHOLD as f64, i32::MAX as f64) as u64
}

/// The row threshold of a new segment under `flush`, for a server consuming
/// `partitions_per_server` partitions of the table.
pub fn row_threshold(
    flush: &FlushConfig,
    partitions_per_server: u32,
    autotune: &Autotune,
    rng: &mut impl Rng,
) -> u64 {
    let parts = partitions_per_server.max(1) as u64;
    if let Some(rows) = flush.rows.filter(|r| *r > 0) {
        return (rows / parts).max(1);
    }
    if let Some(rows) = flush.segment_rows.filter(|r| *r > 0) {
        return rows;
    }
    if flush.rows == Some(0) || flush.segment_size_bytes.is_some_and(|s| s > 0) {
        return next_threshold(autotune, flush, rng);
    }
    (DEFAULT_ROWS / parts).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flush(rows: Option<u64>, seg_rows: Option<u64>, size: Option<u64>) -> FlushConfig {
        FlushConfig {
            rows,
            segment_rows: seg_rows,
            time_ms: 6 * 3_600_000,
            segment_size_bytes: size,
            autotune_initial_rows: 100_000,
            variance_fraction: 0.0,
        }
    }

    #[test]
    fn test_threshold_selection() {
        let mut rng = rand::rng();
        let a = Autotune::default();
        assert_eq!(
            row_threshold(&flush(Some(50_000), None, None), 4, &a, &mut rng),
            12_500
        );
        assert_eq!(
            row_threshold(&flush(None, Some(7_000), None), 4, &a, &mut rng),
            7_000
        );
        assert_eq!(
            row_threshold(&flush(None, None, None), 2, &a, &mut rng),
            2_500_000
        );
        // Autotune with no history starts at the initial rows.
        assert_eq!(
            row_threshold(&flush(Some(0), None, None), 2, &a, &mut rng),
            100_000
        );
        assert_eq!(
            row_threshold(&flush(None, None, Some(1 << 20)), 2, &a, &mut rng),
            100_000
        );
    }

    #[test]
    fn test_autotune_converges_to_target_size() {
        let mut rng = rand::rng();
        let target = 10u64 << 20; // 10 MiB
        let f = flush(None, None, Some(target));
        let bytes_per_row = 150.0;
        let mut a = Autotune::default();
        let mut threshold = next_threshold(&a, &f, &mut rng);
        let mut sizes = Vec::new();
        for _ in 0..30 {
            // The segment fills to its threshold; its sealed size follows.
            let size = (threshold as f64 * bytes_per_row) as u64;
            sizes.push(size);
            learn(
                &mut a,
                threshold,
                size,
                threshold,
                60_000,
                StopReason::RowLimit,
            );
            threshold = next_threshold(&a, &f, &mut rng);
        }
        let last = *sizes.last().unwrap() as f64;
        assert!(
            (last - target as f64).abs() / (target as f64) < 0.1,
            "sizes {sizes:?} do not approach {target}"
        );
        assert!(threshold >= MIN_THRESHOLD);
    }

    #[test]
    fn test_autotune_time_limit_and_force_commit() {
        let mut rng = rand::rng();
        let f = flush(None, None, Some(200 << 20));
        let mut a = Autotune::default();
        // A segment that ended on time with few rows: grow by 10%.
        learn(
            &mut a,
            20_000,
            3_000_000,
            100_000,
            3_600_000,
            StopReason::TimeLimit,
        );
        assert_eq!(next_threshold(&a, &f, &mut rng), 22_000);
        // A force commit teaches nothing.
        let before = a.clone();
        learn(&mut a, 5, 500, 22_000, 1_000, StopReason::ForceCommit);
        assert_eq!(a, before);
        // Large segments halve.
        learn(
            &mut a,
            1_000_000,
            400 << 20,
            1_000_000,
            1_000,
            StopReason::RowLimit,
        );
        assert_eq!(next_threshold(&a, &f, &mut rng), 500_000);
    }
}
