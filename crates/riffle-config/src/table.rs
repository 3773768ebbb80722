//! Pinot table-config JSON: the parts Riffle uses are typed, everything else is kept in
//! `extra` maps so that a config round-trips; [`TableConfig::unrecognized`] lists keys Pinot
//! itself would not know (Pinot's `unrecognizedProperties`).

use std::collections::BTreeMap;

use riffle_common::TableType;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::ConfigError;
use crate::schema::{collect_unknown, Schema};
use crate::stream::{string_map, StreamConfig};

fn ser_table_type<S: Serializer>(t: &TableType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.as_str())
}

fn de_table_type<'de, D: Deserializer<'de>>(d: D) -> Result<TableType, D::Error> {
    let s = String::deserialize(d)?;
    TableType::parse(&s).ok_or_else(|| {
        serde::de::Error::custom(format!("unknown table type '{s}', expected OFFLINE or REALTIME"))
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
    /// Segments config.
    #[serde(default)]
    pub segments_config: SegmentsConfig,
    /// Tenants (`{}` is usual).
    #[serde(default = "empty_object")]
    pub tenants: Value,
    /// Index config (holds the legacy stream map).
    #[serde(default)]
    pub table_index_config: IndexingConfig,
    /// Ingestion config (holds the stream maps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingestion_config: Option<IngestionConfig>,
    /// Every other key (metadata, routing, fieldConfigList, upsertConfig, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
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

impl TableConfig {
    /// Parses table-config JSON; errors name the JSON path. Does not check the schema: see
    /// [`TableConfig::validate`].
    pub fn from_json(bytes: &[u8]) -> Result<TableConfig, ConfigError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let mut cfg: TableConfig = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| ConfigError::from_path_error("table config", e))?;
        de.end()
            .map_err(|e| ConfigError::new("$", format!("trailing data after table config: {e}")))?;
        if cfg.table_name.trim().is_empty() {
            return Err(ConfigError::new("$.tableName", "must not be empty"));
        }
        let (raw, suffix) = riffle_common::split_table_name(&cfg.table_name);
        if let Some(t) = suffix {
            if t != cfg.table_type {
                return Err(ConfigError::new(
                    "$.tableName",
                    format!(
                        "table name '{}' does not match table type {}",
                        cfg.table_name,
                        cfg.table_type.as_str()
                    ),
                ));
            }
        }
        if raw.contains("__") {
            return Err(ConfigError::new(
                "$.tableName",
                format!("'{raw}' must not contain '__'"),
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

    /// The stream maps with their JSON paths, from `streamConfigMaps` or the legacy
    /// `streamConfigs`; an error if both are set.
    pub fn stream_maps(&self) -> Result<Vec<(String, BTreeMap<String, String>)>, ConfigError> {
        let new = self
            .ingestion_config
            .as_ref()
            .and_then(|i| i.stream_ingestion_config.as_ref())
            .and_then(|s| s.stream_config_maps.as_ref());
        let legacy = self.table_index_config.stream_configs.as_ref();
        match (new, legacy) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                "$.tableIndexConfig.streamConfigs",
                "stream configs must be set in only one place: \
                 ingestionConfig.streamIngestionConfig.streamConfigMaps or the legacy \
                 tableIndexConfig.streamConfigs, not both",
            )),
            (Some(maps), None) => maps
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let p = format!(
                        "$.ingestionConfig.streamIngestionConfig.streamConfigMaps[{i}]"
                    );
                    string_map(&p, m).map(|m| (p, m))
                })
                .collect(),
            (None, Some(m)) => {
                let p = "$.tableIndexConfig.streamConfigs".to_string();
                Ok(vec![(p.clone(), string_map(&p, m)?)])
            }
            (None, None) => Ok(Vec::new()),
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
    /// update (PINOT-SPEC §1.12) and returns the parsed stream configs.
    pub fn validate(&self, schema: &Schema) -> Result<Vec<StreamConfig>, ConfigError> {
        if schema.schema_name != self.table_name {
            return Err(ConfigError::new(
                "$.tableName",
                format!(
                    "schema '{}' does not match table '{}': the schema name must equal the raw table name",
                    schema.schema_name, self.table_name
                ),
            ));
        }
        let mut streams = Vec::new();
        if self.table_type == TableType::Realtime {
            let time_col = self
                .segments_config
                .time_column_name
                .as_deref()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    ConfigError::new(
                        "$.segmentsConfig.timeColumnName",
                        "is required for a REALTIME table",
                    )
                })?;
            if !schema.has_column(time_col) {
                return Err(ConfigError::new(
                    "$.segmentsConfig.timeColumnName",
                    format!("time column '{time_col}' is not a column of schema '{}'", schema.schema_name),
                ));
            }
            let maps = self.stream_maps()?;
            if maps.is_empty() {
                return Err(ConfigError::new(
                    "$.ingestionConfig.streamIngestionConfig.streamConfigMaps",
                    "a REALTIME table needs a stream config (streamConfigMaps or the legacy tableIndexConfig.streamConfigs)",
                ));
            }
            for (p, m) in &maps {
                streams.push(StreamConfig::parse(p, m)?);
            }
            if streams.len() > 1 {
                let first = &streams[0];
                for (i, s) in streams.iter().enumerate().skip(1) {
                    let p = format!("$.ingestionConfig.streamIngestionConfig.streamConfigMaps[{i}]");
                    if s.stream_type != first.stream_type {
                        return Err(ConfigError::new(
                            format!("{p}.streamType"),
                            "all streams of a table must have the same streamType",
                        ));
                    }
                    if s.flush != first.flush {
                        return Err(ConfigError::new(
                            p.clone(),
                            "all streams of a table must have the same flush settings",
                        ));
                    }
                    if streams[..i].iter().any(|o| o.topic == s.topic) {
                        return Err(ConfigError::new(
                            p,
                            format!("topic '{}' appears in more than one stream", s.topic),
                        ));
                    }
                }
            }
        }
        if let Some(load_mode) = &self.table_index_config.load_mode {
            if !load_mode.eq_ignore_ascii_case("MMAP") && !load_mode.eq_ignore_ascii_case("HEAP") {
                return Err(ConfigError::new(
                    "$.tableIndexConfig.loadMode",
                    format!("unknown load mode '{load_mode}', expected MMAP or HEAP"),
                ));
            }
        }
        let ic = &self.table_index_config;
        for (key, cols) in [
            ("sortedColumn", &ic.sorted_column),
            ("invertedIndexColumns", &ic.inverted_index_columns),
            ("rangeIndexColumns", &ic.range_index_columns),
            ("bloomFilterColumns", &ic.bloom_filter_columns),
            ("noDictionaryColumns", &ic.no_dictionary_columns),
        ] {
            for (i, c) in cols.iter().flatten().enumerate() {
                if !schema.has_column(c) {
                    return Err(ConfigError::new(
                        format!("$.tableIndexConfig.{key}[{i}]"),
                        format!("column '{c}' is not in schema '{}'", schema.schema_name),
                    ));
                }
            }
        }
        if let Some(list) = self.extra.get("fieldConfigList") {
            let arr = list
                .as_array()
                .ok_or_else(|| ConfigError::new("$.fieldConfigList", "expected an array"))?;
            for (i, fc) in arr.iter().enumerate() {
                let name = fc.get("name").and_then(|n| n.as_str()).ok_or_else(|| {
                    ConfigError::new(format!("$.fieldConfigList[{i}].name"), "is required")
                })?;
                if !schema.has_column(name) {
                    return Err(ConfigError::new(
                        format!("$.fieldConfigList[{i}].name"),
                        format!("column '{name}' is not in schema '{}'", schema.schema_name),
                    ));
                }
            }
        }
        Ok(streams)
    }

    /// Keys Pinot would not recognise, by JSON path.
    pub fn unrecognized(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        collect_unknown("$", &self.extra, TABLE_KNOWN_KEYS, &mut out);
        collect_unknown(
            "$.segmentsConfig",
            &self.segments_config.extra,
            SEGMENTS_KNOWN_KEYS,
            &mut out,
        );
        collect_unknown(
            "$.tableIndexConfig",
            &self.table_index_config.extra,
            INDEXING_KNOWN_KEYS,
            &mut out,
        );
        if let Some(ic) = &self.ingestion_config {
            collect_unknown("$.ingestionConfig", &ic.extra, INGESTION_KNOWN_KEYS, &mut out);
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
