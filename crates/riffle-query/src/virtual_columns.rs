//! Pinot's virtual columns: `$docId` (the row's position in its segment, INT), `$hostName`
//! (the server's host name, STRING) and `$segmentName` (STRING).
//!
//! They are fields of every table as DataFusion sees it, after the real columns, and are
//! made by the scan only when a query names them. `SELECT *` leaves them out, as Pinot does
//! (the query's preparation adds them to the wildcard's exclusions), and a filter on them is
//! evaluated above the scan, never pushed into a segment.

use std::sync::{Arc, OnceLock};

use arrow::array::{ArrayRef, Int32Array, RecordBatch, RecordBatchOptions, StringArray};
use arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::common::Result as DfResult;
use roaring::RoaringBitmap;

/// The names, in the order of their fields.
pub const NAMES: [&str; 3] = ["$docId", "$hostName", "$segmentName"];

/// Whether `name` is a virtual column.
pub fn is_virtual(name: &str) -> bool {
    NAMES.contains(&name)
}

/// The canonical name of a virtual column written in any case (`$SEGMENTNAME`).
pub fn canonical(name: &str) -> Option<&'static str> {
    NAMES.iter().copied().find(|n| n.eq_ignore_ascii_case(name))
}

/// The fields appended to every table's schema.
pub fn fields() -> Vec<Field> {
    vec![
        Field::new(NAMES[0], DataType::Int32, false),
        Field::new(NAMES[1], DataType::Utf8, false),
        Field::new(NAMES[2], DataType::Utf8, false),
    ]
}

/// This machine's host name (read once).
pub fn host_name() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "localhost".to_string())
    })
}

/// Where an output column of the scan comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Source {
    /// Position in the real columns read.
    Real(usize),
    /// Index into [`NAMES`].
    Virtual(usize),
}

/// Splits a projection over a schema of `real` real fields then the virtual ones: the real
/// columns to read, and, when a virtual column is asked for, where each output column
/// comes from.
pub(crate) fn split(
    projection: Option<&Vec<usize>>,
    real: usize,
) -> (Option<Vec<usize>>, Option<Vec<Source>>) {
    let Some(p) = projection else {
        return (None, None);
    };
    if p.iter().all(|i| *i < real) {
        return (Some(p.clone()), None);
    }
    let mut read: Vec<usize> = Vec::new();
    let sources = p
        .iter()
        .map(|&i| {
            if i < real {
                let at = read.iter().position(|r| *r == i).unwrap_or_else(|| {
                    read.push(i);
                    read.len() - 1
                });
                Source::Real(at)
            } else {
                Source::Virtual(i - real)
            }
        })
        .collect();
    (Some(read), Some(sources))
}

/// The documents of a segment's batches, in order.
pub(crate) enum DocIds {
    /// All of them: 0, 1, 2, ...
    All,
    /// The selected ones, in increasing order.
    Selected(RoaringBitmap),
}

/// Adds the virtual columns to the batches read from one segment.
pub(crate) fn attach(
    batches: Vec<RecordBatch>,
    sources: &[Source],
    schema: &SchemaRef,
    segment: &str,
    docs: DocIds,
) -> DfResult<Vec<RecordBatch>> {
    let mut next: u32 = 0;
    let mut selected = match &docs {
        DocIds::Selected(b) => Some(b.iter()),
        DocIds::All => None,
    };
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let n = b.num_rows();
        let ids: Vec<i32> = match selected.as_mut() {
            Some(it) => it.by_ref().take(n).map(|d| d as i32).collect(),
            None => (next..next + n as u32).map(|d| d as i32).collect(),
        };
        next += n as u32;
        let columns: Vec<ArrayRef> = sources
            .iter()
            .map(|s| -> ArrayRef {
                match s {
                    Source::Real(i) => b.column(*i).clone(),
                    Source::Virtual(0) => Arc::new(Int32Array::from(ids.clone())),
                    Source::Virtual(1) => Arc::new(StringArray::from(vec![host_name(); n])),
                    Source::Virtual(_) => Arc::new(StringArray::from(vec![segment; n])),
                }
            })
            .collect();
        out.push(RecordBatch::try_new_with_options(
            schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projections_split_into_real_reads_and_sources() {
        assert_eq!(split(None, 3).0, None);
        let (read, sources) = split(Some(&vec![2, 0]), 3);
        assert_eq!(read, Some(vec![2, 0]));
        assert!(sources.is_none());
        let (read, sources) = split(Some(&vec![5, 1, 3, 1]), 3);
        assert_eq!(read, Some(vec![1]));
        let s = format!("{:?}", sources.unwrap());
        assert_eq!(s, "[Virtual(2), Real(0), Virtual(0), Real(0)]");
        assert_eq!(canonical("$SEGMENTNAME"), Some("$segmentName"));
        assert!(canonical("$other").is_none());
    }
}
