//! `/schemas` and `/tables/{t}/schema`.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::Json;
use riffle_common::{ErrorKind, TableName};
use riffle_config::Schema;
use serde_json::Value;

use super::{json_body, table_in_path};
use crate::error::ApiError;
use crate::models::{SchemaParams, StatusResponse};
use crate::Services;

/// `GET /schemas`.
pub(super) async fn list(State(s): State<Arc<Services>>) -> Result<Json<Vec<String>>, ApiError> {
    Ok(Json(s.tables.schema_names().await?))
}

fn parse(bytes: &[u8]) -> Result<Schema, ApiError> {
    Schema::from_json(bytes).map_err(|e| ApiError::bad_request(format!("Invalid schema: {e}")))
}

/// A stored schema, or 404 `Schema not found`.
pub(super) async fn stored(s: &Services, name: &str) -> Result<Schema, ApiError> {
    let not_found = || ApiError::not_found("Schema not found");
    let name = TableName::parse(name).map_err(|_| not_found())?;
    s.tables.schema(&name).await?.ok_or_else(not_found)
}

/// `POST /schemas[?override=false]`.
pub(super) async fn add(
    State(s): State<Arc<Services>>,
    Query(q): Query<SchemaParams>,
    req: Request,
) -> Result<Json<StatusResponse>, ApiError> {
    let schema = parse(&json_body(req).await?)?;
    let name = schema.schema_name.clone();
    let unrecognized = schema.unrecognized();
    s.tables.put_schema(schema, q.overwrite()).await?;
    Ok(Json(StatusResponse::with_unrecognized(
        format!("{name} successfully added"),
        unrecognized,
    )))
}

/// `GET /schemas/{name}`.
pub(super) async fn get_one(
    State(s): State<Arc<Services>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(stored(&s, &name).await?.to_json()))
}

/// `PUT /schemas/{name}`.
pub(super) async fn update(
    State(s): State<Arc<Services>>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Json<StatusResponse>, ApiError> {
    let schema = parse(&json_body(req).await?)?;
    if schema.schema_name != name {
        return Err(ApiError::bad_request(format!(
            "Schema name mismatch for uploaded schema, tried to add schema with name {} as {name}",
            schema.schema_name
        )));
    }
    stored(&s, &name).await?;
    let unrecognized = schema.unrecognized();
    s.tables.put_schema(schema, true).await?;
    Ok(Json(StatusResponse::with_unrecognized(
        format!("{name} successfully added"),
        unrecognized,
    )))
}

/// `DELETE /schemas/{name}`.
pub(super) async fn delete(
    State(s): State<Arc<Services>>,
    Path(name): Path<String>,
) -> Result<Json<StatusResponse>, ApiError> {
    let n = TableName::parse(&name)
        .map_err(|_| ApiError::new(ErrorKind::NotFound, format!("schema '{name}' not found")))?;
    s.tables.delete_schema(&n).await?;
    Ok(Json(StatusResponse::status(format!(
        "Schema {name} deleted"
    ))))
}

/// `GET /tables/{t}/schema`.
pub(super) async fn of_table(
    State(s): State<Arc<Services>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (raw, _) = table_in_path(&name).map_err(|_| ApiError::not_found("Schema not found"))?;
    Ok(Json(stored(&s, raw.as_str()).await?.to_json()))
}
