//! The server role's ingestion: one consumption loop per consuming segment, its sealer, and
//! the loading of committed segments.
//!
//! Owns:
//! - [`ServerRole`] ([`server`]): hosts the tables the controller hands it
//!   ([`TableAssignment`]: a [`TableSpec`], the committed segments to load, the consuming
//!   segments to consume), runs their loops, and answers pause, force-commit and status
//!   requests. It decides nothing about segments and never touches the catalog.
//! - The partition loop ([`partition`], [`batch`]): `fetch(offset) -> decode into column
//!   builders (cpu pool) -> publish rows and the next offset together -> check end
//!   criteria` ([`end`]). Rows are queryable as soon as they are published.
//! - The sealer ([`sealer`]): write, open, upload, commit through the
//!   [`SegmentCommitter`] ([`commit`]), swap.
//! - Typed partition status ([`status`]) and the per-partition controls ([`control`]).
//!
//! Modules depend downward only: `server` -> `loader`, `partition` -> `sealer` -> `table`
//! -> `context`, `control`, `status`, `spec` -> `commit`; `batch` adds the batch steps to
//! `partition`'s loop. (`riffle-node`'s architecture test checks there is no circle.)
//!
//! Invariants:
//! - The catalog is the only checkpoint: a partition always (re)starts at its IN_PROGRESS
//!   segment's start offset, and rows of a consuming segment are never checkpointed, so a
//!   restart re-reads them: nothing is lost or counted twice.
//! - A segment's published rows are exactly the decodable messages in
//!   `[start_offset, next_offset)`.
//! - A fetch error never skips offsets: transient errors are retried at the same offset,
//!   others stop the partition with a visible error.
//! - Upload before commit; the swap to the sealed copy happens only after the commit.

pub mod batch;
pub mod commit;
mod context;
pub mod control;
pub mod dead_letter;
pub mod end;
mod loader;
pub mod partition;
pub mod sealer;
pub mod segment_build;
pub mod server;
pub mod spec;
pub mod status;
mod table;

pub use commit::{CommitError, CommitOutcome, SealedFacts, SegmentCommit, SegmentCommitter};
pub use control::PartitionControl;
pub use server::{ServerContext, ServerRole, TableAssignment};
pub use spec::{partition_id, StreamSpec, TableSpec, PARTITIONS_PER_STREAM};
pub use status::{PartitionError, PartitionState, PartitionStatus, Stage};
