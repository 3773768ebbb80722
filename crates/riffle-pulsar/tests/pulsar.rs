//! The Pulsar plugin against pulsar-lite (PyPI `pulsar-lite` 0.2.0, a broker speaking
//! Pulsar's binary protocol; `$RIFFLE_PULSAR_LITE` points at its binary), on loopback.
//!
//! pulsar-lite behaviour relied on: topics created on first use, producing, non-durable
//! exclusive subscriptions at a message id (inclusive) or at the earliest / latest
//! position, `GET_LAST_MESSAGE_ID`. Not served by it, so not run here: partitioned topics
//! made on demand (only a broker-wide default, and a partition's metadata request corrupts
//! its state), seeking by time (ignored), records to skip. Those paths are covered by unit
//! tests (batches, codecs, frames) and the suite's checks say so.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use riffle_common::PartitionId;
use riffle_pulsar::testing::PulsarLite;
use riffle_pulsar::PulsarPlugin;
use riffle_stream::conformance::{run_suite, Harness};
use riffle_stream::{OffsetCriteria, StreamConfig, StreamContext, StreamErrorKind, StreamPlugin};

/// Two brokers: pulsar-lite makes every topic with the partitions of its configuration.
struct PulsarHarness {
    broker: PulsarLite,
    partitioned: PulsarLite,
}

impl PulsarHarness {
    fn start() -> PulsarHarness {
        PulsarHarness {
            broker: PulsarLite::start().unwrap(),
            partitioned: PulsarLite::start_with_partitions(2).unwrap(),
        }
    }
}

#[async_trait]
impl Harness for PulsarHarness {
    fn plugin(&self) -> Arc<dyn StreamPlugin> {
        Arc::new(PulsarPlugin)
    }

    fn context(&self) -> StreamContext {
        StreamContext::new(std::env::temp_dir())
    }

    async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        match partitions {
            1 => Ok(self.broker.stream_config(name)),
            2 => Ok(self.partitioned.stream_config(name)),
            n => anyhow::bail!("the test brokers make topics of 1 or 2 partitions, not {n}"),
        }
    }

    async fn produce(&self, topic: &str, partition: u32, values: &[Vec<u8>]) -> anyhow::Result<()> {
        // A suite topic of 2 partitions has "-a" in its name (check (a)).
        if topic.ends_with("-a") {
            return self
                .partitioned
                .produce(&format!("{topic}-partition-{partition}"), values)
                .await;
        }
        anyhow::ensure!(partition == 0, "topic {topic} has one partition");
        self.broker.produce(topic, values).await
    }

    async fn produce_skipped(&self, _topic: &str, _partition: u32) -> anyhow::Result<bool> {
        Ok(false)
    }

    async fn add_partition(&self, _topic: &str) -> anyhow::Result<bool> {
        Ok(false)
    }

    fn exact_time_criteria(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_pulsar_lite() {
    let h = PulsarHarness::start();
    if let Err(e) = run_suite(&h).await {
        panic!(
            "{e:#}\npulsar-lite logs:\n{}\n{}",
            h.broker.log_text(),
            h.partitioned.log_text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_what_is_wrong() {
    let broker = PulsarLite::start().unwrap();
    let ctx = StreamContext::new(std::env::temp_dir());
    let cfg = StreamConfig::parse("$", &broker.stream_config("errs")).unwrap();
    let mut md = PulsarPlugin.metadata_provider(&cfg, &ctx).await.unwrap();
    let t = std::time::Duration::from_secs(5);
    assert_eq!(md.partition_ids(t).await.unwrap(), vec![PartitionId(0)]);
    let e = md
        .offset_for(PartitionId(3), &OffsetCriteria::Smallest, t)
        .await
        .unwrap_err();
    assert_eq!(e.kind, StreamErrorKind::NotFound, "{e}");
    assert!(e.message.contains("no partition 3"), "{e}");
    let mut c = PulsarPlugin
        .partition_consumer(&cfg, &ctx, PartitionId(0))
        .await
        .unwrap();
    let e = c
        .fetch(&riffle_stream::StreamOffset::parse("nonsense"), t)
        .await
        .unwrap_err();
    assert!(e.message.contains("'nonsense'"), "{e}");
    // Nothing listens: retryable.
    let mut m = broker.stream_config("errs");
    m.insert(
        "stream.pulsar.bootstrap.servers".into(),
        "pulsar://127.0.0.1:9".into(),
    );
    let cfg = StreamConfig::parse("$", &m).unwrap();
    let mut md = PulsarPlugin.metadata_provider(&cfg, &ctx).await.unwrap();
    let e = md.partition_ids(t).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
}
