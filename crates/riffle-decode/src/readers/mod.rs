//! Batch record readers: input files turned into rows that follow a table's schema, as
//! Pinot's record readers fill a `GenericRow` for each record.
//!
//! The contract, for every format:
//! - every schema column is in every row, with its default when the record lacks it (the
//!   block builder fills what a reader leaves unset);
//! - fields outside the schema are not read (except the source fields transforms read,
//!   [`DecodeTarget::extras`]);
//! - values are converted to the column's type with the stream decoders' conversions (the
//!   same code: a file row and a message with the same values give the same row);
//! - multi-value columns from arrays, or from delimited text in CSV;
//! - a record that cannot be read stops the reader with an error naming the file and the
//!   record (1-based), and leaves no part of that record in the builder.
//!
//! Formats ([`FileFormat`]): JSON (objects one after another, one per line or not, or one
//! top-level array of objects), CSV (Pinot's `CSVRecordReaderConfig` keys, a header line
//! unless `header` is given), Avro object container files (codecs `null`, `deflate`,
//! `snappy`, `zstandard`) and Parquet (through the Arrow ecosystem's reader, only the
//! needed columns read), ORC (the same, through `orc-rust`), and Riffle's own sealed
//! segments (to rebuild segments for another schema or table config). Thrift and Protobuf
//! files are not read yet; Pinot's own segment files are not read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use riffle_segment::{BlockBuilder, TableColumns};

use crate::{DecodeError, DecodeTarget};

mod arrow_cells;
mod avro_file;
mod csv_file;
mod json_file;
mod parquet_file;
mod segment_file;

/// The largest block or file part a reader decompresses or holds at once.
pub const MAX_CHUNK_BYTES: usize = 512 << 20;

/// An input file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// Avro object container files.
    Avro,
    /// CSV text.
    Csv,
    /// JSON objects.
    Json,
    /// Apache Parquet.
    Parquet,
    /// Apache ORC.
    Orc,
    /// Riffle's own sealed segments (Pinot's `PinotSegmentRecordReader` reads Pinot's).
    Segment,
}

impl FileFormat {
    /// From Pinot's `-format` / `dataFormat` names (`AVRO`, `CSV`, `JSON`, `PARQUET`, any
    /// case; `SEGMENT` for Riffle's segments) or a record reader class name of
    /// `recordReaderSpec.className`.
    pub fn parse(name: &str) -> Result<FileFormat, DecodeError> {
        let n = name.trim();
        let short = n.rsplit('.').next().unwrap_or(n).to_ascii_lowercase();
        Ok(match short.as_str() {
            "avro" | "avrorecordreader" => FileFormat::Avro,
            "csv" | "csvrecordreader" => FileFormat::Csv,
            "json" | "jsonl" | "ndjson" | "jsonrecordreader" => FileFormat::Json,
            "parquet"
            | "parquetrecordreader"
            | "parquetavrorecordreader"
            | "parquetnativerecordreader" => FileFormat::Parquet,
            "segment" | "riffle" | "pinotsegmentrecordreader" => FileFormat::Segment,
            "orc" | "orcrecordreader" => FileFormat::Orc,
            "thrift"
            | "thriftrecordreader"
            | "protobuf"
            | "protobufrecordreader" => {
                return Err(DecodeError::new(format!(
                "input format '{n}' is not read yet; supported: AVRO, CSV, JSON, ORC, PARQUET, SEGMENT"
            )))
            }
            _ => {
                return Err(DecodeError::new(format!(
                    "unknown input format '{n}'; supported: AVRO, CSV, JSON, ORC, PARQUET, SEGMENT"
                )))
            }
        })
    }

    /// The format a file name's extension says, if any.
    pub fn from_path(path: &Path) -> Option<FileFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "avro" => Some(FileFormat::Avro),
            "csv" | "tsv" => Some(FileFormat::Csv),
            "json" | "jsonl" | "ndjson" => Some(FileFormat::Json),
            "parquet" | "parq" => Some(FileFormat::Parquet),
            "orc" => Some(FileFormat::Orc),
            _ => None,
        }
    }
}

/// Reads the records of one file into column builders.
pub trait RecordReader: Send {
    /// Reads up to `max` records into `out`, each ended as a row; returns how many; 0 once
    /// the file is done. An error names the file and the record, and leaves nothing of that
    /// record in `out`.
    fn read_rows(&mut self, out: &mut BlockBuilder, max: usize) -> Result<usize, DecodeError>;

    /// Starts again at the first record.
    fn rewind(&mut self) -> Result<(), DecodeError>;
}

/// Opens a reader of `path` in `format` for `columns` (and the source fields of
/// `target`); `configs` are the reader's settings (`recordReaderSpec.configs`: for CSV
/// `delimiter`, `header`, `multiValueDelimiter`, ...).
pub fn open_reader(
    path: &Path,
    format: FileFormat,
    columns: &Arc<TableColumns>,
    target: &DecodeTarget,
    configs: &BTreeMap<String, String>,
) -> Result<Box<dyn RecordReader>, DecodeError> {
    let file = FileName(path.to_path_buf());
    Ok(match format {
        FileFormat::Json => Box::new(json_file::JsonFileReader::open(file, columns, target)?),
        FileFormat::Csv => Box::new(csv_file::CsvFileReader::open(
            file, columns, target, configs,
        )?),
        FileFormat::Avro => Box::new(avro_file::AvroFileReader::open(file, columns, target)?),
        FileFormat::Parquet => Box::new(parquet_file::ArrowFileReader::open(
            file,
            parquet_file::Columnar::Parquet,
            columns,
            target,
        )?),
        FileFormat::Orc => Box::new(parquet_file::ArrowFileReader::open(
            file,
            parquet_file::Columnar::Orc,
            columns,
            target,
        )?),
        FileFormat::Segment => Box::new(segment_file::SegmentFileReader::open(
            file, columns, target,
        )?),
    })
}

/// A file's path, for messages.
#[derive(Clone, Debug)]
struct FileName(PathBuf);

impl FileName {
    fn error(&self, e: impl std::fmt::Display) -> DecodeError {
        DecodeError::new(format!("{}: {e}", self.0.display()))
    }

    fn record_error(&self, record: u64, e: &DecodeError) -> DecodeError {
        DecodeError::new(format!(
            "{}: record {record}: {}",
            self.0.display(),
            e.message
        ))
    }

    /// The whole file, refused past [`MAX_CHUNK_BYTES`].
    fn read_all(&self) -> Result<Vec<u8>, DecodeError> {
        let meta = std::fs::metadata(&self.0).map_err(|e| self.error(e))?;
        if meta.len() > MAX_CHUNK_BYTES as u64 {
            return Err(self.error(format!(
                "{} bytes is more than this reader holds at once ({MAX_CHUNK_BYTES}); split the file",
                meta.len()
            )));
        }
        std::fs::read(&self.0).map_err(|e| self.error(e))
    }
}

/// Runs `f` for one record: on error the record's partial row is rolled back and the error
/// names the file and record; on success the row is ended.
fn one_record(
    file: &FileName,
    record: u64,
    out: &mut BlockBuilder,
    f: impl FnOnce(&mut BlockBuilder) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let start = out.rows();
    match f(out) {
        Ok(()) => {
            out.end_row();
            Ok(())
        }
        Err(e) => {
            out.rollback_to(start);
            Err(file.record_error(record, &e))
        }
    }
}

#[cfg(test)]
mod tests;
