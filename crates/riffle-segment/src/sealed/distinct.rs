//! The distinct values of one column over a segment's selected docs, found from the
//! dictionary ids without reading a value per doc: a mark per dictionary id, then the
//! dictionary entries marked. What duplicate-insensitive aggregations (distinct counts,
//! sketches of distinct values) need from a segment is this, not every row.

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::{cast, take};
use roaring::RoaringBitmap;

use super::reader::{ColData, Source};
use super::SealedSegment;
use crate::SegmentError;

pub(crate) fn distinct_values(
    seg: &SealedSegment,
    column: usize,
    selection: Option<&RoaringBitmap>,
) -> Result<Option<ArrayRef>, SegmentError> {
    let Some(Source::Column {
        col,
        same_type: true,
        cast: needs_cast,
    }) = seg.table_map.get(column)
    else {
        return Ok(None);
    };
    let Some(c) = seg.cols.get(*col) else {
        return Ok(None);
    };
    // Nulls read as defaults or as NULL by the query's choice: not decided here.
    if !c.nulls.is_empty() || !c.info.single_value {
        return Ok(None);
    }
    let ColData::Dict { dict, ids, card } = &c.data else {
        return Ok(None);
    };
    let rows = seg.num_rows();
    let mut seen = vec![false; *card as usize + 1];
    let mut mark = |d: usize| {
        if let Some(s) = seen.get_mut(ids.get(d) as usize) {
            *s = true;
        }
    };
    match selection {
        None => (0..rows).for_each(&mut mark),
        Some(s) => s
            .iter()
            .map(|d| d as usize)
            .filter(|d| *d < rows)
            .for_each(&mut mark),
    }
    let marked: Vec<u32> = (0..*card).filter(|i| seen[*i as usize]).collect();
    let internal = |e: arrow::error::ArrowError| {
        SegmentError::internal(format!("segment '{}': distinct values: {e}", seg.name))
    };
    let values = take(dict.as_ref(), &UInt32Array::from(marked), None).map_err(internal)?;
    Ok(Some(match (needs_cast, seg.out_fields.get(column)) {
        (true, Some(f)) => cast(&values, f.data_type()).map_err(internal)?,
        _ => values,
    }))
}
