//! Test support (feature `testsuite`): a kinesis-mock server and helpers to write to it.
//!
//! kinesis-mock (npm `kinesis-local`, installed by `scripts/kinesis-mock.sh`; the tests read
//! its `main.js` from `$RIFFLE_KINESIS_MOCK`, else the install path) binds every address and
//! cannot be told otherwise. It is therefore only ever started inside a private network
//! namespace: [`isolated`] re-runs the calling test under `unshare -n` with loopback up,
//! and [`KinesisMock::start`] refuses to start anywhere else.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::client::KinesisClient;
use crate::sigv4::Credentials;

/// The region the tests use.
pub const REGION: &str = "us-east-1";
/// The environment variable set in the namespace a test was re-run in.
const ISOLATED_ENV: &str = "RIFFLE_TEST_NETNS";

fn netns() -> Option<String> {
    std::fs::read_link("/proc/self/ns/net")
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Whether this process runs in a network namespace other than the one [`isolated`] was
/// called from (which it records in the environment of the re-run).
pub fn in_private_netns() -> bool {
    match (std::env::var(ISOLATED_ENV), netns()) {
        (Ok(outer), Some(mine)) => outer != mine,
        _ => false,
    }
}

/// Runs the test `name` of this test binary again inside a new network namespace (loopback
/// up) and checks that it passed. Returns `true` when the caller is that re-run and should
/// run the test's body; `false` after checking the re-run from outside.
pub fn isolated(name: &str) -> bool {
    if in_private_netns() {
        return true;
    }
    assert!(
        std::env::var_os(ISOLATED_ENV).is_none(),
        "test {name} was re-run but is still in the outer network namespace"
    );
    let exe = std::env::current_exe().expect("the test binary's path");
    let status = Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$@\"", "sh"])
        .arg(&exe)
        .args(["--exact", name, "--nocapture", "--test-threads", "1"])
        .env(ISOLATED_ENV, netns().unwrap_or_default())
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run `unshare -n` for test {name} (root and util-linux's unshare are needed): {e}")
        });
    assert!(
        status.success(),
        "test {name}, run in its own network namespace, failed ({status}); its output is above"
    );
    false
}

/// The kinesis-mock `main.js`.
pub fn mock_main() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("RIFFLE_KINESIS_MOCK") {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").ok_or_else(|| anyhow!("HOME is not set"))?;
    let p = PathBuf::from(home)
        .join(".cache/riffle/tools/kinesis-local-0.6.2/node_modules/kinesis-local/main.js");
    if p.is_file() {
        Ok(p)
    } else {
        bail!(
            "kinesis-mock is not installed: run scripts/kinesis-mock.sh (or set RIFFLE_KINESIS_MOCK to its main.js)"
        )
    }
}

/// A free port on loopback.
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A running kinesis-mock; killed on drop.
pub struct KinesisMock {
    child: Child,
    /// Its plain HTTP endpoint, `http://127.0.0.1:<port>`.
    pub endpoint: String,
    log: PathBuf,
    _dir: tempfile_dir::Dir,
}

/// A temporary directory without depending on `tempfile` in the library.
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> std::io::Result<Dir> {
            let p = std::env::temp_dir().join(format!(
                "riffle-kinesis-mock-{}-{}",
                std::process::id(),
                riffle_common::now_ms()
            ));
            std::fs::create_dir_all(&p)?;
            Ok(Dir(p))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl KinesisMock {
    /// Starts kinesis-mock on free loopback ports; only inside a private network namespace.
    pub async fn start() -> Result<KinesisMock> {
        if !in_private_netns() {
            bail!(
                "kinesis-mock binds every address: start it only inside a private network \
                 namespace (wrap the test with testing::isolated)"
            );
        }
        let main = mock_main()?;
        let cert = main.with_file_name("server.json");
        let (plain, tls) = (free_port()?, free_port()?);
        let dir = tempfile_dir::Dir::new()?;
        let log = dir.path().join("kinesis-mock.log");
        let out = std::fs::File::create(&log)?;
        let node = std::env::var_os("RIFFLE_NODE").unwrap_or_else(|| "node".into());
        let child = Command::new(node)
            .arg(&main)
            .current_dir(dir.path())
            .env("KINESIS_MOCK_CERT_PATH", &cert)
            .env("KINESIS_MOCK_PLAIN_PORT", plain.to_string())
            .env("KINESIS_MOCK_TLS_PORT", tls.to_string())
            .env("LOG_LEVEL", "WARN")
            .env("CREATE_STREAM_DURATION", "20ms")
            .env("SPLIT_SHARD_DURATION", "20ms")
            .env("MERGE_SHARDS_DURATION", "20ms")
            .env("UPDATE_SHARD_COUNT_DURATION", "20ms")
            .env("DELETE_STREAM_DURATION", "20ms")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting node {}", main.display()))?;
        let mut mock = KinesisMock {
            child,
            endpoint: format!("http://127.0.0.1:{plain}"),
            log,
            _dir: dir,
        };
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = http
                .get(format!("{}/healthcheck", mock.endpoint))
                .timeout(Duration::from_secs(1))
                .send()
                .await
            {
                if r.status().is_success() {
                    return Ok(mock);
                }
            }
            if let Ok(Some(st)) = mock.child.try_wait() {
                bail!("kinesis-mock exited with {st}: {}", mock.log_text());
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "kinesis-mock did not answer within 60 s: {}",
                    mock.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What it logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client of it.
    pub fn client(&self) -> KinesisClient {
        KinesisClient::new(
            REGION,
            Some(&self.endpoint),
            Credentials {
                access_key: "AKIDRIFFLETEST".into(),
                secret_key: "riffle-test-secret".into(),
                session_token: None,
            },
            Duration::from_secs(5),
        )
        .expect("a client of the mock")
    }

    /// Creates a stream and waits until it is active.
    pub async fn create_stream(&self, name: &str, shards: u32) -> Result<()> {
        let c = self.client();
        c.create_stream(name, shards, Duration::from_secs(10))
            .await?;
        self.wait_active(name).await
    }

    /// Waits until a stream is `ACTIVE`.
    pub async fn wait_active(&self, name: &str) -> Result<()> {
        let c = self.client();
        let started = Instant::now();
        loop {
            if c.stream_status(name, Duration::from_secs(10)).await? == "ACTIVE" {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("stream {name} is not active after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Writes values to one shard (by its starting hash key); returns their sequence numbers.
    pub async fn put(&self, stream: &str, shard: u32, values: &[Vec<u8>]) -> Result<Vec<String>> {
        let c = self.client();
        let id = crate::metadata::shard_of(riffle_common::PartitionId(shard));
        let shards = c.list_shards(stream, Duration::from_secs(10)).await?;
        let s = shards
            .iter()
            .find(|s| s.shard_id == id)
            .ok_or_else(|| anyhow!("stream {stream} has no shard {id}"))?;
        let key = s
            .hash_key_range
            .as_ref()
            .map(|h| h.starting_hash_key.clone())
            .ok_or_else(|| anyhow!("shard {id} has no hash key range"))?;
        let mut out = Vec::new();
        for chunk in values.chunks(500) {
            let records: Vec<(String, Vec<u8>)> =
                chunk.iter().map(|v| ("k".to_string(), v.clone())).collect();
            let put = c
                .put_records(stream, &records, Some(&key), Duration::from_secs(60))
                .await?;
            for (got, seq) in put {
                if got != id {
                    bail!("a record for {id} went to {got}");
                }
                out.push(seq);
            }
        }
        Ok(out)
    }

    /// The Pinot stream config map that reads `stream` (JSON decoder, Pinot's bare Kinesis
    /// keys).
    pub fn stream_config(&self, stream: &str) -> std::collections::BTreeMap<String, String> {
        [
            ("streamType", "kinesis"),
            ("stream.kinesis.topic.name", stream),
            (
                "stream.kinesis.consumer.factory.class.name",
                crate::FACTORY_CLASS,
            ),
            (
                "stream.kinesis.decoder.class.name",
                "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
            ),
            ("region", REGION),
            ("endpoint", self.endpoint.as_str()),
            ("accessKey", "AKIDRIFFLETEST"),
            ("secretKey", "riffle-test-secret"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

impl Drop for KinesisMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
