//! Names that reach the disk, the catalog and the deep store: [`TableName`],
//! [`TableNameWithType`] and Pinot's low-level-consumer [`SegmentName`].
//!
//! A table name is parsed once, where it enters (a config, a URL path, a job spec), and
//! travels typed from there. [`TableNameWithType::dir_in`] is the only way code turns a table
//! name into a path: a parsed name is one plain path component (no separator, no `..`, no
//! control character), so the path stays inside the directory it is joined to.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{ClassifyError, ErrorKind};

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

/// A table name that is not acceptable, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("table name '{name}' {reason}")]
pub struct NameError {
    /// The name as given (control characters escaped).
    pub name: String,
    /// What is wrong with it and what is expected.
    pub reason: String,
}

impl ClassifyError for NameError {
    fn error_kind(&self) -> ErrorKind {
        ErrorKind::BadRequest
    }
}

/// Checks the name of a segment built outside the server (a push): it becomes a file name
/// and an object key, so 1 to 200 letters, digits, `_`, `-` and `.`, not starting with `.`
/// or `-`. Returns the reason it is refused.
pub fn check_segment_name(name: &str) -> Result<(), String> {
    let shown = name.escape_debug();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(format!(
            "segment name '{shown}' must have 1 to 200 characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "segment name '{shown}' must not contain '{}': expected letters, digits, '_', '-' and '.'",
            c.escape_debug()
        ));
    }
    if name.starts_with(['.', '-']) {
        return Err(format!(
            "segment name '{shown}' must start with a letter, a digit or '_'"
        ));
    }
    Ok(())
}

/// A raw table name (no `_OFFLINE` / `_REALTIME` suffix), checked once.
///
/// Rules: 1 to [`TableName::MAX_LEN`] characters; letters, digits, `_`, `-` and `.` only
/// (no whitespace, path separator, NUL or control character); no `__` (Pinot's segment-name
/// separator); at most one `.` (Pinot's `database.table`); not starting with `.` or `-`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName(Arc<str>);

impl TableName {
    /// The longest raw name, in characters (with a type suffix and `.seg` file names it stays
    /// well under file systems' 255-byte limit).
    pub const MAX_LEN: usize = 128;

    /// Checks a raw name.
    pub fn parse(name: &str) -> Result<TableName, NameError> {
        let fail = |reason: String| NameError {
            name: name.escape_debug().to_string(),
            reason,
        };
        if name.trim().is_empty() {
            return Err(fail(
                "must not be empty: expected a name such as \"transcript\"".into(),
            ));
        }
        if name.contains("__") {
            return Err(fail("must not contain double underscore ('__')".into()));
        }
        if name.chars().any(char::is_whitespace) {
            return Err(fail("must not contain whitespace".into()));
        }
        if name.matches('.').count() > 1 {
            return Err(fail("must contain at most one '.' (database.table)".into()));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            return Err(fail(format!(
                "must not contain '{}': expected letters, digits, '_', '-' and '.'",
                c.escape_debug()
            )));
        }
        if name.starts_with(['.', '-']) {
            return Err(fail("must start with a letter, a digit or '_'".into()));
        }
        if name.chars().count() > Self::MAX_LEN {
            return Err(fail(format!("is longer than {} characters", Self::MAX_LEN)));
        }
        Ok(TableName(Arc::from(name)))
    }

    /// Parses a raw name or a name with its type suffix (`t`, `t_REALTIME`).
    pub fn parse_with_optional_type(
        name: &str,
    ) -> Result<(TableName, Option<TableType>), NameError> {
        let (raw, t) = split_table_name(name);
        Ok((TableName::parse(raw)?, t))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This table's name with a type.
    pub fn with_type(&self, table_type: TableType) -> TableNameWithType {
        TableNameWithType {
            raw: self.clone(),
            table_type,
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl AsRef<str> for TableName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A table name with its type: `name_REALTIME` / `name_OFFLINE`, Pinot's `tableNameWithType`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableNameWithType {
    raw: TableName,
    table_type: TableType,
}

impl TableNameWithType {
    /// Parses `name_REALTIME` / `name_OFFLINE`; a name without its suffix is an error.
    pub fn parse(name: &str) -> Result<TableNameWithType, NameError> {
        match TableName::parse_with_optional_type(name)? {
            (raw, Some(t)) => Ok(raw.with_type(t)),
            (_, None) => Err(NameError {
                name: name.escape_debug().to_string(),
                reason: "has no type suffix: expected _OFFLINE or _REALTIME".into(),
            }),
        }
    }

    /// The raw name.
    pub fn raw(&self) -> &TableName {
        &self.raw
    }

    /// The type.
    pub fn table_type(&self) -> TableType {
        self.table_type
    }

    /// `base/<name_TYPE>`: this table's directory under `base`. The name is one plain path
    /// component, so the result is always inside `base`.
    pub fn dir_in(&self, base: &Path) -> PathBuf {
        base.join(self.to_string())
    }
}

impl fmt::Display for TableNameWithType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.raw, self.table_type.as_str())
    }
}

impl fmt::Debug for TableNameWithType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl serde::Serialize for TableNameWithType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for TableNameWithType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TableNameWithType, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        TableNameWithType::parse(&s).map_err(serde::de::Error::custom)
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
    pub fn new(table: &TableName, partition: PartitionId, sequence: u32, created_ms: i64) -> Self {
        SegmentName {
            table: table.to_string(),
            partition,
            sequence,
            created: crate::time::format_compact_utc(created_ms),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_segment_name_round_trip() {
        let t = TableName::parse("events").unwrap();
        let name = SegmentName::new(&t, PartitionId(3), 7, 1_700_000_000_000);
        let s = name.to_string();
        assert_eq!(s, "events__3__7__20231114T2213Z");
        assert_eq!(SegmentName::parse(&s), Some(name));
        assert_eq!(SegmentName::parse("events__x__7__20231114T2213Z"), None);
        assert_eq!(SegmentName::parse("events_1"), None);
    }

    #[test]
    fn test_split_table_name() {
        assert_eq!(
            split_table_name("a_REALTIME"),
            ("a", Some(TableType::Realtime))
        );
        assert_eq!(split_table_name("a"), ("a", None));
    }

    #[test]
    fn test_table_names_are_one_plain_path_component() {
        for ok in [
            "transcript",
            "airlineStats",
            "db.events",
            "a-b_c9",
            "_x",
            "événements",
        ] {
            let n = TableName::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            let dir = n.with_type(TableType::Realtime).dir_in(Path::new("/data"));
            assert_eq!(dir.parent(), Some(Path::new("/data")), "{ok}");
        }
        for bad in [
            "",
            " ",
            "a b",
            "a__b",
            "/etc/x",
            "a/b",
            "a\\b",
            "..",
            ".",
            "a..b",
            ".hidden",
            "-x",
            "a\0b",
            "a\nb",
            "a\u{1b}[31m",
            "x.y.z",
            "t?",
            "t*",
        ] {
            assert!(TableName::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(TableName::parse(&"x".repeat(129)).is_err());
        assert!(TableName::parse(&"x".repeat(128)).is_ok());
        let e = TableName::parse("a\nb").unwrap_err();
        assert!(e.to_string().contains("a\\nb"), "{e}");
    }

    #[test]
    fn test_with_type_parses_and_prints() {
        let t = TableNameWithType::parse("events_REALTIME").unwrap();
        assert_eq!(t.raw().as_str(), "events");
        assert_eq!(t.table_type(), TableType::Realtime);
        assert_eq!(t.to_string(), "events_REALTIME");
        assert!(TableNameWithType::parse("events").is_err());
        assert!(TableNameWithType::parse("../x_OFFLINE").is_err());
        assert!(check_segment_name("airline_OFFLINE_16071_16101_0").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b", "x\0"] {
            assert!(check_segment_name(bad).is_err(), "{bad}");
        }
        let (raw, t) = TableName::parse_with_optional_type("x_OFFLINE").unwrap();
        assert_eq!((raw.as_str(), t), ("x", Some(TableType::Offline)));
    }
}
