//! Format version 2's compact storage: compressed sections and bit-packed dictionary ids.
//!
//! A compressed section holds its logical bytes (what an uncompressed section would hold,
//! alignment gaps included) cut into chunks of at most [`CHUNK`] bytes, each compressed on
//! its own:
//!
//! ```text
//! u32 chunks
//! chunks x (u32 raw length, u32 stored length)
//! the chunks' stored bytes, one after another
//! ```
//!
//! The footer's section entry names the codec and the logical length. Opening a segment
//! decompresses such a section into aligned memory once; everything after works on the
//! logical bytes as on an uncompressed section's. Bit-packed ids: `rows` ids of `bits` bits
//! each, least significant bit first, in little-endian 64-bit words.

use arrow::buffer::MutableBuffer;
use riffle_config::Codec;
use serde::{Deserialize, Serialize};

use super::format::ArrayLayout;

/// Logical bytes per chunk.
pub(crate) const CHUNK: usize = 1 << 20;

/// A section's codec, as the footer names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SectionCodec {
    /// LZ4 block format.
    Lz4,
    /// Zstandard.
    Zstd,
    /// Snappy (raw format).
    Snappy,
    /// gzip (deflate with gzip framing).
    Gzip,
}

impl SectionCodec {
    /// The section codec for a column's configured codec (`None`: stored as it is).
    pub fn of(c: Codec) -> Option<SectionCodec> {
        match c {
            Codec::PassThrough => None,
            Codec::Lz4 => Some(SectionCodec::Lz4),
            Codec::Zstandard => Some(SectionCodec::Zstd),
            Codec::Snappy => Some(SectionCodec::Snappy),
            Codec::Gzip => Some(SectionCodec::Gzip),
        }
    }
}

fn compress_chunk(codec: SectionCodec, raw: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    Ok(match codec {
        SectionCodec::Lz4 => lz4_flex::block::compress(raw),
        SectionCodec::Zstd => {
            zstd::bulk::compress(raw, 3).map_err(|e| format!("zstd compression: {e}"))?
        }
        SectionCodec::Snappy => snap::raw::Encoder::new()
            .compress_vec(raw)
            .map_err(|e| format!("snappy compression: {e}"))?,
        SectionCodec::Gzip => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            w.write_all(raw)
                .and_then(|_| w.finish())
                .map_err(|e| format!("gzip compression: {e}"))?
        }
    })
}

fn decompress_chunk(codec: SectionCodec, stored: &[u8], out: &mut [u8]) -> Result<usize, String> {
    use std::io::Read;
    match codec {
        SectionCodec::Lz4 => {
            lz4_flex::block::decompress_into(stored, out).map_err(|e| format!("lz4: {e}"))
        }
        SectionCodec::Zstd => {
            zstd::bulk::decompress_to_buffer(stored, out).map_err(|e| format!("zstd: {e}"))
        }
        SectionCodec::Snappy => snap::raw::Decoder::new()
            .decompress(stored, out)
            .map_err(|e| format!("snappy: {e}")),
        SectionCodec::Gzip => {
            let mut r = flate2::read::GzDecoder::new(stored);
            let mut n = 0;
            loop {
                if n == out.len() {
                    let mut extra = [0u8; 1];
                    return match r.read(&mut extra) {
                        Ok(0) => Ok(n),
                        Ok(_) => Err("gzip: more bytes than the chunk holds".into()),
                        Err(e) => Err(format!("gzip: {e}")),
                    };
                }
                match r.read(&mut out[n..]) {
                    Ok(0) => return Ok(n),
                    Ok(k) => n += k,
                    Err(e) => return Err(format!("gzip: {e}")),
                }
            }
        }
    }
}

/// The stored form of a section's logical bytes.
pub(crate) fn compress(codec: SectionCodec, raw: &[u8]) -> Result<Vec<u8>, String> {
    let chunks: Vec<&[u8]> = raw.chunks(CHUNK).collect();
    let mut stored = Vec::with_capacity(chunks.len());
    for c in &chunks {
        stored.push(compress_chunk(codec, c)?);
    }
    let mut out =
        Vec::with_capacity(4 + 8 * chunks.len() + stored.iter().map(Vec::len).sum::<usize>());
    out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
    for (c, s) in chunks.iter().zip(&stored) {
        out.extend_from_slice(&(c.len() as u32).to_le_bytes());
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    }
    for s in stored {
        out.extend_from_slice(&s);
    }
    Ok(out)
}

/// The logical bytes of a stored section (64-byte aligned), which must be `raw_len` long.
pub(crate) fn decompress(
    codec: SectionCodec,
    stored: &[u8],
    raw_len: usize,
) -> Result<MutableBuffer, String> {
    let u32_at = |at: usize| -> Result<usize, String> {
        stored
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(|b| u32::from_le_bytes(b) as usize)
            .ok_or_else(|| "compressed section is truncated".to_string())
    };
    let n = u32_at(0)?;
    if n != raw_len.div_ceil(CHUNK) {
        return Err(format!(
            "compressed section has {n} chunks for {raw_len} bytes"
        ));
    }
    let mut data_at = 4usize
        .checked_add(n.checked_mul(8).ok_or("too many chunks")?)
        .ok_or("too many chunks")?;
    let mut out = MutableBuffer::from_len_zeroed(raw_len);
    let mut pos = 0usize;
    for i in 0..n {
        let raw = u32_at(4 + 8 * i)?;
        let len = u32_at(8 + 8 * i)?;
        let expect = CHUNK.min(raw_len - pos);
        if raw != expect {
            return Err(format!("chunk {i} holds {raw} bytes, expected {expect}"));
        }
        let src = data_at
            .checked_add(len)
            .and_then(|end| stored.get(data_at..end))
            .ok_or_else(|| format!("chunk {i} is outside its section"))?;
        let dst = &mut out.as_slice_mut()[pos..pos + raw];
        let got = decompress_chunk(codec, src, dst).map_err(|e| format!("chunk {i}: {e}"))?;
        if got != raw {
            return Err(format!(
                "chunk {i} decompressed to {got} bytes, expected {raw}"
            ));
        }
        pos += raw;
        data_at += len;
    }
    if data_at != stored.len() {
        return Err("compressed section has bytes after its last chunk".into());
    }
    Ok(out)
}

/// Version 3: every offsets buffer of `layout` (and of its items, for lists) inside a
/// compressed section's logical bytes `raw` becomes the lengths between neighbouring
/// offsets (the first stays 0). Offsets only grow, so they share few bytes for the
/// compressor to find; lengths repeat (fixed-width text, such as ids, compresses to
/// almost nothing). [`lengths_to_offsets`] undoes it.
pub(crate) fn offsets_to_lengths(raw: &mut [u8], layout: &ArrayLayout) {
    for_each_offsets(raw, layout, &mut |o: &mut [u8]| {
        let mut prev = 0i32;
        for w in o.chunks_exact_mut(4) {
            let v = i32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            w.copy_from_slice(&v.wrapping_sub(prev).to_le_bytes());
            prev = v;
        }
    });
}

/// The inverse of [`offsets_to_lengths`], on logical bytes just decompressed (sums wrap:
/// the array's checks refuse offsets a corrupt file makes decrease or overrun).
pub(crate) fn lengths_to_offsets(raw: &mut [u8], layout: &ArrayLayout) {
    for_each_offsets(raw, layout, &mut |o: &mut [u8]| {
        let mut sum = 0i32;
        for w in o.chunks_exact_mut(4) {
            sum = sum.wrapping_add(i32::from_le_bytes([w[0], w[1], w[2], w[3]]));
            w.copy_from_slice(&sum.to_le_bytes());
        }
    });
}

/// Calls `f` on every offsets buffer of `layout` that lies inside `raw` (one that does not
/// is left alone: the array's own checks name it).
fn for_each_offsets(raw: &mut [u8], layout: &ArrayLayout, f: &mut dyn FnMut(&mut [u8])) {
    if let Some(b) = &layout.offsets {
        let at = usize::try_from(b.offset).ok();
        let end = at.and_then(|a| {
            usize::try_from(b.length)
                .ok()
                .and_then(|l| a.checked_add(l))
        });
        if let (Some(a), Some(e)) = (at, end) {
            if let Some(o) = raw.get_mut(a..e) {
                f(o);
            }
        }
    }
    if let Some(c) = &layout.child {
        for_each_offsets(raw, c, f);
    }
}

/// Bits per id for ids `0..=max`.
pub(crate) fn id_bits(max: u32) -> u8 {
    (32 - max.leading_zeros()).max(1) as u8
}

/// `ids`, `bits` bits each.
pub(crate) fn pack_ids(ids: &[u32], bits: u8) -> Vec<u8> {
    let bits = bits as usize;
    let words = (ids.len() * bits).div_ceil(64);
    let mut w = vec![0u64; words];
    for (i, id) in ids.iter().enumerate() {
        let at = i * bits;
        let (word, shift) = (at / 64, at % 64);
        let v = *id as u64;
        w[word] |= v << shift;
        if shift + bits > 64 {
            w[word + 1] |= v >> (64 - shift);
        }
    }
    let mut out = Vec::with_capacity(words * 8);
    for x in w {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// `rows` ids of `bits` bits from `packed`, each passed to `put`.
pub(crate) fn unpack_ids(
    packed: &[u8],
    rows: usize,
    bits: u8,
    mut put: impl FnMut(usize, u32),
) -> Result<(), String> {
    if bits == 0 || bits > 32 {
        return Err(format!("{bits} bits per dictionary id"));
    }
    let b = bits as usize;
    let words = (rows * b).div_ceil(64);
    if packed.len() != words * 8 {
        return Err(format!(
            "packed ids are {} bytes, {rows} ids of {bits} bits need {}",
            packed.len(),
            words * 8
        ));
    }
    let word = |i: usize| -> u64 {
        packed
            .get(i * 8..i * 8 + 8)
            .and_then(|s| s.try_into().ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0)
    };
    let mask = if b == 64 { u64::MAX } else { (1u64 << b) - 1 };
    for i in 0..rows {
        let at = i * b;
        let (wi, shift) = (at / 64, at % 64);
        let mut v = word(wi) >> shift;
        if shift + b > 64 {
            v |= word(wi + 1) << (64 - shift);
        }
        put(i, (v & mask) as u32);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_round_trip_in_every_codec_and_damage_is_an_error() {
        let raw: Vec<u8> = (0..3 * CHUNK + 77).map(|i| (i % 251) as u8).collect();
        for c in [
            SectionCodec::Lz4,
            SectionCodec::Zstd,
            SectionCodec::Snappy,
            SectionCodec::Gzip,
        ] {
            let stored = compress(c, &raw).unwrap();
            assert!(stored.len() < raw.len() / 2, "{c:?} did not compress");
            let back = decompress(c, &stored, raw.len()).unwrap();
            assert_eq!(back.as_slice(), &raw[..], "{c:?}");
            assert_eq!(back.as_ptr() as usize % 64, 0);
            assert!(decompress(c, &stored, raw.len() + 1).is_err());
            assert!(decompress(c, &stored[..stored.len() - 3], raw.len()).is_err());
            let mut bad = stored.clone();
            let last = bad.len() - 10;
            bad[last] ^= 0xff;
            // A flipped byte is caught by the codec or the length check (the section CRC
            // catches it before, in a file).
            let _ = decompress(c, &bad, raw.len());
        }
        assert!(decompress(SectionCodec::Lz4, &[], 0).is_err());
        let empty = compress(SectionCodec::Zstd, &[]).unwrap();
        assert_eq!(decompress(SectionCodec::Zstd, &empty, 0).unwrap().len(), 0);
    }

    /// Lengths for offsets: a list's and its items' offsets turn into lengths and back,
    /// other bytes untouched; fixed-width text then compresses to far less; a buffer
    /// outside the bytes is left alone.
    #[test]
    fn offsets_stored_as_lengths_round_trip_and_compress() {
        use super::super::format::BufRef;
        let n = 100_000i32;
        let mut raw = vec![0xabu8; 8];
        let outer = raw.len();
        raw.extend((0..=n).flat_map(|i| (i * 3).to_le_bytes()));
        let inner = raw.len();
        raw.extend((0..=3 * n).flat_map(|i| (i * 36).to_le_bytes()));
        raw.extend_from_slice(b"tail");
        let buf = |offset: usize, count: i32| BufRef {
            offset: offset as u64,
            length: 4 * (count as u64 + 1),
        };
        let layout = |child: Option<Box<ArrayLayout>>, at: usize, count: i32| ArrayLayout {
            ty: "list".into(),
            len: count as u64,
            null_count: 0,
            validity: None,
            offsets: Some(buf(at, count)),
            values: None,
            child,
        };
        let items = layout(None, inner, 3 * n);
        let list = layout(Some(Box::new(items)), outer, n);
        let mut coded = raw.clone();
        offsets_to_lengths(&mut coded, &list);
        assert_eq!(&coded[..8], &raw[..8]);
        assert_eq!(&coded[coded.len() - 4..], b"tail");
        assert_eq!(
            &coded[inner..inner + 12],
            &[0, 0, 0, 0, 36, 0, 0, 0, 36, 0, 0, 0]
        );
        let (plain, smaller) = (
            compress(SectionCodec::Zstd, &raw).unwrap().len(),
            compress(SectionCodec::Zstd, &coded).unwrap().len(),
        );
        assert!(smaller * 20 < plain, "{smaller} vs {plain} bytes");
        lengths_to_offsets(&mut coded, &list);
        assert_eq!(coded, raw);
        let far = layout(None, raw.len() + 64, 4);
        offsets_to_lengths(&mut coded, &far);
        assert_eq!(coded, raw);
    }

    #[test]
    fn ids_pack_to_the_dictionary_width() {
        for max in [0u32, 1, 2, 7, 255, 256, 1000, 65_535, 70_000, u32::MAX] {
            let bits = id_bits(max);
            let ids: Vec<u32> = (0..1000u64)
                .map(|i| ((i * 7919) % (max as u64 + 1)) as u32)
                .collect();
            let packed = pack_ids(&ids, bits);
            assert_eq!(packed.len(), (ids.len() * bits as usize).div_ceil(64) * 8);
            let mut back = vec![0u32; ids.len()];
            unpack_ids(&packed, ids.len(), bits, |i, v| back[i] = v).unwrap();
            assert_eq!(back, ids, "max {max}");
        }
        assert_eq!(id_bits(0), 1);
        assert_eq!(id_bits(255), 8);
        assert_eq!(id_bits(256), 9);
        assert!(unpack_ids(&[0; 8], 100, 3, |_, _| {}).is_err());
        assert!(unpack_ids(&[0; 8], 1, 33, |_, _| {}).is_err());
    }
}
