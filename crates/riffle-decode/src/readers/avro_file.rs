//! Avro object container files: the header (magic `Obj\x01`, metadata with `avro.schema`
//! and `avro.codec`, a 16-byte sync marker), then blocks (record count, byte size, the
//! records, possibly compressed, and the sync marker again). Records are read with the
//! file's schema by the Avro decoder's reader. Codecs: `null`, `deflate`, `snappy`,
//! `zstandard`; a block may not decompress past [`MAX_CHUNK_BYTES`].

use std::io::Read;
use std::sync::Arc;

use riffle_segment::{BlockBuilder, TableColumns};

use super::{one_record, FileName, RecordReader, MAX_CHUNK_BYTES};
use crate::avro::{AvroSchema, BoundSchema, Cursor};
use crate::json::field_map;
use crate::{DecodeError, DecodeTarget};

#[derive(Clone, Copy, Debug)]
enum Codec {
    Null,
    Deflate,
    Snappy,
    Zstd,
}

pub(super) struct AvroFileReader {
    file: FileName,
    data: Vec<u8>,
    codec: Codec,
    sync: [u8; 16],
    bound: BoundSchema,
    /// Where the first block starts.
    first_block: usize,
    /// Where the next block starts.
    pos: usize,
    /// The current block's records (decompressed), the next one's position, and how many
    /// are left.
    block: Vec<u8>,
    block_pos: usize,
    block_left: u64,
    record: u64,
}

/// Avro's long at `*pos` (the Avro decoder's reader).
fn long(data: &[u8], pos: &mut usize) -> Result<i64, String> {
    let mut c = Cursor { data, pos: *pos };
    let v = c.long().map_err(|e| e.message)?;
    *pos = c.pos;
    Ok(v)
}

/// Avro's bytes at `*pos`.
fn bytes<'a>(data: &'a [u8], pos: &mut usize) -> Result<&'a [u8], String> {
    let mut c = Cursor { data, pos: *pos };
    let v = c.bytes().map_err(|e| e.message)?;
    *pos = c.pos;
    Ok(v)
}

impl AvroFileReader {
    pub(super) fn open(
        file: FileName,
        columns: &Arc<TableColumns>,
        target: &DecodeTarget,
    ) -> Result<AvroFileReader, DecodeError> {
        let data = file.read_all()?;
        if !data.starts_with(b"Obj\x01") {
            return Err(file.error("not an Avro container file (no Obj\\x01 magic)"));
        }
        let mut pos = 4;
        let mut schema = None;
        let mut codec = "null".to_string();
        let header = |e: String| file.error(format!("Avro file header: {e}"));
        loop {
            let mut count = long(&data, &mut pos).map_err(header)?;
            if count == 0 {
                break;
            }
            if count < 0 {
                count = count
                    .checked_neg()
                    .ok_or_else(|| header("bad count".into()))?;
                long(&data, &mut pos).map_err(header)?;
            }
            for _ in 0..count {
                let k = bytes(&data, &mut pos).map_err(header)?;
                let v = bytes(&data, &mut pos).map_err(header)?;
                match k {
                    b"avro.schema" => schema = Some(String::from_utf8_lossy(v).into_owned()),
                    b"avro.codec" => codec = String::from_utf8_lossy(v).into_owned(),
                    _ => {}
                }
            }
        }
        let sync: [u8; 16] = data
            .get(pos..pos + 16)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| header("no sync marker".into()))?;
        pos += 16;
        let codec = match codec.as_str() {
            "null" | "" => Codec::Null,
            "deflate" => Codec::Deflate,
            "snappy" => Codec::Snappy,
            "zstandard" => Codec::Zstd,
            other => {
                return Err(file.error(format!(
                    "Avro codec '{other}' is not read (null, deflate, snappy, zstandard are)"
                )))
            }
        };
        let schema = schema.ok_or_else(|| header("no avro.schema".into()))?;
        let schema = AvroSchema::parse(&schema).map_err(|e| header(format!("avro.schema: {e}")))?;
        let fields = field_map(columns, &target.extras);
        let bound = BoundSchema::bind(schema, &fields, columns.columns.len())
            .map_err(|e| header(e.message))?;
        Ok(AvroFileReader {
            file,
            data,
            codec,
            sync,
            bound,
            first_block: pos,
            pos,
            block: Vec::new(),
            block_pos: 0,
            block_left: 0,
            record: 0,
        })
    }

    /// Loads the next block; false at the end of the file.
    fn next_block(&mut self) -> Result<bool, DecodeError> {
        if self.pos >= self.data.len() {
            return Ok(false);
        }
        let at = self.pos;
        let bad = |e: String| {
            self.file.error(format!(
                "Avro block at byte {at} (after record {}): {e}",
                self.record
            ))
        };
        let mut pos = self.pos;
        let count = long(&self.data, &mut pos).map_err(bad)?;
        let raw = bytes(&self.data, &mut pos).map_err(bad)?;
        if self.data.get(pos..pos + 16) != Some(&self.sync[..]) {
            return Err(bad("the sync marker does not follow the block".into()));
        }
        let count = u64::try_from(count).map_err(|_| bad(format!("a negative count {count}")))?;
        let limit = MAX_CHUNK_BYTES as u64;
        let block = match self.codec {
            Codec::Null => raw.to_vec(),
            Codec::Deflate => {
                let mut out = Vec::new();
                flate2::read::DeflateDecoder::new(raw)
                    .take(limit + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| bad(format!("deflate: {e}")))?;
                out
            }
            Codec::Zstd => {
                let mut out = Vec::new();
                zstd::stream::read::Decoder::new(raw)
                    .and_then(|d| d.take(limit + 1).read_to_end(&mut out))
                    .map_err(|e| bad(format!("zstandard: {e}")))?;
                out
            }
            Codec::Snappy => {
                // The compressed bytes, then the CRC32 of the uncompressed ones.
                let body = &raw[..raw.len().saturating_sub(4)];
                let n = snap::raw::decompress_len(body).map_err(|e| bad(format!("snappy: {e}")))?;
                if n as u64 > limit {
                    return Err(bad(format!("a block of {n} bytes is too large")));
                }
                snap::raw::Decoder::new()
                    .decompress_vec(body)
                    .map_err(|e| bad(format!("snappy: {e}")))?
            }
        };
        if block.len() as u64 > limit {
            return Err(bad(format!("a block decompresses past {limit} bytes")));
        }
        self.block = block;
        self.block_pos = 0;
        self.block_left = count;
        self.pos = pos + 16;
        Ok(true)
    }
}

impl RecordReader for AvroFileReader {
    fn read_rows(&mut self, out: &mut BlockBuilder, max: usize) -> Result<usize, DecodeError> {
        let mut n = 0;
        while n < max {
            if self.block_left == 0 {
                if self.block_pos < self.block.len() {
                    return Err(self.file.error(format!(
                        "{} bytes left in the Avro block after its records (after record {})",
                        self.block.len() - self.block_pos,
                        self.record
                    )));
                }
                if !self.next_block()? {
                    break;
                }
                continue;
            }
            let record = self.record + 1;
            let (bound, data, at) = (&self.bound, &self.block, self.block_pos);
            let mut used = 0;
            one_record(&self.file, record, out, |o| {
                used = bound.read_prefix(&data[at..], o)?;
                Ok(())
            })?;
            self.block_pos += used;
            self.block_left -= 1;
            self.record = record;
            n += 1;
        }
        Ok(n)
    }

    fn rewind(&mut self) -> Result<(), DecodeError> {
        self.pos = self.first_block;
        self.block.clear();
        self.block_pos = 0;
        self.block_left = 0;
        self.record = 0;
        Ok(())
    }
}
