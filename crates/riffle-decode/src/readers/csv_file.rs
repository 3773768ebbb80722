//! CSV files: a header line first (unless the `header` config names the columns), then one
//! record per line (quoted fields may hold delimiters and line breaks), converted by the
//! CSV decoder. Configs are Pinot's `CSVRecordReaderConfig` keys: `delimiter` (`,`),
//! `multiValueDelimiter` (`;`), `header`, `skipHeader` (with `header`: the file's first
//! line is a header to skip), `fileFormat`, `commentMarker`, `escapeCharacter`,
//! `quoteCharacter`, `nullStringValue`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;

use riffle_segment::{BlockBuilder, TableColumns};

use super::{one_record, FileName, RecordReader};
use crate::csv::CsvDecoder;
use crate::{DecodeError, DecodeTarget};

pub(super) struct CsvFileReader {
    file: FileName,
    decoder: CsvDecoder,
    reader: ::csv::Reader<BufReader<File>>,
    /// Each field position's column, from the config or the header line.
    header: Option<Vec<Option<usize>>>,
    skip_header: bool,
    /// The header line (if any) has been read.
    started: bool,
    record: u64,
}

impl CsvFileReader {
    pub(super) fn open(
        file: FileName,
        columns: &Arc<TableColumns>,
        target: &DecodeTarget,
        configs: &BTreeMap<String, String>,
    ) -> Result<CsvFileReader, DecodeError> {
        let decoder = CsvDecoder::from_props(configs, columns, target)
            .map_err(|e| file.error(format!("recordReaderSpec.configs: {}", e.message)))?;
        let skip_header = configs
            .get("skipHeader")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let reader = Self::reader(&file, &decoder)?;
        Ok(CsvFileReader {
            header: decoder.configured_header(),
            file,
            decoder,
            reader,
            skip_header,
            started: false,
            record: 0,
        })
    }

    fn reader(
        file: &FileName,
        decoder: &CsvDecoder,
    ) -> Result<::csv::Reader<BufReader<File>>, DecodeError> {
        let f = File::open(&file.0).map_err(|e| file.error(e))?;
        Ok(decoder.reader_builder().from_reader(BufReader::new(f)))
    }

    fn next(&mut self, rec: &mut ::csv::ByteRecord) -> Result<bool, DecodeError> {
        self.reader.read_byte_record(rec).map_err(|e| {
            self.file.record_error(
                self.record + 1,
                &DecodeError::new(format!("not a CSV record: {e}")),
            )
        })
    }
}

impl RecordReader for CsvFileReader {
    fn read_rows(&mut self, out: &mut BlockBuilder, max: usize) -> Result<usize, DecodeError> {
        let mut rec = ::csv::ByteRecord::new();
        if !self.started {
            if self.header.is_none() || self.skip_header {
                if !self.next(&mut rec)? {
                    return Ok(0);
                }
                if self.header.is_none() {
                    self.header = Some(self.decoder.header_of(&rec));
                }
            }
            self.started = true;
        }
        let header = self.header.clone().unwrap_or_default();
        let mut n = 0;
        while n < max {
            if !self.next(&mut rec)? {
                break;
            }
            if rec.len() == 1 && rec.get(0).is_some_and(|f| f.is_empty()) {
                continue; // a blank line
            }
            let record = self.record + 1;
            let dec = &mut self.decoder;
            one_record(&self.file, record, out, |o| {
                dec.write_record(&mut rec, &header, o)
            })?;
            self.record = record;
            n += 1;
        }
        Ok(n)
    }

    fn rewind(&mut self) -> Result<(), DecodeError> {
        self.reader = Self::reader(&self.file, &self.decoder)?;
        self.header = self.decoder.configured_header();
        self.started = false;
        self.record = 0;
        Ok(())
    }
}
