//! Ingestion-time transforms: a table's `ingestionConfig.transformConfigs` and
//! `filterConfig` run on every decoded block, with the same function library the query
//! engine uses (so a function gives the same answer at ingestion and at query time).
//!
//! Owns:
//! - [`IngestPlan`]: the expressions parsed once per table (Pinot's case-insensitive
//!   function names, quoted renames such as `"\"event-id\""`, dotted flattened names),
//!   ordered so that a transform runs after those it reads (an intermediate column outside
//!   the schema is allowed when another transform reads it), compiled to DataFusion
//!   physical expressions per set of source-field types, and evaluated column-wise;
//! - the source-only fields' types, read from the values ([`values`]);
//! - Groovy: refused, or translated when the server enables the safe subset ([`groovy`]);
//! - ingestion-time rollup (`aggregationConfigs`, [`rollup`]): rows merged by their
//!   non-metric values in each block and again when a segment seals.
//!
//! Semantics kept from Pinot: a transform is skipped for a row whose message already
//! carries the destination column; a missing input is null, and a null result reads the
//! column's default null value; the filter drops rows for which it is true (null keeps the
//! row); a result is converted to the column's type, and a value that does not convert
//! fails its row.
//!
//! Invariants: a row that fails (a function's error, a value that does not convert) never
//! takes other rows with it: the block is re-run row by row and only the failing rows are
//! reported; nothing here panics on input.

pub mod expr;
pub mod groovy;
mod plan;
pub mod rollup;
pub mod values;

pub use plan::{Applied, IngestPlan, TransformOptions};

/// A transform or filter that cannot run, with the JSON path of the expression.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TransformError {
    /// JSON path in the table config.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl TransformError {
    /// A new error.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> TransformError {
        TransformError {
            path: path.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests;
