//! noida-db, the second test broker: its Kafka service only, on a free loopback port.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;

use super::{create_topic_with, exited, free_port, producer_config};

/// The noida-db version the tests use (pinned in `tests/python/requirements.txt`).
pub const NOIDA_VERSION: &str = "0.2.3";

/// Where the noida-db launcher is: `RIFFLE_NOIDA`, else the test virtualenv's
/// (`$RIFFLE_VENV/bin/noida-db`, default `~/.cache/riffle/venv`), where the test command
/// installs the pinned wheel.
pub fn noida_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RIFFLE_NOIDA").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let venv = std::env::var_os("RIFFLE_VENV")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/riffle/venv")
        });
    venv.join("bin").join("noida-db")
}

/// A noida-db server with only its Kafka service, on a free loopback port, its data in a
/// temporary directory; killed (and the directory removed) on drop. The second test
/// broker: it serves CreatePartitions, ListOffsets by timestamp, transactions and
/// DeleteRecords, which Tansu 0.6 does not.
pub struct Noida {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Noida {
    /// Starts the server and waits until it answers metadata requests.
    pub fn start() -> Result<Noida> {
        let bin = noida_binary();
        if !bin.is_file() {
            bail!(
                "noida-db is not installed at {}: the test command installs \
                 tests/python/requirements.txt into its virtualenv (or set RIFFLE_NOIDA to a \
                 noida-db {NOIDA_VERSION} launcher)",
                bin.display()
            );
        }
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("riffle-noida-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let out = std::fs::File::create(dir.join("noida.log"))?;
        let child = Command::new(&bin)
            .args([
                "start",
                "--host",
                "127.0.0.1",
                "--only",
                "kafka",
                "--kafka-port",
            ])
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(dir.join("data"))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let mut n = Noida {
            child: Some(child),
            port,
            dir,
        };
        n.wait_ready(Duration::from_secs(20))?;
        Ok(n)
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<()> {
        let start = Instant::now();
        let c: BaseConsumer = self.client_config().create()?;
        loop {
            if let Some(status) = exited(&mut self.child)? {
                let log = std::fs::read_to_string(self.dir.join("noida.log")).unwrap_or_default();
                bail!("noida-db exited with {status} while starting: {log}");
            }
            match c.fetch_metadata(None, Duration::from_millis(500)) {
                Ok(_) => return Ok(()),
                Err(e) if start.elapsed() > limit => {
                    bail!("noida-db on port {} does not answer: {e}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Client settings for this server: the bootstrap servers.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap());
        c
    }

    /// Creates a topic; waits until its metadata lists every partition.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        create_topic_with(self.client_config(), name, partitions).await
    }

    /// Grows a topic to `total` partitions (CreatePartitions); waits until metadata lists
    /// them all.
    pub async fn add_partitions(&self, topic: &str, total: i32) -> Result<()> {
        use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions};
        use rdkafka::client::DefaultClientContext;
        let admin: AdminClient<DefaultClientContext> = self.client_config().create()?;
        let r = admin
            .create_partitions(
                &[NewPartitions::new(topic, total as usize)],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await?;
        for x in r {
            x.map_err(|(t, e)| anyhow!("create partitions of {t}: {e}"))?;
        }
        let c: BaseConsumer = self.client_config().create()?;
        let start = Instant::now();
        loop {
            let md = c.fetch_metadata(Some(topic), Duration::from_secs(5))?;
            if md
                .topics()
                .first()
                .is_some_and(|t| t.partitions().len() >= total as usize)
            {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(20) {
                bail!("{topic} does not list {total} partitions");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A producer to this server.
    pub fn producer(&self) -> Result<FutureProducer> {
        Ok(producer_config(self.client_config()).create()?)
    }
}

impl Drop for Noida {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
