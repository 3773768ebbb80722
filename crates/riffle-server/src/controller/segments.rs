//! `/segments/{t}`, `/segments/{t}/{s}` and `/segments/{t}/{s}/metadata`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Json;
use riffle_segment::SegmentRef;
use serde_json::Value;

use super::table_in_path;
use crate::error::ApiError;
use crate::models::{SegmentMetadata, StatusResponse, TypeParam};
use crate::Services;

/// `GET /segments/{t}[?type=...]`: `[{"REALTIME": [names]}, {"OFFLINE": [...]}]`.
pub(super) async fn list(
    State(s): State<Arc<Services>>,
    Path(name): Path<String>,
    Query(q): Query<TypeParam>,
) -> Result<Json<Vec<BTreeMap<&'static str, Vec<String>>>>, ApiError> {
    let (raw, suffix) = table_in_path(&name)?;
    let wanted = q.get().or(suffix);
    let found = s.tables.table_types(&raw, wanted).await?;
    if found.is_empty() {
        return Err(ApiError::not_found(format!("Table {name} does not exist")));
    }
    let mut out = Vec::new();
    for (t, _) in found {
        let names = s
            .tables
            .segments(&raw.with_type(t))
            .await?
            .into_iter()
            .map(|m| m.segment_name)
            .collect();
        out.push(BTreeMap::from([(t.as_str(), names)]));
    }
    Ok(Json(out))
}

/// `GET /segments/{t}/{s}/metadata`: what the catalog records and, for a loaded sealed
/// segment, its columns (min, max, cardinality, indexes).
pub(super) async fn metadata(
    State(s): State<Arc<Services>>,
    Path((name, segment)): Path<(String, String)>,
) -> Result<Json<SegmentMetadata>, ApiError> {
    let (raw, suffix) = table_in_path(&name)?;
    let types = s.tables.table_types(&raw, suffix).await?;
    if types.is_empty() {
        return Err(ApiError::not_found(format!("Table {name} does not exist")));
    }
    let mut found = None;
    for (t, _) in types {
        let segs = s.tables.segments(&raw.with_type(t)).await?;
        if let Some(m) = segs.into_iter().find(|m| m.segment_name == segment) {
            found = Some(m);
            break;
        }
    }
    let meta = found.ok_or_else(|| {
        ApiError::not_found(format!("Segment {segment} of table {name} not found"))
    })?;
    let table = meta.table_name.clone();
    let mut out = SegmentMetadata::new(meta);
    out.riffle_load_error = s.tables.load_errors(&table).remove(&segment);
    match s
        .segments
        .table(raw.as_str())
        .and_then(|t| t.segment(&segment))
    {
        Some(SegmentRef::Sealed(sealed)) => {
            let info = serde_json::to_value(sealed.info()).unwrap_or(Value::Null);
            out.format_version = Some(info["formatVersion"].clone());
            out.columns = Some(info["columns"].clone());
        }
        Some(SegmentRef::Consuming(c)) => {
            out.total_docs = Some(c.snapshot().num_rows as u64);
        }
        None => {}
    }
    Ok(Json(out))
}

/// `DELETE /segments/{t}/{s}`: a committed segment (409 for a consuming one).
pub(super) async fn delete(
    State(s): State<Arc<Services>>,
    Path((name, segment)): Path<(String, String)>,
) -> Result<Json<StatusResponse>, ApiError> {
    let (raw, suffix) = table_in_path(&name)?;
    let types = s.tables.table_types(&raw, suffix).await?;
    if types.is_empty() {
        return Err(ApiError::not_found(format!("Table {name} does not exist")));
    }
    let mut last_err = None;
    for (t, _) in types {
        match s.tables.delete_segment(&raw.with_type(t), &segment).await {
            Ok(_) => {
                return Ok(Json(StatusResponse::status(format!(
                    "Segment {segment} deleted"
                ))))
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(match last_err {
        Some(e) => e.into(),
        None => ApiError::not_found(format!("Segment {segment} of table {name} not found")),
    })
}
