//! The one composition root: [`Node::open`] builds a node's parts from a [`NodeConfig`] and
//! wires them (controller, broker and server roles in one process on one data directory),
//! exactly the same way for `riffle serve`, the quickstart, the tests and the benchmarks.
//!
//! ```text
//! data dir --> catalog (catalog.redb) --> CatalogStore (io pool)
//!          --> deep store (file://<data>/deepstore or the configured URI)
//! SegmentManager (segment decisions) <-- committer -- ServerRole (loops, sealers; cpu pool)
//! TableManager (controller role) --> ServerRole, SegmentManager, CatalogStore
//! QueryEngine (query pool) --> SegmentRegistry <-- ServerRole
//! HTTP (controller :9000, broker :8099) --> TableManager, QueryEngine
//! ```
//!
//! Owns: [`NodeConfig`] (every setting of a node, with Pinot's defaults), [`Node`] (the
//! running node: its services, listeners and periodic tasks) and [`default_streams`] (the
//! stream plugins of this build).
//!
//! Invariants: stored tables start before the APIs listen, so a request never sees a
//! half-restored node; shutting down stops the APIs first, then every consumption loop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use riffle_catalog::{Catalog, CatalogError};
use riffle_common::{RuntimeConfig, Runtimes};
use riffle_controller::{CatalogStore, ControllerContext, SegmentManager, TableManager};
use riffle_ingest::{ServerContext, ServerRole};
use riffle_query::QueryEngine;
pub use riffle_query::QueryLimits;
use riffle_segment::SegmentRegistry;
pub use riffle_server::auth::AuthConfig;
use riffle_server::Services;
pub use riffle_server::{HttpConfig, TlsConfig};
pub use riffle_storage::DeepStore;
use riffle_storage::StorageError;
use riffle_stream::{StreamContext, StreamRegistry};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How to run a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Data directory (catalog, stream files, segment files, the default deep store).
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
    pub deep_store_options: BTreeMap<String, String>,
    /// Bytes after which a consuming segment ends early.
    pub max_consuming_bytes: usize,
    /// How often retention is enforced.
    pub retention_interval: Duration,
    /// Thread pools.
    pub runtime: RuntimeConfig,
    /// Pools to use instead of starting new ones (`runtime` is then ignored): nodes opened
    /// one after the other in one process (the benchmarks' runs) share their threads, as
    /// one long-lived node would.
    pub runtimes: Option<Runtimes>,
    /// What one query, and all queries together, may use.
    pub query_limits: QueryLimits,
    /// Directories outside the data directory that file-stream tables may read.
    pub allowed_stream_dirs: Vec<PathBuf>,
    /// Directories outside the data directory that `file://` segment URIs (URI and
    /// metadata pushes) may point into.
    pub fetch_file_roots: Vec<PathBuf>,
    /// Object-store options per URI scheme for fetching pushed segments from buckets other
    /// than the deep store's (`s3` -> `endpoint`, `region`, keys, ...).
    pub fetcher_options: BTreeMap<String, BTreeMap<String, String>>,
    /// Segment fetchers for further URI schemes (plugins).
    pub fetchers: Vec<Arc<dyn riffle_storage::SegmentFetcher>>,
    /// Connection limits and CORS of both HTTP listeners.
    pub http: HttpConfig,
    /// Who may call the APIs; none configured: anyone who can connect.
    pub auth: AuthConfig,
    /// How ingestion transforms are read (`--ingestion-groovy-safe-subset`).
    pub transforms: riffle_transform::TransformOptions,
}

impl NodeConfig {
    /// Defaults: ports 9000 and 8099 on loopback, the default pools.
    pub fn new(data_dir: PathBuf) -> NodeConfig {
        NodeConfig {
            data_dir,
            controller_addr: SocketAddr::from(([127, 0, 0, 1], 9000)),
            broker_addr: SocketAddr::from(([127, 0, 0, 1], 8099)),
            discovery_interval: Duration::from_secs(1),
            deep_store_uri: None,
            deep_store_options: BTreeMap::new(),
            max_consuming_bytes: 1 << 30,
            retention_interval: Duration::from_secs(600),
            runtime: RuntimeConfig::default(),
            runtimes: None,
            query_limits: QueryLimits::default(),
            allowed_stream_dirs: Vec::new(),
            fetch_file_roots: Vec::new(),
            fetcher_options: BTreeMap::new(),
            fetchers: Vec::new(),
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            transforms: Default::default(),
        }
    }

    /// Both APIs on free loopback ports (tests, benchmarks).
    pub fn loopback(data_dir: PathBuf) -> NodeConfig {
        let mut c = NodeConfig::new(data_dir);
        c.controller_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        c.broker_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        c
    }
}

/// A node that could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A directory or file of the data directory.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The catalog cannot be opened.
    #[error("catalog")]
    Catalog(#[from] CatalogError),
    /// The deep store's URI or options are not usable.
    #[error("deep store")]
    DeepStore(#[from] StorageError),
    /// An API cannot listen.
    #[error("cannot listen on {addr} ({role})")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// `controller` or `broker`.
        role: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> NodeError {
    move |source| NodeError::Io { context, source }
}

/// The stream plugins of this build: the built-in `file` and `memory` streams, Kafka,
/// Kinesis, Pulsar, Redis Streams and NATS JetStream.
pub fn default_streams() -> StreamRegistry {
    let mut r = StreamRegistry::with_builtins();
    r.register(Arc::new(riffle_kafka::KafkaPlugin));
    r.register(Arc::new(riffle_kinesis::KinesisPlugin));
    r.register(Arc::new(riffle_pulsar::PulsarPlugin));
    r.register(Arc::new(riffle_redis::RedisPlugin));
    r.register(Arc::new(riffle_nats::NatsPlugin));
    r
}

/// A running node.
pub struct Node {
    /// Set once the catalog is closed, which shutdown waits for.
    catalog_closed: riffle_catalog::ClosedFlag,
    tables: Arc<TableManager>,
    query: Arc<QueryEngine>,
    segments: Arc<SegmentRegistry>,
    /// Where the controller API listens.
    pub controller_addr: SocketAddr,
    /// Where the broker API listens.
    pub broker_addr: SocketAddr,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Opens the data directory, starts every stored table, then both APIs and the
    /// periodic retention task.
    pub async fn open(config: NodeConfig, streams: StreamRegistry) -> Result<Node, NodeError> {
        riffle_common::failpoint::warn_if_requested();
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        let runtimes =
            Runtimes::new(&config.runtime).map_err(io("start the thread pools".into()))?;
        let catalog = Arc::new(Catalog::open(&dir.join("catalog.redb"))?);
        let catalog_closed = catalog.closed_flag();
        let store = CatalogStore::new(catalog, runtimes.io.clone());
        let deep_store = Arc::new(open_deep_store(&config)?);
        let fetchers = Arc::new(open_fetchers(&config, &deep_store)?);
        let registry = Arc::new(SegmentRegistry::new());
        let segment_manager = Arc::new(SegmentManager::new(store.clone()));
        let mut stream_ctx = StreamContext::new(dir.clone());
        stream_ctx.allowed_dirs = config.allowed_stream_dirs.clone();
        let server = Arc::new(ServerRole::new(ServerContext {
            stream_ctx: stream_ctx.clone(),
            segments: registry.clone(),
            deep_store: deep_store.clone(),
            fetchers: fetchers.clone(),
            segments_dir: dir.join("segments"),
            max_consuming_bytes: config.max_consuming_bytes,
            cpu: runtimes.cpu.clone(),
            committer: segment_manager.clone(),
        }));
        let tables = TableManager::new(ControllerContext {
            store,
            segments: segment_manager,
            server,
            streams,
            stream_ctx,
            deep_store,
            fetchers,
            staging_dir: dir.join("staging"),
            discovery_interval: config.discovery_interval,
            transforms: config.transforms,
        });
        let host = hostname();
        let query = Arc::new(
            QueryEngine::new(
                registry.clone(),
                format!("Broker_{host}_{}", config.broker_addr.port()),
                runtimes.query.clone(),
            )
            .with_limits(config.query_limits.clone()),
        );
        tables.clear_staging();
        tables.start_all().await;
        let services = Arc::new(Services {
            tables: tables.clone(),
            query: query.clone(),
            segments: registry.clone(),
            server_name: format!("Server_{host}_{}", config.controller_addr.port()),
            auth: config.auth.clone(),
        });
        let mut node = Node {
            tables,
            query,
            segments: registry,
            controller_addr: config.controller_addr,
            broker_addr: config.broker_addr,
            cancel: CancellationToken::new(),
            tasks: Vec::new(),
            catalog_closed,
        };
        node.listen(&config, services).await?;
        node.spawn_retention(config.retention_interval);
        info!(controller = %node.controller_addr, broker = %node.broker_addr, "riffle started");
        Ok(node)
    }

    async fn listen(
        &mut self,
        config: &NodeConfig,
        services: Arc<Services>,
    ) -> Result<(), NodeError> {
        let bind = |addr: SocketAddr, role: &'static str| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| NodeError::Listen { addr, role, source })
        };
        let controller = bind(config.controller_addr, "controller").await?;
        let broker = bind(config.broker_addr, "broker").await?;
        let local = |l: &TcpListener, addr, role| {
            l.local_addr()
                .map_err(|source| NodeError::Listen { addr, role, source })
        };
        self.controller_addr = local(&controller, config.controller_addr, "controller")?;
        self.broker_addr = local(&broker, config.broker_addr, "broker")?;
        for (listener, router, role) in [
            (
                controller,
                riffle_server::controller::routes(services.clone()),
                "controller",
            ),
            (broker, riffle_server::broker::routes(services), "broker"),
        ] {
            let cancel = self.cancel.clone();
            self.tasks.push(tokio::spawn(riffle_server::serve(
                listener,
                router,
                cancel,
                role,
                config.http.clone(),
            )));
        }
        Ok(())
    }

    fn spawn_retention(&mut self, every: Duration) {
        let (tables, cancel) = (self.tables.clone(), self.cancel.clone());
        self.tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                tables.enforce_retention().await;
            }
        }));
    }

    /// The controller role.
    pub fn tables(&self) -> &Arc<TableManager> {
        &self.tables
    }

    /// The query engine.
    pub fn query(&self) -> &Arc<QueryEngine> {
        &self.query
    }

    /// Every table's segments, as queries see them.
    pub fn segments(&self) -> &Arc<SegmentRegistry> {
        &self.segments
    }

    /// Stops the APIs and the periodic tasks, then every consumption loop.
    pub async fn shutdown(self) {
        let Node {
            tables,
            query,
            segments,
            cancel,
            tasks,
            catalog_closed,
            ..
        } = self;
        cancel.cancel();
        for t in tasks {
            let _ = t.await;
        }
        tables.shutdown().await;
        drop((tables, query, segments));
        // The last holder of the catalog may be a catalog thread finishing a transaction
        // whose caller went away, and closing the database takes a moment after that; the
        // node is shut down once the file is closed (its lock released), so that the data
        // directory can be opened again at once.
        let started = std::time::Instant::now();
        while !catalog_closed.is_closed() && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if !catalog_closed.is_closed() {
            warn!("the catalog is still open 10 s after shutdown");
        }
    }
}

/// The configured deep store, or `file://<data dir>/deepstore`.
/// The segment fetchers: the deep store, the data directory and the allowed directories for
/// `file://`, per-scheme options for other buckets, and the plugins given.
fn open_fetchers(
    config: &NodeConfig,
    deep_store: &DeepStore,
) -> Result<riffle_storage::Fetchers, NodeError> {
    let mut roots = vec![config.data_dir.clone()];
    roots.extend(config.fetch_file_roots.iter().cloned());
    let mut options = config.fetcher_options.clone();
    // The deep store's own options serve other buckets of the same scheme by default.
    if let Some(uri) = &config.deep_store_uri {
        if let Some((scheme, _)) = uri.split_once("://") {
            let scheme = match scheme.to_ascii_lowercase().as_str() {
                "s3a" => "s3".to_string(),
                s => s.to_string(),
            };
            let o = options.entry(scheme).or_default();
            for (k, v) in &config.deep_store_options {
                o.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    let f = riffle_storage::Fetchers::new(deep_store.clone(), roots, options)?;
    for plugin in &config.fetchers {
        f.register(plugin.clone());
    }
    Ok(f)
}

fn open_deep_store(config: &NodeConfig) -> Result<DeepStore, NodeError> {
    if let Some(uri) = &config.deep_store_uri {
        return Ok(DeepStore::open(uri, &config.deep_store_options)?);
    }
    let deep = config.data_dir.join("deepstore");
    std::fs::create_dir_all(&deep).map_err(io(format!("create {}", deep.display())))?;
    let deep = std::path::absolute(&deep).map_err(io(format!("resolve {}", deep.display())))?;
    Ok(DeepStore::open(
        &format!("file://{}", deep.display()),
        &BTreeMap::new(),
    )?)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The data directory's catalog file.
pub fn catalog_path(data_dir: &Path) -> PathBuf {
    data_dir.join("catalog.redb")
}
