//! What each partition is doing, as the API shows it: a typed state, counters, and the last
//! error with the stage it happened in.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use riffle_common::{now_ms, StreamOffset};
use serde::Serialize;

/// What a partition's loop is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PartitionState {
    /// Starting up.
    Starting,
    /// Reading and indexing.
    Consuming,
    /// A transient error; retrying at the same offset.
    Retrying,
    /// Stopped by an error that needs a person (see `last_error`).
    Error,
    /// Stopped on request.
    Stopped,
    /// Consumption paused (`pauseConsumption`): the consuming segment was committed.
    Paused,
    /// The stream closed the partition (a split or merged shard): its last segment was
    /// committed and nothing more will come.
    Ended,
}

/// Where in the partition's work an error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// Creating the stream consumer or the decoder.
    Connect,
    /// Fetching from the stream.
    Fetch,
    /// The stream deleted offsets before they were read.
    DataLoss,
    /// Decoding a message (malformed input).
    Decode,
    /// Sealing, uploading or committing a segment.
    Commit,
    /// A bug.
    Internal,
}

/// The last error of a partition.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionError {
    /// Where it happened.
    pub stage: Stage,
    /// What happened, naming the offset or segment.
    pub message: String,
    /// Whether the partition retries (true) or stopped (false) because of it.
    pub retrying: bool,
    /// When (epoch ms).
    pub at_ms: i64,
}

impl PartitionError {
    /// An error now.
    pub fn new(stage: Stage, message: impl Into<String>, retrying: bool) -> PartitionError {
        PartitionError {
            stage,
            message: message.into(),
            retrying,
            at_ms: now_ms(),
        }
    }
}

impl std::fmt::Display for PartitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A partition's state, counters and last error.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionStatus {
    /// Partition id.
    pub partition: u32,
    /// Consuming segment.
    pub segment: String,
    /// State.
    pub state: PartitionState,
    /// The next offset to read.
    pub current_offset: StreamOffset,
    /// Messages read since the server started.
    pub messages_read: u64,
    /// Rows indexed since the server started.
    pub rows_indexed: u64,
    /// Messages dropped since the server started because they could not be decoded or
    /// transformed.
    pub decode_errors: u64,
    /// Rows the table's `filterConfig` dropped since the server started (not errors).
    pub rows_filtered: u64,
    /// Offsets the stream deleted before they were read and that were skipped under
    /// `realtime.segment.dataLossPolicy=RESUME_FROM_EARLIEST` (for integer offsets).
    pub offsets_lost: u64,
    /// Segments of this partition committed since the server started.
    pub segments_committed: u64,
    /// The last error, if any.
    pub last_error: Option<PartitionError>,
    /// When the last fetch returned (epoch ms).
    pub last_fetch_ms: i64,
    /// When rows were last indexed (epoch ms).
    pub last_indexed_ms: i64,
}

impl PartitionStatus {
    /// A partition starting at `offset` in `segment`.
    pub fn starting(partition: u32, segment: String, offset: StreamOffset) -> PartitionStatus {
        PartitionStatus {
            partition,
            segment,
            state: PartitionState::Starting,
            current_offset: offset,
            messages_read: 0,
            rows_indexed: 0,
            decode_errors: 0,
            rows_filtered: 0,
            offsets_lost: 0,
            segments_committed: 0,
            last_error: None,
            last_fetch_ms: 0,
            last_indexed_ms: 0,
        }
    }

    /// Whether the partition is consuming (or about to).
    pub fn is_consuming(&self) -> bool {
        matches!(
            self.state,
            PartitionState::Consuming | PartitionState::Starting
        )
    }
}

/// The statuses of a table's partitions.
#[derive(Debug, Default)]
pub struct StatusBoard(Mutex<BTreeMap<u32, PartitionStatus>>);

impl StatusBoard {
    /// Sets a partition's whole status.
    pub fn set(&self, status: PartitionStatus) {
        self.0.lock().insert(status.partition, status);
    }

    /// Changes a partition's status, if it has one.
    pub fn update(&self, partition: u32, f: impl FnOnce(&mut PartitionStatus)) {
        if let Some(s) = self.0.lock().get_mut(&partition) {
            f(s);
        }
    }

    /// Records an error of a partition; a stopping error also sets the state.
    pub fn error(&self, partition: u32, e: PartitionError) {
        self.update(partition, |s| {
            s.state = if e.retrying {
                PartitionState::Retrying
            } else {
                PartitionState::Error
            };
            s.last_error = Some(e);
        });
    }

    /// Every partition's status.
    pub fn all(&self) -> Vec<PartitionStatus> {
        self.0.lock().values().cloned().collect()
    }
}
