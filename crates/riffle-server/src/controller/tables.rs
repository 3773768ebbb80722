//! `/tables` and `/tableConfigs`.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::Json;
use riffle_common::{ErrorKind, TableName, TableType};
use riffle_config::{Schema, TableConfig};
use serde_json::{Map, Value};

use super::schemas::stored;
use super::{json_body, mask_secrets, restore_secrets, table_in_path};
use crate::error::ApiError;
use crate::models::{StatusResponse, TablesResponse, TypeParam};
use crate::Services;

/// `GET /tables[?type=...]`: raw names, or names with type when a type is asked for.
pub(super) async fn list(
    State(s): State<Arc<Services>>,
    Query(q): Query<TypeParam>,
) -> Result<Json<TablesResponse>, ApiError> {
    let filter = q.get();
    let mut tables: Vec<String> = Vec::new();
    for name in s.tables.table_names().await? {
        match filter {
            Some(f) if name.table_type() == f => tables.push(name.to_string()),
            Some(_) => {}
            None => {
                let raw = name.raw().to_string();
                if !tables.contains(&raw) {
                    tables.push(raw);
                }
            }
        }
    }
    Ok(Json(TablesResponse { tables }))
}

fn parse(bytes: &[u8]) -> Result<TableConfig, ApiError> {
    TableConfig::from_json(bytes)
        .map_err(|e| ApiError::bad_request(format!("Invalid table config: {e}")))
}

/// `POST /tables`: the schema must exist.
pub(super) async fn add(
    State(s): State<Arc<Services>>,
    req: Request,
) -> Result<Json<StatusResponse>, ApiError> {
    let table = parse(&json_body(req).await?)?;
    let schema = stored(&s, table.raw_name()).await.map_err(|e| {
        if e.kind == ErrorKind::NotFound {
            ApiError::bad_request(format!(
                "Invalid table config: $.tableName: schema '{}' does not exist; add the schema first",
                table.raw_name()
            ))
        } else {
            e
        }
    })?;
    let name = table.name_with_type();
    let unrecognized = table.unrecognized();
    let warnings = s.tables.create_table(table, schema, false).await?;
    let mut resp =
        StatusResponse::with_unrecognized(format!("Table {name} successfully added"), unrecognized);
    resp.warnings = warnings;
    Ok(Json(resp))
}

/// The stored configs of a table named in a path (raw or with type), as JSON; a `type`
/// parameter limits them. 404 when there is none.
async fn existing(
    s: &Services,
    name: &str,
    type_param: Option<TableType>,
) -> Result<Vec<(TableType, TableConfig)>, ApiError> {
    let (raw, suffix) = table_in_path(name)?;
    let wanted = type_param.or(suffix);
    let found = s.tables.table_types(&raw, wanted).await?;
    if found.is_empty() {
        return Err(ApiError::not_found(format!("Table {name} does not exist")));
    }
    Ok(found)
}

/// `GET /tables/{name}[?type=...]`: `{"OFFLINE": config, "REALTIME": config}`, secrets
/// masked.
pub(super) async fn get_one(
    State(s): State<Arc<Services>>,
    Path(name): Path<String>,
    Query(q): Query<TypeParam>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let mut m = Map::new();
    for (t, cfg) in existing(&s, &name, q.get()).await? {
        let mut v = cfg.to_json();
        mask_secrets(&mut v);
        m.insert(t.as_str().to_string(), v);
    }
    Ok(Json(m))
}

/// `PUT /tables/{name}`: a config read back from GET carries masked secrets; the stored
/// ones are kept.
pub(super) async fn update(
    State(s): State<Arc<Services>>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Json<StatusResponse>, ApiError> {
    let body = json_body(req).await?;
    let mut v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Invalid table config: $: {e}")))?;
    let (raw, _) = table_in_path(&name)?;
    let type_in_body = v
        .get("tableType")
        .and_then(|t| t.as_str())
        .and_then(TableType::parse);
    for (_, stored) in s.tables.table_types(&raw, type_in_body).await? {
        restore_secrets(&mut v, &stored.to_json());
    }
    let table = TableConfig::from_value(&v)
        .map_err(|e| ApiError::bad_request(format!("Invalid table config: {e}")))?;
    if table.name() != &raw {
        return Err(ApiError::bad_request(format!(
            "Table name mismatch: {} in the config, {name} in the path",
            table.raw_name()
        )));
    }
    let full = table.name_with_type();
    let unrecognized = table.unrecognized();
    s.tables.update_table(table).await?;
    Ok(Json(StatusResponse::with_unrecognized(
        format!("Table config updated for {full}"),
        unrecognized,
    )))
}

/// `DELETE /tables/{name}[?type=...]`.
pub(super) async fn delete(
    State(s): State<Arc<Services>>,
    Path(name): Path<String>,
    Query(q): Query<TypeParam>,
) -> Result<Json<StatusResponse>, ApiError> {
    let mut deleted = Vec::new();
    for (_, cfg) in existing(&s, &name, q.get()).await? {
        let full = cfg.name_with_type();
        s.tables.delete_table(&full).await?;
        deleted.push(full.to_string());
    }
    Ok(Json(StatusResponse::status(format!(
        "Tables: [{}] deleted",
        deleted.join(", ")
    ))))
}

/// `POST /tableConfigs`: `{"tableName", "schema", "realtime"?, "offline"?}`; the schema is
/// written in the same transaction as the first table.
pub(super) async fn add_configs(
    State(s): State<Arc<Services>>,
    req: Request,
) -> Result<Json<StatusResponse>, ApiError> {
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
    let mut tables = Vec::new();
    for (key, expected) in [
        ("realtime", TableType::Realtime),
        ("offline", TableType::Offline),
    ] {
        let Some(cfg) = v.get(key).filter(|c| !c.is_null()) else {
            continue;
        };
        let table = TableConfig::from_value(cfg)
            .map_err(|e| ApiError::bad_request(format!("Invalid TableConfigs: {key}: {e}")))?;
        if table.table_type() != expected || table.raw_name() != raw {
            return Err(ApiError::bad_request(format!(
                "Invalid TableConfigs: $.{key}: expected a {} config for table '{raw}'",
                expected.as_str()
            )));
        }
        for (k, val) in table.unrecognized() {
            unrecognized.insert(format!("$.{key}{}", &k[1..]), val);
        }
        tables.push(table);
    }
    if tables.is_empty() {
        return Err(ApiError::bad_request(
            "Invalid TableConfigs: at least one of $.realtime or $.offline is required",
        ));
    }
    let mut warnings = Vec::new();
    for (i, table) in tables.into_iter().enumerate() {
        warnings.extend(s.tables.create_table(table, schema.clone(), i == 0).await?);
    }
    let mut resp = StatusResponse::with_unrecognized(
        format!("TableConfigs {raw} successfully added"),
        unrecognized,
    );
    resp.warnings = warnings;
    Ok(Json(resp))
}

/// `GET /tableConfigs/{name}`: the schema and every type's config, secrets masked.
pub(super) async fn get_configs(
    State(s): State<Arc<Services>>,
    Path(name): Path<String>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let (raw, _) = table_in_path(&name).map_err(|_| ApiError::not_found("Schema not found"))?;
    let schema = stored(&s, raw.as_str()).await?;
    let mut out = Map::new();
    out.insert("tableName".into(), Value::String(raw.to_string()));
    out.insert("schema".into(), schema.to_json());
    for (t, cfg) in s.tables.table_types(&raw, None).await? {
        let mut v = cfg.to_json();
        mask_secrets(&mut v);
        out.insert(t.as_str().to_ascii_lowercase(), v);
    }
    Ok(Json(out))
}

/// `DELETE /tableConfigs/{name}`: every type of the table, then its schema.
pub(super) async fn delete_configs(
    State(s): State<Arc<Services>>,
    Path(name): Path<String>,
) -> Result<Json<StatusResponse>, ApiError> {
    let missing = || ApiError::not_found(format!("TableConfigs {name} does not exist"));
    let (raw, _) = table_in_path(&name).map_err(|_| missing())?;
    let found = s.tables.table_types(&raw, None).await?;
    let schema = s.tables.schema(&raw).await?;
    if found.is_empty() && schema.is_none() {
        return Err(ApiError::not_found(format!(
            "TableConfigs {raw} does not exist"
        )));
    }
    for (_, cfg) in found {
        s.tables.delete_table(&cfg.name_with_type()).await?;
    }
    if schema.is_some() {
        delete_schema_if_present(&s, &raw).await?;
    }
    Ok(Json(StatusResponse::status(format!(
        "Deleted TableConfigs: {raw}"
    ))))
}

async fn delete_schema_if_present(s: &Services, raw: &TableName) -> Result<(), ApiError> {
    match s.tables.delete_schema(raw).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}
