//! The one place where errors become HTTP responses: Pinot's controller error body
//! `{"code": <status>, "error": "<message>"}` with the matching status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use riffle_common::{ClassifyError, ErrorCode};
use serde_json::json;

/// An API error: a kind and a message for the user.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Kind (maps to the status).
    pub code: ErrorCode,
    /// Message.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }

    /// From any classified library error, with a prefix such as `Invalid table config`.
    pub fn from_error<E: ClassifyError + std::fmt::Display>(prefix: &str, e: E) -> ApiError {
        let message = if prefix.is_empty() {
            e.to_string()
        } else {
            format!("{prefix}: {e}")
        };
        ApiError::new(e.code(), message)
    }
}

/// The HTTP status of an error kind.
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.code);
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self.message, "request failed");
        }
        (
            status,
            Json(json!({"code": status.as_u16(), "error": self.message})),
        )
            .into_response()
    }
}
