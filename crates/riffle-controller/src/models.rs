//! What the controller answers, typed: the HTTP layer serialises these in Pinot's shapes.

use riffle_common::StreamOffset;
use riffle_ingest::{PartitionError, PartitionState};
use serde::Serialize;

/// Pinot's pause status (`pauseConsumption`, `resumeConsumption`, `pauseStatus`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PauseStatus {
    /// Consumption is paused.
    pub pause_flag: bool,
    /// Segments still consuming (while a pause commits them, or after a resume).
    pub consuming_segments: Vec<String>,
    /// Why the flag last changed.
    pub reason_code: Option<String>,
    /// The operator's comment.
    pub comment: Option<String>,
    /// When the flag last changed.
    pub timestamp: Option<String>,
    /// Streams paused on their own (always empty: topics are paused with the table).
    pub index_of_inactive_topics: Vec<u32>,
}

/// A force-commit request.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForceCommitJob {
    /// Job id.
    pub job_id: String,
    /// Table name with type.
    pub table_name: String,
    /// When it was asked (epoch ms).
    pub submission_time_ms: i64,
    /// The consuming segments it commits.
    pub segments: Vec<String>,
}

/// Where consumption from a paused table resumes (`consumeFrom`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumeFrom {
    /// Where each partition's last committed segment ended (the default).
    LastConsumed,
    /// The first offset the stream still has.
    Smallest,
    /// The end of the stream.
    Largest,
}

impl ConsumeFrom {
    /// `lastConsumed`, `smallest` or `largest`, in any case.
    pub fn parse(s: &str) -> Option<ConsumeFrom> {
        [
            ("lastConsumed", ConsumeFrom::LastConsumed),
            ("smallest", ConsumeFrom::Smallest),
            ("largest", ConsumeFrom::Largest),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|(_, c)| c)
    }
}

/// One consuming segment, its partition's state and its lag (Pinot's
/// `consumingSegmentsInfo`, plus Riffle's partition state and last error).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumingInfo {
    /// The consuming segment.
    pub segment: String,
    /// Its partition.
    pub partition: u32,
    /// Whether the partition is consuming (or starting).
    pub consuming: bool,
    /// The partition's loop state, if it runs on this server.
    pub state: Option<PartitionState>,
    /// The next offset to read.
    pub current_offset: StreamOffset,
    /// The stream's latest offset, if the stream answered.
    pub latest_offset: Option<StreamOffset>,
    /// Records between the two, for streams whose offsets count records.
    pub records_lag: Option<u64>,
    /// How long the newest indexed row has waited for what follows it (0 when caught up).
    pub availability_lag_ms: Option<i64>,
    /// When rows were last indexed (epoch ms, 0 if never).
    pub last_indexed_ms: i64,
    /// The partition's last error.
    pub last_error: Option<PartitionError>,
    /// Malformed messages dropped since the server started.
    pub decode_errors: u64,
    /// Rows the table's filter dropped since the server started.
    pub rows_filtered: u64,
    /// Offsets skipped under `RESUME_FROM_EARLIEST`.
    pub offsets_lost: u64,
}
