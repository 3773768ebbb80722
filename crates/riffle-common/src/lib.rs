//! Shared vocabulary of every Riffle crate.
//!
//! Owns:
//! - [`ErrorCode`]: the one place where an error kind is mapped to an HTTP status and to a
//!   Pinot query error code ([`ErrorCode::http_status`], [`ErrorCode::pinot_code`]). Library
//!   crates define their own `thiserror` types and implement [`ClassifyError`] so that the
//!   server can answer without knowing the crate.
//! - Identifiers: [`PartitionId`], [`TableType`], table-name helpers and [`SegmentName`]
//!   (Pinot's low-level-consumer name `table__partition__sequence__yyyyMMddTHHmmZ`).
//! - The clock ([`now_ms`]).
//! - Crash points for tests ([`failpoint`]).
//!
//! Invariants: an `ErrorCode` maps to exactly one HTTP status and one Pinot code; segment
//! names round-trip through [`SegmentName::parse`] and `Display`.

pub mod failpoint;
pub mod fsync;

pub use failpoint::failpoint;

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// What went wrong, in terms a caller (and the HTTP layer) can branch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A request body, config or parameter is invalid (HTTP 400).
    BadRequest,
    /// The named object does not exist (HTTP 404).
    NotFound,
    /// The object exists already (HTTP 409).
    AlreadyExists,
    /// The request conflicts with the current state, e.g. deleting a schema in use (HTTP 409).
    Conflict,
    /// A dependency is unavailable for now; retrying may succeed (HTTP 503).
    Unavailable,
    /// A bug or an unexpected failure (HTTP 500).
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
}

impl ErrorCode {
    /// The HTTP status for this code. The broker answers query errors with 200 unless the
    /// client asks for HTTP statuses (Pinot's `Pinot-Use-Http-Status-For-Errors`).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::AlreadyExists | ErrorCode::Conflict => 409,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
            ErrorCode::JsonParsing => 400,
            ErrorCode::SqlParsing => 400,
            ErrorCode::TableDoesNotExist => 404,
            ErrorCode::QueryExecution => 500,
            ErrorCode::ExecutionTimeout => 408,
            ErrorCode::QueryValidation => 400,
            ErrorCode::UnknownColumn => 400,
            ErrorCode::QueryPlanning => 400,
            ErrorCode::SegmentsUnavailable => 503,
        }
    }

    /// Pinot's `QueryErrorCode` id for this code.
    pub fn pinot_code(self) -> i32 {
        match self {
            ErrorCode::JsonParsing => 100,
            ErrorCode::SqlParsing => 150,
            ErrorCode::TableDoesNotExist => 190,
            ErrorCode::QueryExecution => 200,
            ErrorCode::ExecutionTimeout => 250,
            ErrorCode::QueryValidation | ErrorCode::BadRequest => 700,
            ErrorCode::UnknownColumn => 710,
            ErrorCode::QueryPlanning => 720,
            ErrorCode::SegmentsUnavailable => 305,
            ErrorCode::NotFound => 190,
            ErrorCode::Unavailable => 503,
            ErrorCode::AlreadyExists | ErrorCode::Conflict | ErrorCode::Internal => 450,
        }
    }

    /// Pinot's default message for the code; detail follows after `": "`.
    pub fn pinot_message(self) -> &'static str {
        match self.pinot_code() {
            100 => "JsonParsingError",
            150 => "SQLParsingError",
            190 => "TableDoesNotExistError",
            200 => "QueryExecutionError",
            250 => "ExecutionTimeoutError",
            503 => "QueryCancellationError",
            700 => "QueryValidationError",
            710 => "UnknownColumnError",
            720 => "QueryPlanningError",
            305 => "",
            _ => "InternalError",
        }
    }
}

/// Implemented by every library error so that the server maps it in one place.
pub trait ClassifyError {
    /// The kind of failure.
    fn code(&self) -> ErrorCode;
    /// Whether retrying the same operation may succeed.
    fn is_retryable(&self) -> bool {
        matches!(self.code(), ErrorCode::Unavailable)
    }
}

/// A partition of a stream (Pinot's partition-group id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionId(pub u32);

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `OFFLINE` or `REALTIME`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableType {
    /// Batch-loaded table.
    Offline,
    /// Stream-fed table.
    Realtime,
}

impl TableType {
    /// Upper-case name as Pinot writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            TableType::Offline => "OFFLINE",
            TableType::Realtime => "REALTIME",
        }
    }

    /// Parses `offline` / `realtime` in any case.
    pub fn parse(s: &str) -> Option<TableType> {
        if s.eq_ignore_ascii_case("offline") {
            Some(TableType::Offline)
        } else if s.eq_ignore_ascii_case("realtime") {
            Some(TableType::Realtime)
        } else {
            None
        }
    }
}

/// Splits `name_REALTIME` / `name_OFFLINE` into the raw name and its type suffix.
pub fn split_table_name(name: &str) -> (&str, Option<TableType>) {
    if let Some(raw) = name.strip_suffix("_REALTIME") {
        (raw, Some(TableType::Realtime))
    } else if let Some(raw) = name.strip_suffix("_OFFLINE") {
        (raw, Some(TableType::Offline))
    } else {
        (name, None)
    }
}

/// `raw_TYPE`.
pub fn table_name_with_type(raw: &str, table_type: TableType) -> String {
    format!("{raw}_{}", table_type.as_str())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Pinot's low-level-consumer segment name: `table__partition__sequence__yyyyMMddTHHmmZ`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentName {
    /// Raw table name.
    pub table: String,
    /// Partition id.
    pub partition: PartitionId,
    /// Sequence number within the partition, from 0.
    pub sequence: u32,
    /// Creation time, formatted `yyyyMMddTHHmmZ` (UTC).
    pub created: String,
}

impl SegmentName {
    /// A new name stamped with `created_ms` (UTC minutes).
    pub fn new(table: &str, partition: PartitionId, sequence: u32, created_ms: i64) -> Self {
        SegmentName {
            table: table.to_string(),
            partition,
            sequence,
            created: format_compact_utc(created_ms),
        }
    }

    /// Parses a name; `None` if it is not a low-level-consumer name.
    pub fn parse(name: &str) -> Option<SegmentName> {
        let parts: Vec<&str> = name.split("__").collect();
        if parts.len() != 4 {
            return None;
        }
        let partition = parts[1].parse().ok()?;
        let sequence = parts[2].parse().ok()?;
        let created = parts[3];
        if created.len() != 14 || !created.ends_with('Z') || created.as_bytes()[8] != b'T' {
            return None;
        }
        Some(SegmentName {
            table: parts[0].to_string(),
            partition: PartitionId(partition),
            sequence,
            created: created.to_string(),
        })
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}__{}__{}__{}",
            self.table, self.partition.0, self.sequence, self.created
        )
    }
}

/// `yyyyMMddTHHmmZ` in UTC for an epoch-millisecond instant.
pub fn format_compact_utc(ms: i64) -> String {
    let (y, mo, d, h, mi, _s, _ms) = civil_from_ms(ms);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}Z")
}

/// `yyyy-MM-dd HH:mm:ss.S` (Java `Timestamp.toString`), the form Pinot uses for TIMESTAMP
/// values in query responses. Fraction digits: as many as needed, at least one.
pub fn format_pinot_timestamp(ms: i64) -> String {
    let (y, mo, d, h, mi, s, frac) = civil_from_ms(ms);
    let mut frac_str = format!("{frac:03}");
    while frac_str.len() > 1 && frac_str.ends_with('0') {
        frac_str.pop();
    }
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{frac_str}")
}

/// Splits epoch milliseconds into UTC calendar fields (proleptic Gregorian).
pub fn civil_from_ms(ms: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (h, mi, s, frac) = (
        (rem / 3_600_000) as u32,
        ((rem / 60_000) % 60) as u32,
        ((rem / 1000) % 60) as u32,
        (rem % 1000) as u32,
    );
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (y, m, d, h, mi, s, frac)
}

/// Lower-case hex of bytes: how Pinot shows BYTES values and converts BYTES to STRING.
pub fn hex_encode(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

/// Decodes lower- or upper-case hex; `None` on odd length or a non-hex digit.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return None;
    }
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    b.chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hex_round_trip() {
        assert_eq!(hex_encode(&[0x0a, 0xff, 0]), "0aff00");
        assert_eq!(hex_decode("0AfF00"), Some(vec![0x0a, 0xff, 0]));
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("zz"), None);
    }

    #[test]
    fn test_segment_name_round_trip() {
        let name = SegmentName::new("events", PartitionId(3), 7, 1_700_000_000_000);
        let s = name.to_string();
        assert_eq!(s, "events__3__7__20231114T2213Z");
        assert_eq!(SegmentName::parse(&s), Some(name));
        assert_eq!(SegmentName::parse("events__x__7__20231114T2213Z"), None);
        assert_eq!(SegmentName::parse("events_1"), None);
    }

    #[test]
    fn test_pinot_timestamp_format() {
        assert_eq!(format_pinot_timestamp(0), "1970-01-01 00:00:00.0");
        assert_eq!(
            format_pinot_timestamp(1_388_534_400_123),
            "2014-01-01 00:00:00.123"
        );
        assert_eq!(format_pinot_timestamp(-1), "1969-12-31 23:59:59.999");
    }

    #[test]
    fn test_error_code_mapping_is_pinot() {
        assert_eq!(ErrorCode::SqlParsing.pinot_code(), 150);
        assert_eq!(ErrorCode::TableDoesNotExist.pinot_code(), 190);
        assert_eq!(ErrorCode::UnknownColumn.pinot_code(), 710);
        assert_eq!(ErrorCode::BadRequest.http_status(), 400);
        assert_eq!(ErrorCode::AlreadyExists.http_status(), 409);
    }

    #[test]
    fn test_split_table_name() {
        assert_eq!(
            split_table_name("a_REALTIME"),
            ("a", Some(TableType::Realtime))
        );
        assert_eq!(split_table_name("a"), ("a", None));
    }
}
