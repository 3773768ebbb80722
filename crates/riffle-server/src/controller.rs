//! Pinot's controller API (default port 9000): schemas, tables, table configs, segments,
//! health, and the `/sql` query proxy. Bodies and statuses follow PINOT-SPEC §6.1.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use riffle_catalog::SegmentStatus;
use riffle_common::{split_table_name, table_name_with_type, ErrorCode, TableType};
use riffle_config::stream::{is_secret_key, SECRET_MASK};
use riffle_config::{Schema, TableConfig};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::AppState;

/// The controller's routes.
pub fn routes(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(|| async { "OK" }))
        .route("/schemas", get(list_schemas).post(add_schema))
        .route(
            "/schemas/{name}",
            get(get_schema).put(update_schema).delete(delete_schema),
        )
        .route("/tables", get(list_tables).post(add_table))
        .route(
            "/tables/{name}",
            get(get_table).put(update_table).delete(delete_table),
        )
        .route("/tables/{name}/schema", get(get_table_schema))
        .route("/tables/{name}/consumingSegmentsInfo", get(consuming_info))
        .route("/tableConfigs", post(add_table_configs))
        .route(
            "/tableConfigs/{name}",
            get(get_table_configs).delete(delete_table_configs),
        )
        .route("/tables/{name}/pauseConsumption", post(pause_consumption))
        .route("/tables/{name}/resumeConsumption", post(resume_consumption))
        .route("/tables/{name}/pauseStatus", get(pause_status))
        .route("/tables/{name}/forceCommit", post(force_commit))
        .route("/tables/forceCommitStatus/{job}", get(force_commit_status))
        .route("/segments/{name}", get(list_segments))
        .route(
            "/segments/{name}/{segment}",
            axum::routing::delete(delete_segment),
        )
        .route("/segments/{name}/{segment}/metadata", get(segment_metadata))
        .route(
            "/sql",
            get(crate::broker::query_get).post(crate::broker::query_post),
        )
        .fallback(crate::not_found)
        .with_state(state)
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
    axum::body::to_bytes(req.into_body(), 64 * 1024 * 1024)
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read body: {e}")))
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

fn flag(q: &BTreeMap<String, String>, key: &str, default: bool) -> bool {
    q.get(key)
        .map_or(default, |v| v.eq_ignore_ascii_case("true"))
}

fn unrecognized_json(m: BTreeMap<String, Value>) -> Value {
    Value::Object(m.into_iter().collect::<Map<String, Value>>())
}

async fn list_schemas(State(s): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let names = s
        .catalog
        .schema_names()
        .map_err(|e| ApiError::from_error("", e))?;
    Ok(Json(json!(names)))
}

fn parse_schema(bytes: &[u8]) -> Result<Schema, ApiError> {
    Schema::from_json(bytes).map_err(|e| ApiError::bad_request(format!("Invalid schema: {e}")))
}

fn schema_json(schema: &Schema) -> Result<String, ApiError> {
    serde_json::to_string(&schema.to_json())
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("serialise schema: {e}")))
}

async fn add_schema(
    State(s): State<Arc<AppState>>,
    Query(q): Query<BTreeMap<String, String>>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let body = json_body(req).await?;
    let schema = parse_schema(&body)?;
    let overwrite = flag(&q, "override", true);
    s.catalog
        .put_schema(&schema.schema_name, &schema_json(&schema)?, overwrite)
        .map_err(|e| ApiError::from_error("", e))?;
    Ok(Json(json!({
        "unrecognizedProperties": unrecognized_json(schema.unrecognized()),
        "status": format!("{} successfully added", schema.schema_name),
    })))
}

fn stored_schema(s: &AppState, name: &str) -> Result<Schema, ApiError> {
    let json = s
        .catalog
        .schema(name)
        .map_err(|e| ApiError::from_error("", e))?
        .ok_or_else(|| ApiError::not_found("Schema not found"))?;
    Schema::from_json(json.as_bytes()).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("stored schema '{name}' is unreadable: {e}"),
        )
    })
}

async fn get_schema(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(stored_schema(&s, &name)?.to_json()))
}

async fn update_schema(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let body = json_body(req).await?;
    let schema = parse_schema(&body)?;
    if schema.schema_name != name {
        return Err(ApiError::bad_request(format!(
            "Schema name mismatch for uploaded schema, tried to add schema with name {} as {name}",
            schema.schema_name
        )));
    }
    stored_schema(&s, &name)?;
    s.catalog
        .put_schema(&name, &schema_json(&schema)?, true)
        .map_err(|e| ApiError::from_error("", e))?;
    Ok(Json(json!({
        "unrecognizedProperties": unrecognized_json(schema.unrecognized()),
        "status": format!("{name} successfully added"),
    })))
}

async fn delete_schema(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    s.catalog
        .delete_schema(&name)
        .map_err(|e| ApiError::from_error("", e))?;
    Ok(Json(json!({"status": format!("Schema {name} deleted")})))
}

async fn list_tables(
    State(s): State<Arc<AppState>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let tables = s
        .catalog
        .tables()
        .map_err(|e| ApiError::from_error("", e))?;
    let filter = q.get("type").and_then(|t| TableType::parse(t));
    let mut names: Vec<String> = Vec::new();
    for (name, _) in tables {
        let (raw, t) = split_table_name(&name);
        match filter {
            Some(f) if t == Some(f) => names.push(name.clone()),
            Some(_) => {}
            None => {
                if !names.iter().any(|n| n == raw) {
                    names.push(raw.to_string());
                }
            }
        }
    }
    Ok(Json(json!({ "tables": names })))
}

fn parse_table(bytes: &[u8]) -> Result<TableConfig, ApiError> {
    TableConfig::from_json(bytes)
        .map_err(|e| ApiError::bad_request(format!("Invalid table config: {e}")))
}

/// Validates a table against its schema and prepares its first segments, then creates it
/// (with the schema too, when given) in one catalog transaction and starts consumption.
async fn create_table(
    s: &AppState,
    table: &TableConfig,
    schema: &Schema,
    store_schema: bool,
) -> Result<Vec<String>, ApiError> {
    table
        .validate(schema)
        .map_err(|e| ApiError::bad_request(format!("Invalid table config: {e}")))?;
    let name = table.name_with_type();
    if s.catalog
        .table(&name)
        .map_err(|e| ApiError::from_error("", e))?
        .is_some()
    {
        return Err(ApiError::new(
            ErrorCode::AlreadyExists,
            format!("Table config for {name} already exists. If this is unexpected, try deleting the table to remove all metadata associated with it."),
        ));
    }
    let (segments, warnings) = if table.table_type == TableType::Realtime {
        s.ingest
            .prepare_table(table, schema)
            .await
            .map_err(|e| ApiError::from_error("Invalid table config", e))?
    } else {
        (Vec::new(), Vec::new())
    };
    let config_json = serde_json::to_string(&table.to_json())
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("serialise table config: {e}")))?;
    let schema_text = schema_json(schema)?;
    let schema_arg = store_schema.then_some((schema.schema_name.as_str(), schema_text.as_str()));
    s.catalog
        .create_table(&name, &config_json, schema_arg, &segments)
        .map_err(|e| ApiError::from_error("", e))?;
    s.activate(table, schema)
        .await
        .map_err(|e| ApiError::from_error("Table created but consumption did not start", e))?;
    for w in &warnings {
        tracing::warn!(table = %name, warning = %w, "table config");
    }
    Ok(warnings)
}

async fn add_table(State(s): State<Arc<AppState>>, req: Request) -> Result<Json<Value>, ApiError> {
    let body = json_body(req).await?;
    let table = parse_table(&body)?;
    let schema = stored_schema(&s, table.raw_name()).map_err(|e| {
        if e.code == ErrorCode::NotFound {
            ApiError::bad_request(format!(
                "Invalid table config: $.tableName: schema '{}' does not exist; add the schema first",
                table.raw_name()
            ))
        } else {
            e
        }
    })?;
    let warnings = create_table(&s, &table, &schema, false).await?;
    let mut resp = json!({
        "unrecognizedProperties": unrecognized_json(table.unrecognized()),
        "status": format!("Table {} successfully added", table.name_with_type()),
    });
    if !warnings.is_empty() {
        resp["warnings"] = json!(warnings);
    }
    Ok(Json(resp))
}

/// The stored configs of a table by raw name or name with type.
fn stored_tables(
    s: &AppState,
    name: &str,
    type_param: Option<&String>,
) -> Result<Vec<(TableType, Value)>, ApiError> {
    let (raw, suffix) = split_table_name(name);
    let wanted = type_param.and_then(|t| TableType::parse(t)).or(suffix);
    let mut out = Vec::new();
    for t in [TableType::Offline, TableType::Realtime] {
        if wanted.is_some_and(|w| w != t) {
            continue;
        }
        if let Some(json) = s
            .catalog
            .table(&table_name_with_type(raw, t))
            .map_err(|e| ApiError::from_error("", e))?
        {
            let v: Value = serde_json::from_str(&json).map_err(|e| {
                ApiError::new(
                    ErrorCode::Internal,
                    format!("stored table config is unreadable: {e}"),
                )
            })?;
            out.push((t, v));
        }
    }
    Ok(out)
}

/// Like [`stored_tables`], but a table with no stored type is a 404.
fn existing_tables(
    s: &AppState,
    name: &str,
    type_param: Option<&String>,
) -> Result<Vec<(TableType, Value)>, ApiError> {
    let found = stored_tables(s, name, type_param)?;
    if found.is_empty() {
        return Err(ApiError::not_found(format!("Table {name} does not exist")));
    }
    Ok(found)
}

async fn get_table(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let found = existing_tables(&s, &name, q.get("type"))?;
    let mut m = Map::new();
    for (t, mut v) in found {
        mask_secrets(&mut v);
        m.insert(t.as_str().to_string(), v);
    }
    Ok(Json(Value::Object(m)))
}

async fn update_table(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let body = json_body(req).await?;
    let mut v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Invalid table config: $: {e}")))?;
    // A config read back from GET carries masked secrets: keep the stored ones.
    let (raw, _) = split_table_name(&name);
    for (_, stored) in stored_tables(
        &s,
        raw,
        v.get("tableType")
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .as_ref(),
    )? {
        restore_secrets(&mut v, &stored);
    }
    let table = TableConfig::from_value(&v)
        .map_err(|e| ApiError::bad_request(format!("Invalid table config: {e}")))?;
    if table.raw_name() != split_table_name(&name).0 {
        return Err(ApiError::bad_request(format!(
            "Table name mismatch: {} in the config, {name} in the path",
            table.table_name
        )));
    }
    let schema = stored_schema(&s, table.raw_name())?;
    table
        .validate(&schema)
        .map_err(|e| ApiError::bad_request(format!("Invalid table config: {e}")))?;
    let full = table.name_with_type();
    let config_json = serde_json::to_string(&table.to_json())
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("serialise table config: {e}")))?;
    s.catalog
        .update_table(&full, &config_json)
        .map_err(|e| ApiError::from_error("", e))?;
    // Consumption restarts from the catalog's offsets with the new config.
    s.ingest.stop_table(&full).await;
    s.activate(&table, &schema)
        .await
        .map_err(|e| ApiError::from_error("Table updated but consumption did not restart", e))?;
    Ok(Json(json!({
        "unrecognizedProperties": unrecognized_json(table.unrecognized()),
        "status": format!("Table config updated for {full}"),
    })))
}

/// Stops and deletes one type of a table. The query registry holds one entry per raw name,
/// dropped only when no type of the table is left (a hybrid table keeps answering from its
/// other half).
async fn drop_table(s: &AppState, raw: &str, t: TableType) -> Result<String, ApiError> {
    let full = table_name_with_type(raw, t);
    s.ingest.stop_table(&full).await;
    s.catalog
        .delete_table(&full)
        .map_err(|e| ApiError::from_error("", e))?;
    s.ingest.purge_table_files(&full).await;
    if stored_tables(s, raw, None)?.is_empty() {
        s.segments.remove_table(raw);
    }
    Ok(full)
}

async fn delete_table(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let found = existing_tables(&s, &name, q.get("type"))?;
    let raw = split_table_name(&name).0.to_string();
    let mut deleted = Vec::new();
    for (t, _) in found {
        deleted.push(drop_table(&s, &raw, t).await?);
    }
    Ok(Json(
        json!({"status": format!("Tables: [{}] deleted", deleted.join(", "))}),
    ))
}

async fn get_table_schema(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let raw = split_table_name(&name).0;
    Ok(Json(stored_schema(&s, raw)?.to_json()))
}

async fn add_table_configs(
    State(s): State<Arc<AppState>>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let body = json_body(req).await?;
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Invalid TableConfigs: $: {e}")))?;
    let raw = v
        .get("tableName")
        .and_then(|t| t.as_str())
        .ok_or_else(|| ApiError::bad_request("Invalid TableConfigs: $.tableName: is required"))?
        .to_string();
    let schema_v = v
        .get("schema")
        .ok_or_else(|| ApiError::bad_request("Invalid TableConfigs: $.schema: is required"))?;
    let schema = Schema::from_value(schema_v.clone())
        .map_err(|e| ApiError::bad_request(format!("Invalid TableConfigs: schema: {e}")))?;
    if schema.schema_name != raw {
        return Err(ApiError::bad_request(format!(
            "Invalid TableConfigs: $.schema.schemaName: '{}' must equal tableName '{raw}'",
            schema.schema_name
        )));
    }
    let mut unrecognized = schema.unrecognized();
    let mut created = Vec::new();
    let mut warnings = Vec::new();
    let mut first = true;
    for key in ["realtime", "offline"] {
        let Some(cfg) = v.get(key).filter(|c| !c.is_null()) else {
            continue;
        };
        let table = TableConfig::from_value(cfg)
            .map_err(|e| ApiError::bad_request(format!("Invalid TableConfigs: {key}: {e}")))?;
        let expected = if key == "realtime" {
            TableType::Realtime
        } else {
            TableType::Offline
        };
        if table.table_type != expected || table.raw_name() != raw {
            return Err(ApiError::bad_request(format!(
                "Invalid TableConfigs: $.{key}: expected a {} config for table '{raw}'",
                expected.as_str()
            )));
        }
        for (k, val) in table.unrecognized() {
            unrecognized.insert(format!("$.{key}{}", &k[1..]), val);
        }
        // The schema is written in the same transaction as the first table.
        warnings.extend(create_table(&s, &table, &schema, first).await?);
        first = false;
        created.push(table.name_with_type());
    }
    if created.is_empty() {
        return Err(ApiError::bad_request(
            "Invalid TableConfigs: at least one of $.realtime or $.offline is required",
        ));
    }
    let mut resp = json!({
        "unrecognizedProperties": unrecognized_json(unrecognized),
        "status": format!("TableConfigs {raw} successfully added"),
    });
    if !warnings.is_empty() {
        resp["warnings"] = json!(warnings);
    }
    Ok(Json(resp))
}

async fn get_table_configs(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let raw = split_table_name(&name).0.to_string();
    let schema = stored_schema(&s, &raw)?;
    let mut out = json!({"tableName": raw, "schema": schema.to_json()});
    for (t, mut v) in stored_tables(&s, &raw, None)? {
        mask_secrets(&mut v);
        out[t.as_str().to_ascii_lowercase()] = v;
    }
    Ok(Json(out))
}

async fn delete_table_configs(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let raw = split_table_name(&name).0.to_string();
    let found = stored_tables(&s, &raw, None)?;
    let schema = s
        .catalog
        .schema(&raw)
        .map_err(|e| ApiError::from_error("", e))?;
    if found.is_empty() && schema.is_none() {
        return Err(ApiError::not_found(format!(
            "TableConfigs {raw} does not exist"
        )));
    }
    for (t, _) in found {
        drop_table(&s, &raw, t).await?;
    }
    match s.catalog.delete_schema(&raw) {
        Ok(()) | Err(riffle_catalog::CatalogError::NotFound(_)) => {}
        Err(e) => return Err(ApiError::from_error("", e)),
    }
    Ok(Json(
        json!({"status": format!("Deleted TableConfigs: {raw}")}),
    ))
}

async fn list_segments(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let found = existing_tables(&s, &name, q.get("type"))?;
    let raw = split_table_name(&name).0.to_string();
    let mut out = Vec::new();
    for (t, _) in found {
        let names: Vec<String> = s
            .catalog
            .segments(&table_name_with_type(&raw, t))
            .map_err(|e| ApiError::from_error("", e))?
            .into_iter()
            .map(|m| m.segment_name)
            .collect();
        out.push(json!({ t.as_str(): names }));
    }
    Ok(Json(Value::Array(out)))
}

/// Pinot's `consumingSegmentsInfo`, plus Riffle's per-partition state and last error.
async fn consuming_info(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let raw = split_table_name(&name).0.to_string();
    let full = table_name_with_type(&raw, TableType::Realtime);
    let metas = s
        .catalog
        .segments(&full)
        .map_err(|e| ApiError::from_error("", e))?;
    if s.catalog
        .table(&full)
        .map_err(|e| ApiError::from_error("", e))?
        .is_none()
    {
        return Err(ApiError::not_found(format!("Table {name} does not exist")));
    }
    let statuses = s.ingest.status(&full).unwrap_or_default();
    let latest = s.ingest.latest_offsets(&full).await;
    let now = riffle_common::now_ms();
    let mut map = Map::new();
    for m in metas
        .iter()
        .filter(|m| m.status == SegmentStatus::InProgress)
    {
        let st = statuses.iter().find(|p| p.partition == m.partition);
        let current = st.map_or(m.start_offset.clone(), |p| p.current_offset.clone());
        let upstream = latest.get(&m.partition).map(|(o, _)| o.to_string());
        let counts_records = latest.get(&m.partition).is_some_and(|(_, c)| *c);
        // Offset distance to the stream's end (records for Kafka; bytes for the file
        // stream, whose lag is then not reported as records); availability lag: how long the
        // newest indexed row has been waiting for what follows it (0 when caught up).
        let distance = upstream.as_ref().and_then(|u| {
            let (u, c) = (u.parse::<i64>().ok()?, current.parse::<i64>().ok()?);
            Some((u - c).max(0))
        });
        let records_lag = distance.filter(|_| counts_records);
        let availability_lag = match (distance, st) {
            (Some(0), _) => Some(0),
            (Some(_), Some(p)) if p.last_indexed_ms > 0 => Some((now - p.last_indexed_ms).max(0)),
            _ => None,
        };
        let part = m.partition.to_string();
        let opt_map = |v: Option<String>| -> Value {
            match v {
                Some(v) => json!({ part.clone(): v }),
                None => json!({}),
            }
        };
        let consuming = st.is_some_and(|p| {
            matches!(
                p.state,
                riffle_ingest::PartitionState::Consuming | riffle_ingest::PartitionState::Starting
            )
        });
        map.insert(
            m.segment_name.clone(),
            json!([{
                "serverName": s.server_name,
                "consumerState": if consuming { "CONSUMING" } else { "NOT_CONSUMING" },
                "lastConsumedTimestamp": st.map_or(0, |p| p.last_indexed_ms),
                "partitionToOffsetMap": { m.partition.to_string(): current },
                "partitionOffsetInfo": {
                    "currentOffsetsMap": { m.partition.to_string(): current },
                    "latestUpstreamOffsetMap": opt_map(upstream.clone()),
                    "recordsLagMap": opt_map(records_lag.map(|l| l.to_string())),
                    "availabilityLagMsMap": opt_map(availability_lag.map(|l| l.to_string())),
                },
                "riffleState": st.map(|p| p.state),
                "riffleLastError": st.and_then(|p| p.last_error.clone()),
                "riffleDecodeErrors": st.map_or(0, |p| p.decode_errors),
                "riffleOffsetsLost": st.map_or(0, |p| p.offsets_lost),
            }]),
        );
    }
    Ok(Json(json!({
        "serversFailingToRespond": 0,
        "serversUnparsableRespond": 0,
        "_segmentToConsumingInfoMap": map,
    }))
    .into_response())
}

/// The REALTIME table a control request names, with its config.
fn realtime_table(s: &AppState, name: &str) -> Result<(String, TableConfig), ApiError> {
    let raw = split_table_name(name).0.to_string();
    let full = table_name_with_type(&raw, TableType::Realtime);
    let json = s
        .catalog
        .table(&full)
        .map_err(|e| ApiError::from_error("", e))?
        .ok_or_else(|| ApiError::not_found(format!("Table {full} not found")))?;
    let cfg = TableConfig::from_json(json.as_bytes()).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("stored table config is unreadable: {e}"),
        )
    })?;
    Ok((full, cfg))
}

fn pause_json(p: riffle_ingest::PauseStatus) -> Result<Json<Value>, ApiError> {
    serde_json::to_value(p)
        .map(Json)
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("serialise pause status: {e}")))
}

async fn pause_consumption(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (full, _) = realtime_table(&s, &name)?;
    let st = s
        .ingest
        .pause(
            &full,
            q.get("comment").cloned(),
            std::time::Duration::from_secs(30),
        )
        .await
        .map_err(|e| ApiError::from_error("", e))?;
    pause_json(st)
}

async fn resume_consumption(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (_, cfg) = realtime_table(&s, &name)?;
    let st = s
        .ingest
        .resume(
            &cfg,
            q.get("consumeFrom").map(String::as_str),
            q.get("comment").cloned(),
        )
        .await
        .map_err(|e| ApiError::from_error("", e))?;
    pause_json(st)
}

async fn pause_status(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (full, _) = realtime_table(&s, &name)?;
    let st = s
        .ingest
        .pause_status(&full)
        .map_err(|e| ApiError::from_error("", e))?;
    pause_json(st)
}

fn list_param(q: &BTreeMap<String, String>, key: &str) -> Option<Vec<String>> {
    q.get(key).map(|v| {
        v.split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    })
}

async fn force_commit(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (full, _) = realtime_table(&s, &name)?;
    let partitions = list_param(&q, "partitions");
    let segments = list_param(&q, "segments");
    if partitions.is_some() && segments.is_some() {
        return Err(ApiError::bad_request(
            "Cannot specify both partitions and segments to commit",
        ));
    }
    let partitions = match partitions {
        Some(ps) => Some(
            ps.iter()
                .map(|p| {
                    p.parse::<u32>().map_err(|_| {
                        ApiError::bad_request(format!("partitions: '{p}' is not a partition id"))
                    })
                })
                .collect::<Result<Vec<u32>, ApiError>>()?,
        ),
        None => None,
    };
    let job = s
        .ingest
        .force_commit(&full, partitions.as_deref(), segments.as_deref())
        .map_err(|e| ApiError::from_error("", e))?;
    Ok(Json(json!({
        "forceCommitStatus": "SUCCESS",
        "jobMetaZKWriteStatus": "SUCCESS",
        "forceCommitJobId": job.job_id,
    })))
}

async fn force_commit_status(
    State(s): State<Arc<AppState>>,
    Path(job_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (job, waiting) = s
        .ingest
        .force_commit_status(&job_id)
        .map_err(|e| ApiError::from_error("", e))?
        .ok_or_else(|| {
            ApiError::not_found(format!("Failed to find controller job id: {job_id}"))
        })?;
    Ok(Json(json!({
        "jobId": job.job_id,
        "tableName": job.table_name,
        "jobType": "FORCE_COMMIT",
        "submissionTimeMs": job.submission_time_ms.to_string(),
        "segmentsForceCommitted": job.segments,
        "numberOfSegmentsYetToBeCommitted": waiting.len(),
        "segmentsYetToBeCommitted": waiting,
    })))
}

/// A segment's metadata: what the catalog records and, for a loaded sealed segment, its
/// columns (min, max, cardinality, indexes).
async fn segment_metadata(
    State(s): State<Arc<AppState>>,
    Path((name, segment)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let raw = split_table_name(&name).0.to_string();
    let mut found = None;
    for (t, _) in existing_tables(&s, &name, None)? {
        let full = table_name_with_type(&raw, t);
        let segs = s
            .catalog
            .segments(&full)
            .map_err(|e| ApiError::from_error("", e))?;
        if let Some(m) = segs.into_iter().find(|m| m.segment_name == segment) {
            found = Some(m);
            break;
        }
    }
    let meta = found.ok_or_else(|| {
        ApiError::not_found(format!("Segment {segment} of table {name} not found"))
    })?;
    let mut out = Map::new();
    out.insert("segmentName".into(), json!(meta.segment_name));
    out.insert("tableName".into(), json!(meta.table_name));
    out.insert(
        "status".into(),
        json!(match meta.status {
            SegmentStatus::InProgress => "IN_PROGRESS",
            SegmentStatus::Done => "DONE",
        }),
    );
    out.insert("partitionId".into(), json!(meta.partition));
    out.insert("sequenceNumber".into(), json!(meta.sequence));
    out.insert("startOffset".into(), json!(meta.start_offset));
    out.insert("endOffset".into(), json!(meta.end_offset));
    out.insert("creationTimeMillis".into(), json!(meta.creation_time_ms));
    out.insert("totalDocs".into(), json!(meta.total_docs));
    out.insert(
        "flushThresholdRows".into(),
        json!(meta.flush_threshold_rows),
    );
    for (k, v) in &meta.extra {
        out.insert(k.clone(), v.clone());
    }
    if let Some(err) = s.ingest.load_errors(&meta.table_name).get(&segment) {
        out.insert("riffleLoadError".into(), json!(err));
    }
    if let Some(seg) = s.segments.table(&raw).and_then(|t| t.segment(&segment)) {
        match seg {
            riffle_segment::SegmentRef::Sealed(sealed) => {
                let info = serde_json::to_value(sealed.info()).unwrap_or(Value::Null);
                out.insert("formatVersion".into(), info["formatVersion"].clone());
                out.insert("columns".into(), info["columns"].clone());
            }
            riffle_segment::SegmentRef::Consuming(c) => {
                out.insert("totalDocs".into(), json!(c.snapshot().num_rows));
            }
        }
    }
    Ok(Json(Value::Object(out)))
}

async fn delete_segment(
    State(s): State<Arc<AppState>>,
    Path((name, segment)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let raw = split_table_name(&name).0.to_string();
    let mut last_err = None;
    for (t, _) in existing_tables(&s, &name, None)? {
        let full = table_name_with_type(&raw, t);
        match s.ingest.delete_segment(&full, &raw, &segment).await {
            Ok(_) => {
                return Ok(Json(json!({
                    "status": format!("Segment {segment} deleted")
                })))
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(match last_err {
        Some(e) => ApiError::from_error("", e),
        None => ApiError::not_found(format!("Segment {segment} of table {name} not found")),
    })
}
