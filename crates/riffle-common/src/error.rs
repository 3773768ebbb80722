//! The one error model: every library error has an [`ErrorKind`], and this file is the only
//! place that says what a kind means to a caller: its HTTP status, its Pinot error code and
//! name, and whether retrying may help.
//!
//! Library crates define `thiserror` types that keep their cause as a `source` and implement
//! [`ClassifyError`]; the server answers through [`ErrorKind::http_status`] and
//! [`ErrorKind::pinot_code`], and loops decide to retry through [`ErrorKind::is_retryable`].
//! [`chain`] renders an error with its sources on one line for users and logs.

use std::error::Error as StdError;

/// What went wrong, in terms a caller (and the HTTP layer) can branch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A request body, config, name or parameter is invalid (HTTP 400).
    BadRequest,
    /// The named object does not exist (HTTP 404).
    NotFound,
    /// The object exists already (HTTP 409).
    AlreadyExists,
    /// The request conflicts with the current state, e.g. deleting a schema in use (HTTP 409).
    Conflict,
    /// Credentials or certificates were refused (by a stream or the deep store): a person
    /// must fix them; not retried.
    Unauthorized,
    /// A dependency is unavailable for now (a broker, the deep store, a timeout); retrying
    /// may succeed (HTTP 503).
    Unavailable,
    /// A local file could not be read or written (disk full, permissions); retrying later may
    /// succeed once the disk is fixed (HTTP 500).
    Io,
    /// Stored data is corrupt (a segment file, a catalog record); not retried (HTTP 500).
    Corrupt,
    /// A bug or an unexpected failure; not retried (HTTP 500).
    Internal,
    /// Broker: the request body is not valid JSON (Pinot 100).
    JsonParsing,
    /// Broker: the SQL does not parse (Pinot 150).
    SqlParsing,
    /// Broker: the table in the query does not exist (Pinot 190).
    TableDoesNotExist,
    /// Broker: the query failed while running (Pinot 200).
    QueryExecution,
    /// Broker: the query ran out of time (Pinot 250).
    ExecutionTimeout,
    /// Broker: the query is valid SQL but not acceptable (Pinot 700).
    QueryValidation,
    /// Broker: the query names a column the table does not have (Pinot 710).
    UnknownColumn,
    /// Broker: the query could not be planned (Pinot 720).
    QueryPlanning,
    /// Broker: committed segments of a queried table could not be loaded; the result
    /// lacks their rows (Pinot 305, whose message is the detail alone).
    SegmentsUnavailable,
    /// No credentials, or wrong ones, where the API requires them (HTTP 401).
    Unauthenticated,
    /// The caller may not do this, or not on this table (HTTP 403, Pinot 180).
    AccessDenied,
    /// Broker: the query reached a resource limit (memory, result size) and was stopped
    /// (Pinot 245, `ServerResourceLimitExceededError`).
    ResourceLimitExceeded,
    /// Broker: every query slot stayed taken for as long as the query could wait (Pinot 240,
    /// `QuerySchedulingTimeoutError`).
    QuerySchedulingTimeout,
    /// A request body is larger than its endpoint accepts (HTTP 413).
    PayloadTooLarge,
}

impl ErrorKind {
    /// The HTTP status for this kind. The broker answers query errors with 200 unless the
    /// client asks for HTTP statuses (Pinot's `Pinot-Use-Http-Status-For-Errors`).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadRequest
            | ErrorKind::JsonParsing
            | ErrorKind::SqlParsing
            | ErrorKind::QueryValidation
            | ErrorKind::UnknownColumn
            | ErrorKind::QueryPlanning => 400,
            ErrorKind::NotFound | ErrorKind::TableDoesNotExist => 404,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::AccessDenied => 403,
            ErrorKind::AlreadyExists | ErrorKind::Conflict => 409,
            ErrorKind::Unavailable
            | ErrorKind::SegmentsUnavailable
            | ErrorKind::ResourceLimitExceeded => 503,
            ErrorKind::ExecutionTimeout | ErrorKind::QuerySchedulingTimeout => 408,
            ErrorKind::Unauthorized
            | ErrorKind::Io
            | ErrorKind::Corrupt
            | ErrorKind::Internal
            | ErrorKind::QueryExecution => 500,
        }
    }

    /// Pinot's `QueryErrorCode` id for this kind.
    pub fn pinot_code(self) -> i32 {
        match self {
            ErrorKind::JsonParsing => 100,
            ErrorKind::SqlParsing => 150,
            ErrorKind::Unauthenticated | ErrorKind::AccessDenied => 180,
            ErrorKind::TableDoesNotExist | ErrorKind::NotFound => 190,
            ErrorKind::QueryExecution => 200,
            ErrorKind::ResourceLimitExceeded => 245,
            ErrorKind::QuerySchedulingTimeout => 240,
            ErrorKind::ExecutionTimeout => 250,
            ErrorKind::SegmentsUnavailable => 305,
            ErrorKind::Unavailable => 503,
            ErrorKind::QueryValidation | ErrorKind::BadRequest | ErrorKind::PayloadTooLarge => 700,
            ErrorKind::UnknownColumn => 710,
            ErrorKind::QueryPlanning => 720,
            ErrorKind::AlreadyExists
            | ErrorKind::Conflict
            | ErrorKind::Unauthorized
            | ErrorKind::Io
            | ErrorKind::Corrupt
            | ErrorKind::Internal => 450,
        }
    }

    /// Pinot's name for the kind's code, which starts its query error messages (the detail
    /// follows after `": "`); empty for 305, whose message is the detail alone.
    pub fn pinot_name(self) -> &'static str {
        match self {
            ErrorKind::JsonParsing => "JsonParsingError",
            ErrorKind::SqlParsing => "SQLParsingError",
            ErrorKind::Unauthenticated | ErrorKind::AccessDenied => "AccessDeniedError",
            ErrorKind::TableDoesNotExist | ErrorKind::NotFound => "TableDoesNotExistError",
            ErrorKind::QueryExecution => "QueryExecutionError",
            ErrorKind::ResourceLimitExceeded => "ServerResourceLimitExceededError",
            ErrorKind::QuerySchedulingTimeout => "QuerySchedulingTimeoutError",
            ErrorKind::ExecutionTimeout => "ExecutionTimeoutError",
            ErrorKind::SegmentsUnavailable => "",
            ErrorKind::Unavailable => "QueryCancellationError",
            ErrorKind::QueryValidation | ErrorKind::BadRequest | ErrorKind::PayloadTooLarge => {
                "QueryValidationError"
            }
            ErrorKind::UnknownColumn => "UnknownColumnError",
            ErrorKind::QueryPlanning => "QueryPlanningError",
            ErrorKind::AlreadyExists
            | ErrorKind::Conflict
            | ErrorKind::Unauthorized
            | ErrorKind::Io
            | ErrorKind::Corrupt
            | ErrorKind::Internal => "InternalError",
        }
    }

    /// Whether retrying the same operation later may succeed: a dependency that is down
    /// ([`ErrorKind::Unavailable`]) or a local disk problem ([`ErrorKind::Io`]). Everything
    /// else is permanent: retrying would fail the same way, so the caller stops and shows
    /// the error. This is the only retry rule of the project.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Io)
    }
}

/// Implemented by every library error so that the server maps it in one place.
pub trait ClassifyError {
    /// The kind of failure.
    fn error_kind(&self) -> ErrorKind;

    /// Whether retrying may succeed: the kind decides ([`ErrorKind::is_retryable`]).
    fn is_retryable(&self) -> bool {
        self.error_kind().is_retryable()
    }
}

/// The longest text [`chain`] returns (a store's error body can be long XML).
const MAX_CHAIN: usize = 2000;

/// The error and its sources joined with `": "` on one line, skipping a source whose text is
/// already part of what precedes it; at most a few thousand bytes.
pub fn chain(e: &(dyn StdError + 'static)) -> String {
    chain_within(e, MAX_CHAIN)
}

/// [`chain`] cut to at most `max` bytes (then ending in `...`).
pub fn chain_within(e: &(dyn StdError + 'static), max: usize) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    let mut line = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > max {
        let mut end = max;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push_str("...");
    }
    line
}

/// A boxed cause kept as an error's `source`.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_kinds_map_to_pinot_and_http() {
        assert_eq!(ErrorKind::SqlParsing.pinot_code(), 150);
        assert_eq!(ErrorKind::TableDoesNotExist.pinot_code(), 190);
        assert_eq!(ErrorKind::UnknownColumn.pinot_code(), 710);
        assert_eq!(ErrorKind::BadRequest.http_status(), 400);
        assert_eq!(ErrorKind::AlreadyExists.http_status(), 409);
        assert_eq!(ErrorKind::SegmentsUnavailable.pinot_name(), "");
        assert_eq!(ErrorKind::SqlParsing.pinot_name(), "SQLParsingError");
    }

    #[test]
    fn test_only_unavailable_and_io_are_retried() {
        let retried: Vec<ErrorKind> = [
            ErrorKind::BadRequest,
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::Conflict,
            ErrorKind::Unauthorized,
            ErrorKind::Unavailable,
            ErrorKind::Io,
            ErrorKind::Corrupt,
            ErrorKind::Internal,
        ]
        .into_iter()
        .filter(|k| k.is_retryable())
        .collect();
        assert_eq!(retried, vec![ErrorKind::Unavailable, ErrorKind::Io]);
    }

    #[derive(Debug, thiserror::Error)]
    #[error("open catalog")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn test_chain_shows_sources_once() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(chain(&e), "open catalog: disk full");
    }
}
