//! riffle-kinesis: the Amazon Kinesis Data Streams plugin (`streamType: kinesis`), a
//! hand-written client of Kinesis' JSON API signed with SigV4 (no AWS SDK).
//!
//! # What it owns
//!
//! [`KinesisPlugin`] is registered under stream type `kinesis` and Pinot's factory class
//! [`FACTORY_CLASS`]. Shards are partitions: `shardId-000000000003` is partition 3. From a
//! table's stream config ([`config`]) it builds:
//! - a [`KinesisMetadataProvider`]: the shards (`ListShards`), their parents, the offset of
//!   a criteria, the end of closed shards;
//! - a [`KinesisPartitionConsumer`] per shard: `GetShardIterator` + `GetRecords`.
//!
//! # Offsets ([`offsets`])
//!
//! A record's offset is its sequence number, its `next_offset` that number plus one;
//! `largest`, and a time criteria no record has reached yet, resolve to "the first record
//! arriving at or after time t", stored as `-t`. Smallest, a period and a timestamp resolve
//! to the sequence number of the first record at or after them (`TRIM_HORIZON` and
//! `AT_TIMESTAMP` iterators). A record's `timestamp_ms` is its approximate arrival time,
//! its key the partition key.
//!
//! # Resharding
//!
//! A split or a merge closes its parent shards: `GetRecords` on a closed shard read to its
//! end answers without a next iterator, which ends the partition (`end_of_partition`), and
//! the server commits its last segment. [`MetadataProvider::parents`](riffle_stream::MetadataProvider::parents)
//! lists the parents of each child shard; the controller starts a child only once every
//! parent still listed has ended and committed, as Pinot does, so that the records of a
//! partition key are ingested in order across a reshard.
//!
//! # Lag
//!
//! An open shard's next sequence number is unknown until it is written, so
//! `latest_offsets` lists closed shards only and no records lag is reported (Pinot reports
//! none for Kinesis either); the availability lag is.
//!
//! # Errors
//!
//! Retryable: throttling (`ProvisionedThroughputExceededException`,
//! `LimitExceededException`), 5xx answers, connection failures (`Transient`) and timeouts.
//! An expired iterator is replaced at once. Not retried: `ResourceNotFoundException`
//! (`NotFound`), rejected credentials or signatures (`Unauthorized`), invalid arguments.
//!
//! # Not done
//!
//! Enhanced fan-out (`SubscribeToShard`), IAM roles (STS), instance or container
//! credentials, and data-loss detection (a trimmed sequence number reads from the oldest
//! record kept, as Kinesis answers it).

pub mod client;
pub mod config;
pub mod consumer;
pub mod metadata;
pub mod offsets;
pub mod sigv4;
#[cfg(feature = "testsuite")]
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use riffle_common::PartitionId;
use riffle_stream::{
    MetadataProvider, PartitionConsumer, StreamConfig, StreamContext, StreamError, StreamPlugin,
};

pub use crate::client::KinesisClient;
pub use crate::config::KinesisConfig;
pub use crate::consumer::KinesisPartitionConsumer;
pub use crate::metadata::KinesisMetadataProvider;

/// Pinot's Kinesis consumer factory class.
pub const FACTORY_CLASS: &str = "org.apache.pinot.plugin.stream.kinesis.KinesisConsumerFactory";

/// The Kinesis stream plugin.
#[derive(Clone, Copy, Debug, Default)]
pub struct KinesisPlugin;

impl KinesisPlugin {
    fn client(config: &StreamConfig, k: &KinesisConfig) -> Result<KinesisClient, StreamError> {
        KinesisClient::new(
            &k.region,
            k.endpoint.as_deref(),
            k.credentials.clone(),
            Duration::from_millis(config.connection_timeout_ms.max(1)),
        )
    }
}

#[async_trait]
impl StreamPlugin for KinesisPlugin {
    fn stream_type(&self) -> &'static str {
        "kinesis"
    }

    fn factory_class_names(&self) -> &'static [&'static str] {
        &[FACTORY_CLASS]
    }

    fn offsets_count_records(&self) -> bool {
        false
    }

    fn validate(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
    ) -> Result<Vec<String>, StreamError> {
        let k = KinesisConfig::parse(config)?;
        Self::client(config, &k)?;
        Ok(k.warnings)
    }

    async fn metadata_provider(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
    ) -> Result<Box<dyn MetadataProvider>, StreamError> {
        let k = KinesisConfig::parse(config)?;
        let client = Self::client(config, &k)?;
        Ok(Box::new(KinesisMetadataProvider::new(Arc::new(k), client)))
    }

    async fn partition_consumer(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
        partition: PartitionId,
    ) -> Result<Box<dyn PartitionConsumer>, StreamError> {
        let k = KinesisConfig::parse(config)?;
        let client = Self::client(config, &k)?;
        Ok(Box::new(KinesisPartitionConsumer::new(
            Arc::new(k),
            client,
            partition,
        )))
    }
}
