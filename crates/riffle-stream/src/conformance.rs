//! The conformance suite every stream plugin runs: it checks the contract of the crate
//! documentation against a live stream.
//!
//! A plugin's tests implement [`Harness`] (create a topic, produce to it, ...) and call
//! [`run_suite`]. Every check uses its own fresh topic. A failure names the check and the
//! contract rule that failed; all checks run, and the error lists every failure.
//!
//! The checks:
//! - (a) ordering: 1000 messages in 2 partitions read back exactly, offsets strictly
//!   increasing, string form of offsets round-trips (rules 1, 3, 6);
//! - (b) resume: fetching from any message's offset returns that message first and then the
//!   rest, from the same or a fresh consumer (rules 1, 2);
//! - (c) timeouts: with nothing to read, an empty batch with `next_offset == from` arrives
//!   within the timeout and some slack (rule 4);
//! - (d) freshness: messages produced while a fetch waits are returned promptly (rule 4);
//! - (e) skipped records: never returned, and `next_offset` moves past them (rule 5);
//! - (f) partitions appearing: listed by the metadata provider, consumable from the
//!   smallest offset (rule 7);
//! - (g) offset criteria: smallest, largest, period and timestamp; latest offsets.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Result};
use async_trait::async_trait;
use riffle_common::{now_ms, PartitionId};

use crate::{
    MessageBatch, MetadataProvider, OffsetCriteria, PartitionConsumer, StreamConfig, StreamContext,
    StreamError, StreamMessage, StreamOffset, StreamPlugin, StreamRegistry,
};

/// What the suite needs from a stream besides the plugin: a way to make topics and write to
/// them.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The plugin under test.
    fn plugin(&self) -> Arc<dyn StreamPlugin>;
    /// The context the plugin is given.
    fn context(&self) -> StreamContext;
    /// Creates a fresh, empty topic with `partitions` partitions; returns the stream-config
    /// map (as Pinot's flat map) that reads it.
    async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
    ) -> anyhow::Result<BTreeMap<String, String>>;
    /// Appends messages to a partition, in order.
    async fn produce(&self, topic: &str, partition: u32, values: &[Vec<u8>]) -> anyhow::Result<()>;
    /// Writes one record the plugin must skip (tombstone, blank line). Ok(false) if the
    /// stream has no such record.
    async fn produce_skipped(&self, topic: &str, partition: u32) -> anyhow::Result<bool>;
    /// Adds one partition; Ok(false) if unsupported by this stream/broker.
    async fn add_partition(&self, topic: &str) -> anyhow::Result<bool>;
    /// Whether Period/Timestamp criteria resolve exactly by record timestamp (memory,
    /// Kafka) rather than coarsely (file).
    fn exact_time_criteria(&self) -> bool;
    /// Whether `largest` is the `next_offset` after the last message and `latest_offsets`
    /// gives it (true for most streams). Kinesis cannot know an open shard's next sequence
    /// number: its `largest` is a position ("records arriving from now on") checked only by
    /// what a fetch from it returns.
    fn exact_largest(&self) -> bool {
        true
    }
}

/// The timeout of ordinary fetches.
const FETCH_TIMEOUT: Duration = Duration::from_millis(200);
/// How long a fetch with [`FETCH_TIMEOUT`] may take before it counts as hanging.
const FETCH_LIMIT: Duration = Duration::from_secs(2);
/// The longest a check waits for messages it produced.
const READ_DEADLINE: Duration = Duration::from_secs(20);
/// Timeout of metadata calls.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs every check against the harness; the error lists each failed check.
pub async fn run_suite(h: &dyn Harness) -> Result<()> {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let suite = Suite {
        h,
        plugin: h.plugin(),
        ctx: h.context(),
        prefix: format!(
            "conformance-{}-{}-{}",
            std::process::id(),
            now_ms(),
            RUN.fetch_add(1, Ordering::Relaxed)
        ),
    };
    let mut failures = Vec::new();
    match suite.check_ordering().await {
        Ok(read) => {
            if let Err(e) = suite.check_resume(&read).await {
                failures.push(format!("check (b) resume from any offset: {e:#}"));
            }
        }
        Err(e) => failures.push(format!(
            "check (a) ordering: {e:#} (check (b) was not run, it reads the topic of (a))"
        )),
    }
    if let Err(e) = suite.check_timeouts().await {
        failures.push(format!("check (c) timeouts: {e:#}"));
    }
    if let Err(e) = suite.check_freshness().await {
        failures.push(format!("check (d) freshness: {e:#}"));
    }
    if let Err(e) = suite.check_skipped().await {
        failures.push(format!("check (e) skipped records: {e:#}"));
    }
    if let Err(e) = suite.check_new_partitions().await {
        failures.push(format!("check (f) partitions appearing: {e:#}"));
    }
    if let Err(e) = suite.check_criteria().await {
        failures.push(format!("check (g) offset criteria: {e:#}"));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        bail!(
            "stream plugin '{}' fails the conformance suite:\n- {}",
            suite.plugin.stream_type(),
            failures.join("\n- ")
        )
    }
}

/// The messages check (a) read: the topic's config and each partition's messages.
struct OrderingRead {
    config: StreamConfig,
    partitions: Vec<Vec<StreamMessage>>,
}

struct Suite<'a> {
    h: &'a dyn Harness,
    plugin: Arc<dyn StreamPlugin>,
    ctx: StreamContext,
    prefix: String,
}

/// A stream error with its kind.
fn se(what: &str, e: StreamError) -> anyhow::Error {
    anyhow!("{what} failed: {e} (kind {:?})", e.kind)
}

/// The value of message `i` of partition `p` in a check.
fn value(check: &str, p: u32, i: usize) -> Vec<u8> {
    format!(r#"{{"check":"{check}","p":{p},"i":{i}}}"#).into_bytes()
}

fn show(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

/// Checks the invariants of one batch fetched from `from`.
fn check_batch(from: &StreamOffset, b: &MessageBatch) -> Result<()> {
    ensure!(
        b.data_loss.is_none(),
        "fetch from {from} reported data loss {:?} although nothing was deleted",
        b.data_loss
    );
    ensure!(
        b.unfiltered_count >= b.messages.len(),
        "batch from {from}: unfiltered_count {} is less than the {} messages returned",
        b.unfiltered_count,
        b.messages.len()
    );
    let mut prev: Option<&StreamMessage> = None;
    for m in &b.messages {
        for o in [&m.offset, &m.next_offset] {
            let back = StreamOffset::parse(&o.to_string());
            ensure!(
                &back == o,
                "rule 1 (offsets): offset {o:?} does not round-trip through its string form \
                 '{o}' (parses back as {back:?})"
            );
        }
        ensure!(
            m.next_offset > m.offset,
            "rule 1 (offsets): message at {} has next_offset {} which is not after it",
            m.offset,
            m.next_offset
        );
        match prev {
            None => ensure!(
                &m.offset >= from,
                "rule 3 (ordering): fetch from {from} returned a first message at {}, before \
                 the requested offset",
                m.offset
            ),
            Some(p) => ensure!(
                m.offset >= p.next_offset,
                "rule 3 (ordering): in a batch from {from}, message at {} follows a message \
                 whose next_offset is {} (offsets must strictly increase)",
                m.offset,
                p.next_offset
            ),
        }
        prev = Some(m);
    }
    if let Some(last) = prev {
        ensure!(
            b.next_offset >= last.next_offset,
            "rule 6 (next_offset of the batch): batch from {from} has next_offset {} before \
             its last message's next_offset {}",
            b.next_offset,
            last.next_offset
        );
    }
    ensure!(
        &b.next_offset >= from,
        "rule 6 (next_offset of the batch): batch from {from} has next_offset {}, before \
         where it started",
        b.next_offset
    );
    if b.messages.is_empty() && b.unfiltered_count > 0 {
        ensure!(
            &b.next_offset > from,
            "rule 5 (skipped records move the offset): a batch from {from} with {} skipped \
             records and no message has next_offset {}, it must move past them",
            b.unfiltered_count,
            b.next_offset
        );
    }
    if b.unfiltered_count == 0 {
        ensure!(
            &b.next_offset == from,
            "rule 4 (timeouts): an empty batch from {from} (no records, not even skipped \
             ones) has next_offset {}, expected {from}",
            b.next_offset
        );
    }
    Ok(())
}

impl Suite<'_> {
    /// A fresh topic for `check` and its parsed stream config.
    async fn topic(&self, check: &str, partitions: u32) -> Result<(String, StreamConfig)> {
        let name = format!("{}-{check}", self.prefix);
        let map = self
            .h
            .create_topic(&name, partitions)
            .await
            .map_err(|e| anyhow!("harness could not create topic '{name}': {e:#}"))?;
        let config = StreamConfig::parse("$", &map).map_err(|e| {
            anyhow!("the harness's stream config for topic '{name}' does not parse: {e}")
        })?;
        ensure!(
            config.stream_type == self.plugin.stream_type(),
            "the harness's stream config has streamType '{}', the plugin is '{}'",
            config.stream_type,
            self.plugin.stream_type()
        );
        Ok((name, config))
    }

    async fn produce(&self, topic: &str, partition: u32, values: &[Vec<u8>]) -> Result<()> {
        self.h.produce(topic, partition, values).await.map_err(|e| {
            anyhow!("harness could not produce to topic '{topic}' partition {partition}: {e:#}")
        })
    }

    async fn provider(&self, config: &StreamConfig) -> Result<Box<dyn MetadataProvider>> {
        self.plugin
            .metadata_provider(config, &self.ctx)
            .await
            .map_err(|e| {
                se(
                    &format!("metadata_provider for topic '{}'", config.topic),
                    e,
                )
            })
    }

    async fn consumer(
        &self,
        config: &StreamConfig,
        partition: u32,
    ) -> Result<Box<dyn PartitionConsumer>> {
        self.plugin
            .partition_consumer(config, &self.ctx, PartitionId(partition))
            .await
            .map_err(|e| {
                se(
                    &format!(
                        "partition_consumer for topic '{}' partition {partition}",
                        config.topic
                    ),
                    e,
                )
            })
    }

    async fn offset_for(
        &self,
        provider: &mut dyn MetadataProvider,
        partition: u32,
        criteria: OffsetCriteria,
    ) -> Result<StreamOffset> {
        provider
            .offset_for(PartitionId(partition), &criteria, METADATA_TIMEOUT)
            .await
            .map_err(|e| {
                se(
                    &format!("offset_for({criteria:?}) of partition {partition}"),
                    e,
                )
            })
    }

    async fn read(
        &self,
        config: &StreamConfig,
        partition: u32,
        n: usize,
    ) -> Result<Vec<StreamMessage>> {
        let mut provider = self.provider(config).await?;
        let from = self
            .offset_for(provider.as_mut(), partition, OffsetCriteria::Smallest)
            .await?;
        let mut consumer = self.consumer(config, partition).await?;
        Ok(read_n(consumer.as_mut(), &from, n).await?.0)
    }
}

/// One fetch, checked: it returns within the limit and its batch keeps the contract.
async fn fetch(
    c: &mut dyn PartitionConsumer,
    from: &StreamOffset,
    timeout: Duration,
) -> Result<MessageBatch> {
    let limit = timeout + FETCH_LIMIT;
    let batch = tokio::time::timeout(limit, c.fetch(from, timeout))
        .await
        .map_err(|_| {
            anyhow!(
                "rule 4 (timeouts): fetch from {from} with a timeout of {} ms did not return \
                 within {} ms",
                timeout.as_millis(),
                limit.as_millis()
            )
        })?
        .map_err(|e| se(&format!("fetch from offset {from}"), e))?;
    check_batch(from, &batch)?;
    Ok(batch)
}

/// Reads exactly `n` messages from `from` following `next_offset`; returns them and the
/// offset after them.
async fn read_n(
    c: &mut dyn PartitionConsumer,
    from: &StreamOffset,
    n: usize,
) -> Result<(Vec<StreamMessage>, StreamOffset)> {
    let started = Instant::now();
    let mut out: Vec<StreamMessage> = Vec::with_capacity(n);
    let mut at = from.clone();
    while out.len() < n {
        if started.elapsed() > READ_DEADLINE {
            bail!(
                "reading from {from}: got {} of {n} messages within {} s (stuck at offset {at})",
                out.len(),
                READ_DEADLINE.as_secs()
            );
        }
        let batch = fetch(c, &at, FETCH_TIMEOUT).await?;
        if let (Some(prev), Some(first)) = (out.last(), batch.messages.first()) {
            ensure!(
                first.offset >= prev.next_offset,
                "rule 3 (ordering): a batch from {at} starts at {}, before the previous \
                 message's next_offset {}",
                first.offset,
                prev.next_offset
            );
        }
        out.extend(batch.messages);
        at = batch.next_offset;
    }
    ensure!(
        out.len() == n,
        "reading from {from}: expected {n} messages, got {} (extra: '{}')",
        out.len(),
        out.get(n).map(|m| show(&m.value)).unwrap_or_default()
    );
    Ok((out, at))
}

/// Compares read messages with the values expected, naming the first difference.
fn expect_values(rule: &str, got: &[StreamMessage], want: &[Vec<u8>]) -> Result<()> {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        ensure!(
            g.value.as_ref() == w.as_slice(),
            "{rule}: message #{i} (offset {}) is '{}', expected '{}'",
            g.offset,
            show(&g.value),
            show(w)
        );
    }
    ensure!(
        got.len() == want.len(),
        "{rule}: got {} messages, expected {}",
        got.len(),
        want.len()
    );
    Ok(())
}

impl Suite<'_> {
    /// (a) 1000 messages in 2 partitions come back exactly and in order.
    async fn check_ordering(&self) -> Result<OrderingRead> {
        let (topic, config) = self.topic("a", 2).await?;
        self.plugin
            .validate(&config, &self.ctx)
            .map_err(|e| se("validate of the harness's stream config", e))?;
        let mut registry = StreamRegistry::new();
        registry.register(self.plugin.clone());
        let found = registry
            .plugin_for(&config)
            .map_err(|e| se("registry lookup of the harness's stream config", e))?;
        ensure!(
            found.stream_type() == self.plugin.stream_type(),
            "the registry resolves the harness's config to plugin '{}'",
            found.stream_type()
        );
        const PER_PARTITION: usize = 500;
        const ROUNDS: usize = 5;
        let mut want: Vec<Vec<Vec<u8>>> = vec![Vec::new(), Vec::new()];
        for round in 0..ROUNDS {
            for p in 0..2u32 {
                let chunk: Vec<Vec<u8>> = (0..PER_PARTITION / ROUNDS)
                    .map(|i| value("a", p, round * PER_PARTITION / ROUNDS + i))
                    .collect();
                self.produce(&topic, p, &chunk).await?;
                want[p as usize].extend(chunk);
            }
        }
        let mut provider = self.provider(&config).await?;
        let ids = provider
            .partition_ids(METADATA_TIMEOUT)
            .await
            .map_err(|e| se("partition_ids", e))?;
        ensure!(
            ids == vec![PartitionId(0), PartitionId(1)],
            "the metadata provider lists partitions {ids:?} of a topic created with 2, \
             expected [0, 1]"
        );
        let mut partitions = Vec::new();
        for p in 0..2u32 {
            let got = self.read(&config, p, PER_PARTITION).await?;
            expect_values(
                &format!("rule 3 (ordering), partition {p}"),
                &got,
                &want[p as usize],
            )?;
            for w in got.windows(2) {
                ensure!(
                    w[1].offset > w[0].offset,
                    "rule 3 (ordering): partition {p}: offset {} follows offset {}",
                    w[1].offset,
                    w[0].offset
                );
            }
            partitions.push(got);
        }
        Ok(OrderingRead { config, partitions })
    }

    /// (b) A fetch from any message's offset starts with that message.
    async fn check_resume(&self, read: &OrderingRead) -> Result<()> {
        for (p, msgs) in read.partitions.iter().enumerate() {
            let p = p as u32;
            let mut consumer = self.consumer(&read.config, p).await?;
            // Out of order on purpose: the consumer keeps no position of its own.
            for idx in [250usize, 7, 499, 0, 123, 1, 250] {
                let Some(expected) = msgs.get(idx) else {
                    continue;
                };
                let b = fetch(consumer.as_mut(), &expected.offset, FETCH_TIMEOUT).await?;
                let Some(first) = b.messages.first() else {
                    bail!(
                        "rule 2 (no committed state): partition {p}: fetch from message #{idx}'s \
                         offset {} returned no message",
                        expected.offset
                    );
                };
                ensure!(
                    first.value == expected.value
                        && first.offset == expected.offset
                        && first.next_offset == expected.next_offset,
                    "rule 2 (no committed state): partition {p}: fetch from message #{idx}'s \
                     offset {} returned '{}' at {} (next {}), expected '{}' at {} (next {})",
                    expected.offset,
                    show(&first.value),
                    first.offset,
                    first.next_offset,
                    show(&expected.value),
                    expected.offset,
                    expected.next_offset
                );
                let (rest, _) =
                    read_n(consumer.as_mut(), &expected.offset, msgs.len() - idx).await?;
                for (i, (g, w)) in rest.iter().zip(&msgs[idx..]).enumerate() {
                    ensure!(
                        g == w,
                        "rule 2 (no committed state): partition {p}: reading again from message \
                         #{idx} gave message #{} as '{}' at {}, the first read gave '{}' at {}",
                        idx + i,
                        show(&g.value),
                        g.offset,
                        show(&w.value),
                        w.offset
                    );
                }
            }
            // A fresh consumer resumes at a middle offset too.
            if let Some(expected) = msgs.get(321) {
                let mut fresh = self.consumer(&read.config, p).await?;
                let (got, _) = read_n(fresh.as_mut(), &expected.offset, msgs.len() - 321).await?;
                ensure!(
                    got.first() == Some(expected),
                    "rule 2 (no committed state): partition {p}: a new consumer fetching from \
                     {} did not start with message #321",
                    expected.offset
                );
            }
        }
        Ok(())
    }

    /// (c) With nothing to read, a fetch returns an empty batch in time.
    async fn check_timeouts(&self) -> Result<()> {
        let (topic, config) = self.topic("c", 1).await?;
        let mut provider = self.provider(&config).await?;
        let mut consumer = self.consumer(&config, 0).await?;
        let start = self
            .offset_for(provider.as_mut(), 0, OffsetCriteria::Smallest)
            .await?;
        self.expect_empty(consumer.as_mut(), &start, "an empty partition")
            .await?;
        let values: Vec<Vec<u8>> = (0..3).map(|i| value("c", 0, i)).collect();
        self.produce(&topic, 0, &values).await?;
        let (got, end) = read_n(consumer.as_mut(), &start, 3).await?;
        expect_values("rule 3 (ordering)", &got, &values)?;
        for _ in 0..2 {
            self.expect_empty(consumer.as_mut(), &end, "the end of the partition")
                .await?;
        }
        Ok(())
    }

    async fn expect_empty(
        &self,
        c: &mut dyn PartitionConsumer,
        from: &StreamOffset,
        where_: &str,
    ) -> Result<()> {
        let started = Instant::now();
        let b = fetch(c, from, FETCH_TIMEOUT).await?;
        let took = started.elapsed();
        ensure!(
            took < FETCH_LIMIT,
            "rule 4 (timeouts): fetch at {where_} ({from}) with a timeout of {} ms took {} ms",
            FETCH_TIMEOUT.as_millis(),
            took.as_millis()
        );
        ensure!(
            b.messages.is_empty() && b.unfiltered_count == 0,
            "fetch at {where_} ({from}) returned {} records where there are none (first: '{}')",
            b.unfiltered_count,
            b.messages
                .first()
                .map(|m| show(&m.value))
                .unwrap_or_default()
        );
        ensure!(
            &b.next_offset == from,
            "rule 4 (timeouts): the empty batch at {where_} has next_offset {}, expected {from}",
            b.next_offset
        );
        Ok(())
    }

    /// (d) Messages produced while a fetch waits are returned promptly.
    async fn check_freshness(&self) -> Result<()> {
        let (topic, config) = self.topic("d", 1).await?;
        let mut consumer = self.consumer(&config, 0).await?;
        let first = vec![value("d", 0, 0)];
        self.produce(&topic, 0, &first).await?;
        let mut provider = self.provider(&config).await?;
        let start = self
            .offset_for(provider.as_mut(), 0, OffsetCriteria::Smallest)
            .await?;
        let (_, end) = read_n(consumer.as_mut(), &start, 1).await?;
        let later: Vec<Vec<u8>> = (1..4).map(|i| value("d", 0, i)).collect();
        const WAIT: Duration = Duration::from_secs(2);
        const PROMPT: Duration = Duration::from_millis(1500);
        let started = Instant::now();
        let reading = async {
            let mut got = Vec::new();
            let mut at = end.clone();
            while got.len() < later.len() && started.elapsed() < Duration::from_secs(10) {
                let b = fetch(consumer.as_mut(), &at, WAIT).await?;
                got.extend(b.messages);
                at = b.next_offset;
            }
            Ok::<_, anyhow::Error>((got, started.elapsed()))
        };
        let producing = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.produce(&topic, 0, &later).await
        };
        let (read, produced) = tokio::join!(reading, producing);
        produced?;
        let (got, took) = read?;
        expect_values("rule 4 (freshness)", &got, &later)?;
        ensure!(
            took < PROMPT,
            "rule 4 (freshness): messages produced 100 ms into a {} ms fetch were all returned \
             only after {} ms, expected under {} ms",
            WAIT.as_millis(),
            took.as_millis(),
            PROMPT.as_millis()
        );
        Ok(())
    }

    /// (e) Skipped records are not returned and `next_offset` moves past them.
    async fn check_skipped(&self) -> Result<()> {
        let (topic, config) = self.topic("e", 1).await?;
        let skip = || async {
            self.h
                .produce_skipped(&topic, 0)
                .await
                .map_err(|e| anyhow!("harness could not write a skipped record: {e:#}"))
        };
        self.produce(&topic, 0, &[b"a".to_vec()]).await?;
        if !skip().await? {
            tracing::info!(
                "stream '{}' has no skipped records: check (e) not run",
                self.plugin.stream_type()
            );
            return Ok(());
        }
        skip().await?;
        self.produce(&topic, 0, &[b"b".to_vec()]).await?;
        let mut provider = self.provider(&config).await?;
        let mut consumer = self.consumer(&config, 0).await?;
        let start = self
            .offset_for(provider.as_mut(), 0, OffsetCriteria::Smallest)
            .await?;
        let (got, after_b) = read_n(consumer.as_mut(), &start, 2).await?;
        expect_values(
            "rule 5 (skipped records are not returned)",
            &got,
            &[b"a".to_vec(), b"b".to_vec()],
        )?;
        skip().await?;
        skip().await?;
        // Only skipped records follow: next_offset must move past them.
        let started = Instant::now();
        let mut at = after_b.clone();
        while at == after_b {
            ensure!(
                started.elapsed() < READ_DEADLINE,
                "rule 5 (skipped records move the offset): with two skipped records after \
                 offset {after_b}, fetches from it kept returning next_offset {after_b}"
            );
            let b = fetch(consumer.as_mut(), &at, FETCH_TIMEOUT).await?;
            ensure!(
                b.messages.is_empty(),
                "rule 5 (skipped records are not returned): fetch from {at} returned '{}'",
                show(&b.messages[0].value)
            );
            at = b.next_offset;
        }
        // Whatever is left of them is consumed too, and what follows is read.
        self.produce(&topic, 0, &[b"c".to_vec()]).await?;
        let (got, _) = read_n(consumer.as_mut(), &at, 1).await?;
        expect_values("rule 5 (skipped records)", &got, &[b"c".to_vec()])?;
        Ok(())
    }

    /// (f) A partition added later is listed and read from its smallest offset.
    async fn check_new_partitions(&self) -> Result<()> {
        let (topic, config) = self.topic("f", 1).await?;
        let mut provider = self.provider(&config).await?;
        let ids = provider
            .partition_ids(METADATA_TIMEOUT)
            .await
            .map_err(|e| se("partition_ids", e))?;
        ensure!(
            ids == vec![PartitionId(0)],
            "the metadata provider lists partitions {ids:?} of a topic created with 1"
        );
        self.produce(&topic, 0, &[value("f", 0, 0)]).await?;
        let added = self
            .h
            .add_partition(&topic)
            .await
            .map_err(|e| anyhow!("harness could not add a partition: {e:#}"))?;
        if !added {
            tracing::info!(
                "stream '{}' cannot add partitions: check (f) not run",
                self.plugin.stream_type()
            );
            return Ok(());
        }
        let started = Instant::now();
        loop {
            let ids = provider
                .partition_ids(METADATA_TIMEOUT)
                .await
                .map_err(|e| se("partition_ids", e))?;
            if ids == vec![PartitionId(0), PartitionId(1)] {
                break;
            }
            ensure!(
                started.elapsed() < READ_DEADLINE,
                "rule 7 (partitions may appear): {} s after partition 1 was added, the metadata \
                 provider lists {ids:?}, expected [0, 1]",
                READ_DEADLINE.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let values = vec![value("f", 1, 0), value("f", 1, 1)];
        self.produce(&topic, 1, &values).await?;
        let got = self.read(&config, 1, 2).await?;
        expect_values(
            "rule 7 (new partitions start from the smallest offset)",
            &got,
            &values,
        )?;
        let latest = provider
            .latest_offsets(&[PartitionId(0), PartitionId(1)], METADATA_TIMEOUT)
            .await
            .map_err(|e| se("latest_offsets", e))?;
        ensure!(
            latest.len() == 2,
            "latest_offsets of partitions 0 and 1 returned {latest:?}"
        );
        Ok(())
    }

    /// (g) Offsets of every criteria.
    async fn check_criteria(&self) -> Result<()> {
        let (topic, config) = self.topic("g", 1).await?;
        let first: Vec<Vec<u8>> = (0..5).map(|i| value("g", 0, i)).collect();
        self.produce(&topic, 0, &first).await?;
        let mut provider = self.provider(&config).await?;
        let mut consumer = self.consumer(&config, 0).await?;
        let p = provider.as_mut();
        let smallest = self.offset_for(p, 0, OffsetCriteria::Smallest).await?;
        let (got, end) = read_n(consumer.as_mut(), &smallest, 5).await?;
        expect_values("smallest gives the first message", &got, &first)?;
        let largest = self.offset_for(p, 0, OffsetCriteria::Largest).await?;
        let exact = self.h.exact_largest();
        ensure!(
            !exact || largest == end,
            "largest is {largest}, expected the next offset to be written, {end} (the \
             next_offset after the last message)"
        );
        // Nothing at largest until more is produced; then exactly that.
        self.expect_empty(consumer.as_mut(), &largest, "largest")
            .await?;
        let second: Vec<Vec<u8>> = (5..7).map(|i| value("g", 0, i)).collect();
        self.produce(&topic, 0, &second).await?;
        let (got2, end2) = read_n(consumer.as_mut(), &largest, 2).await?;
        expect_values(
            "a fetch from largest returns only messages produced after",
            &got2,
            &second,
        )?;
        let largest2 = self.offset_for(p, 0, OffsetCriteria::Largest).await?;
        ensure!(
            !exact || largest2 == end2,
            "largest after producing 2 more is {largest2}, expected {end2}"
        );
        let latest = p
            .latest_offsets(&[PartitionId(0)], METADATA_TIMEOUT)
            .await
            .map_err(|e| se("latest_offsets", e))?;
        ensure!(
            !exact || latest.get(&PartitionId(0)) == Some(&largest2),
            "latest_offsets gives {latest:?}, expected partition 0 at {largest2} (largest)"
        );
        if !exact {
            self.expect_empty(consumer.as_mut(), &largest2, "largest after more messages")
                .await?;
        }
        let hour = 3_600_000;
        for criteria in [
            OffsetCriteria::Period(hour),
            OffsetCriteria::Timestamp(now_ms() - hour),
        ] {
            let o = self.offset_for(p, 0, criteria.clone()).await?;
            ensure!(
                o == smallest,
                "{criteria:?} gives {o}, expected the first message at {smallest} (every \
                 message is less than an hour old)"
            );
        }
        let future = OffsetCriteria::Timestamp(now_ms() + hour);
        let o = self.offset_for(p, 0, future.clone()).await?;
        if self.h.exact_time_criteria() {
            if exact {
                ensure!(
                    o == largest2,
                    "{future:?} (an hour from now) gives {o}, expected largest {largest2}: no \
                     message is that recent"
                );
            } else {
                self.expect_empty(consumer.as_mut(), &o, "an hour from now")
                    .await?;
            }
            // The first of the later messages was produced at least 200 ms after the
            // earlier ones (the empty fetch from largest came in between).
            let Some(ts) = got2[0].timestamp_ms else {
                bail!("a stream with exact time criteria returned a message without timestamp_ms");
            };
            let o = self.offset_for(p, 0, OffsetCriteria::Timestamp(ts)).await?;
            ensure!(
                o == got2[0].offset,
                "Timestamp({ts}) gives {o}, expected {}: the first message with a timestamp \
                 at or after it",
                got2[0].offset
            );
        } else {
            ensure!(
                o == smallest || o == largest2,
                "{future:?} (an hour from now) gives {o}, expected smallest {smallest} or \
                 largest {largest2}"
            );
        }
        Ok(())
    }
}
