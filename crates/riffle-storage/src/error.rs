//! [`StorageError`]: what a deep-store operation failed with, and whether retrying may help.

use std::error::Error as StdError;

use object_store::client::{HttpError, HttpErrorKind};
use riffle_common::{ClassifyError, ErrorKind};

/// Broad class of a deep-store failure, for retry decisions and the HTTP layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// The deep-store URI or an option is wrong (unknown scheme or key, a bad value).
    InvalidConfig,
    /// An argument is wrong: a table or segment name that is not one path segment, a URI
    /// outside the store's base.
    InvalidInput,
    /// The object does not exist.
    NotFound,
    /// The store refused the credentials or the request (HTTP 401 / 403).
    Unauthorized,
    /// A passing fault: connection refused or reset, a timeout, a 5xx or 429 answer.
    /// Retrying may succeed.
    Unavailable,
    /// A local file could not be read or written.
    Io,
    /// Anything else (an unexpected answer, a bug); not retried.
    Internal,
}

/// A deep-store failure. The message is lower-case and names the URI involved; it never
/// contains credentials. The cause is folded into the message, redacted, rather than kept
/// as a source: an object store's error can carry a signed URL or a key.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    /// The class of failure.
    pub kind: StorageErrorKind,
    /// What happened.
    pub message: String,
}

impl StorageError {
    /// A new error.
    pub fn new(kind: StorageErrorKind, message: impl Into<String>) -> StorageError {
        StorageError {
            kind,
            message: message.into(),
        }
    }

    /// An invalid-config error.
    pub fn config(message: impl Into<String>) -> StorageError {
        StorageError::new(StorageErrorKind::InvalidConfig, message)
    }

    /// An invalid-input error.
    pub fn input(message: impl Into<String>) -> StorageError {
        StorageError::new(StorageErrorKind::InvalidInput, message)
    }

    /// The class of failure.
    pub fn kind(&self) -> StorageErrorKind {
        self.kind
    }

    /// Whether retrying the same operation may succeed (decided by the error's kind, as
    /// every error's: [`ErrorKind::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        ClassifyError::is_retryable(self)
    }

    /// A local I/O failure while doing `what` (e.g. "read /tmp/x"). Always
    /// [`StorageErrorKind::Io`], a missing local file too: `NotFound` means an object.
    pub(crate) fn io(what: &str, e: &std::io::Error) -> StorageError {
        StorageError::new(StorageErrorKind::Io, format!("cannot {what}: {e}"))
    }

    /// An `object_store` failure while doing `what` (e.g. "download s3://b/t/s"). `secrets`
    /// are option values that must not appear in the message.
    pub(crate) fn store(what: &str, e: &object_store::Error, secrets: &[String]) -> StorageError {
        let kind = classify(e);
        let detail = redact(&chain(e), secrets);
        let message = match kind {
            StorageErrorKind::NotFound => format!("cannot {what}: object not found ({detail})"),
            StorageErrorKind::Unavailable => {
                format!("cannot {what}: deep store unavailable: {detail}")
            }
            _ => format!("cannot {what}: {detail}"),
        };
        StorageError::new(kind, message)
    }
}

impl ClassifyError for StorageError {
    fn error_kind(&self) -> ErrorKind {
        match self.kind {
            StorageErrorKind::InvalidConfig | StorageErrorKind::InvalidInput => {
                ErrorKind::BadRequest
            }
            StorageErrorKind::NotFound => ErrorKind::NotFound,
            StorageErrorKind::Unavailable => ErrorKind::Unavailable,
            // The deep store's credentials are the server's config, not the request's: a
            // refusal is the server's fault (500), and a person must fix it.
            StorageErrorKind::Unauthorized => ErrorKind::Unauthorized,
            StorageErrorKind::Io => ErrorKind::Io,
            StorageErrorKind::Internal => ErrorKind::Internal,
        }
    }
}

/// The kind of an `object_store` error. Transport failures are found by walking the source
/// chain to object_store's [`HttpError`]; HTTP statuses other than the typed ones (404, 401,
/// 403, ...) are only visible in the message ("status code: 503 ...").
pub(crate) fn classify(e: &object_store::Error) -> StorageErrorKind {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => StorageErrorKind::NotFound,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => StorageErrorKind::Unauthorized,
        E::InvalidPath { .. } => StorageErrorKind::InvalidInput,
        E::UnknownConfigurationKey { .. } => StorageErrorKind::InvalidConfig,
        // The object changed between two requests of one download: reading it again helps.
        E::Precondition { .. } => StorageErrorKind::Unavailable,
        _ => classify_chain(e),
    }
}

fn classify_chain(e: &object_store::Error) -> StorageErrorKind {
    let mut io = false;
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<HttpError>() {
            return match h.kind() {
                HttpErrorKind::Connect
                | HttpErrorKind::Request
                | HttpErrorKind::Timeout
                | HttpErrorKind::Interrupted
                // A body that could not be decoded is most often a connection cut short.
                | HttpErrorKind::Decode => StorageErrorKind::Unavailable,
                _ => StorageErrorKind::Internal,
            };
        }
        if let Some(ioe) = s.downcast_ref::<std::io::Error>() {
            match ioe.kind() {
                std::io::ErrorKind::NotFound => return StorageErrorKind::NotFound,
                std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::NotConnected
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof => return StorageErrorKind::Unavailable,
                _ => io = true,
            }
        }
        let text = s.to_string();
        if let Some(status) = status_in(&text) {
            return match status {
                429 | 500..=599 => StorageErrorKind::Unavailable,
                404 => StorageErrorKind::NotFound,
                401 | 403 => StorageErrorKind::Unauthorized,
                _ => StorageErrorKind::Internal,
            };
        }
        source = s.source();
    }
    if io {
        StorageErrorKind::Io
    } else {
        StorageErrorKind::Internal
    }
}

/// The HTTP status in object_store's "Server returned non-2xx status code: 503 Service
/// Unavailable" message, if any.
fn status_in(text: &str) -> Option<u16> {
    let (_, rest) = text.split_once("status code: ")?;
    rest.get(..3)?.parse().ok()
}

/// The longest detail kept from an error chain (a store's error body can be long XML).
const MAX_DETAIL: usize = 600;

/// The error and its sources on one line, at most [`MAX_DETAIL`] bytes.
fn chain(e: &(dyn StdError + 'static)) -> String {
    riffle_common::error::chain_within(e, MAX_DETAIL)
}

/// `text` without the given secret values and without the query strings of URLs (an
/// Azure SAS token or a presigned URL carries its signature there).
pub(crate) fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match word.split_once('?') {
            Some((url, _)) if url.contains("://") => {
                out.push_str(url);
                out.push_str("?<redacted>");
            }
            _ => out.push_str(word),
        }
    }
    for s in secrets {
        if s.len() >= 4 {
            out = out.replace(s.as_str(), "<redacted>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_redact_removes_secrets_and_queries() {
        let text =
            "error performing GET https://a.blob.core.windows.net/c/x?sig=abc in 1s - key s3cr3t";
        let out = redact(text, &["s3cr3t".to_string()]);
        assert!(!out.contains("sig=abc"), "{out}");
        assert!(!out.contains("s3cr3t"), "{out}");
        assert!(
            out.contains("https://a.blob.core.windows.net/c/x?<redacted>"),
            "{out}"
        );
    }

    #[test]
    fn test_status_in_message() {
        assert_eq!(
            status_in("Server returned non-2xx status code: 503 Service Unavailable: "),
            Some(503)
        );
        assert_eq!(status_in("no status"), None);
    }

    #[test]
    fn test_classify_object_store_errors() {
        let nf = object_store::Error::NotFound {
            path: "a".into(),
            source: "gone".into(),
        };
        assert_eq!(classify(&nf), StorageErrorKind::NotFound);
        let busy = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 503 Service Unavailable: slow down"
                .into(),
        };
        assert_eq!(classify(&busy), StorageErrorKind::Unavailable);
        let bad = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 400 Bad Request: no".into(),
        };
        assert_eq!(classify(&bad), StorageErrorKind::Internal);
        let e = StorageError::store("download x", &busy, &[]);
        assert!(e.is_retryable());
        assert_eq!(e.error_kind(), ErrorKind::Unavailable);
    }
}
