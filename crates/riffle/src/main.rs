//! The `riffle` command: `serve`, `quickstart`, `bench`, and Pinot-style admin commands
//! (`AddTable`, `AddSchema`, `PostQuery`, `CreateSegment`, `SegmentDump`). Every command that runs a node builds it through
//! the one composition root, [`riffle_node::Node::open`].

/// jemalloc rather than the system allocator: glibc's per-thread arenas make ingestion speed
/// depend on which thread allocated a segment's memory and which one frees it (runs of the
/// same build differed by a third); with jemalloc the rate is steady, and higher
/// (`docs/PERFORMANCE.md`). `--no-default-features` builds with the system allocator.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod admin;
mod job;
mod logging;
mod quickstart;
mod segments;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use riffle_node::{AuthConfig, HttpConfig, Node, NodeConfig, QueryLimits, TlsConfig};

#[derive(Parser, Debug)]
#[command(
    name = "riffle",
    version,
    about = "Riffle: a real-time analytics database that speaks Apache Pinot's language",
    after_help = "Pinot-style admin commands:\n  \
        riffle AddTable -schemaFile F -tableConfigFile F [-controllerHost H] [-controllerPort P] -exec\n  \
        riffle AddSchema -schemaFile F [-controllerHost H] [-controllerPort P] -exec\n  \
        riffle PostQuery -query SQL [-brokerHost H] [-brokerPort P]\n  \
        riffle CreateSegment -dataDir D -outDir D -tableConfigFile F -schemaFile F [-format F]\n  \
        riffle SegmentDump -segmentDir FILE [-columns C,..] [-limit N]\n  \
        riffle LaunchDataIngestionJob -jobSpecFile SPEC.yaml [-values K=V ..] [-propertyFile F]\n\
        Each takes -help."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the server listens and keeps its data.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Data directory: catalog, stream files (streams/<topic>/<partition>.jsonl).
    #[arg(long, default_value = "./riffle-data", env = "RIFFLE_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address to listen on. Loopback by default; any other address needs
    /// `--auth-config` (or `--insecure-no-auth`).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Pinot's basic-auth principals, as a properties file
    /// (`controller.admin.access.control.principals=...`, `pinot.broker.access.control...`).
    #[arg(long, value_name = "FILE", env = "RIFFLE_AUTH_CONFIG")]
    pub auth_config: Option<PathBuf>,
    /// Serve a non-loopback address without authentication (anyone who can reach the
    /// ports can read, change and delete every table).
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Controller API port (Pinot's 9000).
    #[arg(long, default_value_t = 9000)]
    pub controller_port: u16,
    /// Broker API port (Pinot's 8099).
    #[arg(long, default_value_t = 8099)]
    pub broker_port: u16,
    /// Deep store for sealed segments: `file:///dir`, `s3://bucket/prefix`, `gs://...`,
    /// `az://...`, `http(s)://...`. Default: `file://<data dir>/deepstore`.
    #[arg(long, env = "RIFFLE_DEEP_STORE_URI")]
    pub deep_store_uri: Option<String>,
    /// A deep-store option `KEY=VALUE` (repeatable): e.g. `endpoint=http://127.0.0.1:9000`,
    /// `region=us-east-1`, `accessKey=...`, `secretKey=...`, `allow_http=true`.
    #[arg(long = "deep-store-option", value_name = "KEY=VALUE")]
    pub deep_store_options: Vec<String>,
    /// How often segments past their table's retention are deleted, in seconds.
    #[arg(long, default_value_t = 600)]
    pub retention_interval_secs: u64,
    /// A consuming segment holding this many bytes is sealed early.
    #[arg(long, default_value_t = 1 << 30)]
    pub max_consuming_bytes: usize,
    /// A directory outside the data directory that file-stream tables may read
    /// (`stream.file.path`; repeatable). By default they read only inside the data directory.
    #[arg(long = "allow-stream-path", value_name = "DIR")]
    pub allow_stream_paths: Vec<PathBuf>,
    /// A directory outside the data directory that `file://` URIs of segment pushes
    /// (URI and metadata push, `/ingestFromURI`) may point into (repeatable).
    #[arg(long = "fetch-file-root", value_name = "DIR")]
    pub fetch_file_roots: Vec<PathBuf>,
    /// An option for fetching pushed segments by URI from a store other than the deep
    /// store, `SCHEME.KEY=VALUE` (repeatable): e.g. `s3.endpoint=http://127.0.0.1:9000`,
    /// `s3.region=us-east-1`, `s3.accessKey=...`. The deep store's own options serve its
    /// scheme by default.
    #[arg(long = "segment-fetcher-option", value_name = "SCHEME.KEY=VALUE")]
    pub segment_fetcher_options: Vec<String>,
    /// Translate Groovy transforms and filters of the safe subset (ternaries, string
    /// concatenation, comparisons, arithmetic over the declared arguments) to built-in
    /// expressions; without it every Groovy script is refused at table creation.
    #[arg(long)]
    pub ingestion_groovy_safe_subset: bool,
    /// An origin browsers may call the APIs from (CORS; repeatable; `*` for any). None by
    /// default: a web page cannot call the APIs.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Seconds a connection may take to send a request's headers (also how long an idle
    /// keep-alive connection stays open).
    #[arg(long, default_value_t = 10)]
    pub http_header_timeout_secs: u64,
    /// Open connections per port; more are closed at once.
    #[arg(long, default_value_t = 1024)]
    pub http_max_connections: usize,
    /// Serve both ports over TLS with this PEM certificate chain (with `--tls-key`).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Query limits.
    #[command(flatten)]
    pub query: QueryArgs,
}

/// What one query, and all queries together, may use.
#[derive(clap::Args, Debug, Clone)]
pub struct QueryArgs {
    /// Deepest nesting of expressions a query may have (deeper: error 150).
    #[arg(long, default_value_t = QueryLimits::default().max_expression_depth)]
    pub query_max_expression_depth: usize,
    /// Expressions one query may have (more: error 150).
    #[arg(long, default_value_t = QueryLimits::default().max_expression_elements)]
    pub query_max_expression_elements: usize,
    /// Memory one query may reserve, in bytes (more: error 245).
    #[arg(long, default_value_t = QueryLimits::default().max_query_memory_bytes)]
    pub query_max_memory_bytes: usize,
    /// Memory all running queries may reserve together, in bytes.
    #[arg(long, default_value_t = QueryLimits::default().max_server_memory_bytes)]
    pub query_max_server_memory_bytes: usize,
    /// Largest string `repeat` / `lpad` / `rpad` may make, in bytes.
    #[arg(long, default_value_t = QueryLimits::default().max_string_bytes)]
    pub query_max_string_bytes: usize,
    /// Rows a query result may have.
    #[arg(long, default_value_t = QueryLimits::default().max_result_rows)]
    pub query_max_result_rows: usize,
    /// Bytes a query result may hold before it is answered (a query may ask for less with
    /// the option `maxQueryResponseSizeBytes`).
    #[arg(long, default_value_t = QueryLimits::default().max_response_bytes)]
    pub query_max_response_bytes: usize,
    /// Queries running at once; others wait for a slot.
    #[arg(long, default_value_t = QueryLimits::default().max_concurrent_queries)]
    pub query_max_concurrent: usize,
    /// Milliseconds a query may wait for a slot (then error 240).
    #[arg(long, default_value_t = QueryLimits::default().max_queue_wait.as_millis() as u64)]
    pub query_max_queue_wait_ms: u64,
}

impl Default for QueryArgs {
    fn default() -> QueryArgs {
        QueryArgs::from(QueryLimits::default())
    }
}

impl From<QueryLimits> for QueryArgs {
    fn from(l: QueryLimits) -> QueryArgs {
        QueryArgs {
            query_max_expression_depth: l.max_expression_depth,
            query_max_expression_elements: l.max_expression_elements,
            query_max_memory_bytes: l.max_query_memory_bytes,
            query_max_server_memory_bytes: l.max_server_memory_bytes,
            query_max_string_bytes: l.max_string_bytes,
            query_max_result_rows: l.max_result_rows,
            query_max_response_bytes: l.max_response_bytes,
            query_max_concurrent: l.max_concurrent_queries,
            query_max_queue_wait_ms: l.max_queue_wait.as_millis() as u64,
        }
    }
}

impl QueryArgs {
    /// The limits these flags describe.
    pub fn limits(&self) -> QueryLimits {
        QueryLimits {
            max_expression_depth: self.query_max_expression_depth.max(1),
            max_expression_elements: self.query_max_expression_elements.max(1),
            max_query_memory_bytes: self.query_max_memory_bytes,
            max_server_memory_bytes: self.query_max_server_memory_bytes,
            max_string_bytes: self.query_max_string_bytes,
            max_result_rows: self.query_max_result_rows,
            max_response_bytes: self.query_max_response_bytes,
            max_concurrent_queries: self.query_max_concurrent.max(1),
            max_queue_wait: std::time::Duration::from_millis(self.query_max_queue_wait_ms),
        }
    }
}

impl ServeArgs {
    /// The node config these flags describe.
    pub fn config(&self) -> anyhow::Result<NodeConfig> {
        let mut c = NodeConfig::new(self.data_dir.clone());
        c.controller_addr = SocketAddr::new(self.host, self.controller_port);
        c.broker_addr = SocketAddr::new(self.host, self.broker_port);
        c.deep_store_uri = self.deep_store_uri.clone();
        if c.deep_store_uri.is_none() && !self.deep_store_options.is_empty() {
            anyhow::bail!(
                "--deep-store-option needs --deep-store-uri (the default file:// store takes no options)"
            );
        }
        for o in &self.deep_store_options {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--deep-store-option '{o}': expected KEY=VALUE"))?;
            c.deep_store_options
                .insert(k.trim().to_string(), v.trim().to_string());
        }
        c.retention_interval = std::time::Duration::from_secs(self.retention_interval_secs.max(1));
        c.max_consuming_bytes = self.max_consuming_bytes.max(1 << 20);
        c.query_limits = self.query.limits();
        c.allowed_stream_dirs = self.allow_stream_paths.clone();
        c.fetch_file_roots = self.fetch_file_roots.clone();
        for o in &self.segment_fetcher_options {
            let parsed = o.split_once('=').and_then(|(k, v)| {
                let (scheme, key) = k.trim().split_once('.')?;
                Some((
                    scheme.to_ascii_lowercase(),
                    key.to_string(),
                    v.trim().to_string(),
                ))
            });
            let (scheme, key, value) = parsed.ok_or_else(|| {
                anyhow::anyhow!("--segment-fetcher-option '{o}': expected SCHEME.KEY=VALUE")
            })?;
            c.fetcher_options
                .entry(scheme)
                .or_default()
                .insert(key, value);
        }
        c.transforms.groovy_safe_subset = self.ingestion_groovy_safe_subset;
        if let Some(path) = &self.auth_config {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("--auth-config {}: {e}", path.display()))?;
            c.auth = AuthConfig::parse(&text)
                .map_err(|e| anyhow::anyhow!("--auth-config {}: {e}", path.display()))?;
        }
        if !self.host.is_loopback() && !c.auth.is_enabled() {
            if !self.insecure_no_auth {
                anyhow::bail!(
                    "--host {} is reachable from other machines and no users are configured: \
                     give --auth-config FILE, or --insecure-no-auth to serve it open",
                    self.host
                );
            }
            tracing::warn!(host = %self.host, "serving without authentication on a non-loopback address");
        }
        c.http = HttpConfig {
            cors_origins: self.cors_origins.clone(),
            header_read_timeout: std::time::Duration::from_secs(
                self.http_header_timeout_secs.max(1),
            ),
            max_connections: self.http_max_connections.max(1),
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(
                    TlsConfig::from_pem_files(cert, key)
                        .map_err(|e| anyhow::anyhow!("--tls-cert / --tls-key: {e}"))?,
                ),
                _ => None,
            },
        };
        Ok(c)
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller (port 9000) and broker (port 8099) on one data directory.
    Serve(Box<ServeArgs>),
    /// Start a server on a fresh data directory with a live `events` table fed by a generator.
    Quickstart(quickstart::QuickstartArgs),
    /// Measure ingestion speed and freshness.
    Bench(riffle_bench::cli::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let rt = match riffle_common::runtime::main_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(cmd) = args.get(1) {
        let rest = &args[2..];
        match cmd.to_ascii_lowercase().as_str() {
            "addtable" => return admin::add_table(rest).await,
            "addschema" => return admin::add_schema(rest).await,
            "postquery" => return admin::post_query(rest).await,
            "createsegment" => return segments::create_segment(rest),
            "segmentdump" => return segments::segment_dump(rest),
            "launchdataingestionjob" => return job::launch(rest).await,
            _ => {}
        }
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(a) => {
            logging::init();
            let node = Node::open(a.config()?, riffle_node::default_streams()).await?;
            let scheme = if a.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            println!(
                "riffle is serving: controller {scheme}://{} , broker {scheme}://{} , data in {}",
                node.controller_addr,
                node.broker_addr,
                a.data_dir.display()
            );
            tokio::signal::ctrl_c().await?;
            eprintln!("shutting down");
            node.shutdown().await;
            Ok(())
        }
        Command::Quickstart(a) => {
            logging::init();
            quickstart::run(a).await
        }
        Command::Bench(a) => {
            // A benchmark's own output is its report: the log only when asked for.
            if std::env::var_os("RIFFLE_LOG").is_some() {
                logging::init();
            }
            riffle_bench::cli::run(a).await
        }
    }
}
