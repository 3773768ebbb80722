//! Runs the conformance suite against the built-in `file` and `memory` plugins.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use riffle_stream::conformance::{run_suite, Harness};
use riffle_stream::file::FilePlugin;
use riffle_stream::memory::{MemoryBroker, MemoryPlugin};
use riffle_stream::{StreamConfig, StreamContext, StreamPlugin, StreamRegistry};

const DECODER: &str = "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder";

fn stream_map(
    stream_type: &str,
    topic: &str,
    extra: &[(&str, String)],
) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("streamType".to_string(), stream_type.to_string());
    m.insert(
        format!("stream.{stream_type}.topic.name"),
        topic.to_string(),
    );
    m.insert(
        format!("stream.{stream_type}.decoder.class.name"),
        DECODER.to_string(),
    );
    for (k, v) in extra {
        m.insert(k.to_string(), v.clone());
    }
    m
}

/// Topics as directories of `<n>.jsonl` files under a temporary directory.
struct FileHarness {
    dir: tempfile::TempDir,
    /// The line terminator the writer uses (`\n` or `\r\n`).
    newline: &'static str,
}

impl FileHarness {
    fn new(newline: &'static str) -> FileHarness {
        FileHarness {
            dir: tempfile::tempdir().unwrap(),
            newline,
        }
    }

    fn streams(&self) -> PathBuf {
        self.dir.path().join("streams-here")
    }

    fn append(&self, topic: &str, partition: u32, bytes: &[u8]) -> anyhow::Result<()> {
        let path = self
            .streams()
            .join(topic)
            .join(format!("{partition}.jsonl"));
        let mut f = std::fs::OpenOptions::new().append(true).open(&path)?;
        f.write_all(bytes)?;
        Ok(())
    }
}

#[async_trait]
impl Harness for FileHarness {
    fn plugin(&self) -> Arc<dyn StreamPlugin> {
        Arc::new(FilePlugin)
    }

    fn context(&self) -> StreamContext {
        let mut ctx = StreamContext::new(self.dir.path().join("data"));
        ctx.allowed_dirs.push(self.streams());
        ctx
    }

    async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let dir = self.streams().join(name);
        std::fs::create_dir_all(&dir)?;
        for p in 0..partitions {
            std::fs::File::create(dir.join(format!("{p}.jsonl")))?;
        }
        Ok(stream_map(
            "file",
            name,
            &[("stream.file.path", self.streams().display().to_string())],
        ))
    }

    async fn produce(&self, topic: &str, partition: u32, values: &[Vec<u8>]) -> anyhow::Result<()> {
        let mut buf = Vec::new();
        for v in values {
            buf.extend_from_slice(v);
            buf.extend_from_slice(self.newline.as_bytes());
        }
        self.append(topic, partition, &buf)
    }

    async fn produce_skipped(&self, topic: &str, partition: u32) -> anyhow::Result<bool> {
        self.append(topic, partition, self.newline.as_bytes())?;
        Ok(true)
    }

    async fn add_partition(&self, topic: &str) -> anyhow::Result<bool> {
        let dir = self.streams().join(topic);
        let n = std::fs::read_dir(&dir)?.count();
        std::fs::File::create(dir.join(format!("{n}.jsonl")))?;
        Ok(true)
    }

    fn exact_time_criteria(&self) -> bool {
        false
    }
}

/// Topics of the global memory broker.
struct MemoryHarness;

#[async_trait]
impl Harness for MemoryHarness {
    fn plugin(&self) -> Arc<dyn StreamPlugin> {
        Arc::new(MemoryPlugin)
    }

    fn context(&self) -> StreamContext {
        StreamContext::new(std::env::temp_dir())
    }

    async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        MemoryBroker::global().create_topic(name, partitions)?;
        Ok(stream_map("memory", name, &[]))
    }

    async fn produce(&self, topic: &str, partition: u32, values: &[Vec<u8>]) -> anyhow::Result<()> {
        for v in values {
            MemoryBroker::global().produce(topic, partition, v.clone())?;
        }
        Ok(())
    }

    async fn produce_skipped(&self, topic: &str, partition: u32) -> anyhow::Result<bool> {
        MemoryBroker::global().produce_tombstone(topic, partition)?;
        Ok(true)
    }

    async fn add_partition(&self, topic: &str) -> anyhow::Result<bool> {
        MemoryBroker::global().add_partitions(topic, 1)?;
        Ok(true)
    }

    fn exact_time_criteria(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_plugin_conforms() {
    let h = FileHarness::new("\n");
    if let Err(e) = run_suite(&h).await {
        panic!("{e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_plugin_conforms_with_crlf_lines() {
    let h = FileHarness::new("\r\n");
    if let Err(e) = run_suite(&h).await {
        panic!("{e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_plugin_conforms() {
    if let Err(e) = run_suite(&MemoryHarness).await {
        panic!("{e:#}");
    }
}

#[tokio::test]
async fn memory_plugin_conforms_on_a_single_thread_runtime() {
    if let Err(e) = run_suite(&MemoryHarness).await {
        panic!("{e:#}");
    }
}

#[test]
fn registry_lists_known_types_for_an_unknown_one() {
    let config = StreamConfig::parse("$", &stream_map("nosuch", "t", &[])).unwrap();
    let err = match StreamRegistry::with_builtins().plugin_for(&config) {
        Ok(p) => panic!("resolved to plugin '{}'", p.stream_type()),
        Err(e) => e,
    };
    assert!(err.message.contains("file, memory"), "{}", err.message);
    assert!(err.message.contains("nosuch"), "{}", err.message);
    assert_eq!(
        StreamRegistry::with_builtins().stream_types(),
        vec!["file", "memory"]
    );
    for t in ["file", "memory"] {
        let config = StreamConfig::parse("$", &stream_map(t, "t", &[])).unwrap();
        let p = StreamRegistry::with_builtins().plugin_for(&config).unwrap();
        assert_eq!(p.stream_type(), t);
    }
}

/// Ways to break the memory plugin, to see the suite notice.
#[derive(Clone, Copy, Debug)]
enum Bug {
    /// Batches come out in reverse order.
    Reversed,
    /// A batch of only skipped records does not move `next_offset`.
    StuckOnSkipped,
    /// A long fetch sleeps its whole timeout before looking for messages.
    Stale,
}

struct Buggy(Bug);

struct BuggyConsumer {
    inner: Box<dyn riffle_stream::PartitionConsumer>,
    bug: Bug,
}

#[async_trait]
impl riffle_stream::PartitionConsumer for BuggyConsumer {
    async fn fetch(
        &mut self,
        from: &riffle_stream::StreamOffset,
        timeout: std::time::Duration,
    ) -> Result<riffle_stream::MessageBatch, riffle_stream::StreamError> {
        match self.bug {
            Bug::Reversed => {
                let mut b = self.inner.fetch(from, timeout).await?;
                b.messages.reverse();
                Ok(b)
            }
            Bug::StuckOnSkipped => {
                let mut b = self.inner.fetch(from, timeout).await?;
                if b.messages.is_empty() {
                    b.next_offset = from.clone();
                }
                Ok(b)
            }
            Bug::Stale => {
                // Only long fetches, to keep the rest of the suite quick.
                if timeout > std::time::Duration::from_secs(1) {
                    tokio::time::sleep(timeout).await;
                    return self.inner.fetch(from, std::time::Duration::ZERO).await;
                }
                self.inner.fetch(from, timeout).await
            }
        }
    }
}

#[async_trait]
impl StreamPlugin for Buggy {
    fn stream_type(&self) -> &'static str {
        "memory"
    }

    fn validate(
        &self,
        config: &StreamConfig,
        ctx: &StreamContext,
    ) -> Result<Vec<String>, riffle_stream::StreamError> {
        MemoryPlugin.validate(config, ctx)
    }

    async fn metadata_provider(
        &self,
        config: &StreamConfig,
        ctx: &StreamContext,
    ) -> Result<Box<dyn riffle_stream::MetadataProvider>, riffle_stream::StreamError> {
        MemoryPlugin.metadata_provider(config, ctx).await
    }

    async fn partition_consumer(
        &self,
        config: &StreamConfig,
        ctx: &StreamContext,
        partition: riffle_common::PartitionId,
    ) -> Result<Box<dyn riffle_stream::PartitionConsumer>, riffle_stream::StreamError> {
        Ok(Box::new(BuggyConsumer {
            inner: MemoryPlugin
                .partition_consumer(config, ctx, partition)
                .await?,
            bug: self.0,
        }))
    }
}

struct BuggyHarness(Bug);

#[async_trait]
impl Harness for BuggyHarness {
    fn plugin(&self) -> Arc<dyn StreamPlugin> {
        Arc::new(Buggy(self.0))
    }
    fn context(&self) -> StreamContext {
        MemoryHarness.context()
    }
    async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        MemoryHarness.create_topic(name, partitions).await
    }
    async fn produce(&self, topic: &str, partition: u32, values: &[Vec<u8>]) -> anyhow::Result<()> {
        MemoryHarness.produce(topic, partition, values).await
    }
    async fn produce_skipped(&self, topic: &str, partition: u32) -> anyhow::Result<bool> {
        MemoryHarness.produce_skipped(topic, partition).await
    }
    async fn add_partition(&self, topic: &str) -> anyhow::Result<bool> {
        MemoryHarness.add_partition(topic).await
    }
    fn exact_time_criteria(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_catches_broken_plugins() {
    for (bug, check, rule) in [
        (Bug::Reversed, "check (a) ordering", "rule 3 (ordering)"),
        (
            Bug::StuckOnSkipped,
            "check (e) skipped records",
            "rule 5 (skipped records move the offset)",
        ),
        (Bug::Stale, "check (d) freshness", "rule 4 (freshness)"),
    ] {
        let err = match run_suite(&BuggyHarness(bug)).await {
            Ok(()) => panic!("the suite passed a plugin with bug {bug:?}"),
            Err(e) => format!("{e:#}"),
        };
        let line = err
            .lines()
            .find(|l| l.contains(check))
            .unwrap_or_else(|| panic!("bug {bug:?}: no failure of {check} in:\n{err}"));
        assert!(line.contains(rule), "bug {bug:?}: {line}");
    }
}
