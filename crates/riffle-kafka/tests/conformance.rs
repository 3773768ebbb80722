//! The stream conformance suite against both test brokers (started per test, see
//! `riffle_kafka::testing`), through one harness.
//!
//! On Tansu, broker behaviour relied on: topic creation, produce with keys / null values /
//! headers, fetch (with its high watermark), metadata, ListOffsets EARLIEST. Not relied on
//! (Tansu 0.6 gaps): ListOffsets LATEST (the plugin checks it against a fetch), ListOffsets
//! by time (answers 0, so `exact_time_criteria` is false), CreatePartitions
//! (`add_partition` says unsupported; check (f) then only checks the listing of the topic).
//!
//! noida-db serves CreatePartitions and ListOffsets by timestamp (the first record at or
//! after it), so the suite's partition and time-criteria checks run in full there.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, Producer};
use riffle_kafka::testing::{produce, stream_map, Noida, Tansu, TestRecord};
use riffle_kafka::KafkaPlugin;
use riffle_stream::conformance::{run_suite, Harness};
use riffle_stream::{StreamContext, StreamPlugin};

/// A test broker.
enum Broker {
    Tansu(Tansu),
    Noida(Noida),
}

impl Broker {
    fn bootstrap(&self) -> String {
        match self {
            Broker::Tansu(t) => t.bootstrap(),
            Broker::Noida(n) => n.bootstrap(),
        }
    }
}

struct KafkaHarness {
    broker: Broker,
    producer: FutureProducer,
}

impl KafkaHarness {
    fn new(broker: Broker) -> KafkaHarness {
        let producer = match &broker {
            Broker::Tansu(t) => t.producer(),
            Broker::Noida(n) => n.producer(),
        }
        .unwrap();
        KafkaHarness { broker, producer }
    }

    /// Waits until the producer's metadata lists `partition` of `topic` (a partition added
    /// a moment ago is unknown to it until then).
    fn wait_known(&self, topic: &str, partition: u32) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            let md = self
                .producer
                .client()
                .fetch_metadata(Some(topic), Duration::from_secs(5))?;
            let n = md.topics().first().map_or(0, |t| t.partitions().len());
            if n > partition as usize || start.elapsed() > Duration::from_secs(20) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[async_trait]
impl Harness for KafkaHarness {
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
        match &self.broker {
            Broker::Tansu(t) => t.create_topic(name, partitions as i32).await?,
            Broker::Noida(n) => n.create_topic(name, partitions as i32).await?,
        }
        Ok(stream_map(&self.broker.bootstrap(), name, &[]))
    }

    async fn produce(&self, topic: &str, partition: u32, values: &[Vec<u8>]) -> anyhow::Result<()> {
        self.wait_known(topic, partition)?;
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
        let Broker::Noida(n) = &self.broker else {
            // Tansu 0.6 answers CreatePartitions with "unsupported".
            return Ok(false);
        };
        let c: BaseConsumer = n.client_config().create()?;
        let md = c.fetch_metadata(Some(topic), Duration::from_secs(5))?;
        let now = md.topics().first().map_or(0, |t| t.partitions().len());
        n.add_partitions(topic, now as i32 + 1).await?;
        Ok(true)
    }

    fn exact_time_criteria(&self) -> bool {
        // Tansu 0.6 answers 0 to every ListOffsets by timestamp.
        matches!(self.broker, Broker::Noida(_))
    }
}

async fn conforms(broker: Broker) {
    let h = KafkaHarness::new(broker);
    if let Err(e) = run_suite(&h).await {
        panic!("{e:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_plugin_conforms_on_tansu() {
    conforms(Broker::Tansu(
        Tansu::start().unwrap_or_else(|e| panic!("{e:#}")),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_plugin_conforms_on_noida() {
    conforms(Broker::Noida(
        Noida::start().unwrap_or_else(|e| panic!("{e:#}")),
    ))
    .await;
}
