//! The one place where errors become HTTP responses: Pinot's controller error body
//! `{"code": <status>, "error": "<message>"}`, the status from the error's kind
//! ([`ErrorKind::http_status`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use riffle_common::{chain, ClassifyError, ErrorKind};
use serde::Serialize;

/// An API error: a kind and a message for the user.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Kind (maps to the status).
    pub kind: ErrorKind,
    /// Message.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::BadRequest, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotFound, message)
    }

    /// From any classified error (its message and sources), with a prefix such as
    /// `Invalid table config`.
    pub fn from_error<E: ClassifyError + std::error::Error + 'static>(
        prefix: &str,
        e: E,
    ) -> ApiError {
        let text = chain(&e);
        let message = if prefix.is_empty() {
            text
        } else {
            format!("{prefix}: {text}")
        };
        ApiError::new(e.error_kind(), message)
    }
}

impl From<riffle_controller::ControllerError> for ApiError {
    fn from(e: riffle_controller::ControllerError) -> ApiError {
        // The controller's message already says what failed and why.
        ApiError::new(e.kind, e.message)
    }
}

impl From<riffle_common::NameError> for ApiError {
    fn from(e: riffle_common::NameError) -> ApiError {
        ApiError::from_error("", e)
    }
}

/// The HTTP status of an error kind.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u16,
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.kind);
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self.message, "request failed");
        }
        let body = ErrorBody {
            code: status.as_u16(),
            error: &self.message,
        };
        (status, Json(body)).into_response()
    }
}
