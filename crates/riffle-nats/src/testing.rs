//! Test support (feature `testsuite`): a nats-server with JetStream on a loopback port
//! (Debian's package, unpacked by `scripts/nats.sh`; `$RIFFLE_NATS` points at the binary),
//! streams and publishing.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use riffle_common::now_ms;

use crate::client::Connection;

/// A running nats-server; killed on drop.
pub struct NatsServer {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub address: String,
    dir: PathBuf,
}

impl NatsServer {
    /// Starts nats-server with JetStream on a free loopback port.
    pub fn start() -> Result<NatsServer> {
        let bin = std::env::var_os("RIFFLE_NATS")
            .map(PathBuf::from)
            .ok_or_else(|| anyhow!("RIFFLE_NATS is not set: scripts/nats.sh installs nats-server and scripts/test.sh sets it"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir =
            std::env::temp_dir().join(format!("riffle-nats-{}-{}", std::process::id(), now_ms()));
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(dir.join("nats.log"))?;
        let child = Command::new(&bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.join("js"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut n = NatsServer {
            child,
            address: format!("127.0.0.1:{port}"),
            dir,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(&n.address).is_err() {
            if let Ok(Some(st)) = n.child.try_wait() {
                bail!("nats-server exited with {st}: {}", n.log_text());
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("nats-server did not listen within 20 s: {}", n.log_text());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(n)
    }

    /// What it logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("nats.log")).unwrap_or_default()
    }

    /// The stream config map that reads `streams` (comma-separated).
    pub fn stream_config(&self, streams: &str) -> std::collections::BTreeMap<String, String> {
        let url = format!("nats://{}", self.address);
        [
            ("streamType", "nats"),
            ("stream.nats.topic.name", streams),
            ("stream.nats.url", url.as_str()),
            (
                "stream.nats.decoder.class.name",
                "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Creates a stream holding subject `<stream>.>`.
    pub async fn create_stream(&self, stream: &str) -> Result<()> {
        let t = Duration::from_secs(10);
        let mut c = Connection::open(&self.address, None, t).await?;
        c.create_stream(stream, &[format!("{stream}.>")], t).await?;
        Ok(())
    }

    /// Publishes values to `<stream>.events`, in order, each acknowledged by JetStream.
    pub async fn publish(&self, stream: &str, values: &[Vec<u8>]) -> Result<()> {
        let t = Duration::from_secs(10);
        let mut c = Connection::open(&self.address, None, t).await?;
        let subject = format!("{stream}.events");
        for v in values {
            c.publish(&subject, v, t).await?;
        }
        Ok(())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
