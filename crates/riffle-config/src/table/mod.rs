//! Pinot table-config JSON, parsed once.
//!
//! [`TableConfig::from_json`] reads the document ([`TableDocument`], which keeps every key so
//! that a config round-trips through [`TableConfig::to_json`]) and computes, once, the typed
//! views the rest of Riffle acts on: the checked [`TableName`], the parsed stream configs,
//! the merged [`IndexConfig`], the field configs and the retention. Nothing else reads the
//! document's untyped parts. [`TableConfig::validate`] then checks the config against its
//! schema, as Pinot's controller does on create and update.

mod document;
mod validate;
mod validate_ingestion;

pub use document::{
    IndexingConfig, IngestionConfig, SegmentsConfig, StreamIngestionConfig, TableDocument,
};

use std::collections::BTreeMap;

use riffle_common::{TableName, TableNameWithType, TableType};
use serde_json::Value;

use crate::error::ConfigError;
use crate::index::{parse_field_configs, FieldConfig, IndexConfig};
use crate::stream::{json_kind, StreamConfig};
use document::TIME_UNITS;

/// How long a table keeps its segments (`segmentsConfig.retentionTimeUnit` and
/// `retentionTimeValue`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Retention {
    /// The retention in milliseconds (positive).
    pub ms: i64,
}

impl Retention {
    /// Reads the unit and value. An unknown unit is an error; a value that is not a positive
    /// number means no retention (as Pinot's retention manager skips it), and
    /// [`TableConfig::validate`] rejects it on create and update.
    fn parse(unit: Option<&str>, value: Option<&Value>) -> Result<Option<Retention>, ConfigError> {
        let Some(unit) = unit.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let upper = unit.to_ascii_uppercase();
        if !TIME_UNITS.contains(&upper.as_str()) {
            return Err(ConfigError::new(
                "$.segmentsConfig.retentionTimeUnit",
                format!(
                    "invalid retention time unit '{unit}': expected one of {}",
                    TIME_UNITS.join(", ")
                ),
            ));
        }
        let unit_ms: f64 = match upper.as_str() {
            "NANOSECONDS" => 1e-6,
            "MICROSECONDS" => 1e-3,
            "MILLISECONDS" => 1.0,
            "SECONDS" => 1e3,
            "MINUTES" => 60e3,
            "HOURS" => 3_600e3,
            _ => 86_400e3,
        };
        Ok(retention_value(value)
            .filter(|v| *v > 0.0)
            .map(|v| Retention {
                ms: ((v * unit_ms) as i64).max(1),
            }))
    }
}

/// `retentionTimeValue` as a number (Pinot writes it as a string).
pub(crate) fn retention_value(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// A Pinot table config: the document as written and its typed views, computed once.
#[derive(Clone, Debug, PartialEq)]
pub struct TableConfig {
    doc: TableDocument,
    name: TableName,
    streams: Vec<StreamConfig>,
    field_configs: Vec<FieldConfig>,
    indexes: IndexConfig,
    retention: Option<Retention>,
    replication: u32,
}

impl TableConfig {
    /// Parses table-config JSON; errors name the JSON path. Checks what Pinot checks when it
    /// reads a config (required sections, table name and type) and parses the stream maps,
    /// index settings, field configs and retention; see [`TableConfig::validate`] for the
    /// checks against the schema.
    pub fn from_json(bytes: &[u8]) -> Result<TableConfig, ConfigError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let mut doc: TableDocument = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| ConfigError::from_path_error("table config", e))?;
        de.end()
            .map_err(|e| ConfigError::new("$", format!("trailing data after table config: {e}")))?;
        let name = parse_name(&doc)?;
        if !doc.tenants.is_object() {
            return Err(ConfigError::new(
                "$.tenants",
                format!(
                    "expected an object (usually {{}}), got {}",
                    json_kind(&doc.tenants)
                ),
            ));
        }
        doc.table_name = name.to_string();
        let streams = if doc.table_type == TableType::Realtime {
            doc.stream_maps()?
                .iter()
                .map(|(p, m)| StreamConfig::parse(p, m))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        let field_configs = parse_field_configs(doc.extra.get("fieldConfigList"))?;
        let indexes = IndexConfig::parse(&doc, &field_configs)?;
        let sc = &doc.segments_config;
        let retention = Retention::parse(
            sc.retention_time_unit.as_deref(),
            sc.retention_time_value.as_ref(),
        )?;
        let replication = doc.replication();
        Ok(TableConfig {
            doc,
            name,
            streams,
            field_configs,
            indexes,
            retention,
            replication,
        })
    }

    /// Parses a config held as a JSON value.
    pub fn from_value(value: &Value) -> Result<TableConfig, ConfigError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| ConfigError::new("$", format!("cannot serialise table config: {e}")))?;
        TableConfig::from_json(&bytes)
    }

    /// The document as written (with the raw table name).
    pub fn document(&self) -> &TableDocument {
        &self.doc
    }

    /// The raw table name.
    pub fn name(&self) -> &TableName {
        &self.name
    }

    /// The raw table name as text.
    pub fn raw_name(&self) -> &str {
        self.name.as_str()
    }

    /// `OFFLINE` or `REALTIME`.
    pub fn table_type(&self) -> TableType {
        self.doc.table_type
    }

    /// `name_REALTIME` / `name_OFFLINE`.
    pub fn name_with_type(&self) -> TableNameWithType {
        self.name.with_type(self.doc.table_type)
    }

    /// `segmentsConfig.timeColumnName`, if set and not blank.
    pub fn time_column(&self) -> Option<&str> {
        self.doc
            .segments_config
            .time_column_name
            .as_deref()
            .filter(|c| !c.trim().is_empty())
    }

    /// The parsed stream configs, in order (REALTIME tables; empty for OFFLINE ones).
    pub fn streams(&self) -> &[StreamConfig] {
        &self.streams
    }

    /// `tableIndexConfig.nullHandlingEnabled`: every column records its nulls.
    pub fn null_handling_enabled(&self) -> bool {
        self.doc
            .table_index_config
            .null_handling_enabled
            .unwrap_or(false)
    }

    /// The index and storage settings of every column.
    pub fn indexes(&self) -> &IndexConfig {
        &self.indexes
    }

    /// The parsed `fieldConfigList`.
    pub fn field_configs(&self) -> &[FieldConfig] {
        &self.field_configs
    }

    /// How long segments are kept, if the table says.
    pub fn retention(&self) -> Option<Retention> {
        self.retention
    }

    /// The replication factor: `replicasPerPartition` for REALTIME tables if set, else
    /// `replication`, else 1.
    pub fn replication(&self) -> u32 {
        self.replication
    }

    /// Whether `streamIngestionConfig.pauselessConsumptionEnabled` is true.
    pub fn pauseless_enabled(&self) -> bool {
        self.doc.pauseless_enabled()
    }

    /// Whether an `upsertConfig` with a mode other than `NONE` is set.
    pub fn upsert_enabled(&self) -> bool {
        self.doc.upsert_enabled()
    }

    /// Whether a `dedupConfig` with `dedupEnabled` (default true) is set.
    pub fn dedup_enabled(&self) -> bool {
        self.doc.dedup_enabled()
    }

    /// The config as Pinot returns it (`tableName` with its type suffix).
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(&self.doc).unwrap_or(Value::Null);
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "tableName".into(),
                Value::String(self.name_with_type().to_string()),
            );
        }
        v
    }

    /// Keys Pinot would not recognise, by JSON path (Pinot's `unrecognizedProperties`).
    pub fn unrecognized(&self) -> BTreeMap<String, Value> {
        self.doc.unrecognized()
    }
}

/// The raw table name of a document, checked: Pinot's rules (not empty, no `__`, no
/// whitespace, at most one `.`, a type suffix matching the table type) with Pinot's
/// messages, then [`TableName::parse`] (a name that is one plain path component).
fn parse_name(doc: &TableDocument) -> Result<TableName, ConfigError> {
    let name = doc.table_name.as_str();
    let at_name = |m: String| ConfigError::new("$.tableName", m);
    if name.trim().is_empty() {
        return Err(at_name(
            "table name must not be empty: expected a name such as \"transcript\"".into(),
        ));
    }
    let (raw, suffix) = riffle_common::split_table_name(name);
    if let Some(t) = suffix {
        if t != doc.table_type {
            return Err(at_name(format!(
                "table name '{name}' does not match table type {}: expected the suffix _{} or no suffix",
                doc.table_type.as_str(),
                doc.table_type.as_str()
            )));
        }
    }
    if raw.is_empty() {
        return Err(at_name(format!(
            "table name '{name}' has no name before its type suffix"
        )));
    }
    TableName::parse(raw).map_err(|e| at_name(e.to_string()))
}
