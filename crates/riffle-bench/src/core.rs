//! The node a benchmark runs: built by [`Node::open`] as `riffle serve` builds it, on
//! loopback ports, with the built-in streams and the setup's memory cap.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use riffle_common::{RuntimeConfig, Runtimes, TableNameWithType};
use riffle_config::Schema;
use riffle_ingest::{PartitionState, PartitionStatus};
use riffle_node::{Node, NodeConfig};
use riffle_segment::SegmentRegistry;
use riffle_stream::StreamRegistry;

use crate::*;

/// A benchmark's node and the table it measures.
pub struct Core {
    pub node: Node,
    pub name: TableNameWithType,
}

impl Core {
    /// Opens a node on `data_dir` (starting the tables its catalog holds), for `setup`'s
    /// table.
    pub async fn open(data_dir: &Path, setup: &TableSetup) -> Result<Core, BenchError> {
        let mut config = NodeConfig::loopback(data_dir.to_path_buf());
        config.discovery_interval = Duration::from_secs(3600);
        config.runtimes = Some(runtimes()?);
        if let Some(cap) = setup.max_consuming_bytes {
            config.max_consuming_bytes = cap;
        }
        let node = Node::open(config, StreamRegistry::with_builtins())
            .await
            .map_err(|e| err(format!("open node: {}", riffle_common::chain(&e))))?;
        Ok(Core {
            node,
            name: setup.table.name_with_type(),
        })
    }

    /// Creates `setup`'s table with its schema; consumption starts at once.
    pub async fn create_table(
        &self,
        setup: &TableSetup,
        schema: &Schema,
    ) -> Result<(), BenchError> {
        self.node
            .tables()
            .create_table(setup.table.clone(), schema.clone(), true)
            .await
            .map(|_| ())
            .map_err(|e| err(format!("create table: {e}")))
    }

    /// Opens a node on `data_dir` and creates `setup`'s table there.
    pub async fn create(
        data_dir: &Path,
        setup: &TableSetup,
        schema: &Schema,
    ) -> Result<Core, BenchError> {
        let core = Core::open(data_dir, setup).await?;
        core.create_table(setup, schema).await?;
        Ok(core)
    }

    /// Every table's segments, as queries see them.
    pub fn segments(&self) -> Arc<SegmentRegistry> {
        self.node.segments().clone()
    }

    /// The table's partitions.
    pub fn status(&self) -> Vec<PartitionStatus> {
        self.node
            .tables()
            .server()
            .status(&self.name)
            .unwrap_or_default()
    }

    /// A partition that stopped with an error, if any.
    pub fn failure(&self) -> Option<String> {
        failure_of(&self.status())
    }

    /// Stops the node.
    pub async fn stop(self) {
        self.node.shutdown().await;
    }

    /// Segments committed by the table's partitions since the node started.
    pub fn segments_committed(&self) -> u64 {
        self.status().iter().map(|s| s.segments_committed).sum()
    }
}

/// The pools every node of this process uses: the runs of a benchmark share threads (and
/// the memory those threads freed), as the runs of a long-lived server would.
fn runtimes() -> Result<Runtimes, BenchError> {
    static SHARED: OnceLock<Runtimes> = OnceLock::new();
    if let Some(r) = SHARED.get() {
        return Ok(r.clone());
    }
    let r = Runtimes::new(&RuntimeConfig::default())
        .map_err(|e| err(format!("start the thread pools: {e}")))?;
    Ok(SHARED.get_or_init(|| r).clone())
}

/// Waits (up to 30 s) until `partitions` partitions are consuming, as `status` reports
/// them; an error names the partition that failed, or says that the time ran out.
pub async fn wait_consuming(
    status: impl Fn() -> Vec<PartitionStatus>,
    partitions: usize,
) -> Result<(), String> {
    let t = Instant::now();
    loop {
        let st = status();
        if st.len() == partitions && st.iter().all(|s| s.state == PartitionState::Consuming) {
            return Ok(());
        }
        if let Some(f) = failure_of(&st) {
            return Err(f);
        }
        if t.elapsed() > Duration::from_secs(30) {
            return Err("partitions not consuming after 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The first partition among `status` that stopped with an error, as text.
pub fn failure_of(status: &[PartitionStatus]) -> Option<String> {
    status
        .iter()
        .find(|s| s.state == PartitionState::Error)
        .map(|s| {
            format!(
                "partition {}: {}",
                s.partition,
                s.last_error
                    .as_ref()
                    .map(|e| e.message.as_str())
                    .unwrap_or_default()
            )
        })
}

/// Rows a query would see now.
pub fn published(segments: &SegmentRegistry) -> u64 {
    segments.table(TABLE).map_or(0, |t| {
        t.segments().iter().map(|s| s.num_rows() as u64).sum()
    })
}
