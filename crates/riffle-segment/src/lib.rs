//! Segments: where a table's rows live.
//!
//! Owns:
//! - [`TableColumns`]: the table's columns and their Arrow types (see [`columns`]).
//! - [`BlockBuilder`]: column builders that decoders write into directly, with rollback of
//!   a half-decoded row.
//! - [`ConsumingSegment`]: the in-memory segment a partition appends to; readers see a
//!   consistent prefix (whole fetched batches) together with the offset it ends at.
//! - [`SegmentRegistry`] / [`TableData`]: the segments of every table, as queries see them.
//!
//! Sealed (immutable, on-disk) segments join the registry in the segment-lifecycle work;
//! [`SegmentRef`] is the one type queries iterate over, so they slot in there.
//!
//! Invariants: a reader never sees half a row or rows without the offset that follows them;
//! a segment name is unique within its table.

pub mod builder;
pub mod columns;
pub mod consuming;
pub mod registry;

use riffle_common::{ClassifyError, ErrorCode};

pub use builder::{BlockBuilder, Values};
pub use columns::{Physical, TableColumns, PINOT_TYPE_KEY};
pub use consuming::{ConsumingSegment, ConsumingSnapshot};
pub use registry::{SegmentRef, SegmentRegistry, TableData};

/// A segment failure.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
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
    fn code(&self) -> ErrorCode {
        ErrorCode::Internal
    }
}
