//! The controller's error: a kind (which the HTTP layer maps to a status), a message for the
//! user, and the cause as its source.

use riffle_catalog::CatalogError;
use riffle_common::{chain, BoxError, ClassifyError, ErrorKind, NameError, PoolError};
use riffle_config::ConfigError;
use riffle_storage::StorageError;
use riffle_stream::StreamError;

/// A controller failure.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ControllerError {
    /// The kind of failure.
    pub kind: ErrorKind,
    /// What went wrong, for the user.
    pub message: String,
    /// The cause.
    #[source]
    pub source: Option<BoxError>,
}

impl ControllerError {
    /// A new error without a cause.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ControllerError {
        ControllerError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A bad request.
    pub fn bad_request(message: impl Into<String>) -> ControllerError {
        ControllerError::new(ErrorKind::BadRequest, message)
    }

    /// Something that does not exist.
    pub fn not_found(message: impl Into<String>) -> ControllerError {
        ControllerError::new(ErrorKind::NotFound, message)
    }

    /// A classified error with `prefix` before its message (and its sources), kept as the
    /// source.
    pub fn wrap<E>(prefix: &str, e: E) -> ControllerError
    where
        E: ClassifyError + std::error::Error + Send + Sync + 'static,
    {
        let text = chain(&e);
        ControllerError {
            kind: e.error_kind(),
            message: if prefix.is_empty() {
                text
            } else {
                format!("{prefix}: {text}")
            },
            source: Some(Box::new(e)),
        }
    }

    /// The same error with another kind (e.g. a missing schema is the request's fault).
    pub fn with_kind(mut self, kind: ErrorKind) -> ControllerError {
        self.kind = kind;
        self
    }
}

impl ClassifyError for ControllerError {
    fn error_kind(&self) -> ErrorKind {
        self.kind
    }
}

macro_rules! from_error {
    ($($t:ty),*) => {$(
        impl From<$t> for ControllerError {
            fn from(e: $t) -> ControllerError {
                ControllerError::wrap("", e)
            }
        }
    )*};
}

from_error!(
    CatalogError,
    StreamError,
    StorageError,
    PoolError,
    NameError,
    ConfigError
);
