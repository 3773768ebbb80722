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
                return Err(format!(
                    "negative period '{t}' is not a valid offset criteria: expected smallest, \
                     largest, a positive period such as 2d or an ISO-8601 instant"
                ));
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
    /// Rows per segment (`realtime.segment.flush.threshold.rows` and its aliases `.size`,
    /// `.size.llc`). `Some(0)` means size-based autotune.
    pub rows: Option<u64>,
    /// Exact rows per segment (`realtime.segment.flush.threshold.segment.rows`).
    pub segment_rows: Option<u64>,
    /// Maximum age of a consuming segment in milliseconds (default 6 h).
    pub time_ms: i64,
    /// Target sealed size in bytes for autotune (`...segment.size`, alias
    /// `realtime.segment.flush.desired.size`); unset means the 200M default target.
    pub segment_size_bytes: Option<u64>,
    /// Rows of the first segment under autotune (default 100,000).
    pub autotune_initial_rows: u64,
    /// Random variance applied to thresholds (0.0 to < 0.5).
    pub variance_fraction: f64,
}

impl FlushConfig {
    /// Pinot's default autotune target size (200M).
    pub const DEFAULT_TARGET_SIZE: u64 = 200 * 1024 * 1024;
    /// Pinot's default flush time (6 h).
    pub const DEFAULT_TIME_MS: i64 = 6 * 3_600_000;
    /// Pinot's default rows of the first autotuned segment.
    pub const DEFAULT_AUTOTUNE_INITIAL_ROWS: u64 = 100_000;

    /// Whether the row threshold is chosen by autotune from the target size: no positive
    /// `segment.rows` and no positive `rows`.
    pub fn is_autotune(&self) -> bool {
        self.segment_rows.is_none_or(|r| r == 0) && self.rows.is_none_or(|r| r == 0)
    }

    /// The autotune target size in bytes (the configured one or 200M).
    pub fn target_size_bytes(&self) -> u64 {
        self.segment_size_bytes
            .filter(|s| *s > 0)
            .unwrap_or(Self::DEFAULT_TARGET_SIZE)
    }

    /// Whether two streams of one table agree on the settings Pinot requires to be equal
    /// (rows, segment rows, time, segment size, variance).
    pub fn same_thresholds(&self, other: &FlushConfig) -> bool {
        self.rows == other.rows
            && self.segment_rows == other.segment_rows
            && self.time_ms == other.time_ms
            && self.segment_size_bytes == other.segment_size_bytes
            && self.variance_fraction == other.variance_fraction
    }
}

/// Automatic offset reset of a lagging partition (`realtime.segment.offsetAutoReset.*`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OffsetAutoReset {
    /// `realtime.segment.offsetAutoReset.enable` (false).
    pub enabled: bool,
    /// `realtime.segment.offsetAutoReset.offsetThreshold` (unset = off).
    pub offset_threshold: Option<i64>,
    /// `realtime.segment.offsetAutoReset.timeThresholdSeconds` (unset = off).
    pub time_threshold_seconds: Option<i64>,
    /// `realtime.segment.isBackfillTopic`: disables auto reset for this stream.
    pub backfill_topic: bool,
}

/// What a partition does when the stream no longer holds offsets it has not read (retention
/// deleted them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DataLossPolicy {
    /// Stop the partition with an error naming the lost range (the default: never skip
    /// data silently).
    #[default]
    Stop,
    /// Log and count the gap, and go on from the earliest offset the stream still has.
    ResumeFromEarliest,
}

pub use crate::secrets::{is_secret_key, SECRET_MASK};

/// A parsed stream config. Its `Debug` output masks secret values.
#[derive(Clone, PartialEq)]
pub struct StreamConfig {
    /// `streamType` (lower-case), e.g. `kafka`, `file`.
    pub stream_type: String,
    /// `stream.<t>.topic.name`.
    pub topic: String,
    /// The consumer factory class, canonicalised through Pinot's aliases (kafka20, kafka2
    /// and kafka3 become kafka30), or Pinot's default. The raw map keeps what was written.
    pub factory_class: String,
    /// The decoder class, canonicalised through Pinot's aliases.
    pub decoder_class: String,
    /// `stream.<t>.decoder.prop.*` with the prefix stripped.
    pub decoder_props: BTreeMap<String, String>,
    /// `stream.<t>.consumer.prop.auto.offset.reset` (default `largest`, or `smallest` when a
    /// Kinesis map says `shardIteratorType: TRIM_HORIZON`).
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
    /// What a partition does when the stream deleted offsets it had not read yet
    /// (`realtime.segment.dataLossPolicy`, a Riffle key).
    pub data_loss_policy: DataLossPolicy,
    /// `topic.consumption.rate.limit` in messages per second, if positive.
    pub topic_rate_limit: Option<f64>,
    /// The dead-letter table (`riffle.deadLetter.*`, Riffle keys), if enabled.
    pub dead_letter: Option<DeadLetterConfig>,
    /// `realtime.segment.commit.timeoutSeconds`: overrides the controller's 120 s commit time.
    pub commit_timeout_seconds: Option<u64>,
    /// `realtime.segment.serverUploadToDeepStore`; unset = the server-level setting.
    pub server_upload_to_deep_store: Option<bool>,
    /// `realtime.segment.pauseless.download.timeoutSeconds` (600).
    pub pauseless_download_timeout_seconds: u64,
    /// `realtime.segment.offsetAutoReset.*` and `realtime.segment.isBackfillTopic`.
    pub offset_auto_reset: OffsetAutoReset,
    /// `stream.<t>.consumer.type: highlevel`: the stream-level (high-level) consumer. The
    /// table then has one stream-level partition whose offset is the vector of the stream's
    /// partition offsets (see `riffle_stream::stream_level`).
    pub stream_level: bool,
    /// The whole map, for the plugin's own keys.
    pub raw: BTreeMap<String, String>,
}

/// A stream map as written: string keys to string values.
pub type StreamMap = BTreeMap<String, String>;

/// Where messages that fail to decode or transform go, besides being counted: the table's
/// dead-letter table (`<table>_deadLetter`).
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetterConfig {
    /// `riffle.deadLetter.retention`: how long a dead letter is kept (a period such as
    /// `7d`, the default, or milliseconds).
    pub retention_ms: i64,
    /// `riffle.deadLetter.maxPerSegment`: dead letters kept per consuming segment (10,000);
    /// more are only counted.
    pub max_per_segment: usize,
    /// `riffle.deadLetter.maxValueBytes`: bytes of a message's key and value kept (65,536);
    /// longer ones are cut, saying so in the error text.
    pub max_value_bytes: usize,
}

impl DeadLetterConfig {
    /// The default retention: 7 days.
    pub const DEFAULT_RETENTION_MS: i64 = 7 * 86_400_000;

    fn parse(
        raw: &BTreeMap<String, String>,
        key_path: &dyn Fn(&str) -> String,
    ) -> Result<Option<DeadLetterConfig>, ConfigError> {
        let enabled_key = "riffle.deadLetter.enabled";
        let enabled = match raw.get(enabled_key).map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if v == "true" => true,
            Some(v) if v == "false" => false,
            Some(v) => {
                return Err(ConfigError::new(
                    key_path(enabled_key),
                    format!("expected \"true\" or \"false\", got '{v}'"),
                ))
            }
        };
        if !enabled {
            return Ok(None);
        }
        let retention_key = "riffle.deadLetter.retention";
        let retention_ms = match raw.get(retention_key) {
            None => Self::DEFAULT_RETENTION_MS,
            Some(v) => crate::datetime::parse_period_or_millis(v)
                .filter(|ms| *ms > 0)
                .ok_or_else(|| {
                    ConfigError::new(
                        key_path(retention_key),
                        format!("'{v}' is not a period: expected e.g. 7d, 12h or milliseconds"),
                    )
                })?,
        };
        let count = |key: &str, default: usize| -> Result<usize, ConfigError> {
            match raw.get(key) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        ConfigError::new(key_path(key), format!("'{v}' is not a positive number"))
                    }),
            }
        };
        Ok(Some(DeadLetterConfig {
            retention_ms,
            max_per_segment: count("riffle.deadLetter.maxPerSegment", 10_000)?,
            max_value_bytes: count("riffle.deadLetter.maxValueBytes", 65_536)?,
        }))
    }
}

/// Pinot's default consumer factory.
pub const DEFAULT_FACTORY: &str = "org.apache.pinot.plugin.stream.kafka30.KafkaConsumerFactory";

/// Canonical JSON decoder class.
pub const JSON_DECODER: &str = "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder";

/// Pinot's Kafka JSON decoder (a deprecated subclass of [`JSON_DECODER`], used by every
/// quickstart config).
pub const KAFKA_JSON_DECODER: &str = "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder";

/// The protobuf decoder whose decoder props Pinot checks at table creation.
pub const PROTOBUF_DECODER: &str =
    "org.apache.pinot.plugin.inputformat.protobuf.ProtoBufMessageDecoder";

/// Pinot's CSV decoder class.
pub const CSV_DECODER: &str = "org.apache.pinot.plugin.inputformat.csv.CSVMessageDecoder";

/// Pinot's plain Avro decoder class (the schema in the decoder props).
pub const SIMPLE_AVRO_DECODER: &str =
    "org.apache.pinot.plugin.inputformat.avro.SimpleAvroMessageDecoder";

/// Pinot's Confluent schema-registry Avro decoder class.
pub const CONFLUENT_AVRO_DECODER: &str =
    "org.apache.pinot.plugin.inputformat.avro.confluent.KafkaConfluentSchemaRegistryAvroMessageDecoder";

/// Pinot's Confluent schema-registry JSON decoder class.
pub const CONFLUENT_JSON_DECODER: &str =
    "org.apache.pinot.plugin.inputformat.json.confluent.KafkaConfluentSchemaRegistryJsonMessageDecoder";

/// Pinot's Confluent schema-registry Protobuf decoder class.
pub const CONFLUENT_PROTOBUF_DECODER: &str =
    "org.apache.pinot.plugin.inputformat.protobuf.KafkaConfluentSchemaRegistryProtoBufMessageDecoder";

/// Decoder classes Riffle can decode today, canonical names.
pub const SUPPORTED_DECODERS: &[&str] = &[
    JSON_DECODER,
    CSV_DECODER,
    SIMPLE_AVRO_DECODER,
    CONFLUENT_AVRO_DECODER,
    CONFLUENT_JSON_DECODER,
    PROTOBUF_DECODER,
    CONFLUENT_PROTOBUF_DECODER,
];

/// Strips Pinot's optional `pluginName:` prefix from a class name.
fn strip_plugin_prefix(class: &str) -> &str {
    let class = class.trim();
    match class.rsplit_once(':') {
        Some((_, name)) => name.trim(),
        None => class,
    }
}

/// Maps Pinot's old and alias decoder class names to the canonical one (PINOT-SPEC §1.14).
pub fn canonical_decoder(class: &str) -> String {
    match strip_plugin_prefix(class) {
        KAFKA_JSON_DECODER
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
    match strip_plugin_prefix(class) {
        "org.apache.pinot.plugin.stream.kafka20.KafkaConsumerFactory"
        | "org.apache.pinot.core.realtime.impl.kafka2.KafkaConsumerFactory"
        | "org.apache.pinot.core.realtime.impl.kafka3.KafkaConsumerFactory" => {
            DEFAULT_FACTORY.to_string()
        }
        other => other.to_string(),
    }
}

/// Whether Riffle can decode messages written for this decoder class (any alias). Config
/// validation does not reject other decoders: the server decides when it starts consuming.
pub fn decoder_supported(class: &str) -> bool {
    let c = canonical_decoder(class);
    SUPPORTED_DECODERS.contains(&c.as_str())
}

/// Converts a JSON object of a stream map into a string map, as Jackson does for
/// `Map<String, String>`: scalars become their text, nulls are dropped, nested values are an
/// error.
pub fn string_map(path: &str, v: &Value) -> Result<BTreeMap<String, String>, ConfigError> {
    let obj = v.as_object().ok_or_else(|| {
        ConfigError::new(
            path,
            format!(
                "expected an object of string keys to string values, got {}",
                json_kind(v)
            ),
        )
    })?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            other => {
                return Err(ConfigError::new(
                    format!("{path}.{k}"),
                    format!(
                        "expected a string value, got {}: stream config values are flat strings",
                        json_kind(other)
                    ),
                ))
            }
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

/// `an object`, `an array`, ... for messages.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Flush-row keys in Pinot's order of precedence.
pub(crate) const ROWS_KEYS: &[&str] = &[
    "realtime.segment.flush.threshold.rows",
    "realtime.segment.flush.threshold.size",
    "realtime.segment.flush.threshold.size.llc",
];
pub(crate) const SEGMENT_ROWS_KEY: &str = "realtime.segment.flush.threshold.segment.rows";
pub(crate) const TIME_KEYS: &[&str] = &[
    "realtime.segment.flush.threshold.time",
    "realtime.segment.flush.threshold.time.llc",
];
pub(crate) const SIZE_KEYS: &[&str] = &[
    "realtime.segment.flush.threshold.segment.size",
    "realtime.segment.flush.desired.size",
];
pub(crate) const VARIANCE_KEY: &str = "realtime.segment.flush.threshold.variance.fraction";
const INITIAL_ROWS_KEY: &str = "realtime.segment.flush.autotune.initialRows";

/// The first of `keys` present in `raw`, with its value.
fn first_of<'a>(
    raw: &'a BTreeMap<String, String>,
    keys: &[&'static str],
) -> Option<(&'static str, &'a str)> {
    keys.iter()
        .find_map(|k| raw.get(*k).map(|v| (*k, v.trim())))
}

/// Parses a Java `int` row count (0 ..= 2^31-1).
fn parse_rows(v: &str) -> Option<u64> {
    v.parse::<i32>().ok().filter(|n| *n >= 0).map(|n| n as u64)
}

fn parse_bool(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case("true")
}

impl std::fmt::Debug for StreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let raw: BTreeMap<&str, &str> = self
            .raw
            .iter()
            .map(|(k, v)| {
                let v = if is_secret_key(k) {
                    SECRET_MASK
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("StreamConfig")
            .field("stream_type", &self.stream_type)
            .field("topic", &self.topic)
            .field("factory_class", &self.factory_class)
            .field("decoder_class", &self.decoder_class)
            .field("offset_criteria", &self.offset_criteria)
            .field("flush", &self.flush)
            .field("stream_level", &self.stream_level)
            .field("raw", &raw)
            .finish_non_exhaustive()
    }
}

impl StreamConfig {
    /// Parses a stream map; `path` is the JSON path of the map, for errors. Applies Pinot's
    /// defaults and aliases and the checks Pinot's controller makes on each stream
    /// (PINOT-SPEC §1.11, §1.12).
    pub fn parse(path: &str, raw: &BTreeMap<String, String>) -> Result<StreamConfig, ConfigError> {
        let key_path = |k: &str| format!("{path}.{k}");
        let written_type = raw
            .get("streamType")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ConfigError::new(
                    key_path("streamType"),
                    "streamType is required: expected the stream system, e.g. \"kafka\" or \"file\"",
                )
            })?;
        let t = written_type.to_ascii_lowercase();
        // Pinot builds keys from the type as written; Riffle also accepts the lower-case form.
        let pfx = format!("stream.{written_type}.");
        let lower_pfx = format!("stream.{t}.");
        let key_of = |suffix: &str| -> String {
            let k = format!("{pfx}{suffix}");
            if raw.contains_key(&k) {
                k
            } else {
                format!("{lower_pfx}{suffix}")
            }
        };
        let get = |suffix: &str| raw.get(&key_of(suffix)).map(|s| s.trim());

        let topic = get("topic.name")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ConfigError::new(
                    key_path(&format!("{pfx}topic.name")),
                    format!(
                        "{pfx}topic.name is required: expected the name of the topic to consume"
                    ),
                )
            })?
            .to_string();

        let consumer_type_key = key_of("consumer.type");
        let stream_level = match raw.get(&consumer_type_key).map(|v| v.trim()) {
            None | Some("") => false,
            Some(v) if v.eq_ignore_ascii_case("lowlevel") || v.eq_ignore_ascii_case("simple") => {
                false
            }
            Some(v) if v.eq_ignore_ascii_case("highlevel") => true,
            Some(v) => {
                return Err(ConfigError::new(
                    key_path(&consumer_type_key),
                    format!(
                        "consumer type '{v}' is not one of \"lowlevel\" (partition-level, the default) or \"highlevel\" (stream-level)"
                    ),
                ));
            }
        };

        let decoder_class = get("decoder.class.name")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ConfigError::new(
                    key_path(&format!("{pfx}decoder.class.name")),
                    format!(
                        "{pfx}decoder.class.name is required: expected a decoder class such as \"{KAFKA_JSON_DECODER}\""
                    ),
                )
            })?;
        let decoder_class = canonical_decoder(decoder_class);
        let factory_class = get("consumer.factory.class.name")
            .filter(|s| !s.is_empty())
            .map(canonical_factory)
            .unwrap_or_else(|| DEFAULT_FACTORY.to_string());

        let mut decoder_props = BTreeMap::new();
        for dp in [&lower_pfx, &pfx] {
            let decoder_prefix = format!("{dp}decoder.prop.");
            for (k, v) in raw {
                if let Some(p) = k.strip_prefix(&decoder_prefix) {
                    decoder_props.insert(p.to_string(), v.clone());
                }
            }
        }
        if decoder_class == PROTOBUF_DECODER {
            for prop in ["descriptorFile", "protoClassName"] {
                if !decoder_props.contains_key(prop) {
                    return Err(ConfigError::new(
                        key_path(&format!("{pfx}decoder.prop.{prop}")),
                        format!("missing decoder property {prop}: ProtoBufMessageDecoder requires decoder props descriptorFile and protoClassName"),
                    ));
                }
            }
        }

        let offset_key = key_of("consumer.prop.auto.offset.reset");
        let offset_criteria = match raw.get(&offset_key) {
            // Kinesis tables (Pinot's own example) say where shards start with
            // `shardIteratorType`, which Pinot parses but does not use (it always starts a
            // shard at its beginning): honoured when no `auto.offset.reset` is written.
            None => match raw
                .get("shardIteratorType")
                .or_else(|| raw.get(&key_of("shardIteratorType")))
                .map(|v| v.trim().to_ascii_uppercase())
                .as_deref()
            {
                Some("TRIM_HORIZON") => OffsetCriteria::Smallest,
                _ => OffsetCriteria::Largest,
            },
            Some(v) => {
                OffsetCriteria::parse(v).map_err(|m| ConfigError::new(key_path(&offset_key), m))?
            }
        };

        // Timeouts: unparsable values fall back to the default, as Pinot does (with a warning).
        let connection_timeout_ms = get("connection.timeout.millis")
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .map(|n| n as u64)
            .unwrap_or(30_000);
        let int_ms = |suffix: &str, default: u64| -> u64 {
            get(suffix)
                .and_then(|v| v.parse::<i32>().ok())
                .filter(|n| *n >= 0)
                .map(|n| n as u64)
                .unwrap_or(default)
        };
        let fetch_timeout_ms = int_ms("fetch.timeout.millis", 5_000);
        let idle_timeout_ms = int_ms("idle.timeout.millis", 180_000);

        let rows_entry = first_of(raw, ROWS_KEYS);
        let rows = match rows_entry {
            None => None,
            Some((k, v)) => Some(parse_rows(v).ok_or_else(|| {
                ConfigError::new(
                    key_path(k),
                    format!("'{v}' is not a valid row count: expected a whole number from 0 to 2147483647 (0 = size-based autotune)"),
                )
            })?),
        };
        let segment_rows = match raw.get(SEGMENT_ROWS_KEY).map(|v| v.trim()) {
            None => None,
            Some(v) => Some(parse_rows(v).ok_or_else(|| {
                ConfigError::new(
                    key_path(SEGMENT_ROWS_KEY),
                    format!("'{v}' is not a valid row count: expected a whole number from 0 to 2147483647"),
                )
            })?),
        };
        let time_entry = first_of(raw, TIME_KEYS);
        let time_ms = match time_entry {
            None => FlushConfig::DEFAULT_TIME_MS,
            Some((k, v)) => {
                let ms = parse_period_or_millis(v).ok_or_else(|| {
                    ConfigError::new(
                        key_path(k),
                        format!("'{v}' is not a valid flush threshold time: expected a period such as 6h, 1h30m or 2d, or a number of milliseconds"),
                    )
                })?;
                if ms <= 0 {
                    return Err(ConfigError::new(
                        key_path(k),
                        format!(
                            "invalid flush threshold time '{v}': expected a time greater than 0"
                        ),
                    ));
                }
                ms
            }
        };
        let size_entry = first_of(raw, SIZE_KEYS);
        let segment_size_bytes = match size_entry {
            None => None,
            Some((k, v)) => Some(parse_data_size(v).ok_or_else(|| {
                ConfigError::new(
                    key_path(k),
                    format!("'{v}' is not a valid data size: expected a number with an optional unit K, M, G, T or P (e.g. 50M, 200MB, 1.5G)"),
                )
            })?),
        };
        // Pinot: at most one of rows > 0, segment rows > 0, segment size > 0. Point at the
        // second one set.
        let mut set: Vec<&str> = Vec::new();
        if let (Some((k, _)), Some(r)) = (rows_entry, rows) {
            if r > 0 {
                set.push(k);
            }
        }
        if segment_rows.is_some_and(|r| r > 0) {
            set.push(SEGMENT_ROWS_KEY);
        }
        if let (Some((k, _)), Some(s)) = (size_entry, segment_size_bytes) {
            if s > 0 {
                set.push(k);
            }
        }
        if set.len() > 1 {
            return Err(ConfigError::new(
                key_path(set[1]),
                format!(
                    "only 1 of flush threshold rows, segment rows and segment size can be set, but both {} and {} are: expected one of them, or rows \"0\" with a segment size",
                    set[0], set[1]
                ),
            ));
        }
        let autotune_initial_rows = raw
            .get(INITIAL_ROWS_KEY)
            .and_then(|v| v.trim().parse::<i32>().ok())
            .filter(|n| *n > 0)
            .map(|n| n as u64)
            .unwrap_or(FlushConfig::DEFAULT_AUTOTUNE_INITIAL_ROWS);
        let variance_fraction = match raw.get(VARIANCE_KEY) {
            None => 0.0,
            Some(v) => {
                let f: f64 = v.trim().parse().map_err(|_| {
                    ConfigError::new(
                        key_path(VARIANCE_KEY),
                        format!("'{v}' is not a number: expected a fraction from 0.0 to below 0.5"),
                    )
                })?;
                // Out of range: Pinot warns and uses 0.
                if (0.0..0.5).contains(&f) {
                    f
                } else {
                    0.0
                }
            }
        };
        let stop_on_decode_error = raw.get("stopOnDecodeError").is_some_and(|v| parse_bool(v));
        let metadata_populate = get("metadata.populate").is_some_and(parse_bool);
        let loss_key = "realtime.segment.dataLossPolicy";
        let data_loss_policy = match raw.get(loss_key).map(|v| v.trim().to_ascii_uppercase()) {
            None => DataLossPolicy::Stop,
            Some(v) if v == "STOP" => DataLossPolicy::Stop,
            Some(v) if v == "RESUME_FROM_EARLIEST" => DataLossPolicy::ResumeFromEarliest,
            Some(v) => {
                return Err(ConfigError::new(
                    key_path(loss_key),
                    format!("unknown policy '{v}', expected STOP or RESUME_FROM_EARLIEST"),
                ))
            }
        };
        let dead_letter = DeadLetterConfig::parse(raw, &key_path)?;
        let partition_rate_limit = raw
            .get("partition.consumption.rate.limit")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|r| *r > 0.0);
        let topic_rate_key = "topic.consumption.rate.limit";
        let topic_rate_limit = match raw.get(topic_rate_key) {
            None => None,
            Some(v) => {
                let r: f64 = v.trim().parse().map_err(|_| {
                    ConfigError::new(
                        key_path(topic_rate_key),
                        format!("'{v}' is not a number: expected messages per second, e.g. 1000"),
                    )
                })?;
                (r > 0.0).then_some(r)
            }
        };
        let commit_timeout_seconds = raw
            .get("realtime.segment.commit.timeoutSeconds")
            .and_then(|v| v.trim().parse::<i32>().ok())
            .filter(|n| *n > 0)
            .map(|n| n as u64);
        let server_upload_to_deep_store = raw
            .get("realtime.segment.serverUploadToDeepStore")
            .map(|v| parse_bool(v));
        let pauseless_download_timeout_seconds = raw
            .get("realtime.segment.pauseless.download.timeoutSeconds")
            .and_then(|v| v.trim().parse::<i32>().ok())
            .filter(|n| *n > 0)
            .map(|n| n as u64)
            .unwrap_or(600);
        let threshold = |k: &str| {
            raw.get(k)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
        };
        let offset_auto_reset = OffsetAutoReset {
            enabled: raw
                .get("realtime.segment.offsetAutoReset.enable")
                .is_some_and(|v| parse_bool(v)),
            offset_threshold: threshold("realtime.segment.offsetAutoReset.offsetThreshold"),
            time_threshold_seconds: threshold(
                "realtime.segment.offsetAutoReset.timeThresholdSeconds",
            ),
            backfill_topic: raw
                .get("realtime.segment.isBackfillTopic")
                .is_some_and(|v| parse_bool(v)),
        };
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
            data_loss_policy,
            dead_letter,
            topic_rate_limit,
            commit_timeout_seconds,
            server_upload_to_deep_store,
            pauseless_download_timeout_seconds,
            offset_auto_reset,
            stream_level,
            raw: raw.clone(),
        })
    }

    /// A key of the plugin's namespace, `stream.<type>.<suffix>` (the type as written in
    /// `streamType` or lower-case).
    pub fn plugin_key(&self, suffix: &str) -> Option<&str> {
        let written = self.raw.get("streamType").map(|s| s.trim());
        written
            .and_then(|w| self.raw.get(&format!("stream.{w}.{suffix}")))
            .or_else(|| {
                self.raw
                    .get(&format!("stream.{}.{suffix}", self.stream_type))
            })
            .map(|s| s.as_str())
    }

    /// [`StreamConfig::plugin_key`], trimmed; `None` when blank.
    pub fn plugin_value(&self, suffix: &str) -> Option<&str> {
        self.plugin_key(suffix)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// Whether Riffle can decode this stream's messages (see [`decoder_supported`]).
    pub fn decoder_supported(&self) -> bool {
        decoder_supported(&self.decoder_class)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
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
        .expect("should parse");
        assert_eq!(c.decoder_class, JSON_DECODER);
        assert_eq!(c.flush.rows, Some(50_000));
        assert_eq!(c.flush.time_ms, 3_600_000);
        assert_eq!(c.offset_criteria, OffsetCriteria::Largest);
        assert_eq!(c.fetch_timeout_ms, 5_000);
        assert_eq!(c.factory_class, DEFAULT_FACTORY);
        assert!(!c.flush.is_autotune());
    }

    #[test]
    fn test_debug_masks_secrets() {
        let c = StreamConfig::parse(
            "$",
            &map(&[
                ("streamType", "kafka"),
                ("stream.kafka.topic.name", "t"),
                ("stream.kafka.decoder.class.name", "json"),
                ("sasl.password", "hunter2"),
                (
                    "sasl.jaas.config",
                    "PlainLoginModule required password=\"hunter2\";",
                ),
            ]),
        )
        .unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains(SECRET_MASK));
    }

    #[test]
    fn test_offset_criteria() {
        assert_eq!(
            OffsetCriteria::parse("SMALLEST"),
            Ok(OffsetCriteria::Smallest)
        );
        assert_eq!(
            OffsetCriteria::parse("2d"),
            Ok(OffsetCriteria::Period(172_800_000))
        );
        assert_eq!(
            OffsetCriteria::parse("2022-08-09T12:31:38.222Z"),
            Ok(OffsetCriteria::Timestamp(1_660_048_298_222))
        );
        assert!(OffsetCriteria::parse("yesterday").is_err());
    }
}
