//! What the server role asks of the controller about its segments: the
//! [`SegmentCommitter`] trait. The partition loop and its sealer decide nothing about
//! segment names, thresholds or the catalog; they ask through this trait, answered in
//! process today by the controller's segment manager and by a remote call once there are
//! several nodes.

use async_trait::async_trait;
use riffle_catalog::{SegmentMeta, StopReason};
use riffle_common::{BoxError, ClassifyError, ErrorKind, StreamOffset};

/// Facts about a sealed segment file, known once it is written and uploaded.
#[derive(Clone, Debug, PartialEq)]
pub struct SealedFacts {
    /// CRC32 of the file.
    pub crc: u32,
    /// Where the deep store keeps it.
    pub download_url: String,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Smallest time-column value (epoch ms).
    pub start_time_ms: Option<i64>,
    /// Largest time-column value (epoch ms).
    pub end_time_ms: Option<i64>,
}

/// A consuming segment that ended, sealed and uploaded, to commit.
#[derive(Clone, Debug)]
pub struct SegmentCommit {
    /// The segment as it was consumed (IN_PROGRESS).
    pub segment: SegmentMeta,
    /// Where it ends (exclusive): the next segment starts here.
    pub end_offset: StreamOffset,
    /// Rows it holds.
    pub rows: u64,
    /// The sealed file; `None` for a segment without rows (no file is written).
    pub sealed: Option<SealedFacts>,
    /// Why it ended.
    pub reason: StopReason,
    /// How long it consumed (ms).
    pub consumed_ms: i64,
    /// The row threshold it had.
    pub threshold: u64,
    /// The segment consumption went on in ([`SegmentCommitter::next_segment`]); `None` when
    /// the partition stops (a pause, a closed partition).
    pub next: Option<SegmentMeta>,
    /// The segment's dead letters (a JSON array of [`crate::dead_letter::DeadLetter`]), to
    /// commit in the same transaction; `None` when the table keeps none or there are none.
    pub dead_letters: Option<String>,
}

/// What the controller decided when it committed a segment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommitOutcome {
    /// The row threshold of the next segment, chosen from what this commit taught autotune.
    pub next_threshold: Option<u64>,
}

/// The controller could not plan or commit a segment.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CommitError {
    /// The kind of failure: it decides whether the sealer retries.
    pub kind: ErrorKind,
    /// What went wrong.
    pub message: String,
    /// The cause.
    #[source]
    pub source: Option<BoxError>,
}

impl CommitError {
    /// From any classified error, keeping its kind and the error as the source.
    pub fn of<E>(e: E) -> CommitError
    where
        E: ClassifyError + std::error::Error + Send + Sync + 'static,
    {
        CommitError {
            kind: e.error_kind(),
            message: riffle_common::chain(&e),
            source: Some(Box::new(e)),
        }
    }
}

impl ClassifyError for CommitError {
    fn error_kind(&self) -> ErrorKind {
        self.kind
    }
}

/// The controller's side of the segment protocol, as the server role sees it.
#[async_trait]
pub trait SegmentCommitter: Send + Sync + 'static {
    /// The segment that follows `ended`, which ends at `end`: its name, sequence, start,
    /// creation time and row threshold. Nothing is written: the segment is recorded by the
    /// commit of `ended`, in the same transaction.
    async fn next_segment(
        &self,
        ended: &SegmentMeta,
        end: &StreamOffset,
    ) -> Result<SegmentMeta, CommitError>;

    /// Commits a sealed and uploaded segment, and the segment consumption went on in, in
    /// one catalog transaction. Refused (a permanent error) unless the segment is still the
    /// partition's consuming one.
    async fn commit(&self, commit: SegmentCommit) -> Result<CommitOutcome, CommitError>;
}
