//! Pinot's broker API (default port 8099): `POST|GET /query/sql`, `POST|GET /query`, and
//! `/health`. Query errors are answered with HTTP 200 and `exceptions`, as Pinot does,
//! unless the client sends `Pinot-Use-Http-Status-For-Errors: true`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use riffle_common::ErrorKind;
use riffle_query::{parse_query_options, BrokerResponse, QueryRequest};
use serde_json::Value;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::Services;

/// The broker's routes.
pub fn routes(state: Arc<Services>) -> Router {
    Router::new()
        .route("/health", get(|| async { "OK" }))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/query/sql", get(query_get).post(query_post))
        .route("/query", get(query_get).post(query_post))
        .fallback(crate::not_found)
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(state.auth.broker.clone()),
            crate::auth::broker,
        ))
        // Outermost: no body is read (not even by the access check) past its limit.
        .layer(axum::middleware::from_fn(crate::body::limit))
        .layer(axum::extract::DefaultBodyLimit::disable())
}

async fn respond(s: &Services, headers: &HeaderMap, req: QueryRequest) -> Response {
    let resp: BrokerResponse = s.query.execute(req).await;
    let use_status = headers
        .get("Pinot-Use-Http-Status-For-Errors")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let status = match resp.error_kind() {
        Some(kind) if use_status => crate::error::status_of(kind),
        _ => StatusCode::OK,
    };
    let mut r = (status, Json(resp.to_json())).into_response();
    if let Ok(v) = HeaderValue::from_str(&resp.error_code().to_string()) {
        r.headers_mut().insert("X-Pinot-Error-Code", v);
    }
    r
}

/// The tables an authenticated caller may read (`None`: all).
fn allowed(caller: Option<axum::Extension<Caller>>) -> Option<std::collections::BTreeSet<String>> {
    caller.and_then(|c| c.0 .0.and_then(|p| p.tables))
}

/// `POST /query/sql` with `{"sql": ..., "queryOptions": "k=v;..."}`.
pub async fn query_post(
    State(s): State<Arc<Services>>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Response {
    let body = match crate::body::read(req).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return ApiError::new(ErrorKind::BadRequest, format!("invalid JSON body: {e}"))
                .into_response()
        }
    };
    let Some(sql) = v.get("sql").and_then(|s| s.as_str()) else {
        return ApiError::bad_request("request body must have a string field 'sql'")
            .into_response();
    };
    let options = v
        .get("queryOptions")
        .and_then(|o| o.as_str())
        .map(parse_query_options)
        .unwrap_or_default();
    respond(
        &s,
        &headers,
        QueryRequest {
            sql: sql.to_string(),
            options,
            allowed_tables: allowed(caller),
        },
    )
    .await
}

/// `GET /query/sql?sql=...`.
pub async fn query_get(
    State(s): State<Arc<Services>>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(sql) = q.get("sql") else {
        return ApiError::bad_request("query parameter 'sql' is required").into_response();
    };
    let options = q
        .get("queryOptions")
        .map(|o| parse_query_options(o))
        .unwrap_or_default();
    respond(
        &s,
        &headers,
        QueryRequest {
            sql: sql.clone(),
            options,
            allowed_tables: allowed(caller),
        },
    )
    .await
}
