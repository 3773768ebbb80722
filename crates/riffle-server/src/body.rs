//! Request body limits, per endpoint: what each route may be sent, enforced before any
//! handler (or the access check) reads a byte.
//!
//! | endpoints | limit |
//! |---|---|
//! | queries: `/query/sql`, `/query`, the controller's `/sql` | [`QUERY_BODY_BYTES`] (4 MiB) |
//! | schemas and table configs: `/schemas...`, `/tables` and `/tables/{t}`, `/tableConfigs...` | [`CONFIG_BODY_BYTES`] (8 MiB) |
//! | segment uploads and file ingestion: `POST /segments`, `/v2/segments`, `/ingestFromFile` | [`SEGMENT_BODY_BYTES`] (16 GiB, streamed to the staging directory, never held in memory) |
//! | everything else (consumption control, segments, ...) | [`CONTROL_BODY_BYTES`] (64 KiB) |
//!
//! A body whose `Content-Length` is over the limit is answered 413 without being kept (up to
//! 64 MiB it is read and dropped first, so that a client writing all of it sees the answer
//! rather than a reset connection; past that the connection closes); a chunked body is cut
//! off at the limit and answered 413 when read ([`read`]). The message names the limit and
//! the endpoint.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use riffle_common::ErrorKind;

use crate::error::ApiError;

/// Query bodies: SQL up to the expression limits (50,000 elements) with room to spare.
pub const QUERY_BODY_BYTES: usize = 4 << 20;
/// Schema and table-config bodies.
pub const CONFIG_BODY_BYTES: usize = 8 << 20;
/// Segment tars and files to ingest: streamed to disk.
pub const SEGMENT_BODY_BYTES: usize = 16 << 30;
/// Bodies of every other endpoint (they take parameters, not documents).
pub const CONTROL_BODY_BYTES: usize = 64 << 10;

/// The body limit of a path.
pub fn limit_for(path: &str) -> usize {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let depth = path.trim_matches('/').split('/').count();
    match first {
        "query" | "sql" => QUERY_BODY_BYTES,
        "segments" if depth == 1 => SEGMENT_BODY_BYTES,
        "v2" | "ingestFromFile" => SEGMENT_BODY_BYTES,
        "schemas" | "tableConfigs" => CONFIG_BODY_BYTES,
        "tables" if depth <= 2 => CONFIG_BODY_BYTES,
        _ => CONTROL_BODY_BYTES,
    }
}

/// The limit recorded on a request, for [`read`].
#[derive(Clone, Copy, Debug)]
struct Limit(usize);

/// Middleware: refuses a declared length over the path's limit, and cuts any body off there.
pub async fn limit(mut req: Request, next: Next) -> Response {
    let limit = limit_for(req.uri().path());
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limit as u64) {
        let answer = too_large(req.method().as_str(), req.uri().path(), limit).into_response();
        // A client that writes its whole body before reading would see the connection
        // reset instead of the 413: read and drop a moderately sized body first (what
        // web servers call a lingering close), never keeping it.
        if n <= DRAIN_MAX_BYTES {
            let _ = tokio::time::timeout(DRAIN_TIME, drain(req.into_body())).await;
        }
        return answer;
    }
    req.extensions_mut().insert(Limit(limit));
    let req = req.map(|b| Body::new(http_body_util::Limited::new(b, limit)));
    next.run(req).await
}

/// Bodies up to this size are read and dropped before a 413 (see [`limit`]).
const DRAIN_MAX_BYTES: u64 = 64 << 20;
/// How long reading such a body may take.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads a body to its end, dropping every frame.
async fn drain(mut body: Body) {
    use http_body_util::BodyExt;
    while let Some(Ok(_)) = body.frame().await {}
}

fn too_large(method: &str, path: &str, limit: usize) -> ApiError {
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        format!("request body is over the limit of {limit} bytes for {method} {path}"),
    )
}

/// Reads a whole body (already limited by [`limit`]); past the limit, 413 naming it.
pub async fn read(req: Request) -> Result<Bytes, ApiError> {
    let limit = req
        .extensions()
        .get::<Limit>()
        .map_or(CONTROL_BODY_BYTES, |l| l.0);
    let (method, path) = (req.method().to_string(), req.uri().path().to_string());
    axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .map_err(|e| {
            let over = std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .any(|e| e.is::<http_body_util::LengthLimitError>());
            if over {
                too_large(&method, &path, limit)
            } else {
                ApiError::bad_request(format!("cannot read the body: {e}"))
            }
        })
}

/// Streams a body to the file `path`: the first part of a multipart body (Pinot's
/// clients send the segment tar as the only file part), else the whole body. Past the
/// endpoint's limit, 413. Returns the bytes written.
pub async fn to_file(req: Request, path: &std::path::Path) -> Result<u64, ApiError> {
    use axum::extract::FromRequest;
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    let limit = req
        .extensions()
        .get::<Limit>()
        .map_or(CONTROL_BODY_BYTES, |l| l.0);
    let (method, uri_path) = (req.method().to_string(), req.uri().path().to_string());
    let over = |e: &(dyn std::error::Error + 'static)| {
        std::iter::successors(Some(e), |e| e.source())
            .any(|e| e.is::<http_body_util::LengthLimitError>())
    };
    let read_err = |e: &(dyn std::error::Error + 'static)| {
        if over(e) {
            too_large(&method, &uri_path, limit)
        } else {
            ApiError::bad_request(format!("cannot read the body: {e}"))
        }
    };
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| ApiError::new(ErrorKind::Io, format!("create {}: {e}", path.display())))?;
    let write_err =
        |e: std::io::Error| ApiError::new(ErrorKind::Io, format!("write {}: {e}", path.display()));
    let mut n = 0u64;
    let multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if multipart {
        let mut mp = axum::extract::Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid multipart body: {e}")))?;
        let mut field = mp
            .next_field()
            .await
            .map_err(|e| read_err(&e))?
            .ok_or_else(|| ApiError::bad_request("multipart body has no file part"))?;
        while let Some(chunk) = field.chunk().await.map_err(|e| read_err(&e))? {
            n += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(write_err)?;
        }
    } else {
        let mut body = req.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| read_err(&e))?;
            if let Ok(data) = frame.into_data() {
                n += data.len() as u64;
                file.write_all(&data).await.map_err(write_err)?;
            }
        }
    }
    file.flush().await.map_err(write_err)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_endpoint() {
        assert_eq!(limit_for("/query/sql"), QUERY_BODY_BYTES);
        assert_eq!(limit_for("/sql"), QUERY_BODY_BYTES);
        assert_eq!(limit_for("/schemas"), CONFIG_BODY_BYTES);
        assert_eq!(limit_for("/tables"), CONFIG_BODY_BYTES);
        assert_eq!(limit_for("/tables/t"), CONFIG_BODY_BYTES);
        assert_eq!(limit_for("/tableConfigs/t"), CONFIG_BODY_BYTES);
        assert_eq!(limit_for("/tables/t/pauseConsumption"), CONTROL_BODY_BYTES);
        assert_eq!(limit_for("/segments/t/s"), CONTROL_BODY_BYTES);
        assert_eq!(limit_for("/segments"), SEGMENT_BODY_BYTES);
        assert_eq!(limit_for("/v2/segments"), SEGMENT_BODY_BYTES);
    }
}
