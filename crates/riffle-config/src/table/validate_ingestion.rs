//! Checks of `ingestionConfig` (aggregations, pauseless consumption, transforms) and of
//! `upsertConfig` / `dedupConfig` against the schema.

use serde_json::Value;

use super::validate::{expression_arguments, not_in_schema, string_list};
use super::TableConfig;
use crate::error::ConfigError;
use crate::schema::{FieldType, Schema};
use crate::stream::json_kind;
use riffle_common::TableType;

impl TableConfig {
    pub(super) fn validate_ingestion(&self, schema: &Schema) -> Result<(), ConfigError> {
        let doc = self.document();
        let aggregate_metrics = doc
            .table_index_config
            .extra
            .get("aggregateMetrics")
            .and_then(Value::as_bool)
            == Some(true);
        let Some(ic) = &doc.ingestion_config else {
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
            let ok = doc
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

    pub(super) fn validate_upsert_dedup(&self, schema: &Schema) -> Result<(), ConfigError> {
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
        if dedup && self.table_type() == TableType::Offline {
            return Err(ConfigError::new(
                "$.dedupConfig",
                "dedup is not supported for an OFFLINE table: expected a REALTIME table",
            ));
        }
        let doc = self.document();
        let aggregation = doc
            .table_index_config
            .extra
            .get("aggregateMetrics")
            .and_then(Value::as_bool)
            == Some(true)
            || doc
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
        let selector = doc
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
            let u = self.document().extra.get("upsertConfig");
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
}
