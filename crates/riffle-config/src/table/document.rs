//! The table-config document as written: serde models whose typed fields Riffle reads and
//! whose `extra` maps keep every other key, so that a config round-trips. The parsed,
//! typed views ([`super::TableConfig`]) are computed from this once.

use std::collections::BTreeMap;

use riffle_common::TableType;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::ConfigError;
use crate::schema::collect_unknown;
use crate::stream::{string_map, StreamMap};

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

/// A Pinot table config as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableDocument {
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
pub(crate) const STREAM_MAPS_PATH: &str =
    "$.ingestionConfig.streamIngestionConfig.streamConfigMaps";
/// The JSON path of the legacy stream map.
pub(crate) const LEGACY_STREAM_PATH: &str = "$.tableIndexConfig.streamConfigs";

/// Java `TimeUnit` names, accepted for `retentionTimeUnit` in any case.
pub(crate) const TIME_UNITS: &[&str] = &[
    "NANOSECONDS",
    "MICROSECONDS",
    "MILLISECONDS",
    "SECONDS",
    "MINUTES",
    "HOURS",
    "DAYS",
];

/// Reads a replication count written as a string (`"1"`) or a number.
pub(crate) fn value_as_int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

impl TableDocument {
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

    pub(crate) fn stream_ingestion(&self) -> Option<&StreamIngestionConfig> {
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
