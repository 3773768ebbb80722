//! Test support: a Tansu broker per test, topics and a producer; a local S3 server for a
//! broker that must keep its topics across a restart.
//!
//! Tansu (a Kafka-compatible broker written in Rust) is installed by `scripts/tansu.sh` at
//! `${RIFFLE_TOOLS:-$HOME/.cache/riffle/tools}/tansu-0.6.0/tansu`; `RIFFLE_TANSU` points at
//! another binary. [`Tansu::start`] fails, saying how to install it, when it is missing: the
//! Kafka tests never skip silently.
//!
//! Known gaps of Tansu 0.6 that tests must not rely on: ListOffsets LATEST answers the last
//! record batch instead of the end offset (the fetch response's high watermark is right),
//! ListOffsets by timestamp always answers 0, CreatePartitions is unsupported and
//! read_committed does not hide aborted transactions.
//!
//! Tansu 0.6 (as shipped) has only object-store storage: `memory://` (lost when the broker
//! stops) and `s3://`. [`S3Server`] runs moto's S3 server (installed by `scripts/moto.sh`,
//! `RIFFLE_MOTO` points at another `moto_server`) for a broker that is killed and restarted
//! with its topics ([`Tansu::kill`], [`Tansu::restart`]).
//!
//! Beside: noida-db, the second broker (`testing/noida.rs`), and certificates with a TLS
//! terminator for the SSL tests (`testing/tls.rs`).

use std::collections::{BTreeMap, VecDeque};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
/// The Kafka client library, for tests of crates that do not depend on it themselves.
pub use rdkafka;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use riffle_storage::testing::tools_dir;

mod noida;
mod tls;
pub use noida::{noida_binary, Noida, NOIDA_VERSION};
pub use tls::{TestCerts, TlsProxy};

/// The Tansu version the tests use.
pub const TANSU_VERSION: &str = "0.6.0";

/// Where the Tansu binary is: `RIFFLE_TANSU`, else the path `scripts/tansu.sh` installs to.
pub fn tansu_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RIFFLE_TANSU").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    tools_dir()
        .join(format!("tansu-{TANSU_VERSION}"))
        .join("tansu")
}

/// How to start a Tansu broker: [`Tansu::start_with`].
#[derive(Clone, Debug, Default)]
pub struct TansuOptions {
    /// `--storage-engine`; `None` = `memory://tansu/` (lost when the broker stops). An
    /// `s3://bucket/` engine survives restarts: see [`S3Server`].
    pub storage_engine: Option<String>,
    /// Extra environment for the broker process (e.g. [`S3Server::env`]).
    pub env: Vec<(String, String)>,
    /// The port advertised in metadata instead of the listening one (a TLS terminator in
    /// front of the broker listens there).
    pub advertised_port: Option<u16>,
    /// `--authentication`: every request but ApiVersions and the SASL handshake needs a
    /// SASL login. No login can succeed with Tansu 0.6 as shipped: its SASL library is
    /// built without PLAIN (a PLAIN handshake finds no shared mechanism), and its only
    /// storage (object stores: memory, S3) keeps no SCRAM credentials (storing one is a
    /// no-op, looking one up finds none, and `tansu user create` itself cannot log in), so
    /// every SCRAM login is refused. The broker is then only waited for until it listens.
    pub authentication: bool,
}

/// A Tansu broker on a free loopback port (in-memory storage unless told otherwise);
/// killed on drop. [`Tansu::kill`] and [`Tansu::restart`] stop it and start it again on the
/// same port with the same options.
pub struct Tansu {
    child: Option<Child>,
    bin: PathBuf,
    port: u16,
    log: PathBuf,
    opts: TansuOptions,
}

impl Tansu {
    /// Starts a broker with in-memory storage and waits until it answers Kafka requests.
    pub fn start() -> Result<Tansu> {
        Tansu::start_with(TansuOptions::default())
    }

    /// Starts a broker with `opts` and waits until it answers Kafka requests.
    pub fn start_with(opts: TansuOptions) -> Result<Tansu> {
        let bin = tansu_binary();
        if !bin.is_file() {
            bail!(
                "the Tansu broker is not installed at {}: run scripts/tansu.sh to install it \
                 (or set RIFFLE_TANSU to a tansu {TANSU_VERSION} binary)",
                bin.display()
            );
        }
        let mut last = None;
        // A free port may be taken between choosing and binding: try a few.
        for _ in 0..3 {
            let port = free_port()?;
            let log = std::env::temp_dir()
                .join(format!("riffle-tansu-{}-{port}.log", std::process::id()));
            let mut t = Tansu {
                child: None,
                bin: bin.clone(),
                port,
                log,
                opts: opts.clone(),
            };
            match t
                .spawn()
                .and_then(|()| t.wait_ready(Duration::from_secs(20)))
            {
                Ok(()) => return Ok(t),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("tansu did not start")))
    }

    fn spawn(&mut self) -> Result<()> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!(
            "tcp://127.0.0.1:{}",
            self.opts.advertised_port.unwrap_or(self.port)
        );
        // Appends: the log of a restarted broker follows the first one's.
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot create {}", self.log.display()))?;
        let err = out.try_clone()?;
        let storage = self
            .opts
            .storage_engine
            .clone()
            .unwrap_or_else(|| "memory://tansu/".to_string());
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &advertised,
            "--storage-engine",
            &storage,
        ]);
        if self.opts.authentication {
            cmd.arg("--authentication");
        }
        let child = cmd
            .envs(self.opts.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        self.child = Some(child);
        Ok(())
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Some(status) = exited(&mut self.child)? {
                bail!(
                    "tansu exited with {status} while starting on port {}: {}",
                    self.port,
                    self.log_tail()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if start.elapsed() > limit {
                bail!(
                    "tansu did not listen on port {} within {limit:?}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.opts.authentication {
            // No client can log in (see `TansuOptions::authentication`): listening is all
            // that can be checked.
            return Ok(());
        }
        // Listening is not answering: wait for a metadata response.
        let c: BaseConsumer = self.client_config().create()?;
        loop {
            match c.fetch_metadata(None, Duration::from_millis(500)) {
                Ok(_) => return Ok(()),
                Err(e) if start.elapsed() > limit => {
                    bail!(
                        "tansu on port {} does not answer metadata requests: {e}: {}",
                        self.port,
                        self.log_tail()
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// The last lines of the broker's output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `127.0.0.1:<port>` (the listening port, also when another one is advertised).
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Client settings for this broker: the bootstrap servers.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap());
        c
    }

    /// Creates a topic; waits until its metadata lists every partition.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        create_topic_with(self.client_config(), name, partitions).await
    }

    /// A producer to this broker.
    pub fn producer(&self) -> Result<FutureProducer> {
        Ok(producer_config(self.client_config()).create()?)
    }

    /// Kills the broker process (SIGKILL: no orderly shutdown) and waits for it to exit.
    /// What it stored survives only with a durable storage engine.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Starts the broker again on the same port with the same options (kills it first if
    /// it runs), and waits until it answers.
    pub fn restart(&mut self) -> Result<()> {
        self.kill()?;
        let start = Instant::now();
        loop {
            self.spawn()?;
            match self.wait_ready(Duration::from_secs(20)) {
                Ok(()) => return Ok(()),
                // The port may still be held for a moment after the old process died.
                Err(e) if start.elapsed() < Duration::from_secs(20) => {
                    tracing::debug!("tansu restart: {e:#}; again");
                    self.kill()?;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The exit status of a started server process, if it has exited.
fn exited(child: &mut Option<Child>) -> Result<Option<std::process::ExitStatus>> {
    Ok(child.as_mut().map(Child::try_wait).transpose()?.flatten())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// moto's S3 server and its install location live in `riffle_storage::testing` (the deep
/// store's tests use them too).
pub use riffle_storage::testing::{moto_binary, MOTO_VERSION};

/// [`riffle_storage::testing::S3Server`] (moto's S3 server on a free loopback port) with
/// one bucket, `tansu`: durable storage for a Tansu broker that is killed and restarted
/// (`storage_engine: "s3://tansu/"`, `env: s3.env()`). Objects live in the server's
/// memory, so they outlive the broker but not this value; killed on drop. Everything of
/// the storage fixture (`endpoint`, `env`, `create_bucket`, ...) is reachable through
/// `Deref`.
pub struct S3Server(riffle_storage::testing::S3Server);

impl S3Server {
    /// Starts the server and creates the bucket `tansu`.
    pub fn start() -> Result<S3Server> {
        let s = riffle_storage::testing::S3Server::start()?;
        s.create_bucket("tansu")?;
        Ok(S3Server(s))
    }

    /// Options for a Tansu broker that stores its topics here.
    pub fn tansu_options(&self) -> TansuOptions {
        TansuOptions {
            storage_engine: Some("s3://tansu/".to_string()),
            env: self.env(),
            ..TansuOptions::default()
        }
    }
}

impl std::ops::Deref for S3Server {
    type Target = riffle_storage::testing::S3Server;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// Creates a topic with the admin API; waits until its metadata lists every partition.
pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32) -> Result<()> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    create_topic_with(c, name, partitions).await
}

/// [`create_topic`] with the given client settings (bootstrap servers, security).
pub async fn create_topic_with(config: ClientConfig, name: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let res = admin
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await?;
    for r in res {
        r.map_err(|(t, code)| anyhow!("cannot create topic '{t}': {code}"))?;
    }
    let name = name.to_string();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let c: BaseConsumer = config.create()?;
        let start = Instant::now();
        loop {
            let md = c.fetch_metadata(Some(&name), Duration::from_secs(2))?;
            let n = md
                .topics()
                .iter()
                .find(|t| t.name() == name && t.error().is_none())
                .map_or(0, |t| t.partitions().len());
            if n == usize::try_from(partitions).unwrap_or(0) {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(10) {
                bail!("topic '{name}' lists {n} partitions, expected {partitions}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await?
}

/// A producer with small batches, acks from the leader, and no reordering on retries.
pub fn producer(bootstrap: &str) -> Result<FutureProducer> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    Ok(producer_config(c).create()?)
}

/// The settings of [`producer`] added to `config`.
pub fn producer_config(mut config: ClientConfig) -> ClientConfig {
    config
        .set("linger.ms", "5")
        .set("max.in.flight.requests.per.connection", "1")
        .set("message.timeout.ms", "30000");
    config
}

/// One record to produce.
#[derive(Clone, Debug, Default)]
pub struct TestRecord {
    /// The partition.
    pub partition: i32,
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value; `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The record timestamp (epoch ms); `None` = the producer's clock.
    pub timestamp_ms: Option<i64>,
}

impl TestRecord {
    /// A record with only a value.
    pub fn value(partition: i32, value: impl Into<Vec<u8>>) -> TestRecord {
        TestRecord {
            partition,
            value: Some(value.into()),
            ..TestRecord::default()
        }
    }

    /// A tombstone (null value) with a key.
    pub fn tombstone(partition: i32, key: impl Into<Vec<u8>>) -> TestRecord {
        TestRecord {
            partition,
            key: Some(key.into()),
            ..TestRecord::default()
        }
    }
}

/// Produces records in order, many in flight; returns each record's (partition, offset).
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    records: impl IntoIterator<Item = TestRecord>,
) -> Result<Vec<(i32, i64)>> {
    const IN_FLIGHT: usize = 20_000;
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
    let mut out = Vec::new();
    async fn settle(f: DeliveryFuture, out: &mut Vec<(i32, i64)>) -> Result<()> {
        match f.await {
            Ok(Ok(d)) => {
                out.push((d.partition, d.offset));
                Ok(())
            }
            Ok(Err((e, _))) => Err(anyhow!("delivery failed: {e}")),
            Err(_) => Err(anyhow!("delivery cancelled")),
        }
    }
    for r in records {
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        loop {
            let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
                .partition(r.partition)
                .headers(headers.clone());
            if let Some(k) = &r.key {
                rec = rec.key(k.as_slice());
            }
            if let Some(v) = &r.value {
                rec = rec.payload(v.as_slice());
            }
            if let Some(ts) = r.timestamp_ms {
                rec = rec.timestamp(ts);
            }
            match producer.send_result(rec) {
                Ok(f) => {
                    pending.push_back(f);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    match pending.pop_front() {
                        Some(f) => settle(f, &mut out).await?,
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err((e, _)) => return Err(anyhow!("cannot produce to '{topic}': {e}")),
            }
        }
        if pending.len() >= IN_FLIGHT {
            if let Some(f) = pending.pop_front() {
                settle(f, &mut out).await?;
            }
        }
    }
    while let Some(f) = pending.pop_front() {
        settle(f, &mut out).await?;
    }
    Ok(out)
}

/// The stream-config map of a Kafka topic (JSON decoder), plus `extra` keys.
pub fn stream_map(
    bootstrap: &str,
    topic: &str,
    extra: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("streamType".to_string(), "kafka".to_string());
    m.insert("stream.kafka.topic.name".to_string(), topic.to_string());
    m.insert(
        "stream.kafka.broker.list".to_string(),
        bootstrap.to_string(),
    );
    m.insert(
        "stream.kafka.decoder.class.name".to_string(),
        "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder".to_string(),
    );
    for (k, v) in extra {
        m.insert(k.to_string(), v.to_string());
    }
    m
}
