//! Test support (feature `testsuite`): a pulsar-lite broker (PyPI `pulsar-lite`, whose wheel
//! carries the binary; `$RIFFLE_PULSAR_LITE` points at it) on a loopback port, and a
//! producer.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use riffle_common::now_ms;

use crate::connection::Connection;
use crate::proto::{self, kind, BaseCommand, MessageMetadata};

/// A running pulsar-lite; killed on drop.
pub struct PulsarLite {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub address: String,
    dir: PathBuf,
}

impl PulsarLite {
    /// Starts pulsar-lite on a free loopback port, metrics off (else it opens 0.0.0.0:8080).
    pub fn start() -> Result<PulsarLite> {
        Self::start_with_partitions(0)
    }

    /// Starts pulsar-lite whose topics are made with `partitions` partitions (0: not
    /// partitioned); pulsar-lite has no per-topic setting.
    pub fn start_with_partitions(partitions: u32) -> Result<PulsarLite> {
        let bin = std::env::var_os("RIFFLE_PULSAR_LITE")
            .map(PathBuf::from)
            .ok_or_else(|| anyhow!("RIFFLE_PULSAR_LITE is not set: scripts/test.sh installs pulsar-lite and sets it"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir =
            std::env::temp_dir().join(format!("riffle-pulsar-{}-{}", std::process::id(), now_ms()));
        std::fs::create_dir_all(&dir)?;
        let conf = dir.join("pulsar-lite.toml");
        std::fs::write(
            &conf,
            format!(
                "db_path = \"{}\"\nlog_level = \"warn\"\ndefault_partitions = {partitions}\n\n[metrics]\nenabled = false\n",
                dir.join("data").display()
            ),
        )?;
        let log = std::fs::File::create(dir.join("pulsar-lite.log"))?;
        let child = Command::new(&bin)
            .arg("--config")
            .arg(&conf)
            .arg("--addr")
            .arg(format!("127.0.0.1:{port}"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut p = PulsarLite {
            child,
            address: format!("127.0.0.1:{port}"),
            dir,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(&p.address).is_err() {
            if let Ok(Some(st)) = p.child.try_wait() {
                bail!("pulsar-lite exited with {st}: {}", p.log_text());
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("pulsar-lite did not listen within 20 s: {}", p.log_text());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(p)
    }

    /// What it logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("pulsar-lite.log")).unwrap_or_default()
    }

    /// The stream config map that reads `topic`.
    pub fn stream_config(&self, topic: &str) -> std::collections::BTreeMap<String, String> {
        let url = format!("pulsar://{}", self.address);
        [
            ("streamType", "pulsar"),
            ("stream.pulsar.topic.name", topic),
            ("stream.pulsar.bootstrap.servers", url.as_str()),
            (
                "stream.pulsar.consumer.factory.class.name",
                crate::FACTORY_CLASS,
            ),
            (
                "stream.pulsar.decoder.class.name",
                "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Sends values to a topic, one message each, in order; returns when all are stored.
    pub async fn produce(&self, topic: &str, values: &[Vec<u8>]) -> Result<()> {
        let t = Duration::from_secs(10);
        let mut conn = Connection::open(&self.address, None, t).await?;
        let request_id = conn.request_id();
        let mut cmd = BaseCommand::of(kind::PRODUCER);
        cmd.producer = Some(proto::CommandProducer {
            topic: crate::config::full_topic(topic).map_err(|e| anyhow!(e))?,
            producer_id: 1,
            request_id,
            producer_name: None,
        });
        let answer = conn.request(&cmd, request_id, "create producer", t).await?;
        let name = answer
            .producer_success
            .map(|s| s.producer_name)
            .ok_or_else(|| anyhow!("no PRODUCER_SUCCESS"))?;
        let base = now_ms() as u64 * 1000;
        let deadline = tokio::time::Instant::now() + t + Duration::from_millis(values.len() as u64);
        let mut receipts = 0;
        // At most 500 sends wait for their receipts: the broker stops reading a client that
        // does not read its answers.
        for (i, v) in values.iter().enumerate() {
            while i - receipts >= 500 {
                receipts += Self::receipt(&mut conn, deadline, receipts, values.len()).await?;
            }
            let seq = base + i as u64;
            let mut send = BaseCommand::of(kind::SEND);
            send.send = Some(proto::CommandSend {
                producer_id: 1,
                sequence_id: seq,
                num_messages: None,
            });
            let meta = MessageMetadata {
                producer_name: name.clone(),
                sequence_id: seq,
                publish_time: now_ms() as u64,
                ..Default::default()
            };
            conn.send(&send, Some((&meta, v))).await?;
        }
        while receipts < values.len() {
            receipts += Self::receipt(&mut conn, deadline, receipts, values.len()).await?;
        }
        Ok(())
    }
}

impl PulsarLite {
    /// Reads frames until one send receipt (1) or something else (0).
    async fn receipt(
        conn: &mut Connection,
        deadline: tokio::time::Instant,
        got: usize,
        want: usize,
    ) -> Result<usize> {
        let f = conn
            .read_frame(deadline)
            .await?
            .ok_or_else(|| anyhow!("{got} of {want} send receipts in time"))?;
        match f.command.r#type {
            kind::SEND_RECEIPT => Ok(1),
            kind::SEND_ERROR => bail!("send failed: {:?}", f.command.send_error),
            _ => Ok(0),
        }
    }
}

impl Drop for PulsarLite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
