//! Test support (feature `testsuite`): a redis-server on a loopback port (Debian's
//! package, unpacked by `scripts/redis.sh`; `$RIFFLE_REDIS` points at its start script), and
//! `XADD`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use riffle_common::now_ms;

use crate::resp::{Connection, Reply};

/// A running redis-server; killed on drop.
pub struct RedisServer {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub address: String,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts redis-server on a free loopback port, nothing saved to disk.
    pub fn start() -> Result<RedisServer> {
        let bin = std::env::var_os("RIFFLE_REDIS")
            .map(PathBuf::from)
            .ok_or_else(|| anyhow!("RIFFLE_REDIS is not set: scripts/redis.sh installs redis-server and scripts/test.sh sets it"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir =
            std::env::temp_dir().join(format!("riffle-redis-{}-{}", std::process::id(), now_ms()));
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(dir.join("redis.log"))?;
        let child = Command::new(&bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut r = RedisServer {
            child,
            address: format!("127.0.0.1:{port}"),
            dir,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(&r.address).is_err() {
            if let Ok(Some(st)) = r.child.try_wait() {
                bail!("redis-server exited with {st}: {}", r.log_text());
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("redis-server did not listen within 20 s: {}", r.log_text());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(r)
    }

    /// What it logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// The stream config map that reads `keys` (comma-separated), JSON in field `value`.
    pub fn stream_config(&self, keys: &str) -> std::collections::BTreeMap<String, String> {
        let url = format!("redis://{}", self.address);
        [
            ("streamType", "redis"),
            ("stream.redis.topic.name", keys),
            ("stream.redis.url", url.as_str()),
            (
                "stream.redis.decoder.class.name",
                "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Appends values to a stream key (`XADD key * value <v>`), in order.
    pub async fn xadd(&self, key: &str, values: &[Vec<u8>]) -> Result<()> {
        let t = Duration::from_secs(10);
        let mut c = Connection::open(&self.address, None, 0, t).await?;
        for v in values {
            let reply = c
                .call(&[b"XADD", key.as_bytes(), b"*", b"value", v], t)
                .await?;
            if let Reply::Error(e) = reply {
                bail!("XADD {key}: {e}");
            }
        }
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
