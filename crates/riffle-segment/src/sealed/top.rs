//! The rows of a segment that can be among the first `n` in an order by one column
//! (`ORDER BY c [DESC] LIMIT n`), found from the column alone before any other is read.
//!
//! A dictionary column compares dictionary ids (the dictionary is sorted, so id order is
//! value order): for a sorted column the answer is a run of docs at one end, otherwise one
//! pass over the ids and a selection of the `n`-th best. A raw column is read for the
//! candidate docs and ranked with Arrow's kernels. Ties with the `n`-th value are kept, so
//! the answer is a superset of the top `n` under any further sort keys.

use arrow::array::{Array, ArrayRef, BooleanArray, UInt32Array};
use arrow::compute::kernels::cmp::{gt_eq, lt_eq};
use arrow::compute::{cast, sort_to_indices, take, SortOptions};
use arrow::datatypes::DataType as ArrowType;
use roaring::RoaringBitmap;

use super::reader::{ColData, Source};
use super::SealedSegment;
use crate::SegmentError;

/// What [`SealedSegment::top_docs`] found.
#[derive(Clone, Debug)]
pub struct TopDocs {
    /// The candidate docs that can be among the first `n`.
    pub docs: RoaringBitmap,
    /// The `n`-th best value among the candidates (a one-row array in the table's type),
    /// when there were at least `n` candidates: no row of the segment ranked after it
    /// can be in the answer, and neither can a row of any other segment.
    pub boundary: Option<ArrayRef>,
}

fn internal(seg: &SealedSegment, e: impl std::fmt::Display) -> SegmentError {
    SegmentError::internal(format!("segment '{}': top rows: {e}", seg.name))
}

pub(crate) fn top_docs(
    seg: &SealedSegment,
    column: usize,
    descending: bool,
    n: usize,
    selection: Option<&RoaringBitmap>,
) -> Result<Option<TopDocs>, SegmentError> {
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
    // Nulls sort apart from values (first or last by the query's choice): not decided here.
    if n == 0 || !c.nulls.is_empty() {
        return Ok(None);
    }
    let rows = seg.num_rows() as u32;
    let count = selection.map_or(u64::from(rows), RoaringBitmap::len);
    // The candidates in doc order (built lazily: a million-doc bitmap is not free).
    let candidates = || -> Box<dyn Iterator<Item = u32> + '_> {
        match selection {
            Some(s) => Box::new(s.iter().filter(move |d| *d < rows)),
            None => Box::new(0..rows),
        }
    };
    if count <= n as u64 {
        return Ok(Some(TopDocs {
            docs: RoaringBitmap::from_sorted_iter(candidates()).unwrap_or_default(),
            boundary: None,
        }));
    }
    let to_table = |a: ArrayRef| -> Result<ArrayRef, SegmentError> {
        match (needs_cast, seg.out_fields.get(column)) {
            (true, Some(f)) => cast(&a, f.data_type()).map_err(|e| internal(seg, e)),
            _ => Ok(a),
        }
    };
    let better_or_equal = |a: u32, b: u32| if descending { a >= b } else { a <= b };
    match &c.data {
        ColData::Dict { dict, ids, .. } => {
            let boundary_id = if c.info.sorted && selection.is_none() {
                // Non-decreasing ids: the n-th best is n rows from the end (or the start).
                ids.get(if descending {
                    (rows as usize) - n
                } else {
                    n - 1
                })
            } else {
                let mut v: Vec<u32> = candidates().map(|d| ids.get(d as usize)).collect();
                let k = if descending { v.len() - n } else { n - 1 };
                *v.select_nth_unstable(k).1
            };
            let docs = if c.info.sorted && selection.is_none() {
                // One run of docs at the end (or start), ties included.
                let edge = if descending {
                    let mut s = rows as usize - n;
                    while s > 0 && ids.get(s - 1) == boundary_id {
                        s -= 1;
                    }
                    s as u32..rows
                } else {
                    let mut e = n;
                    while e < rows as usize && ids.get(e) == boundary_id {
                        e += 1;
                    }
                    0..e as u32
                };
                RoaringBitmap::from_iter(edge)
            } else {
                RoaringBitmap::from_sorted_iter(
                    candidates().filter(|d| better_or_equal(ids.get(*d as usize), boundary_id)),
                )
                .unwrap_or_default()
            };
            let boundary = to_table(dict.slice(boundary_id as usize, 1))?;
            Ok(Some(TopDocs {
                docs,
                boundary: Some(boundary),
            }))
        }
        ColData::Raw(values) => {
            if matches!(
                values.data_type(),
                ArrowType::List(_) | ArrowType::LargeList(_)
            ) {
                return Ok(None);
            }
            let (vals, docs): (ArrayRef, Vec<u32>) = match selection {
                None => (values.slice(0, rows as usize), (0..rows).collect()),
                Some(s) => {
                    let d: Vec<u32> = s.iter().filter(|d| *d < rows).collect();
                    let v = take(values.as_ref(), &UInt32Array::from(d.clone()), None)
                        .map_err(|e| internal(seg, e))?;
                    (v, d)
                }
            };
            let opts = SortOptions {
                descending,
                nulls_first: false,
            };
            let order = sort_to_indices(vals.as_ref(), Some(opts), Some(n))
                .map_err(|e| internal(seg, e))?;
            let Some(b) = order.values().get(n - 1) else {
                return Ok(None);
            };
            let boundary = vals.slice(*b as usize, 1);
            let scalar = arrow::array::Scalar::new(boundary.clone());
            let keep: BooleanArray = if descending {
                gt_eq(&vals, &scalar)
            } else {
                lt_eq(&vals, &scalar)
            }
            .map_err(|e| internal(seg, e))?;
            let docs = RoaringBitmap::from_sorted_iter(
                docs.iter()
                    .zip(keep.iter())
                    .filter_map(|(d, k)| k.unwrap_or(false).then_some(*d)),
            )
            .unwrap_or_default();
            Ok(Some(TopDocs {
                docs,
                boundary: Some(to_table(boundary)?),
            }))
        }
        ColData::Multi(_) => Ok(None),
    }
}
