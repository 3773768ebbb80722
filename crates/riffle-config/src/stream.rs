//! Pinot's flat stream-config map (`streamConfigs` / `streamConfigMaps[i]`) parsed into a
//! typed [`StreamConfig`], with Pinot's defaults, aliases and class names.
//!
//! The raw map is kept whole in [`StreamConfig::raw`]: stream plugins read their own keys
//! from it (`stream.<type>.*` and pass-through client keys).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::datetime::{parse_data_size, parse_period_ms, parse_period_or_millis};
use crate::error::ConfigError;

/// Where to start a partition that has no prior segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OffsetCriteria {
    /// The earliest available offset.
    Smallest,
    /// The next offset to be written (Pinot's default).
    Largest,
    /// The first offset at or after `now - period` (milliseconds).
    Period(i64),
    /// The first offset at or after an instant (epoch milliseconds).
    Timestamp(i64),
}

impl OffsetCriteria {
    /// Parses Pinot's `auto.offset.reset` value: `smallest` / `largest` (also Kafka's
    /// `earliest` / `latest`), a period (`2d`, `4h30m`) or an ISO-8601 instant.
    pub fn parse(s: &str) -> Result<OffsetCriteria, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("smallest") || t.eq_ignore_ascii_case("earliest") {
            return Ok(OffsetCriteria::Smallest);
        }
        if t.eq_ignore_ascii_case("largest") || t.eq_ignore_ascii_case("latest") {
            return Ok(OffsetCriteria::Largest);
        }
        if let Some(p) = parse_period_ms(t) {
            if p < 0 {
                return Err(format!("negative period '{t}' is not a valid offset criteria"));
            }
            return Ok(OffsetCriteria::Period(p));
        }
        if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
            return Ok(OffsetCriteria::Timestamp(dt.timestamp_millis()));
        }
        Err(format!(
            "unknown initial offset value '{t}', expected smallest, largest, a period such as 2d \
             or an ISO-8601 instant such as 2022-08-09T12:31:38.222Z"
        ))
    }

    /// Pinot's string form.
    pub fn to_pinot_string(&self) -> String {
        match self {
            OffsetCriteria::Smallest => "smallest".into(),
            OffsetCriteria::Largest => "largest".into(),
            OffsetCriteria::Period(ms) => format!("{}s", ms / 1000),
            OffsetCriteria::Timestamp(ms) => chrono::DateTime::from_timestamp_millis(*ms)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
        }
    }
}

/// When a consuming segment ends (PINOT-SPEC §1.11, §2.5).
#[derive(Clone, Debug, PartialEq)]
pub struct FlushConfig {
    /// Rows per segment (`realtime.segment.flush.threshold.rows` and its aliases). `Some(0)`
    /// means size-based autotune.
    pub rows: Option<u64>,
    /// Exact rows per segment (`realtime.segment.flush.threshold.segment.rows`).
    pub segment_rows: Option<u64>,
    /// Maximum age of a consuming segment in milliseconds (default 6 h).
    pub time_ms: i64,
    /// Target sealed size in bytes for autotune (`...segment.size`; default target 200M).
    pub segment_size_bytes: Option<u64>,
    /// Rows of the first segment under autotune (default 100,000).
    pub autotune_initial_rows: u64,
    /// Random variance applied to thresholds (0.0 to < 0.5).
    pub variance_fraction: f64,
}

impl FlushConfig {
    /// Pinot's default autotune target size (200M).
    pub const DEFAULT_TARGET_SIZE: u64 = 200 * 1024 * 1024;

    /// Whether the row threshold is chosen by autotune from the target size.
    pub fn is_autotune(&self) -> bool {
        self.segment_size_bytes.is_some()
            || self.rows == Some(0)
            || (self.rows.is_none() && self.segment_rows.is_none())
    }
}

/// A parsed stream config.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamConfig {
    /// `streamType` (lower-case), e.g. `kafka`, `file`.
    pub stream_type: String,
    /// `stream.<t>.topic.name`.
    pub topic: String,
    /// The consumer factory class as written (or Pinot's default).
    pub factory_class: String,
    /// The decoder class, canonicalised through Pinot's aliases.
    pub decoder_class: String,
    /// `stream.<t>.decoder.prop.*` with the prefix stripped.
    pub decoder_props: BTreeMap<String, String>,
    /// `stream.<t>.consumer.prop.auto.offset.reset` (default `largest`).
    pub offset_criteria: OffsetCriteria,
    /// `stream.<t>.connection.timeout.millis` (30,000).
    pub connection_timeout_ms: u64,
    /// `stream.<t>.fetch.timeout.millis` (5,000).
    pub fetch_timeout_ms: u64,
    /// `stream.<t>.idle.timeout.millis` (180,000).
    pub idle_timeout_ms: u64,
    /// End criteria.
    pub flush: FlushConfig,
    /// `stopOnDecodeError` (false): a malformed message stops the partition.
    pub stop_on_decode_error: bool,
    /// `stream.<t>.metadata.populate`.
    pub metadata_populate: bool,
    /// `partition.consumption.rate.limit` in messages per second, if positive.
    pub partition_rate_limit: Option<f64>,
    /// The whole map, for the plugin's own keys.
    pub raw: BTreeMap<String, String>,
}

/// Pinot's default consumer factory.
pub const DEFAULT_FACTORY: &str = "org.apache.pinot.plugin.stream.kafka30.KafkaConsumerFactory";

/// Canonical JSON decoder class.
pub const JSON_DECODER: &str = "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder";

/// Decoder classes Riffle can decode today, canonical names.
pub const SUPPORTED_DECODERS: &[&str] = &[JSON_DECODER];

/// Maps Pinot's old and alias decoder class names to the canonical one (PINOT-SPEC §1.14).
pub fn canonical_decoder(class: &str) -> String {
    match class.trim() {
        "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder"
        | "org.apache.pinot.core.realtime.impl.kafka.KafkaJSONMessageDecoder"
        | "json"
        | "JSON" => JSON_DECODER.to_string(),
        "org.apache.pinot.core.realtime.stream.SimpleAvroMessageDecoder" => {
            "org.apache.pinot.plugin.inputformat.avro.SimpleAvroMessageDecoder".into()
        }
        "org.apache.pinot.core.realtime.impl.kafka.KafkaAvroMessageDecoder" => {
            "org.apache.pinot.plugin.inputformat.avro.KafkaAvroMessageDecoder".into()
        }
        other => other.to_string(),
    }
}

/// Maps Pinot's old factory class names to the current one (PINOT-SPEC §1.14).
pub fn canonical_factory(class: &str) -> String {
    match class.trim() {
        "org.apache.pinot.plugin.stream.kafka20.KafkaConsumerFactory"
        | "org.apache.pinot.core.realtime.impl.kafka2.KafkaConsumerFactory"
        | "org.apache.pinot.core.realtime.impl.kafka3.KafkaConsumerFactory" => {
            DEFAULT_FACTORY.to_string()
        }
        other => other.to_string(),
    }
}

/// Converts a JSON object of a stream map into a string map, as Jackson does for
/// `Map<String, String>`: scalars become their text, nested values are an error.
pub fn string_map(path: &str, v: &Value) -> Result<BTreeMap<String, String>, ConfigError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ConfigError::new(path, "expected an object of string keys to string values"))?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            _ => {
                return Err(ConfigError::new(
                    format!("{path}.{k}"),
                    "expected a string value, got a nested object or array",
                ))
            }
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

impl StreamConfig {
    /// Parses a stream map; `path` is the JSON path of the map, for errors.
    pub fn parse(path: &str, raw: &BTreeMap<String, String>) -> Result<StreamConfig, ConfigError> {
        let key_path = |k: &str| format!("{path}.{k}");
        let stream_type = raw
            .get("streamType")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ConfigError::new(key_path("streamType"), "is required (e.g. \"kafka\" or \"file\")")
            })?;
        let t = stream_type.to_ascii_lowercase();
        let pfx = format!("stream.{t}.");
        let get = |suffix: &str| raw.get(&format!("{pfx}{suffix}")).map(|s| s.trim());
        let topic = get("topic.name")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ConfigError::new(key_path(&format!("{pfx}topic.name")), "is required"))?
            .to_string();
        let decoder_class = get("decoder.class.name")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ConfigError::new(
                    key_path(&format!("{pfx}decoder.class.name")),
                    format!("is required (e.g. \"{JSON_DECODER}\")"),
                )
            })?;
        let decoder_class = canonical_decoder(decoder_class);
        let factory_class = get("consumer.factory.class.name")
            .map(|s| s.to_string())
            .unwrap_or_else(|| DEFAULT_FACTORY.to_string());
        let decoder_prefix = format!("{pfx}decoder.prop.");
        let decoder_props = raw
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(&decoder_prefix)
                    .map(|p| (p.to_string(), v.clone()))
            })
            .collect();
        let offset_key = format!("{pfx}consumer.prop.auto.offset.reset");
        let offset_criteria = match raw.get(&offset_key) {
            None => OffsetCriteria::Largest,
            Some(v) => {
                OffsetCriteria::parse(v).map_err(|m| ConfigError::new(key_path(&offset_key), m))?
            }
        };
        // Timeouts: unparsable values fall back to the default, as Pinot does.
        let ms = |suffix: &str, default: u64| -> u64 {
            get(suffix)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
        };
        let connection_timeout_ms = ms("connection.timeout.millis", 30_000);
        let fetch_timeout_ms = ms("fetch.timeout.millis", 5_000);
        let idle_timeout_ms = ms("idle.timeout.millis", 180_000);

        let int_key = |keys: &[&str]| -> Result<Option<u64>, ConfigError> {
            for k in keys {
                if let Some(v) = raw.get(*k) {
                    let v = v.trim();
                    let n: i64 = v.parse().map_err(|_| {
                        ConfigError::new(
                            key_path(k),
                            format!("'{v}' is not a whole number of rows"),
                        )
                    })?;
                    if n < 0 {
                        return Err(ConfigError::new(
                            key_path(k),
                            format!("'{v}' must not be negative"),
                        ));
                    }
                    return Ok(Some(n as u64));
                }
            }
            Ok(None)
        };
        let rows = int_key(&[
            "realtime.segment.flush.threshold.rows",
            "realtime.segment.flush.threshold.size",
            "realtime.segment.flush.threshold.size.llc",
        ])?;
        let segment_rows = int_key(&["realtime.segment.flush.threshold.segment.rows"])?;
        let mut time_ms = 6 * 3_600_000;
        for k in [
            "realtime.segment.flush.threshold.time",
            "realtime.segment.flush.threshold.time.llc",
        ] {
            if let Some(v) = raw.get(k) {
                time_ms = parse_period_or_millis(v).ok_or_else(|| {
                    ConfigError::new(
                        key_path(k),
                        format!(
                            "'{v}' is not a period (e.g. 6h, 1h30m, 2d) or a number of milliseconds"
                        ),
                    )
                })?;
                if time_ms <= 0 {
                    return Err(ConfigError::new(
                        key_path(k),
                        format!("flush threshold time must be positive, got '{v}'"),
                    ));
                }
                break;
            }
        }
        let mut segment_size_bytes = None;
        for k in [
            "realtime.segment.flush.threshold.segment.size",
            "realtime.segment.flush.desired.size",
        ] {
            if let Some(v) = raw.get(k) {
                let n = parse_data_size(v).ok_or_else(|| {
                    ConfigError::new(
                        key_path(k),
                        format!("'{v}' is not a data size, expected e.g. 50M, 200MB, 1G or bytes"),
                    )
                })?;
                segment_size_bytes = Some(n);
                break;
            }
        }
        let set = [
            rows.is_some_and(|r| r > 0),
            segment_rows.is_some_and(|r| r > 0),
            segment_size_bytes.is_some_and(|s| s > 0),
        ];
        if set.iter().filter(|b| **b).count() > 1 {
            return Err(ConfigError::new(
                path,
                "only 1 of flush threshold rows, segment rows and segment size can be set",
            ));
        }
        let autotune_initial_rows = raw
            .get("realtime.segment.flush.autotune.initialRows")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|n| *n > 0)
            .map(|n| n as u64)
            .unwrap_or(100_000);
        let variance_key = "realtime.segment.flush.threshold.variance.fraction";
        let variance_fraction = match raw.get(variance_key) {
            None => 0.0,
            Some(v) => {
                let f: f64 = v.trim().parse().map_err(|_| {
                    ConfigError::new(key_path(variance_key), format!("'{v}' is not a number"))
                })?;
                if (0.0..0.5).contains(&f) {
                    f
                } else {
                    0.0
                }
            }
        };
        let stop_on_decode_error = raw
            .get("stopOnDecodeError")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let metadata_populate = get("metadata.populate").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let partition_rate_limit = raw
            .get("partition.consumption.rate.limit")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|r| *r > 0.0);
        Ok(StreamConfig {
            stream_type: t,
            topic,
            factory_class,
            decoder_class,
            decoder_props,
            offset_criteria,
            connection_timeout_ms,
            fetch_timeout_ms,
            idle_timeout_ms,
            flush: FlushConfig {
                rows,
                segment_rows,
                time_ms,
                segment_size_bytes,
                autotune_initial_rows,
                variance_fraction,
            },
            stop_on_decode_error,
            metadata_populate,
            partition_rate_limit,
            raw: raw.clone(),
        })
    }

    /// A key of the plugin's namespace, `stream.<type>.<suffix>`.
    pub fn plugin_key(&self, suffix: &str) -> Option<&str> {
        self.raw
            .get(&format!("stream.{}.{suffix}", self.stream_type))
            .map(|s| s.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn test_defaults_and_aliases() {
        let c = StreamConfig::parse(
            "$",
            &map(&[
                ("streamType", "kafka"),
                ("stream.kafka.topic.name", "t"),
                (
                    "stream.kafka.decoder.class.name",
                    "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
                ),
                ("realtime.segment.flush.threshold.size", "50000"),
                ("realtime.segment.flush.threshold.time", "3600000"),
            ]),
        )
        .unwrap();
        assert_eq!(c.decoder_class, JSON_DECODER);
        assert_eq!(c.flush.rows, Some(50_000));
        assert_eq!(c.flush.time_ms, 3_600_000);
        assert_eq!(c.offset_criteria, OffsetCriteria::Largest);
        assert_eq!(c.fetch_timeout_ms, 5_000);
        assert_eq!(c.factory_class, DEFAULT_FACTORY);
        assert!(!c.flush.is_autotune());
    }

    #[test]
    fn test_offset_criteria() {
        assert_eq!(OffsetCriteria::parse("SMALLEST"), Ok(OffsetCriteria::Smallest));
        assert_eq!(OffsetCriteria::parse("2d"), Ok(OffsetCriteria::Period(172_800_000)));
        assert_eq!(
            OffsetCriteria::parse("2022-08-09T12:31:38.222Z"),
            Ok(OffsetCriteria::Timestamp(1_660_048_298_222))
        );
        assert!(OffsetCriteria::parse("yesterday").is_err());
    }
}
