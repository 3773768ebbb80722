//! The stream conformance suite against both test brokers (started per test, see
//! `riffle_kafka::testing`): Tansu, and noida-db, which also serves CreatePartitions and
//! ListOffsets by timestamp, so the suite's partition and time-criteria checks run in full
//! there.
//!
//! On Tansu:
//! Broker behaviour relied on: topic creation, produce with keys / null values / headers,
//! fetch (with its high watermark), metadata, ListOffsets EARLIEST. Not relied on (Tansu 0.6
//! gaps): ListOffsets LATEST (the plugin checks it against a fetch), ListOffsets by time
//! (answers 0, so `exact_time_criteria` is false), CreatePartitions (`add_partition` says
//! unsupported; check (f) then only checks the listing of the topic).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use rdkafka::producer::{FutureProducer, Producer};
use riffle_kafka::testing::{produce, stream_map, Noida, Tansu, TestRecord};
use riffle_kafka::KafkaPlugin;
use riffle_stream::conformance::{run_suite, Harness};
use riffle_stream::{StreamContext, StreamPlugin};

struct TansuHarness {
    tansu: Tansu,
    producer: FutureProducer,
}

impl TansuHarness {
    fn new() -> TansuHarness {
        let tansu = Tansu::start().unwrap_or_else(|e| panic!("{e:#}"));
        let producer = tansu.producer().unwrap();
        TansuHarness { tansu, producer }
    }
}

#[async_trait]
impl Harness for TansuHarness {
    fn plugin(&self) -> Arc<dyn StreamPlugin> {
        Arc::new(KafkaPlugin)
    }

    fn context(&self) -> StreamContext {
        StreamContext::new(std::env::temp_dir())
    }

    async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        self.tansu.create_topic(name, partitions as i32).await?;
        Ok(stream_map(&self.tansu.bootstrap(), name, &[]))
    }

    async fn produce(&self, topic: &str, partition: u32, values: &[Vec<u8>]) -> anyhow::Result<()> {
        let records: Vec<TestRecord> = values
            .iter()
            .map(|v| TestRecord::value(partition as i32, v.clone()))
            .collect();
        produce(&self.producer, topic, records).await?;
        Ok(())
    }

    async fn produce_skipped(&self, topic: &str, partition: u32) -> anyhow::Result<bool> {
        produce(
            &self.producer,
            topic,
            [TestRecord::tombstone(partition as i32, "deleted-key")],
        )
        .await?;
        Ok(true)
    }

    async fn add_partition(&self, _topic: &str) -> anyhow::Result<bool> {
        // Tansu 0.6 answers CreatePartitions with "unsupported".
        Ok(false)
    }

    fn exact_time_criteria(&self) -> bool {
        // Tansu 0.6 answers 0 to every ListOffsets by timestamp.
        false
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_plugin_conforms_on_tansu() {
    let h = TansuHarness::new();
    if let Err(e) = run_suite(&h).await {
        panic!("{e:#}");
    }
}

struct NoidaHarness {
    noida: Noida,
    producer: FutureProducer,
}

#[async_trait]
impl Harness for NoidaHarness {
    fn plugin(&self) -> Arc<dyn StreamPlugin> {
        Arc::new(KafkaPlugin)
    }

    fn context(&self) -> StreamContext {
        StreamContext::new(std::env::temp_dir())
    }

    async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        self.noida.create_topic(name, partitions as i32).await?;
        Ok(stream_map(&self.noida.bootstrap(), name, &[]))
    }

    async fn produce(&self, topic: &str, partition: u32, values: &[Vec<u8>]) -> anyhow::Result<()> {
        // The producer learns of a partition added a moment ago from its metadata: ask
        // until it lists it.
        let start = std::time::Instant::now();
        loop {
            let md = self
                .producer
                .client()
                .fetch_metadata(Some(topic), std::time::Duration::from_secs(5))?;
            let n = md.topics().first().map_or(0, |t| t.partitions().len());
            if n > partition as usize || start.elapsed() > std::time::Duration::from_secs(20) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let records: Vec<TestRecord> = values
            .iter()
            .map(|v| TestRecord::value(partition as i32, v.clone()))
            .collect();
        produce(&self.producer, topic, records).await?;
        Ok(())
    }

    async fn produce_skipped(&self, topic: &str, partition: u32) -> anyhow::Result<bool> {
        produce(
            &self.producer,
            topic,
            [TestRecord::tombstone(partition as i32, "deleted-key")],
        )
        .await?;
        Ok(true)
    }

    async fn add_partition(&self, topic: &str) -> anyhow::Result<bool> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let c: BaseConsumer = self.noida.client_config().create()?;
        let md = c.fetch_metadata(Some(topic), std::time::Duration::from_secs(5))?;
        let now = md.topics().first().map_or(0, |t| t.partitions().len());
        self.noida.add_partitions(topic, now as i32 + 1).await?;
        Ok(true)
    }

    fn exact_time_criteria(&self) -> bool {
        // noida-db answers ListOffsets by timestamp with the first record at or after it.
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_plugin_conforms_on_noida() {
    let noida = Noida::start().unwrap_or_else(|e| panic!("{e:#}"));
    let producer = noida.producer().unwrap();
    let h = NoidaHarness { noida, producer };
    if let Err(e) = run_suite(&h).await {
        panic!("{e:#}");
    }
}
