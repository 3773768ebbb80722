//! Checks of a parsed table config against its schema, as Pinot's controller does them on
//! create and update (PINOT-SPEC §1.12, `TableConfigUtils.validate`). Each rejection names
//! the JSON path of the offending value.

use serde_json::Value;

use super::document::STREAM_MAPS_PATH;
use super::{retention_value, TableConfig};
use crate::error::ConfigError;
use crate::index::Encoding;
use crate::schema::{DataType, Schema};
use crate::stream::{
    json_kind, StreamConfig, StreamMap, ROWS_KEYS, SEGMENT_ROWS_KEY, SIZE_KEYS, TIME_KEYS,
    VARIANCE_KEY,
};
use riffle_common::TableType;

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
pub(super) fn string_list<'a>(path: &str, v: &'a Value) -> Result<Vec<&'a str>, ConfigError> {
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

pub(super) fn not_in_schema(
    path: String,
    what: &str,
    column: &str,
    schema: &Schema,
) -> ConfigError {
    ConfigError::new(
        path,
        format!(
            "{what} '{column}' is not a column of schema '{}': expected one of the schema's columns",
            schema.schema_name
        ),
    )
}

impl TableConfig {
    /// Validates the config against its schema the way Pinot's controller does on create and
    /// update (PINOT-SPEC §1.12, `TableConfigUtils.validate`). The decoder class is not
    /// checked against what Riffle can decode: see [`crate::stream::decoder_supported`].
    pub fn validate(&self, schema: &Schema) -> Result<(), ConfigError> {
        if schema.schema_name != self.raw_name() {
            return Err(ConfigError::new(
                "$.tableName",
                format!(
                    "table '{}' does not match schema '{}': expected the schema name to equal the raw table name",
                    self.raw_name(), schema.schema_name
                ),
            ));
        }
        self.validate_segments_config(schema)?;
        self.validate_ingestion(schema)?;
        if self.table_type() == TableType::Realtime {
            if self.streams().is_empty() {
                return Err(ConfigError::new(
                    STREAM_MAPS_PATH,
                    "a REALTIME table needs a stream config: expected \
                     ingestionConfig.streamIngestionConfig.streamConfigMaps (or the legacy \
                     tableIndexConfig.streamConfigs)",
                ));
            }
            let maps = self.document().stream_maps()?;
            self.validate_multi_stream(&maps, self.streams())?;
        }
        self.validate_indexing(schema)?;
        self.validate_field_configs(schema)?;
        self.validate_upsert_dedup(schema)?;
        Ok(())
    }

    fn validate_segments_config(&self, schema: &Schema) -> Result<(), ConfigError> {
        let doc = self.document();
        let sc = &doc.segments_config;
        let time_col = self.time_column();
        if self.table_type() == TableType::Realtime && time_col.is_none() {
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
        if doc.extra.get("isDimTable").and_then(Value::as_bool) == Some(true) {
            if self.table_type() != TableType::Offline {
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
        // The unit was checked when the config was parsed; the value is checked here so
        // that a stored config with an unreadable value still loads (with no retention).
        if self.retention().is_none() {
            if let Some(v) = sc.retention_time_value.as_ref().filter(|_| {
                sc.retention_time_unit
                    .as_deref()
                    .is_some_and(|u| !u.trim().is_empty())
            }) {
                if !retention_value(Some(v)).is_some_and(|n| n > 0.0) {
                    return Err(ConfigError::new(
                        "$.segmentsConfig.retentionTimeValue",
                        format!("invalid retention time value {v}: expected a positive number"),
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
        let ic = &self.document().table_index_config;
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
        let ic = &self.document().table_index_config;
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
        for (i, fc) in self.field_configs().iter().enumerate() {
            let p = format!("$.fieldConfigList[{i}]");
            let name = fc.name.as_str();
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
            if fc.encoding == Encoding::Dictionary && no_dict.contains(&name) {
                return Err(ConfigError::new(
                    format!("{p}.encodingType"),
                    format!(
                        "field config encoding type DICTIONARY differs from tableIndexConfig for no-dictionary column '{name}': expected encodingType RAW"
                    ),
                ));
            }
            if fc.timestamp_config {
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
