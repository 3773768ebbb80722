//! The NATS JetStream plugin against nats-server (Debian's package), on loopback: the
//! conformance suite and errors. A topic of N partitions is N JetStream streams.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use riffle_common::PartitionId;
use riffle_nats::testing::NatsServer;
use riffle_nats::NatsPlugin;
use riffle_stream::conformance::{run_suite, Harness};
use riffle_stream::{
    OffsetCriteria, StreamConfig, StreamContext, StreamErrorKind, StreamOffset, StreamPlugin,
};

struct NatsHarness {
    server: NatsServer,
}

/// JetStream stream names may not hold dots; the suite's topic names do not.
fn stream_name(topic: &str, p: u32) -> String {
    format!("{topic}-{p}")
}

#[async_trait]
impl Harness for NatsHarness {
    fn plugin(&self) -> Arc<dyn StreamPlugin> {
        Arc::new(NatsPlugin)
    }

    fn context(&self) -> StreamContext {
        StreamContext::new(std::env::temp_dir())
    }

    async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let mut names = Vec::new();
        for p in 0..partitions {
            let s = stream_name(name, p);
            self.server.create_stream(&s).await?;
            names.push(s);
        }
        Ok(self.server.stream_config(&names.join(",")))
    }

    async fn produce(&self, topic: &str, partition: u32, values: &[Vec<u8>]) -> anyhow::Result<()> {
        self.server
            .publish(&stream_name(topic, partition), values)
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
async fn conformance_on_nats_jetstream() {
    let h = NatsHarness {
        server: NatsServer::start().unwrap(),
    };
    if let Err(e) = run_suite(&h).await {
        panic!("{e:#}\nnats log:\n{}", h.server.log_text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_what_is_wrong() {
    let server = NatsServer::start().unwrap();
    let ctx = StreamContext::new(std::env::temp_dir());
    let t = Duration::from_secs(5);
    let cfg = StreamConfig::parse("$", &server.stream_config("missing")).unwrap();
    let mut md = NatsPlugin.metadata_provider(&cfg, &ctx).await.unwrap();
    let e = md
        .offset_for(PartitionId(0), &OffsetCriteria::Smallest, t)
        .await
        .unwrap_err();
    assert_eq!(e.kind, StreamErrorKind::NotFound, "{e}");
    assert!(e.message.contains("'missing'"), "{e}");
    let e = md
        .offset_for(PartitionId(3), &OffsetCriteria::Smallest, t)
        .await
        .unwrap_err();
    assert_eq!(e.kind, StreamErrorKind::NotFound);
    server.create_stream("errs").await.unwrap();
    let cfg = StreamConfig::parse("$", &server.stream_config("errs")).unwrap();
    let mut pc = NatsPlugin
        .partition_consumer(&cfg, &ctx, PartitionId(0))
        .await
        .unwrap();
    let e = pc.fetch(&StreamOffset::parse("x1"), t).await.unwrap_err();
    assert!(e.message.contains("'x1'"), "{e}");
    let mut m = server.stream_config("errs");
    m.insert("stream.nats.url".into(), "nats://127.0.0.1:9".into());
    let cfg = StreamConfig::parse("$", &m).unwrap();
    let mut md = NatsPlugin.metadata_provider(&cfg, &ctx).await.unwrap();
    let e = md
        .offset_for(PartitionId(0), &OffsetCriteria::Smallest, t)
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
}
