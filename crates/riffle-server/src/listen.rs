//! The HTTP listeners: an accept loop per port with a connection limit, a header read
//! timeout, CORS only for configured origins and optional TLS (rustls, PEM files).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower_http::cors::CorsLayer;
use tracing::{debug, warn};

/// How the HTTP listeners treat connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// Origins a browser may call the APIs from (CORS); empty: none (no CORS headers).
    /// `*` allows any origin.
    pub cors_origins: Vec<String>,
    /// A connection that has not sent a request's headers within this time (counted from
    /// when the server starts waiting for them, so idle keep-alive connections too) is
    /// closed.
    pub header_read_timeout: Duration,
    /// Open connections per listener; past it new connections are closed at once.
    pub max_connections: usize,
    /// TLS on both listeners; `None`: plain HTTP.
    pub tls: Option<TlsConfig>,
}

/// A certificate chain and its private key, for both listeners.
#[derive(Clone)]
pub struct TlsConfig(Arc<rustls::ServerConfig>);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig")
    }
}

impl PartialEq for TlsConfig {
    fn eq(&self, other: &TlsConfig) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TlsConfig {}

impl TlsConfig {
    /// From PEM files: the certificate chain (leaf first) and its private key (PKCS#8,
    /// PKCS#1 or SEC1). An error names the file and what is wrong.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsConfig, String> {
        let certs = CertificateDer::pem_file_iter(cert)
            .and_then(|i| i.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("{}: not a PEM certificate chain: {e}", cert.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: no certificate in the file", cert.display()));
        }
        let key_der = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("{}: not a PEM private key: {e}", key.display()))?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            format!(
                "{} and {}: the key does not fit the certificate: {e}",
                cert.display(),
                key.display()
            )
        })?;
        Ok(TlsConfig(Arc::new(config)))
    }
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            cors_origins: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            tls: None,
        }
    }
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_methods(tower_http::cors::Any)
        .allow_headers(tower_http::cors::Any);
    if origins.iter().any(|o| o == "*") {
        return Some(layer.allow_origin(tower_http::cors::Any));
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
        .collect();
    Some(layer.allow_origin(list))
}

/// Serves `router` on `listener` until `cancel` fires, HTTP/1.1, within `http`'s limits.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    cancel: CancellationToken,
    role: &'static str,
    http: HttpConfig,
) {
    let router = match cors(&http.cors_origins) {
        Some(layer) => router.layer(layer),
        None => router,
    };
    let slots = Arc::new(Semaphore::new(http.max_connections.max(1)));
    // Connections finish (gracefully, within 5 s) before `serve` returns: they hold the
    // services, which hold the catalog.
    let mut connections = tokio::task::JoinSet::new();
    let mut refused: u64 = 0;
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    warn!(role, error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                warn!(role, %peer, refused, limit = http.max_connections, "connection limit reached; connection closed");
            }
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let cancel = cancel.clone();
        let timeout = http.header_read_timeout;
        let tls = http.tls.clone();
        connections.spawn(async move {
            match tls {
                None => connection(stream, service, timeout, cancel).await,
                Some(tls) => {
                    // The handshake counts against the header timeout too.
                    let acceptor = TlsAcceptor::from(tls.0);
                    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => connection(s, service, timeout, cancel).await,
                        Ok(Err(e)) => debug!(role, %peer, error = %e, "tls handshake failed"),
                        Err(_) => debug!(role, %peer, "tls handshake timed out"),
                    }
                }
            }
            drop(slot);
        });
    }
    while connections.join_next().await.is_some() {}
}

/// Serves one connection (HTTP/1.1) until it ends, or until `cancel` (then gracefully,
/// within 5 s).
async fn connection<I>(
    io: I,
    service: TowerToHyperService<Router>,
    header_timeout: Duration,
    cancel: CancellationToken,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_dir() -> std::path::PathBuf {
        // The directory cargo runs the test in (a build reused from another checkout keeps
        // the compile-time path).
        std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("../../tests/data/tls")
    }

    #[test]
    fn pem_files_load_and_bad_ones_are_named() {
        let d = tls_dir();
        assert!(TlsConfig::from_pem_files(&d.join("server.pem"), &d.join("server.key")).is_ok());
        let e = TlsConfig::from_pem_files(&d.join("README"), &d.join("server.key")).unwrap_err();
        assert!(e.contains("README"), "{e}");
        let e = TlsConfig::from_pem_files(&d.join("server.pem"), &d.join("ca.pem")).unwrap_err();
        assert!(e.contains("ca.pem"), "{e}");
        // A key that is not the certificate's.
        let e = TlsConfig::from_pem_files(&d.join("ca.pem"), &d.join("server.key")).unwrap_err();
        assert!(e.contains("does not fit"), "{e}");
    }
}
