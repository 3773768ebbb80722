//! The config error: a JSON path and what was expected there.

use riffle_common::{ClassifyError, ErrorKind};

/// An invalid schema, table config or stream config. `path` is a JSON path such as
/// `$.ingestionConfig.streamIngestionConfig.streamConfigMaps[0].streamType`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// Where the problem is.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ConfigError {
    /// A new error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Converts a serde error that carries its path (`what` says which document). A missing
    /// field is reported at the field's own path (`$.segmentsConfig`), not at its parent.
    pub fn from_path_error(what: &str, e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = e.path().to_string();
        let mut path = if path == "." || path.is_empty() {
            "$".to_string()
        } else {
            format!("$.{path}")
        };
        let inner = e.into_inner();
        // serde_json appends " at line X column Y"; keep it, it helps with big files.
        let mut message = inner.to_string();
        if let Some(rest) = message.strip_prefix("missing field `") {
            if let Some((field, tail)) = rest.split_once('`') {
                path = format!("{path}.{field}");
                message = format!("{what} is missing required field {field}{tail}");
            }
        }
        ConfigError { path, message }
    }
}

impl ClassifyError for ConfigError {
    fn error_kind(&self) -> ErrorKind {
        ErrorKind::BadRequest
    }
}
