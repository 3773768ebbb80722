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

pub mod broker;
pub mod controller;
pub mod error;
pub mod models;

use std::sync::Arc;

use axum::Router;
use riffle_controller::TableManager;
use riffle_query::QueryEngine;
use riffle_segment::SegmentRegistry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::CorsLayer;
use tracing::error;

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
}

/// Serves `router` on `listener` until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    cancel: CancellationToken,
    role: &'static str,
) {
    let router = router.layer(CorsLayer::permissive());
    let res = axum::serve(listener, router)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await;
    if let Err(e) = res {
        error!(role, error = %e, "http server failed");
    }
}

/// Unknown routes: Pinot's error body with 404.
pub(crate) async fn not_found(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}
