//! The footprint benchmark: bytes per row in memory, sealed, and as Parquet.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::Array;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use riffle_segment::sealed::{write_segment, LoadMode, SealOptions, SealedSegment};
use riffle_segment::{ConsumingSnapshot, TableColumns};

use crate::*;

/// One on-disk form of the rows.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSize {
    /// What it is.
    pub what: String,
    /// File bytes.
    pub bytes: u64,
    /// Seconds the write took (one thread).
    pub secs: f64,
    /// Seconds opening (and checking) the sealed file took, as the sealer does after the
    /// write.
    pub open_secs: Option<f64>,
}

/// Memory of one column of the consuming segment.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnBytes {
    /// Column.
    pub name: String,
    /// Bytes held (buffer capacity included).
    pub held: usize,
    /// Bytes used by the values, offsets and validity.
    pub used: usize,
}

/// What the footprint benchmark measured.
#[derive(Debug, Clone, PartialEq)]
pub struct FootprintReport {
    /// The machine.
    pub machine: MachineFacts,
    /// Load average before the benchmark.
    pub load_before: Option<LoadAvg>,
    /// Load average after the benchmark.
    pub load_after: Option<LoadAvg>,
    /// Rows (one consuming segment).
    pub rows: u64,
    /// `ConsumingSnapshot::bytes`.
    pub consuming_bytes: usize,
    /// Arrow batches the consuming segment holds.
    pub batches: usize,
    /// Bytes per column: held (`get_array_memory_size` of the column's arrays, buffer
    /// capacity included, what `ConsumingSnapshot::bytes` adds up) and used (the bytes of
    /// the values, offsets and validity themselves).
    pub column_bytes: Vec<ColumnBytes>,
    /// VmRSS before the table started, KiB.
    pub rss_before_kib: Option<u64>,
    /// VmRSS when every row was queryable, KiB.
    pub rss_after_kib: Option<u64>,
    /// Sealed segment files.
    pub sealed: Vec<StoredSize>,
    /// Parquet, zstd at the default level.
    pub parquet: StoredSize,
    /// Seconds uploading the table-options segment file to a `file://` deep store took
    /// (the sealer's next step).
    pub upload_secs: Option<f64>,
}

impl FootprintReport {
    /// RSS delta per row, if /proc/self/status was readable.
    pub fn rss_bytes_per_row(&self) -> Option<f64> {
        let (a, b) = (self.rss_before_kib?, self.rss_after_kib?);
        Some(per_row((b as f64 - a as f64) * 1024.0, self.rows))
    }
}

/// Seals `snap`'s rows with `opts` into `dir`, timed; checks the file opens with every row.
pub fn seal_sized(
    dir: &Path,
    what: &str,
    file: &str,
    columns: &Arc<TableColumns>,
    snap: &ConsumingSnapshot,
    opts: &SealOptions,
) -> Result<StoredSize, BenchError> {
    let path = dir.join(file);
    let name = format!("{TABLE}__0__0__footprint");
    let t = Instant::now();
    let sealed = write_segment(&path, &name, columns, &snap.batches, opts)
        .map_err(|e| err(format!("seal ({what}): {e}")))?;
    let secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let seg = SealedSegment::open(&path, &name, columns.clone(), LoadMode::Mmap)
        .map_err(|e| err(format!("open sealed ({what}): {e}")))?;
    let open_secs = t.elapsed().as_secs_f64();
    if seg.num_rows() != snap.num_rows {
        return Err(err(format!(
            "sealed ({what}) holds {} rows, expected {}",
            seg.num_rows(),
            snap.num_rows
        )));
    }
    Ok(StoredSize {
        what: what.to_string(),
        bytes: sealed.size_bytes,
        secs,
        open_secs: Some(open_secs),
    })
}

/// Writes `snap`'s rows as Parquet with zstd at the crate's default level, timed.
pub fn parquet_sized(dir: &Path, snap: &ConsumingSnapshot) -> Result<StoredSize, BenchError> {
    let path = dir.join("rows.parquet");
    let schema = snap
        .batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| err("parquet: no rows"))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let t = Instant::now();
    let file = std::fs::File::create(&path).map_err(|e| io_err("create", &path, e))?;
    let mut w = ArrowWriter::try_new(file, schema, Some(props))
        .map_err(|e| err(format!("parquet writer: {e}")))?;
    for b in &snap.batches {
        w.write(b).map_err(|e| err(format!("parquet write: {e}")))?;
    }
    let file = w
        .into_inner()
        .map_err(|e| err(format!("parquet close: {e}")))?;
    file.sync_all().map_err(|e| io_err("sync", &path, e))?;
    let secs = t.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path)
        .map_err(|e| io_err("stat", &path, e))?
        .len();
    Ok(StoredSize {
        what: "Parquet, zstd (default level 1), default writer properties".into(),
        bytes,
        secs,
        open_secs: None,
    })
}

/// Runs the footprint benchmark (see the module documentation).
pub async fn run_footprint_bench(
    cfg: &LifecycleBenchConfig,
) -> Result<FootprintReport, BenchError> {
    let rows = cfg.footprint_rows;
    if rows == 0 || rows >= NO_SEAL_ROWS {
        return Err(err(format!(
            "footprint: rows must be from 1 to {}",
            NO_SEAL_ROWS - 1
        )));
    }
    let machine = MachineFacts::read();
    let load_before = LoadAvg::read();
    let dir = cfg.work_dir.join("footprint");
    std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
    write_events_async(&dir, rows, 1).await?;
    let setup = setup_with_threshold(NO_SEAL_ROWS)?;
    let schema = schema()?;
    let core = Core::open(&dir, &setup).await?;
    let rss_before_kib = rss_kib();
    let start = Instant::now();
    let ingested = async {
        core.create_table(&setup, &schema).await?;
        wait_queryable(&core, rows, cfg.poll, start).await
    }
    .await;
    // Let the loop settle (it only polls the file now) before reading the RSS.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_after_kib = rss_kib();
    let snaps = consuming_snapshots(&core);
    let columns = core
        .segments()
        .table(TABLE)
        .map(|t| t.columns())
        .ok_or_else(|| err("footprint: the table is not registered"));
    core.stop().await;
    ingested?;
    let columns = columns?;
    let snap = match snaps.as_slice() {
        [s] if s.num_rows as u64 == rows => s.clone(),
        _ => {
            return Err(err(format!(
                "footprint: expected one consuming segment of {rows} rows, found {:?}",
                snaps.iter().map(|s| s.num_rows).collect::<Vec<_>>()
            )))
        }
    };
    let column_bytes: Vec<ColumnBytes> = columns
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let arrays = || snap.batches.iter().map(move |b| b.column(i));
            ColumnBytes {
                name: c.name.clone(),
                held: arrays().map(|a| a.get_array_memory_size()).sum(),
                used: arrays()
                    .map(|a| a.to_data().get_slice_memory_size().unwrap_or(0))
                    .sum(),
            }
        })
        .collect();

    let options = vec![
        (
            "sealed, SealOptions::default() (dictionaries, no index)",
            "default.seg",
            SealOptions::default(),
        ),
        (
            "sealed, the bench table's options (time column; no index configured)",
            "table.seg",
            SealOptions::from_table(&setup.table),
        ),
        (
            "sealed, with indexes (inverted country+device, range ts+price, bloom uuid)",
            "indexed.seg",
            SealOptions::from_table(&indexed_table()?),
        ),
    ];
    let (d, c, s) = (dir.clone(), columns.clone(), snap.clone());
    let stored = tokio::task::spawn_blocking(move || {
        let mut sealed = Vec::new();
        for (what, file, opts) in &options {
            sealed.push(seal_sized(&d, what, file, &c, &s, opts)?);
        }
        let parquet = parquet_sized(&d, &s)?;
        Ok::<_, BenchError>((sealed, parquet))
    })
    .await
    .map_err(|e| err(format!("seal task: {e}")));
    // The sealer's next step after write and open: the upload (to a file:// deep store).
    let upload_secs = match &stored {
        Ok(Ok(_)) => {
            let deep = dir.join("deepstore");
            std::fs::create_dir_all(&deep).map_err(|e| io_err("create", &deep, e))?;
            let deep = std::path::absolute(&deep).map_err(|e| io_err("resolve", &deep, e))?;
            let store = riffle_node::DeepStore::open(
                &format!("file://{}", deep.display()),
                &std::collections::BTreeMap::new(),
            )
            .map_err(|e| err(format!("deep store: {e}")))?;
            let t = Instant::now();
            let up = store
                .upload(&dir.join("table.seg"), "bench_events_REALTIME", "footprint")
                .await;
            up.ok().map(|_| t.elapsed().as_secs_f64())
        }
        _ => None,
    };
    let _ = std::fs::remove_dir_all(&dir);
    let (sealed, parquet) = stored??;
    Ok(FootprintReport {
        upload_secs,
        machine,
        load_before,
        load_after: LoadAvg::read(),
        rows,
        consuming_bytes: snap.bytes,
        batches: snap.batches.len(),
        column_bytes,
        rss_before_kib,
        rss_after_kib,
        sealed,
        parquet,
    })
}

impl fmt::Display for FootprintReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        header(
            f,
            "Riffle footprint benchmark: memory per row of a consuming segment, sealed size per row against Parquet",
            &self.machine,
            self.load_before,
            self.load_after,
        )?;
        writeln!(f)?;
        let rows = self.rows;
        writeln!(
            f,
            "-- consuming segment: {} rows of {LINE_BYTES}-byte JSON lines (1 partition, {} Arrow batches) --",
            thousands(rows as f64),
            self.batches
        )?;
        writeln!(
            f,
            "   ConsumingSnapshot.bytes {:.1} MB = {:.1} bytes/row (the default 1 GiB cap ends a segment at about {} rows)",
            self.consuming_bytes as f64 / 1e6,
            per_row(self.consuming_bytes as f64, rows),
            thousands(DEFAULT_CAP_BYTES as f64 / per_row(self.consuming_bytes as f64, rows).max(1e-9))
        )?;
        let cols: Vec<String> = self
            .column_bytes
            .iter()
            .map(|c| {
                format!(
                    "{} {:.1} ({:.1})",
                    c.name,
                    per_row(c.held as f64, rows),
                    per_row(c.used as f64, rows)
                )
            })
            .collect();
        let used: usize = self.column_bytes.iter().map(|c| c.used).sum();
        writeln!(
            f,
            "   per column, bytes/row held (used by values, offsets, validity): {}",
            cols.join(", ")
        )?;
        writeln!(
            f,
            "   used {:.1} bytes/row: {:.0}% of what is held is spare buffer capacity",
            per_row(used as f64, rows),
            100.0 * (1.0 - used as f64 / (self.consuming_bytes.max(1) as f64))
        )?;
        match (
            self.rss_before_kib,
            self.rss_after_kib,
            self.rss_bytes_per_row(),
        ) {
            (Some(a), Some(b), Some(r)) => writeln!(
                f,
                "   process RSS {:.1} MB -> {:.1} MB: delta {:.1} bytes/row (includes freed memory the allocator keeps)",
                a as f64 * 1024.0 / 1e6,
                b as f64 * 1024.0 / 1e6,
                r
            )?,
            _ => writeln!(f, "   process RSS: n/a (/proc/self/status unreadable)")?,
        }
        writeln!(f)?;
        writeln!(f, "-- the same rows on disk --")?;
        writeln!(
            f,
            "   {:<78} {:>12} {:>10} {:>9} {:>12}",
            "form", "bytes", "bytes/row", "vs pq", "write rows/s"
        )?;
        let pq = self.parquet.bytes as f64;
        let line = |f: &mut fmt::Formatter<'_>, s: &StoredSize| {
            writeln!(
                f,
                "   {:<78} {:>12} {:>10.2} {:>8.2}x {:>12}",
                s.what,
                thousands(s.bytes as f64),
                per_row(s.bytes as f64, rows),
                s.bytes as f64 / pq.max(1.0),
                thousands(rows as f64 / s.secs.max(1e-9))
            )
        };
        writeln!(
            f,
            "   {:<78} {:>12} {:>10.2} {:>8.2}x {:>12}",
            "JSON lines (the stream file)",
            thousands((rows * LINE_BYTES as u64) as f64),
            LINE_BYTES as f64,
            (rows * LINE_BYTES as u64) as f64 / pq.max(1.0),
            "-"
        )?;
        for s in &self.sealed {
            line(f, s)?;
        }
        line(f, &self.parquet)?;
        writeln!(
            f,
            "   (write rows/s: one thread, including the fsync and, for sealed files, the rename)"
        )?;
        if let Some(s) = self.sealed.get(1) {
            let open = s.open_secs.unwrap_or(0.0);
            let up = self.upload_secs.unwrap_or(0.0);
            writeln!(
                f,
                "   sealer steps for the table-options file, one thread: write {:.3} s, open and check {:.3} s, upload to file:// {:.3} s = {:.0} ns/row ({} rows/s; the catalog commit is not included)",
                s.secs,
                open,
                up,
                (s.secs + open + up) * 1e9 / rows.max(1) as f64,
                thousands(rows as f64 / (s.secs + open + up).max(1e-9))
            )?;
        }
        Ok(())
    }
}
