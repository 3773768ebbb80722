//! Test support: a Tansu broker per test, topics and a producer.
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

use std::collections::{BTreeMap, VecDeque};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

/// The Tansu version the tests use.
pub const TANSU_VERSION: &str = "0.6.0";

/// Where the Tansu binary is: `RIFFLE_TANSU`, else the path `scripts/tansu.sh` installs to.
pub fn tansu_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RIFFLE_TANSU").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let tools = std::env::var_os("RIFFLE_TOOLS")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/"))
                .join(".cache/riffle/tools")
        });
    tools.join(format!("tansu-{TANSU_VERSION}")).join("tansu")
}

/// A Tansu broker on a free loopback port, with in-memory storage; killed on drop.
pub struct Tansu {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Tansu {
    /// Starts a broker and waits until it answers Kafka requests.
    pub fn start() -> Result<Tansu> {
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
            match Tansu::try_start(&bin) {
                Ok(t) => return Ok(t),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("tansu did not start")))
    }

    fn try_start(bin: &PathBuf) -> Result<Tansu> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log =
            std::env::temp_dir().join(format!("riffle-tansu-{}-{port}.log", std::process::id()));
        let out = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let mut t = Tansu { child, port, log };
        t.wait_ready(Duration::from_secs(20))?;
        Ok(t)
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Some(status) = self.child.try_wait()? {
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
        // Listening is not answering: wait for a metadata response.
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()?;
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

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates a topic; waits until its metadata lists every partition.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        create_topic(&self.bootstrap(), name, partitions).await
    }

    /// A producer to this broker.
    pub fn producer(&self) -> Result<FutureProducer> {
        producer(&self.bootstrap())
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Creates a topic with the admin API; waits until its metadata lists every partition.
pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let res = admin
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await?;
    for r in res {
        r.map_err(|(t, code)| anyhow!("cannot create topic '{t}': {code}"))?;
    }
    let bootstrap = bootstrap.to_string();
    let name = name.to_string();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()?;
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
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("max.in.flight.requests.per.connection", "1")
        .set("message.timeout.ms", "30000")
        .create()?)
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
