//! riffle-pulsar: the Apache Pulsar plugin (`streamType: pulsar`), a client of Pulsar's
//! binary protocol written for Riffle (the protocol's messages are declared by hand in
//! [`proto`] with `prost`, so no protobuf compiler is needed).
//!
//! # What it owns
//!
//! [`PulsarPlugin`] is registered under stream type `pulsar` and Pinot's factory class
//! [`FACTORY_CLASS`]. From a table's stream config ([`config`]) it builds:
//! - a [`PulsarMetadataProvider`]: partitions (`PARTITIONED_METADATA`), the offset of a
//!   criteria, the position after the last message;
//! - a [`PulsarPartitionConsumer`] per partition: a non-durable exclusive subscription at a
//!   message id, as Pinot's reader ([`reader`]).
//!
//! # Offsets ([`offsets`])
//!
//! `<ledger>:<entry>:<index in batch>` (padded so that offsets order as messages do); a
//! message's next offset is the next message of its batch or the next entry; `-1` is the
//! beginning of an empty partition. A message's timestamp is its publish time, its key the
//! partition key, its headers the properties. Null values and compacted-out batch messages
//! are skipped (they move the offset).
//!
//! # Not done
//!
//! TLS (`pulsar+ssl://`) and OAuth2 are refused at table creation; topic lookup is not done
//! (the service URL must be the broker that owns the topic, a standalone broker or a
//! proxy); chunked messages and encryption are not read; no records lag is reported.

pub mod config;
pub mod connection;
pub mod metadata;
pub mod offsets;
pub mod proto;
pub mod reader;
#[cfg(feature = "testsuite")]
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use riffle_common::PartitionId;
use riffle_stream::{
    MessageBatch, MetadataProvider, PartitionConsumer, StreamConfig, StreamContext, StreamError,
    StreamOffset, StreamPlugin,
};

pub use crate::config::PulsarConfig;
pub use crate::metadata::PulsarMetadataProvider;

/// Pinot's Pulsar consumer factory class.
pub const FACTORY_CLASS: &str = "org.apache.pinot.plugin.stream.pulsar.PulsarConsumerFactory";

/// The Pulsar stream plugin.
#[derive(Clone, Copy, Debug, Default)]
pub struct PulsarPlugin;

/// A consumer of one partition.
pub struct PulsarPartitionConsumer {
    reader: reader::Reader,
}

#[async_trait]
impl PartitionConsumer for PulsarPartitionConsumer {
    async fn fetch(
        &mut self,
        from: &StreamOffset,
        timeout: Duration,
    ) -> Result<MessageBatch, StreamError> {
        self.reader.fetch(from, timeout).await
    }
}

#[async_trait]
impl StreamPlugin for PulsarPlugin {
    fn stream_type(&self) -> &'static str {
        "pulsar"
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
        Ok(PulsarConfig::parse(config)?.warnings)
    }

    async fn metadata_provider(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
    ) -> Result<Box<dyn MetadataProvider>, StreamError> {
        Ok(Box::new(PulsarMetadataProvider::new(Arc::new(
            PulsarConfig::parse(config)?,
        ))))
    }

    async fn partition_consumer(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
        partition: PartitionId,
    ) -> Result<Box<dyn PartitionConsumer>, StreamError> {
        let c = Arc::new(PulsarConfig::parse(config)?);
        let timeout = Duration::from_millis(config.connection_timeout_ms.max(1));
        let n = metadata::partition_count(&c, timeout).await?;
        let topic = metadata::partition_topic(&c, n, partition)?;
        let index = if n == 0 { -1 } else { partition.0 as i32 };
        Ok(Box::new(PulsarPartitionConsumer {
            reader: reader::Reader::new(c, topic, index),
        }))
    }
}
