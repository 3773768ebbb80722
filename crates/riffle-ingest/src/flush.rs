//! When a consuming segment ends, and how many rows the next one may hold (PINOT-SPEC §2.5,
//! §2.13). Pure logic, no I/O: the ingestion loop and the commit step call it.
//!
//! End criteria, first one wins:
//! 1. time: `now >= end time`, where the end time is the segment's creation time plus the
//!    flush time, but never sooner than `min(flush time, 10 min)` after the consumer started
//!    (a restart must not seal at once); if nothing was ever fetched the end moves an hour;
//! 2. rows: indexed rows reached the segment's row threshold;
//! 3. end of partition (a closed shard);
//! 4. force commit;
//! 5. the consuming segment is full (memory cap).
//!
//! The row threshold of each new segment: `rows` divided by the partitions a server consumes
//! ("default"), `segment.rows` as is ("fixed"), or size-based autotune learning the
//! rows-per-byte ratio of committed segments ([`Autotune`]).

use rand::Rng;
use riffle_config::FlushConfig;
use serde::{Deserialize, Serialize};

/// Pinot's cap when no row threshold is configured (divided by partitions per server).
pub const DEFAULT_ROWS: u64 = 5_000_000;
/// Autotune: smallest threshold.
pub const MIN_THRESHOLD: u64 = 10_000;
/// Autotune: weight of a new rows/bytes sample.
pub const NEW_RATIO_WEIGHT: f64 = 0.1;
/// Autotune: growth when the previous segment ended on time.
pub const TIME_LIMIT_MULTIPLIER: f64 = 1.1;
/// The restart protection on the time limit.
pub const MIN_TIME_AFTER_START_MS: i64 = 10 * 60 * 1000;
/// How far the end moves when nothing was ever fetched.
pub const IDLE_EXTENSION_MS: i64 = 60 * 60 * 1000;

/// Why a consuming segment ended (Pinot's stop reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// The row threshold was reached.
    #[serde(rename = "rowLimit")]
    RowLimit,
    /// The flush time passed.
    #[serde(rename = "timeLimit")]
    TimeLimit,
    /// The partition closed.
    #[serde(rename = "endOfPartitionGroup")]
    EndOfPartitionGroup,
    /// An operator asked for a commit.
    #[serde(rename = "forceCommitMessageReceived")]
    ForceCommit,
    /// The consuming segment reached its memory cap.
    #[serde(rename = "indexCapacityThresholdBreached")]
    IndexCapacity,
}

impl StopReason {
    /// Pinot's name.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::RowLimit => "rowLimit",
            StopReason::TimeLimit => "timeLimit",
            StopReason::EndOfPartitionGroup => "endOfPartitionGroup",
            StopReason::ForceCommit => "forceCommitMessageReceived",
            StopReason::IndexCapacity => "indexCapacityThresholdBreached",
        }
    }
}

/// The limits of one consuming segment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EndCriteria {
    /// Rows after which the segment ends.
    pub row_threshold: u64,
    /// When the segment ends (epoch ms).
    pub end_time_ms: i64,
    /// Bytes of memory after which the segment ends.
    pub memory_cap_bytes: usize,
}

impl EndCriteria {
    /// Limits for a segment created at `created_ms` whose consumer starts at `start_ms`.
    pub fn new(
        row_threshold: u64,
        flush_time_ms: i64,
        created_ms: i64,
        start_ms: i64,
        memory_cap_bytes: usize,
    ) -> EndCriteria {
        let protected = start_ms + flush_time_ms.min(MIN_TIME_AFTER_START_MS);
        EndCriteria {
            row_threshold: row_threshold.max(1),
            end_time_ms: (created_ms + flush_time_ms).max(protected),
            memory_cap_bytes,
        }
    }

    /// The reason to end now, if any. `fetched_any` is false while no message was ever
    /// fetched (the time limit then moves an hour at a time, as Pinot does).
    pub fn check(
        &mut self,
        rows: u64,
        bytes: usize,
        now_ms: i64,
        fetched_any: bool,
        end_of_partition: bool,
        force_commit: bool,
    ) -> Option<StopReason> {
        if now_ms >= self.end_time_ms {
            if fetched_any {
                return Some(StopReason::TimeLimit);
            }
            self.end_time_ms = now_ms + IDLE_EXTENSION_MS;
        }
        if rows >= self.row_threshold {
            return Some(StopReason::RowLimit);
        }
        if end_of_partition {
            return Some(StopReason::EndOfPartitionGroup);
        }
        if force_commit {
            return Some(StopReason::ForceCommit);
        }
        if bytes >= self.memory_cap_bytes {
            return Some(StopReason::IndexCapacity);
        }
        None
    }
}

/// What autotune learned, kept in the catalog so that it survives restarts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Autotune {
    /// Learned rows per byte of sealed segment, if any sample was taken.
    pub rows_per_byte: Option<f64>,
    /// Rows of the last committed segment.
    pub last_rows: u64,
    /// Bytes of the last committed segment.
    pub last_size: u64,
    /// Row threshold the last committed segment had.
    pub last_threshold: u64,
    /// How long the last committed segment consumed (ms).
    pub last_time_consumed_ms: i64,
}

impl Autotune {
    /// Learns from a committed segment.
    pub fn learn(
        &mut self,
        rows: u64,
        size_bytes: u64,
        threshold: u64,
        time_consumed_ms: i64,
        reason: StopReason,
    ) {
        if rows == 0 || size_bytes == 0 || reason == StopReason::ForceCommit {
            if self.rows_per_byte.is_none() {
                self.last_threshold = threshold;
            }
            return;
        }
        self.last_rows = rows;
        self.last_size = size_bytes;
        self.last_threshold = threshold;
        self.last_time_consumed_ms = time_consumed_ms;
        let r = rows as f64 / size_bytes as f64;
        self.rows_per_byte = Some(match self.rows_per_byte {
            None => r,
            Some(old) => NEW_RATIO_WEIGHT * r + (1.0 - NEW_RATIO_WEIGHT) * old,
        });
    }

    /// The row threshold of the next segment.
    pub fn next_threshold(&self, flush: &FlushConfig, rng: &mut impl Rng) -> u64 {
        let Some(ratio) = self.rows_per_byte else {
            let base = if self.last_threshold > 0 {
                self.last_threshold
            } else {
                flush.autotune_initial_rows
            };
            return base;
        };
        let desired = flush
            .segment_size_bytes
            .filter(|s| *s > 0)
            .unwrap_or(FlushConfig::DEFAULT_TARGET_SIZE) as f64;
        let (rows, size) = (self.last_rows as f64, self.last_size as f64);
        let target = if self.last_rows < self.last_threshold && size < desired {
            // The time limit ended the last segment: grow a little from what it reached.
            let mut n = rows;
            if flush.time_ms < self.last_time_consumed_ms && self.last_time_consumed_ms > 0 {
                n = flush.time_ms as f64 * rows / self.last_time_consumed_ms as f64;
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
        return autotune.next_threshold(flush, rng);
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
        let mut threshold = a.next_threshold(&f, &mut rng);
        let mut sizes = Vec::new();
        for _ in 0..30 {
            // The segment fills to its threshold; its sealed size follows.
            let size = (threshold as f64 * bytes_per_row) as u64;
            sizes.push(size);
            a.learn(threshold, size, threshold, 60_000, StopReason::RowLimit);
            threshold = a.next_threshold(&f, &mut rng);
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
        a.learn(20_000, 3_000_000, 100_000, 3_600_000, StopReason::TimeLimit);
        assert_eq!(a.next_threshold(&f, &mut rng), 22_000);
        // A force commit teaches nothing.
        let before = a.clone();
        a.learn(5, 500, 22_000, 1_000, StopReason::ForceCommit);
        assert_eq!(a, before);
        // Large segments halve.
        a.learn(1_000_000, 400 << 20, 1_000_000, 1_000, StopReason::RowLimit);
        assert_eq!(a.next_threshold(&f, &mut rng), 500_000);
    }

    #[test]
    fn test_end_criteria() {
        let hour = 3_600_000;
        // A restart 5 h 59 m into a 6 h segment still consumes at least 10 minutes.
        let mut c = EndCriteria::new(100, 6 * hour, 0, 6 * hour - 60_000, usize::MAX);
        assert_eq!(c.end_time_ms, 6 * hour - 60_000 + MIN_TIME_AFTER_START_MS);
        assert_eq!(c.check(10, 0, 6 * hour, true, false, false), None);
        assert_eq!(
            c.check(100, 0, 0, true, false, false),
            Some(StopReason::RowLimit)
        );
        assert_eq!(
            c.check(10, 0, c.end_time_ms, true, false, false),
            Some(StopReason::TimeLimit)
        );
        // Nothing fetched yet: the end moves by an hour instead.
        let mut idle = EndCriteria::new(100, 1000, 0, 0, usize::MAX);
        assert_eq!(idle.check(0, 0, 2000, false, false, false), None);
        assert_eq!(idle.end_time_ms, 2000 + IDLE_EXTENSION_MS);
        let mut c = EndCriteria::new(100, hour, 0, 0, 1000);
        assert_eq!(
            c.check(1, 1000, 1, true, false, false),
            Some(StopReason::IndexCapacity)
        );
        assert_eq!(
            c.check(1, 0, 1, true, true, false),
            Some(StopReason::EndOfPartitionGroup)
        );
        assert_eq!(
            c.check(1, 0, 1, true, false, true),
            Some(StopReason::ForceCommit)
        );
    }
}
