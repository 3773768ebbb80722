//! Sealed (immutable, on-disk) segments: the format, the writer and the reader.
//!
//! Owns:
//! - [`write_segment`]: a table's rows (Arrow batches in stream order) to one segment file,
//!   sorted by the sorted column, with per column a dictionary (unless raw), a forward
//!   index, min / max, a null bitmap and the indexes [`SealOptions`] asks for (sorted,
//!   inverted, range, bloom). The byte layout is in `docs/segment-format.md` (code:
//!   `format.rs`).
//! - [`SealedSegment`]: an open segment file (memory-mapped or read into memory), checked
//!   section by section; it prunes ([`SealedSegment::can_match`]), filters with its indexes
//!   ([`SealedSegment::filter`]) and reads rows back in the table's Arrow types
//!   ([`SealedSegment::read`]).
//!
//! Invariants:
//! - A file is written to `<path>.tmp`, fsynced and renamed: `path` is absent or complete,
//!   and a segment file is never modified in place afterwards.
//! - Opening checks magic bytes at both ends, the format version, the footer's and every
//!   section's CRC32 and every offset and length before using it: a truncated, corrupted or
//!   unknown-version file is a [`SegmentError::Corrupt`] naming the segment and the path,
//!   never a panic.
//! - `filter` returns a superset of the matching rows and is exact whenever it answers a
//!   predicate (the differential tests hold it to that); predicates it cannot decide
//!   (unknown or multi-value columns, literals that do not convert) select every row, never
//!   fewer. NULL never matches `=`, `<>`, `IN` or a range.
//! - Multi-value columns are stored raw (lists) with min / max over their items and a null
//!   count, and get no dictionary and no index.

mod bloom;
mod compress;
mod distinct;
mod filter;
mod format;
mod reader;
mod top;
mod value;
mod writer;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::FieldRef;
use arrow::record_batch::RecordBatch;
pub use riffle_config::LoadMode;
use riffle_config::{IndexConfig, TableConfig};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::columns::TableColumns;
use crate::SegmentError;
pub use top::TopDocs;

/// The format version this code writes.
pub const FORMAT_VERSION: u32 = 3;

/// Every format version this build reads.
pub const READABLE_VERSIONS: [u32; 3] = [1, 2, 3];

/// How a table's columns are indexed when a segment seals (from the table config).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SealOptions {
    /// `tableIndexConfig.sortedColumn[0]`: rows are sorted by it.
    pub sorted_column: Option<String>,
    /// `noDictionaryColumns` (and `noDictionaryConfig` keys, and fieldConfigList
    /// `encodingType: RAW` / `indexes.dictionary.disabled`): stored raw, no dictionary (the
    /// sorted column keeps its dictionary regardless).
    pub no_dictionary: BTreeSet<String>,
    /// `invertedIndexColumns` (and fieldConfigList `indexTypes`/`indexes` `inverted`).
    pub inverted: BTreeSet<String>,
    /// `rangeIndexColumns` (and fieldConfigList `range`).
    pub range: BTreeSet<String>,
    /// `bloomFilterColumns` (and fieldConfigList `bloom`/`bloomFilter`).
    pub bloom: BTreeSet<String>,
    /// `segmentsConfig.timeColumnName`: its min/max is the segment's time range.
    pub time_column: Option<String>,
    /// Columns' `compressionCodec` (field configs); a raw column without one is LZ4
    /// compressed (Pinot's default), a dictionary column's values stay uncompressed and its
    /// ids are bit-packed.
    pub compression: std::collections::BTreeMap<String, riffle_config::Codec>,
}

impl SealOptions {
    /// The options of a table: its index settings (already merged from `tableIndexConfig`
    /// and `fieldConfigList` by the config crate) and its time column.
    pub fn new(indexes: &IndexConfig, time_column: Option<&str>) -> SealOptions {
        SealOptions {
            sorted_column: indexes.sorted_column.clone(),
            no_dictionary: indexes.no_dictionary.clone(),
            inverted: indexes.inverted.clone(),
            range: indexes.range.clone(),
            bloom: indexes.bloom.clone(),
            time_column: time_column.map(str::to_string),
            compression: indexes.compression.clone(),
        }
    }

    /// The options a table config asks for.
    pub fn from_table(cfg: &TableConfig) -> SealOptions {
        SealOptions::new(cfg.indexes(), cfg.time_column())
    }
}

/// What is known of one column of a sealed segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// Pinot data type name.
    pub data_type: String,
    /// Single-value column.
    pub single_value: bool,
    /// Has a dictionary.
    pub has_dictionary: bool,
    /// Distinct values (dictionary size), if it has a dictionary.
    pub cardinality: Option<u64>,
    /// Smallest non-null value, as JSON (absent for an all-null column).
    pub min_value: Option<serde_json::Value>,
    /// Largest non-null value, as JSON.
    pub max_value: Option<serde_json::Value>,
    /// Null rows.
    pub null_count: u64,
    /// Rows are sorted by this column.
    pub sorted: bool,
    /// Index names built for it: "inverted", "range", "bloom", "sorted".
    pub indexes: Vec<String>,
}

/// What is known of a sealed segment (kept in the file's footer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentInfo {
    /// Segment name.
    pub name: String,
    /// Format version.
    pub format_version: u32,
    /// Rows.
    pub total_docs: u64,
    /// Time range of the time column (epoch ms), if the table has one and it has values.
    pub start_time_ms: Option<i64>,
    /// End of the time range (inclusive).
    pub end_time_ms: Option<i64>,
    /// Columns.
    pub columns: Vec<ColumnInfo>,
}

/// What [`write_segment`] produced.
#[derive(Clone, Debug)]
pub struct SealedFile {
    /// File size in bytes.
    pub size_bytes: u64,
    /// CRC32 of the whole file (what the catalog stores and loads compare).
    pub crc: u32,
    /// The footer's metadata.
    pub info: SegmentInfo,
}

/// A literal in a filter, before conversion to a column's type.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// Integer.
    Int(i64),
    /// Floating point.
    Float(f64),
    /// Text (also compared with numbers after parsing, as Pinot does).
    Str(String),
    /// Boolean.
    Bool(bool),
}

/// A filter the segment can answer with its indexes (a conjunction of these is pushed down).
#[derive(Clone, Debug, PartialEq)]
pub enum Predicate {
    /// `col = v`.
    Eq(String, Literal),
    /// `col <> v`.
    NotEq(String, Literal),
    /// `col IN (..)`.
    In(String, Vec<Literal>),
    /// `col > / >= / < / <= v` (either bound optional; `bool` is inclusive).
    Range {
        /// Column.
        column: String,
        /// Lower bound.
        low: Option<(Literal, bool)>,
        /// Upper bound.
        high: Option<(Literal, bool)>,
    },
    /// `col IS NULL`.
    IsNull(String),
    /// `col IS NOT NULL`.
    IsNotNull(String),
}

/// The rows a conjunction of predicates selects in one segment.
#[derive(Clone, Debug, PartialEq)]
pub struct Selection {
    /// Selected doc ids.
    pub docs: RoaringBitmap,
    /// Values read to evaluate the filter (Pinot's `numEntriesScannedInFilter`): 0 for a
    /// predicate answered by an index or the sorted column, the rows checked otherwise.
    pub entries_scanned: u64,
    /// True when `docs` are exactly the docs matching every predicate; false when a
    /// predicate could not be answered here (a multi-value column, a column this segment
    /// lacks or holds in another type, a literal that does not convert), so `docs` is a
    /// superset the caller must filter again.
    pub exact: bool,
}

/// Writes `batches` (in stream order) as sealed segment `name` at `path`: to a temporary
/// file, fsynced, then renamed, so `path` is either absent or complete.
///
/// Rows above `u32::MAX` or a batch whose columns do not have the table's Arrow types are
/// an [`SegmentError::Internal`]; file-system failures are [`SegmentError::Io`].
pub fn write_segment(
    path: &Path,
    name: &str,
    columns: &TableColumns,
    batches: &[RecordBatch],
    opts: &SealOptions,
) -> Result<SealedFile, SegmentError> {
    writer::write(path, name, columns, batches, opts)
}

/// An open sealed segment. Cheap to share (`Arc`) across query threads: it is immutable.
pub struct SealedSegment {
    name: String,
    info: SegmentInfo,
    columns: Arc<TableColumns>,
    path: PathBuf,
    size_bytes: u64,
    /// CRC32 of the whole file, computed when it was opened and checked.
    file_crc: u32,
    /// The segment's columns, in footer order.
    cols: Vec<reader::Col>,
    /// For each table column, where its values come from.
    table_map: Vec<reader::Source>,
    /// Segment column positions by name.
    by_name: HashMap<String, usize>,
    /// The output field of each table column (nullable where this segment has nulls).
    out_fields: Vec<FieldRef>,
}

impl std::fmt::Debug for SealedSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSegment")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("rows", &self.info.total_docs)
            .field("size_bytes", &self.size_bytes)
            .finish()
    }
}

impl SealedSegment {
    /// Opens and checks a segment file: magic, version, every section's checksum. A
    /// truncated or corrupted file is a [`SegmentError::Corrupt`] naming the segment.
    ///
    /// Columns are matched to the table's by name: a table column the segment does not have
    /// (added since the segment sealed) reads as its default null value; a segment column
    /// the table no longer has is ignored.
    pub fn open(
        path: &Path,
        name: &str,
        columns: Arc<TableColumns>,
        mode: LoadMode,
    ) -> Result<SealedSegment, SegmentError> {
        reader::open(path, name, columns, mode)
    }

    /// Opens a segment with the columns it was written with, for tools that have no table
    /// (`SegmentDump`, the segment record reader); named after its file.
    pub fn open_standalone(path: &Path, mode: LoadMode) -> Result<SealedSegment, SegmentError> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("segment")
            .to_string();
        let probe = reader::open(path, &name, TableColumns::new(Vec::new()), mode)?;
        let (mut dims, mut metrics) = (Vec::new(), Vec::new());
        for c in &probe.info.columns {
            let spec = serde_json::json!({
                "name": c.name, "dataType": c.data_type, "singleValueField": c.single_value
            });
            if c.data_type == "BIG_DECIMAL" {
                metrics.push(spec);
            } else {
                dims.push(spec);
            }
        }
        let doc = serde_json::json!({
            "schemaName": "segment", "dimensionFieldSpecs": dims, "metricFieldSpecs": metrics
        });
        let columns = riffle_config::Schema::from_json(doc.to_string().as_bytes())
            .and_then(|s| s.columns())
            .map_err(|e| SegmentError::Corrupt {
                segment: name.clone(),
                reason: format!("{}: its columns: {e}", path.display()),
            })?;
        drop(probe);
        reader::open(path, &name, TableColumns::new(columns), mode)
    }

    /// The file this segment was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// CRC32 of the whole file, as the catalog keeps it (Pinot's `segment.crc`), computed
    /// by [`SealedSegment::open`] in its one pass over the file.
    pub fn file_crc(&self) -> u32 {
        self.file_crc
    }

    /// What the footer says of a column of the segment, by name.
    pub fn column_info(&self, name: &str) -> Option<&ColumnInfo> {
        self.by_name.get(name).map(|i| &self.cols[*i].info)
    }

    /// Segment name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Footer metadata.
    pub fn info(&self) -> &SegmentInfo {
        &self.info
    }

    /// Rows.
    pub fn num_rows(&self) -> usize {
        self.info.total_docs as usize
    }

    /// The table columns the segment was opened with.
    pub fn columns(&self) -> &Arc<TableColumns> {
        &self.columns
    }

    /// False when min/max or a bloom filter prove that no row can match `pred` (and, for
    /// dictionary columns, the dictionary). Literals are converted to the column's type
    /// exactly (an INT column never equals 2.5; `> 2.5` is `>= 3`; text is parsed as a
    /// number or, for TIMESTAMP, a date-time); floats compare in IEEE total order as
    /// Arrow does. A literal that does not convert never prunes.
    pub fn can_match(&self, pred: &Predicate) -> bool {
        filter::can_match(self, pred)
    }

    /// The docs matching every predicate (all docs for an empty list). Uses the sorted
    /// column, inverted and range indexes where they exist (no entries scanned), else scans
    /// the forward index of the docs still selected.
    pub fn filter(&self, preds: &[Predicate]) -> Result<Selection, SegmentError> {
        filter::filter(self, preds)
    }

    /// The rows of `selection` (all rows for `None`), projected to the table columns at
    /// `projection` (all for `None`), in the table's Arrow types, as batches of at most
    /// `batch_rows` rows.
    ///
    /// Where this segment holds nulls in a column whose table field is not nullable, the
    /// output field is marked nullable (Arrow does not allow nulls under a non-nullable
    /// field). Doc ids beyond the segment's rows are ignored; `batch_rows` 0 counts as 1.
    pub fn read(
        &self,
        projection: Option<&[usize]>,
        selection: Option<&RoaringBitmap>,
        batch_rows: usize,
    ) -> Result<Vec<RecordBatch>, SegmentError> {
        reader::read(self, projection, selection, batch_rows)
    }

    /// The docs of `selection` (all for `None`) that can be among the first `n` rows
    /// ordered by table column `column` (descending or ascending), ties with the `n`-th
    /// included, read from that column alone. `None` when this segment cannot tell: the
    /// column has nulls, is multi-value, is missing or has another type here.
    pub fn top_docs(
        &self,
        column: usize,
        descending: bool,
        n: usize,
        selection: Option<&RoaringBitmap>,
    ) -> Result<Option<TopDocs>, SegmentError> {
        top::top_docs(self, column, descending, n, selection)
    }

    /// The distinct values of table column `column` over the `selection` (all docs for
    /// `None`), in the table's type, found from the dictionary ids alone. `None` when this
    /// segment cannot tell that way: the column has nulls, is multi-value, has no
    /// dictionary, is missing or has another type here.
    pub fn distinct_values(
        &self,
        column: usize,
        selection: Option<&RoaringBitmap>,
    ) -> Result<Option<ArrayRef>, SegmentError> {
        distinct::distinct_values(self, column, selection)
    }
}

impl Predicate {
    /// The column the predicate is on.
    pub fn column(&self) -> &str {
        match self {
            Predicate::Eq(c, _)
            | Predicate::NotEq(c, _)
            | Predicate::In(c, _)
            | Predicate::IsNull(c)
            | Predicate::IsNotNull(c) => c,
            Predicate::Range { column, .. } => column,
        }
    }
}
