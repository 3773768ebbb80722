//! TLS for the SSL tests: throwaway certificates made with `openssl`, and a `socat`
//! terminator in front of a broker.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::free_port;

/// A throwaway certificate authority and a server certificate it signed for
/// `127.0.0.1` and `localhost`, made with the `openssl` command in a directory of their
/// own (removed on drop); and a second, unrelated CA, which must not verify the server.
pub struct TestCerts {
    dir: PathBuf,
}

impl TestCerts {
    /// Generates the certificates (EC P-256 keys, valid for two days).
    pub fn generate() -> Result<TestCerts> {
        let dir = std::env::temp_dir().join(format!(
            "riffle-certs-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir)?;
        let certs = TestCerts { dir };
        let d = certs.dir.as_path();
        let ca = |name: &str, cn: &str| -> Result<()> {
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.pem"),
                    "-days",
                    "2",
                    "-subj",
                    &format!("/CN={cn}"),
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            )
        };
        ca("ca", "Riffle Test CA")?;
        ca("wrong-ca", "Some Other CA")?;
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        )?;
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n",
        )?;
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        )?;
        // socat wants the certificate and its key in one file.
        let mut both = std::fs::read(d.join("server.crt"))?;
        both.extend(std::fs::read(d.join("server.key"))?);
        std::fs::write(d.join("server.pem"), both)?;
        Ok(certs)
    }

    /// The CA certificate (PEM) that signed the server's.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Another CA's certificate (PEM), which did not sign the server's.
    pub fn wrong_ca(&self) -> PathBuf {
        self.dir.join("wrong-ca.pem")
    }

    /// The server certificate followed by its private key (PEM).
    pub fn server_pem(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn openssl(dir: &std::path::Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .context("cannot run openssl (the openssl command makes the test certificates)")?;
    if !out.status.success() {
        bail!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A TLS terminator in front of a broker: `socat OPENSSL-LISTEN` on a free loopback port,
/// forwarding each connection in plain text to the broker's port (Tansu 0.6's own TLS
/// flags do not work). Start the broker with [`TansuOptions::advertised_port`] set to
/// [`TlsProxy::port`] so that clients come back through it. socat is installed by
/// `scripts/socat.sh`; killed on drop.
pub struct TlsProxy {
    child: Child,
    port: u16,
}

impl TlsProxy {
    /// Reserves a free port for the proxy (start it with [`TlsProxy::start`] on it).
    pub fn free_port() -> Result<u16> {
        free_port()
    }

    /// Starts socat on `port` with the certificate and key in `cert_pem`, forwarding to
    /// `127.0.0.1:<target>`; waits until it listens.
    pub fn start(port: u16, cert_pem: &std::path::Path, target: u16) -> Result<TlsProxy> {
        let listen = format!(
            "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},verify=0",
            cert_pem.display()
        );
        let child = Command::new("socat")
            .args([listen, format!("TCP:127.0.0.1:{target}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run socat: run scripts/socat.sh to install it")?;
        let mut p = TlsProxy { child, port };
        let start = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        loop {
            if let Some(status) = p.child.try_wait()? {
                bail!("socat exited with {status} while starting on port {port}");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(p);
            }
            if start.elapsed() > Duration::from_secs(10) {
                bail!("socat did not listen on port {port} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The TLS port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
