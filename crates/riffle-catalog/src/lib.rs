//! The catalog: schemas, table configs and segment metadata, in one transactional store.
//!
//! The embedded catalog is one `redb` file (`catalog.redb`) in the data directory: ACID
//! transactions, crash-safe, nothing to install. It is the only durable checkpoint of
//! ingestion: the start offset of each partition's IN_PROGRESS (consuming) segment says
//! where consumption resumes after a restart; rows of a consuming segment are never
//! checkpointed and are re-read.
//!
//! Tables (all values are JSON text so that they can be read with any tool):
//! - `schemas`: schema name -> schema JSON as stored
//! - `tables`: table name with type (`t_REALTIME`) -> table config JSON
//! - `segments`: `<table name with type>/<segment name>` -> [`SegmentMeta`] JSON
//! - `table_state`: table name with type -> [`TableState`] JSON (pause flag and its reason)
//!
//! Invariants:
//! - a table and its first IN_PROGRESS segments are created in one transaction;
//! - a segment commit ([`Catalog::commit_segment`]) marks the segment DONE with its end offset
//!   and creates the next IN_PROGRESS segment starting at that end offset in one transaction,
//!   so committed ranges of a partition are contiguous and never overlap;
//! - at most one IN_PROGRESS segment per partition.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};
use riffle_common::{ClassifyError, ErrorCode};
use serde::{Deserialize, Serialize};

const SCHEMAS: TableDefinition<&str, &str> = TableDefinition::new("schemas");
const TABLES: TableDefinition<&str, &str> = TableDefinition::new("tables");
const SEGMENTS: TableDefinition<&str, &str> = TableDefinition::new("segments");
const TABLE_STATE: TableDefinition<&str, &str> = TableDefinition::new("table_state");

/// A catalog failure.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The named object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The named object exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The request conflicts with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// The store failed (disk, corruption).
    #[error("catalog storage: {0}")]
    Storage(String),
}

impl ClassifyError for CatalogError {
    fn code(&self) -> ErrorCode {
        match self {
            CatalogError::NotFound(_) => ErrorCode::NotFound,
            CatalogError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            CatalogError::Conflict(_) => ErrorCode::Conflict,
            CatalogError::Storage(_) => ErrorCode::Internal,
        }
    }
}

fn storage<E: std::fmt::Display>(e: E) -> CatalogError {
    CatalogError::Storage(e.to_string())
}

/// Pinot's segment status (`segment.realtime.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SegmentStatus {
    /// Consuming: rows live in memory and are re-read after a crash.
    InProgress,
    /// Sealed and committed.
    Done,
}

/// Metadata of one segment (Pinot's segment ZK metadata).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentMeta {
    /// Segment name.
    pub segment_name: String,
    /// Table name with type.
    pub table_name: String,
    /// Partition id.
    pub partition: u32,
    /// Sequence number within the partition.
    pub sequence: u32,
    /// Status.
    pub status: SegmentStatus,
    /// First offset (inclusive).
    pub start_offset: String,
    /// End offset (exclusive), once DONE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_offset: Option<String>,
    /// Creation time (epoch ms).
    pub creation_time_ms: i64,
    /// Row threshold chosen for this segment, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_threshold_rows: Option<u64>,
    /// Rows, once DONE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_docs: Option<u64>,
    /// Everything else (time range, CRC, download URI, size) added by later stages.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A table's consumption state (Pinot's pause flag in the ideal state).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableState {
    /// Consumption is paused: no consuming segments until resumed.
    pub paused: bool,
    /// Why (`ADMINISTRATIVE` for an operator's request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
    /// The operator's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When the flag last changed (ISO-8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// The embedded catalog.
pub struct Catalog {
    db: Database,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Catalog")
    }
}

fn seg_key(table: &str, segment: &str) -> String {
    format!("{table}/{segment}")
}

/// Writes new segments of an existing table in `txn`. A segment of the same name, or a
/// second IN_PROGRESS segment for a partition, is an error (the caller then drops the
/// transaction, so nothing is written).
fn insert_new_segments(
    txn: &redb::WriteTransaction,
    name_with_type: &str,
    existing: &[SegmentMeta],
    metas: &[SegmentMeta],
) -> Result<(), CatalogError> {
    let tables = txn.open_table(TABLES).map_err(storage)?;
    if tables.get(name_with_type).map_err(storage)?.is_none() {
        return Err(CatalogError::NotFound(format!("table '{name_with_type}'")));
    }
    let mut segs = txn.open_table(SEGMENTS).map_err(storage)?;
    for m in metas {
        let key = seg_key(name_with_type, &m.segment_name);
        if segs.get(key.as_str()).map_err(storage)?.is_some() {
            return Err(CatalogError::AlreadyExists(format!(
                "segment '{}'",
                m.segment_name
            )));
        }
        if m.status == SegmentStatus::InProgress
            && existing
                .iter()
                .any(|e| e.partition == m.partition && e.status == SegmentStatus::InProgress)
        {
            return Err(CatalogError::Conflict(format!(
                "partition {} of '{name_with_type}' already has a consuming segment",
                m.partition
            )));
        }
        let json = serde_json::to_string(m).map_err(storage)?;
        segs.insert(key.as_str(), json.as_str()).map_err(storage)?;
    }
    Ok(())
}

impl TableState {
    /// The state an operator's pause or resume sets now.
    pub fn administrative(paused: bool, comment: Option<String>, now_ms: i64) -> TableState {
        TableState {
            paused,
            reason_code: Some("ADMINISTRATIVE".into()),
            comment,
            timestamp: Some(riffle_common::format_pinot_timestamp(now_ms)),
        }
    }
}

impl Catalog {
    /// Opens (or creates) the catalog file.
    pub fn open(path: &Path) -> Result<Catalog, CatalogError> {
        let db = Database::create(path)
            .map_err(|e| CatalogError::Storage(format!("open {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(storage)?;
        {
            txn.open_table(SCHEMAS).map_err(storage)?;
            txn.open_table(TABLES).map_err(storage)?;
            txn.open_table(SEGMENTS).map_err(storage)?;
            txn.open_table(TABLE_STATE).map_err(storage)?;
        }
        txn.commit().map_err(storage)?;
        Ok(Catalog { db })
    }

    fn get(
        &self,
        def: TableDefinition<&str, &str>,
        key: &str,
    ) -> Result<Option<String>, CatalogError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let t = txn.open_table(def).map_err(storage)?;
        Ok(t.get(key).map_err(storage)?.map(|v| v.value().to_string()))
    }

    fn list(
        &self,
        def: TableDefinition<&str, &str>,
    ) -> Result<Vec<(String, String)>, CatalogError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let t = txn.open_table(def).map_err(storage)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(storage)? {
            let (k, v) = item.map_err(storage)?;
            out.push((k.value().to_string(), v.value().to_string()));
        }
        Ok(out)
    }

    /// A schema's JSON.
    pub fn schema(&self, name: &str) -> Result<Option<String>, CatalogError> {
        self.get(SCHEMAS, name)
    }

    /// Schema names, sorted.
    pub fn schema_names(&self) -> Result<Vec<String>, CatalogError> {
        Ok(self.list(SCHEMAS)?.into_iter().map(|(k, _)| k).collect())
    }

    /// Stores a schema; without `overwrite` an existing one is an error.
    pub fn put_schema(&self, name: &str, json: &str, overwrite: bool) -> Result<(), CatalogError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut t = txn.open_table(SCHEMAS).map_err(storage)?;
            if !overwrite && t.get(name).map_err(storage)?.is_some() {
                return Err(CatalogError::AlreadyExists(format!("schema '{name}'")));
            }
            t.insert(name, json).map_err(storage)?;
        }
        txn.commit().map_err(storage)
    }

    /// Deletes a schema; an error if a table still uses it.
    pub fn delete_schema(&self, name: &str) -> Result<(), CatalogError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let tables = txn.open_table(TABLES).map_err(storage)?;
            for suffix in ["_REALTIME", "_OFFLINE"] {
                if tables
                    .get(format!("{name}{suffix}").as_str())
                    .map_err(storage)?
                    .is_some()
                {
                    return Err(CatalogError::Conflict(format!(
                        "cannot delete schema '{name}': table '{name}{suffix}' uses it"
                    )));
                }
            }
            let mut t = txn.open_table(SCHEMAS).map_err(storage)?;
            if t.remove(name).map_err(storage)?.is_none() {
                return Err(CatalogError::NotFound(format!("schema '{name}'")));
            }
        }
        txn.commit().map_err(storage)
    }

    /// A table config's JSON, by name with type.
    pub fn table(&self, name_with_type: &str) -> Result<Option<String>, CatalogError> {
        self.get(TABLES, name_with_type)
    }

    /// All tables: (name with type, config JSON), sorted by name.
    pub fn tables(&self) -> Result<Vec<(String, String)>, CatalogError> {
        self.list(TABLES)
    }

    /// Creates a table, optionally its schema (`POST /tableConfigs`), and its first
    /// segments, in one transaction.
    pub fn create_table(
        &self,
        name_with_type: &str,
        config_json: &str,
        schema: Option<(&str, &str)>,
        segments: &[SegmentMeta],
    ) -> Result<(), CatalogError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut t = txn.open_table(TABLES).map_err(storage)?;
            if t.get(name_with_type).map_err(storage)?.is_some() {
                return Err(CatalogError::AlreadyExists(format!(
                    "table '{name_with_type}'"
                )));
            }
            t.insert(name_with_type, config_json).map_err(storage)?;
            if let Some((name, json)) = schema {
                let mut s = txn.open_table(SCHEMAS).map_err(storage)?;
                s.insert(name, json).map_err(storage)?;
            }
            let mut segs = txn.open_table(SEGMENTS).map_err(storage)?;
            for m in segments {
                let json = serde_json::to_string(m).map_err(storage)?;
                segs.insert(
                    seg_key(name_with_type, &m.segment_name).as_str(),
                    json.as_str(),
                )
                .map_err(storage)?;
            }
        }
        txn.commit().map_err(storage)
    }

    /// Replaces an existing table's config.
    pub fn update_table(
        &self,
        name_with_type: &str,
        config_json: &str,
    ) -> Result<(), CatalogError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut t = txn.open_table(TABLES).map_err(storage)?;
            if t.get(name_with_type).map_err(storage)?.is_none() {
                return Err(CatalogError::NotFound(format!("table '{name_with_type}'")));
            }
            t.insert(name_with_type, config_json).map_err(storage)?;
        }
        txn.commit().map_err(storage)
    }

    /// Deletes a table and all its segment metadata.
    pub fn delete_table(&self, name_with_type: &str) -> Result<(), CatalogError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut t = txn.open_table(TABLES).map_err(storage)?;
            if t.remove(name_with_type).map_err(storage)?.is_none() {
                return Err(CatalogError::NotFound(format!("table '{name_with_type}'")));
            }
            let mut segs = txn.open_table(SEGMENTS).map_err(storage)?;
            let prefix = format!("{name_with_type}/");
            let keys: Vec<String> = segs
                .range(prefix.as_str()..)
                .map_err(storage)?
                .map_while(|r| match r {
                    Ok((k, _)) if k.value().starts_with(&prefix) => Some(Ok(k.value().to_string())),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_, _>>()
                .map_err(storage)?;
            for k in keys {
                segs.remove(k.as_str()).map_err(storage)?;
            }
            let mut st = txn.open_table(TABLE_STATE).map_err(storage)?;
            st.remove(name_with_type).map_err(storage)?;
        }
        txn.commit().map_err(storage)
    }

    /// A table's consumption state (not paused when never set).
    pub fn table_state(&self, name_with_type: &str) -> Result<TableState, CatalogError> {
        match self.get(TABLE_STATE, name_with_type)? {
            None => Ok(TableState::default()),
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                CatalogError::Storage(format!(
                    "state of table '{name_with_type}' is unreadable: {e}"
                ))
            }),
        }
    }

    /// Sets a table's consumption state and adds `segments` (the IN_PROGRESS segments a
    /// resume creates) in one transaction.
    pub fn set_table_state(
        &self,
        name_with_type: &str,
        state: &TableState,
        segments: &[SegmentMeta],
    ) -> Result<(), CatalogError> {
        let existing = self.segments(name_with_type)?;
        let txn = self.db.begin_write().map_err(storage)?;
        {
            insert_new_segments(&txn, name_with_type, &existing, segments)?;
            let mut st = txn.open_table(TABLE_STATE).map_err(storage)?;
            let json = serde_json::to_string(state).map_err(storage)?;
            st.insert(name_with_type, json.as_str()).map_err(storage)?;
        }
        txn.commit().map_err(storage)
    }

    /// Deletes a committed segment's metadata. A consuming segment cannot be deleted.
    pub fn delete_segment(
        &self,
        name_with_type: &str,
        segment: &str,
    ) -> Result<SegmentMeta, CatalogError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let meta = {
            let mut segs = txn.open_table(SEGMENTS).map_err(storage)?;
            let key = seg_key(name_with_type, segment);
            let meta: SegmentMeta = {
                let v = segs.get(key.as_str()).map_err(storage)?.ok_or_else(|| {
                    CatalogError::NotFound(format!("segment '{segment}' of '{name_with_type}'"))
                })?;
                serde_json::from_str(v.value()).map_err(storage)?
            };
            if meta.status == SegmentStatus::InProgress {
                return Err(CatalogError::Conflict(format!(
                    "segment '{segment}' is consuming; pause consumption or force a commit first"
                )));
            }
            segs.remove(key.as_str()).map_err(storage)?;
            meta
        };
        txn.commit().map_err(storage)?;
        Ok(meta)
    }

    /// The segments of a table, sorted by name.
    pub fn segments(&self, name_with_type: &str) -> Result<Vec<SegmentMeta>, CatalogError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let segs = txn.open_table(SEGMENTS).map_err(storage)?;
        let prefix = format!("{name_with_type}/");
        let mut out = Vec::new();
        for item in segs.range(prefix.as_str()..).map_err(storage)? {
            let (k, v) = item.map_err(storage)?;
            if !k.value().starts_with(&prefix) {
                break;
            }
            let meta: SegmentMeta = serde_json::from_str(v.value()).map_err(|e| {
                CatalogError::Storage(format!(
                    "segment metadata '{}' is unreadable: {e}",
                    k.value()
                ))
            })?;
            out.push(meta);
        }
        Ok(out)
    }

    /// Adds segments (e.g. IN_PROGRESS segments of newly found partitions). An existing
    /// segment of the same name, or a second IN_PROGRESS segment for a partition, is an
    /// error and nothing is written.
    pub fn add_segments(
        &self,
        name_with_type: &str,
        metas: &[SegmentMeta],
    ) -> Result<(), CatalogError> {
        let existing = self.segments(name_with_type)?;
        let txn = self.db.begin_write().map_err(storage)?;
        insert_new_segments(&txn, name_with_type, &existing, metas)?;
        txn.commit().map_err(storage)
    }

    /// Commits a segment: `done` (status DONE with its end offset) replaces the IN_PROGRESS
    /// segment of the same name, and `next` (IN_PROGRESS, starting at `done`'s end offset)
    /// is created, in one transaction. Fails without writing anything if the stored segment
    /// is not IN_PROGRESS or the offsets do not chain.
    pub fn commit_segment(
        &self,
        name_with_type: &str,
        done: &SegmentMeta,
        next: Option<&SegmentMeta>,
    ) -> Result<(), CatalogError> {
        let end = done.end_offset.as_deref().ok_or_else(|| {
            CatalogError::Conflict(format!("segment '{}' has no end offset", done.segment_name))
        })?;
        if let Some(n) = next {
            if n.start_offset != end || n.partition != done.partition {
                return Err(CatalogError::Conflict(format!(
                    "next segment '{}' must start at {end} on partition {}",
                    n.segment_name, done.partition
                )));
            }
        }
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut segs = txn.open_table(SEGMENTS).map_err(storage)?;
            let key = seg_key(name_with_type, &done.segment_name);
            let stored: SegmentMeta = {
                let v = segs.get(key.as_str()).map_err(storage)?.ok_or_else(|| {
                    CatalogError::NotFound(format!("segment '{}'", done.segment_name))
                })?;
                serde_json::from_str(v.value()).map_err(storage)?
            };
            if stored.status != SegmentStatus::InProgress
                || stored.start_offset != done.start_offset
            {
                return Err(CatalogError::Conflict(format!(
                    "segment '{}' is not the consuming segment starting at {}",
                    done.segment_name, done.start_offset
                )));
            }
            let json = serde_json::to_string(done).map_err(storage)?;
            segs.insert(key.as_str(), json.as_str()).map_err(storage)?;
            if let Some(n) = next {
                let json = serde_json::to_string(n).map_err(storage)?;
                segs.insert(
                    seg_key(name_with_type, &n.segment_name).as_str(),
                    json.as_str(),
                )
                .map_err(storage)?;
            }
        }
        // A crash here leaves nothing: the transaction is not durable until commit returns.
        riffle_common::failpoint("catalog.inside_commit");
        txn.commit().map_err(storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str, p: u32, seq: u32, start: &str) -> SegmentMeta {
        SegmentMeta {
            segment_name: name.into(),
            table_name: "t_REALTIME".into(),
            partition: p,
            sequence: seq,
            status: SegmentStatus::InProgress,
            start_offset: start.into(),
            end_offset: None,
            creation_time_ms: 1,
            flush_threshold_rows: None,
            total_docs: None,
            extra: BTreeMap::new(),
        }
    }

    #[test]
    fn test_table_lifecycle_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.redb");
        {
            let c = Catalog::open(&path).unwrap();
            c.put_schema("t", "{}", false).unwrap();
            assert!(matches!(
                c.put_schema("t", "{}", false),
                Err(CatalogError::AlreadyExists(_))
            ));
            c.create_table(
                "t_REALTIME",
                "{\"a\":1}",
                None,
                &[meta("t__0__0__x", 0, 0, "5")],
            )
            .unwrap();
            assert!(matches!(
                c.create_table("t_REALTIME", "{}", None, &[]),
                Err(CatalogError::AlreadyExists(_))
            ));
            assert!(matches!(
                c.delete_schema("t"),
                Err(CatalogError::Conflict(_))
            ));
        }
        let c = Catalog::open(&path).unwrap();
        assert_eq!(c.table("t_REALTIME").unwrap().as_deref(), Some("{\"a\":1}"));
        let segs = c.segments("t_REALTIME").unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].start_offset, "5");
        assert!(matches!(
            c.add_segments("t_REALTIME", &[meta("t__0__1__x", 0, 1, "9")]),
            Err(CatalogError::Conflict(_))
        ));
        c.add_segments("t_REALTIME", &[meta("t__1__0__x", 1, 0, "0")])
            .unwrap();
        assert_eq!(c.segments("t_REALTIME").unwrap().len(), 2);
        c.delete_table("t_REALTIME").unwrap();
        assert!(c.segments("t_REALTIME").unwrap().is_empty());
        c.delete_schema("t").unwrap();
    }

    #[test]
    fn test_commit_chains_offsets_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::open(&dir.path().join("c.redb")).unwrap();
        c.create_table("t_REALTIME", "{}", None, &[meta("s0", 0, 0, "0")])
            .unwrap();
        let mut done = meta("s0", 0, 0, "0");
        done.status = SegmentStatus::Done;
        done.end_offset = Some("10".into());
        // A next segment that does not start at the end offset is refused, nothing written.
        assert!(c
            .commit_segment("t_REALTIME", &done, Some(&meta("s1", 0, 1, "11")))
            .is_err());
        assert_eq!(
            c.segments("t_REALTIME").unwrap()[0].status,
            SegmentStatus::InProgress
        );
        c.commit_segment("t_REALTIME", &done, Some(&meta("s1", 0, 1, "10")))
            .unwrap();
        let segs = c.segments("t_REALTIME").unwrap();
        assert_eq!(segs[0].status, SegmentStatus::Done);
        assert_eq!(segs[1].start_offset, "10");
        // Committing twice is refused.
        assert!(c.commit_segment("t_REALTIME", &done, None).is_err());
    }
}
