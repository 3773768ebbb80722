//! The byte layout of a sealed segment file: header, sections, footer, trailer, and the
//! encoding of Arrow arrays inside sections.
//!
//! Owns the constants and the footer types every other part of `sealed` reads and writes,
//! and the two functions that turn an Arrow array into section bytes ([`SectionBuf`] +
//! [`encode_array`]) and back ([`decode_array`]). See `docs/segment-format.md`.
//!
//! Invariants: every number is little-endian; every section and every buffer inside an array
//! section starts at a multiple of [`ALIGN`] from the start of the file, so that a file
//! mapped or read into 64-byte-aligned memory decodes without copying. Decoding never
//! panics: every offset and length taken from the file is checked before it is used, and a
//! failure is an `Err(reason)` the caller turns into `SegmentError::Corrupt`.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, ListArray, PrimitiveArray, StringArray,
    UInt32Array, UInt64Array,
};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::ToByteSlice;
use arrow::datatypes::{ArrowPrimitiveType, DataType as ArrowType, TimeUnit};
use serde::{Deserialize, Serialize};

use super::SegmentInfo;

/// Magic bytes at the start and at the very end of a segment file.
pub(crate) const MAGIC: &[u8; 8] = b"RIFFLSEG";
/// Alignment of sections and of buffers inside array sections.
pub(crate) const ALIGN: usize = 64;
/// Header: magic (8), format version (u32), zeros up to 64 bytes.
pub(crate) const HEADER_LEN: usize = 64;
/// Trailer: footer offset (u64), footer length (u64), footer CRC32 (u32), format version
/// (u32), magic (8).
pub(crate) const TRAILER_LEN: usize = 32;

/// Rounds `n` up to a multiple of [`ALIGN`].
pub(crate) fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// The footer: JSON between the last section and the trailer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Footer {
    /// Same as the header's and the trailer's.
    pub format_version: u32,
    /// What queries and the catalog need to know.
    pub info: SegmentInfo,
    /// Every section, in file order.
    pub sections: Vec<SectionEntry>,
    /// How each column is stored (parallel to `info.columns`).
    pub columns: Vec<ColumnLayout>,
}

/// Where a section is and its checksum.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SectionEntry {
    /// `col:<column>:<kind>`.
    pub name: String,
    /// From the start of the file; a multiple of [`ALIGN`].
    pub offset: u64,
    /// Bytes.
    pub length: u64,
    /// CRC32 (IEEE) of the section's bytes.
    pub crc32: u32,
    /// For sections holding one Arrow array: where its buffers are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array: Option<ArrayLayout>,
    /// Version 2: the section is stored compressed in chunks with this codec
    /// (`compress.rs`); offsets inside it (`array`) are into its logical bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<super::compress::SectionCodec>,
    /// Version 2: the length of a compressed section's logical bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_length: Option<u64>,
}

/// One Arrow array inside a section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ArrayLayout {
    /// Type tag: u8, u16, u32, u64, i32, i64, f32, f64, bool, timestamp_ms, utf8, binary,
    /// list.
    #[serde(rename = "type")]
    pub ty: String,
    /// Elements.
    pub len: u64,
    /// Null elements (a validity buffer is present when > 0).
    pub null_count: u64,
    /// Validity bits (LSB first, 1 = valid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<BufRef>,
    /// i32 offsets (`len + 1` of them) for utf8, binary and list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsets: Option<BufRef>,
    /// Values: fixed-width values, packed bits for bool, bytes for utf8 / binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<BufRef>,
    /// The items of a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<Box<ArrayLayout>>,
}

/// A buffer inside a section (offset from the section's start).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct BufRef {
    /// From the start of the section; a multiple of [`ALIGN`].
    pub offset: u64,
    /// Bytes.
    pub length: u64,
}

/// How a column's values are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Encoding {
    /// `dict` (sorted distinct values + one trailing null) and `fwd` (dictionary ids).
    Dictionary,
    /// `fwd` holds the values.
    Raw,
    /// `fwd` holds the lists (multi-value column).
    MultiValueRaw,
}

/// The storage of one column (parallel to `SegmentInfo::columns`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ColumnLayout {
    /// Column name.
    pub name: String,
    /// Storage.
    pub encoding: Encoding,
    /// Range index over blocks of raw values: rows per block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_block_rows: Option<u32>,
    /// Bloom filter parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bloom: Option<BloomLayout>,
    /// Version 2: the dictionary ids of `fwd` are bit-packed, this many bits each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_bits: Option<u8>,
}

/// Bloom filter parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BloomLayout {
    /// Bits in the filter (a multiple of 64).
    pub num_bits: u64,
    /// Hash functions.
    pub num_hashes: u32,
}

/// The section name of one part of a column.
pub(crate) fn section_name(column: &str, kind: &str) -> String {
    format!("col:{column}:{kind}")
}

/// Section bytes under construction: buffers at 64-byte-aligned offsets, zeros between
/// them. The buffers are kept as parts (borrowed from the arrays where their bytes already
/// are the stored form, owned otherwise), so a section is written without being copied
/// into one contiguous buffer first.
#[derive(Debug, Default)]
pub(crate) struct SectionBuf<'a> {
    /// Each buffer with its offset in the section.
    parts: Vec<(usize, Cow<'a, [u8]>)>,
    /// The section's length so far (the end of the last buffer).
    len: usize,
}

impl<'a> SectionBuf<'a> {
    /// Appends `data` at the next aligned offset.
    pub fn push(&mut self, data: Cow<'a, [u8]>) -> BufRef {
        let start = align_up(self.len);
        let length = data.len();
        self.parts.push((start, data));
        self.len = start + length;
        BufRef {
            offset: start as u64,
            length: length as u64,
        }
    }

    /// The buffers with their offsets, in order.
    pub fn parts(&self) -> impl Iterator<Item = (usize, &[u8])> {
        self.parts.iter().map(|(o, d)| (*o, d.as_ref()))
    }

    /// An empty buffer that continues this one: its offsets follow this one's end.
    fn continuation<'b>(&self) -> SectionBuf<'b> {
        SectionBuf {
            parts: Vec::new(),
            len: self.len,
        }
    }

    /// Appends a continuation's buffers (copied: they may borrow from a temporary).
    fn append_owned(&mut self, next: SectionBuf<'_>) {
        for (o, d) in next.parts {
            self.parts.push((o, Cow::Owned(d.into_owned())));
        }
        self.len = next.len;
    }
}

/// A fixed-width number stored little-endian.
pub(crate) trait LeNative: Copy + Default + arrow::datatypes::ArrowNativeType {
    /// Bytes per value.
    const WIDTH: usize;
    /// Appends the little-endian bytes of `self`.
    fn put(self, out: &mut Vec<u8>);
    /// Reads a value from exactly `WIDTH` bytes.
    fn get(b: &[u8]) -> Self;
}

macro_rules! le_native {
    ($($t:ty),*) => {$(
        impl LeNative for $t {
            const WIDTH: usize = std::mem::size_of::<$t>();
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(b: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(&b[..std::mem::size_of::<$t>()]);
                <$t>::from_le_bytes(a)
            }
        }
    )*};
}
le_native!(u8, u16, u32, u64, i32, i64, f32, f64);

/// The little-endian bytes of `values`.
pub(crate) fn le_bytes<T: LeNative>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * T::WIDTH);
    for v in values {
        v.put(&mut out);
    }
    out
}

/// The type tag of an Arrow type this format stores, if it stores it.
pub(crate) fn type_tag(dt: &ArrowType) -> Option<&'static str> {
    Some(match dt {
        ArrowType::UInt8 => "u8",
        ArrowType::UInt16 => "u16",
        ArrowType::UInt32 => "u32",
        ArrowType::UInt64 => "u64",
        ArrowType::Int32 => "i32",
        ArrowType::Int64 => "i64",
        ArrowType::Float32 => "f32",
        ArrowType::Float64 => "f64",
        ArrowType::Boolean => "bool",
        ArrowType::Timestamp(TimeUnit::Millisecond, None) => "timestamp_ms",
        ArrowType::Utf8 => "utf8",
        ArrowType::Binary => "binary",
        ArrowType::List(_) => "list",
        _ => return None,
    })
}

fn validity_bytes(a: &dyn Array) -> Option<Vec<u8>> {
    let nulls = a.nulls()?;
    if nulls.null_count() == 0 {
        return None;
    }
    Some(nulls.inner().sliced().as_slice().to_vec())
}

/// The stored (little-endian) bytes of `values`: borrowed on a little-endian machine.
fn stored_bytes<T: LeNative>(values: &[T]) -> Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        Cow::Borrowed(values.to_byte_slice())
    } else {
        Cow::Owned(le_bytes(values))
    }
}

/// Offsets starting at 0 (borrowed when they already do), and the range of values they
/// cover.
fn rebased_offsets(offsets: &[i32]) -> Result<(Cow<'_, [u8]>, usize, usize), String> {
    let first = *offsets.first().ok_or("empty offsets")?;
    let last = *offsets.last().ok_or("empty offsets")?;
    let start = usize::try_from(first).map_err(|_| "negative offset")?;
    let end = usize::try_from(last).map_err(|_| "negative offset")?;
    let bytes = if first == 0 {
        stored_bytes(offsets)
    } else {
        let rebased: Vec<i32> = offsets.iter().map(|o| o - first).collect();
        Cow::Owned(le_bytes(&rebased))
    };
    Ok((bytes, start, end))
}

fn encode_primitive<'a, T: ArrowPrimitiveType>(
    a: &'a dyn Array,
    sec: &mut SectionBuf<'a>,
) -> Option<BufRef>
where
    T::Native: LeNative,
{
    let p = a.as_any().downcast_ref::<PrimitiveArray<T>>()?;
    Some(sec.push(stored_bytes(p.values())))
}

/// Appends `a`'s buffers to `sec` and describes them.
pub(crate) fn encode_array<'a>(
    a: &'a dyn Array,
    sec: &mut SectionBuf<'a>,
) -> Result<ArrayLayout, String> {
    use arrow::datatypes::*;
    let ty = type_tag(a.data_type())
        .ok_or_else(|| format!("cannot store arrays of type {}", a.data_type()))?;
    let mut layout = ArrayLayout {
        ty: ty.to_string(),
        len: a.len() as u64,
        null_count: a.null_count() as u64,
        validity: None,
        offsets: None,
        values: None,
        child: None,
    };
    if let Some(v) = validity_bytes(a) {
        layout.validity = Some(sec.push(Cow::Owned(v)));
    }
    let wrong = || format!("array of type {} has an unexpected layout", a.data_type());
    layout.values = match a.data_type() {
        ArrowType::UInt8 => encode_primitive::<UInt8Type>(a, sec),
        ArrowType::UInt16 => encode_primitive::<UInt16Type>(a, sec),
        ArrowType::UInt32 => encode_primitive::<UInt32Type>(a, sec),
        ArrowType::UInt64 => encode_primitive::<UInt64Type>(a, sec),
        ArrowType::Int32 => encode_primitive::<Int32Type>(a, sec),
        ArrowType::Int64 => encode_primitive::<Int64Type>(a, sec),
        ArrowType::Float32 => encode_primitive::<Float32Type>(a, sec),
        ArrowType::Float64 => encode_primitive::<Float64Type>(a, sec),
        ArrowType::Timestamp(_, _) => encode_primitive::<TimestampMillisecondType>(a, sec),
        ArrowType::Boolean => {
            let b = a
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(wrong)?;
            Some(sec.push(Cow::Owned(b.values().sliced().as_slice().to_vec())))
        }
        ArrowType::Utf8 => {
            let s = a.as_any().downcast_ref::<StringArray>().ok_or_else(wrong)?;
            let (offs, start, end) = rebased_offsets(s.value_offsets())?;
            layout.offsets = Some(sec.push(offs));
            let data = s.values().as_slice().get(start..end).ok_or_else(wrong)?;
            Some(sec.push(Cow::Borrowed(data)))
        }
        ArrowType::Binary => {
            let s = a.as_any().downcast_ref::<BinaryArray>().ok_or_else(wrong)?;
            let (offs, start, end) = rebased_offsets(s.value_offsets())?;
            layout.offsets = Some(sec.push(offs));
            let data = s.values().as_slice().get(start..end).ok_or_else(wrong)?;
            Some(sec.push(Cow::Borrowed(data)))
        }
        ArrowType::List(_) => {
            let l = a.as_any().downcast_ref::<ListArray>().ok_or_else(wrong)?;
            let (offs, start, end) = rebased_offsets(l.value_offsets())?;
            layout.offsets = Some(sec.push(offs));
            // The items are a new (sliced) array: their buffers continue the section as
            // copies.
            let items = l.values().slice(start, end.saturating_sub(start));
            let mut cont = sec.continuation();
            layout.child = Some(Box::new(encode_array(items.as_ref(), &mut cont)?));
            sec.append_owned(cont);
            None
        }
        _ => return Err(wrong()),
    };
    if layout.values.is_none() && layout.child.is_none() {
        return Err(wrong());
    }
    Ok(layout)
}

/// The bytes of `r` inside `section`, checked.
fn buf(section: &Buffer, r: Option<&BufRef>, what: &str) -> Result<Buffer, String> {
    let r = r.ok_or_else(|| format!("missing {what} buffer"))?;
    let off = usize::try_from(r.offset).map_err(|_| format!("{what} buffer offset too large"))?;
    let len = usize::try_from(r.length).map_err(|_| format!("{what} buffer length too large"))?;
    let end = off
        .checked_add(len)
        .filter(|e| *e <= section.len())
        .ok_or_else(|| {
            format!(
                "{what} buffer at {off}+{len} is outside its section of {} bytes",
                section.len()
            )
        })?;
    debug_assert!(end <= section.len());
    Ok(section.slice_with_length(off, len))
}

/// `len` values of `T` from `b`: without copying when the platform is little-endian and
/// the bytes are aligned, else copied.
pub(crate) fn scalar_buffer<T: LeNative>(
    b: &Buffer,
    len: usize,
    what: &str,
) -> Result<ScalarBuffer<T>, String> {
    let bytes = len
        .checked_mul(T::WIDTH)
        .filter(|n| *n <= b.len())
        .ok_or_else(|| {
            format!(
                "{what} buffer holds {} bytes, too few for {len} values",
                b.len()
            )
        })?;
    let aligned = b.as_ptr().align_offset(std::mem::align_of::<T>()) == 0;
    if cfg!(target_endian = "little") && aligned {
        Ok(ScalarBuffer::from(b.slice_with_length(0, bytes)))
    } else {
        let v: Vec<T> = b.as_slice()[..bytes]
            .chunks_exact(T::WIDTH)
            .map(T::get)
            .collect();
        Ok(ScalarBuffer::from(v))
    }
}

fn bits(b: &Buffer, len: usize, what: &str) -> Result<BooleanBuffer, String> {
    if len.div_ceil(8) > b.len() {
        return Err(format!(
            "{what} buffer holds {} bytes, too few for {len} bits",
            b.len()
        ));
    }
    Ok(BooleanBuffer::new(b.clone(), 0, len))
}

fn offsets(
    section: &Buffer,
    l: &ArrayLayout,
    len: usize,
    max: usize,
) -> Result<OffsetBuffer<i32>, String> {
    let n = len.checked_add(1).ok_or("length overflow")?;
    let o = scalar_buffer::<i32>(&buf(section, l.offsets.as_ref(), "offsets")?, n, "offsets")?;
    let mut prev = 0i32;
    for (i, v) in o.iter().enumerate() {
        if (i == 0 && *v != 0) || *v < prev {
            return Err("offsets are not increasing from 0".into());
        }
        prev = *v;
    }
    if usize::try_from(prev).map_or(true, |p| p > max) {
        return Err(format!("last offset {prev} is beyond the {max} values"));
    }
    Ok(OffsetBuffer::new(o))
}

fn primitive<T: ArrowPrimitiveType>(
    section: &Buffer,
    l: &ArrayLayout,
    len: usize,
    nulls: Option<NullBuffer>,
) -> Result<ArrayRef, String>
where
    T::Native: LeNative,
{
    let values =
        scalar_buffer::<T::Native>(&buf(section, l.values.as_ref(), "values")?, len, "values")?;
    Ok(Arc::new(
        PrimitiveArray::<T>::try_new(values, nulls).map_err(|e| e.to_string())?,
    ))
}

/// Decodes the array described by `l` from `section`, which must be of type `expect`.
pub(crate) fn decode_array(
    section: &Buffer,
    l: &ArrayLayout,
    expect: &ArrowType,
) -> Result<ArrayRef, String> {
    use arrow::datatypes::*;
    let tag = type_tag(expect).ok_or_else(|| format!("type {expect} is not stored"))?;
    if l.ty != tag {
        return Err(format!(
            "array of type '{}' where '{tag}' was expected",
            l.ty
        ));
    }
    let len = usize::try_from(l.len).map_err(|_| "array length too large")?;
    let nulls = if l.null_count > 0 {
        let n = NullBuffer::new(bits(
            &buf(section, l.validity.as_ref(), "validity")?,
            len,
            "validity",
        )?);
        if n.null_count() as u64 != l.null_count {
            return Err(format!(
                "validity has {} nulls, the footer says {}",
                n.null_count(),
                l.null_count
            ));
        }
        Some(n)
    } else {
        None
    };
    let a: ArrayRef = match expect {
        ArrowType::UInt8 => primitive::<UInt8Type>(section, l, len, nulls)?,
        ArrowType::UInt16 => primitive::<UInt16Type>(section, l, len, nulls)?,
        ArrowType::UInt32 => primitive::<UInt32Type>(section, l, len, nulls)?,
        ArrowType::UInt64 => primitive::<UInt64Type>(section, l, len, nulls)?,
        ArrowType::Int32 => primitive::<Int32Type>(section, l, len, nulls)?,
        ArrowType::Int64 => primitive::<Int64Type>(section, l, len, nulls)?,
        ArrowType::Float32 => primitive::<Float32Type>(section, l, len, nulls)?,
        ArrowType::Float64 => primitive::<Float64Type>(section, l, len, nulls)?,
        ArrowType::Timestamp(_, _) => {
            primitive::<TimestampMillisecondType>(section, l, len, nulls)?
        }
        ArrowType::Boolean => {
            let v = bits(&buf(section, l.values.as_ref(), "values")?, len, "values")?;
            Arc::new(BooleanArray::new(v, nulls))
        }
        ArrowType::Utf8 => {
            let values = buf(section, l.values.as_ref(), "values")?;
            let o = offsets(section, l, len, values.len())?;
            Arc::new(StringArray::try_new(o, values, nulls).map_err(|e| e.to_string())?)
        }
        ArrowType::Binary => {
            let values = buf(section, l.values.as_ref(), "values")?;
            let o = offsets(section, l, len, values.len())?;
            Arc::new(BinaryArray::try_new(o, values, nulls).map_err(|e| e.to_string())?)
        }
        ArrowType::List(field) => {
            let child_layout = l.child.as_deref().ok_or("list without items")?;
            let child = decode_array(section, child_layout, field.data_type())?;
            let o = offsets(section, l, len, child.len())?;
            Arc::new(ListArray::try_new(field.clone(), o, child, nulls).map_err(|e| e.to_string())?)
        }
        other => return Err(format!("type {other} is not stored")),
    };
    Ok(a)
}

/// Typed views used by readers.
pub(crate) fn as_u64(a: &ArrayRef) -> Option<&UInt64Array> {
    a.as_any().downcast_ref::<UInt64Array>()
}

/// Typed view of a u32 array.
pub(crate) fn as_u32(a: &ArrayRef) -> Option<&UInt32Array> {
    a.as_any().downcast_ref::<UInt32Array>()
}
