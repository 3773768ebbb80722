//! The catalog: schemas, table configs and segment metadata, in one transactional store.
//!
//! The embedded catalog is one `redb` file (`catalog.redb`) in the data directory: ACID
//! transactions, crash-safe, nothing to install. It is the only durable checkpoint of
//! ingestion: the start offset of each partition's IN_PROGRESS (consuming) segment says
//! where consumption resumes after a restart; rows of a consuming segment are never
//! checkpointed and are re-read.
//!
//! Only the controller role changes the catalog; everything it stores and returns is typed
//! ([`TableConfig`], [`Schema`], [`SegmentMeta`], [`TableState`]). Its redb tables hold JSON
//! text, so that they can be read with any tool:
//! - `schemas`: schema name -> schema JSON
//! - `tables`: table name with type (`t_REALTIME`) -> table config JSON (as Pinot returns it)
//! - `segments`: `<table name with type>/<segment name>` -> [`SegmentMeta`] JSON
//! - `table_state`: table name with type -> [`TableState`] JSON (pause flag and its reason)
//! - `dead_letters`: `<table name with type>/<segment name>` -> the JSON array of the
//!   messages of that committed segment's offsets that could not be decoded or transformed
//!   (each a JSON object; the server role defines its fields)
//!
//! Segment metadata (list, add, commit, push, delete) is in `segments.rs`.
//!
//! The records' exact text is pinned by `tests/data/golden_records.json`; records written by
//! earlier versions keep loading.
//!
//! Invariants:
//! - a table and its first IN_PROGRESS segments are created in one transaction;
//! - a segment commit ([`Catalog::commit_segment`]) marks the segment DONE with its end offset
//!   and creates the next IN_PROGRESS segment starting at that end offset in one transaction,
//!   so committed ranges of a partition are contiguous and never overlap;
//! - at most one IN_PROGRESS segment per partition;
//! - a committed segment's dead letters are written in its commit's transaction, so they
//!   are exactly the failed messages of its offset range: never lost, never twice.

mod records;
mod segments;

pub use records::{Autotune, Pushed, SegmentMeta, SegmentStatus, StopReason, TableState};

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};
use riffle_common::{BoxError, ClassifyError, ErrorKind, TableName, TableNameWithType, TableType};
use riffle_config::{Schema, TableConfig};

const SCHEMAS: TableDefinition<&str, &str> = TableDefinition::new("schemas");
const TABLES: TableDefinition<&str, &str> = TableDefinition::new("tables");
const SEGMENTS: TableDefinition<&str, &str> = TableDefinition::new("segments");
const TABLE_STATE: TableDefinition<&str, &str> = TableDefinition::new("table_state");
const DEAD_LETTERS: TableDefinition<&str, &str> = TableDefinition::new("dead_letters");

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
    /// A stored record cannot be read.
    #[error("{what} is unreadable")]
    Corrupt {
        /// The record.
        what: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The store failed (disk, database).
    #[error("catalog storage: {context}")]
    Storage {
        /// What was being done.
        context: String,
        /// The database's error.
        #[source]
        source: BoxError,
    },
}

impl ClassifyError for CatalogError {
    fn error_kind(&self) -> ErrorKind {
        match self {
            CatalogError::NotFound(_) => ErrorKind::NotFound,
            CatalogError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            CatalogError::Conflict(_) => ErrorKind::Conflict,
            CatalogError::Corrupt { .. } => ErrorKind::Corrupt,
            CatalogError::Storage { .. } => ErrorKind::Io,
        }
    }
}

/// Maps a database error, keeping it as the source.
fn storage<E: Into<redb::Error>>(context: &'static str) -> impl FnOnce(E) -> CatalogError {
    move |e| CatalogError::Storage {
        context: context.into(),
        source: Box::new(e.into()),
    }
}

fn corrupt(what: String) -> impl FnOnce(serde_json::Error) -> CatalogError {
    move |e| CatalogError::Corrupt {
        what,
        source: Box::new(e),
    }
}

fn to_json<T: serde::Serialize>(what: &str, v: &T) -> Result<String, CatalogError> {
    serde_json::to_string(v).map_err(|e| CatalogError::Corrupt {
        what: format!("{what} (while writing)"),
        source: Box::new(e),
    })
}

/// The embedded catalog.
pub struct Catalog {
    db: Database,
    /// Dropped after `db` (fields drop in order): marks the database closed, its file lock
    /// released.
    closed: SetOnDrop,
}

/// Sets its flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Set once a [`Catalog`] and its database file are closed ([`Catalog::closed_flag`]).
#[derive(Clone, Debug)]
pub struct ClosedFlag(Arc<AtomicBool>);

impl ClosedFlag {
    /// Whether the catalog is closed (the file can be opened again).
    pub fn is_closed(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Catalog")
    }
}

fn seg_key(table: &TableNameWithType, segment: &str) -> String {
    format!("{table}/{segment}")
}

fn read_meta(key: &str, json: &str) -> Result<SegmentMeta, CatalogError> {
    serde_json::from_str(json).map_err(corrupt(format!("segment metadata '{key}'")))
}

/// Writes new segments of an existing table in `txn`. A segment of the same name, or a
/// second IN_PROGRESS segment for a partition, is an error (the caller then drops the
/// transaction, so nothing is written).
fn insert_new_segments(
    txn: &redb::WriteTransaction,
    table: &TableNameWithType,
    existing: &[SegmentMeta],
    metas: &[SegmentMeta],
) -> Result<(), CatalogError> {
    let tables = txn.open_table(TABLES).map_err(storage("open tables"))?;
    let name = table.to_string();
    if tables
        .get(name.as_str())
        .map_err(storage("read table"))?
        .is_none()
    {
        return Err(CatalogError::NotFound(format!("table '{table}'")));
    }
    let mut segs = txn.open_table(SEGMENTS).map_err(storage("open segments"))?;
    for m in metas {
        let key = seg_key(table, &m.segment_name);
        if segs
            .get(key.as_str())
            .map_err(storage("read segment"))?
            .is_some()
        {
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
                "partition {} of '{table}' already has a consuming segment",
                m.partition
            )));
        }
        let json = to_json("segment metadata", m)?;
        segs.insert(key.as_str(), json.as_str())
            .map_err(storage("write segment"))?;
    }
    Ok(())
}

impl Catalog {
    /// A flag set once this catalog is dropped and its file closed: the last holder may
    /// drop it on another thread, after which closing takes a moment (a final write).
    pub fn closed_flag(&self) -> ClosedFlag {
        ClosedFlag(self.closed.0.clone())
    }

    /// Opens (or creates) the catalog file.
    pub fn open(path: &Path) -> Result<Catalog, CatalogError> {
        let db = Database::create(path).map_err(|e| CatalogError::Storage {
            context: format!("open {}", path.display()),
            source: Box::new(redb::Error::from(e)),
        })?;
        let txn = db.begin_write().map_err(storage("begin"))?;
        {
            txn.open_table(SCHEMAS).map_err(storage("open schemas"))?;
            txn.open_table(TABLES).map_err(storage("open tables"))?;
            txn.open_table(SEGMENTS).map_err(storage("open segments"))?;
            txn.open_table(TABLE_STATE)
                .map_err(storage("open table state"))?;
            txn.open_table(DEAD_LETTERS)
                .map_err(storage("open dead letters"))?;
        }
        txn.commit().map_err(storage("commit"))?;
        Ok(Catalog {
            db,
            closed: SetOnDrop(Arc::default()),
        })
    }

    fn get(
        &self,
        def: TableDefinition<&str, &str>,
        key: &str,
    ) -> Result<Option<String>, CatalogError> {
        let txn = self.db.begin_read().map_err(storage("begin read"))?;
        let t = txn.open_table(def).map_err(storage("open"))?;
        Ok(t.get(key)
            .map_err(storage("read"))?
            .map(|v| v.value().to_string()))
    }

    fn keys(&self, def: TableDefinition<&str, &str>) -> Result<Vec<String>, CatalogError> {
        let txn = self.db.begin_read().map_err(storage("begin read"))?;
        let t = txn.open_table(def).map_err(storage("open"))?;
        let mut out = Vec::new();
        for item in t.iter().map_err(storage("list"))? {
            let (k, _) = item.map_err(storage("list"))?;
            out.push(k.value().to_string());
        }
        Ok(out)
    }

    /// A schema.
    pub fn schema(&self, name: &TableName) -> Result<Option<Schema>, CatalogError> {
        self.get(SCHEMAS, name.as_str())?
            .map(|json| {
                Schema::from_json(json.as_bytes()).map_err(|e| CatalogError::Corrupt {
                    what: format!("schema '{name}'"),
                    source: Box::new(e),
                })
            })
            .transpose()
    }

    /// Schema names, sorted.
    pub fn schema_names(&self) -> Result<Vec<String>, CatalogError> {
        self.keys(SCHEMAS)
    }

    /// Stores a schema under its name; without `overwrite` an existing one is an error.
    pub fn put_schema(
        &self,
        name: &TableName,
        schema: &Schema,
        overwrite: bool,
    ) -> Result<(), CatalogError> {
        let json = to_json("schema", &schema.to_json())?;
        let txn = self.db.begin_write().map_err(storage("begin"))?;
        {
            let mut t = txn.open_table(SCHEMAS).map_err(storage("open schemas"))?;
            if !overwrite
                && t.get(name.as_str())
                    .map_err(storage("read schema"))?
                    .is_some()
            {
                return Err(CatalogError::AlreadyExists(format!("schema '{name}'")));
            }
            t.insert(name.as_str(), json.as_str())
                .map_err(storage("write schema"))?;
        }
        txn.commit().map_err(storage("commit"))
    }

    /// Deletes a schema; an error if a table still uses it.
    pub fn delete_schema(&self, name: &TableName) -> Result<(), CatalogError> {
        let txn = self.db.begin_write().map_err(storage("begin"))?;
        {
            let tables = txn.open_table(TABLES).map_err(storage("open tables"))?;
            for t in [TableType::Offline, TableType::Realtime] {
                let full = name.with_type(t).to_string();
                if tables
                    .get(full.as_str())
                    .map_err(storage("read table"))?
                    .is_some()
                {
                    return Err(CatalogError::Conflict(format!(
                        "cannot delete schema '{name}': table '{full}' uses it"
                    )));
                }
            }
            let mut t = txn.open_table(SCHEMAS).map_err(storage("open schemas"))?;
            if t.remove(name.as_str())
                .map_err(storage("delete schema"))?
                .is_none()
            {
                return Err(CatalogError::NotFound(format!("schema '{name}'")));
            }
        }
        txn.commit().map_err(storage("commit"))
    }

    /// A table's config.
    pub fn table(&self, name: &TableNameWithType) -> Result<Option<TableConfig>, CatalogError> {
        self.get(TABLES, &name.to_string())?
            .map(|json| {
                TableConfig::from_json(json.as_bytes()).map_err(|e| CatalogError::Corrupt {
                    what: format!("table config '{name}'"),
                    source: Box::new(e),
                })
            })
            .transpose()
    }

    /// Every table's name, sorted. A stored name that is not acceptable (written by an
    /// older version) is returned in the second list, as written.
    pub fn table_names(&self) -> Result<(Vec<TableNameWithType>, Vec<String>), CatalogError> {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for k in self.keys(TABLES)? {
            match TableNameWithType::parse(&k) {
                Ok(n) => ok.push(n),
                Err(_) => bad.push(k),
            }
        }
        Ok((ok, bad))
    }

    /// Creates a table, optionally its schema (`POST /tableConfigs`), and its first
    /// segments, in one transaction.
    pub fn create_table(
        &self,
        table: &TableConfig,
        schema: Option<&Schema>,
        segments: &[SegmentMeta],
    ) -> Result<(), CatalogError> {
        let name = table.name_with_type();
        let key = name.to_string();
        let config_json = to_json("table config", &table.to_json())?;
        let schema_json = schema
            .map(|s| to_json("schema", &s.to_json()))
            .transpose()?;
        let txn = self.db.begin_write().map_err(storage("begin"))?;
        {
            let mut t = txn.open_table(TABLES).map_err(storage("open tables"))?;
            if t.get(key.as_str())
                .map_err(storage("read table"))?
                .is_some()
            {
                return Err(CatalogError::AlreadyExists(format!("table '{name}'")));
            }
            t.insert(key.as_str(), config_json.as_str())
                .map_err(storage("write table"))?;
            if let Some(json) = &schema_json {
                let mut s = txn.open_table(SCHEMAS).map_err(storage("open schemas"))?;
                s.insert(table.raw_name(), json.as_str())
                    .map_err(storage("write schema"))?;
            }
            let mut segs = txn.open_table(SEGMENTS).map_err(storage("open segments"))?;
            for m in segments {
                let json = to_json("segment metadata", m)?;
                segs.insert(seg_key(&name, &m.segment_name).as_str(), json.as_str())
                    .map_err(storage("write segment"))?;
            }
        }
        txn.commit().map_err(storage("commit"))
    }

    /// Replaces an existing table's config.
    pub fn update_table(&self, table: &TableConfig) -> Result<(), CatalogError> {
        let name = table.name_with_type();
        let key = name.to_string();
        let config_json = to_json("table config", &table.to_json())?;
        let txn = self.db.begin_write().map_err(storage("begin"))?;
        {
            let mut t = txn.open_table(TABLES).map_err(storage("open tables"))?;
            if t.get(key.as_str())
                .map_err(storage("read table"))?
                .is_none()
            {
                return Err(CatalogError::NotFound(format!("table '{name}'")));
            }
            t.insert(key.as_str(), config_json.as_str())
                .map_err(storage("write table"))?;
        }
        txn.commit().map_err(storage("commit"))
    }

    /// Deletes a table, all its segment metadata and its state.
    pub fn delete_table(&self, name: &TableNameWithType) -> Result<(), CatalogError> {
        self.delete_table_key(&name.to_string())
    }

    /// Deletes a table stored under a name this version does not accept (see
    /// [`Catalog::table_names`]).
    pub fn delete_table_key(&self, key: &str) -> Result<(), CatalogError> {
        let txn = self.db.begin_write().map_err(storage("begin"))?;
        {
            let mut t = txn.open_table(TABLES).map_err(storage("open tables"))?;
            if t.remove(key).map_err(storage("delete table"))?.is_none() {
                return Err(CatalogError::NotFound(format!("table '{key}'")));
            }
            let mut segs = txn.open_table(SEGMENTS).map_err(storage("open segments"))?;
            let prefix = format!("{key}/");
            let keys: Vec<String> = segs
                .range(prefix.as_str()..)
                .map_err(storage("list segments"))?
                .map_while(|r| match r {
                    Ok((k, _)) if k.value().starts_with(&prefix) => Some(Ok(k.value().to_string())),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_, _>>()
                .map_err(storage("list segments"))?;
            for k in keys {
                segs.remove(k.as_str()).map_err(storage("delete segment"))?;
            }
            let mut st = txn
                .open_table(TABLE_STATE)
                .map_err(storage("open table state"))?;
            st.remove(key).map_err(storage("delete table state"))?;
            let mut dl = txn
                .open_table(DEAD_LETTERS)
                .map_err(storage("open dead letters"))?;
            let keys: Vec<String> = dl
                .range(prefix.as_str()..)
                .map_err(storage("list dead letters"))?
                .map_while(|r| match r {
                    Ok((k, _)) if k.value().starts_with(&prefix) => Some(Ok(k.value().to_string())),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_, _>>()
                .map_err(storage("list dead letters"))?;
            for k in keys {
                dl.remove(k.as_str())
                    .map_err(storage("delete dead letters"))?;
            }
        }
        txn.commit().map_err(storage("commit"))
    }

    /// Every committed segment's dead letters of a table: `(segment name, JSON array)`.
    pub fn dead_letters(
        &self,
        name: &TableNameWithType,
    ) -> Result<Vec<(String, String)>, CatalogError> {
        let txn = self.db.begin_read().map_err(storage("begin read"))?;
        let dl = txn
            .open_table(DEAD_LETTERS)
            .map_err(storage("open dead letters"))?;
        let prefix = format!("{name}/");
        let mut out = Vec::new();
        for item in dl
            .range(prefix.as_str()..)
            .map_err(storage("list dead letters"))?
        {
            let (k, v) = item.map_err(storage("list dead letters"))?;
            let Some(segment) = k.value().strip_prefix(&prefix) else {
                break;
            };
            out.push((segment.to_string(), v.value().to_string()));
        }
        Ok(out)
    }

    /// Deletes a segment's dead letters (retention); whether there were any.
    pub fn delete_dead_letters(
        &self,
        name: &TableNameWithType,
        segment: &str,
    ) -> Result<bool, CatalogError> {
        let txn = self.db.begin_write().map_err(storage("begin"))?;
        let removed = {
            let mut dl = txn
                .open_table(DEAD_LETTERS)
                .map_err(storage("open dead letters"))?;
            let removed = dl
                .remove(seg_key(name, segment).as_str())
                .map_err(storage("delete dead letters"))?
                .is_some();
            removed
        };
        txn.commit().map_err(storage("commit"))?;
        Ok(removed)
    }

    /// A table's consumption state (not paused when never set).
    pub fn table_state(&self, name: &TableNameWithType) -> Result<TableState, CatalogError> {
        match self.get(TABLE_STATE, &name.to_string())? {
            None => Ok(TableState::default()),
            Some(json) => {
                serde_json::from_str(&json).map_err(corrupt(format!("state of table '{name}'")))
            }
        }
    }

    /// Sets a table's consumption state and adds `segments` (the IN_PROGRESS segments a
    /// resume creates) in one transaction.
    pub fn set_table_state(
        &self,
        name: &TableNameWithType,
        state: &TableState,
        segments: &[SegmentMeta],
    ) -> Result<(), CatalogError> {
        let existing = self.segments(name)?;
        let json = to_json("table state", state)?;
        let txn = self.db.begin_write().map_err(storage("begin"))?;
        {
            insert_new_segments(&txn, name, &existing, segments)?;
            let mut st = txn
                .open_table(TABLE_STATE)
                .map_err(storage("open table state"))?;
            st.insert(name.to_string().as_str(), json.as_str())
                .map_err(storage("write table state"))?;
        }
        txn.commit().map_err(storage("commit"))
    }

    /// The raw JSON text stored for a table config.
    pub fn table_record(&self, name: &TableNameWithType) -> Result<Option<String>, CatalogError> {
        self.get(TABLES, &name.to_string())
    }

    /// The raw JSON text stored for a table's state.
    pub fn table_state_record(
        &self,
        name: &TableNameWithType,
    ) -> Result<Option<String>, CatalogError> {
        self.get(TABLE_STATE, &name.to_string())
    }
}

#[cfg(test)]
mod tests;
