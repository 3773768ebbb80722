//! HTTP: Pinot's controller API (port 9000) and broker API (port 8099), in one process.
//!
//! Owns [`Server`]: it opens the data directory (catalog file `catalog.redb`, stream files
//! under `streams/`), restores every table from the catalog (consumption resumes at each
//! partition's IN_PROGRESS start offset), and serves both APIs until shut down.
//!
//! Invariants: every error leaves through [`error::ApiError`] (one mapping from error kind to
//! HTTP status); a table's catalog entry is written before its consumption starts, so what
//! is consumed is always recorded.

pub mod broker;
pub mod controller;
pub mod error;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use riffle_catalog::Catalog;
use riffle_common::TableType;
use riffle_config::{Schema, TableConfig};
use riffle_ingest::{IngestContext, IngestError, IngestManager};
use riffle_query::QueryEngine;
use riffle_segment::{SegmentRegistry, TableColumns, TableData};
use riffle_storage::DeepStore;
use riffle_stream::StreamRegistry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::cors::CorsLayer;
use tracing::{error, info};

/// How to run a server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Data directory (catalog, stream files).
    pub data_dir: PathBuf,
    /// Controller address (port 9000 by default; 0 picks a free port).
    pub controller_addr: SocketAddr,
    /// Broker address (port 8099 by default).
    pub broker_addr: SocketAddr,
    /// How often streams are checked for new partitions.
    pub discovery_interval: Duration,
    /// The deep store's URI; `None` is `file://<data dir>/deepstore`.
    pub deep_store_uri: Option<String>,
    /// Deep-store options (endpoint, region, credentials, ...).
    pub deep_store_options: std::collections::BTreeMap<String, String>,
    /// Bytes after which a consuming segment ends early.
    pub max_consuming_bytes: usize,
    /// How often retention is enforced.
    pub retention_interval: Duration,
}

impl ServerConfig {
    /// Defaults: ports 9000 and 8099 on all interfaces.
    pub fn new(data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            data_dir,
            controller_addr: SocketAddr::from(([0, 0, 0, 0], 9000)),
            broker_addr: SocketAddr::from(([0, 0, 0, 0], 8099)),
            discovery_interval: Duration::from_secs(1),
            deep_store_uri: None,
            deep_store_options: Default::default(),
            max_consuming_bytes: 1 << 30,
            retention_interval: Duration::from_secs(600),
        }
    }
}

/// What the HTTP handlers share.
pub struct AppState {
    /// The catalog.
    pub catalog: Arc<Catalog>,
    /// Ingestion.
    pub ingest: Arc<IngestManager>,
    /// Queries.
    pub query: Arc<QueryEngine>,
    /// Segments.
    pub segments: Arc<SegmentRegistry>,
    /// This server's instance name.
    pub server_name: String,
}

impl AppState {
    /// Makes a table live: REALTIME tables start consuming; OFFLINE tables become
    /// queryable (empty until batch ingestion exists).
    pub async fn activate(&self, table: &TableConfig, schema: &Schema) -> Result<(), IngestError> {
        match table.table_type {
            TableType::Realtime => self.ingest.start_table(table, schema).await,
            TableType::Offline => {
                if self.segments.table(table.raw_name()).is_none() {
                    let cols = TableColumns::new(
                        schema
                            .columns()
                            .map_err(|e| IngestError::InvalidConfig(e.to_string()))?,
                    );
                    self.segments.add_table(Arc::new(TableData::new(
                        table.raw_name(),
                        cols,
                        table.segments_config.time_column_name.clone(),
                    )));
                }
                Ok(())
            }
        }
    }
}

/// A running server.
pub struct Server {
    /// Shared state.
    pub state: Arc<AppState>,
    /// Where the controller listens.
    pub controller_addr: SocketAddr,
    /// Where the broker listens.
    pub broker_addr: SocketAddr,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Opens the data directory, restores the tables and starts both APIs.
    pub async fn start(config: ServerConfig, streams: StreamRegistry) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&config.data_dir)?;
        let catalog = Arc::new(Catalog::open(&config.data_dir.join("catalog.redb"))?);
        let segments = Arc::new(SegmentRegistry::new());
        let mut ctx =
            IngestContext::local(catalog.clone(), streams, segments.clone(), &config.data_dir)?;
        if let Some(uri) = &config.deep_store_uri {
            ctx.deep_store = DeepStore::open(uri, &config.deep_store_options)
                .map_err(|e| anyhow::anyhow!("deep store: {e}"))?;
        }
        ctx.discovery_interval = config.discovery_interval;
        ctx.max_consuming_bytes = config.max_consuming_bytes;
        let ingest = Arc::new(IngestManager::new(ctx));
        let host = hostname();
        let query = Arc::new(QueryEngine::new(
            segments.clone(),
            format!("Broker_{host}_{}", config.broker_addr.port()),
        ));
        let state = Arc::new(AppState {
            catalog,
            ingest,
            query,
            segments,
            server_name: format!("Server_{host}_{}", config.controller_addr.port()),
        });
        restore_tables(&state).await;

        let controller = TcpListener::bind(config.controller_addr)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {} (controller): {e}",
                    config.controller_addr
                )
            })?;
        let broker = TcpListener::bind(config.broker_addr).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {} (broker): {e}", config.broker_addr)
        })?;
        let controller_addr = controller.local_addr()?;
        let broker_addr = broker.local_addr()?;
        let cancel = CancellationToken::new();
        let mut tasks = Vec::new();
        {
            let (ingest, c, every) = (
                state.ingest.clone(),
                cancel.clone(),
                config.retention_interval,
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = c.cancelled() => return,
                        _ = tokio::time::sleep(every) => {}
                    }
                    ingest.enforce_retention().await;
                }
            }));
        }
        for (listener, router, role) in [
            (controller, controller::routes(state.clone()), "controller"),
            (broker, broker::routes(state.clone()), "broker"),
        ] {
            let c = cancel.clone();
            let router = router.layer(CorsLayer::permissive());
            tasks.push(tokio::spawn(async move {
                let res = axum::serve(listener, router)
                    .with_graceful_shutdown(async move { c.cancelled().await })
                    .await;
                if let Err(e) = res {
                    error!(role, error = %e, "http server failed");
                }
            }));
        }
        info!(%controller_addr, %broker_addr, "riffle started");
        Ok(Server {
            state,
            controller_addr,
            broker_addr,
            cancel,
            tasks,
        })
    }

    /// Stops the APIs and every consumption loop.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        self.state.ingest.shutdown().await;
    }
}

/// Unknown routes: Pinot's error body with 404.
pub(crate) async fn not_found(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Restarts every table in the catalog. A table that cannot start is logged and skipped;
/// the others still start.
async fn restore_tables(state: &AppState) {
    let tables = match state.catalog.tables() {
        Ok(t) => t,
        Err(e) => {
            error!(error = %e, "cannot list tables");
            return;
        }
    };
    for (name, json) in tables {
        let table = match TableConfig::from_json(json.as_bytes()) {
            Ok(t) => t,
            Err(e) => {
                error!(table = %name, error = %e, "stored table config is unreadable; table not started");
                continue;
            }
        };
        let schema = state
            .catalog
            .schema(table.raw_name())
            .ok()
            .flatten()
            .and_then(|s| Schema::from_json(s.as_bytes()).ok());
        let Some(schema) = schema else {
            error!(table = %name, "schema missing or unreadable; table not started");
            continue;
        };
        if let Err(e) = state.activate(&table, &schema).await {
            error!(table = %name, error = %e, "table not started");
        }
    }
}
