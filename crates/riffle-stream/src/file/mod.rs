//! The `file` stream: topics are directories, partitions are append-only text files, one
//! message per line.
//!
//! # Layout
//!
//! ```text
//! <stream.file.path>/            default <data_dir>/streams; a relative path is taken
//!                                relative to the server's data directory; it must lie in
//!                                the data directory or a directory the server allows
//!                                (StreamContext::allowed_dirs), links resolved
//!   <topic>/                     stream.file.topic.name (may contain '/', never '..')
//!     0.jsonl                    partition 0
//!     1.jsonl                    partition 1
//!     2                          partition 2 (any extension, or none)
//!     README.md, .0.jsonl.swp    ignored: the stem is not a non-negative integer
//! ```
//!
//! Partition `N` is the file whose stem (the name up to the last `.`) is the decimal number
//! `N`. Two files for one partition (`0.json` and `0.jsonl`) are an error naming both. The
//! topic directory and the partition files may appear after the table is created: until
//! then the topic has no partitions and a consumer returns empty batches.
//!
//! # Format
//!
//! Each line terminated by `\n` is one message; a trailing `\r` is stripped. The message
//! value is the line without its terminator; there is no key, no header and no record
//! timestamp. Empty lines are skipped records: never returned, but `next_offset` moves past
//! them (contract rule 5). A last line without its `\n` is not read until the newline
//! arrives, so a writer may append a line in several writes.
//!
//! # Offsets
//!
//! Offsets are byte positions: a message's offset is the position of its first byte and its
//! `next_offset` the position after its `\n`. Offsets therefore survive restarts and seeking
//! is O(1). The plugin cannot tell whether an offset falls at a line start without reading
//! the file from the start, so offsets must come from this plugin (a message's offset or
//! next offset, or an offset the metadata provider returned); from any other position the
//! first "line" is the tail of a line.
//!
//! A fetch reads at most [`MAX_BATCH_BYTES`] (more only for a single longer line) and
//! returns at most [`MAX_BATCH_LINES`] lines; message values are zero-copy slices of one
//! buffer per fetch, which goes back to the reader once the messages are dropped (the next
//! fetch reads into the same memory). With nothing complete to read it re-checks the file every
//! [`POLL_INTERVAL`] until its timeout. File IO runs on tokio's blocking pool; the file
//! stays open between fetches and is re-opened when the name points to a new file.
//!
//! A file shorter than an offset that was read before (it was truncated, or replaced by a
//! shorter file) is an `OffsetOutOfRange` error naming the file, the offset and the length.
//! An offset beyond the end of a file that has not shrunk gives empty batches (the writer
//! may not have got there yet).
//!
//! # Time criteria
//!
//! The file has no record timestamps, so `Period` and `Timestamp` offset criteria resolve
//! coarsely from the file's modification time: a file last modified before the instant has
//! no record at or after it (the end of the file, as `Largest`); otherwise the whole file
//! is read (as `Smallest`).

use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use riffle_common::PartitionId;

mod consumer;

use crate::{
    MetadataProvider, OffsetCriteria, PartitionConsumer, StreamConfig, StreamContext, StreamError,
    StreamErrorKind, StreamOffset, StreamPlugin,
};
use consumer::FilePartitionConsumer;

/// The most bytes one fetch reads (a longer single line is read whole).
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The most lines (messages and skipped blank lines) one fetch returns.
pub const MAX_BATCH_LINES: usize = 100_000;

/// How often a waiting fetch re-checks the file.
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// The key naming the streams directory.
const PATH_KEY: &str = "stream.file.path";

/// Chunk size when searching backwards for the last newline.
const TAIL_CHUNK: u64 = 64 * 1024;

/// The `file` stream plugin (see the module documentation).
#[derive(Clone, Copy, Debug, Default)]
pub struct FilePlugin;

/// The directory of a topic: `<stream.file.path or data_dir/streams>/<topic>`.
fn topic_dir(config: &StreamConfig, ctx: &StreamContext) -> Result<PathBuf, StreamError> {
    let base = match config.plugin_key("path").map(str::trim) {
        Some("") => {
            return Err(StreamError::config(format!(
                "{PATH_KEY}: is empty, expected a directory"
            )))
        }
        Some(p) => ctx.data_dir.join(p),
        None => ctx.data_dir.join("streams"),
    };
    let topic = Path::new(&config.topic);
    let plain = topic.components().count() > 0
        && topic
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(StreamError::config(format!(
            "stream.file.topic.name: '{}' is not a relative directory name (no '..', '.' or \
             leading '/')",
            config.topic
        )));
    }
    let dir = base.join(topic);
    confine(&dir, ctx)?;
    Ok(dir)
}

/// `path` with symbolic links resolved as far as it exists (the rest appended as written).
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let mut rest = Vec::new();
    let mut existing = path;
    loop {
        match existing.canonicalize() {
            Ok(mut p) => {
                for c in rest.iter().rev() {
                    p.push(c);
                }
                return Ok(p);
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                    return Err(e);
                };
                rest.push(name.to_os_string());
                existing = parent;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Checks that `dir` (links resolved, `..` refused) lies in the data directory or in a
/// directory the server was told to allow.
fn confine(dir: &Path, ctx: &StreamContext) -> Result<(), StreamError> {
    if dir.components().any(|c| c == Component::ParentDir) {
        return Err(StreamError::config(format!(
            "{PATH_KEY}: '{}' contains '..'; give a directory inside the data directory",
            dir.display()
        )));
    }
    let resolved = resolve(dir).map_err(|e| {
        StreamError::config(format!(
            "{PATH_KEY}: cannot resolve '{}': {e}",
            dir.display()
        ))
    })?;
    let inside = std::iter::once(&ctx.data_dir)
        .chain(&ctx.allowed_dirs)
        .filter_map(|root| resolve(root).ok())
        .any(|root| resolved.starts_with(root));
    if inside {
        return Ok(());
    }
    Err(StreamError::config(format!(
        "{PATH_KEY}: '{}' is outside the data directory '{}'; the file stream reads only \
         there unless the server is started with --allow-stream-path <dir>",
        resolved.display(),
        ctx.data_dir.display()
    )))
}

/// The partition number a file name stands for, if any.
fn partition_of(name: &std::ffi::OsStr) -> Option<u32> {
    let stem = Path::new(name).file_stem()?.to_str()?;
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse::<u32>().ok()
}

/// The partition files of a topic directory (empty if the directory does not exist).
/// Blocking.
fn list_partitions(topic: &str, dir: &Path) -> Result<BTreeMap<u32, PathBuf>, StreamError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(io_error(
                format!("topic '{topic}': cannot list directory '{}'", dir.display()),
                &e,
            ))
        }
    };
    let mut out: BTreeMap<u32, PathBuf> = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            io_error(
                format!("topic '{topic}': cannot list directory '{}'", dir.display()),
                &e,
            )
        })?;
        let Some(partition) = partition_of(&entry.file_name()) else {
            continue;
        };
        let path = entry.path();
        // Follows symbolic links that stay in the topic directory; a file removed meanwhile
        // is simply not listed.
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            _ => continue,
        }
        if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            let (Ok(target), Ok(home)) = (path.canonicalize(), dir.canonicalize()) else {
                continue;
            };
            if !target.starts_with(&home) {
                return Err(StreamError::config(format!(
                    "topic '{topic}' partition {partition}: '{}' links to '{}', outside the \
                     topic directory",
                    path.display(),
                    target.display()
                )));
            }
        }
        if let Some(other) = out.get(&partition) {
            let (a, b) = if other < &path {
                (other.clone(), path)
            } else {
                (path, other.clone())
            };
            return Err(StreamError::new(
                StreamErrorKind::Fatal,
                format!(
                    "topic '{topic}' partition {partition}: two files for one partition: '{}' \
                     and '{}', keep one",
                    a.display(),
                    b.display()
                ),
            ));
        }
        out.insert(partition, path);
    }
    Ok(out)
}

/// An IO failure; missing files and permissions are not retried, the rest is.
fn io_error(context: String, e: &std::io::Error) -> StreamError {
    let kind = match e.kind() {
        ErrorKind::NotFound => StreamErrorKind::NotFound,
        ErrorKind::PermissionDenied => StreamErrorKind::Unauthorized,
        _ => StreamErrorKind::Transient,
    };
    StreamError::new(kind, format!("{context}: {e}"))
}

/// The byte position of an offset.
fn byte_position(topic: &str, partition: u32, offset: &StreamOffset) -> Result<u64, StreamError> {
    match offset {
        StreamOffset::Long(n) => u64::try_from(*n).map_err(|_| {
            StreamError::new(
                StreamErrorKind::OffsetOutOfRange,
                format!(
                    "topic '{topic}' partition {partition}: offset {n} is negative, file \
                     stream offsets are byte positions"
                ),
            )
        }),
        StreamOffset::Text(t) => Err(StreamError::new(
            StreamErrorKind::Fatal,
            format!(
                "topic '{topic}' partition {partition}: offset '{t}' is not a byte position, \
                 file stream offsets are integers"
            ),
        )),
    }
}

/// A byte position as an offset.
fn offset_at(pos: u64) -> StreamOffset {
    StreamOffset::Long(i64::try_from(pos).unwrap_or(i64::MAX))
}

/// The identity of a file, to notice it was replaced.
#[cfg(unix)]
fn identity(m: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

/// The identity of a file, to notice it was replaced (not available here).
#[cfg(not(unix))]
fn identity(_m: &Metadata) -> Option<(u64, u64)> {
    None
}

/// The position after the last `\n` of a file of length `len` (0 if it has none). Blocking.
fn complete_length(mut file: &File, len: u64) -> std::io::Result<u64> {
    let mut end = len;
    let mut buf = vec![0u8; TAIL_CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(TAIL_CHUNK);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        let n = read_full(file, chunk)?;
        if let Some(i) = memchr::memrchr(b'\n', &chunk[..n]) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Reads until `buf` is full or the end of the file; returns the bytes read. Blocking.
fn read_full(mut file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Runs blocking file work off the async runtime.
async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T, StreamError> + Send + 'static,
) -> Result<T, StreamError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        StreamError::new(
            StreamErrorKind::Transient,
            format!("{what}: blocking file task failed: {e}"),
        )
    })?
}

/// Runs `fut` within `timeout`, or fails with a `Timeout` error.
async fn within<T>(
    what: &str,
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<T, StreamError>>,
) -> Result<T, StreamError> {
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| {
            Err(StreamError::new(
                StreamErrorKind::Timeout,
                format!("{what}: timed out after {} ms", timeout.as_millis()),
            ))
        })
}

#[async_trait]
impl StreamPlugin for FilePlugin {
    fn stream_type(&self) -> &'static str {
        "file"
    }

    fn offsets_count_records(&self) -> bool {
        // Offsets are byte positions.
        false
    }

    fn validate(
        &self,
        config: &StreamConfig,
        ctx: &StreamContext,
    ) -> Result<Vec<String>, StreamError> {
        if let Some(p) = config.plugin_key("path") {
            let base = ctx.data_dir.join(p.trim());
            confine(&base, ctx)?;
            if let Ok(m) = std::fs::metadata(&base) {
                if !m.is_dir() {
                    return Err(StreamError::config(format!(
                        "{PATH_KEY}: '{}' is a file, expected a directory",
                        base.display()
                    )));
                }
            }
        }
        let dir = topic_dir(config, ctx)?;
        if let Ok(m) = std::fs::metadata(&dir) {
            if !m.is_dir() {
                return Err(StreamError::config(format!(
                    "stream.file.topic.name: topic '{}' is the file '{}', expected a directory",
                    config.topic,
                    dir.display()
                )));
            }
        }
        Ok(Vec::new())
    }

    async fn metadata_provider(
        &self,
        config: &StreamConfig,
        ctx: &StreamContext,
    ) -> Result<Box<dyn MetadataProvider>, StreamError> {
        Ok(Box::new(FileMetadataProvider {
            topic: config.topic.clone(),
            dir: topic_dir(config, ctx)?,
        }))
    }

    async fn partition_consumer(
        &self,
        config: &StreamConfig,
        ctx: &StreamContext,
        partition: PartitionId,
    ) -> Result<Box<dyn PartitionConsumer>, StreamError> {
        Ok(Box::new(FilePartitionConsumer::new(
            config.topic.clone(),
            topic_dir(config, ctx)?,
            partition.0,
        )))
    }
}

/// The metadata provider of the file stream.
struct FileMetadataProvider {
    topic: String,
    dir: PathBuf,
}

/// What the provider needs to know about one partition file. Blocking.
struct FileFacts {
    /// Position after the last complete line.
    complete_len: u64,
    /// Modification time, epoch ms.
    mtime_ms: Option<i64>,
}

fn file_facts(topic: &str, dir: &Path, partition: u32) -> Result<Option<FileFacts>, StreamError> {
    let files = list_partitions(topic, dir)?;
    let Some(path) = files.get(&partition) else {
        return Ok(None);
    };
    let what = || {
        format!(
            "topic '{topic}' partition {partition}: file '{}'",
            path.display()
        )
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(what(), &e)),
    };
    let meta = file.metadata().map_err(|e| io_error(what(), &e))?;
    let complete_len = complete_length(&file, meta.len()).map_err(|e| io_error(what(), &e))?;
    let mtime_ms = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok());
    Ok(Some(FileFacts {
        complete_len,
        mtime_ms,
    }))
}

#[async_trait]
impl MetadataProvider for FileMetadataProvider {
    async fn partition_ids(&mut self, timeout: Duration) -> Result<Vec<PartitionId>, StreamError> {
        let (topic, dir) = (self.topic.clone(), self.dir.clone());
        let what = format!("topic '{}': listing partitions", self.topic);
        let files = within(
            &what,
            timeout,
            blocking(&what, move || list_partitions(&topic, &dir)),
        )
        .await?;
        Ok(files.keys().map(|p| PartitionId(*p)).collect())
    }

    async fn offset_for(
        &mut self,
        partition: PartitionId,
        criteria: &OffsetCriteria,
        timeout: Duration,
    ) -> Result<StreamOffset, StreamError> {
        if *criteria == OffsetCriteria::Smallest {
            return Ok(StreamOffset::Long(0));
        }
        let (topic, dir) = (self.topic.clone(), self.dir.clone());
        let what = format!(
            "topic '{}' partition {partition}: offset lookup",
            self.topic
        );
        let facts = within(
            &what,
            timeout,
            blocking(&what, move || file_facts(&topic, &dir, partition.0)),
        )
        .await?;
        let Some(facts) = facts else {
            return Ok(StreamOffset::Long(0));
        };
        let largest = offset_at(facts.complete_len);
        let instant = match criteria {
            OffsetCriteria::Smallest => return Ok(StreamOffset::Long(0)),
            OffsetCriteria::Largest => return Ok(largest),
            OffsetCriteria::Period(ms) => riffle_common::now_ms().saturating_sub(*ms),
            OffsetCriteria::Timestamp(ms) => *ms,
        };
        // No record timestamps: a file untouched since before the instant has nothing at or
        // after it; otherwise read it whole.
        Ok(match facts.mtime_ms {
            Some(m) if m < instant => largest,
            _ => StreamOffset::Long(0),
        })
    }

    async fn latest_offsets(
        &mut self,
        partitions: &[PartitionId],
        timeout: Duration,
    ) -> Result<BTreeMap<PartitionId, StreamOffset>, StreamError> {
        let (topic, dir) = (self.topic.clone(), self.dir.clone());
        let wanted = partitions.to_vec();
        let what = format!("topic '{}': latest offsets", self.topic);
        within(
            &what,
            timeout,
            blocking(&what, move || {
                let mut out = BTreeMap::new();
                for p in wanted {
                    let len = file_facts(&topic, &dir, p.0)?.map_or(0, |f| f.complete_len);
                    out.insert(p, offset_at(len));
                }
                Ok(out)
            }),
        )
        .await
    }
}

#[cfg(test)]
mod tests;
