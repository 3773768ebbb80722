//! Writing a sealed segment: rows in, one checked file out.
//!
//! Order of work: concatenate the batches per column, sort every column by the sorted
//! column's dictionary ids (stable, nulls last), then for each column in table order write
//! its sections (dictionary, forward index, null bitmap, indexes), then the footer and the
//! trailer. The file is `<path>.tmp` until it is complete and fsynced; then it is renamed to
//! `path` and the directory is fsynced.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use arrow::array::{Array, ArrayRef, ListArray, UInt32Array, UInt64Array};
use arrow::compute::{concat, take};
use arrow::record_batch::RecordBatch;
use riffle_config::DataType;
use roaring::RoaringBitmap;

use super::bloom::{BloomBuilder, NUM_HASHES};
use super::compress::{self, SectionCodec};
use super::format::{
    align_up, encode_array, section_name, ArrayLayout, BloomLayout, ColumnLayout, Encoding, Footer,
    SectionBuf, SectionEntry, ALIGN, HEADER_LEN, MAGIC,
};
use super::value::{cmp, key_to_json, total_order_bits, KeyArray, KeyRef};
use super::{ColumnInfo, SealOptions, SealedFile, SegmentInfo, FORMAT_VERSION};
use crate::columns::{Physical, TableColumns};
use crate::SegmentError;

/// Rows per block of the range index over raw values.
pub(crate) const RANGE_BLOCK_ROWS: u32 = 1024;

/// The open output file, with the position, the whole-file CRC and the sections so far.
struct Out {
    w: BufWriter<File>,
    pos: u64,
    crc: crc32fast::Hasher,
    sections: Vec<SectionEntry>,
}

impl Out {
    fn bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.crc.update(b);
        self.unhashed(b)
    }

    /// Writes `b` without adding it to the whole-file CRC (the caller combines it in).
    fn unhashed(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.w.write_all(b)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> std::io::Result<()> {
        let to = align_up(self.pos as usize) as u64;
        let zeros = [0u8; ALIGN];
        let n = (to - self.pos) as usize;
        self.bytes(&zeros[..n])
    }

    /// Writes a section from its parts (offsets from the section's start, zeros between
    /// them), with its CRC, which is combined into the file's.
    fn section<'p>(
        &mut self,
        name: String,
        parts: impl IntoIterator<Item = (usize, &'p [u8])>,
        array: Option<ArrayLayout>,
    ) -> std::io::Result<()> {
        self.pad()?;
        let offset = self.pos;
        let mut crc = crc32fast::Hasher::new();
        let zeros = [0u8; ALIGN];
        for (at, part) in parts {
            let gap = (offset + at as u64).saturating_sub(self.pos) as usize;
            for chunk in [&zeros[..gap.min(ALIGN)], part] {
                crc.update(chunk);
                self.unhashed(chunk)?;
            }
        }
        self.crc.combine(&crc);
        self.sections.push(SectionEntry {
            name,
            offset,
            length: self.pos - offset,
            crc32: crc.finalize(),
            array,
            codec: None,
            raw_length: None,
        });
        Ok(())
    }

    /// [`Out::section`], its logical bytes (the parts with their alignment gaps) stored
    /// compressed with `codec` when one is given.
    fn coded_section<'p>(
        &mut self,
        name: String,
        parts: impl IntoIterator<Item = (usize, &'p [u8])>,
        array: Option<ArrayLayout>,
        codec: Option<SectionCodec>,
    ) -> Result<(), WErr> {
        let Some(codec) = codec else {
            return Ok(self.section(name, parts, array)?);
        };
        let mut raw = Vec::new();
        for (at, part) in parts {
            raw.resize(at.max(raw.len()), 0);
            raw.extend_from_slice(part);
        }
        if let Some(layout) = &array {
            compress::offsets_to_lengths(&mut raw, layout);
        }
        let stored = compress::compress(codec, &raw)?;
        self.section(name, [(0, &stored[..])], array)?;
        if let Some(e) = self.sections.last_mut() {
            e.codec = Some(codec);
            e.raw_length = Some(raw.len() as u64);
        }
        Ok(())
    }
}

/// Errors while writing, before they are tied to the segment.
enum WErr {
    Io(std::io::Error),
    Internal(String),
}

impl From<std::io::Error> for WErr {
    fn from(e: std::io::Error) -> WErr {
        WErr::Io(e)
    }
}

impl From<String> for WErr {
    fn from(e: String) -> WErr {
        WErr::Internal(e)
    }
}

/// See [`super::write_segment`].
pub(crate) fn write(
    path: &Path,
    name: &str,
    columns: &TableColumns,
    batches: &[RecordBatch],
    opts: &SealOptions,
) -> Result<SealedFile, SegmentError> {
    let tmp = riffle_common::fsync::with_suffix(path, ".tmp");
    let res = write_tmp(&tmp, name, columns, batches, opts).and_then(|f| {
        riffle_common::fsync::publish(&tmp, path)?;
        Ok(f)
    });
    match res {
        Ok(f) => Ok(f),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(match e {
                WErr::Io(e) => SegmentError::Io {
                    segment: name.to_string(),
                    reason: format!("write {}: {e}", path.display()),
                },
                WErr::Internal(m) => SegmentError::internal(format!("seal segment '{name}': {m}")),
            })
        }
    }
}

/// The table's columns as single arrays, checked against the table's types.
fn concat_columns(columns: &TableColumns, batches: &[RecordBatch]) -> Result<Vec<ArrayRef>, WErr> {
    let mut out = Vec::with_capacity(columns.len());
    for (i, field) in columns.arrow.fields().iter().enumerate() {
        let mut parts: Vec<&dyn Array> = Vec::with_capacity(batches.len());
        for b in batches {
            let a = b.columns().get(i).ok_or_else(|| {
                format!(
                    "batch has {} columns, the table has {}",
                    b.num_columns(),
                    columns.len()
                )
            })?;
            if !a.data_type().equals_datatype(field.data_type()) {
                return Err(format!(
                    "column '{}' is {} in a batch, the table expects {}",
                    field.name(),
                    a.data_type(),
                    field.data_type()
                )
                .into());
            }
            parts.push(a.as_ref());
        }
        let a = match parts.len() {
            0 => arrow::array::new_empty_array(field.data_type()),
            1 => batches[0].column(i).clone(),
            _ => concat(&parts).map_err(|e| format!("concatenate '{}': {e}", field.name()))?,
        };
        out.push(a);
    }
    Ok(out)
}

/// The dictionary of a column: `(reps, ids)`, where `reps[d]` is a row holding the `d`-th
/// smallest distinct value and `ids[row]` is the id of the row's value (`reps.len()`
/// for a null).
///
/// Four ways, chosen by the data, all giving the same answer:
/// - a column already in order (a time column) is neither hashed nor sorted: one pass;
/// - integers within a range at most twice the row count: a table over the range
///   ([`dense_dictionary`]);
/// - a column whose distinct values are at most half its rows (estimated from an even
///   sample, [`estimate_distinct`]) finds them with a hash map, one probe per row, and
///   sorts only them;
/// - otherwise (mostly distinct values, e.g. ids) the rows are sorted by key. Every key is
///   first reduced to an order-preserving `u64` tag (integers and floats: the value itself;
///   text and bytes: the first 8 bytes, big-endian, zero-padded), so the sort compares
///   integers and reads the values only when two tags are equal.
fn dictionary(ka: KeyArray<'_>) -> (Vec<u32>, Vec<u32>) {
    let n = ka.len();
    let nulls = ka.nulls();
    let valid = move |i: usize| nulls.is_none_or(|nb| nb.is_valid(i));
    match ka {
        KeyArray::Str(a) => bytes_dictionary(n, valid, |i| a.value(i).as_bytes()),
        KeyArray::Bin(a) => bytes_dictionary(n, valid, |i| a.value(i)),
        KeyArray::F32(a) => int_dictionary(n, valid, |i| total_order_bits(a.value(i) as f64)),
        KeyArray::F64(a) => int_dictionary(n, valid, |i| total_order_bits(a.value(i))),
        KeyArray::I32(a) => int_dictionary(n, valid, |i| a.value(i) as i64),
        KeyArray::I64(a) => int_dictionary(n, valid, |i| a.value(i)),
        KeyArray::Ts(a) => int_dictionary(n, valid, |i| a.value(i)),
        KeyArray::Bool(a) => int_dictionary(n, valid, |i| a.value(i) as i64),
    }
}

/// [`dictionary`] of integer keys (floats as [`total_order_bits`]).
fn int_dictionary(
    n: usize,
    valid: impl Fn(usize) -> bool,
    key: impl Fn(usize) -> i64,
) -> (Vec<u32>, Vec<u32>) {
    // Flipping the sign bit makes unsigned order the signed order.
    let tag = |i: usize| (key(i) as u64) ^ (1 << 63);
    let dense = || dense_dictionary(n, &valid, tag);
    build_dictionary(n, &valid, tag, true, dense, |rows| {
        let mut pairs: Vec<(u64, u32)> = rows.map(|i| (tag(i), i as u32)).collect();
        pairs.sort_unstable();
        pairs
    })
}

/// [`dictionary`] of integer keys whose range (max - min) is at most twice the row count
/// (counters, codes, epoch days or seconds of a time column): a table over the range
/// marks each value's first row, and a pass over it numbers the values in order. No
/// hashing, no sort. `None` when the range is wider (or every row is null).
fn dense_dictionary(
    n: usize,
    valid: &dyn Fn(usize) -> bool,
    tag: impl Fn(usize) -> u64,
) -> Option<(Vec<u32>, Vec<u32>)> {
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    for i in (0..n).filter(|i| valid(*i)) {
        let t = tag(i);
        lo = lo.min(t);
        hi = hi.max(t);
    }
    let range = usize::try_from(hi.checked_sub(lo)?).ok()?.checked_add(1)?;
    if range > n.saturating_mul(2).max(1024) || range > 1 << 28 {
        return None;
    }
    // First the row of each value's first occurrence, then (in place) each value's id.
    let mut slot = vec![u32::MAX; range];
    for i in (0..n).filter(|i| valid(*i)) {
        let s = &mut slot[(tag(i) - lo) as usize];
        if *s == u32::MAX {
            *s = i as u32;
        }
    }
    let mut reps = Vec::new();
    for s in slot.iter_mut().filter(|s| **s != u32::MAX) {
        reps.push(*s);
        *s = (reps.len() - 1) as u32;
    }
    let card = reps.len() as u32;
    let ids = (0..n)
        .map(|i| {
            if valid(i) {
                slot[(tag(i) - lo) as usize]
            } else {
                card
            }
        })
        .collect();
    Some((reps, ids))
}

/// The number of distinct values a column of `n` rows holds, estimated from `d` distinct
/// values among `s` rows sampled evenly (values drawn uniformly from `D` distinct ones
/// show `D(1 - e^(-s/D))` distinct in `s` draws): `None` when every sampled row differed.
fn estimate_distinct(n: usize, s: usize, d: usize) -> Option<usize> {
    if d >= s || s == 0 {
        return None;
    }
    if s >= n {
        return Some(d);
    }
    let seen = |big_d: f64| big_d * (1.0 - (-(s as f64) / big_d).exp());
    let (mut lo, mut hi) = (d as f64, n as f64);
    if seen(hi) < d as f64 {
        return Some(n);
    }
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if seen(mid) < d as f64 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(hi.ceil() as usize)
}

/// [`dictionary`] of text or bytes.
fn bytes_dictionary<'a>(
    n: usize,
    valid: impl Fn(usize) -> bool,
    key: impl Fn(usize) -> &'a [u8],
) -> (Vec<u32>, Vec<u32>) {
    build_dictionary(
        n,
        &valid,
        &key,
        false,
        || None,
        |rows| {
            let mut pairs: Vec<(u64, u32)> = rows.map(|i| (prefix_tag(key(i)), i as u32)).collect();
            pairs.sort_unstable_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| key(a.1 as usize).cmp(key(b.1 as usize)))
            });
            pairs
        },
    )
}

/// The first 8 bytes of `b`, big-endian, zero-padded: `prefix_tag(a) < prefix_tag(b)`
/// implies `a < b`, and equal keys have equal tags.
fn prefix_tag(b: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let k = b.len().min(8);
    p[..k].copy_from_slice(&b[..k]);
    u64::from_be_bytes(p)
}

/// The three ways of [`dictionary`] over keys `key(row)` of the rows where `valid(row)`.
/// `sort` orders the valid rows by key as `(tag, row)` pairs, where equal keys have equal
/// tags; when `tags_exact`, equal tags also mean equal keys.
fn build_dictionary<'k, K: Ord + Copy + std::hash::Hash + 'k>(
    n: usize,
    valid: &dyn Fn(usize) -> bool,
    key: impl Fn(usize) -> K,
    tags_exact: bool,
    dense: impl FnOnce() -> Option<(Vec<u32>, Vec<u32>)>,
    sort: impl FnOnce(&mut dyn Iterator<Item = usize>) -> Vec<(u64, u32)>,
) -> (Vec<u32>, Vec<u32>) {
    const SAMPLE: usize = 1 << 15;
    const MAX_HASHED: usize = 1 << 19;
    let rows = || (0..n).filter(|i| valid(*i));
    let sorted = {
        let mut prev: Option<K> = None;
        rows().all(|i| {
            let k = key(i);
            let ok = prev.is_none_or(|p| p <= k);
            prev = Some(k);
            ok
        })
    };
    // Hashing wins while the distinct values are at most half the rows and their table
    // stays cache-sized; judged on rows sampled evenly across the column.
    let few_distinct = || {
        let step = n.div_ceil(SAMPLE).max(1);
        let mut sample: hashbrown::HashSet<K> = hashbrown::HashSet::new();
        let mut taken = 0usize;
        for i in (0..n).step_by(step).filter(|i| valid(*i)) {
            sample.insert(key(i));
            taken += 1;
        }
        let valid_rows = n.saturating_mul(taken) / n.div_ceil(step).max(1);
        estimate_distinct(valid_rows, taken, sample.len())
            .is_some_and(|d| d.saturating_mul(2) <= valid_rows && d <= MAX_HASHED)
    };
    let dense = if sorted { None } else { dense() };
    if let Some(d) = dense {
        return d;
    }
    let mut ids = vec![u32::MAX; n];
    let mut reps: Vec<u32> = Vec::new();
    if sorted {
        let mut prev: Option<K> = None;
        for i in rows() {
            let k = key(i);
            if prev != Some(k) {
                reps.push(i as u32);
                prev = Some(k);
            }
            ids[i] = (reps.len() - 1) as u32;
        }
    } else if few_distinct() {
        let mut seen: hashbrown::HashMap<K, u32> = hashbrown::HashMap::new();
        let mut distinct: Vec<(K, u32)> = Vec::new();
        for i in rows() {
            let k = key(i);
            let next = distinct.len() as u32;
            ids[i] = *seen.entry(k).or_insert_with(|| {
                distinct.push((k, i as u32));
                next
            });
        }
        let mut order: Vec<u32> = (0..distinct.len() as u32).collect();
        order.sort_unstable_by(|a, b| distinct[*a as usize].0.cmp(&distinct[*b as usize].0));
        let mut remap = vec![0u32; distinct.len()];
        for (sorted, tmp) in order.iter().enumerate() {
            remap[*tmp as usize] = sorted as u32;
            reps.push(distinct[*tmp as usize].1);
        }
        for id in ids.iter_mut().filter(|id| **id != u32::MAX) {
            *id = remap[*id as usize];
        }
    } else {
        let mut prev: Option<(u64, u32)> = None;
        for (tag, row) in sort(&mut rows()) {
            let same = prev.is_some_and(|(pt, pr)| {
                pt == tag && (tags_exact || key(pr as usize) == key(row as usize))
            });
            if !same {
                reps.push(row);
            }
            prev = Some((tag, row));
            ids[row as usize] = (reps.len() - 1) as u32;
        }
    }
    let card = reps.len() as u32;
    for id in ids.iter_mut().filter(|id| **id == u32::MAX) {
        *id = card;
    }
    (reps, ids)
}

fn key_array<'a>(a: &'a dyn Array, name: &str) -> Result<KeyArray<'a>, WErr> {
    KeyArray::new(a).ok_or_else(|| {
        WErr::Internal(format!(
            "column '{name}' has unsupported type {}",
            a.data_type()
        ))
    })
}

fn arrow_err(what: &str) -> impl Fn(arrow::error::ArrowError) -> WErr + '_ {
    move |e| WErr::Internal(format!("{what}: {e}"))
}

/// [`write_array`], compressed with `codec` when one is given.
fn write_coded_array(
    out: &mut Out,
    name: String,
    a: &dyn Array,
    codec: Option<SectionCodec>,
) -> Result<(), WErr> {
    let mut sec = SectionBuf::default();
    let layout = encode_array(a, &mut sec)?;
    out.coded_section(name, sec.parts(), Some(layout), codec)
}

fn write_array(out: &mut Out, name: String, a: &dyn Array) -> Result<(), WErr> {
    let mut sec = SectionBuf::default();
    let layout = encode_array(a, &mut sec)?;
    out.section(name, sec.parts(), Some(layout))?;
    Ok(())
}

fn write_bitmap(out: &mut Out, name: String, bm: &RoaringBitmap) -> Result<(), WErr> {
    let mut b = Vec::with_capacity(bm.serialized_size());
    bm.serialize_into(&mut b)?;
    out.section(name, [(0, &b[..])], None)?;
    Ok(())
}

fn null_bitmap(a: &dyn Array) -> RoaringBitmap {
    match a.nulls() {
        Some(n) if n.null_count() > 0 => RoaringBitmap::from_sorted_iter(
            (0..a.len()).filter(|i| n.is_null(*i)).map(|i| i as u32),
        )
        .unwrap_or_default(),
        _ => RoaringBitmap::new(),
    }
}

fn write_tmp(
    tmp: &Path,
    name: &str,
    columns: &TableColumns,
    batches: &[RecordBatch],
    opts: &SealOptions,
) -> Result<SealedFile, WErr> {
    let mut arrays = concat_columns(columns, batches)?;
    let rows = arrays.first().map_or_else(
        || batches.iter().map(|b| b.num_rows()).sum::<usize>(),
        |a| a.len(),
    );
    if u32::try_from(rows).is_err() {
        return Err(format!(
            "{rows} rows do not fit in one segment (at most {})",
            u32::MAX
        )
        .into());
    }

    // Sort every column by the sorted column (stable; nulls last since their id is largest).
    let sorted_idx = opts
        .sorted_column
        .as_deref()
        .and_then(|c| columns.index_of(c))
        .filter(|i| columns.columns[*i].single_value);
    if let Some(si) = sorted_idx {
        let (_, ids) = dictionary(key_array(arrays[si].as_ref(), &columns.columns[si].name)?);
        if ids.windows(2).any(|w| w[0] > w[1]) {
            let mut perm: Vec<u32> = (0..rows as u32).collect();
            perm.sort_by_key(|r| ids.get(*r as usize).copied().unwrap_or(u32::MAX));
            let perm = UInt32Array::from(perm);
            for a in arrays.iter_mut() {
                *a = take(a.as_ref(), &perm, None).map_err(arrow_err("sort rows"))?;
            }
        }
    }

    let file = File::create(tmp)?;
    let mut out = Out {
        w: BufWriter::with_capacity(1 << 20, file),
        pos: 0,
        crc: crc32fast::Hasher::new(),
        sections: Vec::new(),
    };
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.bytes(&header)?;

    let mut infos = Vec::with_capacity(columns.len());
    let mut layouts = Vec::with_capacity(columns.len());
    let mut time_range = None;
    for (i, col) in columns.columns.iter().enumerate() {
        let (info, layout, minmax) = write_column(
            &mut out,
            col,
            columns.physical[i],
            &arrays[i],
            opts,
            Some(i) == sorted_idx,
        )?;
        if opts.time_column.as_deref() == Some(col.name.as_str()) && col.single_value {
            time_range = minmax.and_then(|(lo, hi)| {
                let ms = |v: i64| match col.data_type {
                    DataType::Timestamp => Some(v),
                    DataType::Int | DataType::Long => {
                        col.format.as_ref().and_then(|f| f.epoch_to_millis(v))
                    }
                    _ => None,
                };
                Some((ms(lo)?, ms(hi)?))
            });
        }
        infos.push(info);
        layouts.push(layout);
    }

    let info = SegmentInfo {
        name: name.to_string(),
        format_version: FORMAT_VERSION,
        total_docs: rows as u64,
        start_time_ms: time_range.map(|t| t.0.min(t.1)),
        end_time_ms: time_range.map(|t| t.0.max(t.1)),
        columns: infos,
    };
    out.pad()?;
    let footer_offset = out.pos;
    let footer = Footer {
        format_version: FORMAT_VERSION,
        info: info.clone(),
        sections: std::mem::take(&mut out.sections),
        columns: layouts,
    };
    let fb = serde_json::to_vec(&footer).map_err(|e| format!("encode footer: {e}"))?;
    out.bytes(&fb)?;
    let mut trailer = [0u8; super::format::TRAILER_LEN];
    trailer[..8].copy_from_slice(&footer_offset.to_le_bytes());
    trailer[8..16].copy_from_slice(&(fb.len() as u64).to_le_bytes());
    trailer[16..20].copy_from_slice(&crc32fast::hash(&fb).to_le_bytes());
    trailer[20..24].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    trailer[24..32].copy_from_slice(MAGIC);
    out.bytes(&trailer)?;
    let Out { w, pos, crc, .. } = out;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(SealedFile {
        size_bytes: pos,
        crc: crc.finalize(),
        info,
    })
}

type MinMax = Option<(i64, i64)>;

/// Writes one column's sections; returns its info, its layout and, for integer-domain
/// columns, its min / max (for the time range).
fn write_column(
    out: &mut Out,
    col: &riffle_config::Column,
    p: Physical,
    a: &ArrayRef,
    opts: &SealOptions,
    is_sorted_col: bool,
) -> Result<(ColumnInfo, ColumnLayout, MinMax), WErr> {
    let name = col.name.as_str();
    let rows = a.len();
    let nulls = null_bitmap(a.as_ref());
    let null_count = nulls.len();
    let mut info = ColumnInfo {
        name: name.to_string(),
        data_type: col.data_type.name().to_string(),
        single_value: col.single_value,
        has_dictionary: false,
        cardinality: None,
        min_value: None,
        max_value: None,
        null_count,
        sorted: false,
        indexes: Vec::new(),
    };
    let mut layout = ColumnLayout {
        name: name.to_string(),
        encoding: Encoding::Raw,
        range_block_rows: None,
        bloom: None,
        id_bits: None,
    };
    // The column's codec; raw values without one are LZ4 compressed (Pinot's default).
    let configured = opts.compression.get(name).copied();
    let raw_codec = match configured {
        Some(c) => SectionCodec::of(c),
        None => Some(SectionCodec::Lz4),
    };
    let dict_codec = configured.and_then(SectionCodec::of);
    let int_minmax = |lo: KeyRef<'_>, hi: KeyRef<'_>| match (lo, hi) {
        (KeyRef::I(x), KeyRef::I(y)) => Some((x, y)),
        _ => None,
    };

    if !col.single_value {
        // Multi-value: the lists as they are; min / max over the items.
        let list = a
            .as_any()
            .downcast_ref::<ListArray>()
            .ok_or_else(|| format!("multi-value column '{name}' is not a list"))?;
        let offs = list.value_offsets();
        let (start, end) = (
            offs.first().copied().unwrap_or(0).max(0) as usize,
            offs.last().copied().unwrap_or(0).max(0) as usize,
        );
        let items = list.values().slice(start, end.saturating_sub(start));
        if let Some((lo, hi)) = key_array(items.as_ref(), name)?.min_max() {
            info.min_value = Some(key_to_json(lo, p));
            info.max_value = Some(key_to_json(hi, p));
        }
        layout.encoding = Encoding::MultiValueRaw;
        write_coded_array(out, section_name(name, "fwd"), a.as_ref(), raw_codec)?;
        if null_count > 0 {
            write_bitmap(out, section_name(name, "nulls"), &nulls)?;
        }
        return Ok((info, layout, None));
    }

    let ka = key_array(a.as_ref(), name)?;
    let use_dict = is_sorted_col || !opts.no_dictionary.contains(name);
    let mut minmax = None;
    if use_dict {
        let (reps, ids) = dictionary(ka);
        let card = reps.len();
        let mut idx: Vec<Option<u32>> = reps.iter().map(|r| Some(*r)).collect();
        idx.push(None);
        let dict = take(a.as_ref(), &UInt32Array::from(idx), None)
            .map_err(arrow_err("build dictionary"))?;
        let dka = key_array(dict.as_ref(), name)?;
        if card > 0 {
            let (lo, hi) = (dka.get(0), dka.get(card - 1));
            info.min_value = Some(key_to_json(lo, p));
            info.max_value = Some(key_to_json(hi, p));
            minmax = int_minmax(lo, hi);
        }
        let sorted = ids.windows(2).all(|w| w[0] <= w[1]);
        info.has_dictionary = true;
        info.cardinality = Some(card as u64);
        info.sorted = sorted;
        layout.encoding = Encoding::Dictionary;
        write_coded_array(out, section_name(name, "dict"), dict.as_ref(), dict_codec)?;
        // Ids `0..=card` (`card` is the null id), bit-packed to the dictionary's width.
        let bits = compress::id_bits(card as u32);
        let packed = compress::pack_ids(&ids, bits);
        out.coded_section(
            section_name(name, "fwd"),
            [(0, &packed[..])],
            None,
            dict_codec,
        )?;
        layout.id_bits = Some(bits);
        if null_count > 0 {
            write_bitmap(out, section_name(name, "nulls"), &nulls)?;
        }
        if sorted {
            info.indexes.push("sorted".into());
        }
        if opts.inverted.contains(name) && !sorted {
            let mut bms = vec![RoaringBitmap::new(); card];
            for (doc, id) in ids.iter().enumerate() {
                if let Some(bm) = bms.get_mut(*id as usize) {
                    bm.push(doc as u32);
                }
            }
            let mut offsets = Vec::with_capacity(card + 1);
            let mut bytes = Vec::new();
            offsets.push(0u64);
            for bm in &bms {
                bm.serialize_into(&mut bytes)?;
                offsets.push(bytes.len() as u64);
            }
            write_array(
                out,
                section_name(name, "inverted.offsets"),
                &UInt64Array::from(offsets),
            )?;
            out.section(
                section_name(name, "inverted.bitmaps"),
                [(0, &bytes[..])],
                None,
            )?;
            info.indexes.push("inverted".into());
        }
        if opts.range.contains(name) && !sorted {
            // Doc ids ordered by dictionary id (counting sort), with each id's start.
            let mut offsets = vec![0u32; card + 1];
            for id in &ids {
                if let Some(o) = offsets.get_mut(*id as usize + 1) {
                    *o += 1;
                }
            }
            for i in 1..offsets.len() {
                offsets[i] += offsets[i - 1];
            }
            let mut pos = offsets.clone();
            let mut docs = vec![0u32; rows - null_count as usize];
            for (doc, id) in ids.iter().enumerate() {
                if let Some(p) = pos.get_mut(*id as usize) {
                    if let Some(slot) = docs.get_mut(*p as usize) {
                        *slot = doc as u32;
                    }
                    *p += 1;
                }
            }
            write_array(
                out,
                section_name(name, "range.offsets"),
                &UInt32Array::from(offsets),
            )?;
            write_array(
                out,
                section_name(name, "range.docs"),
                &UInt32Array::from(docs),
            )?;
            info.indexes.push("range".into());
        }
        if opts.bloom.contains(name) {
            let mut b = BloomBuilder::new(card);
            for i in 0..card {
                b.insert(dka.get(i));
            }
            write_bloom(out, name, b, &mut layout)?;
            info.indexes.push("bloom".into());
        }
    } else {
        if let Some((lo, hi)) = ka.min_max() {
            info.min_value = Some(key_to_json(lo, p));
            info.max_value = Some(key_to_json(hi, p));
            minmax = int_minmax(lo, hi);
        }
        write_coded_array(out, section_name(name, "fwd"), a.as_ref(), raw_codec)?;
        if null_count > 0 {
            write_bitmap(out, section_name(name, "nulls"), &nulls)?;
        }
        if opts.range.contains(name) {
            let blocks = rows.div_ceil(RANGE_BLOCK_ROWS as usize);
            let mut mins: Vec<Option<u32>> = Vec::with_capacity(blocks);
            let mut maxs: Vec<Option<u32>> = Vec::with_capacity(blocks);
            for b in 0..blocks {
                let start = b * RANGE_BLOCK_ROWS as usize;
                let end = (start + RANGE_BLOCK_ROWS as usize).min(rows);
                let mut lo: Option<usize> = None;
                let mut hi: Option<usize> = None;
                for r in start..end {
                    if ka.is_null(r) {
                        continue;
                    }
                    let v = ka.get(r);
                    if lo.is_none_or(|l| cmp(v, ka.get(l)).is_lt()) {
                        lo = Some(r);
                    }
                    if hi.is_none_or(|h| cmp(v, ka.get(h)).is_gt()) {
                        hi = Some(r);
                    }
                }
                mins.push(lo.map(|r| r as u32));
                maxs.push(hi.map(|r| r as u32));
            }
            let min_a = take(a.as_ref(), &UInt32Array::from(mins), None)
                .map_err(arrow_err("range index"))?;
            let max_a = take(a.as_ref(), &UInt32Array::from(maxs), None)
                .map_err(arrow_err("range index"))?;
            write_array(out, section_name(name, "range.min"), min_a.as_ref())?;
            write_array(out, section_name(name, "range.max"), max_a.as_ref())?;
            layout.range_block_rows = Some(RANGE_BLOCK_ROWS);
            info.indexes.push("range".into());
        }
        if opts.bloom.contains(name) {
            let mut hashes: Vec<u64> = (0..rows)
                .filter(|r| !ka.is_null(*r))
                .map(|r| super::bloom::hash_key(ka.get(r)))
                .collect();
            hashes.sort_unstable();
            hashes.dedup();
            let mut b = BloomBuilder::new(hashes.len());
            for h in hashes {
                b.insert_hash(h);
            }
            write_bloom(out, name, b, &mut layout)?;
            info.indexes.push("bloom".into());
        }
    }
    Ok((info, layout, minmax))
}

fn write_bloom(
    out: &mut Out,
    name: &str,
    b: BloomBuilder,
    layout: &mut ColumnLayout,
) -> Result<(), WErr> {
    let (num_bits, words) = b.finish();
    write_array(out, section_name(name, "bloom"), &UInt64Array::from(words))?;
    layout.bloom = Some(BloomLayout {
        num_bits,
        num_hashes: NUM_HASHES,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use arrow::array::{BinaryArray, Float64Array, Int64Array, StringArray};

    use super::*;

    /// The dictionary by definition: distinct non-null keys in order; each row's rank.
    fn check<T: Ord + Clone + std::fmt::Debug>(values: &[Option<T>], ka: KeyArray<'_>) {
        let (reps, ids) = dictionary(ka);
        let distinct: Vec<T> = values
            .iter()
            .flatten()
            .cloned()
            .collect::<BTreeSet<T>>()
            .into_iter()
            .collect();
        assert_eq!(reps.len(), distinct.len(), "cardinality");
        for (d, r) in reps.iter().enumerate() {
            assert_eq!(values[*r as usize].as_ref(), Some(&distinct[d]), "rep {d}");
        }
        for (row, v) in values.iter().enumerate() {
            let want = match v {
                Some(v) => distinct.binary_search(v).unwrap_or(usize::MAX),
                None => distinct.len(),
            };
            assert_eq!(ids[row] as usize, want, "row {row} ({v:?})");
        }
    }

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn test_estimate_distinct() {
        // Every sampled row distinct: no estimate; the whole column sampled: exact.
        assert_eq!(estimate_distinct(1000, 100, 100), None);
        assert_eq!(estimate_distinct(100, 100, 40), Some(40));
        // 100,000 values drawn 32,768 times show about 27,950 distinct.
        let d = estimate_distinct(2_500_000, 32_768, 27_950).unwrap_or(0);
        assert!((95_000..105_000).contains(&d), "{d}");
        // Never more than the rows.
        assert_eq!(estimate_distinct(40_000, 32_768, 32_767), Some(40_000));
    }

    #[test]
    fn test_dictionary_matches_definition_on_every_path() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        for n in [0usize, 1, 5000, 20_000] {
            // Text: mostly distinct with shared 8-byte prefixes, short keys that differ only
            // in trailing zero bytes, empty strings and nulls (sort path).
            let text: Vec<Option<String>> = (0..n)
                .map(|i| match g.next() % 10 {
                    0 => None,
                    1 => Some(String::new()),
                    2 => Some("a\0".repeat((i % 3) + 1)),
                    3 => Some(format!("sharedpfx-{}", g.next() % 1000)),
                    _ => Some(format!("{:x}", g.next())),
                })
                .collect();
            let a = StringArray::from(text.clone());
            check(&text, KeyArray::Str(&a));
            // Few distinct text values (hash path).
            let low: Vec<Option<String>> = (0..n)
                .map(|_| match g.next() % 7 {
                    0 => None,
                    k => Some(format!("country-{k}")),
                })
                .collect();
            let a = StringArray::from(low.clone());
            check(&low, KeyArray::Str(&a));
            // Bytes with zero bytes inside and at the end.
            let bin: Vec<Option<Vec<u8>>> = (0..n)
                .map(|_| {
                    let len = (g.next() % 12) as usize;
                    Some((0..len).map(|_| (g.next() % 3) as u8).collect())
                })
                .collect();
            let refs: Vec<Option<&[u8]>> = bin.iter().map(|b| b.as_deref()).collect();
            let a = BinaryArray::from(refs);
            check(&bin, KeyArray::Bin(&a));
            // Integers of both signs, mostly distinct (sort path), then already in order.
            let mut ints: Vec<Option<i64>> = (0..n)
                .map(|_| match g.next() % 20 {
                    0 => None,
                    1 => Some(i64::MIN),
                    2 => Some(i64::MAX),
                    _ => Some(g.next() as i64),
                })
                .collect();
            let a = Int64Array::from(ints.clone());
            check(&ints, KeyArray::I64(&a));
            ints.sort();
            let a = Int64Array::from(ints.clone());
            check(&ints, KeyArray::I64(&a));
            // Integers in a narrow range with nulls (dense path), and a wider spread of a
            // twentieth as many values as rows (hash path, judged on the estimate).
            let narrow: Vec<Option<i64>> = (0..n)
                .map(|_| match g.next() % 9 {
                    0 => None,
                    _ => Some(-500 + (g.next() % 700) as i64),
                })
                .collect();
            let a = Int64Array::from(narrow.clone());
            check(&narrow, KeyArray::I64(&a));
            let spread: Vec<Option<i64>> = (0..n)
                .map(|_| Some(((g.next() % (n as u64 / 20 + 1)) * 1_000_003) as i64))
                .collect();
            let a = Int64Array::from(spread.clone());
            check(&spread, KeyArray::I64(&a));
            // Doubles: negative zero, infinities, mostly distinct.
            let fl: Vec<Option<f64>> = (0..n)
                .map(|_| match g.next() % 10 {
                    0 => None,
                    1 => Some(-0.0),
                    2 => Some(f64::NEG_INFINITY),
                    3 => Some(f64::INFINITY),
                    _ => Some((g.next() as i64) as f64 / 7.0),
                })
                .collect();
            let a = Float64Array::from(fl.clone());
            let bits: Vec<Option<i64>> = fl.iter().map(|f| f.map(total_order_bits)).collect();
            check(&bits, KeyArray::F64(&a));
        }
    }
}
