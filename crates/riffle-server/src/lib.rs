//! HTTP: Pinot's controller API (port 9000) and broker API (port 8099), as thin, typed
//! adapters over the controller role ([`riffle_controller::TableManager`]) and the query
//! engine ([`riffle_query::QueryEngine`]).
//!
//! Owns the routes ([`controller::routes`], [`broker::routes`]), the request and response
//! models ([`models`]) and the one mapping from an error's kind to an HTTP status and
//! Pinot's error body ([`error::ApiError`]). It builds nothing: the node composes the
//! services and binds the listeners ([`serve`]).
//!
//! Invariants: every error leaves through [`error::ApiError`]; a handler parses its request
//! (names, parameters, bodies) and calls one service; it never touches the catalog itself.

pub mod auth;
pub mod broker;
pub mod controller;
pub mod error;
pub mod models;

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use riffle_controller::TableManager;
use riffle_query::QueryEngine;
use riffle_segment::SegmentRegistry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_http::cors::CorsLayer;
use tracing::warn;

/// What the HTTP handlers call.
pub struct Services {
    /// The controller role.
    pub tables: Arc<TableManager>,
    /// Queries.
    pub query: Arc<QueryEngine>,
    /// Segments as queries see them (read for segment metadata).
    pub segments: Arc<SegmentRegistry>,
    /// This server's instance name, as `consumingSegmentsInfo` shows it.
    pub server_name: String,
    /// Who may call the APIs (none configured: open).
    pub auth: auth::AuthConfig,
}

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
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            cors_origins: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
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
        connections.spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .keep_alive(true);
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = cancel.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
            drop(slot);
        });
    }
    while connections.join_next().await.is_some() {}
}

/// Unknown routes: Pinot's error body with 404.
pub(crate) async fn not_found(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}
