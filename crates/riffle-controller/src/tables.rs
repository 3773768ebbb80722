//! [`TableManager`]: the controller role. It owns every change to the catalog (schemas,
//! tables, segments, pause state) and every segment decision, and hands the server role
//! what to run. Each table config is parsed once where it enters, checked once against its
//! schema, and resolved once into a [`TableSpec`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use riffle_catalog::{SegmentMeta, SegmentStatus};
use riffle_common::{ErrorKind, TableName, TableNameWithType, TableType};
use riffle_config::{Schema, TableConfig};
use riffle_ingest::{partition_id, ServerRole, TableAssignment, TableSpec};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use crate::context::ControllerContext;
use crate::error::ControllerError;
use crate::models::ForceCommitJob;
use crate::spec::{resolve, resolve_after, startable, stream_partitions};
use crate::store::CatalogStore;

/// The controller role.
pub struct TableManager {
    pub(crate) ctx: Arc<ControllerContext>,
    pub(crate) jobs: Mutex<HashMap<String, ForceCommitJob>>,
    discovery: Mutex<HashMap<TableNameWithType, CancellationToken>>,
    /// Pushes are recorded one at a time (the check of what a push replaces and the
    /// catalog write stay together).
    pub(crate) push_lock: tokio::sync::Mutex<()>,
}

type Result<T> = std::result::Result<T, ControllerError>;

impl TableManager {
    /// A controller over `ctx`; call [`TableManager::start_all`] to start the stored tables.
    pub fn new(ctx: ControllerContext) -> Arc<TableManager> {
        Arc::new(TableManager {
            ctx: Arc::new(ctx),
            jobs: Mutex::new(HashMap::new()),
            discovery: Mutex::new(HashMap::new()),
            push_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The catalog.
    pub fn store(&self) -> &CatalogStore {
        &self.ctx.store
    }

    /// The server role this controller hands tables to.
    pub fn server(&self) -> &Arc<ServerRole> {
        &self.ctx.server
    }

    // ---- schemas -------------------------------------------------------------------

    /// Schema names, sorted.
    pub async fn schema_names(&self) -> Result<Vec<String>> {
        self.ctx.store.run(|c| c.schema_names()).await
    }

    /// A schema, if stored.
    pub async fn schema(&self, name: &TableName) -> Result<Option<Schema>> {
        let n = name.clone();
        self.ctx.store.run(move |c| c.schema(&n)).await
    }

    /// Stores a schema (replacing one of the same name when `overwrite`). A schema that
    /// replaces the schema of running tables must keep every column as it was (adding
    /// columns is the change Pinot allows); the tables then follow it without a restart.
    pub async fn put_schema(&self, schema: Schema, overwrite: bool) -> Result<()> {
        let name = schema_name(&schema)?;
        let old = if overwrite {
            self.schema(&name).await?
        } else {
            None
        };
        let mut evolved = Vec::new();
        if let Some(old) = &old {
            check_compatible(old, &schema)?;
            let schema = Arc::new(schema.clone());
            for t in [TableType::Realtime, TableType::Offline] {
                let tn = name.with_type(t);
                let (Some(cfg), Some(running)) =
                    (self.table(&tn).await?, self.ctx.server.spec(&tn))
                else {
                    continue;
                };
                cfg.validate(&schema)
                    .map_err(|e| ControllerError::wrap("Invalid schema for table", e))?;
                let (spec, _) = resolve_after(
                    Arc::new(cfg),
                    schema.clone(),
                    &self.ctx.streams,
                    &self.ctx.stream_ctx,
                    self.ctx.transforms,
                    Some(&running.columns),
                )
                .map_err(|e| prefixed("Invalid schema for table", e))?;
                evolved.push(Arc::new(spec));
            }
        }
        self.ctx
            .store
            .run(move |c| c.put_schema(&name, &schema, overwrite))
            .await?;
        for spec in evolved {
            if let Err(e) = self.ctx.server.evolve_table(spec.clone()) {
                warn!(table = %spec.config.name_with_type(), error = %e, "the table did not follow its new schema; it will at its next start");
            }
        }
        Ok(())
    }

    /// Deletes a schema no table uses.
    pub async fn delete_schema(&self, name: &TableName) -> Result<()> {
        let n = name.clone();
        self.ctx.store.run(move |c| c.delete_schema(&n)).await
    }

    // ---- tables --------------------------------------------------------------------

    /// Every table's name, sorted.
    pub async fn table_names(&self) -> Result<Vec<TableNameWithType>> {
        Ok(self.ctx.store.run(|c| c.table_names()).await?.0)
    }

    /// A table's config, if stored.
    pub async fn table(&self, name: &TableNameWithType) -> Result<Option<TableConfig>> {
        let n = name.clone();
        self.ctx.store.run(move |c| c.table(&n)).await
    }

    /// The stored types of a raw table name (`wanted` limits them).
    pub async fn table_types(
        &self,
        raw: &TableName,
        wanted: Option<TableType>,
    ) -> Result<Vec<(TableType, TableConfig)>> {
        let mut out = Vec::new();
        for t in [TableType::Offline, TableType::Realtime] {
            if wanted.is_some_and(|w| w != t) {
                continue;
            }
            if let Some(cfg) = self.table(&raw.with_type(t)).await? {
                out.push((t, cfg));
            }
        }
        Ok(out)
    }

    /// Creates a table (with its schema in the same transaction when `store_schema`):
    /// checks it against the schema, resolves its streams, finds its partitions and their
    /// start offsets, records it with its first consuming segments, and starts it.
    /// Returns warnings about stream keys that are accepted but not honoured.
    pub async fn create_table(
        self: &Arc<Self>,
        table: TableConfig,
        schema: Schema,
        store_schema: bool,
    ) -> Result<Vec<String>> {
        table
            .validate(&schema)
            .map_err(|e| ControllerError::wrap("Invalid table config", e))?;
        let name = table.name_with_type();
        self.check_hybrid(&table, &schema).await?;
        if self.table(&name).await?.is_some() {
            return Err(ControllerError::new(
                ErrorKind::AlreadyExists,
                format!("Table config for {name} already exists. If this is unexpected, try deleting the table to remove all metadata associated with it."),
            ));
        }
        let (spec, warnings) = resolve(
            Arc::new(table),
            Arc::new(schema),
            &self.ctx.streams,
            &self.ctx.stream_ctx,
            self.ctx.transforms,
        )
        .map_err(|e| prefixed("Invalid table config", e))?;
        let spec = Arc::new(spec);
        let first = self
            .first_segments(&spec)
            .await
            .map_err(|e| prefixed("Invalid table config", e))?;
        let (cfg, sch) = (spec.config.clone(), spec.schema.clone());
        let metas = first.clone();
        self.ctx
            .store
            .run(move |c| c.create_table(&cfg, store_schema.then_some(&*sch), &metas))
            .await?;
        for w in &warnings {
            warn!(table = %name, warning = %w, "table config");
        }
        self.host(spec, first, Vec::new(), false)
            .await
            .map_err(|e| prefixed("Table created but consumption did not start", e))?;
        Ok(warnings)
    }

    /// The first consuming segment of each partition of a new table, at the offset its
    /// criteria say.
    async fn first_segments(&self, spec: &TableSpec) -> Result<Vec<SegmentMeta>> {
        let mut starts = Vec::new();
        for s in &spec.streams {
            let (mut md, ids, timeout) =
                stream_partitions(s, &self.ctx.stream_ctx, Duration::MAX).await?;
            // Children of shards still listed start once their parents have ended.
            let ids = startable(md.as_mut(), s.index, ids, timeout, |_| false).await?;
            for p in ids {
                let start = md.offset_for(p, &s.config.offset_criteria, timeout).await?;
                starts.push((partition_id(s.index, p.0), start));
            }
        }
        Ok(self.ctx.segments.first_segments(spec, starts))
    }

    /// The second half of a hybrid table needs a time column whose values convert to epoch
    /// milliseconds (an epoch or TIMESTAMP column): the time boundary is a value of it.
    async fn check_hybrid(&self, table: &TableConfig, schema: &Schema) -> Result<()> {
        let name = table.name_with_type();
        let other = match name.table_type() {
            TableType::Offline => TableType::Realtime,
            TableType::Realtime => TableType::Offline,
        };
        if self.table(&name.raw().with_type(other)).await?.is_none() {
            return Ok(());
        }
        let time = table.time_column().ok_or_else(|| {
            ControllerError::bad_request(format!(
                "Invalid table config: {name} would make a hybrid table with {}, which needs segmentsConfig.timeColumnName",
                name.raw().with_type(other)
            ))
        })?;
        let columns = schema
            .columns()
            .map_err(|e| ControllerError::wrap("Invalid schema", e))?;
        let ok = columns.iter().any(|c| {
            c.name == time
                && c.single_value
                && (c.data_type == riffle_config::DataType::Timestamp
                    || c.format
                        .as_ref()
                        .is_some_and(|f| f.millis_to_epoch(0).is_some()))
        });
        if !ok {
            return Err(ControllerError::bad_request(format!(
                "Invalid table config: the time column '{time}' of hybrid table {} must hold epoch values or TIMESTAMPs (the time boundary is one of its values)",
                name.raw()
            )));
        }
        Ok(())
    }

    /// Replaces a table's config (checked against its schema) and restarts it from the
    /// catalog's offsets.
    pub async fn update_table(self: &Arc<Self>, table: TableConfig) -> Result<()> {
        let schema = self
            .schema(table.name())
            .await?
            .ok_or_else(|| ControllerError::not_found("Schema not found"))?;
        table
            .validate(&schema)
            .map_err(|e| ControllerError::wrap("Invalid table config", e))?;
        let name = table.name_with_type();
        let previous = self
            .table(&name)
            .await?
            .ok_or_else(|| ControllerError::not_found(format!("Table {name} does not exist")))?;
        // Everything that can refuse the new config (stream plugins, decoders) is asked
        // before it replaces the running one.
        let running = self.ctx.server.spec(&name);
        let (spec, _) = resolve_after(
            Arc::new(table.clone()),
            Arc::new(schema),
            &self.ctx.streams,
            &self.ctx.stream_ctx,
            self.ctx.transforms,
            running.as_ref().map(|s| s.columns.as_ref()),
        )
        .map_err(|e| prefixed("Invalid table config", e))?;
        let cfg = table.clone();
        self.ctx.store.run(move |c| c.update_table(&cfg)).await?;
        // Same streams: the running table follows the new config (transforms, filter,
        // indexes for the next seals) without a restart.
        if let Some(running) = running.filter(|r| same_streams(&r.config, &table)) {
            let spec = Arc::new(spec);
            match self.ctx.server.evolve_table(spec) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    warn!(table = %name, error = %e, "the table did not follow its new config; restarting it")
                }
            }
            drop(running);
        }
        // Consumption restarts from the catalog's offsets with the new config; if it does
        // not start, the previous config is stored and started again.
        self.stop_table(&name).await;
        let Err(e) = self.start_table(&name).await else {
            return Ok(());
        };
        warn!(table = %name, error = %e, "the updated table did not start; restoring its previous config");
        let old = previous.clone();
        if let Err(re) = self.ctx.store.run(move |c| c.update_table(&old)).await {
            error!(table = %name, error = %re, "cannot restore the previous table config");
        } else if let Err(re) = self.start_table(&name).await {
            error!(table = %name, error = %re, "the previous table config did not start either");
        }
        Err(prefixed(
            "Table config not changed: consumption with the new config did not start",
            e,
        ))
    }

    /// Stops and deletes one type of a table, its segments' files and deep-store objects.
    pub async fn delete_table(&self, name: &TableNameWithType) -> Result<()> {
        self.stop_table(name).await;
        let n = name.clone();
        self.ctx.store.run(move |c| c.delete_table(&n)).await?;
        let other = match name.table_type() {
            TableType::Realtime => TableType::Offline,
            TableType::Offline => TableType::Realtime,
        };
        let last_half = self.table(&name.raw().with_type(other)).await?.is_none();
        self.ctx.server.drop_table_files(name, last_half);
        self.refresh_time_boundary(name.raw()).await;
        if let Err(e) = self
            .ctx
            .deep_store
            .remove_unreferenced(&name.to_string(), &HashSet::new())
            .await
        {
            warn!(table = %name, error = %e, "cannot remove the table's deep-store objects");
        }
        info!(table = %name, "table deleted");
        Ok(())
    }

    /// Starts every stored table (at node start). A table that cannot start is logged and
    /// skipped; the others still start.
    pub async fn start_all(self: &Arc<Self>) {
        let (names, bad) = match self.ctx.store.run(|c| c.table_names()).await {
            Ok(n) => n,
            Err(e) => {
                error!(error = %e, "cannot list tables");
                return;
            }
        };
        for key in bad {
            error!(table = %key.escape_debug(), "stored table name is not acceptable; table not started");
        }
        for name in names {
            if let Err(e) = self.start_table(&name).await {
                error!(table = %name, error = %e, "table not started");
            }
        }
    }

    /// Starts a stored table: resolves its config, removes deep-store objects no committed
    /// segment references, and hands it to the server role with its segments.
    pub async fn start_table(self: &Arc<Self>, name: &TableNameWithType) -> Result<()> {
        let table = self
            .table(name)
            .await?
            .ok_or_else(|| ControllerError::not_found(format!("Table {name} does not exist")))?;
        let schema = self.schema(table.name()).await?.ok_or_else(|| {
            ControllerError::new(ErrorKind::Corrupt, "schema missing; table not started")
        })?;
        let (spec, _) = resolve(
            Arc::new(table),
            Arc::new(schema),
            &self.ctx.streams,
            &self.ctx.stream_ctx,
            self.ctx.transforms,
        )?;
        let n = name.clone();
        let segments = self.ctx.store.run(move |c| c.segments(&n)).await?;
        let paused = {
            let n = name.clone();
            self.ctx.store.run(move |c| c.table_state(&n)).await?.paused
        };
        let (committed, consuming): (Vec<_>, Vec<_>) = segments
            .into_iter()
            .partition(|m| m.status == SegmentStatus::Done);
        self.remove_deep_store_orphans(name, &committed).await;
        self.host(Arc::new(spec), consuming, committed, paused)
            .await
    }

    /// Registers a table's segments and hands it to the server role; starts partition
    /// discovery for a REALTIME table.
    async fn host(
        self: &Arc<Self>,
        spec: Arc<TableSpec>,
        mut consuming: Vec<SegmentMeta>,
        committed: Vec<SegmentMeta>,
        paused: bool,
    ) -> Result<()> {
        let name = spec.config.name_with_type();
        let dead_letters = if spec.streams.iter().any(|s| s.config.dead_letter.is_some()) {
            let n = name.clone();
            self.ctx.store.run(move |c| c.dead_letters(&n)).await?
        } else {
            Vec::new()
        };
        let all: Vec<SegmentMeta> = committed.iter().chain(&consuming).cloned().collect();
        self.ctx.segments.register(&spec, &all);
        for m in &mut consuming {
            self.ctx.segments.fill_threshold(&name, m);
        }
        let realtime = name.table_type() == TableType::Realtime;
        self.ctx
            .server
            .host_table(TableAssignment {
                spec,
                committed,
                consuming,
                paused,
                dead_letters,
            })
            .await;
        self.refresh_time_boundary(name.raw()).await;
        if realtime {
            let cancel = CancellationToken::new();
            self.discovery.lock().insert(name.clone(), cancel.clone());
            tokio::spawn(crate::discovery::run(self.ctx.clone(), name, cancel));
        }
        Ok(())
    }

    /// Stops a table's consumption and discovery on this node.
    pub async fn stop_table(&self, name: &TableNameWithType) {
        if let Some(c) = self.discovery.lock().remove(name) {
            c.cancel();
        }
        self.ctx.server.stop_table(name).await;
        self.ctx.segments.unregister(name);
    }

    /// Stops every table (the catalog keeps them).
    pub async fn shutdown(&self) {
        let cancels: Vec<CancellationToken> =
            self.discovery.lock().drain().map(|(_, c)| c).collect();
        for c in cancels {
            c.cancel();
        }
        self.ctx.server.shutdown().await;
    }

    /// Removes deep-store objects of a table that no committed segment references
    /// (uploads of segments that never committed). Runs before the table's partitions
    /// start, so no upload is in flight.
    async fn remove_deep_store_orphans(&self, name: &TableNameWithType, committed: &[SegmentMeta]) {
        // A pushed segment that replaced another lives under `<segment>.<crc>`: the last
        // part of its download URL.
        let keep: HashSet<String> = committed
            .iter()
            .map(|m| m.segment_name.clone())
            .chain(committed.iter().filter_map(|m| {
                let url = m.download_url.as_deref()?;
                url.rsplit('/').next().map(str::to_string)
            }))
            .collect();
        match self
            .ctx
            .deep_store
            .remove_unreferenced(&name.to_string(), &keep)
            .await
        {
            Ok(removed) => {
                for uri in removed {
                    info!(table = %name, uri = %uri, "removed uncommitted deep-store object");
                }
            }
            Err(e) => {
                warn!(table = %name, error = %e, "cannot clean the deep store; uncommitted uploads stay until the next start");
            }
        }
    }
}

/// A schema's name as a table name (they must be equal).
fn schema_name(schema: &Schema) -> Result<TableName> {
    TableName::parse(&schema.schema_name)
        .map_err(|e| ControllerError::bad_request(format!("Invalid schema: $.schemaName: {e}")))
}

/// `e` with `prefix` before its message, keeping its kind.
pub(crate) fn prefixed(prefix: &str, e: ControllerError) -> ControllerError {
    ControllerError {
        message: format!("{prefix}: {}", e.message),
        ..e
    }
}

/// Whether two configs read the same streams the same way (a new config can then be
/// followed without a restart).
fn same_streams(a: &TableConfig, b: &TableConfig) -> bool {
    a.streams() == b.streams()
}

/// A schema replacing `old` keeps each of its columns: same type, single- or multi-value.
fn check_compatible(old: &Schema, new: &Schema) -> Result<()> {
    let bad = |why: String| {
        ControllerError::new(
            riffle_common::ErrorKind::BadRequest,
            format!(
                "Backward incompatible schema {}: {why}. Only adding new columns is allowed",
                new.schema_name
            ),
        )
    };
    let old_cols = old
        .columns()
        .map_err(|e| ControllerError::wrap("stored schema", e))?;
    let new_cols = new
        .columns()
        .map_err(|e| ControllerError::wrap("Invalid schema", e))?;
    for o in &old_cols {
        match new_cols.iter().find(|n| n.name == o.name) {
            None => return Err(bad(format!("column '{}' is removed", o.name))),
            Some(n) if n.data_type != o.data_type => {
                return Err(bad(format!(
                    "column '{}' changes type from {} to {}",
                    o.name,
                    o.data_type.name(),
                    n.data_type.name()
                )))
            }
            Some(n) if n.single_value != o.single_value => {
                return Err(bad(format!(
                    "column '{}' changes between single- and multi-value",
                    o.name
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}
