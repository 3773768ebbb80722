//! Pinot table-config JSON: the parts Riffle uses are typed, everything else is kept in
//! `extra` maps so that a config round-trips; [`TableConfig::unrecognized`] lists keys Pinot
//! itself would not know (Pinot's `unrecognizedProperties`).

use std::collections::BTreeMap;

use riffle_common::TableType;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::ConfigError;
use crate::schema::{collect_unknown, DataType, FieldType, Schema};
use crate::stream::{
    json_kind, string_map, StreamConfig, StreamMap, ROWS_KEYS, SEGMENT_ROWS_KEY, SIZE_KEYS,
    TIME_KEYS, VARIANCE_KEY,
};

fn ser_table_type<S: Serializer>(t: &TableType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.as_str())
}

fn de_table_type<'de, D: Deserializer<'de>>(d: D) -> Result<TableType, D::Error> {
    let s = String::deserialize(d)?;
    TableType::parse(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "unknown table type '{s}', expected OFFLINE or REALTIME"
        ))
    })
}

/// `segmentsConfig`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SegmentsConfig {
    /// The time column; required for REALTIME tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column_name: Option<String>,
    /// Replication (string in Pinot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<Value>,
    /// Deprecated replication for REALTIME.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas_per_partition: Option<Value>,
    /// e.g. `DAYS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_time_unit: Option<String>,
    /// e.g. `"5"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_time_value: Option<Value>,
    /// Every other key.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `tableIndexConfig`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IndexingConfig {
    /// `MMAP` or `HEAP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_mode: Option<String>,
    /// Legacy single stream map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_configs: Option<Value>,
    /// Sorted column (an array with at most one meaningful entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorted_column: Option<Vec<String>>,
    /// Inverted-index columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverted_index_columns: Option<Vec<String>>,
    /// Range-index columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_index_columns: Option<Vec<String>>,
    /// Bloom-filter columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bloom_filter_columns: Option<Vec<String>>,
    /// Raw (no dictionary) columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_dictionary_columns: Option<Vec<String>>,
    /// Null handling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_handling_enabled: Option<bool>,
    /// Every other key.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `ingestionConfig.streamIngestionConfig`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StreamIngestionConfig {
    /// The stream maps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_config_maps: Option<Vec<Value>>,
    /// Every other key.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `ingestionConfig`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IngestionConfig {
    /// Stream ingestion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_ingestion_config: Option<StreamIngestionConfig>,
    /// Ingestion-time transforms (accepted; applied in a later release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform_configs: Option<Vec<Value>>,
    /// Row filter (accepted; applied in a later release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_config: Option<Value>,
    /// Skip bad rows instead of failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_on_error: Option<bool>,
    /// Every other key.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A Pinot table config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableConfig {
    /// Raw name or name with `_REALTIME` / `_OFFLINE`.
    pub table_name: String,
    /// `OFFLINE` or `REALTIME` (any case on input).
    #[serde(serialize_with = "ser_table_type", deserialize_with = "de_table_type")]
    pub table_type: TableType,
    /// Segments config (required, as in Pinot).
    pub segments_config: SegmentsConfig,
    /// Tenants (required; `{}` is usual).
    pub tenants: Value,
    /// Index config (required; holds the legacy stream map).
    pub table_index_config: IndexingConfig,
    /// Ingestion config (holds the stream maps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingestion_config: Option<IngestionConfig>,
    /// Every other key (metadata, routing, fieldConfigList, upsertConfig, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

const TABLE_KNOWN_KEYS: &[&str] = &[
    "metadata",
    "quota",
    "task",
    "routing",
    "query",
    "instanceAssignmentConfigMap",
    "instancePartitionsMap",
    "segmentAssignmentConfigMap",
    "fieldConfigList",
    "upsertConfig",
    "dedupConfig",
    "dimensionTableConfig",
    "tierConfigs",
    "tunerConfigs",
    "tierOverwrites",
    "tableSamplers",
    "isDimTable",
    "isMaterializedView",
    "description",
    "tags",
    "id",
    "tableSamplerConfigs",
    "mvConfig",
];
const TENANTS_KNOWN_KEYS: &[&str] = &["broker", "server", "tagOverrideConfig"];
const METADATA_KNOWN_KEYS: &[&str] = &["customConfigs"];
const FIELD_CONFIG_KNOWN_KEYS: &[&str] = &[
    "name",
    "encodingType",
    "indexType",
    "indexTypes",
    "compressionCodec",
    "timestampConfig",
    "properties",
    "indexes",
    "tierOverwrites",
];
const SEGMENTS_KNOWN_KEYS: &[&str] = &[
    "deletedSegmentsRetentionPeriod",
    "replacedSegmentsRetentionPeriod",
    "lineageEntryCleanupRetentionPeriod",
    "segmentPushType",
    "segmentPushFrequency",
    "timeType",
    "schemaName",
    "completionConfig",
    "peerSegmentDownloadScheme",
    "crypterClassName",
    "minimizeDataMovement",
    "replicaGroupStrategyConfig",
    "segmentAssignmentStrategy",
    "untrackedSegmentsDeletionBatchSize",
    "untrackedSegmentsRetentionTimeUnit",
    "untrackedSegmentsRetentionTimeValue",
    "timeColumnName",
    "replication",
    "replicasPerPartition",
    "retentionTimeUnit",
    "retentionTimeValue",
];
const INDEXING_KNOWN_KEYS: &[&str] = &[
    "rangeIndexVersion",
    "jsonIndexColumns",
    "jsonIndexConfigs",
    "bloomFilterConfigs",
    "segmentFormatVersion",
    "columnMinMaxValueGeneratorMode",
    "noDictionaryConfig",
    "onHeapDictionaryColumns",
    "varLengthDictionaryColumns",
    "enableDefaultStarTree",
    "starTreeIndexConfigs",
    "enableDynamicStarTreeCreation",
    "segmentPartitionConfig",
    "aggregateMetrics",
    "columnMajorSegmentBuilderEnabled",
    "createInvertedIndexDuringSegmentGeneration",
    "autoGeneratedInvertedIndex",
    "optimizeDictionary",
    "optimizeDictionaryForMetrics",
    "optimizeDictionaryType",
    "noDictionarySizeRatioThreshold",
    "noDictionaryCardinalityRatioThreshold",
    "segmentNameGeneratorType",
    "skipSegmentPreprocess",
    "multiColumnTextIndexConfig",
    "tierOverwrites",
    "compressionStatsEnabled",
    "fstindexType",
    "fstIndexType",
];
const INGESTION_KNOWN_KEYS: &[&str] = &[
    "batchIngestionConfig",
    "complexTypeConfig",
    "sourceFieldConfigs",
    "enrichmentConfigs",
    "schemaConformingTransformerConfig",
    "aggregationConfigs",
    "maxConsecutiveRecordFetchFailuresAllowed",
    "retryOnSegmentBuildPrecheckFailure",
    "rowTimeValueCheck",
    "segmentTimeValueCheck",
    "ingestionExceptionLogRateLimitPerMin",
    "segmentTimeValueCheckType",
];
const STREAM_INGESTION_KNOWN_KEYS: &[&str] = &[
    "columnMajorSegmentBuilderEnabled",
    "trackFilteredMessageOffsets",
    "pauselessConsumptionEnabled",
    "enforceConsumptionInOrder",
    "useIdealStateToCalculatePreviousSegment",
    "parallelSegmentConsumptionPolicy",
    "disasterRecoveryMode",
    "realtimeOffsetAutoResetHandlerClass",
    "dropRecordOnPartitionMismatch",
    "oomProtection",
];

/// The JSON path of the new stream-map location.
const STREAM_MAPS_PATH: &str = "$.ingestionConfig.streamIngestionConfig.streamConfigMaps";
/// The JSON path of the legacy stream map.
const LEGACY_STREAM_PATH: &str = "$.tableIndexConfig.streamConfigs";

/// Java `TimeUnit` names, accepted for `retentionTimeUnit` in any case.
const TIME_UNITS: &[&str] = &[
    "NANOSECONDS",
    "MICROSECONDS",
    "MILLISECONDS",
    "SECONDS",
    "MINUTES",
    "HOURS",
    "DAYS",
];

/// Reads a replication count written as a string (`"1"`) or a number.
fn value_as_int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Column-like identifiers an ingestion expression reads: identifiers that are not function
/// names, outside quoted literals and Groovy script blocks (double-quoted and back-quoted
/// names are identifiers). An approximation of Pinot's function-evaluator arguments.
pub(crate) fn expression_arguments(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut braces = 0usize;
    while let Some(&c) = chars.get(i) {
        match c {
            '\'' | '"' | '`' => {
                let start = i + 1;
                let mut j = start;
                while chars.get(j).is_some_and(|x| *x != c) {
                    j += 1;
                }
                if c != '\'' && braces == 0 {
                    out.push(chars[start..j.min(chars.len())].iter().collect());
                }
                i = j + 1;
            }
            '{' => {
                braces += 1;
                i += 1;
            }
            '}' => {
                braces = braces.saturating_sub(1);
                i += 1;
            }
            c if c.is_ascii_digit() => {
                while chars
                    .get(i)
                    .is_some_and(|x| x.is_alphanumeric() || *x == '.')
                {
                    i += 1;
                }
            }
            c if braces == 0 && (c.is_alphabetic() || c == '_' || c == '$') => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|x| x.is_alphanumeric() || matches!(x, '_' | '$' | '.'))
                {
                    i += 1;
                }
                let mut j = i;
                while chars.get(j).is_some_and(|x| x.is_whitespace()) {
                    j += 1;
                }
                if chars.get(j) != Some(&'(') {
                    out.push(chars[start..i].iter().collect());
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// A string array held in an untyped part of the config, or an error naming the path.
fn string_list<'a>(path: &str, v: &'a Value) -> Result<Vec<&'a str>, ConfigError> {
    let arr = v.as_array().ok_or_else(|| {
        ConfigError::new(
            path,
            format!("expected an array of column names, got {}", json_kind(v)),
        )
    })?;
    arr.iter()
        .enumerate()
        .map(|(i, c)| {
            c.as_str().ok_or_else(|| {
                ConfigError::new(
                    format!("{path}[{i}]"),
                    format!("expected a column name (string), got {}", json_kind(c)),
                )
            })
        })
        .collect()
}

/// The keys of an object held in an untyped part of the config.
fn object_keys<'a>(path: &str, v: &'a Value) -> Result<Vec<&'a str>, ConfigError> {
    let obj = v.as_object().ok_or_else(|| {
        ConfigError::new(
            path,
            format!(
                "expected an object keyed by column name, got {}",
                json_kind(v)
            ),
        )
    })?;
    Ok(obj.keys().map(|k| k.as_str()).collect())
}

fn not_in_schema(path: String, what: &str, column: &str, schema: &Schema) -> ConfigError {
    ConfigError::new(
        path,
        format!(
            "{what} '{column}' is not a column of schema '{}': expected one of the schema's columns",
            schema.schema_name
        ),
    )
}

impl TableConfig {
    /// Parses table-config JSON; errors name the JSON path. Checks what Pinot checks when it
    /// reads a config (required sections, table name and type); see [`TableConfig::validate`]
    /// for the checks against the schema.
    pub fn from_json(bytes: &[u8]) -> Result<TableConfig, ConfigError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let mut cfg: TableConfig = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| ConfigError::from_path_error("table config", e))?;
        de.end()
            .map_err(|e| ConfigError::new("$", format!("trailing data after table config: {e}")))?;
        let name = cfg.table_name.clone();
        if name.trim().is_empty() {
            return Err(ConfigError::new(
                "$.tableName",
                "table name must not be empty: expected a name such as \"transcript\"",
            ));
        }
        if name.contains("__") {
            return Err(ConfigError::new(
                "$.tableName",
                format!("table name '{name}' must not contain double underscore ('__')"),
            ));
        }
        if name.chars().any(char::is_whitespace) {
            return Err(ConfigError::new(
                "$.tableName",
                format!("table name '{name}' must not contain whitespace"),
            ));
        }
        if name.matches('.').count() > 1 {
            return Err(ConfigError::new(
                "$.tableName",
                format!("table name '{name}' must contain at most one '.' (database.table)"),
            ));
        }
        let (raw, suffix) = riffle_common::split_table_name(&name);
        if let Some(t) = suffix {
            if t != cfg.table_type {
                return Err(ConfigError::new(
                    "$.tableName",
                    format!(
                        "table name '{name}' does not match table type {}: expected the suffix _{} or no suffix",
                        cfg.table_type.as_str(),
                        cfg.table_type.as_str()
                    ),
                ));
            }
        }
        if raw.is_empty() {
            return Err(ConfigError::new(
                "$.tableName",
                format!("table name '{name}' has no name before its type suffix"),
            ));
        }
        if !cfg.tenants.is_object() {
            return Err(ConfigError::new(
                "$.tenants",
                format!(
                    "expected an object (usually {{}}), got {}",
                    json_kind(&cfg.tenants)
                ),
            ));
        }
        cfg.table_name = raw.to_string();
        Ok(cfg)
    }

    /// Parses a config held as a JSON value.
    pub fn from_value(value: &Value) -> Result<TableConfig, ConfigError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| ConfigError::new("$", format!("cannot serialise table config: {e}")))?;
        TableConfig::from_json(&bytes)
    }

    /// The raw table name (no type suffix).
    pub fn raw_name(&self) -> &str {
        &self.table_name
    }

    /// `name_REALTIME` / `name_OFFLINE`.
    pub fn name_with_type(&self) -> String {
        riffle_common::table_name_with_type(&self.table_name, self.table_type)
    }

    /// The config as Pinot returns it (`tableName` with its type suffix).
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(obj) = v.as_object_mut() {
            obj.insert("tableName".into(), Value::String(self.name_with_type()));
        }
        v
    }

    /// The replication factor: `replicasPerPartition` for REALTIME tables if set, else
    /// `replication`, else 1.
    pub fn replication(&self) -> u32 {
        let sc = &self.segments_config;
        let per_partition = if self.table_type == TableType::Realtime {
            value_as_int(sc.replicas_per_partition.as_ref()).filter(|n| *n > 0)
        } else {
            None
        };
        per_partition
            .or_else(|| value_as_int(sc.replication.as_ref()).filter(|n| *n > 0))
            .map(|n| n.min(u32::MAX as i64) as u32)
            .unwrap_or(1)
    }

    fn stream_ingestion(&self) -> Option<&StreamIngestionConfig> {
        self.ingestion_config
            .as_ref()
            .and_then(|i| i.stream_ingestion_config.as_ref())
    }

    /// Whether `streamIngestionConfig.pauselessConsumptionEnabled` is true.
    pub fn pauseless_enabled(&self) -> bool {
        self.stream_ingestion()
            .and_then(|s| s.extra.get("pauselessConsumptionEnabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Whether an `upsertConfig` with a mode other than `NONE` is set.
    pub fn upsert_enabled(&self) -> bool {
        self.extra
            .get("upsertConfig")
            .and_then(Value::as_object)
            .is_some_and(|u| {
                !u.get("mode")
                    .and_then(Value::as_str)
                    .is_some_and(|m| m.eq_ignore_ascii_case("NONE"))
            })
    }

    /// Whether a `dedupConfig` with `dedupEnabled` (default true) is set.
    pub fn dedup_enabled(&self) -> bool {
        self.extra
            .get("dedupConfig")
            .and_then(Value::as_object)
            .is_some_and(|d| d.get("dedupEnabled").and_then(Value::as_bool) != Some(false))
    }

    /// The stream maps with their JSON paths, from `streamConfigMaps` or the legacy
    /// `streamConfigs` (PINOT-SPEC §1.13). Errors: both places set, an empty
    /// `streamConfigMaps`, a map that is not an object or holds nested values.
    pub fn stream_maps(&self) -> Result<Vec<(String, StreamMap)>, ConfigError> {
        let legacy = self
            .table_index_config
            .stream_configs
            .as_ref()
            .filter(|v| !v.is_null() && !v.as_object().is_some_and(|o| o.is_empty()));
        if let Some(sic) = self.stream_ingestion() {
            if legacy.is_some() {
                return Err(ConfigError::new(
                    LEGACY_STREAM_PATH,
                    "stream configs must be set in only one place: expected either \
                     ingestionConfig.streamIngestionConfig.streamConfigMaps or the legacy \
                     tableIndexConfig.streamConfigs, not both",
                ));
            }
            let maps = sic.stream_config_maps.as_deref().unwrap_or_default();
            if maps.is_empty() {
                return Err(ConfigError::new(
                    STREAM_MAPS_PATH,
                    "must have at least 1 stream: expected a list with one stream config map",
                ));
            }
            return maps
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let p = format!("{STREAM_MAPS_PATH}[{i}]");
                    string_map(&p, m).map(|m| (p, m))
                })
                .collect();
        }
        match legacy {
            Some(m) => Ok(vec![(
                LEGACY_STREAM_PATH.to_string(),
                string_map(LEGACY_STREAM_PATH, m)?,
            )]),
            None => Ok(Vec::new()),
        }
    }

    /// The parsed stream configs (REALTIME tables).
    pub fn stream_configs(&self) -> Result<Vec<StreamConfig>, ConfigError> {
        self.stream_maps()?
            .iter()
            .map(|(p, m)| StreamConfig::parse(p, m))
            .collect()
    }

    /// Validates the config against its schema the way Pinot's controller does on create and
    /// update (PINOT-SPEC §1.12, `TableConfigUtils.validate`) and returns the parsed stream
    /// configs (empty for OFFLINE tables). The decoder class is not checked against what
    /// Riffle can decode: see [`crate::stream::decoder_supported`].
    pub fn validate(&self, schema: &Schema) -> Result<Vec<StreamConfig>, ConfigError> {
        if schema.schema_name != self.table_name {
            return Err(ConfigError::new(
                "$.tableName",
                format!(
                    "table '{}' does not match schema '{}': expected the schema name to equal the raw table name",
                    self.table_name, schema.schema_name
                ),
            ));
        }
        self.validate_segments_config(schema)?;
        self.validate_ingestion(schema)?;
        let maps = self.stream_maps()?;
        let mut streams = Vec::new();
        if self.table_type == TableType::Realtime {
            if maps.is_empty() {
                return Err(ConfigError::new(
                    STREAM_MAPS_PATH,
                    "a REALTIME table needs a stream config: expected \
                     ingestionConfig.streamIngestionConfig.streamConfigMaps (or the legacy \
                     tableIndexConfig.streamConfigs)",
                ));
            }
            for (p, m) in &maps {
                streams.push(StreamConfig::parse(p, m)?);
            }
            self.validate_multi_stream(&maps, &streams)?;
        }
        self.validate_indexing(schema)?;
        self.validate_field_configs(schema)?;
        self.validate_upsert_dedup(schema)?;
        Ok(streams)
    }

    fn validate_segments_config(&self, schema: &Schema) -> Result<(), ConfigError> {
        let sc = &self.segments_config;
        let time_col = sc
            .time_column_name
            .as_deref()
            .filter(|s| !s.trim().is_empty());
        if self.table_type == TableType::Realtime && time_col.is_none() {
            return Err(ConfigError::new(
                "$.segmentsConfig.timeColumnName",
                "timeColumnName is required for a REALTIME table: expected the name of a dateTime column of the schema",
            ));
        }
        if let Some(tc) = time_col {
            if !schema.has_column(tc) {
                return Err(ConfigError::new(
                    "$.segmentsConfig.timeColumnName",
                    format!(
                        "time column '{tc}' is not a column of schema '{}': expected one of its dateTimeFieldSpecs",
                        schema.schema_name
                    ),
                ));
            }
            if !schema.is_time_column(tc) {
                return Err(ConfigError::new(
                    "$.segmentsConfig.timeColumnName",
                    format!("time column '{tc}' is not a dateTime column: expected a column declared in dateTimeFieldSpecs"),
                ));
            }
        }
        if self.extra.get("isDimTable").and_then(Value::as_bool) == Some(true) {
            if self.table_type != TableType::Offline {
                return Err(ConfigError::new(
                    "$.isDimTable",
                    "a dimension table must be an OFFLINE table",
                ));
            }
            if schema.primary_key_columns.is_empty() {
                return Err(ConfigError::new(
                    "$.isDimTable",
                    "a dimension table must have primaryKeyColumns in its schema",
                ));
            }
        }
        if let Some(scheme) = sc.extra.get("peerSegmentDownloadScheme") {
            let p = "$.segmentsConfig.peerSegmentDownloadScheme";
            let s = scheme.as_str().unwrap_or_default();
            if !s.eq_ignore_ascii_case("http") && !s.eq_ignore_ascii_case("https") {
                return Err(ConfigError::new(
                    p,
                    format!("invalid peerSegmentDownloadScheme {scheme}: expected http or https"),
                ));
            }
            if self.replication() < 2 {
                return Err(ConfigError::new(
                    p,
                    "peerSegmentDownloadScheme can't be used when replication is < 2: expected replication of at least 2, or no peerSegmentDownloadScheme",
                ));
            }
        }
        if let Some(unit) = sc.retention_time_unit.as_deref().filter(|u| !u.is_empty()) {
            if !TIME_UNITS.contains(&unit.trim().to_ascii_uppercase().as_str()) {
                return Err(ConfigError::new(
                    "$.segmentsConfig.retentionTimeUnit",
                    format!(
                        "invalid retention time unit '{unit}': expected one of {}",
                        TIME_UNITS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_ingestion(&self, schema: &Schema) -> Result<(), ConfigError> {
        let aggregate_metrics = self
            .table_index_config
            .extra
            .get("aggregateMetrics")
            .and_then(Value::as_bool)
            == Some(true);
        let Some(ic) = &self.ingestion_config else {
            return Ok(());
        };
        let mut aggregation_sources: Vec<String> = Vec::new();
        if let Some(aggs) = ic.extra.get("aggregationConfigs") {
            let base = "$.ingestionConfig.aggregationConfigs";
            let arr = aggs.as_array().ok_or_else(|| {
                ConfigError::new(base, format!("expected an array, got {}", json_kind(aggs)))
            })?;
            if aggregate_metrics && !arr.is_empty() {
                return Err(ConfigError::new(
                    base,
                    "metrics aggregation cannot be enabled in tableIndexConfig.aggregateMetrics and ingestionConfig.aggregationConfigs at the same time",
                ));
            }
            let mut seen: Vec<&str> = Vec::new();
            for (i, a) in arr.iter().enumerate() {
                let p = format!("{base}[{i}]");
                let col = a.get("columnName").and_then(Value::as_str).ok_or_else(|| {
                    ConfigError::new(
                        format!("{p}.columnName"),
                        "columnName is required: expected a metric column",
                    )
                })?;
                let func = a
                    .get("aggregationFunction")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ConfigError::new(
                            format!("{p}.aggregationFunction"),
                            "aggregationFunction is required: expected e.g. SUM(x)",
                        )
                    })?;
                match schema.field_spec(col) {
                    Some((FieldType::Metric, _)) => {}
                    Some(_) => {
                        return Err(ConfigError::new(
                            format!("{p}.columnName"),
                            format!("the destination column '{col}' of the aggregation function must be a metric column"),
                        ))
                    }
                    None => {
                        return Err(not_in_schema(
                            format!("{p}.columnName"),
                            "aggregation destination column",
                            col,
                            schema,
                        ))
                    }
                }
                if seen.contains(&col) {
                    return Err(ConfigError::new(
                        format!("{p}.columnName"),
                        format!("duplicate aggregation config for column '{col}'"),
                    ));
                }
                seen.push(col);
                aggregation_sources.extend(expression_arguments(func).into_iter().take(1));
            }
        }
        if self.pauseless_enabled() && self.replication() > 1 {
            let ok = self
                .segments_config
                .extra
                .get("peerSegmentDownloadScheme")
                .and_then(Value::as_str)
                .is_some_and(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"));
            if !ok {
                return Err(ConfigError::new(
                    "$.segmentsConfig.peerSegmentDownloadScheme",
                    "pauseless consumption with replication > 1 requires peerSegmentDownloadScheme: expected http or https",
                ));
            }
        }
        if let Some(transforms) = &ic.transform_configs {
            let base = "$.ingestionConfig.transformConfigs";
            let mut parsed: Vec<(&str, &str)> = Vec::new();
            for (i, t) in transforms.iter().enumerate() {
                let p = format!("{base}[{i}]");
                let col = t.get("columnName").and_then(Value::as_str).ok_or_else(|| {
                    ConfigError::new(
                        format!("{p}.columnName"),
                        "columnName is required: expected the destination column of the transform",
                    )
                })?;
                let func = t
                    .get("transformFunction")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ConfigError::new(
                            format!("{p}.transformFunction"),
                            "transformFunction is required: expected e.g. fromEpochDays(DaysSinceEpoch)",
                        )
                    })?;
                if parsed.iter().any(|(c, _)| *c == col) {
                    return Err(ConfigError::new(
                        format!("{p}.columnName"),
                        format!("duplicate transform config for column '{col}'"),
                    ));
                }
                parsed.push((col, func));
            }
            let inputs: Vec<String> = parsed
                .iter()
                .flat_map(|(_, f)| expression_arguments(f))
                .collect();
            for (i, (col, func)) in parsed.iter().enumerate() {
                let p = format!("{base}[{i}]");
                if !schema.has_column(col)
                    && !aggregation_sources.iter().any(|a| a == col)
                    && !inputs.iter().any(|a| a == col)
                {
                    return Err(ConfigError::new(
                        format!("{p}.columnName"),
                        format!(
                            "the destination column '{col}' of the transform function must be present in schema '{}', be the input of another transform function, or be a source column for aggregations",
                            schema.schema_name
                        ),
                    ));
                }
                if expression_arguments(func).iter().any(|a| a == col) {
                    return Err(ConfigError::new(
                        format!("{p}.transformFunction"),
                        format!("the arguments of transform function '{func}' must not contain its destination column '{col}'"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_multi_stream(
        &self,
        maps: &[(String, StreamMap)],
        streams: &[StreamConfig],
    ) -> Result<(), ConfigError> {
        if streams.len() < 2 {
            return Ok(());
        }
        if self.pauseless_enabled() {
            return Err(ConfigError::new(
                "$.ingestionConfig.streamIngestionConfig.pauselessConsumptionEnabled",
                "multiple stream configs are not supported with pauseless consumption enabled",
            ));
        }
        if self.upsert_enabled() {
            return Err(ConfigError::new(
                "$.upsertConfig",
                "multiple stream configs are not supported for an upsert table",
            ));
        }
        let first = &streams[0];
        for (i, s) in streams.iter().enumerate().skip(1) {
            let p = maps
                .get(i)
                .map(|(p, _)| p.as_str())
                .unwrap_or(STREAM_MAPS_PATH);
            if s.stream_type != first.stream_type {
                return Err(ConfigError::new(
                    format!("{p}.streamType"),
                    format!(
                        "all streams of a table must have the same streamType: expected '{}', got '{}'",
                        first.stream_type, s.stream_type
                    ),
                ));
            }
            if !s.flush.same_thresholds(&first.flush) {
                let (a, b) = (&first.flush, &s.flush);
                let key = if a.rows != b.rows {
                    ROWS_KEYS[0]
                } else if a.segment_rows != b.segment_rows {
                    SEGMENT_ROWS_KEY
                } else if a.time_ms != b.time_ms {
                    TIME_KEYS[0]
                } else if a.segment_size_bytes != b.segment_size_bytes {
                    SIZE_KEYS[0]
                } else {
                    VARIANCE_KEY
                };
                return Err(ConfigError::new(
                    format!("{p}.{key}"),
                    "segment flush parameters must be consistent across all streams: expected the same rows, segment rows, time, segment size and variance as the first stream",
                ));
            }
            if streams[..i].iter().any(|o| o.topic == s.topic) {
                let key = maps
                    .get(i)
                    .and_then(|(_, m)| {
                        m.keys()
                            .find(|k| k.starts_with("stream.") && k.ends_with(".topic.name"))
                    })
                    .cloned()
                    .unwrap_or_else(|| format!("stream.{}.topic.name", s.stream_type));
                return Err(ConfigError::new(
                    format!("{p}.{key}"),
                    format!(
                        "duplicate topic name '{}' in stream configs: expected each stream to consume a different topic",
                        s.topic
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_indexing(&self, schema: &Schema) -> Result<(), ConfigError> {
        let ic = &self.table_index_config;
        if let Some(load_mode) = &ic.load_mode {
            if !load_mode.eq_ignore_ascii_case("MMAP") && !load_mode.eq_ignore_ascii_case("HEAP") {
                return Err(ConfigError::new(
                    "$.tableIndexConfig.loadMode",
                    format!("unknown load mode '{load_mode}': expected MMAP or HEAP"),
                ));
            }
        }
        for (key, cols) in [
            ("sortedColumn", &ic.sorted_column),
            ("invertedIndexColumns", &ic.inverted_index_columns),
            ("rangeIndexColumns", &ic.range_index_columns),
            ("bloomFilterColumns", &ic.bloom_filter_columns),
            ("noDictionaryColumns", &ic.no_dictionary_columns),
        ] {
            for (i, c) in cols.iter().flatten().enumerate() {
                let p = format!("$.tableIndexConfig.{key}[{i}]");
                if !schema.has_column(c) {
                    return Err(not_in_schema(p, &format!("{key} column"), c, schema));
                }
                if key == "sortedColumn" && !schema.is_single_value(c) {
                    return Err(ConfigError::new(
                        p,
                        format!("cannot sort on multi-value column '{c}': expected a single-value column"),
                    ));
                }
            }
        }
        for key in [
            "jsonIndexColumns",
            "onHeapDictionaryColumns",
            "varLengthDictionaryColumns",
        ] {
            if let Some(v) = ic.extra.get(key).filter(|v| !v.is_null()) {
                let base = format!("$.tableIndexConfig.{key}");
                for (i, c) in string_list(&base, v)?.into_iter().enumerate() {
                    if !schema.has_column(c) {
                        return Err(not_in_schema(
                            format!("{base}[{i}]"),
                            &format!("{key} column"),
                            c,
                            schema,
                        ));
                    }
                }
            }
        }
        for key in [
            "noDictionaryConfig",
            "bloomFilterConfigs",
            "jsonIndexConfigs",
        ] {
            if let Some(v) = ic.extra.get(key).filter(|v| !v.is_null()) {
                let base = format!("$.tableIndexConfig.{key}");
                for c in object_keys(&base, v)? {
                    if !schema.has_column(c) {
                        return Err(not_in_schema(
                            format!("{base}.{c}"),
                            &format!("{key} column"),
                            c,
                            schema,
                        ));
                    }
                }
            }
        }
        if let Some(map) = ic
            .extra
            .get("segmentPartitionConfig")
            .and_then(|s| s.get("columnPartitionMap"))
            .filter(|v| !v.is_null())
        {
            let base = "$.tableIndexConfig.segmentPartitionConfig.columnPartitionMap";
            for c in object_keys(base, map)? {
                let p = format!("{base}.{c}");
                if !schema.has_column(c) {
                    return Err(not_in_schema(p, "partition column", c, schema));
                }
                if !schema.is_single_value(c) {
                    return Err(ConfigError::new(
                        p,
                        format!("cannot partition on multi-value column '{c}': expected a single-value column"),
                    ));
                }
            }
        }
        if let Some(trees) = ic
            .extra
            .get("starTreeIndexConfigs")
            .filter(|v| !v.is_null())
        {
            let base = "$.tableIndexConfig.starTreeIndexConfigs";
            let arr = trees.as_array().ok_or_else(|| {
                ConfigError::new(base, format!("expected an array, got {}", json_kind(trees)))
            })?;
            for (i, t) in arr.iter().enumerate() {
                let p = format!("{base}[{i}].dimensionsSplitOrder");
                let dims = t.get("dimensionsSplitOrder").ok_or_else(|| {
                    ConfigError::new(
                        p.clone(),
                        "dimensionsSplitOrder is required: expected the dimension columns of the star-tree",
                    )
                })?;
                for (j, c) in string_list(&p, dims)?.into_iter().enumerate() {
                    if !schema.has_column(c) {
                        return Err(not_in_schema(
                            format!("{p}[{j}]"),
                            "star-tree dimension",
                            c,
                            schema,
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn validate_field_configs(&self, schema: &Schema) -> Result<(), ConfigError> {
        let Some(list) = self.extra.get("fieldConfigList").filter(|v| !v.is_null()) else {
            return Ok(());
        };
        let arr = list.as_array().ok_or_else(|| {
            ConfigError::new(
                "$.fieldConfigList",
                format!(
                    "expected an array of field configs, got {}",
                    json_kind(list)
                ),
            )
        })?;
        let ic = &self.table_index_config;
        let mut no_dict: Vec<&str> = ic
            .no_dictionary_columns
            .iter()
            .flatten()
            .map(|s| s.as_str())
            .collect();
        if let Some(m) = ic
            .extra
            .get("noDictionaryConfig")
            .and_then(Value::as_object)
        {
            no_dict.extend(m.keys().map(|k| k.as_str()));
        }
        let mut seen: Vec<&str> = Vec::new();
        for (i, fc) in arr.iter().enumerate() {
            let p = format!("$.fieldConfigList[{i}]");
            if !fc.is_object() {
                return Err(ConfigError::new(
                    p,
                    format!("expected a field config object, got {}", json_kind(fc)),
                ));
            }
            let name = fc.get("name").and_then(Value::as_str).ok_or_else(|| {
                ConfigError::new(
                    format!("{p}.name"),
                    "name is required: expected a column of the schema",
                )
            })?;
            if seen.contains(&name) {
                return Err(ConfigError::new(
                    format!("{p}.name"),
                    format!("duplicate field config for column '{name}'"),
                ));
            }
            seen.push(name);
            if !schema.has_column(name) {
                return Err(not_in_schema(
                    format!("{p}.name"),
                    "field config column",
                    name,
                    schema,
                ));
            }
            let encoding = match fc.get("encodingType").filter(|v| !v.is_null()) {
                None => "DICTIONARY",
                Some(Value::String(e)) if e == "DICTIONARY" || e == "RAW" => e.as_str(),
                Some(other) => {
                    return Err(ConfigError::new(
                        format!("{p}.encodingType"),
                        format!("unknown encoding type {other}: expected DICTIONARY or RAW"),
                    ))
                }
            };
            if encoding == "DICTIONARY" && no_dict.contains(&name) {
                return Err(ConfigError::new(
                    format!("{p}.encodingType"),
                    format!(
                        "field config encoding type DICTIONARY differs from tableIndexConfig for no-dictionary column '{name}': expected encodingType RAW"
                    ),
                ));
            }
            if fc.get("timestampConfig").is_some_and(|t| !t.is_null()) {
                let ok_type = matches!(
                    schema.data_type_of(name),
                    Some(DataType::Timestamp) | Some(DataType::Long)
                );
                if !ok_type || !schema.is_single_value(name) {
                    return Err(ConfigError::new(
                        format!("{p}.timestampConfig"),
                        format!("cannot create a TIMESTAMP index on column '{name}': expected a single-value TIMESTAMP or LONG column"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_upsert_dedup(&self, schema: &Schema) -> Result<(), ConfigError> {
        let upsert = self.upsert_enabled();
        let dedup = self.dedup_enabled();
        if !upsert && !dedup {
            return Ok(());
        }
        let (key, what) = if upsert {
            ("$.upsertConfig", "upsert")
        } else {
            ("$.dedupConfig", "dedup")
        };
        if upsert && dedup {
            return Err(ConfigError::new(
                "$.dedupConfig",
                "a table can have either upsert or dedup enabled, not both",
            ));
        }
        if dedup && self.table_type == TableType::Offline {
            return Err(ConfigError::new(
                "$.dedupConfig",
                "dedup is not supported for an OFFLINE table: expected a REALTIME table",
            ));
        }
        let aggregation = self
            .table_index_config
            .extra
            .get("aggregateMetrics")
            .and_then(Value::as_bool)
            == Some(true)
            || self
                .ingestion_config
                .as_ref()
                .and_then(|i| i.extra.get("aggregationConfigs"))
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
        if aggregation {
            return Err(ConfigError::new(
                key,
                format!("metrics aggregation and {what} cannot be enabled together"),
            ));
        }
        if schema.primary_key_columns.is_empty() {
            return Err(ConfigError::new(
                key,
                format!("an {what} table must have primaryKeyColumns in its schema"),
            ));
        }
        for (i, pk) in schema.primary_key_columns.iter().enumerate() {
            if !schema.is_single_value(pk) {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "{what} primary key column '{pk}' (primaryKeyColumns[{i}]) cannot be multi-value"
                    ),
                ));
            }
        }
        let selector = self
            .extra
            .get("routing")
            .and_then(|r| r.get("instanceSelectorType"))
            .and_then(Value::as_str);
        if !matches!(
            selector,
            Some("strictReplicaGroup") | Some("multiStageReplicaGroup")
        ) {
            return Err(ConfigError::new(
                "$.routing.instanceSelectorType",
                format!("an {what} table must use strict replica-group routing: expected \"strictReplicaGroup\""),
            ));
        }
        if upsert {
            let u = self.extra.get("upsertConfig");
            if let Some(cols) = u
                .and_then(|u| u.get("comparisonColumns"))
                .filter(|v| !v.is_null())
            {
                let base = "$.upsertConfig.comparisonColumns";
                for (i, c) in string_list(base, cols)?.into_iter().enumerate() {
                    if !schema.has_column(c) {
                        return Err(not_in_schema(
                            format!("{base}[{i}]"),
                            "comparison column",
                            c,
                            schema,
                        ));
                    }
                }
            }
            if let Some(c) = u
                .and_then(|u| u.get("comparisonColumn"))
                .and_then(Value::as_str)
            {
                if !schema.has_column(c) {
                    return Err(not_in_schema(
                        "$.upsertConfig.comparisonColumn".into(),
                        "comparison column",
                        c,
                        schema,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Keys Pinot would not recognise, by JSON path (Pinot's `unrecognizedProperties`).
    /// Legacy keys Pinot ignores (`segmentsConfig.schemaName`, `segmentsConfig.timeType`) are
    /// not reported; stream maps are free-form and never reported.
    pub fn unrecognized(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        collect_unknown("$", &self.extra, TABLE_KNOWN_KEYS, &mut out);
        collect_unknown(
            "$.segmentsConfig",
            &self.segments_config.extra,
            SEGMENTS_KNOWN_KEYS,
            &mut out,
        );
        if let Some(t) = self.tenants.as_object() {
            collect_unknown("$.tenants", t, TENANTS_KNOWN_KEYS, &mut out);
        }
        collect_unknown(
            "$.tableIndexConfig",
            &self.table_index_config.extra,
            INDEXING_KNOWN_KEYS,
            &mut out,
        );
        if let Some(m) = self.extra.get("metadata").and_then(Value::as_object) {
            collect_unknown("$.metadata", m, METADATA_KNOWN_KEYS, &mut out);
        }
        if let Some(list) = self.extra.get("fieldConfigList").and_then(Value::as_array) {
            for (i, fc) in list.iter().enumerate() {
                if let Some(obj) = fc.as_object() {
                    collect_unknown(
                        &format!("$.fieldConfigList[{i}]"),
                        obj,
                        FIELD_CONFIG_KNOWN_KEYS,
                        &mut out,
                    );
                }
            }
        }
        if let Some(ic) = &self.ingestion_config {
            collect_unknown(
                "$.ingestionConfig",
                &ic.extra,
                INGESTION_KNOWN_KEYS,
                &mut out,
            );
            if let Some(sic) = &ic.stream_ingestion_config {
                collect_unknown(
                    "$.ingestionConfig.streamIngestionConfig",
                    &sic.extra,
                    STREAM_INGESTION_KNOWN_KEYS,
                    &mut out,
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_expression_arguments() {
        assert_eq!(
            expression_arguments("fromEpochDays(DaysSinceEpoch)"),
            vec!["DaysSinceEpoch"]
        );
        assert_eq!(
            expression_arguments("Groovy({a + b}, a, b)"),
            vec!["a".to_string(), "b".to_string()]
        );
        assert_eq!(
            expression_arguments("jsonPathString(payload, '$.x.y')"),
            vec!["payload"]
        );
        assert_eq!(
            expression_arguments("fromDateTime(\"created at\", 'yyyy-MM-dd')"),
            vec!["created at"]
        );
        assert!(expression_arguments("now()").is_empty());
        // Unbalanced input never panics.
        let _ = expression_arguments("f(')");
        let _ = expression_arguments("}}{{\"");
    }
}
