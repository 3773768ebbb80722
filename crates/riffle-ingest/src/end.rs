//! When a consuming segment ends (PINOT-SPEC §2.5). Pure logic, no I/O: the partition loop
//! checks it after every fetch. (How many rows the next segment may hold is the
//! controller's decision.)
//!
//! End criteria, first one wins:
//! 1. time: `now >= end time`, where the end time is the segment's creation time plus the
//!    flush time, but never sooner than `min(flush time, 10 min)` after the consumer started
//!    (a restart must not seal at once); if nothing was ever fetched the end moves an hour;
//! 2. rows: indexed rows reached the segment's row threshold;
//! 3. end of partition (a closed shard);
//! 4. force commit;
//! 5. the consuming segment is full (memory cap).

use riffle_catalog::StopReason;

/// The restart protection on the time limit.
pub const MIN_TIME_AFTER_START_MS: i64 = 10 * 60 * 1000;
/// How far the end moves when nothing was ever fetched.
pub const IDLE_EXTENSION_MS: i64 = 60 * 60 * 1000;

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

#[cfg(test)]
mod tests {
    use super::*;

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
