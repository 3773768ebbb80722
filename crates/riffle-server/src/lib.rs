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
pub mod body;
pub mod broker;
pub mod controller;
pub mod error;
pub mod listen;
pub mod metrics;
pub mod models;

pub use listen::{serve, HttpConfig, TlsConfig};

use std::sync::Arc;

use riffle_controller::TableManager;
use riffle_query::QueryEngine;
use riffle_segment::SegmentRegistry;

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

/// Unknown routes: Pinot's error body with 404.
pub(crate) async fn not_found(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}
