//! Pinot's segment admin commands: `CreateSegment` (files to sealed segments, one per
//! input file, built in parallel) and `SegmentDump` (a segment's rows as JSON lines).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use riffle_config::{Schema, TableConfig};
use riffle_decode::readers::FileFormat;
use riffle_ingest::segment_build::{build_segments, BuildProgress, SegmentInput};
use riffle_segment::{LoadMode, SealedSegment};

use crate::admin::parse_flags;

const CREATE_USAGE: &str = "\
usage: riffle CreateSegment -dataDir <dir> -outDir <dir> -tableConfigFile <file> -schemaFile <file>
                            [-format AVRO|CSV|JSON|PARQUET] [-readerConfigFile <file>]
                            [-segmentName <name>] [-numThreads <n>] [-overwrite]

Builds one sealed segment per input file of -dataDir (files of -format, or of any known
extension when -format is not given), with the table's transforms and indexes, into -outDir.
-readerConfigFile is a JSON object of the record reader's settings (CSV: delimiter, header,
multiValueDelimiter, ...). Segments are named <table>_<n> (or <segmentName>_<n>).";

const DUMP_USAGE: &str = "\
usage: riffle SegmentDump -segmentDir <segment file> [-columns c1,c2] [-limit n]

Prints a sealed segment's rows as JSON lines (its metadata first, with -metadata).";

fn read_json_file(path: &str, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{what} '{path}'"))
}

/// `CreateSegment`.
pub fn create_segment(args: &[String]) -> Result<()> {
    let f = parse_flags(
        args,
        &[
            "dataDir",
            "outDir",
            "tableConfigFile",
            "schemaFile",
            "format",
            "readerConfigFile",
            "segmentName",
            "numThreads",
        ],
        &["overwrite", "help"],
    )?;
    if f.is_set("help") {
        println!("{CREATE_USAGE}");
        return Ok(());
    }
    let need = |k: &str| {
        f.get(k)
            .ok_or_else(|| anyhow!("-{k} is required\n\n{CREATE_USAGE}"))
    };
    let schema = Schema::from_json(&read_json_file(need("schemaFile")?, "-schemaFile")?)
        .map_err(|e| anyhow!("-schemaFile: {e}"))?;
    let config = TableConfig::from_json(&read_json_file(
        need("tableConfigFile")?,
        "-tableConfigFile",
    )?)
    .map_err(|e| anyhow!("-tableConfigFile: {e}"))?;
    config
        .validate(&schema)
        .map_err(|e| anyhow!("-tableConfigFile: {e}"))?;
    let configs: BTreeMap<String, String> = match f.get("readerConfigFile") {
        None => BTreeMap::new(),
        Some(p) => {
            let v: serde_json::Value =
                serde_json::from_slice(&read_json_file(p, "-readerConfigFile")?)
                    .map_err(|e| anyhow!("-readerConfigFile '{p}': not JSON: {e}"))?;
            let obj = v
                .as_object()
                .ok_or_else(|| anyhow!("-readerConfigFile '{p}': expected a JSON object"))?;
            obj.iter()
                .map(|(k, v)| {
                    let text = match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect()
        }
    };
    let format = f
        .get("format")
        .map(FileFormat::parse)
        .transpose()
        .map_err(|e| anyhow!("-format: {e}"))?;
    let data_dir = PathBuf::from(need("dataDir")?);
    let out_dir = PathBuf::from(need("outDir")?);
    let files = input_files(&data_dir, format)?;
    if files.is_empty() {
        bail!(
            "-dataDir '{}' holds no input files{}",
            data_dir.display(),
            format
                .map(|f| format!(" of format {f:?}"))
                .unwrap_or_default()
        );
    }
    let table = config.name().as_str().to_string();
    let base = f.get("segmentName").unwrap_or(&table).to_string();
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if base.is_empty() || base.starts_with('.') || base.len() > 200 || !base.chars().all(safe) {
        bail!("-segmentName '{base}': use letters, digits, '_', '-' and '.' (at most 200, not starting with '.')");
    }
    let inputs: Vec<SegmentInput> = files
        .into_iter()
        .enumerate()
        .map(|(i, (file, format))| SegmentInput {
            file,
            format,
            name: format!("{base}_{i}"),
            simple_name: None,
        })
        .collect();
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("-outDir '{}'", out_dir.display()))?;
    for i in &inputs {
        if out_dir.join(&i.name).exists() && !f.is_set("overwrite") {
            bail!(
                "segment '{}' exists in '{}': pass -overwrite to replace it",
                i.name,
                out_dir.display()
            );
        }
    }
    let threads = match f.get("numThreads") {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| anyhow!("-numThreads must be a positive number, got '{n}'"))?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let ctx = riffle_stream::StreamContext::new(out_dir.clone());
    let (spec, _) = riffle_controller::spec::resolve(
        Arc::new(config),
        Arc::new(schema),
        &riffle_node::default_streams(),
        &ctx,
        riffle_transform::TransformOptions::default(),
    )
    .map_err(|e| anyhow!("-tableConfigFile: {e}"))?;
    let total_bytes: u64 = inputs
        .iter()
        .map(|i| std::fs::metadata(&i.file).map(|m| m.len()).unwrap_or(0))
        .sum();
    let progress = BuildProgress::default();
    let start = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let results = std::thread::scope(|s| {
        let reporter = s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                report(&progress, inputs.len(), total_bytes, start, false);
            }
        });
        let r = build_segments(&spec, &inputs, &configs, &out_dir, threads, &progress);
        done.store(true, Ordering::Relaxed);
        let _ = reporter.join();
        r
    });
    report(&progress, inputs.len(), total_bytes, start, true);
    let mut failed = Vec::new();
    for r in results {
        match r {
            Ok(b) => println!(
                "{}: {} rows{} from {} ({} bytes)",
                b.path.display(),
                b.rows,
                if b.filtered > 0 {
                    format!(", {} filtered out", b.filtered)
                } else {
                    String::new()
                },
                b.input.file.display(),
                b.file.size_bytes
            ),
            Err(e) => failed.push(e),
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} segments failed:\n  {}",
            failed.len(),
            inputs.len(),
            failed.join("\n  ")
        );
    }
    Ok(())
}

pub(crate) fn report(
    p: &BuildProgress,
    files: usize,
    total_bytes: u64,
    start: Instant,
    last: bool,
) {
    let secs = start.elapsed().as_secs_f64().max(1e-3);
    let records = p.records.load(Ordering::Relaxed);
    let bytes = p.bytes_done.load(Ordering::Relaxed);
    let eta = if bytes > 0 && bytes < total_bytes {
        format!(
            ", about {:.0} s left",
            secs * (total_bytes - bytes) as f64 / bytes as f64
        )
    } else {
        String::new()
    };
    let line = format!(
        "files {}/{files}, {records} rows ({:.0} rows/s), {} of {} MB{eta}",
        p.files_done.load(Ordering::Relaxed),
        records as f64 / secs,
        bytes >> 20,
        total_bytes >> 20,
    );
    let mut err = std::io::stderr();
    let _ = if last {
        writeln!(err, "\r{line}")
    } else {
        write!(err, "\r{line}")
    };
}

/// The input files of a directory (sorted, recursively), with their formats.
fn input_files(dir: &Path, format: Option<FileFormat>) -> Result<Vec<(PathBuf, FileFormat)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).with_context(|| format!("-dataDir '{}'", d.display()))?;
        for e in entries {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let by_ext = FileFormat::from_path(&p);
            match (format, by_ext) {
                (Some(f), Some(e)) if f == e => out.push((p, f)),
                (Some(f), None) if p.extension().is_none() => out.push((p, f)),
                (None, Some(e)) => out.push((p, e)),
                _ => {}
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// `SegmentDump`.
pub fn segment_dump(args: &[String]) -> Result<()> {
    let f = parse_flags(
        args,
        &["segmentDir", "columns", "limit"],
        &["metadata", "help"],
    )?;
    if f.is_set("help") {
        println!("{DUMP_USAGE}");
        return Ok(());
    }
    let path = PathBuf::from(
        f.get("segmentDir")
            .ok_or_else(|| anyhow!("-segmentDir is required\n\n{DUMP_USAGE}"))?,
    );
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("-segmentDir '{}' has no file name", path.display()))?
        .to_string();
    let seg = SealedSegment::open_standalone(&path, LoadMode::Mmap)?;
    let info = seg.info().clone();
    let columns = seg.columns().clone();
    if f.is_set("metadata") {
        println!("{}", serde_json::to_string(&info)?);
    }
    let projection: Option<Vec<usize>> = match f.get("columns") {
        None => None,
        Some(list) => Some(
            list.split(',')
                .map(|c| {
                    columns.index_of(c.trim()).ok_or_else(|| {
                        anyhow!("-columns: segment '{name}' has no column '{}'", c.trim())
                    })
                })
                .collect::<Result<_>>()?,
        ),
    };
    let limit = match f.get("limit") {
        None => usize::MAX,
        Some(n) => n
            .parse()
            .map_err(|_| anyhow!("-limit must be a number, got '{n}'"))?,
    };
    let batches = seg.read(projection.as_deref(), None, 8192)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut written = 0usize;
    for b in batches {
        let b = b.slice(0, b.num_rows().min(limit - written));
        written += b.num_rows();
        let mut w = arrow::json::LineDelimitedWriter::new(&mut out);
        w.write(&b)?;
        w.finish()?;
        if written >= limit {
            break;
        }
    }
    out.flush()?;
    Ok(())
}
