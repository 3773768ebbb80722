//! Test support: a local S3 server (moto's) on a free port, killed on drop.
//!
//! moto is installed by `scripts/moto.sh` at
//! `${RIFFLE_TOOLS:-$HOME/.cache/riffle/tools}/moto-5.2.5/bin/moto_server`; `RIFFLE_MOTO`
//! points at another `moto_server`. [`S3Server::start`] fails, saying how to install it,
//! when it is missing: the S3 tests never skip silently.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// The moto version `scripts/moto.sh` installs.
pub const MOTO_VERSION: &str = "5.2.5";

/// The access key id the server is used with (moto accepts any).
pub const ACCESS_KEY_ID: &str = "riffle";
/// The secret access key the server is used with (moto accepts any).
pub const SECRET_ACCESS_KEY: &str = "riffle-secret";
/// The region the server is used with.
pub const REGION: &str = "us-east-1";

/// Where moto's `moto_server` is: `RIFFLE_MOTO`, else the path `scripts/moto.sh` installs
/// to.
pub fn moto_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("RIFFLE_MOTO").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    tools_dir()
        .join(format!("moto-{MOTO_VERSION}"))
        .join("bin/moto_server")
}

/// Where the test tools are installed: `RIFFLE_TOOLS`, else `~/.cache/riffle/tools`.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("RIFFLE_TOOLS")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/"))
                .join(".cache/riffle/tools")
        })
}

/// A free loopback port (free when asked; another process may take it before it is used).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A local S3 server (moto) on a free loopback port. It starts with no bucket: create
/// them with [`S3Server::create_bucket`]. Objects live in the server's memory; the server
/// is killed on drop.
pub struct S3Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl S3Server {
    /// Starts the server and waits until it answers.
    pub fn start() -> Result<S3Server> {
        let bin = moto_binary();
        if !bin.is_file() {
            bail!(
                "moto's S3 server is not installed at {}: run scripts/moto.sh to install it \
                 (or set RIFFLE_MOTO to a moto_server binary)",
                bin.display()
            );
        }
        let mut last = None;
        // A free port may be taken between choosing and binding: try a few.
        for _ in 0..3 {
            match S3Server::try_start(&bin) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("moto_server did not start")))
    }

    fn try_start(bin: &Path) -> Result<S3Server> {
        let port = free_port()?;
        let log =
            std::env::temp_dir().join(format!("riffle-moto-{}-{port}.log", std::process::id()));
        let out = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let mut s = S3Server { child, port, log };
        let start = Instant::now();
        // Listing the buckets is the readiness check: it answers once the server serves.
        loop {
            if let Some(status) = s.child.try_wait()? {
                bail!(
                    "moto_server exited with {status} while starting on port {port}: {}",
                    s.log_tail()
                );
            }
            match s.http("GET", "/") {
                Ok(200) => return Ok(s),
                Ok(code) if start.elapsed() > Duration::from_secs(60) => {
                    bail!("moto_server answers {code} to listing the buckets")
                }
                Err(e) if start.elapsed() > Duration::from_secs(60) => {
                    bail!(
                        "moto_server on port {port} did not answer within 60 s: {e}: {}",
                        s.log_tail()
                    )
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Creates a bucket (S3 bucket names are 3 to 63 lower-case letters, digits, dots and
    /// hyphens).
    pub fn create_bucket(&self, name: &str) -> Result<()> {
        match self.http("PUT", &format!("/{name}"))? {
            200 => Ok(()),
            code => bail!("moto_server answers {code} to creating bucket '{name}'"),
        }
    }

    /// A bodiless HTTP/1.1 request; returns the status code.
    fn http(&self, method: &str, path: &str) -> Result<u16> {
        use std::io::{Read, Write};
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        )?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        let head = String::from_utf8_lossy(&buf);
        head.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| anyhow!("not an HTTP answer: {head}"))
    }

    /// The last lines of the server's output.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment with which a process using object_store's `from_env` (e.g. Tansu's
    /// S3 storage) reaches this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_ENDPOINT", &self.endpoint()),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Deep-store options (`DeepStore::open`) with which an `s3://` URI reaches this
    /// server.
    pub fn options(&self) -> BTreeMap<String, String> {
        [
            ("aws_endpoint", self.endpoint()),
            ("aws_region", REGION.to_string()),
            ("aws_access_key_id", ACCESS_KEY_ID.to_string()),
            ("aws_secret_access_key", SECRET_ACCESS_KEY.to_string()),
            ("aws_allow_http", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
