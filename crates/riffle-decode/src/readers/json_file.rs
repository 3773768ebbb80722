//! JSON files: objects one after another (one per line, or spread over lines), or one
//! top-level array of objects, each object one record, decoded by the JSON decoder.

use std::sync::Arc;

use riffle_segment::{BlockBuilder, TableColumns};

use super::{one_record, FileName, RecordReader};
use crate::json::JsonDecoder;
use crate::{DecodeError, DecodeTarget};

pub(super) struct JsonFileReader {
    file: FileName,
    data: Vec<u8>,
    /// The records of a top-level array, each as its own JSON text.
    items: Option<Vec<Vec<u8>>>,
    /// Next byte (or next item) to read.
    pos: usize,
    record: u64,
    decoder: JsonDecoder,
}

impl JsonFileReader {
    pub(super) fn open(
        file: FileName,
        columns: &Arc<TableColumns>,
        target: &DecodeTarget,
    ) -> Result<JsonFileReader, DecodeError> {
        let data = file.read_all()?;
        let first = data.iter().position(|b| !b.is_ascii_whitespace());
        let items = match first {
            Some(i) if data[i] == b'[' => {
                let values: Vec<serde_json::Value> = serde_json::from_slice(&data)
                    .map_err(|e| file.error(format!("not a JSON array of objects: {e}")))?;
                Some(
                    values
                        .iter()
                        .map(|v| serde_json::to_vec(v).unwrap_or_default())
                        .collect(),
                )
            }
            _ => None,
        };
        Ok(JsonFileReader {
            decoder: JsonDecoder::for_target(columns, target),
            file,
            data,
            items,
            pos: 0,
            record: 0,
        })
    }

    /// The next object's bytes, if any.
    fn next_object(&mut self) -> Result<Option<(usize, usize)>, DecodeError> {
        let rest = &self.data[self.pos..];
        let Some(skip) = rest.iter().position(|b| !b.is_ascii_whitespace()) else {
            self.pos = self.data.len();
            return Ok(None);
        };
        let start = self.pos + skip;
        let mut it = serde_json::Deserializer::from_slice(&self.data[start..])
            .into_iter::<serde::de::IgnoredAny>();
        match it.next() {
            Some(Ok(_)) => Ok(Some((start, start + it.byte_offset()))),
            Some(Err(e)) => Err(self.file.record_error(
                self.record + 1,
                &DecodeError::new(format!("not JSON at byte {}: {e}", start)),
            )),
            None => Ok(None),
        }
    }
}

impl RecordReader for JsonFileReader {
    fn read_rows(&mut self, out: &mut BlockBuilder, max: usize) -> Result<usize, DecodeError> {
        let mut n = 0;
        while n < max {
            let record = self.record + 1;
            if let Some(items) = &self.items {
                let Some(item) = items.get(self.pos) else {
                    break;
                };
                let dec = &mut self.decoder;
                one_record(&self.file, record, out, |o| dec.decode_value(item, o))?;
                self.pos += 1;
            } else {
                let Some((start, end)) = self.next_object()? else {
                    break;
                };
                let (dec, data) = (&mut self.decoder, &self.data);
                one_record(&self.file, record, out, |o| {
                    dec.decode_value(&data[start..end], o)
                })?;
                self.pos = end;
            }
            self.record = record;
            n += 1;
        }
        Ok(n)
    }

    fn rewind(&mut self) -> Result<(), DecodeError> {
        self.pos = 0;
        self.record = 0;
        Ok(())
    }
}
