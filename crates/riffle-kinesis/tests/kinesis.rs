//! The Kinesis plugin against kinesis-mock (npm `kinesis-local`), each test in its own
//! network namespace (`testing::isolated` re-runs it under `unshare -n`; the mock binds
//! every address).
//!
//! kinesis-mock behaviour relied on: CreateStream, PutRecords with an explicit hash key,
//! ListShards with parents and hash ranges, GetShardIterator (TRIM_HORIZON, LATEST,
//! AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER of a record's own number, AT_TIMESTAMP),
//! GetRecords ending a closed shard with no next iterator, SplitShard and MergeShards. It
//! has no records to skip (`produce_skipped` says so) and cannot add a shard without
//! closing one (`add_partition` says unsupported; resharding has its own test below).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use riffle_common::PartitionId;
use riffle_kinesis::testing::{isolated, KinesisMock};
use riffle_kinesis::KinesisPlugin;
use riffle_stream::conformance::{run_suite, Harness};
use riffle_stream::{
    OffsetCriteria, PartitionConsumer, StreamConfig, StreamContext, StreamErrorKind, StreamOffset,
    StreamPlugin,
};

struct KinesisHarness {
    mock: KinesisMock,
}

#[async_trait]
impl Harness for KinesisHarness {
    fn plugin(&self) -> Arc<dyn StreamPlugin> {
        Arc::new(KinesisPlugin)
    }

    fn context(&self) -> StreamContext {
        StreamContext::new(std::env::temp_dir())
    }

    async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        self.mock.create_stream(name, partitions).await?;
        Ok(self.mock.stream_config(name))
    }

    async fn produce(&self, topic: &str, partition: u32, values: &[Vec<u8>]) -> anyhow::Result<()> {
        self.mock.put(topic, partition, values).await?;
        Ok(())
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

    fn exact_largest(&self) -> bool {
        false
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn conformance_on_kinesis_mock() {
    if !isolated("conformance_on_kinesis_mock") {
        return;
    }
    runtime().block_on(async {
        let mock = KinesisMock::start().await.unwrap();
        let h = KinesisHarness { mock };
        if let Err(e) = run_suite(&h).await {
            panic!("{e:#}\nkinesis-mock log:\n{}", h.mock.log_text());
        }
    });
}

fn config(mock: &KinesisMock, stream: &str) -> StreamConfig {
    StreamConfig::parse("$", &mock.stream_config(stream)).unwrap()
}

/// Reads a shard from `from` until `end_of_partition` (or `want` messages when it stays
/// open); returns the values and the final offset.
async fn read_shard(
    c: &mut dyn PartitionConsumer,
    from: &StreamOffset,
    want: Option<usize>,
) -> (Vec<String>, StreamOffset, bool) {
    let mut got = Vec::new();
    let mut at = from.clone();
    let started = Instant::now();
    loop {
        let b = c.fetch(&at, Duration::from_millis(300)).await.unwrap();
        got.extend(
            b.messages
                .iter()
                .map(|m| String::from_utf8(m.value.to_vec()).unwrap()),
        );
        at = b.next_offset.clone();
        if b.end_of_partition {
            return (got, at, true);
        }
        if want.is_some_and(|n| got.len() >= n) {
            return (got, at, false);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "read {} so far",
            got.len()
        );
    }
}

fn values(prefix: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{prefix}-{i}").into_bytes())
        .collect()
}

fn strings(v: &[Vec<u8>]) -> Vec<String> {
    v.iter()
        .map(|b| String::from_utf8(b.clone()).unwrap())
        .collect()
}

/// A split closes the parent (read to its end, it ends the partition) and its two children
/// list it as their parent; a merge of the two makes a child with both as parents. Every
/// record is read exactly once along the lineage, from a fresh consumer too.
#[test]
fn resharding_ends_parents_and_lists_lineage() {
    if !isolated("resharding_ends_parents_and_lists_lineage") {
        return;
    }
    runtime().block_on(async {
        let mock = KinesisMock::start().await.unwrap();
        let client = mock.client();
        let t = Duration::from_secs(10);
        mock.create_stream("reshard", 1).await.unwrap();
        let before = values("p0", 25);
        mock.put("reshard", 0, &before).await.unwrap();
        let cfg = config(&mock, "reshard");
        let ctx = StreamContext::new(std::env::temp_dir());
        let plugin = KinesisPlugin;
        let mut md = plugin.metadata_provider(&cfg, &ctx).await.unwrap();
        let smallest = md
            .offset_for(PartitionId(0), &OffsetCriteria::Smallest, t)
            .await
            .unwrap();
        let mut c0 = plugin
            .partition_consumer(&cfg, &ctx, PartitionId(0))
            .await
            .unwrap();
        let (got, mid, ended) = read_shard(c0.as_mut(), &smallest, Some(10)).await;
        assert!(!ended);
        assert!(got.len() >= 10);

        // Split at the middle of the hash key space.
        client
            .split_shard(
                "reshard",
                "shardId-000000000000",
                "170141183460469231731687303715884105728",
                t,
            )
            .await
            .unwrap();
        mock.wait_active("reshard").await.unwrap();
        // A provider keeps the shard list for a second; the controller makes a new one for
        // each discovery round.
        let mut md = plugin.metadata_provider(&cfg, &ctx).await.unwrap();
        let ids = md.partition_ids(t).await.unwrap();
        assert_eq!(ids, vec![PartitionId(0), PartitionId(1), PartitionId(2)]);
        let parents = md.parents(t).await.unwrap();
        assert_eq!(parents.get(&PartitionId(1)), Some(&vec![PartitionId(0)]));
        assert_eq!(parents.get(&PartitionId(2)), Some(&vec![PartitionId(0)]));
        assert!(!parents.contains_key(&PartitionId(0)));

        // The parent: the rest of its records, then the end; again from a fresh consumer.
        let (rest, end0, ended) = read_shard(c0.as_mut(), &mid, None).await;
        assert!(ended, "the closed parent must end");
        let mut all0 = got.clone();
        all0.extend(rest);
        assert_eq!(all0, strings(&before));
        let mut fresh = plugin
            .partition_consumer(&cfg, &ctx, PartitionId(0))
            .await
            .unwrap();
        let (again, _, ended) = read_shard(fresh.as_mut(), &mid, None).await;
        assert!(ended);
        assert_eq!(again, all0[got.len()..].to_vec());
        let (none, _, ended) = read_shard(fresh.as_mut(), &end0, None).await;
        assert!(ended && none.is_empty(), "{none:?}");

        // The children get what is written after the split.
        let (a, b) = (values("p1", 7), values("p2", 9));
        mock.put("reshard", 1, &a).await.unwrap();
        mock.put("reshard", 2, &b).await.unwrap();
        for (p, want) in [(1, &a), (2, &b)] {
            let from = md
                .offset_for(PartitionId(p), &OffsetCriteria::Smallest, t)
                .await
                .unwrap();
            let mut c = plugin
                .partition_consumer(&cfg, &ctx, PartitionId(p))
                .await
                .unwrap();
            let (got, _, ended) = read_shard(c.as_mut(), &from, Some(want.len())).await;
            assert!(!ended);
            assert_eq!(got, strings(want), "shard {p}");
        }

        // Merge the children: both end, the new shard has both as parents.
        client
            .merge_shards("reshard", "shardId-000000000001", "shardId-000000000002", t)
            .await
            .unwrap();
        mock.wait_active("reshard").await.unwrap();
        let mut md = plugin.metadata_provider(&cfg, &ctx).await.unwrap();
        let parents = md.parents(t).await.unwrap();
        assert_eq!(
            parents.get(&PartitionId(3)),
            Some(&vec![PartitionId(1), PartitionId(2)])
        );
        let latest = md
            .latest_offsets(&[PartitionId(0), PartitionId(3)], t)
            .await
            .unwrap();
        assert!(
            latest.contains_key(&PartitionId(0)),
            "a closed shard has a known end"
        );
        assert!(
            !latest.contains_key(&PartitionId(3)),
            "an open shard's end is unknown"
        );
        for (p, want) in [(1, &a), (2, &b)] {
            let from = md
                .offset_for(PartitionId(p), &OffsetCriteria::Smallest, t)
                .await
                .unwrap();
            let mut c = plugin
                .partition_consumer(&cfg, &ctx, PartitionId(p))
                .await
                .unwrap();
            let (got, _, ended) = read_shard(c.as_mut(), &from, None).await;
            assert!(ended, "shard {p} was merged");
            assert_eq!(got, strings(want));
        }
        let merged = values("p3", 5);
        mock.put("reshard", 3, &merged).await.unwrap();
        let from = md
            .offset_for(PartitionId(3), &OffsetCriteria::Smallest, t)
            .await
            .unwrap();
        let mut c = plugin
            .partition_consumer(&cfg, &ctx, PartitionId(3))
            .await
            .unwrap();
        let (got, _, _) = read_shard(c.as_mut(), &from, Some(5)).await;
        assert_eq!(got, strings(&merged));
    });
}

/// Errors name what is wrong and carry the right kind.
#[test]
fn errors_name_the_stream_and_offset() {
    if !isolated("errors_name_the_stream_and_offset") {
        return;
    }
    runtime().block_on(async {
        let mock = KinesisMock::start().await.unwrap();
        let ctx = StreamContext::new(std::env::temp_dir());
        let cfg = config(&mock, "does-not-exist");
        let mut md = KinesisPlugin.metadata_provider(&cfg, &ctx).await.unwrap();
        let e = md.partition_ids(Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(e.kind, StreamErrorKind::NotFound, "{e}");
        assert!(e.message.contains("does-not-exist"), "{e}");

        mock.create_stream("errs", 1).await.unwrap();
        let cfg = config(&mock, "errs");
        let mut md = KinesisPlugin.metadata_provider(&cfg, &ctx).await.unwrap();
        let e = md
            .offset_for(
                PartitionId(7),
                &OffsetCriteria::Smallest,
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, StreamErrorKind::NotFound);
        assert!(e.message.contains("shardId-000000000007"), "{e}");
        let mut c = KinesisPlugin
            .partition_consumer(&cfg, &ctx, PartitionId(0))
            .await
            .unwrap();
        let e = c
            .fetch(
                &StreamOffset::parse("not-a-sequence"),
                Duration::from_millis(200),
            )
            .await
            .unwrap_err();
        assert!(e.message.contains("'not-a-sequence'"), "{e}");
        // A sequence number the shard never had (kinesis-mock accepts any in an empty
        // shard).
        mock.put("errs", 0, &values("e", 1)).await.unwrap();
        let e = c
            .fetch(
                &StreamOffset::parse("4968085698077437524010883650486229813364684354539959091"),
                Duration::from_millis(200),
            )
            .await
            .unwrap_err();
        assert!(!e.is_retryable(), "{e}");

        // Nothing listens: retryable.
        let mut m = mock.stream_config("errs");
        m.insert("endpoint".into(), "http://127.0.0.1:9".into());
        let cfg = StreamConfig::parse("$", &m).unwrap();
        let mut md = KinesisPlugin.metadata_provider(&cfg, &ctx).await.unwrap();
        let e = md.partition_ids(Duration::from_secs(2)).await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
    });
}
