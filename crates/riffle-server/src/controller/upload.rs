//! Segment push and download (Pinot's upload/download resource) and small-file ingestion:
//! `POST /segments`, `POST /v2/segments`, `GET /segments/{t}/{s}`, `POST /ingestFromFile`,
//! `POST /ingestFromURI`.
//!
//! Upload types (header `UPLOAD_TYPE`): `SEGMENT` (default; the body, or its first
//! multipart part, is the segment tar), `URI` / `JSON` (header `DOWNLOAD_URI`: the server
//! fetches the tar there; the URI stays the segment's download URL), `METADATA` (the body is
//! a tar with `metadata.properties` and `creation.meta`, header `DOWNLOAD_URI` names the
//! whole tar, which this single node fetches to serve it). `COPY_SEGMENT_TO_DEEP_STORE: true`
//! copies a URI or metadata push into the deep store. Unlike Pinot, a tar that cannot be
//! read and a URI that cannot be fetched are answered 400 (the request's fault), and a
//! segment built for another table is refused.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use riffle_common::{ErrorKind, TableName, TableNameWithType, TableType};
use riffle_controller::push::{PushOutcome, PushRequest};
use riffle_segment::tarball;
use serde::Deserialize;

use super::table_in_path;
use crate::error::ApiError;
use crate::models::StatusResponse;
use crate::Services;

/// Query parameters of a segment upload.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UploadParams {
    table_name: Option<String>,
    table_type: Option<String>,
    allow_refresh: Option<bool>,
}

/// Removes a staged file when dropped (whatever path the handler takes).
struct Staged(std::path::PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The table a push names: `tableName` (raw or with its type) and `tableType` (default
/// OFFLINE), else the table the tar was built for.
fn push_table(q: &UploadParams, built_for: &str) -> Result<TableNameWithType, ApiError> {
    let wanted = match q.table_type.as_deref() {
        None => None,
        Some(t) => Some(TableType::parse(t).ok_or_else(|| {
            ApiError::bad_request(format!("tableType '{t}' is not OFFLINE or REALTIME"))
        })?),
    };
    let given = q.table_name.as_deref().unwrap_or(built_for);
    let (raw, suffix) = TableName::parse_with_optional_type(given)?;
    if let (Some(s), Some(w)) = (suffix, wanted) {
        if s != w {
            return Err(ApiError::bad_request(format!(
                "Table name: {given} does not match table type: {}",
                w.as_str()
            )));
        }
    }
    Ok(raw.with_type(suffix.or(wanted).unwrap_or(TableType::Offline)))
}

/// `POST /segments` and `POST /v2/segments`.
pub(super) async fn upload(
    State(s): State<Arc<Services>>,
    Query(q): Query<UploadParams>,
    req: Request,
) -> Result<Json<StatusResponse>, ApiError> {
    let headers = req.headers().clone();
    let kind = header_str(&headers, "UPLOAD_TYPE")
        .unwrap_or("SEGMENT")
        .to_ascii_uppercase();
    let uri = header_str(&headers, "DOWNLOAD_URI").map(str::to_string);
    let copy = header_str(&headers, "COPY_SEGMENT_TO_DEEP_STORE")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let need_uri = || {
        uri.clone().ok_or_else(|| {
            ApiError::bad_request(format!(
                "Source download URI is required in header field 'DOWNLOAD_URI' for {kind} upload mode"
            ))
        })
    };
    let t = &s.tables;
    let (staged, tar, download_url) = match kind.as_str() {
        "SEGMENT" => {
            let body = Staged(t.staging_path("upload.tar")?);
            crate::body::to_file(req, &body.0).await?;
            let (seg, meta) = t.unpack_tar(body.0.clone(), "the uploaded tar").await?;
            (seg, meta, None)
        }
        "URI" | "JSON" => {
            let uri = need_uri()?;
            let (seg, meta) = t.fetch_for_push(&uri).await?;
            (seg, meta, (!copy).then_some(uri))
        }
        "METADATA" => {
            let uri = need_uri()?;
            let body = Staged(t.staging_path("metadata.tar")?);
            crate::body::to_file(req, &body.0).await?;
            let declared = tarball::read_tar(&body.0, "the metadata tar", None).map_err(|e| {
                ApiError::bad_request(format!(
                    "Invalid segment metadata: {}",
                    riffle_common::chain(&e)
                ))
            })?;
            let (seg, meta) = t.fetch_for_push(&uri).await?;
            if meta.segment_name != declared.segment_name || meta.crc != declared.crc {
                let _ = std::fs::remove_file(&seg);
                return Err(ApiError::bad_request(format!(
                    "the segment at {uri} is {} with CRC {}, the metadata pushed says {} with CRC {}",
                    meta.segment_name, meta.crc, declared.segment_name, declared.crc
                )));
            }
            (seg, meta, (!copy).then_some(uri))
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "UPLOAD_TYPE '{other}' is not SEGMENT, URI, JSON or METADATA"
            )))
        }
    };
    let staged = Staged(staged);
    let table = push_table(&q, &tar.table_name)?;
    let out = t
        .push_segment(PushRequest {
            table,
            staged: staged.0.clone(),
            tar,
            download_url,
            allow_refresh: q.allow_refresh.unwrap_or(true),
        })
        .await?;
    Ok(Json(pushed(&out)))
}

fn pushed(out: &PushOutcome) -> StatusResponse {
    StatusResponse::status(format!(
        "Successfully uploaded segment: {} of table: {}",
        out.segment, out.table
    ))
}

/// `GET /segments/{t}/{s}`: the committed segment as a segment tar.
pub(super) async fn download(
    State(s): State<Arc<Services>>,
    Path((name, segment)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (raw, suffix) = table_in_path(&name)?;
    let types = s.tables.table_types(&raw, suffix).await?;
    if types.is_empty() {
        return Err(ApiError::not_found(format!("Table {name} does not exist")));
    }
    for (t, cfg) in types {
        let table = raw.with_type(t);
        let Some(meta) = s
            .tables
            .segments(&table)
            .await?
            .into_iter()
            .find(|m| m.segment_name == segment && m.is_done())
        else {
            continue;
        };
        let file = s
            .tables
            .server()
            .local_segment_file(&table, &segment)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorKind::SegmentsUnavailable,
                    format!("segment {segment} of {table} is not loaded on this server"),
                )
            })?;
        let tar_meta = tarball::TarMeta {
            segment_name: segment.clone(),
            table_name: raw.to_string(),
            total_docs: meta.total_docs.unwrap_or(0),
            crc: meta.crc.unwrap_or(0),
            creation_time_ms: meta.creation_time_ms,
            time_column: cfg.time_column().map(str::to_string),
            start_time_ms: meta.start_time_ms,
            end_time_ms: meta.end_time_ms,
            properties: BTreeMap::new(),
        };
        let out = s.tables.staging_path("download.tar.gz")?;
        let (o, m) = (out.clone(), tar_meta);
        let written = tokio::task::spawn_blocking(move || tarball::write_tar(&m, Some(&file), &o))
            .await
            .map_err(|e| ApiError::new(ErrorKind::Internal, format!("tar task failed: {e}")))?;
        if let Err(e) = written {
            let _ = std::fs::remove_file(&out);
            return Err(ApiError::from_error("Cannot pack the segment", e));
        }
        let f = tokio::fs::File::open(&out)
            .await
            .map_err(|e| ApiError::new(ErrorKind::Io, format!("open {}: {e}", out.display())))?;
        let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
        // The open handle keeps the bytes; the name goes now.
        let _ = std::fs::remove_file(&out);
        let body = Body::from_stream(tokio_util::io::ReaderStream::new(f));
        return Ok((
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (header::CONTENT_LENGTH, len.to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename={segment}.tar.gz"),
                ),
            ],
            body,
        )
            .into_response());
    }
    Err(ApiError::not_found(format!(
        "Segment {segment} of table {name} not found"
    )))
}

/// Query parameters of `/ingestFromFile` and `/ingestFromURI`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct IngestParams {
    table_name_with_type: String,
    batch_config_map_str: String,
    #[serde(rename = "sourceURIStr")]
    source_uri_str: Option<String>,
}

/// The reader's format and configs from `batchConfigMapStr` (`inputFormat`, and
/// `recordReader.prop.<key>`).
fn batch_config(
    text: &str,
) -> Result<(riffle_decode::readers::FileFormat, BTreeMap<String, String>), ApiError> {
    let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(text).map_err(|e| {
        ApiError::bad_request(format!("batchConfigMapStr is not a JSON object: {e}"))
    })?;
    let format = map
        .get("inputFormat")
        .and_then(|v| v.as_str())
        .ok_or_else(|| ApiError::bad_request("batchConfigMapStr has no 'inputFormat'"))?;
    let format = riffle_decode::readers::FileFormat::parse(format)
        .map_err(|e| ApiError::bad_request(format!("batchConfigMapStr.inputFormat: {e}")))?;
    let configs = map
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("recordReader.prop.")?;
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((key.to_string(), v))
        })
        .collect();
    Ok((format, configs))
}

fn ingest_table(name: &str) -> Result<TableNameWithType, ApiError> {
    TableNameWithType::parse(name)
        .map_err(|e| ApiError::bad_request(format!("tableNameWithType: {e}")))
}

fn ingested(out: &PushOutcome) -> StatusResponse {
    StatusResponse::status(format!(
        "Successfully ingested file into table: {} as segment: {}",
        out.table, out.segment
    ))
}

/// `POST /ingestFromFile?tableNameWithType=&batchConfigMapStr=` with the file as the body
/// (or its first multipart part).
pub(super) async fn ingest_from_file(
    State(s): State<Arc<Services>>,
    Query(q): Query<IngestParams>,
    req: Request,
) -> Result<Json<StatusResponse>, ApiError> {
    let table = ingest_table(&q.table_name_with_type)?;
    let (format, configs) = batch_config(&q.batch_config_map_str)?;
    let file = Staged(s.tables.staging_path("ingest")?);
    crate::body::to_file(req, &file.0).await?;
    let out = s
        .tables
        .ingest_file(&table, file.0.clone(), format, configs)
        .await?;
    Ok(Json(ingested(&out)))
}

/// `POST /ingestFromURI?tableNameWithType=&batchConfigMapStr=&sourceURIStr=`.
pub(super) async fn ingest_from_uri(
    State(s): State<Arc<Services>>,
    Query(q): Query<IngestParams>,
) -> Result<Json<StatusResponse>, ApiError> {
    let table = ingest_table(&q.table_name_with_type)?;
    let (format, configs) = batch_config(&q.batch_config_map_str)?;
    let uri = q
        .source_uri_str
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("sourceURIStr is required"))?;
    let file = Staged(s.tables.staging_path("ingest")?);
    s.tables.fetch_file(uri, &file.0).await?;
    let out = s
        .tables
        .ingest_file(&table, file.0.clone(), format, configs)
        .await?;
    Ok(Json(ingested(&out)))
}
