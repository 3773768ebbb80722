//! Pinot's controller API (default port 9000): schemas, tables, table configs, segments,
//! segment push and download and file ingestion ([`upload`]), consumption control, health,
//! and the `/sql` query proxy. Bodies and statuses follow
//! PINOT-SPEC §6.1. Each handler parses its request (names, parameters, bodies), calls the
//! controller role ([`riffle_controller::TableManager`]) and answers a typed model
//! ([`crate::models`]); it decides nothing itself.

mod consumption;
mod schemas;
mod segments;
mod tables;
mod upload;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use axum::routing::{get, post};
use axum::Router;
use riffle_common::{TableName, TableType};
use riffle_config::stream::{is_secret_key, SECRET_MASK};
use serde_json::Value;

use crate::error::ApiError;
use crate::Services;

/// The controller's routes.
pub fn routes(state: Arc<Services>) -> Router {
    Router::new()
        .route("/health", get(|| async { "OK" }))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/schemas", get(schemas::list).post(schemas::add))
        .route(
            "/schemas/{name}",
            get(schemas::get_one)
                .put(schemas::update)
                .delete(schemas::delete),
        )
        .route("/tables", get(tables::list).post(tables::add))
        .route(
            "/tables/{name}",
            get(tables::get_one)
                .put(tables::update)
                .delete(tables::delete),
        )
        .route("/tables/{name}/schema", get(schemas::of_table))
        .route(
            "/tables/{name}/consumingSegmentsInfo",
            get(consumption::consuming_info),
        )
        .route("/tableConfigs", post(tables::add_configs))
        .route(
            "/tableConfigs/{name}",
            get(tables::get_configs).delete(tables::delete_configs),
        )
        .route("/tables/{name}/pauseConsumption", post(consumption::pause))
        .route(
            "/tables/{name}/resumeConsumption",
            post(consumption::resume),
        )
        .route("/tables/{name}/pauseStatus", get(consumption::pause_status))
        .route(
            "/tables/{name}/forceCommit",
            post(consumption::force_commit),
        )
        .route(
            "/tables/forceCommitStatus/{job}",
            get(consumption::force_commit_status),
        )
        .route("/segments", post(upload::upload))
        .route("/v2/segments", post(upload::upload))
        .route("/ingestFromFile", post(upload::ingest_from_file))
        .route("/ingestFromURI", post(upload::ingest_from_uri))
        .route("/segments/{name}", get(segments::list))
        .route(
            "/segments/{name}/{segment}",
            get(upload::download).delete(segments::delete),
        )
        .route(
            "/segments/{name}/{segment}/metadata",
            get(segments::metadata),
        )
        .route(
            "/sql",
            get(crate::broker::query_get).post(crate::broker::query_post),
        )
        .fallback(crate::not_found)
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(state.auth.controller.clone()),
            crate::auth::controller,
        ))
        // Outermost: no body is read (not even by the access check) past its limit.
        .layer(axum::middleware::from_fn(crate::body::limit))
        .layer(axum::extract::DefaultBodyLimit::disable())
}

/// The body as JSON bytes: a JSON body, or the single file part of a multipart body (what
/// `pinot-admin.sh AddSchema` sends).
async fn json_body(req: Request) -> Result<Bytes, ApiError> {
    let is_multipart = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if is_multipart {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid multipart body: {e}")))?;
        let field = mp
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid multipart body: {e}")))?
            .ok_or_else(|| ApiError::bad_request("multipart body has no file part"))?;
        return field
            .bytes()
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid multipart body: {e}")));
    }
    crate::body::read(req).await
}

/// A table named in a URL path (raw, or with a type suffix). A name that cannot be a table
/// name names no table: 404.
fn table_in_path(name: &str) -> Result<(TableName, Option<TableType>), ApiError> {
    TableName::parse_with_optional_type(name)
        .map_err(|_| ApiError::not_found(format!("Table {name} does not exist")))
}

/// Replaces secret values (passwords, JAAS configs, keys) by a mask, anywhere in a config.
fn mask_secrets(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if val.is_string() && is_secret_key(k) {
                    *val = Value::String(SECRET_MASK.into());
                } else {
                    mask_secrets(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask_secrets),
        _ => {}
    }
}

/// Puts the stored secret back wherever an update sends the mask it was shown.
fn restore_secrets(new: &mut Value, stored: &Value) {
    match (new, stored) {
        (Value::Object(n), Value::Object(o)) => {
            for (k, val) in n.iter_mut() {
                match (val.as_str(), o.get(k)) {
                    (Some(SECRET_MASK), Some(old)) => *val = old.clone(),
                    (_, Some(old)) => restore_secrets(val, old),
                    _ => {}
                }
            }
        }
        (Value::Array(n), Value::Array(o)) => {
            for (a, b) in n.iter_mut().zip(o.iter()) {
                restore_secrets(a, b);
            }
        }
        _ => {}
    }
}
