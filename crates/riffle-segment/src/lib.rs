//! Segments: where a table's rows live.
//!
//! Owns:
//! - [`TableColumns`]: the table's columns and their Arrow types (see [`columns`]).
//! - [`BlockBuilder`]: column builders that decoders write into directly, with rollback of
//!   a half-decoded row; a column that records nulls (`Column::nullable`) gets an Arrow
//!   null where the message had no value, over the default value (so a reader without
//!   null handling can drop the nulls and see Pinot's defaults).
//! - [`ConsumingSegment`]: the in-memory segment a partition appends to; readers see a
//!   consistent prefix (whole fetched batches) together with the offset it ends at.
//! - [`SegmentRegistry`] / [`TableData`]: the segments of every table, as queries see them.
//! - [`sealed`]: sealed (immutable, on-disk) segments (their [`SealOptions`] come from the
//!   config's merged `IndexConfig`): [`write_segment`] seals rows into one
//!   checked, versioned file (dictionaries, forward indexes, min/max, null bitmaps, sorted /
//!   inverted / range / bloom indexes; layout in `docs/segment-format.md`) and
//!   [`SealedSegment`] opens it (mmap or heap), prunes, filters with its indexes and reads
//!   rows back as Arrow batches.
//!
//! - [`tarball`]: segment tars (`<segment>.tar.gz`, Pinot's layout with Riffle's file inside)
//!   for upload, download and push jobs; metadata-only tars for metadata push.
//!
//! [`SegmentRef`] is the one type queries iterate over: consuming or sealed.
//!
//! Invariants: a reader never sees half a row or rows without the offset that follows them;
//! a segment name is unique within its table.

pub mod builder;
pub mod columns;
pub mod consuming;
pub mod registry;
pub mod sealed;
pub mod tarball;

use riffle_common::{ClassifyError, ErrorKind};

pub use builder::{BlockBuilder, ExtraValues, Values};
pub use columns::{fill_nulls, widen, Physical, TableColumns, PINOT_TYPE_KEY};
pub use consuming::{ConsumingSegment, ConsumingSnapshot};
pub use registry::{SegmentRef, SegmentRegistry, TableData};
pub use sealed::{
    write_segment, ColumnInfo, Literal, LoadMode, Predicate, SealOptions, SealedFile,
    SealedSegment, SegmentInfo, Selection, TopDocs, FORMAT_VERSION,
};

/// A segment failure.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// A segment file is truncated, corrupted or of an unknown format version.
    #[error("segment '{segment}' is corrupt: {reason}")]
    Corrupt {
        /// Segment name.
        segment: String,
        /// What is wrong, with the file path.
        reason: String,
    },
    /// Reading or writing a segment file failed.
    #[error("segment '{segment}': {reason}")]
    Io {
        /// Segment name.
        segment: String,
        /// What failed, with the file path.
        reason: String,
    },
    /// An unexpected failure building or reading a segment.
    #[error("{0}")]
    Internal(String),
}

impl SegmentError {
    /// An internal error.
    pub fn internal(msg: impl Into<String>) -> SegmentError {
        SegmentError::Internal(msg.into())
    }
}

impl ClassifyError for SegmentError {
    fn error_kind(&self) -> ErrorKind {
        match self {
            // A disk that is full or refuses a write may be fixed: retried.
            SegmentError::Io { .. } => ErrorKind::Io,
            SegmentError::Corrupt { .. } => ErrorKind::Corrupt,
            SegmentError::Internal(_) => ErrorKind::Internal,
        }
    }
}
