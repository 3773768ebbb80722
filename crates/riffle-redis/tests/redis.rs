//! The Redis Streams plugin against redis-server (Debian's package), on loopback: the
//! conformance suite and errors.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use riffle_common::PartitionId;
use riffle_redis::testing::RedisServer;
use riffle_redis::RedisPlugin;
use riffle_stream::conformance::{run_suite, Harness};
use riffle_stream::{
    OffsetCriteria, StreamConfig, StreamContext, StreamErrorKind, StreamOffset, StreamPlugin,
};

struct RedisHarness {
    server: RedisServer,
}

#[async_trait]
impl Harness for RedisHarness {
    fn plugin(&self) -> Arc<dyn StreamPlugin> {
        Arc::new(RedisPlugin)
    }

    fn context(&self) -> StreamContext {
        StreamContext::new(std::env::temp_dir())
    }

    /// A topic of N partitions is N stream keys `<name>-<p>`.
    async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let keys: Vec<String> = (0..partitions).map(|p| format!("{name}-{p}")).collect();
        Ok(self.server.stream_config(&keys.join(",")))
    }

    async fn produce(&self, topic: &str, partition: u32, values: &[Vec<u8>]) -> anyhow::Result<()> {
        self.server
            .xadd(&format!("{topic}-{partition}"), values)
            .await
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
async fn conformance_on_redis() {
    let h = RedisHarness {
        server: RedisServer::start().unwrap(),
    };
    if let Err(e) = run_suite(&h).await {
        panic!("{e:#}\nredis log:\n{}", h.server.log_text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_what_is_wrong() {
    let server = RedisServer::start().unwrap();
    let ctx = StreamContext::new(std::env::temp_dir());
    let t = Duration::from_secs(5);
    // A key holding something else than a stream.
    let mut c = riffle_redis::resp::Connection::open(&server.address, None, 0, t)
        .await
        .unwrap();
    c.call(&[b"SET", b"plain", b"x"], t).await.unwrap();
    let cfg = StreamConfig::parse("$", &server.stream_config("plain")).unwrap();
    let mut md = RedisPlugin.metadata_provider(&cfg, &ctx).await.unwrap();
    let e = md
        .offset_for(PartitionId(0), &OffsetCriteria::Smallest, t)
        .await
        .unwrap_err();
    assert_eq!(e.kind, StreamErrorKind::InvalidConfig, "{e}");
    assert!(e.message.contains("WRONGTYPE"), "{e}");
    let e = md
        .offset_for(PartitionId(4), &OffsetCriteria::Smallest, t)
        .await
        .unwrap_err();
    assert_eq!(e.kind, StreamErrorKind::NotFound);
    let mut pc = RedisPlugin
        .partition_consumer(&cfg, &ctx, PartitionId(0))
        .await
        .unwrap();
    let e = pc.fetch(&StreamOffset::parse("nope"), t).await.unwrap_err();
    assert!(e.message.contains("'nope'"), "{e}");
    // A missing key is an empty stream: largest is before its first entry.
    let cfg = StreamConfig::parse("$", &server.stream_config("later")).unwrap();
    let mut md = RedisPlugin.metadata_provider(&cfg, &ctx).await.unwrap();
    let l = md
        .offset_for(PartitionId(0), &OffsetCriteria::Largest, t)
        .await
        .unwrap();
    server
        .xadd("later", &[b"{\"a\":1}".to_vec()])
        .await
        .unwrap();
    let mut pc = RedisPlugin
        .partition_consumer(&cfg, &ctx, PartitionId(0))
        .await
        .unwrap();
    let b = pc.fetch(&l, t).await.unwrap();
    assert_eq!(b.messages.len(), 1);
    // Nothing listens: retryable.
    let mut m = server.stream_config("x");
    m.insert("stream.redis.url".into(), "redis://127.0.0.1:9".into());
    let cfg = StreamConfig::parse("$", &m).unwrap();
    let mut md = RedisPlugin.metadata_provider(&cfg, &ctx).await.unwrap();
    let e = md
        .offset_for(PartitionId(0), &OffsetCriteria::Smallest, t)
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
}
