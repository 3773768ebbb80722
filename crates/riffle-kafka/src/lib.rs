//! riffle-kafka: the Kafka stream plugin (`streamType: kafka`), built on librdkafka through
//! the `rdkafka` crate.
//!
//! # What it owns
//!
//! [`KafkaPlugin`] is registered under stream type `kafka` and Pinot's Kafka consumer
//! factory classes ([`FACTORY_CLASSES`]: kafka30, kafka40, kafka20 and the old
//! `core.realtime.impl` names). From a table's stream config it builds:
//! - a [`KafkaMetadataProvider`]: the topic's partitions (or the configured subset), the
//!   offset of a partition for an offset criteria, the end offsets (for lag);
//! - a [`KafkaPartitionConsumer`] per partition: a librdkafka consumer with exactly that
//!   partition assigned, `fetch(from, timeout)` returning its records.
//!
//! Every librdkafka call blocks, so each runs on tokio's blocking pool, and clients are
//! closed there too. Metadata clients are shared by the providers of one stream config (the
//! server asks for a provider at every partition-discovery round) and closed after a minute
//! unused.
//!
//! A partition consumer keeps where its last fetch ended; a fetch from anywhere else
//! re-positions it. As librdkafka sends no new fetch on a connection until the one in
//! flight returns (up to `fetch.wait.max.ms` at the end of the log), re-positioning a used
//! consumer replaces its client, so that a fetch from an earlier offset answers at once.
//! A fetch returns as soon as records are there (what has arrived, up to 10,000 messages
//! or `max.poll.records`, and 8 MiB), or an empty batch after the timeout. It waits for
//! the first message with the `rdkafka` crate's poll (which also serves the client's
//! events and errors) and takes the messages already queued behind it in batches of up to
//! 1,024 through librdkafka's `rd_kafka_consume_batch_queue` (module `batch`, this
//! crate's only `unsafe`: one poll per message cost a sixth of the consuming process's
//! CPU). Record headers are read only when the table populates metadata.
//!
//! Client defaults Riffle chooses (a table's own keys win): a prefetch queue per partition
//! of 20,000 messages or 16 MiB (`queued.min.messages`, `queued.max.messages.kbytes`)
//! rather than librdkafka's 64 MiB; a full queue checked again after 10 ms
//! (`fetch.queue.backoff.ms`: librdkafka's 1 s default would stall a partition after
//! every batch with queues that small); a lost broker retried at least every second
//! (`reconnect.backoff.max.ms`).
//!
//! A table with `stream.kafka.consumer.type: highlevel` reads through a
//! [`group::KafkaGroupConsumer`] instead: a member of a consumer group whose assigned
//! partitions are positioned at the table's checkpoint (see [`group`]).
//!
//! # Config keys honoured (see [`config`] for the details)
//!
//! | Key | Meaning |
//! |---|---|
//! | `stream.kafka.broker.list` | required; librdkafka's `bootstrap.servers` |
//! | `stream.kafka.topic.name` | required |
//! | `stream.kafka.isolation.level` | `read_committed` / `read_uncommitted` (default, as Kafka's Java client); anything else is an error |
//! | `stream.kafka.metadata.populate` | `true` fills `__key`, `__header$<name>`, `__metadata$offset|partition|recordTimestamp` (done by the decoder from what the consumer returns) |
//! | `stream.kafka.partition.ids` | a subset of partitions: `0,2,5`, `0-399`, `0-99,200,300-399`; sorted, distinct, at most 10,000, each must exist in the topic |
//! | `stream.kafka.consumer.prop.auto.offset.reset` | where a new partition starts: smallest, largest, a period or an instant |
//! | `stream.kafka.connection.timeout.millis`, `stream.kafka.fetch.timeout.millis` | metadata and fetch timeouts (used by the server) |
//! | `stream.kafka.ssl.server.certificate`, `.client.certificate`, `.client.key`, `.certificate.type` | Pinot's inline TLS material (base64 of PEM or DER) as librdkafka's `ssl.ca.pem`, `ssl.certificate.pem`, `ssl.key.pem`; `security.protocol` defaults to `SSL` |
//! | Kafka client keys of the same map | passed to librdkafka when it knows them (`security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password`, `ssl.ca.location`, `ssl.*`, `max.partition.fetch.bytes`, `fetch.*`, ...); Java-only keys with an equivalent are translated (`sasl.jaas.config` with a PLAIN or SCRAM login module, a PEM `ssl.truststore.location`, a PKCS#12 `ssl.keystore.location`, `fetch.max.wait.ms`, `max.poll.records`, ...) |
//!
//! Keys that cannot be honoured (a JKS trust store, consumer-group settings, unknown keys,
//! properties that would load code on the server) are reported as warnings by
//! [`StreamPlugin::validate`], never dropped silently. Secrets are kept in
//! [`config::Secret`], which prints as `<redacted>`.
//!
//! # Offsets
//!
//! A record's offset is its Kafka offset ([`StreamOffset::Long`](riffle_stream::StreamOffset::Long)); its `next_offset` is
//! offset + 1. A batch's `next_offset` is the offset after the last record read, tombstones
//! (null values) included: tombstones are never returned but count in `unfiltered_count` and
//! move the offset. A fetch that finds nothing returns an empty batch at `from`. The consumer
//! commits nothing to Kafka (a private `group.id`, `enable.auto.commit=false`): the server
//! owns the offsets.
//!
//! `auto.offset.reset` is `error`: a fetch below the log start offset (records deleted by
//! retention before they were read) returns an empty batch with
//! [`DataLoss`](riffle_stream::DataLoss) set (the server stops the partition visibly); a fetch
//! beyond the end is an `OffsetOutOfRange` error. It never jumps silently.
//!
//! Offset criteria: smallest = the log start offset, largest = the end offset (ListOffsets,
//! checked against a fetch's high watermark, see [`KafkaMetadataProvider`]), period and
//! timestamp = Kafka's offset for the time (the first record at or after it) or the end
//! offset when no record is that recent. `latest_offsets` are end offsets, as largest.
//! `stream.kafka.partition.ids` limits the partitions listed; each must exist, else
//! `NotFound` naming them.
//!
//! Records librdkafka passes over without returning them (transaction markers, aborted
//! records under `read_committed`) move the consumer's position; an empty fetch follows it
//! (as Pinot's consumer does), counting them as skipped records.
//!
//! # Errors
//!
//! Retryable (the server retries at the same offset with backoff): `Transient` (broker
//! down, connection refused, leader changes, no broker reachable) and `Timeout`. After a
//! transport failure, each fetch first checks that a broker answers (at most a second) and
//! fails again with `Transient` until one does, so a dead cluster shows as retrying rather
//! than as an idle stream. When one answers again, the partition's client is replaced: the
//! old one's queue holds an error for each failed reconnect, which it would otherwise
//! return one per fetch, each followed by the server's backoff, for a minute after a 10 s
//! outage. A lost broker is retried at least every second (`reconnect.backoff.max.ms`
//! 1000, the default of Kafka's Java client, unless the table sets it). Not retried: `Unauthorized` (SASL or TLS failures, with librdkafka's text, e.g. the
//! certificate error), `NotFound` (topic or partition missing), `OffsetOutOfRange`,
//! `InvalidConfig` (bad client settings, named without their value when secret), `Fatal`.
//!
//! # Tests
//!
//! `testing` (feature `testsuite`, off in release builds) starts a Tansu broker (a
//! Kafka-compatible broker installed by `scripts/tansu.sh`) for the tests of this crate, of
//! the node and of the benchmarks.

mod batch;
pub mod client;
pub mod client_keys;
pub mod config;
pub mod consumer;
pub mod group;
pub mod metadata;
#[cfg(feature = "testsuite")]
pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;
use riffle_common::PartitionId;
use riffle_stream::{
    MetadataProvider, PartitionConsumer, StreamConfig, StreamContext, StreamError, StreamErrorKind,
    StreamLevelConsumer, StreamLevelStart, StreamPlugin,
};

pub use crate::config::KafkaConfig;
pub use crate::consumer::KafkaPartitionConsumer;
pub use crate::metadata::KafkaMetadataProvider;

/// Pinot's Kafka consumer factory class names (current and old).
pub const FACTORY_CLASSES: &[&str] = &[
    "org.apache.pinot.plugin.stream.kafka30.KafkaConsumerFactory",
    "org.apache.pinot.plugin.stream.kafka40.KafkaConsumerFactory",
    "org.apache.pinot.plugin.stream.kafka20.KafkaConsumerFactory",
    "org.apache.pinot.core.realtime.impl.kafka2.KafkaConsumerFactory",
    "org.apache.pinot.core.realtime.impl.kafka3.KafkaConsumerFactory",
    "org.apache.pinot.core.realtime.impl.kafka.KafkaConsumerFactory",
];

/// The Kafka stream plugin.
#[derive(Clone, Copy, Debug, Default)]
pub struct KafkaPlugin;

#[async_trait]
impl StreamPlugin for KafkaPlugin {
    fn stream_type(&self) -> &'static str {
        "kafka"
    }

    fn factory_class_names(&self) -> &'static [&'static str] {
        FACTORY_CLASSES
    }

    fn validate(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
    ) -> Result<Vec<String>, StreamError> {
        let k = KafkaConfig::parse(config)?;
        k.check_client_config()?;
        Ok(k.warnings)
    }

    async fn metadata_provider(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
    ) -> Result<Box<dyn MetadataProvider>, StreamError> {
        Ok(Box::new(KafkaMetadataProvider::for_config(config).await?))
    }

    async fn partition_consumer(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
        partition: PartitionId,
    ) -> Result<Box<dyn PartitionConsumer>, StreamError> {
        let k = Arc::new(KafkaConfig::parse(config)?);
        Ok(Box::new(KafkaPartitionConsumer::new(k, partition.0).await?))
    }

    /// A member of the consumer group `stream.kafka.hlc.group.id` (default
    /// `riffle-hlc-<topic>`), see [`group`].
    async fn stream_level_consumer(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
        start: StreamLevelStart,
    ) -> Result<Box<dyn StreamLevelConsumer>, StreamError> {
        let k = Arc::new(KafkaConfig::parse(config)?);
        let group = config
            .plugin_key("hlc.group.id")
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map_or_else(|| format!("riffle-hlc-{}", k.topic), str::to_string);
        Ok(Box::new(
            group::KafkaGroupConsumer::open(k, group, start).await?,
        ))
    }
}

/// Runs a blocking librdkafka call on the blocking pool.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, StreamError>
where
    F: FnOnce() -> Result<T, StreamError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        StreamError::new(
            StreamErrorKind::Fatal,
            format!("kafka client task failed: {e}"),
        )
    })?
}

/// Drops a client where blocking is allowed: closing a librdkafka client waits for its
/// threads.
pub(crate) fn drop_off_runtime<T: Send + 'static>(value: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            h.spawn_blocking(move || drop(value));
        }
        Err(_) => drop(value),
    }
}
