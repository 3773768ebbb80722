//! Pruning and filtering a sealed segment.
//!
//! A predicate on a single-value column becomes a [`Cond`] in the column's domain (see
//! `value.rs`). Then, for a dictionary column, the condition becomes a set of dictionary-id
//! intervals found by binary search in the sorted dictionary, and the docs come from
//! (in order of preference) the sorted forward index (binary search: contiguous doc ranges),
//! the inverted index (a union of bitmaps, or the complement of the smaller union), the
//! range index (doc ids ordered by dictionary id), or a scan of the forward index comparing
//! ids against a per-id mask. A raw column is scanned, block by block when it has a range
//! index: blocks whose min / max cannot match are skipped, blocks that match entirely are
//! taken without reading a value, and only the rows of the other blocks are checked.
//!
//! Predicates answered without a scan go first; scans then read only the docs still
//! selected, and `entries_scanned` counts exactly the values they read.

use std::ops::Range;

use roaring::RoaringBitmap;

use super::reader::{Col, ColData, Ids, Inverted, RangeIndex, Source};
use super::value::{cmp, cond_of, Cond, Key, KeyArray};
use super::{Predicate, SealedSegment, Selection};
use crate::SegmentError;

/// The segment column behind table column `column`, when predicates on it can be answered
/// here (it exists in the segment with the table's type and arity).
fn resolve<'a>(seg: &'a SealedSegment, column: &str) -> Option<&'a Col> {
    let i = seg.columns.index_of(column)?;
    match seg.table_map.get(i)? {
        Source::Column {
            col,
            same_type: true,
            ..
        } => seg.cols.get(*col),
        _ => None,
    }
}

/// First position in `0..n` where `f` is false (`f` true on a prefix).
fn partition_point(n: u32, f: impl Fn(usize) -> bool) -> u32 {
    let (mut lo, mut hi) = (0u32, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if f(mid as usize) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// First dictionary id whose value satisfies a lower bound.
fn lower_id(dict: &KeyArray<'_>, card: u32, k: &Key, incl: bool) -> u32 {
    partition_point(card, |i| {
        let c = cmp(dict.get(i), k.as_ref());
        if incl {
            c.is_lt()
        } else {
            c.is_le()
        }
    })
}

/// One past the last dictionary id whose value satisfies an upper bound.
fn upper_id(dict: &KeyArray<'_>, card: u32, k: &Key, incl: bool) -> u32 {
    partition_point(card, |i| {
        let c = cmp(dict.get(i), k.as_ref());
        if incl {
            c.is_le()
        } else {
            c.is_lt()
        }
    })
}

/// The dictionary ids whose values match `cond`, as sorted disjoint intervals.
fn id_ranges(dict: &KeyArray<'_>, card: u32, cond: &Cond) -> Vec<Range<u32>> {
    let keep = |r: Range<u32>| (!r.is_empty()).then_some(r);
    match cond {
        Cond::All | Cond::NonNull => keep(0..card).into_iter().collect(),
        Cond::Empty => Vec::new(),
        Cond::Interval { low, high } => {
            let lo = low.as_ref().map_or(0, |(k, i)| lower_id(dict, card, k, *i));
            let hi = high
                .as_ref()
                .map_or(card, |(k, i)| upper_id(dict, card, k, *i));
            keep(lo..hi).into_iter().collect()
        }
        Cond::Points(ps) => ps
            .iter()
            .filter_map(|p| keep(lower_id(dict, card, p, true)..upper_id(dict, card, p, true)))
            .collect(),
        Cond::NotEq(k) => {
            let (a, b) = (lower_id(dict, card, k, true), upper_id(dict, card, k, true));
            [0..a, b..card].into_iter().filter_map(keep).collect()
        }
    }
}

fn dict_view(col: &Col) -> Option<(KeyArray<'_>, u32)> {
    match &col.data {
        ColData::Dict { dict, card, .. } => KeyArray::new(dict.as_ref()).map(|k| (k, *card)),
        _ => None,
    }
}

/// See [`SealedSegment::can_match`].
pub(crate) fn can_match(seg: &SealedSegment, pred: &Predicate) -> bool {
    let n = seg.info.total_docs;
    if n == 0 {
        return false;
    }
    let Some(col) = resolve(seg, pred.column()) else {
        return true;
    };
    let nulls = col.info.null_count;
    let non_null = n.saturating_sub(nulls);
    match pred {
        Predicate::IsNull(_) => return nulls > 0,
        Predicate::IsNotNull(_) => return non_null > 0,
        _ => {}
    }
    let Some(cond) = cond_of(pred, col.dt, col.physical) else {
        return true;
    };
    let multi = !col.info.single_value;
    match &cond {
        Cond::All => true,
        Cond::Empty => false,
        Cond::NonNull => non_null > 0,
        Cond::NotEq(k) => {
            if non_null == 0 {
                return false;
            }
            match (&col.min, &col.max) {
                (Some(lo), Some(hi)) if !multi => {
                    !(cmp(lo.as_ref(), k.as_ref()).is_eq() && cmp(hi.as_ref(), k.as_ref()).is_eq())
                }
                _ => true,
            }
        }
        Cond::Interval { .. } | Cond::Points(_) => {
            if non_null == 0 {
                return false;
            }
            let (Some(lo), Some(hi)) = (&col.min, &col.max) else {
                // No min / max: no comparable value (all items null), unless the footer's
                // value did not parse, in which case nothing is known.
                return col.info.min_value.is_some();
            };
            let (lo, hi) = (lo.as_ref(), hi.as_ref());
            if !cond.may_match_within(lo, hi) {
                return false;
            }
            if multi {
                return true;
            }
            let dict = dict_view(col);
            match &cond {
                Cond::Points(ps) => ps.iter().any(|p| {
                    let p_ref = p.as_ref();
                    cmp(p_ref, lo).is_ge()
                        && cmp(p_ref, hi).is_le()
                        && col.bloom.as_ref().is_none_or(|b| b.may_contain(p_ref))
                        && dict.as_ref().is_none_or(|(d, card)| {
                            lower_id(d, *card, p, true) < upper_id(d, *card, p, true)
                        })
                }),
                _ => dict
                    .as_ref()
                    .is_none_or(|(d, card)| !id_ranges(d, *card, &cond).is_empty()),
            }
        }
    }
}

/// How one predicate is evaluated.
enum Plan<'a> {
    /// Every doc (undecidable here, or no restriction).
    All,
    /// Exactly these docs, from an index (no entries scanned).
    Docs(RoaringBitmap),
    /// Scan the dictionary ids against this mask (indexed by id; the null id is false).
    ScanIds(&'a Col, Vec<bool>),
    /// Scan raw values.
    ScanValues(&'a Col, Cond),
}

fn full(n: u32) -> RoaringBitmap {
    let mut b = RoaringBitmap::new();
    b.insert_range(0..n);
    b
}

fn corrupt(seg: &SealedSegment, reason: String) -> SegmentError {
    SegmentError::Corrupt {
        segment: seg.name.clone(),
        reason: format!("{reason} in {}", seg.path.display()),
    }
}

/// First doc whose id is at least `id` in a sorted forward index.
fn sorted_start(ids: &Ids, n: u32, id: u32) -> u32 {
    partition_point(n, |d| ids.get(d) < id)
}

fn inverted_docs(
    seg: &SealedSegment,
    col: &Col,
    inv: &Inverted,
    ranges: &[Range<u32>],
    card: u32,
    n: u32,
) -> Result<RoaringBitmap, SegmentError> {
    let union = |rs: &[Range<u32>]| -> Result<RoaringBitmap, SegmentError> {
        let mut bm = RoaringBitmap::new();
        for r in rs {
            for id in r.clone() {
                bm |= inv.bitmap(id).map_err(|e| corrupt(seg, e))?;
            }
        }
        Ok(bm)
    };
    let selected: u64 = ranges.iter().map(|r| (r.end - r.start) as u64).sum();
    if selected * 2 <= card as u64 {
        return union(ranges);
    }
    // Most ids: the non-null docs minus the docs of the other ids.
    let mut rest = Vec::new();
    let mut at = 0;
    for r in ranges {
        if r.start > at {
            rest.push(at..r.start);
        }
        at = r.end;
    }
    if at < card {
        rest.push(at..card);
    }
    let mut bm = full(n);
    bm -= &col.nulls;
    bm -= union(&rest)?;
    Ok(bm)
}

fn range_docs(offsets: &[u32], docs: &[u32], ranges: &[Range<u32>]) -> RoaringBitmap {
    let mut all: Vec<u32> = Vec::new();
    for r in ranges {
        let s = offsets.get(r.start as usize).copied().unwrap_or(0) as usize;
        let e = offsets.get(r.end as usize).copied().unwrap_or(0) as usize;
        if let Some(d) = docs.get(s..e) {
            all.extend_from_slice(d);
        }
    }
    all.sort_unstable();
    all.dedup();
    RoaringBitmap::from_sorted_iter(all).unwrap_or_default()
}

fn plan<'a>(seg: &'a SealedSegment, p: &Predicate) -> Result<Plan<'a>, SegmentError> {
    let n = seg.info.total_docs as u32;
    let Some(col) = resolve(seg, p.column()) else {
        return Ok(Plan::All);
    };
    if !col.info.single_value {
        return Ok(Plan::All);
    }
    match p {
        Predicate::IsNull(_) => return Ok(Plan::Docs(col.nulls.clone())),
        Predicate::IsNotNull(_) => return Ok(Plan::Docs(full(n) - &col.nulls)),
        _ => {}
    }
    let Some(cond) = cond_of(p, col.dt, col.physical) else {
        return Ok(Plan::All);
    };
    match cond {
        // Not decidable here: the caller filters again.
        Cond::All => return Ok(Plan::All),
        Cond::Empty => return Ok(Plan::Docs(RoaringBitmap::new())),
        Cond::NonNull => return Ok(Plan::Docs(full(n) - &col.nulls)),
        _ => {}
    }
    if !can_match(seg, p) {
        return Ok(Plan::Docs(RoaringBitmap::new()));
    }
    let ColData::Dict { dict, ids, card } = &col.data else {
        return Ok(Plan::ScanValues(col, cond));
    };
    let Some(dka) = KeyArray::new(dict.as_ref()) else {
        return Ok(Plan::All);
    };
    let ranges = id_ranges(&dka, *card, &cond);
    if col.info.sorted {
        let mut bm = RoaringBitmap::new();
        for r in &ranges {
            bm.insert_range(sorted_start(ids, n, r.start)..sorted_start(ids, n, r.end));
        }
        return Ok(Plan::Docs(bm));
    }
    if let Some(inv) = &col.inverted {
        return Ok(Plan::Docs(inverted_docs(seg, col, inv, &ranges, *card, n)?));
    }
    if let Some(RangeIndex::Dict { offsets, docs }) = &col.range {
        return Ok(Plan::Docs(range_docs(offsets, docs, &ranges)));
    }
    let mut mask = vec![false; *card as usize + 1];
    for r in ranges {
        for id in r {
            if let Some(m) = mask.get_mut(id as usize) {
                *m = true;
            }
        }
    }
    Ok(Plan::ScanIds(col, mask))
}

fn scan_slice<T: Copy + Into<u32>>(ids: &[T], mask: &[bool]) -> RoaringBitmap {
    let mut bm = RoaringBitmap::new();
    for (d, id) in ids.iter().enumerate() {
        if mask.get((*id).into() as usize).copied().unwrap_or(false) {
            bm.push(d as u32);
        }
    }
    bm
}

/// Scans the forward ids of every doc (`cand` None) or of `cand`.
fn scan_ids(
    ids: &Ids,
    mask: &[bool],
    cand: Option<&RoaringBitmap>,
    n: u32,
) -> (RoaringBitmap, u64) {
    match cand {
        None => {
            let bm = match ids {
                Ids::U8(v) => scan_slice(v, mask),
                Ids::U16(v) => scan_slice(v, mask),
                Ids::U32(v) => scan_slice(v, mask),
            };
            (bm, n as u64)
        }
        Some(c) => {
            let mut bm = RoaringBitmap::new();
            let mut seen = 0;
            for d in c.iter().take_while(|d| *d < n) {
                seen += 1;
                if mask
                    .get(ids.get(d as usize) as usize)
                    .copied()
                    .unwrap_or(false)
                {
                    bm.push(d);
                }
            }
            (bm, seen)
        }
    }
}

/// Checks the values of `docs` (ascending); returns the matches and the values read.
fn scan_docs(
    ka: &KeyArray<'_>,
    cond: &Cond,
    docs: impl Iterator<Item = u32>,
    bm: &mut RoaringBitmap,
) -> u64 {
    let mut seen = 0;
    for d in docs {
        let i = d as usize;
        if i >= ka.len() {
            break;
        }
        seen += 1;
        if !ka.is_null(i) && cond.matches(ka.get(i)) {
            bm.push(d);
        }
    }
    seen
}

/// Every doc of an integer column (INT, LONG, TIMESTAMP) whose value lies in an interval,
/// read straight from the values with no per-row dispatch, matches kept as runs; `None`
/// for other columns and conditions.
fn scan_int_interval(
    ka: &KeyArray<'_>,
    cond: &Cond,
    n: u32,
    nulls: &RoaringBitmap,
) -> Option<RoaringBitmap> {
    let Cond::Interval { low, high } = cond else {
        return None;
    };
    // Inclusive bounds; an exclusive bound at the end of the domain matches nothing.
    let (lo, hi) = match (low, high) {
        (Some((Key::I(k), false)), _) if *k == i64::MAX => return Some(RoaringBitmap::new()),
        (_, Some((Key::I(k), false))) if *k == i64::MIN => return Some(RoaringBitmap::new()),
        _ => (
            match low {
                None => i64::MIN,
                Some((Key::I(k), incl)) => k + i64::from(!*incl),
                Some(_) => return None,
            },
            match high {
                None => i64::MAX,
                Some((Key::I(k), incl)) => k - i64::from(!*incl),
                Some(_) => return None,
            },
        ),
    };
    fn runs<T: Copy + Into<i64>>(v: &[T], lo: i64, hi: i64) -> RoaringBitmap {
        let mut bm = RoaringBitmap::new();
        let mut start: Option<usize> = None;
        for (d, x) in v.iter().enumerate() {
            let x: i64 = (*x).into();
            match (lo <= x && x <= hi, start) {
                (true, None) => start = Some(d),
                (false, Some(s)) => {
                    bm.insert_range(s as u32..d as u32);
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            bm.insert_range(s as u32..v.len() as u32);
        }
        bm
    }
    let upto = |len: usize| len.min(n as usize);
    let mut bm = match ka {
        KeyArray::I64(a) => runs(&a.values()[..upto(a.len())], lo, hi),
        KeyArray::Ts(a) => runs(&a.values()[..upto(a.len())], lo, hi),
        KeyArray::I32(a) => runs(&a.values()[..upto(a.len())], lo, hi),
        _ => return None,
    };
    bm -= nulls;
    Some(bm)
}

fn scan_values(
    col: &Col,
    cond: &Cond,
    cand: Option<&RoaringBitmap>,
    n: u32,
) -> Option<(RoaringBitmap, u64)> {
    let ColData::Raw(a) = &col.data else {
        return None;
    };
    let ka = KeyArray::new(a.as_ref())?;
    let mut bm = RoaringBitmap::new();
    let Some(RangeIndex::Blocks { rows, min, max }) = &col.range else {
        // A typed pass over every value beats visiting the candidates one by one unless
        // they are few (a second predicate on the same column keeps most docs).
        if cand.is_none_or(|c| c.len() > u64::from(n / 16)) {
            if let Some(mut bm) = scan_int_interval(&ka, cond, n, &col.nulls) {
                if let Some(c) = cand {
                    bm &= c;
                }
                return Some((bm, n as u64));
            }
        }
        let seen = match cand {
            None => scan_docs(&ka, cond, 0..n, &mut bm),
            Some(c) => scan_docs(&ka, cond, c.iter(), &mut bm),
        };
        return Some((bm, seen));
    };
    let (mk, xk) = (KeyArray::new(min.as_ref())?, KeyArray::new(max.as_ref())?);
    let block = *rows as u64;
    let mut seen = 0;
    for b in 0..mk.len().min(xk.len()) {
        let start = (b as u64 * block).min(n as u64) as u32;
        let end = ((b as u64 + 1) * block).min(n as u64) as u32;
        if start >= end || mk.is_null(b) || xk.is_null(b) {
            // All null.
            continue;
        }
        let (lo, hi) = (mk.get(b), xk.get(b));
        if !cond.may_match_within(lo, hi) {
            continue;
        }
        let mut blk = RoaringBitmap::new();
        blk.insert_range(start..end);
        if let Some(c) = cand {
            blk &= c;
        }
        if cond.matches_all_within(lo, hi) {
            blk -= &col.nulls;
            bm |= blk;
        } else {
            seen += scan_docs(&ka, cond, blk.iter(), &mut bm);
        }
    }
    Some((bm, seen))
}

/// Interval scans of the same raw column (`ts >= a AND ts < b` arrives as two predicates)
/// become one scan of the intersection, so the column is read once.
fn merge_intervals(scans: Vec<Plan<'_>>) -> Vec<Plan<'_>> {
    let mut out: Vec<Plan<'_>> = Vec::with_capacity(scans.len());
    for p in scans {
        if let Plan::ScanValues(col, Cond::Interval { low, high }) = &p {
            let same = out.iter_mut().find_map(|q| match q {
                Plan::ScanValues(c, Cond::Interval { low: l, high: h })
                    if std::ptr::eq(*c, *col) =>
                {
                    Some((l, h))
                }
                _ => None,
            });
            if let Some((l, h)) = same {
                if let (Some(nl), Some(nh)) = (tighter(l, low, true), tighter(h, high, false)) {
                    (*l, *h) = (nl, nh);
                    continue;
                }
            }
        }
        out.push(p);
    }
    out
}

/// The tighter of two bounds (lower bounds when `lower`); `None` when their keys are of
/// different kinds and cannot be compared.
fn tighter(
    a: &Option<(Key, bool)>,
    b: &Option<(Key, bool)>,
    lower: bool,
) -> Option<Option<(Key, bool)>> {
    let (Some((ka, ia)), Some((kb, ib))) = (a, b) else {
        return Some(a.clone().or_else(|| b.clone()));
    };
    if std::mem::discriminant(ka) != std::mem::discriminant(kb) {
        return None;
    }
    Some(Some(match cmp(ka.as_ref(), kb.as_ref()) {
        std::cmp::Ordering::Equal => (ka.clone(), *ia && *ib),
        o if (o == std::cmp::Ordering::Greater) == lower => (ka.clone(), *ia),
        _ => (kb.clone(), *ib),
    }))
}

/// See [`SealedSegment::filter`].
pub(crate) fn filter(seg: &SealedSegment, preds: &[Predicate]) -> Result<Selection, SegmentError> {
    let n = seg.info.total_docs as u32;
    let empty = || Selection {
        docs: RoaringBitmap::new(),
        entries_scanned: 0,
        exact: true,
    };
    let mut exact = true;
    let mut sel: Option<RoaringBitmap> = None;
    let mut scans = Vec::new();
    for p in preds {
        match plan(seg, p)? {
            Plan::All => exact = false,
            Plan::Docs(bm) => {
                sel = Some(match sel {
                    None => bm,
                    Some(s) => s & bm,
                });
                if sel.as_ref().is_some_and(|s| s.is_empty()) {
                    return Ok(empty());
                }
            }
            scan => scans.push(scan),
        }
    }
    let mut scanned = 0u64;
    for s in merge_intervals(scans) {
        let (bm, seen) = match s {
            Plan::ScanIds(col, mask) => match &col.data {
                ColData::Dict { ids, .. } => scan_ids(ids, &mask, sel.as_ref(), n),
                _ => {
                    exact = false;
                    continue;
                }
            },
            Plan::ScanValues(col, cond) => match scan_values(col, &cond, sel.as_ref(), n) {
                Some(r) => r,
                None => {
                    exact = false;
                    continue;
                }
            },
            Plan::All | Plan::Docs(_) => continue,
        };
        scanned += seen;
        // A scan reads only the docs still selected, so its result is the new selection.
        sel = Some(bm);
        if sel.as_ref().is_some_and(|s| s.is_empty()) {
            break;
        }
    }
    let mut docs = sel.unwrap_or_else(|| full(n));
    docs.remove_range(n..);
    Ok(Selection {
        docs,
        entries_scanned: scanned,
        exact,
    })
}
