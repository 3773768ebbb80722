//! What the catalog stores, typed: segment metadata with its commit facts, a table's pause
//! state. Each record is one JSON document; `tests/data/golden_records.json` holds the exact
//! text this version writes, and records written by earlier versions keep loading.

use std::collections::BTreeMap;

use riffle_common::{StreamOffset, TableNameWithType};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Pinot's segment status (`segment.realtime.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SegmentStatus {
    /// Consuming: rows live in memory and are re-read after a crash.
    InProgress,
    /// Sealed and committed.
    Done,
}

impl SegmentStatus {
    /// Pinot's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentStatus::InProgress => "IN_PROGRESS",
            SegmentStatus::Done => "DONE",
        }
    }
}

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
    /// An operator asked for a commit (or a pause).
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

/// What size-based autotune knew after a committed segment (the controller's flush
/// threshold computer learns it; the catalog keeps it so that it survives restarts).
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

/// The facts of a pushed segment (see [`SegmentMeta::pushed`]).
#[derive(Clone, Debug)]
pub struct Pushed {
    /// Segment name.
    pub segment_name: String,
    /// When it was built (epoch ms).
    pub creation_time_ms: i64,
    /// Rows.
    pub total_docs: u64,
    /// CRC32 of the segment file.
    pub crc: u32,
    /// Where servers download it from.
    pub download_url: String,
    /// Segment file size.
    pub size_bytes: u64,
    /// Smallest time value (epoch ms).
    pub start_time_ms: Option<i64>,
    /// Largest time value (epoch ms).
    pub end_time_ms: Option<i64>,
}

/// Metadata of one segment (Pinot's segment ZK metadata).
///
/// The commit facts (`crc` .. `stopReason`) are set when the segment commits. Keys written
/// by a newer version are kept in `extra` and written back unchanged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentMeta {
    /// Segment name.
    pub segment_name: String,
    /// Table name with type.
    pub table_name: TableNameWithType,
    /// Partition id.
    pub partition: u32,
    /// Sequence number within the partition.
    pub sequence: u32,
    /// Status.
    pub status: SegmentStatus,
    /// First offset (inclusive).
    pub start_offset: StreamOffset,
    /// End offset (exclusive), once DONE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_offset: Option<StreamOffset>,
    /// Creation time (epoch ms).
    pub creation_time_ms: i64,
    /// Row threshold chosen for this segment, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_threshold_rows: Option<u64>,
    /// Rows, once DONE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_docs: Option<u64>,
    /// What autotune knew after this segment committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autotune: Option<Autotune>,
    /// When the segment was committed (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_time_ms: Option<i64>,
    /// CRC32 of the sealed file (Pinot's `segment.crc`), stored as a decimal string.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crc_to_text",
        deserialize_with = "crc_from_text"
    )]
    pub crc: Option<u32>,
    /// Where the deep store keeps the file (Pinot's `segment.download.url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// Largest time-column value (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time_ms: Option<i64>,
    /// File size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Smallest time-column value (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time_ms: Option<i64>,
    /// Why the segment ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
    /// When a pushed segment was first pushed (epoch ms; Pinot's `segment.push.time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_time_ms: Option<i64>,
    /// When a pushed segment was last replaced (epoch ms; Pinot's `segment.refresh.time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_time_ms: Option<i64>,
    /// Keys this version does not know, kept as written.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl SegmentMeta {
    /// A new IN_PROGRESS segment.
    pub fn in_progress(
        table: &TableNameWithType,
        segment_name: String,
        partition: u32,
        sequence: u32,
        start: StreamOffset,
        creation_time_ms: i64,
    ) -> SegmentMeta {
        SegmentMeta {
            segment_name,
            table_name: table.clone(),
            partition,
            sequence,
            status: SegmentStatus::InProgress,
            start_offset: start,
            end_offset: None,
            creation_time_ms,
            flush_threshold_rows: None,
            total_docs: None,
            autotune: None,
            commit_time_ms: None,
            crc: None,
            download_url: None,
            end_time_ms: None,
            size_bytes: None,
            start_time_ms: None,
            stop_reason: None,
            push_time_ms: None,
            refresh_time_ms: None,
            extra: BTreeMap::new(),
        }
    }

    /// A segment pushed to an OFFLINE table: committed as it arrives. It has no stream
    /// offsets (partition 0, sequence 0, offset 0 are placeholders).
    pub fn pushed(table: &TableNameWithType, facts: Pushed, now_ms: i64) -> SegmentMeta {
        let mut m = SegmentMeta::in_progress(
            table,
            facts.segment_name,
            0,
            0,
            StreamOffset::Long(0),
            facts.creation_time_ms,
        );
        m.status = SegmentStatus::Done;
        m.total_docs = Some(facts.total_docs);
        m.commit_time_ms = Some(now_ms);
        m.push_time_ms = Some(now_ms);
        m.crc = Some(facts.crc);
        m.download_url = Some(facts.download_url);
        m.size_bytes = Some(facts.size_bytes);
        m.start_time_ms = facts.start_time_ms;
        m.end_time_ms = facts.end_time_ms;
        m
    }

    /// Whether the segment is committed.
    pub fn is_done(&self) -> bool {
        self.status == SegmentStatus::Done
    }
}

fn crc_to_text<S: Serializer>(crc: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match crc {
        Some(c) => s.collect_str(c),
        None => s.serialize_none(),
    }
}

fn crc_from_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Crc {
        Text(String),
        Number(u32),
    }
    match Option::<Crc>::deserialize(d)? {
        None => Ok(None),
        Some(Crc::Number(n)) => Ok(Some(n)),
        Some(Crc::Text(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("crc '{s}' is not a CRC32: {e}"))),
    }
}

/// A table's consumption state (Pinot's pause flag in the ideal state).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableState {
    /// Consumption is paused: no consuming segments until resumed.
    pub paused: bool,
    /// Why (`ADMINISTRATIVE` for an operator's request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    /// The operator's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When the flag last changed (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

impl TableState {
    /// The state an operator's pause or resume sets now.
    pub fn administrative(paused: bool, comment: Option<String>, now_ms: i64) -> TableState {
        TableState {
            paused,
            reason_code: Some("ADMINISTRATIVE".into()),
            comment,
            timestamp: Some(riffle_common::format_pinot_timestamp(now_ms)),
        }
    }
}
