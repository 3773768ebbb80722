//! [`ServerContext`]: what the server role shares with its loops and sealers.

use std::path::PathBuf;
use std::sync::Arc;

use riffle_common::Pool;
use riffle_segment::SegmentRegistry;
use riffle_storage::DeepStore;
use riffle_stream::StreamContext;

use crate::commit::SegmentCommitter;

/// What the server role shares with its loops.
pub struct ServerContext {
    /// What stream plugins need from the server.
    pub stream_ctx: StreamContext,
    /// Segments, as queries see them.
    pub segments: Arc<SegmentRegistry>,
    /// Where sealed segments are uploaded before they commit, and downloaded from.
    pub deep_store: Arc<DeepStore>,
    /// How pushed segments named by URI are fetched (the deep store first).
    pub fetchers: Arc<riffle_storage::Fetchers>,
    /// Where this server keeps sealed segment files (`<dir>/<table>/<segment>.seg`).
    pub segments_dir: PathBuf,
    /// A consuming segment holding this many bytes ends early
    /// (`indexCapacityThresholdBreached`) instead of running out of memory.
    pub max_consuming_bytes: usize,
    /// Where decoding and sealing run.
    pub cpu: Pool,
    /// The controller's side of the segment protocol.
    pub committer: Arc<dyn SegmentCommitter>,
}
