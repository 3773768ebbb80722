//! The `file` stream: topics are directories, partitions are append-only text files, one
//! message per line.
//!
//! # Layout
//!
//! ```text
//! <stream.file.path>/            default <data_dir>/streams; a relative path is taken
//!                                relative to the server's data directory
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
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use riffle_common::PartitionId;

use crate::{
    MessageBatch, MetadataProvider, OffsetCriteria, PartitionConsumer, StreamConfig, StreamContext,
    StreamError, StreamErrorKind, StreamMessage, StreamOffset, StreamPlugin,
};

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
    Ok(base.join(topic))
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
        // Follows symbolic links; a file removed meanwhile is simply not listed.
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            _ => continue,
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
        let dir = topic_dir(config, ctx)?;
        if let Some(p) = config.plugin_key("path") {
            let base = ctx.data_dir.join(p.trim());
            if let Ok(m) = std::fs::metadata(&base) {
                if !m.is_dir() {
                    return Err(StreamError::config(format!(
                        "{PATH_KEY}: '{}' is a file, expected a directory",
                        base.display()
                    )));
                }
            }
        }
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
        Ok(Box::new(FilePartitionConsumer {
            topic: config.topic.clone(),
            dir: topic_dir(config, ctx)?,
            partition: partition.0,
            reader: None,
        }))
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

/// The partition file while it is open.
struct OpenFile {
    file: File,
    path: PathBuf,
    id: Option<(u64, u64)>,
}

/// The blocking half of a partition consumer: owns the open file between fetches.
struct Reader {
    topic: String,
    dir: PathBuf,
    partition: u32,
    open: Option<OpenFile>,
    /// The longest length this partition's file was seen with: a shorter file was
    /// truncated or replaced.
    longest_seen: u64,
    /// `(position, file length)` of the last read that found only an incomplete line, so
    /// that polling does not re-read it until the file grows.
    incomplete: Option<(u64, u64)>,
    /// The fetch buffer, back from the previous batch once its messages were dropped.
    spare: Arc<Mutex<Option<Vec<u8>>>>,
}

/// A fetch buffer lent to a batch's messages (zero-copy slices of it). When the last of
/// them is dropped the buffer goes back to its reader, so that a partition reads into the
/// same memory fetch after fetch instead of allocating (and faulting in) megabytes each
/// time.
struct LentBuffer {
    data: Vec<u8>,
    home: Weak<Mutex<Option<Vec<u8>>>>,
}

impl AsRef<[u8]> for LentBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for LentBuffer {
    fn drop(&mut self) {
        if let Some(home) = self.home.upgrade() {
            home.lock()
                .get_or_insert_with(|| std::mem::take(&mut self.data));
        }
    }
}

/// What one read attempt found.
enum ReadOutcome {
    /// Complete lines (possibly only skipped ones).
    Batch(MessageBatch),
    /// Nothing complete at the position yet.
    Nothing,
}

impl Reader {
    fn context(&self, path: &Path) -> String {
        format!(
            "topic '{}' partition {}: file '{}'",
            self.topic,
            self.partition,
            path.display()
        )
    }

    /// Makes sure the current partition file is open and returns its length; `None` if
    /// the partition has no file yet.
    fn ensure_open(&mut self) -> Result<Option<u64>, StreamError> {
        if let Some(open) = &self.open {
            // Still the same file under that name? Otherwise re-open whatever is there now.
            let same = match std::fs::metadata(&open.path) {
                Ok(m) => open.id.is_none() || identity(&m) == open.id,
                Err(_) => false,
            };
            if !same {
                self.open = None;
                self.incomplete = None;
            }
        }
        if self.open.is_none() {
            let files = list_partitions(&self.topic, &self.dir)?;
            let Some(path) = files.get(&self.partition) else {
                return Ok(None);
            };
            let file = match File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io_error(self.context(path), &e)),
            };
            let meta = file
                .metadata()
                .map_err(|e| io_error(self.context(path), &e))?;
            self.open = Some(OpenFile {
                file,
                path: path.clone(),
                id: identity(&meta),
            });
        }
        match &self.open {
            None => Ok(None),
            Some(open) => {
                let meta = open
                    .file
                    .metadata()
                    .map_err(|e| io_error(self.context(&open.path), &e))?;
                Ok(Some(meta.len()))
            }
        }
    }

    /// One attempt to read complete lines at `pos`. Blocking.
    fn read_at(&mut self, pos: u64) -> Result<ReadOutcome, StreamError> {
        let Some(len) = self.ensure_open()? else {
            return Ok(ReadOutcome::Nothing);
        };
        let Some(open) = &self.open else {
            return Ok(ReadOutcome::Nothing);
        };
        if len < self.longest_seen {
            // Truncated, or replaced by a shorter file: offsets past the end are gone.
            if pos > len {
                return Err(StreamError::new(
                    StreamErrorKind::OffsetOutOfRange,
                    format!(
                        "{}: offset {pos} is beyond the file's length of {len} bytes (the \
                         file was truncated or replaced from {} bytes)",
                        self.context(&open.path),
                        self.longest_seen
                    ),
                ));
            }
            self.longest_seen = len;
        }
        self.longest_seen = self.longest_seen.max(len);
        if pos >= len || self.incomplete == Some((pos, len)) {
            return Ok(ReadOutcome::Nothing);
        }
        self.incomplete = None;
        let read_err = |e: std::io::Error| {
            io_error(
                format!("{}: reading at offset {pos}", self.context(&open.path)),
                &e,
            )
        };
        let mut file: &File = &open.file;
        // Read up to MAX_BATCH_BYTES; a single longer line is read whole.
        let available = len - pos;
        let mut want = available.min(MAX_BATCH_BYTES as u64) as usize;
        let mut buf = self.spare.lock().take().unwrap_or_default();
        buf.clear();
        buf.resize(want, 0);
        file.seek(SeekFrom::Start(pos)).map_err(read_err)?;
        let mut filled = read_full(file, &mut buf).map_err(read_err)?;
        let mut last_newline = memchr::memrchr(b'\n', &buf[..filled]);
        while last_newline.is_none() && filled == want && (want as u64) < available {
            let more = (available - want as u64).min(want as u64) as usize;
            buf.resize(want + more, 0);
            let n = read_full(file, &mut buf[want..]).map_err(read_err)?;
            last_newline = memchr::memrchr(b'\n', &buf[want..want + n]).map(|i| want + i);
            filled = want + n;
            want += more;
        }
        let Some(last_newline) = last_newline else {
            // Only an incomplete line: a writer is still appending it.
            self.incomplete = Some((pos, len));
            return Ok(ReadOutcome::Nothing);
        };
        buf.truncate(last_newline + 1);
        let data = Bytes::from_owner(LentBuffer {
            data: buf,
            home: Arc::downgrade(&self.spare),
        });
        Ok(ReadOutcome::Batch(split_lines(&data, pos)))
    }
}

/// Turns complete lines (`data` ends with `\n`) read at `pos` into a batch of at most
/// [`MAX_BATCH_LINES`] lines.
fn split_lines(data: &Bytes, pos: u64) -> MessageBatch {
    let mut messages = Vec::new();
    let mut unfiltered = 0usize;
    let mut size_bytes = 0usize;
    let mut start = 0usize;
    for nl in memchr::memchr_iter(b'\n', data) {
        let mut end = nl;
        if end > start && data[end - 1] == b'\r' {
            end -= 1;
        }
        unfiltered += 1;
        if end > start {
            size_bytes += end - start;
            messages.push(StreamMessage {
                key: None,
                value: data.slice(start..end),
                headers: Vec::new(),
                offset: offset_at(pos + start as u64),
                next_offset: offset_at(pos + nl as u64 + 1),
                timestamp_ms: None,
            });
        }
        start = nl + 1;
        if unfiltered >= MAX_BATCH_LINES {
            break;
        }
    }
    MessageBatch {
        messages,
        next_offset: offset_at(pos + start as u64),
        unfiltered_count: unfiltered,
        end_of_partition: false,
        data_loss: None,
        size_bytes,
    }
}

/// A consumer of one partition file.
struct FilePartitionConsumer {
    topic: String,
    dir: PathBuf,
    partition: u32,
    /// The open file between fetches; `None` before the first fetch, and after a fetch
    /// was cancelled during a read (the next fetch starts over).
    reader: Option<Reader>,
}

impl FilePartitionConsumer {
    async fn read_once(&mut self, pos: u64) -> Result<ReadOutcome, StreamError> {
        let mut reader = self.reader.take().unwrap_or_else(|| Reader {
            topic: self.topic.clone(),
            dir: self.dir.clone(),
            partition: self.partition,
            open: None,
            longest_seen: 0,
            incomplete: None,
            spare: Arc::default(),
        });
        let joined = tokio::task::spawn_blocking(move || {
            let outcome = reader.read_at(pos);
            (reader, outcome)
        })
        .await;
        match joined {
            Ok((reader, outcome)) => {
                self.reader = Some(reader);
                outcome
            }
            Err(e) => Err(StreamError::new(
                StreamErrorKind::Transient,
                format!(
                    "topic '{}' partition {}: file read task failed: {e}",
                    self.topic, self.partition
                ),
            )),
        }
    }
}

#[async_trait]
impl PartitionConsumer for FilePartitionConsumer {
    async fn fetch(
        &mut self,
        from: &StreamOffset,
        timeout: Duration,
    ) -> Result<MessageBatch, StreamError> {
        let pos = byte_position(&self.topic, self.partition, from)?;
        let now = Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or(now + Duration::from_secs(365 * 24 * 3600));
        loop {
            if let ReadOutcome::Batch(batch) = self.read_once(pos).await? {
                return Ok(batch);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(MessageBatch::empty(from.clone()));
            }
            tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use super::*;

    const DECODER: &str = "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder";
    const T: Duration = Duration::from_millis(50);

    fn config_with(topic: &str, path: Option<&Path>) -> StreamConfig {
        let mut m = BTreeMap::new();
        m.insert("streamType".to_string(), "file".to_string());
        m.insert("stream.file.topic.name".to_string(), topic.to_string());
        m.insert(
            "stream.file.decoder.class.name".to_string(),
            DECODER.to_string(),
        );
        if let Some(p) = path {
            m.insert(PATH_KEY.to_string(), p.display().to_string());
        }
        StreamConfig::parse("$", &m).unwrap()
    }

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Fixture {
            let f = Fixture {
                dir: tempfile::tempdir().unwrap(),
            };
            std::fs::create_dir_all(f.topic_dir()).unwrap();
            f
        }
        fn topic_dir(&self) -> PathBuf {
            self.dir.path().join("s").join("t")
        }
        fn config(&self) -> StreamConfig {
            config_with("t", Some(&self.dir.path().join("s")))
        }
        fn ctx(&self) -> StreamContext {
            StreamContext {
                data_dir: self.dir.path().join("data"),
            }
        }
        fn path(&self, name: &str) -> PathBuf {
            self.topic_dir().join(name)
        }
        fn append(&self, name: &str, bytes: &[u8]) {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path(name))
                .unwrap();
            f.write_all(bytes).unwrap();
        }
        async fn consumer(&self, p: u32) -> Box<dyn PartitionConsumer> {
            FilePlugin
                .partition_consumer(&self.config(), &self.ctx(), PartitionId(p))
                .await
                .unwrap()
        }
        async fn provider(&self) -> Box<dyn MetadataProvider> {
            FilePlugin
                .metadata_provider(&self.config(), &self.ctx())
                .await
                .unwrap()
        }
    }

    fn values(b: &MessageBatch) -> Vec<&[u8]> {
        b.messages.iter().map(|m| m.value.as_ref()).collect()
    }

    fn long(n: i64) -> StreamOffset {
        StreamOffset::Long(n)
    }

    #[tokio::test]
    async fn test_partial_trailing_line_waits_for_its_newline() {
        let f = Fixture::new();
        f.append("0.jsonl", b"a\nb");
        let mut c = f.consumer(0).await;
        let b = c.fetch(&long(0), T).await.unwrap();
        assert_eq!(values(&b), vec![b"a".as_ref()]);
        assert_eq!(b.next_offset, long(2));
        assert_eq!(b.messages[0].offset, long(0));
        assert_eq!(b.messages[0].next_offset, long(2));
        assert_eq!(b.messages[0].timestamp_ms, None);
        let b = c.fetch(&long(2), T).await.unwrap();
        assert!(b.messages.is_empty());
        assert_eq!(b.next_offset, long(2));
        let mut p = f.provider().await;
        let largest = p
            .offset_for(PartitionId(0), &OffsetCriteria::Largest, T)
            .await;
        assert_eq!(largest.unwrap(), long(2));
        f.append("0.jsonl", b"c\n");
        let b = c.fetch(&long(2), T).await.unwrap();
        assert_eq!(values(&b), vec![b"bc".as_ref()]);
        assert_eq!(b.next_offset, long(5));
        let latest = p.latest_offsets(&[PartitionId(0), PartitionId(1)], T).await;
        assert_eq!(
            latest.unwrap(),
            BTreeMap::from([(PartitionId(0), long(5)), (PartitionId(1), long(0))])
        );
    }

    #[tokio::test]
    async fn test_crlf_and_blank_lines() {
        let f = Fixture::new();
        f.append("0.jsonl", b"a\r\n\r\n\nb\r\nc\n\n");
        let mut c = f.consumer(0).await;
        let b = c.fetch(&long(0), T).await.unwrap();
        assert_eq!(values(&b), vec![b"a".as_ref(), b"b", b"c"]);
        let offsets: Vec<_> = b
            .messages
            .iter()
            .map(|m| (m.offset.clone(), m.next_offset.clone()))
            .collect();
        assert_eq!(
            offsets,
            vec![(long(0), long(3)), (long(6), long(9)), (long(9), long(11))]
        );
        assert_eq!(b.unfiltered_count, 6);
        assert_eq!(b.size_bytes, 3);
        assert_eq!(b.next_offset, long(12));
        // Only blank lines: no message, but the offset moves past them.
        f.append("0.jsonl", b"\n\r\n");
        let b = c.fetch(&long(12), T).await.unwrap();
        assert!(b.messages.is_empty());
        assert_eq!(b.unfiltered_count, 2);
        assert_eq!(b.next_offset, long(15));
    }

    #[tokio::test]
    async fn test_partition_files_and_duplicates() {
        let f = Fixture::new();
        for name in [
            "0.jsonl",
            "2",
            "10.json",
            "README.md",
            "x.jsonl",
            "-1.jsonl",
            ".3",
            "4.jsonl.swp",
            "+5",
        ] {
            f.append(name, b"");
        }
        std::fs::create_dir(f.path("6")).unwrap();
        let mut p = f.provider().await;
        let ids = p.partition_ids(T).await.unwrap();
        assert_eq!(ids, vec![PartitionId(0), PartitionId(2), PartitionId(10)]);

        f.append("0.json", b"");
        let err = p.partition_ids(T).await.unwrap_err();
        assert!(err.message.contains("0.json'"), "{}", err.message);
        assert!(err.message.contains("0.jsonl'"), "{}", err.message);
        assert!(err.message.contains("partition 0"), "{}", err.message);
        let err = f.consumer(0).await.fetch(&long(0), T).await.unwrap_err();
        assert!(err.message.contains("two files"), "{}", err.message);

        // A topic directory that does not exist (yet) has no partitions.
        let cfg = config_with("missing", Some(&f.dir.path().join("s")));
        let mut p = FilePlugin.metadata_provider(&cfg, &f.ctx()).await.unwrap();
        assert!(p.partition_ids(T).await.unwrap().is_empty());
        assert_eq!(
            p.offset_for(PartitionId(0), &OffsetCriteria::Largest, T)
                .await
                .unwrap(),
            long(0)
        );
    }

    #[tokio::test]
    async fn test_truncated_file_is_offset_out_of_range() {
        let f = Fixture::new();
        f.append("0.jsonl", b"aaaa\nbbbb\ncccc\n");
        let mut c = f.consumer(0).await;
        let b = c.fetch(&long(0), T).await.unwrap();
        assert_eq!(b.next_offset, long(15));
        std::fs::OpenOptions::new()
            .write(true)
            .open(f.path("0.jsonl"))
            .unwrap()
            .set_len(5)
            .unwrap();
        let err = c.fetch(&long(15), T).await.unwrap_err();
        assert_eq!(err.kind, StreamErrorKind::OffsetOutOfRange);
        assert!(err.message.contains("0.jsonl"), "{}", err.message);
        assert!(err.message.contains("offset 15"), "{}", err.message);
        assert!(err.message.contains("length of 5 bytes"), "{}", err.message);
        assert!(
            err.message.contains("topic 't' partition 0"),
            "{}",
            err.message
        );
        // Still an error when asked again; reading from an offset that exists works.
        assert!(c.fetch(&long(15), T).await.is_err());
        let b = c.fetch(&long(0), T).await.unwrap();
        assert_eq!(values(&b), vec![b"aaaa".as_ref()]);
    }

    #[tokio::test]
    async fn test_replaced_file_is_reopened() {
        let f = Fixture::new();
        f.append("0.jsonl", b"old\n");
        let mut c = f.consumer(0).await;
        assert_eq!(
            values(&c.fetch(&long(0), T).await.unwrap()),
            vec![b"old".as_ref()]
        );
        // Atomic replacement by a longer file: reading continues in the new one.
        f.append("0.tmp", b"old\nnew\n");
        std::fs::rename(f.path("0.tmp"), f.path("0.jsonl")).unwrap();
        assert_eq!(
            values(&c.fetch(&long(4), T).await.unwrap()),
            vec![b"new".as_ref()]
        );
        // Replaced by a shorter file: the offsets read before are gone.
        f.append("0.tmp", b"x\n");
        std::fs::rename(f.path("0.tmp"), f.path("0.jsonl")).unwrap();
        let err = c.fetch(&long(8), T).await.unwrap_err();
        assert_eq!(err.kind, StreamErrorKind::OffsetOutOfRange);
    }

    #[tokio::test]
    async fn test_file_appearing_later_and_offsets_beyond_the_end() {
        let f = Fixture::new();
        let mut c = f.consumer(3).await;
        let b = c.fetch(&long(0), T).await.unwrap();
        assert!(b.messages.is_empty());
        assert_eq!(b.next_offset, long(0));
        f.append("3.jsonl", b"hello\n");
        let b = c.fetch(&long(0), T).await.unwrap();
        assert_eq!(values(&b), vec![b"hello".as_ref()]);
        // Beyond the end of a file that did not shrink: nothing yet.
        let b = c.fetch(&long(100), T).await.unwrap();
        assert!(b.messages.is_empty());
        assert_eq!(b.next_offset, long(100));
        let err = c.fetch(&long(-1), T).await.unwrap_err();
        assert_eq!(err.kind, StreamErrorKind::OffsetOutOfRange);
        let err = c.fetch(&StreamOffset::parse("abc"), T).await.unwrap_err();
        assert!(err.message.contains("'abc'"), "{}", err.message);
    }

    #[tokio::test]
    async fn test_fetch_wakes_up_for_appended_lines() {
        let f = Fixture::new();
        f.append("0.jsonl", b"");
        let mut c = f.consumer(0).await;
        let path = f.path("0.jsonl");
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
            file.write_all(b"late\n").unwrap();
        });
        let started = Instant::now();
        let b = c.fetch(&long(0), Duration::from_secs(5)).await.unwrap();
        assert_eq!(values(&b), vec![b"late".as_ref()]);
        assert!(started.elapsed() < Duration::from_secs(1));
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn test_batch_caps_and_long_lines() {
        let f = Fixture::new();
        f.append("0", &b"x\n".repeat(MAX_BATCH_LINES + 5));
        let mut c = f.consumer(0).await;
        let b = c.fetch(&long(0), T).await.unwrap();
        assert_eq!(b.messages.len(), MAX_BATCH_LINES);
        assert_eq!(b.next_offset, long(2 * MAX_BATCH_LINES as i64));
        let b = c.fetch(&b.next_offset, T).await.unwrap();
        assert_eq!(b.messages.len(), 5);

        // One line longer than a batch's bytes is read whole.
        let start = 2 * (MAX_BATCH_LINES as i64 + 5);
        let mut long_line = vec![b'y'; MAX_BATCH_BYTES * 2 + 7];
        long_line.push(b'\n');
        f.append("0", &long_line);
        f.append("0", b"z\n");
        let b = c.fetch(&long(start), T).await.unwrap();
        assert_eq!(b.messages[0].value.len(), MAX_BATCH_BYTES * 2 + 7);
        let next = b.next_offset.clone();
        let b = if b.messages.len() == 1 {
            c.fetch(&next, T).await.unwrap()
        } else {
            b
        };
        assert_eq!(values(&b).last(), Some(&b"z".as_ref()));

        // A long line still being written is not returned.
        let end = start + long_line.len() as i64 + 2;
        f.append("0", &vec![b'w'; MAX_BATCH_BYTES + 1]);
        let b = c.fetch(&long(end), T).await.unwrap();
        assert!(b.messages.is_empty());
        assert_eq!(b.next_offset, long(end));
    }

    #[tokio::test]
    async fn test_time_criteria_use_the_modification_time() {
        let f = Fixture::new();
        f.append("0.jsonl", b"a\nb\npartial");
        let mut p = f.provider().await;
        let at = |c: OffsetCriteria| (PartitionId(0), c);
        let now = riffle_common::now_ms();
        let (pid, c) = at(OffsetCriteria::Timestamp(now - 3_600_000));
        assert_eq!(p.offset_for(pid, &c, T).await.unwrap(), long(0));
        let (pid, c) = at(OffsetCriteria::Timestamp(now + 3_600_000));
        assert_eq!(p.offset_for(pid, &c, T).await.unwrap(), long(4));
        // Last modified two hours ago: nothing in the last hour.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(f.path("0.jsonl"))
            .unwrap();
        file.set_modified(std::time::SystemTime::now() - Duration::from_secs(7200))
            .unwrap();
        let (pid, c) = at(OffsetCriteria::Period(3_600_000));
        assert_eq!(p.offset_for(pid, &c, T).await.unwrap(), long(4));
        let (pid, c) = at(OffsetCriteria::Period(3 * 3_600_000));
        assert_eq!(p.offset_for(pid, &c, T).await.unwrap(), long(0));
        let (pid, c) = at(OffsetCriteria::Smallest);
        assert_eq!(p.offset_for(pid, &c, T).await.unwrap(), long(0));
    }

    #[tokio::test]
    async fn test_default_path_and_validation() {
        let f = Fixture::new();
        let ctx = f.ctx();
        let dir = ctx.data_dir.join("streams").join("dflt");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("0.jsonl"), b"{\"a\":1}\n").unwrap();
        let cfg = config_with("dflt", None);
        assert_eq!(
            FilePlugin.validate(&cfg, &ctx).unwrap(),
            Vec::<String>::new()
        );
        let mut c = FilePlugin
            .partition_consumer(&cfg, &ctx, PartitionId(0))
            .await
            .unwrap();
        assert_eq!(c.fetch(&long(0), T).await.unwrap().messages.len(), 1);

        // A missing directory is fine; a regular file is not.
        let missing = f.dir.path().join("later");
        assert!(FilePlugin
            .validate(&config_with("t", Some(&missing)), &ctx)
            .is_ok());
        let file = f.dir.path().join("plain");
        std::fs::write(&file, b"").unwrap();
        let err = FilePlugin
            .validate(&config_with("t", Some(&file)), &ctx)
            .unwrap_err();
        assert_eq!(err.kind, StreamErrorKind::InvalidConfig);
        assert!(
            err.message.starts_with("stream.file.path: '"),
            "{}",
            err.message
        );
        assert!(
            err.message.ends_with("' is a file, expected a directory"),
            "{}",
            err.message
        );

        for bad in ["../up", "/abs", "a/../../b", "."] {
            let err = FilePlugin
                .validate(&config_with(bad, None), &ctx)
                .unwrap_err();
            assert!(
                err.message.starts_with("stream.file.topic.name"),
                "{}",
                err.message
            );
        }
        assert!(FilePlugin
            .validate(&config_with("nested/topic", None), &ctx)
            .is_ok());
    }
}
