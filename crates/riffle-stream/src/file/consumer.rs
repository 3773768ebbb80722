//! The file stream's partition consumer: reads lines from an open partition file on the
//! blocking pool, into a fetch buffer that is lent to the batch's messages.

use std::fs::File;
use std::io::{ErrorKind, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;

use super::{
    byte_position, identity, io_error, list_partitions, offset_at, read_full, MAX_BATCH_BYTES,
    MAX_BATCH_LINES, POLL_INTERVAL,
};
use crate::{
    MessageBatch, PartitionConsumer, StreamError, StreamErrorKind, StreamMessage, StreamOffset,
};

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
pub(super) struct FilePartitionConsumer {
    topic: String,
    dir: PathBuf,
    partition: u32,
    /// The open file between fetches; `None` before the first fetch, and after a fetch
    /// was cancelled during a read (the next fetch starts over).
    reader: Option<Reader>,
}

impl FilePartitionConsumer {
    /// A consumer of `partition` of the topic in `dir`; the file is opened at the first fetch.
    pub(super) fn new(topic: String, dir: PathBuf, partition: u32) -> FilePartitionConsumer {
        FilePartitionConsumer {
            topic,
            dir,
            partition,
            reader: None,
        }
    }

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
