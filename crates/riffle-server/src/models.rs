//! The controller API's request and response bodies, typed, in Pinot's shapes (PINOT-SPEC
//! §6.1). Field order is the JSON key order.

use std::collections::BTreeMap;

use riffle_catalog::{Autotune, SegmentMeta};
use riffle_common::TableType;
use riffle_controller::{ConsumingInfo, ForceCommitJob};
use riffle_ingest::{PartitionState, Stage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `?type=offline|realtime` (any case): the table types a request is about.
#[derive(Debug, Default, Deserialize)]
pub struct TypeParam {
    /// The type asked for, if any.
    #[serde(rename = "type")]
    pub table_type: Option<String>,
}

impl TypeParam {
    /// The type asked for; an unknown one is ignored, as Pinot does.
    pub fn get(&self) -> Option<TableType> {
        self.table_type.as_deref().and_then(TableType::parse)
    }
}

/// `POST /schemas?override=...`.
#[derive(Debug, Default, Deserialize)]
pub struct SchemaParams {
    /// Replace a schema of the same name (`true` by default, any case).
    #[serde(rename = "override")]
    pub overwrite: Option<String>,
}

impl SchemaParams {
    /// Whether an existing schema is replaced.
    pub fn overwrite(&self) -> bool {
        self.overwrite
            .as_deref()
            .is_none_or(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// `pauseConsumption?comment=...`.
#[derive(Debug, Default, Deserialize)]
pub struct PauseParams {
    /// The operator's comment.
    pub comment: Option<String>,
}

/// `resumeConsumption?consumeFrom=...&comment=...`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeParams {
    /// `lastConsumed` (default), `smallest` or `largest`.
    pub consume_from: Option<String>,
    /// The operator's comment.
    pub comment: Option<String>,
}

/// `forceCommit?partitions=0,1` or `?segments=a,b` (comma-separated).
#[derive(Debug, Default, Deserialize)]
pub struct ForceCommitParams {
    /// Partitions whose consuming segment commits.
    pub partitions: Option<String>,
    /// Consuming segments to commit.
    pub segments: Option<String>,
}

/// The items of a comma-separated parameter.
pub fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

/// `{"unrecognizedProperties": ..., "status": ..., "warnings"?: [...]}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    /// Keys Pinot would not recognise, by JSON path (absent when not applicable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unrecognized_properties: Option<Map<String, Value>>,
    /// What happened.
    pub status: String,
    /// Keys accepted but not honoured.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl StatusResponse {
    /// A bare status.
    pub fn status(status: impl Into<String>) -> StatusResponse {
        StatusResponse {
            unrecognized_properties: None,
            status: status.into(),
            warnings: Vec::new(),
        }
    }

    /// A status with the keys Pinot would not recognise.
    pub fn with_unrecognized(
        status: impl Into<String>,
        keys: BTreeMap<String, Value>,
    ) -> StatusResponse {
        StatusResponse {
            unrecognized_properties: Some(keys.into_iter().collect()),
            status: status.into(),
            warnings: Vec::new(),
        }
    }
}

/// `GET /tables`.
#[derive(Debug, Serialize)]
pub struct TablesResponse {
    /// Table names.
    pub tables: Vec<String>,
}

/// `POST /tables/{t}/forceCommit`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForceCommitResponse {
    /// Always `SUCCESS` once the request is taken.
    pub force_commit_status: &'static str,
    /// Always `SUCCESS` (the job is kept in memory).
    #[serde(rename = "jobMetaZKWriteStatus")]
    pub job_meta_zk_write_status: &'static str,
    /// The job to follow.
    pub force_commit_job_id: String,
}

/// `GET /tables/forceCommitStatus/{job}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForceCommitStatusResponse {
    /// Job id.
    pub job_id: String,
    /// Table name with type.
    pub table_name: String,
    /// `FORCE_COMMIT`.
    pub job_type: &'static str,
    /// When it was asked (epoch ms, as a string as Pinot writes it).
    pub submission_time_ms: String,
    /// The segments it commits.
    pub segments_force_committed: Vec<String>,
    /// How many still consume.
    pub number_of_segments_yet_to_be_committed: usize,
    /// Which.
    pub segments_yet_to_be_committed: Vec<String>,
}

impl ForceCommitStatusResponse {
    /// The status of `job`, with the segments it still waits for.
    pub fn new(job: ForceCommitJob, waiting: Vec<String>) -> ForceCommitStatusResponse {
        ForceCommitStatusResponse {
            job_id: job.job_id,
            table_name: job.table_name,
            job_type: "FORCE_COMMIT",
            submission_time_ms: job.submission_time_ms.to_string(),
            segments_force_committed: job.segments,
            number_of_segments_yet_to_be_committed: waiting.len(),
            segments_yet_to_be_committed: waiting,
        }
    }
}

/// `GET /tables/{t}/consumingSegmentsInfo`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumingSegmentsInfo {
    /// Always 0 (one node).
    pub servers_failing_to_respond: u32,
    /// Always 0.
    pub servers_unparsable_respond: u32,
    /// Per consuming segment, one entry per server.
    #[serde(rename = "_segmentToConsumingInfoMap")]
    pub segment_to_consuming_info_map: BTreeMap<String, Vec<ConsumerInfo>>,
}

/// One server's view of a consuming segment.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerInfo {
    /// The server.
    pub server_name: String,
    /// `CONSUMING` or `NOT_CONSUMING`.
    pub consumer_state: &'static str,
    /// When rows were last indexed (epoch ms).
    pub last_consumed_timestamp: i64,
    /// partition -> current offset.
    pub partition_to_offset_map: BTreeMap<String, String>,
    /// Offsets and lag.
    pub partition_offset_info: PartitionOffsetInfo,
    /// The partition loop's state.
    pub riffle_state: Option<PartitionState>,
    /// Its last error.
    pub riffle_last_error: Option<String>,
    /// Where the last error happened.
    pub riffle_error_stage: Option<Stage>,
    /// Malformed messages dropped.
    pub riffle_decode_errors: u64,
    /// Rows the table's filter dropped.
    pub riffle_rows_filtered: u64,
    /// Offsets skipped under `RESUME_FROM_EARLIEST`.
    pub riffle_offsets_lost: u64,
}

/// Pinot's `partitionOffsetInfo`: each map is keyed by partition, empty when unknown.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionOffsetInfo {
    /// The next offset to read.
    pub current_offsets_map: BTreeMap<String, String>,
    /// The stream's latest offset.
    pub latest_upstream_offset_map: BTreeMap<String, String>,
    /// Records behind.
    pub records_lag_map: BTreeMap<String, String>,
    /// Milliseconds behind.
    pub availability_lag_ms_map: BTreeMap<String, String>,
}

impl ConsumerInfo {
    /// From the controller's view of a consuming segment.
    pub fn new(server_name: &str, c: &ConsumingInfo) -> ConsumerInfo {
        let p = c.partition.to_string();
        let one = |v: Option<String>| -> BTreeMap<String, String> {
            v.map(|v| BTreeMap::from([(p.clone(), v)]))
                .unwrap_or_default()
        };
        let current = c.current_offset.to_string();
        ConsumerInfo {
            server_name: server_name.to_string(),
            consumer_state: if c.consuming {
                "CONSUMING"
            } else {
                "NOT_CONSUMING"
            },
            last_consumed_timestamp: c.last_indexed_ms,
            partition_to_offset_map: one(Some(current.clone())),
            partition_offset_info: PartitionOffsetInfo {
                current_offsets_map: one(Some(current)),
                latest_upstream_offset_map: one(c.latest_offset.as_ref().map(|o| o.to_string())),
                records_lag_map: one(c.records_lag.map(|l| l.to_string())),
                availability_lag_ms_map: one(c.availability_lag_ms.map(|l| l.to_string())),
            },
            riffle_state: c.state,
            riffle_last_error: c.last_error.as_ref().map(|e| e.message.clone()),
            riffle_error_stage: c.last_error.as_ref().map(|e| e.stage),
            riffle_decode_errors: c.decode_errors,
            riffle_rows_filtered: c.rows_filtered,
            riffle_offsets_lost: c.offsets_lost,
        }
    }
}

/// `GET /segments/{t}/{s}/metadata`: what the catalog records and, for a loaded sealed
/// segment, its columns.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentMetadata {
    /// Segment name.
    pub segment_name: String,
    /// Table name with type.
    pub table_name: String,
    /// `IN_PROGRESS` or `DONE`.
    pub status: &'static str,
    /// Partition.
    pub partition_id: u32,
    /// Sequence within the partition.
    pub sequence_number: u32,
    /// First offset.
    pub start_offset: String,
    /// End offset (exclusive), once committed.
    pub end_offset: Option<String>,
    /// Creation time (epoch ms).
    pub creation_time_millis: i64,
    /// Rows (for a consuming segment: the rows it holds now).
    pub total_docs: Option<u64>,
    /// Its row threshold.
    pub flush_threshold_rows: Option<u64>,
    /// What autotune knew after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autotune: Option<Autotune>,
    /// When it committed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_time_ms: Option<i64>,
    /// CRC32 of the file, as a decimal string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crc: Option<String>,
    /// The deep store's copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// Largest time value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time_ms: Option<i64>,
    /// File size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Smallest time value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time_ms: Option<i64>,
    /// Why it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<&'static str>,
    /// Keys of a newer version.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
    /// Why this server could not load it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub riffle_load_error: Option<String>,
    /// The file's format version (a loaded sealed segment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format_version: Option<Value>,
    /// Its columns (a loaded sealed segment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<Value>,
}

impl SegmentMetadata {
    /// The catalog's part.
    pub fn new(m: SegmentMeta) -> SegmentMetadata {
        SegmentMetadata {
            segment_name: m.segment_name,
            table_name: m.table_name.to_string(),
            status: m.status.as_str(),
            partition_id: m.partition,
            sequence_number: m.sequence,
            start_offset: m.start_offset.to_string(),
            end_offset: m.end_offset.map(|o| o.to_string()),
            creation_time_millis: m.creation_time_ms,
            total_docs: m.total_docs,
            flush_threshold_rows: m.flush_threshold_rows,
            autotune: m.autotune,
            commit_time_ms: m.commit_time_ms,
            crc: m.crc.map(|c| c.to_string()),
            download_url: m.download_url,
            end_time_ms: m.end_time_ms,
            size_bytes: m.size_bytes,
            start_time_ms: m.start_time_ms,
            stop_reason: m.stop_reason.map(|r| r.as_str()),
            extra: m.extra,
            riffle_load_error: None,
            format_version: None,
            columns: None,
        }
    }
}
