//! The controller role: every catalog change and every segment decision.
//!
//! Owns:
//! - [`TableManager`] ([`tables`]): schemas and tables (create, update, delete, start at
//!   node start), consumption control ([`consumption`]: pause, resume, force commit,
//!   `consumingSegmentsInfo` with lag), segments and retention ([`retention`]), partition
//!   discovery ([`discovery`]). It takes a parsed table config, checks it against its
//!   schema once, resolves it once into a [`riffle_ingest::TableSpec`] ([`spec`]), and
//!   hands the server role ([`riffle_ingest::ServerRole`]) what to run.
//! - [`SegmentManager`] ([`segments`]): names and sizes consuming segments ([`flush`]:
//!   Pinot's thresholds and size-based autotune) and commits a sealed segment with the next
//!   one in one catalog transaction. It is the in-process
//!   [`riffle_ingest::SegmentCommitter`] of the server role; in a cluster the same decisions
//!   would be reached by a remote call.
//! - Pushed segments of OFFLINE tables ([`push`]: tar, URI and metadata pushes, checked
//!   before anything changes, recorded in one transaction) and the hybrid time boundary.
//! - [`CatalogStore`] ([`store`]): catalog transactions on the node's io pool.
//! - Typed answers ([`models`]) and one error type with a kind ([`ControllerError`]).
//!
//! Invariants:
//! - Only this crate changes the catalog.
//! - A table's first consuming segments are recorded with the table, in one transaction,
//!   before anything is consumed; a new partition's first segment is recorded before its
//!   loop starts; a commit writes DONE and the next IN_PROGRESS segment in one transaction.
//! - Deep-store objects no committed segment references are removed only before a table's
//!   partitions start, so no upload is in flight.

pub mod consumption;
mod context;
pub mod discovery;
pub mod error;
pub mod flush;
pub mod models;
pub mod push;
pub mod retention;
pub mod segments;
pub mod spec;
pub mod store;
pub mod tables;

pub use error::ControllerError;
pub use models::{ConsumeFrom, ConsumingInfo, ForceCommitJob, PauseStatus};
pub use segments::SegmentManager;
pub use store::CatalogStore;
pub use tables::{ControllerContext, TableManager};
