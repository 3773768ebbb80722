//! Every benchmark of Riffle: the harnesses, the event generator, the latency watcher and
//! the report printer. No library depends on this crate; the `riffle bench ...` command
//! ([`cli`]) and the bench targets (`cargo bench -p riffle-bench --bench ingest|
//! kafka_ingest`) run it. Figures and how they were produced: `docs/PERFORMANCE.md`.
//!
//! Each run builds its node through the one composition root, [`riffle_node::Node::open`]
//! ([`core`]), on loopback ports, exactly as `riffle serve` does.
//!
//! **Ingestion** ([`run_ingest_bench`]):
//! - *Throughput* ("rows/s to queryable"): `rows` events of [`EVENT_BYTES`] bytes are
//!   written to `partitions` files *before* the table exists; a clock starts, the table is
//!   created (`auto.offset.reset=smallest`; consumption starts with it), and the published
//!   row count (what a SQL query sees: the sum of `SegmentRef::rows().num_rows`) is polled
//!   every millisecond until it equals `rows`. The count must end exactly at `rows`.
//! - *Comparisons*, same invocation, same files: *read only* (the file plugin's
//!   `PartitionConsumer::fetch` loop, no decoding: the ceiling of the stream path) and
//!   *naive decode* (`serde_json::from_slice::<serde_json::Value>` per line, one thread:
//!   the per-row map Riffle's decoder avoids).
//! - *Stage split* (optional): the partition loop's stages run one after the other on one
//!   thread (fetch, decode into column builders, publish into a consuming segment), each
//!   timed, to show where the time goes.
//! - *Latency* ("publish-to-query", [`latency`]): a table consumes an empty topic; a writer
//!   thread appends `latency_rate` rows/s in ticks of `tick` and records, per tick, the
//!   cumulative row count and the instant its write returned; a watcher thread polls the
//!   published count every `poll` and records when each tick's count was first reached.
//!
//! **Segment lifecycle** ([`lifecycle`]):
//! - *Seal* ([`run_seal_bench`]): the same stream files (written once, hard-linked into
//!   each run's data directory) are ingested at the maximum rate into the bench table with
//!   `realtime.segment.flush.threshold.segment.rows` = the threshold (1,000,000: several
//!   seals per run) and, beside it in the same invocation, with the threshold above the row
//!   count (no seal), in interleaved rounds (round 0 without seals first, round 1 with seals
//!   first, ...) after one unmeasured warm-up run (a fresh process ingests slower until its
//!   heap has grown). Each run reports rows/s to queryable, the longest time the published
//!   count stood still, and when every full segment had committed. Then the paced writer of
//!   the latency phase runs at half the median no-seal rate, without and with seals, in the
//!   same interleaved rounds, for publish-to-query percentiles (also per second of the run).
//! - *Restart* ([`run_restart_bench`]): a table (no seal) is filled with the rows on a node
//!   with a runtime of its own, in a thread of its own; when every row is queryable that
//!   runtime is shut down ([`tokio::runtime::Runtime::shutdown_timeout`]: every task is
//!   dropped where it stands, no shutdown, no seal, no commit), then the node is dropped.
//!   The catalog on disk is then what a `SIGKILL` leaves: one IN_PROGRESS segment per
//!   partition starting at offset 0. A new node opens the same data directory and the clock
//!   runs from [`riffle_node::Node::open`] until every row is queryable again.
//! - *Footprint* ([`run_footprint_bench`]): one partition's rows in one consuming segment:
//!   [`riffle_segment::ConsumingSnapshot::bytes`] and the process RSS delta (`VmRSS` of
//!   `/proc/self/status`) per row; then the same rows sealed with
//!   [`riffle_segment::write_segment`] (default options, the bench table's options, and with
//!   indexes) and written as Parquet (zstd, the `parquet` crate's default level): bytes per
//!   row, and the time each write took.
//!
//! The memory cap of a consuming segment (1 GiB by default) is lifted in the lifecycle runs
//! ([`UNCAPPED_BYTES`]) so that only the row threshold ends segments; the footprint figures
//! say where the default cap would end one.
//!
//! Every phase records the load average before and after: a figure measured while the
//! machine was busy is not a figure.

pub mod auth_cost;
pub mod batch;
pub mod cli;
pub mod core;
pub mod dashboard;
pub mod decode;
pub mod events;
pub mod footprint;
pub mod ingest;
mod ingest_report;
pub mod latency;
pub mod lifecycle;
pub mod queries;
pub mod report;
pub mod restart;
pub mod seal;

pub use crate::core::*;
pub use events::*;
pub use footprint::*;
pub use ingest::*;
pub use latency::*;
pub use lifecycle::*;
pub use report::*;
pub use restart::*;
pub use seal::*;

#[cfg(test)]
mod tests;
