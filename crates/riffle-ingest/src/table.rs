//! A table hosted by this server: its spec, its segments as queries see them, and its
//! partitions' loops, controls and statuses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use riffle_common::TableNameWithType;
use riffle_segment::TableData;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::context::ServerContext;
use crate::control::PartitionControl;
use crate::spec::TableSpec;
use crate::status::StatusBoard;

/// A running table.
pub(crate) struct TableRuntime {
    pub(crate) name: TableNameWithType,
    /// The spec now, and how many times it changed (loops compare to see a new one).
    spec: parking_lot::RwLock<(Arc<TableSpec>, u64)>,
    pub(crate) data: Arc<TableData>,
    /// The dead-letter table, when a stream enables it.
    pub(crate) dead: Option<Arc<TableData>>,
    pub(crate) status: StatusBoard,
    controls: Mutex<BTreeMap<u32, Arc<PartitionControl>>>,
    /// Partitions whose loop runs now.
    running: watch::Sender<BTreeSet<u32>>,
    pub(crate) cancel: CancellationToken,
    pub(crate) tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl TableRuntime {
    pub(crate) fn new(
        name: TableNameWithType,
        spec: Arc<TableSpec>,
        data: Arc<TableData>,
    ) -> TableRuntime {
        let dead = spec
            .streams
            .iter()
            .any(|s| s.config.dead_letter.is_some())
            .then(|| {
                Arc::new(TableData::new(
                    &crate::dead_letter::dead_letter_table(name.raw().as_str()),
                    crate::dead_letter::dead_letter_columns(),
                    Some("failedAt".to_string()),
                ))
            });
        TableRuntime {
            name,
            spec: parking_lot::RwLock::new((spec, 0)),
            data,
            dead,
            status: StatusBoard::default(),
            controls: Mutex::new(BTreeMap::new()),
            running: watch::Sender::new(BTreeSet::new()),
            cancel: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// The table's spec now.
    pub(crate) fn spec(&self) -> Arc<TableSpec> {
        self.spec.read().0.clone()
    }

    /// The spec now and its version.
    pub(crate) fn spec_version(&self) -> (Arc<TableSpec>, u64) {
        let s = self.spec.read();
        (s.0.clone(), s.1)
    }

    /// Replaces the spec (loops pick it up at their next step).
    pub(crate) fn set_spec(&self, spec: Arc<TableSpec>) {
        let mut s = self.spec.write();
        s.0 = spec;
        s.1 += 1;
    }

    /// The control of a partition (created on first use).
    pub(crate) fn control(&self, partition: u32) -> Arc<PartitionControl> {
        self.controls.lock().entry(partition).or_default().clone()
    }

    /// Every partition's control.
    pub(crate) fn controls(&self) -> Vec<(u32, Arc<PartitionControl>)> {
        self.controls
            .lock()
            .iter()
            .map(|(p, c)| (*p, c.clone()))
            .collect()
    }

    /// Marks a partition's loop as running; false if it runs already.
    pub(crate) fn mark_running(&self, partition: u32) -> bool {
        self.running.send_if_modified(|s| s.insert(partition))
    }

    /// Marks a partition's loop as ended.
    pub(crate) fn mark_ended(&self, partition: u32) {
        self.running.send_if_modified(|s| s.remove(&partition));
    }

    /// Partitions whose loop runs now.
    pub(crate) fn running(&self) -> BTreeSet<u32> {
        self.running.borrow().clone()
    }

    /// Waits until no loop runs, at most `wait`; whether none runs.
    pub(crate) async fn wait_idle(&self, wait: Duration) -> bool {
        let mut rx = self.running.subscribe();
        let idle = tokio::time::timeout(wait, rx.wait_for(|s| s.is_empty()))
            .await
            .is_ok();
        idle
    }

    /// Where this table's sealed segment files live on this server.
    pub(crate) fn dir(&self, ctx: &ServerContext) -> PathBuf {
        self.name.dir_in(&ctx.segments_dir)
    }

    /// A sealed segment's local file.
    pub(crate) fn segment_path(&self, ctx: &ServerContext, segment: &str) -> PathBuf {
        self.dir(ctx).join(format!("{segment}.seg"))
    }
}
