//! What the sealer does when a commit fails: a failure whose kind says retrying may help
//! (the deep store or the controller unavailable) is retried at the same segment, with the
//! reason on the partition; any other (the controller refuses the commit) stops retrying,
//! stops the partition, and shows on it with its stage.
//!
//! The committer here is a double of the controller's segment manager: a refusal and an
//! outage of the controller are faults the in-process controller cannot be made to produce
//! on demand. Everything else is real: the memory stream, the decoder, the sealed file, the
//! `file://` deep store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use riffle_catalog::SegmentMeta;
use riffle_common::{ErrorKind, Pool, StreamOffset};
use riffle_config::{Schema, TableConfig};
use riffle_ingest::{
    CommitError, CommitOutcome, PartitionState, SegmentCommit, SegmentCommitter, ServerContext,
    ServerRole, Stage, StreamSpec, TableAssignment, TableSpec,
};
use riffle_segment::{SealOptions, SegmentRegistry, TableColumns};
use riffle_storage::DeepStore;
use riffle_stream::memory::MemoryBroker;
use riffle_stream::{StreamContext, StreamRegistry};

/// Fails every commit with `kind`, counting the attempts.
struct FailingCommitter {
    kind: ErrorKind,
    attempts: AtomicU64,
}

#[async_trait]
impl SegmentCommitter for FailingCommitter {
    async fn next_segment(
        &self,
        ended: &SegmentMeta,
        end: &StreamOffset,
    ) -> Result<SegmentMeta, CommitError> {
        let mut next = SegmentMeta::in_progress(
            &ended.table_name,
            format!("{}_next", ended.segment_name),
            ended.partition,
            ended.sequence + 1,
            end.clone(),
            ended.creation_time_ms,
        );
        next.flush_threshold_rows = ended.flush_threshold_rows;
        Ok(next)
    }

    async fn commit(&self, _c: SegmentCommit) -> Result<CommitOutcome, CommitError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        Err(CommitError {
            kind: self.kind,
            message: format!("the controller says no ({:?})", self.kind),
            source: None,
        })
    }
}

fn spec(topic: &str) -> TableSpec {
    let schema = Schema::from_json(
        format!(
            r#"{{"schemaName":"{topic}","dimensionFieldSpecs":[{{"name":"id","dataType":"LONG"}}],
            "dateTimeFieldSpecs":[{{"name":"ts","dataType":"LONG","format":"1:MILLISECONDS:EPOCH","granularity":"1:MILLISECONDS"}}]}}"#
        )
        .as_bytes(),
    )
    .unwrap();
    let table = TableConfig::from_json(
        format!(
            r#"{{"tableName":"{topic}","tableType":"REALTIME","segmentsConfig":{{"timeColumnName":"ts"}},"tenants":{{}},
            "tableIndexConfig":{{"streamConfigs":{{"streamType":"memory","stream.memory.topic.name":"{topic}",
            "stream.memory.decoder.class.name":"org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
            "stream.memory.consumer.prop.auto.offset.reset":"smallest",
            "realtime.segment.flush.threshold.segment.rows":"100"}}}}}}"#
        )
        .as_bytes(),
    )
    .unwrap();
    let config = table.streams()[0].clone();
    let plugin = StreamRegistry::with_builtins().plugin_for(&config).unwrap();
    TableSpec {
        columns: TableColumns::new(schema.columns().unwrap()),
        streams: vec![StreamSpec {
            index: 0,
            config: config.clone(),
            plugin,
        }],
        seal: SealOptions::from_table(&table),
        load_mode: table.indexes().load_mode,
        flush: config.flush,
        config: Arc::new(table),
        schema: Arc::new(schema),
        ingest: None,
        decode: Default::default(),
    }
}

/// A server role consuming `topic` (250 rows, 100-row segments) whose commits fail with
/// `kind`; returns it, its committer and its data directory.
async fn run_with(
    topic: &str,
    kind: ErrorKind,
) -> (ServerRole, Arc<FailingCommitter>, tempfile::TempDir) {
    MemoryBroker::global().create_topic(topic, 1).unwrap();
    for i in 0..250 {
        MemoryBroker::global()
            .produce(topic, 0, format!(r#"{{"id":{i},"ts":{i}}}"#))
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep");
    std::fs::create_dir_all(&deep).unwrap();
    let committer = Arc::new(FailingCommitter {
        kind,
        attempts: AtomicU64::new(0),
    });
    let store = DeepStore::open(&format!("file://{}", deep.display()), &BTreeMap::new()).unwrap();
    let server = ServerRole::new(ServerContext {
        stream_ctx: StreamContext::new(dir.path().to_path_buf()),
        segments: Arc::new(SegmentRegistry::new()),
        fetchers: Arc::new(
            riffle_storage::Fetchers::new(store.clone(), Vec::new(), BTreeMap::new()).unwrap(),
        ),
        deep_store: Arc::new(store),
        segments_dir: dir.path().join("segments"),
        max_consuming_bytes: 1 << 30,
        cpu: Pool::new("cpu", 2).unwrap(),
        committer: committer.clone(),
    });
    let spec = Arc::new(spec(topic));
    let name = spec.config.name_with_type();
    let mut first = SegmentMeta::in_progress(
        &name,
        format!("{topic}__0__0__20240101T0000Z"),
        0,
        0,
        StreamOffset::Long(0),
        0,
    );
    first.flush_threshold_rows = Some(100);
    server
        .host_table(TableAssignment {
            spec,
            committed: Vec::new(),
            consuming: vec![first],
            paused: false,
            dead_letters: Vec::new(),
        })
        .await;
    (server, committer, dir)
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_commit_stops_the_partition_and_shows_on_it() {
    let topic = "sealer_refused";
    let (server, committer, _dir) = run_with(topic, ErrorKind::Conflict).await;
    let name = riffle_common::TableNameWithType::parse(&format!("{topic}_REALTIME")).unwrap();
    wait_for("the partition to stop", || {
        server.status(&name).unwrap()[0].state == PartitionState::Error
    })
    .await;
    let st = server.status(&name).unwrap().remove(0);
    let e = st.last_error.expect("the failure shows on the partition");
    assert_eq!(e.stage, Stage::Commit, "{e:?}");
    assert!(!e.retrying, "{e:?}");
    assert!(e.message.contains("the controller says no"), "{e:?}");
    // No retry: one attempt, and still one a while later; the loop has ended.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(committer.attempts.load(Ordering::SeqCst), 1);
    wait_for("the loop to end", || {
        server.running_partitions(&name).is_empty()
    })
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_controller_is_retried_with_the_reason_shown() {
    let topic = "sealer_unavailable";
    let (server, committer, _dir) = run_with(topic, ErrorKind::Unavailable).await;
    let name = riffle_common::TableNameWithType::parse(&format!("{topic}_REALTIME")).unwrap();
    wait_for("a second attempt", || {
        committer.attempts.load(Ordering::SeqCst) >= 2
    })
    .await;
    let st = server.status(&name).unwrap().remove(0);
    assert_ne!(st.state, PartitionState::Error, "{st:?}");
    let e = st
        .last_error
        .expect("the retried failure shows on the partition");
    assert_eq!(e.stage, Stage::Commit, "{e:?}");
    assert!(e.retrying && e.message.contains("retrying"), "{e:?}");
    assert_eq!(server.running_partitions(&name), vec![0]);
    server.shutdown().await;
}
