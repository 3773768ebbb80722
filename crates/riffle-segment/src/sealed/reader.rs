//! Opening a sealed segment file and reading its rows back.
//!
//! [`open`] maps the file (or reads it into 64-byte-aligned memory), checks it end to end
//! (magic, version, footer CRC, every section's bounds, zero padding and CRC, then every
//! decoded structure against the footer: lengths, dictionary ids within the dictionary, null
//! counts, index offsets) and keeps the columns as Arrow arrays that point into the file's
//! memory. Nothing read from the file is trusted before it is checked, so a bad file is a
//! `Corrupt` error, not a panic. [`read`] materializes rows in the table's Arrow types.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, RecordBatch, RecordBatchOptions, UInt16Array, UInt32Array, UInt8Array,
};
use arrow::buffer::{Buffer, MutableBuffer, ScalarBuffer};
use arrow::compute::{can_cast_types, cast, take};
use arrow::datatypes::{DataType as ArrowType, Field, Schema};
use riffle_config::DataType;
use roaring::RoaringBitmap;

use super::bloom::Bloom;
use super::compress;
use super::format::{
    align_up, decode_array, section_name, ColumnLayout, Encoding, Footer, SectionEntry, ALIGN,
    HEADER_LEN, MAGIC, TRAILER_LEN,
};
use super::value::{key_from_json, Key};
use super::{ColumnInfo, LoadMode, SealedSegment, READABLE_VERSIONS};
use crate::columns::{arrow_value_type, Physical, TableColumns};
use crate::SegmentError;

/// Dictionary ids of a forward index, at the width they were written.
#[derive(Clone, Debug)]
pub(crate) enum Ids {
    /// Up to 255 distinct values.
    U8(ScalarBuffer<u8>),
    /// Up to 65,535.
    U16(ScalarBuffer<u16>),
    /// More.
    U32(ScalarBuffer<u32>),
}

impl Ids {
    /// The id of row `i` (the null id for a row out of range, which callers never ask).
    #[inline]
    pub fn get(&self, i: usize) -> u32 {
        match self {
            Ids::U8(v) => v.get(i).map_or(u32::MAX, |x| *x as u32),
            Ids::U16(v) => v.get(i).map_or(u32::MAX, |x| *x as u32),
            Ids::U32(v) => v.get(i).copied().unwrap_or(u32::MAX),
        }
    }

    /// Rows `start..start + len` as an index array (no copy).
    fn slice_array(&self, start: usize, len: usize) -> ArrayRef {
        match self {
            Ids::U8(v) => Arc::new(UInt8Array::new(v.slice(start, len), None)),
            Ids::U16(v) => Arc::new(UInt16Array::new(v.slice(start, len), None)),
            Ids::U32(v) => Arc::new(UInt32Array::new(v.slice(start, len), None)),
        }
    }

    /// The ids of `docs` (every doc `< len`).
    fn gather(&self, docs: &[u32]) -> ArrayRef {
        Arc::new(UInt32Array::from_iter_values(
            docs.iter().map(|d| self.get(*d as usize)),
        ))
    }
}

/// How a column's values are held.
#[derive(Debug)]
pub(crate) enum ColData {
    /// Dictionary (`card` sorted distinct values, then one null) and ids (`card` = null).
    Dict {
        /// The dictionary.
        dict: ArrayRef,
        /// The forward index.
        ids: Ids,
        /// Distinct values.
        card: u32,
    },
    /// Raw values.
    Raw(ArrayRef),
    /// Raw lists (multi-value).
    Multi(ArrayRef),
}

/// The inverted index: a roaring bitmap of docs per dictionary id.
#[derive(Debug)]
pub(crate) struct Inverted {
    /// `card + 1` offsets into `bitmaps`.
    pub offsets: ScalarBuffer<u64>,
    /// Serialized bitmaps, one after another.
    pub bitmaps: Buffer,
}

impl Inverted {
    /// The docs of dictionary id `id`.
    pub fn bitmap(&self, id: u32) -> Result<RoaringBitmap, String> {
        let i = id as usize;
        let (Some(s), Some(e)) = (self.offsets.get(i), self.offsets.get(i + 1)) else {
            return Err(format!("no inverted-index entry for id {id}"));
        };
        let bytes = usize::try_from(*s)
            .ok()
            .zip(usize::try_from(*e).ok())
            .and_then(|(s, e)| self.bitmaps.as_slice().get(s..e))
            .ok_or_else(|| format!("inverted-index entry {id} is out of bounds"))?;
        RoaringBitmap::deserialize_from(bytes)
            .map_err(|e| format!("inverted-index bitmap {id} is invalid: {e}"))
    }
}

/// A range index.
#[derive(Debug)]
pub(crate) enum RangeIndex {
    /// Dictionary column: non-null doc ids ordered by dictionary id; id `i`'s docs are
    /// `docs[offsets[i]..offsets[i + 1]]`.
    Dict {
        /// `card + 1` offsets.
        offsets: ScalarBuffer<u32>,
        /// Doc ids.
        docs: ScalarBuffer<u32>,
    },
    /// Raw column: min and max of each block of `rows` rows (null for an all-null block).
    Blocks {
        /// Rows per block.
        rows: usize,
        /// Block minimums.
        min: ArrayRef,
        /// Block maximums.
        max: ArrayRef,
    },
}

/// One column of an open segment.
#[derive(Debug)]
pub(crate) struct Col {
    /// Footer metadata.
    pub info: ColumnInfo,
    /// Pinot type.
    pub dt: DataType,
    /// Storage kind.
    pub physical: Physical,
    /// Values.
    pub data: ColData,
    /// Null rows.
    pub nulls: RoaringBitmap,
    /// Smallest non-null value (items for multi-value), if known.
    pub min: Option<Key>,
    /// Largest.
    pub max: Option<Key>,
    /// Inverted index.
    pub inverted: Option<Inverted>,
    /// Range index.
    pub range: Option<RangeIndex>,
    /// Bloom filter.
    pub bloom: Option<Bloom>,
}

/// Where a table column's values come from.
#[derive(Debug)]
pub(crate) enum Source {
    /// Segment column `col`; `same_type` when its Pinot type and arity are the table's
    /// (only then are predicates on it answered here); `cast` when the Arrow array must be
    /// cast to the table's type on read.
    Column {
        /// Position in `SealedSegment::cols`.
        col: usize,
        /// Same Pinot type and arity as the table column.
        same_type: bool,
        /// Cast on read.
        cast: bool,
    },
    /// Not in the segment: every row holds the column's default (this one-row array).
    Default(ArrayRef),
}

fn corrupt(name: &str, path: &Path, reason: impl std::fmt::Display) -> SegmentError {
    SegmentError::Corrupt {
        segment: name.to_string(),
        reason: format!("{reason} in {}", path.display()),
    }
}

#[allow(unsafe_code)]
fn map_file(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: segment files are written to a temporary file, fsynced and renamed into place,
    // and never modified afterwards; a file replaced on disk is replaced by a rename, which
    // leaves this mapping on the old inode. So the mapped bytes never change underneath the
    // `&[u8]` views the returned map hands out.
    unsafe { memmap2::Mmap::map(file) }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// See [`SealedSegment::open`].
pub(crate) fn open(
    path: &Path,
    name: &str,
    columns: Arc<TableColumns>,
    mode: LoadMode,
) -> Result<SealedSegment, SegmentError> {
    let io = |e: std::io::Error| SegmentError::Io {
        segment: name.to_string(),
        reason: format!("read {}: {e}", path.display()),
    };
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let min = (HEADER_LEN + TRAILER_LEN) as u64;
    if len < min {
        return Err(corrupt(
            name,
            path,
            format!("file is {len} bytes, too short for a segment (at least {min})"),
        ));
    }
    let len = usize::try_from(len).map_err(|_| corrupt(name, path, "file is too large"))?;
    let data: Buffer = match mode {
        LoadMode::Mmap => Buffer::from(bytes::Bytes::from_owner(map_file(&file).map_err(io)?)),
        LoadMode::Heap => {
            let mut m = MutableBuffer::from_len_zeroed(len);
            file.read_exact(m.as_slice_mut()).map_err(io)?;
            m.into()
        }
    };
    let c = |reason: String| corrupt(name, path, reason);
    let (footer, crc) = check_file(&data).map_err(c)?;
    build(path, name, columns, data, footer, crc).map_err(c)
}

/// Checks the envelope and every section's checksum; returns the footer and the CRC32 of
/// the whole file (what the catalog keeps), computed in the same pass: every byte is
/// hashed once.
fn check_file(data: &Buffer) -> Result<(Footer, u32), String> {
    let b = data.as_slice();
    let len = b.len();
    if len < HEADER_LEN + TRAILER_LEN {
        return Err(format!("file is {len} bytes, too short for a segment"));
    }
    if &b[..8] != MAGIC {
        return Err("missing magic bytes at the start (not a segment file)".into());
    }
    let t = len - TRAILER_LEN;
    if &b[t + 24..] != MAGIC {
        return Err(format!(
            "missing magic bytes at the end (truncated file of {len} bytes?)"
        ));
    }
    let version = u32_at(b, t + 20);
    if !READABLE_VERSIONS.contains(&version) {
        return Err(format!(
            "format version {version} is not supported (this build reads {READABLE_VERSIONS:?})"
        ));
    }
    let header_version = u32_at(b, 8);
    if header_version != version {
        return Err(format!(
            "header says format version {header_version}, trailer says {version}"
        ));
    }
    if b[12..HEADER_LEN].iter().any(|x| *x != 0) {
        return Err("header padding is not zero at bytes 12..64".into());
    }
    let fo = u64_at(b, t);
    let fl = u64_at(b, t + 8);
    let fcrc = u32_at(b, t + 16);
    let (fo_u, fl_u) = match (usize::try_from(fo), usize::try_from(fl)) {
        (Ok(o), Ok(l)) => (o, l),
        _ => return Err(format!("footer at {fo}+{fl} is out of bounds")),
    };
    if fo_u < HEADER_LEN || fo_u % ALIGN != 0 || fo_u.checked_add(fl_u) != Some(t) {
        return Err(format!(
            "footer at byte {fo} of {fl} bytes does not end where the trailer starts (byte {t})"
        ));
    }
    let fbytes = &b[fo_u..t];
    if crc32fast::hash(fbytes) != fcrc {
        return Err(format!("footer checksum mismatch at byte {fo}"));
    }
    let footer: Footer = serde_json::from_slice(fbytes)
        .map_err(|e| format!("footer at byte {fo} is invalid: {e}"))?;
    if footer.format_version != version || footer.info.format_version != version {
        return Err(format!(
            "footer says format version {}, the file {version}",
            footer.format_version.max(footer.info.format_version)
        ));
    }
    // Version 1 knows no compression and no packed ids.
    if version == 1
        && (footer
            .sections
            .iter()
            .any(|s| s.codec.is_some() || s.raw_length.is_some())
            || footer.columns.iter().any(|c| c.id_bits.is_some()))
    {
        return Err("a version 1 file with version 2 storage".into());
    }
    // Sections: in file order, aligned, inside [header, footer), zero padding between them,
    // each with its checksum.
    let mut whole = crc32fast::Hasher::new();
    whole.update(&b[..HEADER_LEN]);
    let mut prev_end = HEADER_LEN;
    let mut names = std::collections::HashSet::new();
    for s in &footer.sections {
        let what = || {
            format!(
                "section '{}' at byte {} of {} bytes",
                s.name, s.offset, s.length
            )
        };
        let (Ok(off), Ok(slen)) = (usize::try_from(s.offset), usize::try_from(s.length)) else {
            return Err(format!("{} is out of bounds", what()));
        };
        let end = off
            .checked_add(slen)
            .filter(|e| *e <= fo_u)
            .ok_or_else(|| format!("{} is out of bounds", what()))?;
        if off % ALIGN != 0 || off != align_up(prev_end) {
            return Err(format!("{} is misplaced", what()));
        }
        if b[prev_end..off].iter().any(|x| *x != 0) {
            return Err(format!("padding before {} is not zero", what()));
        }
        if !names.insert(s.name.as_str()) {
            return Err(format!("section '{}' appears twice", s.name));
        }
        let mut section = crc32fast::Hasher::new();
        section.update(&b[off..end]);
        if section.clone().finalize() != s.crc32 {
            return Err(format!(
                "section '{}' checksum mismatch at byte {}",
                s.name, s.offset
            ));
        }
        whole.update(&b[prev_end..off]);
        whole.combine(&section);
        prev_end = end;
    }
    if align_up(prev_end) != fo_u || b[prev_end..fo_u].iter().any(|x| *x != 0) {
        return Err(format!(
            "bytes {prev_end}..{fo} before the footer are not zero padding"
        ));
    }
    whole.update(&b[prev_end..]);
    Ok((footer, whole.finalize()))
}

/// The table column type of a segment column.
fn arrow_type(dt: DataType, single_value: bool) -> ArrowType {
    let vt = arrow_value_type(dt);
    if single_value {
        vt
    } else {
        ArrowType::List(Arc::new(Field::new("item", vt, true)))
    }
}

struct Sections<'a> {
    data: &'a Buffer,
    by_name: HashMap<&'a str, &'a SectionEntry>,
    /// The file's format version (3 on: compressed arrays hold lengths for offsets).
    version: u32,
}

impl<'a> Sections<'a> {
    fn get(&self, name: &str) -> Result<(Buffer, &'a SectionEntry), String> {
        let s = self
            .by_name
            .get(name)
            .ok_or_else(|| format!("section '{name}' is missing"))?;
        // Bounds were checked in `check_file`.
        let (off, len) = (s.offset as usize, s.length as usize);
        if off.checked_add(len).is_none_or(|e| e > self.data.len()) {
            return Err(format!("section '{name}' is out of bounds"));
        }
        let stored = self.data.slice_with_length(off, len);
        match (s.codec, s.raw_length) {
            (None, None) => Ok((stored, s)),
            (Some(codec), Some(raw)) => {
                let raw =
                    usize::try_from(raw).map_err(|_| format!("section '{name}' is too large"))?;
                let mut logical = compress::decompress(codec, stored.as_slice(), raw)
                    .map_err(|e| format!("section '{name}' at byte {}: {e}", s.offset))?;
                if let (Some(layout), true) = (&s.array, self.version >= 3) {
                    compress::lengths_to_offsets(logical.as_slice_mut(), layout);
                }
                Ok((logical.into(), s))
            }
            _ => Err(format!(
                "section '{name}' names a codec without a length, or a length without a codec"
            )),
        }
    }

    fn array(&self, name: &str, expect: &ArrowType) -> Result<ArrayRef, String> {
        let (buf, s) = self.get(name)?;
        let layout = s
            .array
            .as_ref()
            .ok_or_else(|| format!("section '{name}' has no array layout"))?;
        decode_array(&buf, layout, expect)
            .map_err(|e| format!("section '{name}' at byte {}: {e}", s.offset))
    }

    fn type_of(&self, name: &str) -> Result<ArrowType, String> {
        let (_, s) = self.get(name)?;
        Ok(match s.array.as_ref().map(|a| a.ty.as_str()) {
            Some("u8") => ArrowType::UInt8,
            Some("u16") => ArrowType::UInt16,
            Some("u32") => ArrowType::UInt32,
            other => {
                return Err(format!(
                    "section '{name}' holds {other:?}, not dictionary ids"
                ))
            }
        })
    }
}

/// Version 1's forward index: an Arrow array of u8, u16 or u32 ids.
fn plain_ids(secs: &Sections<'_>, name: &str, rows: usize) -> Result<Ids, String> {
    let fwd = secs.array(name, &secs.type_of(name)?)?;
    if fwd.len() != rows || fwd.null_count() != 0 {
        return Err("forward index length does not match the rows".into());
    }
    let any = fwd.as_any();
    Ok(if let Some(a) = any.downcast_ref::<UInt8Array>() {
        Ids::U8(a.values().clone())
    } else if let Some(a) = any.downcast_ref::<UInt16Array>() {
        Ids::U16(a.values().clone())
    } else if let Some(a) = any.downcast_ref::<UInt32Array>() {
        Ids::U32(a.values().clone())
    } else {
        return Err("forward index is not dictionary ids".into());
    })
}

/// Version 2's forward index: ids bit-packed to the dictionary's width, unpacked into the
/// narrowest of u8, u16 and u32 that holds `0..=card`.
fn packed_ids(
    secs: &Sections<'_>,
    name: &str,
    rows: usize,
    bits: u8,
    card: usize,
) -> Result<Ids, String> {
    let (buf, s) = secs.get(name)?;
    let at = |e: String| format!("section '{name}' at byte {}: {e}", s.offset);
    if bits != compress::id_bits(card as u32) {
        return Err(at(format!("{bits} bits per id for a dictionary of {card}")));
    }
    let bytes = buf.as_slice();
    Ok(if card <= u8::MAX as usize {
        let mut v = vec![0u8; rows];
        compress::unpack_ids(bytes, rows, bits, |i, x| v[i] = x as u8).map_err(at)?;
        Ids::U8(ScalarBuffer::from(v))
    } else if card <= u16::MAX as usize {
        let mut v = vec![0u16; rows];
        compress::unpack_ids(bytes, rows, bits, |i, x| v[i] = x as u16).map_err(at)?;
        Ids::U16(ScalarBuffer::from(v))
    } else {
        let mut v = vec![0u32; rows];
        compress::unpack_ids(bytes, rows, bits, |i, x| v[i] = x).map_err(at)?;
        Ids::U32(ScalarBuffer::from(v))
    })
}

fn u32s(a: &ArrayRef, what: &str) -> Result<ScalarBuffer<u32>, String> {
    super::format::as_u32(a)
        .filter(|a| a.null_count() == 0)
        .map(|a| a.values().clone())
        .ok_or_else(|| format!("{what} is not a u32 array without nulls"))
}

/// The first row whose id is beyond `card`, the rows holding the null id (`card`), and
/// whether the ids never decrease.
fn check_ids<T: Copy + Into<u32>>(ids: &[T], card: u32) -> (Option<usize>, u64, bool) {
    let mut nulls = 0u64;
    let mut sorted = true;
    let mut prev = 0u32;
    for (i, id) in ids.iter().enumerate() {
        let id: u32 = (*id).into();
        if id > card {
            return (Some(i), nulls, sorted);
        }
        nulls += (id == card) as u64;
        sorted &= id >= prev;
        prev = id;
    }
    (None, nulls, sorted)
}

fn increasing_from_zero<T: Copy + PartialOrd + Default>(v: &[T], last_max: T) -> bool {
    v.first().is_some_and(|f| *f == T::default())
        && v.windows(2).all(|w| w[0] <= w[1])
        && v.last().is_some_and(|l| *l <= last_max)
}

fn build_col(
    secs: &Sections<'_>,
    info: &ColumnInfo,
    layout: &ColumnLayout,
    rows: usize,
) -> Result<Col, String> {
    let name = info.name.as_str();
    let dt: DataType = serde_json::from_value(serde_json::Value::String(info.data_type.clone()))
        .map_err(|_| format!("column '{name}' has unknown data type '{}'", info.data_type))?;
    let physical = Physical::of(dt);
    let at = arrow_type(dt, info.single_value);
    let sec = |kind: &str| section_name(name, kind);
    let bad = |what: &str| format!("column '{name}': {what}");

    let nulls = if info.null_count > 0 {
        let (buf, s) = secs.get(&sec("nulls"))?;
        let bm = RoaringBitmap::deserialize_from(buf.as_slice()).map_err(|e| {
            format!(
                "section '{}' at byte {}: invalid bitmap: {e}",
                s.name, s.offset
            )
        })?;
        if bm.len() != info.null_count || bm.max().is_some_and(|m| m as usize >= rows) {
            return Err(bad("null bitmap does not match the null count and rows"));
        }
        bm
    } else {
        RoaringBitmap::new()
    };

    let expected = match (info.single_value, info.has_dictionary) {
        (false, false) => Encoding::MultiValueRaw,
        (true, true) => Encoding::Dictionary,
        (true, false) => Encoding::Raw,
        (false, true) => return Err(bad("multi-value column with a dictionary")),
    };
    if layout.encoding != expected {
        return Err(bad("encoding does not match the column info"));
    }
    let data = match layout.encoding {
        Encoding::Dictionary => {
            let dict = secs.array(&sec("dict"), &at)?;
            let card = dict
                .len()
                .checked_sub(1)
                .ok_or_else(|| bad("empty dictionary"))?;
            if dict.null_count() != 1 || !dict.is_null(card) {
                return Err(bad("dictionary must end with its one null"));
            }
            let card32 = u32::try_from(card).map_err(|_| bad("dictionary too large"))?;
            if info.cardinality != Some(card as u64) {
                return Err(bad("cardinality does not match the dictionary"));
            }
            let ids = match layout.id_bits {
                Some(bits) => packed_ids(secs, &sec("fwd"), rows, bits, card)?,
                None => plain_ids(secs, &sec("fwd"), rows).map_err(|e| bad(&e))?,
            };
            // Every id within the dictionary, the null id on exactly the null rows' count,
            // and sorted ids when the column says so.
            let (beyond, null_ids, sorted) = match &ids {
                Ids::U8(v) => check_ids(v, card32),
                Ids::U16(v) => check_ids(v, card32),
                Ids::U32(v) => check_ids(v, card32),
            };
            if let Some(i) = beyond {
                return Err(bad(&format!(
                    "row {i} has dictionary id {} beyond {card}",
                    ids.get(i)
                )));
            }
            if null_ids != info.null_count {
                return Err(bad("null ids do not match the null count"));
            }
            if info.sorted && !sorted {
                return Err(bad("marked sorted but its ids are not"));
            }
            ColData::Dict {
                dict,
                ids,
                card: card32,
            }
        }
        Encoding::Raw | Encoding::MultiValueRaw => {
            let a = secs.array(&sec("fwd"), &at)?;
            if a.len() != rows || a.null_count() as u64 != info.null_count {
                return Err(bad("values do not match the rows and null count"));
            }
            if layout.encoding == Encoding::Raw {
                ColData::Raw(a)
            } else {
                ColData::Multi(a)
            }
        }
    };

    let has = |idx: &str| info.indexes.iter().any(|i| i == idx);
    let mut inverted = None;
    let mut range = None;
    let mut bloom = None;
    if info.single_value {
        if has("inverted") {
            let ColData::Dict { card, .. } = &data else {
                return Err(bad("inverted index without a dictionary"));
            };
            let offs = secs.array(&sec("inverted.offsets"), &ArrowType::UInt64)?;
            let offsets = super::format::as_u64(&offs)
                .filter(|a| a.null_count() == 0)
                .map(|a| a.values().clone())
                .ok_or_else(|| bad("inverted offsets are not u64"))?;
            let (bitmaps, _) = secs.get(&sec("inverted.bitmaps"))?;
            if offsets.len() != *card as usize + 1
                || !increasing_from_zero(&offsets, bitmaps.len() as u64)
            {
                return Err(bad("inverted-index offsets are inconsistent"));
            }
            inverted = Some(Inverted { offsets, bitmaps });
        }
        if has("range") {
            range = Some(match &data {
                ColData::Dict { card, .. } => {
                    let offsets = u32s(
                        &secs.array(&sec("range.offsets"), &ArrowType::UInt32)?,
                        "range offsets",
                    )?;
                    let docs = u32s(
                        &secs.array(&sec("range.docs"), &ArrowType::UInt32)?,
                        "range docs",
                    )?;
                    if offsets.len() != *card as usize + 1
                        || !increasing_from_zero(&offsets, docs.len() as u32)
                        || offsets.last().is_some_and(|l| *l as usize != docs.len())
                    {
                        return Err(bad("range-index offsets are inconsistent"));
                    }
                    RangeIndex::Dict { offsets, docs }
                }
                _ => {
                    let block = layout
                        .range_block_rows
                        .filter(|r| *r > 0)
                        .ok_or_else(|| bad("range index without a block size"))?
                        as usize;
                    let min = secs.array(&sec("range.min"), &at)?;
                    let max = secs.array(&sec("range.max"), &at)?;
                    let blocks = rows.div_ceil(block);
                    if min.len() != blocks || max.len() != blocks {
                        return Err(bad("range-index blocks do not cover the rows"));
                    }
                    RangeIndex::Blocks {
                        rows: block,
                        min,
                        max,
                    }
                }
            });
        }
        if has("bloom") {
            let p = layout
                .bloom
                .ok_or_else(|| bad("bloom filter without parameters"))?;
            let words = secs.array(&sec("bloom"), &ArrowType::UInt64)?;
            let words = super::format::as_u64(&words)
                .map(|a| a.values().clone())
                .ok_or_else(|| bad("bloom filter is not u64 words"))?;
            bloom = Some(
                Bloom::new(words, p.num_bits, p.num_hashes)
                    .ok_or_else(|| bad("bloom filter parameters do not fit its bits"))?,
            );
        }
    }
    let min = info
        .min_value
        .as_ref()
        .and_then(|v| key_from_json(v, physical));
    let max = info
        .max_value
        .as_ref()
        .and_then(|v| key_from_json(v, physical));
    Ok(Col {
        info: info.clone(),
        dt,
        physical,
        data,
        nulls,
        min,
        max,
        inverted,
        range,
        bloom,
    })
}

fn build(
    path: &Path,
    name: &str,
    columns: Arc<TableColumns>,
    data: Buffer,
    footer: Footer,
    file_crc: u32,
) -> Result<SealedSegment, String> {
    let rows = usize::try_from(footer.info.total_docs)
        .ok()
        .filter(|r| *r <= u32::MAX as usize)
        .ok_or_else(|| {
            format!(
                "{} rows is more than a segment holds",
                footer.info.total_docs
            )
        })?;
    if footer.columns.len() != footer.info.columns.len() {
        return Err("footer describes a different number of columns than its info".into());
    }
    let secs = Sections {
        version: footer.format_version,
        data: &data,
        by_name: footer
            .sections
            .iter()
            .map(|s| (s.name.as_str(), s))
            .collect(),
    };
    let mut cols = Vec::with_capacity(footer.columns.len());
    let mut by_name = HashMap::new();
    for (info, layout) in footer.info.columns.iter().zip(&footer.columns) {
        if info.name != layout.name {
            return Err(format!(
                "footer column '{}' has the layout of '{}'",
                info.name, layout.name
            ));
        }
        if by_name.insert(info.name.clone(), cols.len()).is_some() {
            return Err(format!("column '{}' appears twice", info.name));
        }
        cols.push(build_col(&secs, info, layout, rows)?);
    }

    // Table columns: from the segment when it has them, else the default value.
    let mut defaults: Option<Vec<ArrayRef>> = None;
    let mut table_map = Vec::with_capacity(columns.len());
    let mut out_fields = Vec::with_capacity(columns.len());
    for (i, tc) in columns.columns.iter().enumerate() {
        let field = columns.arrow.field(i);
        let found = by_name.get(&tc.name).copied().and_then(|ci| {
            let c: &Col = &cols[ci];
            let seg_type = arrow_type(c.dt, c.info.single_value);
            let same_type = c.dt == tc.data_type && c.info.single_value == tc.single_value;
            if seg_type == *field.data_type() {
                Some((ci, same_type, false))
            } else if can_cast_types(&seg_type, field.data_type()) {
                Some((ci, same_type, true))
            } else {
                None
            }
        });
        let source = match found {
            Some((col, same_type, cast)) => {
                let nullable = cols[col].info.null_count > 0 || field.is_nullable();
                out_fields.push(Arc::new(field.as_ref().clone().with_nullable(nullable)));
                Source::Column {
                    col,
                    same_type,
                    cast,
                }
            }
            None => {
                if defaults.is_none() {
                    defaults = Some(
                        columns
                            .default_values()
                            .map_err(|e| format!("default values: {e}"))?,
                    );
                }
                let d = defaults
                    .as_ref()
                    .and_then(|b| b.get(i).cloned())
                    .ok_or_else(|| format!("no default value for column '{}'", tc.name))?;
                out_fields.push(Arc::new(field.as_ref().clone()));
                Source::Default(d)
            }
        };
        table_map.push(source);
    }
    let info = footer.info;
    Ok(SealedSegment {
        name: name.to_string(),
        info,
        columns,
        path: path.to_path_buf(),
        size_bytes: data.len() as u64,
        file_crc,
        cols,
        table_map,
        by_name,
        out_fields,
    })
}

/// Rows to materialize: a contiguous range or a list of doc ids.
enum Chunk<'a> {
    Range(usize, usize),
    Docs(&'a [u32]),
}

impl Chunk<'_> {
    fn len(&self) -> usize {
        match self {
            Chunk::Range(_, l) => *l,
            Chunk::Docs(d) => d.len(),
        }
    }
}

fn values(col: &Col, chunk: &Chunk<'_>) -> Result<ArrayRef, String> {
    let arrow = |e: arrow::error::ArrowError| format!("read column '{}': {e}", col.info.name);
    Ok(match (&col.data, chunk) {
        (ColData::Dict { dict, ids, .. }, Chunk::Range(s, l)) => {
            take(dict.as_ref(), ids.slice_array(*s, *l).as_ref(), None).map_err(arrow)?
        }
        (ColData::Dict { dict, ids, .. }, Chunk::Docs(d)) => {
            take(dict.as_ref(), ids.gather(d).as_ref(), None).map_err(arrow)?
        }
        (ColData::Raw(a) | ColData::Multi(a), Chunk::Range(s, l)) => a.slice(*s, *l),
        (ColData::Raw(a) | ColData::Multi(a), Chunk::Docs(d)) => {
            take(a.as_ref(), &UInt32Array::from(d.to_vec()), None).map_err(arrow)?
        }
    })
}

fn batch(
    seg: &SealedSegment,
    schema: &Arc<Schema>,
    proj: &[usize],
    chunk: Chunk<'_>,
) -> Result<RecordBatch, SegmentError> {
    // A sorted list of docs without gaps is a range: slice instead of gathering.
    let chunk = match chunk {
        Chunk::Docs(d)
            if d.first()
                .zip(d.last())
                .is_some_and(|(f, l)| (l - f) as usize + 1 == d.len()) =>
        {
            Chunk::Range(d.first().map_or(0, |f| *f as usize), d.len())
        }
        c => c,
    };
    let n = chunk.len();
    let mut arrays = Vec::with_capacity(proj.len());
    for (k, &i) in proj.iter().enumerate() {
        let a = match seg.table_map.get(i) {
            Some(Source::Column { col, cast: c, .. }) => {
                let col = &seg.cols[*col];
                let a = values(col, &chunk).map_err(SegmentError::Internal)?;
                if *c {
                    cast(&a, schema.field(k).data_type()).map_err(|e| {
                        SegmentError::internal(format!("cast column '{}': {e}", col.info.name))
                    })?
                } else {
                    a
                }
            }
            Some(Source::Default(d)) => {
                take(d.as_ref(), &UInt32Array::from(vec![0u32; n]), None)
                    .map_err(|e| SegmentError::internal(format!("default values: {e}")))?
            }
            None => return Err(SegmentError::internal(format!("no table column {i}"))),
        };
        arrays.push(a);
    }
    RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(n)),
    )
    .map_err(|e| SegmentError::internal(format!("segment '{}': build batch: {e}", seg.name)))
}

/// See [`SealedSegment::read`].
pub(crate) fn read(
    seg: &SealedSegment,
    projection: Option<&[usize]>,
    selection: Option<&RoaringBitmap>,
    batch_rows: usize,
) -> Result<Vec<RecordBatch>, SegmentError> {
    let ncols = seg.columns.len();
    let proj: Vec<usize> = match projection {
        Some(p) => {
            if let Some(bad) = p.iter().find(|i| **i >= ncols) {
                return Err(SegmentError::internal(format!(
                    "projection index {bad} is out of range for {ncols} columns"
                )));
            }
            p.to_vec()
        }
        None => (0..ncols).collect(),
    };
    let schema = Arc::new(Schema::new(
        proj.iter()
            .map(|i| seg.out_fields[*i].clone())
            .collect::<Vec<_>>(),
    ));
    let step = batch_rows.max(1);
    let n = seg.num_rows();
    let mut out = Vec::new();
    // A selection of one run of docs (a range on the sorted column, a time range on rows
    // in time order) is read as that range, without visiting each doc id.
    let run = selection.and_then(|sel| {
        let (lo, hi) = (sel.min()?, sel.max()?);
        (sel.len() == u64::from(hi - lo) + 1).then_some((lo as usize, (hi as usize + 1).min(n)))
    });
    match (selection, run) {
        (None, _) | (Some(_), Some(_)) => {
            let (mut start, end) = run.unwrap_or((0, n));
            while start < end {
                let len = step.min(end - start);
                out.push(batch(seg, &schema, &proj, Chunk::Range(start, len))?);
                start += len;
            }
        }
        (Some(sel), None) => {
            let mut docs = Vec::with_capacity(step.min(sel.len() as usize));
            for d in sel.iter() {
                if d as usize >= n {
                    break;
                }
                docs.push(d);
                if docs.len() == step {
                    out.push(batch(seg, &schema, &proj, Chunk::Docs(&docs))?);
                    docs.clear();
                }
            }
            if !docs.is_empty() {
                out.push(batch(seg, &schema, &proj, Chunk::Docs(&docs))?);
            }
        }
    }
    Ok(out)
}
