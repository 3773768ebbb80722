//! [`ControllerContext`]: what the controller role works with.

use std::sync::Arc;
use std::time::Duration;

use riffle_ingest::ServerRole;
use riffle_storage::DeepStore;
use riffle_stream::{StreamContext, StreamRegistry};

use crate::segments::SegmentManager;
use crate::store::CatalogStore;

/// What the controller role needs.
pub struct ControllerContext {
    /// The catalog.
    pub store: CatalogStore,
    /// Segment decisions (also the server role's committer).
    pub segments: Arc<SegmentManager>,
    /// The server role it hands tables to.
    pub server: Arc<ServerRole>,
    /// Stream plugins.
    pub streams: StreamRegistry,
    /// What stream plugins need from the node.
    pub stream_ctx: StreamContext,
    /// The deep store.
    pub deep_store: Arc<DeepStore>,
    /// How segments named by URI in a push are fetched.
    pub fetchers: Arc<riffle_storage::Fetchers>,
    /// Where uploads and fetched segments wait while a push is checked (in the data
    /// directory; emptied at start).
    pub staging_dir: std::path::PathBuf,
    /// How often streams are checked for new partitions.
    pub discovery_interval: Duration,
    /// How ingestion expressions are read (Groovy's safe subset).
    pub transforms: riffle_transform::TransformOptions,
}
