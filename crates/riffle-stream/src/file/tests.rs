//! Tests of the file stream.

#![allow(clippy::unwrap_used)]

use std::io::Write;

use std::time::Instant;

use super::*;
use crate::MessageBatch;

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
        let mut ctx = StreamContext::new(self.dir.path().join("data"));
        ctx.allowed_dirs.push(self.dir.path().join("s"));
        ctx
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
    let missing = ctx.data_dir.join("later");
    assert!(FilePlugin
        .validate(&config_with("t", Some(&missing)), &ctx)
        .is_ok());
    let file = ctx.data_dir.join("plain");
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

#[tokio::test]
async fn test_paths_outside_the_data_directory_are_refused() {
    let f = Fixture::new();
    let data = f.dir.path().join("data");
    std::fs::create_dir_all(data.join("streams")).unwrap();
    let outside = f.dir.path().join("outside");
    std::fs::create_dir_all(outside.join("t")).unwrap();
    std::fs::write(outside.join("t").join("0.jsonl"), b"secret\n").unwrap();
    let ctx = StreamContext::new(data.clone());

    // An absolute path elsewhere, a relative one that climbs out, a link that leads out.
    std::os::unix::fs::symlink(&outside, data.join("streams").join("link")).unwrap();
    for (path, expect) in [
        (
            outside.display().to_string(),
            "is outside the data directory",
        ),
        ("/proc/self".to_string(), "is outside the data directory"),
        ("../outside".to_string(), "contains '..'"),
        ("streams/link".to_string(), "is outside the data directory"),
    ] {
        let cfg = config_with("t", Some(Path::new(&path)));
        let err = FilePlugin.validate(&cfg, &ctx).unwrap_err();
        assert_eq!(err.kind, StreamErrorKind::InvalidConfig, "{path}");
        assert!(
            err.message.starts_with("stream.file.path: "),
            "{}",
            err.message
        );
        assert!(err.message.contains(expect), "{path}: {}", err.message);
        assert!(FilePlugin
            .partition_consumer(&cfg, &ctx, PartitionId(0))
            .await
            .is_err());
    }
    // A topic whose directory is a link out of the data directory.
    std::os::unix::fs::symlink(outside.join("t"), data.join("streams").join("t")).unwrap();
    let err = FilePlugin
        .validate(&config_with("t", None), &ctx)
        .unwrap_err();
    assert!(
        err.message.contains("is outside the data directory"),
        "{}",
        err.message
    );

    // A partition file that links out of its topic directory is not read.
    let topic = data.join("streams").join("u");
    std::fs::create_dir_all(&topic).unwrap();
    std::os::unix::fs::symlink(outside.join("t").join("0.jsonl"), topic.join("0.jsonl")).unwrap();
    let mut md = FilePlugin
        .metadata_provider(&config_with("u", None), &ctx)
        .await
        .unwrap();
    let err = md.partition_ids(T).await.unwrap_err();
    assert!(
        err.message.contains("outside the topic directory"),
        "{}",
        err.message
    );

    // Allowed by the server: read.
    let mut allowed = ctx.clone();
    allowed.allowed_dirs.push(outside.clone());
    let cfg = config_with("t", Some(&outside));
    assert!(FilePlugin.validate(&cfg, &allowed).is_ok());
    let mut c = FilePlugin
        .partition_consumer(&cfg, &allowed, PartitionId(0))
        .await
        .unwrap();
    assert_eq!(c.fetch(&long(0), T).await.unwrap().messages.len(), 1);
}
