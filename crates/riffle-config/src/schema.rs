//! Pinot schema JSON (`dimensionFieldSpecs`, `metricFieldSpecs`, `dateTimeFieldSpecs`, legacy
//! `timeFieldSpec`), data types and Pinot's default null values.
//!
//! Unknown keys are kept in `extra` maps so that a schema round-trips; [`Schema::unrecognized`]
//! lists those Pinot itself would not know.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::datetime::{
    parse_timestamp_millis, validate_sdf_pattern, DateTimeFormat, Granularity, TimeFormat,
};
use crate::error::ConfigError;

/// Pinot's column data types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DataType {
    /// 32-bit signed integer.
    Int,
    /// 64-bit signed integer.
    Long,
    /// 32-bit float.
    Float,
    /// 64-bit float.
    Double,
    /// Arbitrary-precision decimal (kept as its decimal string).
    BigDecimal,
    /// true / false.
    Boolean,
    /// Epoch milliseconds, shown as `yyyy-MM-dd HH:mm:ss.S`.
    Timestamp,
    /// UTF-8 text.
    String,
    /// JSON document stored as text.
    Json,
    /// Raw bytes (hex in JSON).
    Bytes,
    /// 16-byte UUID, kept as its canonical string.
    Uuid,
    /// Complex: map.
    Map,
    /// Complex: list.
    List,
    /// Complex: struct.
    Struct,
    /// Complex: open struct.
    OpenStruct,
}

impl DataType {
    /// Pinot's upper-case name.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Int => "INT",
            DataType::Long => "LONG",
            DataType::Float => "FLOAT",
            DataType::Double => "DOUBLE",
            DataType::BigDecimal => "BIG_DECIMAL",
            DataType::Boolean => "BOOLEAN",
            DataType::Timestamp => "TIMESTAMP",
            DataType::String => "STRING",
            DataType::Json => "JSON",
            DataType::Bytes => "BYTES",
            DataType::Uuid => "UUID",
            DataType::Map => "MAP",
            DataType::List => "LIST",
            DataType::Struct => "STRUCT",
            DataType::OpenStruct => "OPEN_STRUCT",
        }
    }

    /// Whether the type is a complex (nested) type.
    pub fn is_complex(self) -> bool {
        matches!(
            self,
            DataType::Map | DataType::List | DataType::Struct | DataType::OpenStruct
        )
    }

    /// Whether the type is numeric.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            DataType::Int
                | DataType::Long
                | DataType::Float
                | DataType::Double
                | DataType::BigDecimal
        )
    }
}

/// Which list a field came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FieldType {
    /// `dimensionFieldSpecs`.
    #[default]
    Dimension,
    /// `metricFieldSpecs`.
    Metric,
    /// Legacy `timeFieldSpec`.
    Time,
    /// `dateTimeFieldSpecs`.
    DateTime,
    /// `complexFieldSpecs`.
    Complex,
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// One field spec as Pinot users write it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldSpec {
    /// Column name.
    pub name: String,
    /// Data type.
    pub data_type: DataType,
    /// Single- or multi-value; multi-value columns hold arrays.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub single_value_field: bool,
    /// Value used when the field is missing; converted to the column type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_null_value: Option<Value>,
    /// Date-time format (dateTime specs only), colon or pipe syntax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Date-time granularity (dateTime specs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granularity: Option<String>,
    /// Pinot writes the kind of field on output; accepted and ignored on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_type: Option<FieldType>,
    /// Every other key, kept for round-trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Legacy `timeFieldSpec` granularity spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeGranularitySpec {
    /// Column name.
    pub name: String,
    /// Data type.
    pub data_type: DataType,
    /// Java `TimeUnit` name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_type: Option<String>,
    /// Unit size, default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_unit_size: Option<u32>,
    /// `EPOCH` or `SIMPLE_DATE_FORMAT:<pattern>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_format: Option<String>,
    /// Every other key.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Legacy `timeFieldSpec`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeFieldSpec {
    /// The incoming column.
    pub incoming_granularity_spec: TimeGranularitySpec,
    /// The stored column, when it differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outgoing_granularity_spec: Option<TimeGranularitySpec>,
    /// Default null value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_null_value: Option<Value>,
    /// Every other key.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A Pinot schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    /// Schema name; equals the raw table name.
    pub schema_name: String,
    /// Dimension columns.
    #[serde(default)]
    pub dimension_field_specs: Vec<FieldSpec>,
    /// Metric columns.
    #[serde(default)]
    pub metric_field_specs: Vec<FieldSpec>,
    /// Date-time columns.
    #[serde(default)]
    pub date_time_field_specs: Vec<FieldSpec>,
    /// Legacy time column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_field_spec: Option<TimeFieldSpec>,
    /// Complex columns (kept, stored as JSON text).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub complex_field_specs: Vec<FieldSpec>,
    /// Primary key columns (upsert / dedup).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub primary_key_columns: Vec<String>,
    /// Column-based null handling; always serialised, as Pinot does.
    #[serde(default)]
    pub enable_column_based_null_handling: bool,
    /// Every other key, kept for round-trip.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A column of the table as the engine sees it: the schema's field specs flattened, with the
/// typed default null value and, for date-time columns, the parsed format.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Data type.
    pub data_type: DataType,
    /// Kind of field.
    pub field_type: FieldType,
    /// Single-value (true) or multi-value.
    pub single_value: bool,
    /// Default null value converted to the type.
    pub default_null: DefaultValue,
    /// Date-time format for date-time and time columns.
    pub format: Option<DateTimeFormat>,
    /// Nulls are recorded (a null vector), not only replaced by the default: the schema
    /// enables column-based null handling and the field is not `notNull`, or the table
    /// sets `nullHandlingEnabled` (see [`Column::with_table_nulls`]). Single-value only.
    pub nullable: bool,
}

impl Column {
    /// The columns of a table whose config says `nullHandlingEnabled`: every single-value
    /// column records its nulls.
    pub fn with_table_nulls(mut columns: Vec<Column>, enabled: bool) -> Vec<Column> {
        if enabled {
            for c in &mut columns {
                c.nullable |= c.single_value;
            }
        }
        columns
    }
}

/// A default null value already converted to a column's type.
#[derive(Clone, Debug, PartialEq)]
pub enum DefaultValue {
    /// INT.
    Int(i32),
    /// LONG and TIMESTAMP.
    Long(i64),
    /// FLOAT.
    Float(f32),
    /// DOUBLE.
    Double(f64),
    /// BOOLEAN.
    Boolean(bool),
    /// STRING, JSON, BIG_DECIMAL, UUID and complex types (as text).
    String(String),
    /// BYTES.
    Bytes(Vec<u8>),
}

const SCHEMA_KNOWN_KEYS: &[&str] = &["description", "tags", "version", "id", "database"];
const FIELD_KNOWN_KEYS: &[&str] = &[
    "notNull",
    "maxLength",
    "maxLengthExceedStrategy",
    "allowTrailingZeros",
    "transformFunction",
    "virtualColumnProvider",
    "description",
    "tags",
    "fieldId",
    "aliases",
    "metadata",
    "sampleValue",
    "childFieldSpecs",
    "virtualColumn",
];

impl Schema {
    /// Parses schema JSON; errors name the JSON path.
    pub fn from_json(bytes: &[u8]) -> Result<Schema, ConfigError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let schema: Schema = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| ConfigError::from_path_error("schema", e))?;
        de.end()
            .map_err(|e| ConfigError::new("$", format!("trailing data after schema: {e}")))?;
        schema.validate()?;
        Ok(schema)
    }

    /// Parses a schema already held as a JSON value.
    pub fn from_value(value: Value) -> Result<Schema, ConfigError> {
        let bytes = serde_json::to_vec(&value)
            .map_err(|e| ConfigError::new("$", format!("cannot serialise schema: {e}")))?;
        Schema::from_json(&bytes)
    }

    /// The schema as JSON, with `fieldType` on each spec as Pinot writes it.
    pub fn to_json(&self) -> Value {
        let mut copy = self.clone();
        for (list, ft) in [
            (&mut copy.dimension_field_specs, FieldType::Dimension),
            (&mut copy.metric_field_specs, FieldType::Metric),
            (&mut copy.date_time_field_specs, FieldType::DateTime),
            (&mut copy.complex_field_specs, FieldType::Complex),
        ] {
            for f in list.iter_mut() {
                f.field_type = Some(ft);
            }
        }
        serde_json::to_value(copy).unwrap_or(Value::Null)
    }

    /// Field specs with their kind, in schema order (dimensions, metrics, date-times, time,
    /// complex), each with its JSON path.
    fn specs(&self) -> Vec<(String, FieldType, &FieldSpec)> {
        let mut out = Vec::new();
        for (key, list, ft) in [
            (
                "dimensionFieldSpecs",
                &self.dimension_field_specs,
                FieldType::Dimension,
            ),
            (
                "metricFieldSpecs",
                &self.metric_field_specs,
                FieldType::Metric,
            ),
            (
                "dateTimeFieldSpecs",
                &self.date_time_field_specs,
                FieldType::DateTime,
            ),
            (
                "complexFieldSpecs",
                &self.complex_field_specs,
                FieldType::Complex,
            ),
        ] {
            for (i, f) in list.iter().enumerate() {
                out.push((format!("$.{key}[{i}]"), ft, f));
            }
        }
        out
    }

    /// Checks what Pinot checks: a name without `__`, unique column names, allowed types per
    /// kind, single-valued date-times, parsable formats and default values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.schema_name.trim().is_empty() {
            return Err(ConfigError::new(
                "$.schemaName",
                "schema name must not be empty: expected the raw table name, e.g. \"transcript\"",
            ));
        }
        if self.schema_name.contains("__") {
            return Err(ConfigError::new(
                "$.schemaName",
                format!(
                    "schema name '{}' must not contain double underscore ('__')",
                    self.schema_name
                ),
            ));
        }
        self.columns().map(|_| ())
    }

    /// The engine's view of the columns. Fails on duplicate names, disallowed types, bad
    /// date-time formats and default values that do not convert.
    pub fn columns(&self) -> Result<Vec<Column>, ConfigError> {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut out = Vec::new();
        for (path, ft, spec) in self.specs() {
            check_column_name(&path, &spec.name)?;
            if let Some(first) = seen.insert(spec.name.clone(), path.clone()) {
                return Err(ConfigError::new(
                    format!("{path}.name"),
                    format!(
                        "duplicate column '{}' (first defined at {first}): expected column names to be unique across all field specs",
                        spec.name
                    ),
                ));
            }
            check_type_allowed(&path, ft, spec.data_type)?;
            let mut format = None;
            if ft == FieldType::DateTime {
                if !spec.single_value_field {
                    return Err(ConfigError::new(
                        format!("{path}.singleValueField"),
                        "a dateTime field must be single-valued: expected singleValueField true",
                    ));
                }
                let fmt = spec.format.as_deref().ok_or_else(|| {
                    ConfigError::new(
                        format!("{path}.format"),
                        "format is required for a dateTime field: expected e.g. 1:MILLISECONDS:EPOCH",
                    )
                })?;
                let parsed = DateTimeFormat::parse(fmt)
                    .map_err(|m| ConfigError::new(format!("{path}.format"), m))?;
                if let TimeFormat::SimpleDateFormat { pattern, .. } = &parsed.kind {
                    validate_sdf_pattern(pattern)
                        .map_err(|m| ConfigError::new(format!("{path}.format"), m))?;
                }
                let gran = spec.granularity.as_deref().ok_or_else(|| {
                    ConfigError::new(
                        format!("{path}.granularity"),
                        "granularity is required for a dateTime field: expected e.g. 1:MILLISECONDS",
                    )
                })?;
                Granularity::parse(gran)
                    .map_err(|m| ConfigError::new(format!("{path}.granularity"), m))?;
                format = Some(if spec.data_type == DataType::Timestamp {
                    DateTimeFormat::timestamp()
                } else {
                    parsed
                });
            }
            let default_null = match &spec.default_null_value {
                None => pinot_default_null(spec.data_type, ft),
                Some(v) => convert_default(spec.data_type, v)
                    .map_err(|m| ConfigError::new(format!("{path}.defaultNullValue"), m))?,
            };
            out.push(Column {
                name: spec.name.clone(),
                data_type: spec.data_type,
                field_type: ft,
                single_value: spec.single_value_field,
                default_null,
                format,
                nullable: self.enable_column_based_null_handling
                    && spec.single_value_field
                    && !spec
                        .extra
                        .get("notNull")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
            });
        }
        if let Some(tfs) = &self.time_field_spec {
            let path = "$.timeFieldSpec".to_string();
            let inc = &tfs.incoming_granularity_spec;
            if let Some(out) = &tfs.outgoing_granularity_spec {
                if out != inc {
                    if out.name == inc.name {
                        return Err(ConfigError::new(
                            format!("{path}.outgoingGranularitySpec.name"),
                            format!(
                                "cannot convert the incoming time column '{}' to an outgoing spec of the same name: expected a different outgoing column name",
                                inc.name
                            ),
                        ));
                    }
                    let is_epoch = |g: &TimeGranularitySpec| {
                        g.time_format
                            .as_deref()
                            .is_none_or(|f| f.eq_ignore_ascii_case("EPOCH"))
                    };
                    if !is_epoch(inc) || !is_epoch(out) {
                        return Err(ConfigError::new(
                            format!("{path}.outgoingGranularitySpec.timeFormat"),
                            "time conversion is only supported between EPOCH formats: expected timeFormat EPOCH on both granularity specs",
                        ));
                    }
                }
            }
            let (g, gpath) = match &tfs.outgoing_granularity_spec {
                Some(out) => (out, format!("{path}.outgoingGranularitySpec")),
                None => (inc, format!("{path}.incomingGranularitySpec")),
            };
            check_column_name(&gpath, &g.name)?;
            if let Some(first) = seen.insert(g.name.clone(), gpath.clone()) {
                return Err(ConfigError::new(
                    format!("{gpath}.name"),
                    format!(
                        "duplicate column '{}' (first defined at {first}): expected column names to be unique across all field specs",
                        g.name
                    ),
                ));
            }
            check_type_allowed(&gpath, FieldType::Time, g.data_type)?;
            let unit = g.time_type.clone().unwrap_or_else(|| "MILLISECONDS".into());
            let size = g.time_unit_size.unwrap_or(1);
            let fmt_text = match g.time_format.as_deref() {
                None | Some("EPOCH") => format!("{size}:{unit}:EPOCH"),
                Some(other) => format!("{size}:{unit}:{other}"),
            };
            let format =
                DateTimeFormat::parse(&fmt_text).map_err(|m| ConfigError::new(gpath.clone(), m))?;
            let default_null = match &tfs.default_null_value {
                None => pinot_default_null(g.data_type, FieldType::Time),
                Some(v) => convert_default(g.data_type, v)
                    .map_err(|m| ConfigError::new(format!("{path}.defaultNullValue"), m))?,
            };
            out.push(Column {
                name: g.name.clone(),
                data_type: g.data_type,
                field_type: FieldType::Time,
                single_value: true,
                default_null,
                format: Some(format),
                nullable: self.enable_column_based_null_handling,
            });
        }
        for (i, pk) in self.primary_key_columns.iter().enumerate() {
            if !seen.contains_key(pk) {
                return Err(ConfigError::new(
                    format!("$.primaryKeyColumns[{i}]"),
                    format!(
                        "primary key column '{pk}' is not a column of schema '{}': expected one of its columns",
                        self.schema_name
                    ),
                ));
            }
        }
        Ok(out)
    }

    /// Whether `name` is a date-time column or the legacy time column: what Pinot accepts as
    /// `segmentsConfig.timeColumnName`.
    pub fn is_time_column(&self, name: &str) -> bool {
        self.date_time_field_specs.iter().any(|f| f.name == name)
            || self.time_field_spec.as_ref().is_some_and(|t| {
                t.outgoing_granularity_spec
                    .as_ref()
                    .unwrap_or(&t.incoming_granularity_spec)
                    .name
                    == name
            })
    }

    /// The field spec of a column with its kind (legacy time columns are not included).
    pub fn field_spec(&self, name: &str) -> Option<(FieldType, &FieldSpec)> {
        self.specs()
            .into_iter()
            .find(|(_, _, f)| f.name == name)
            .map(|(_, ft, f)| (ft, f))
    }

    /// Whether a column is single-valued (unknown columns count as single-valued).
    pub fn is_single_value(&self, name: &str) -> bool {
        self.field_spec(name)
            .is_none_or(|(_, f)| f.single_value_field)
    }

    /// The data type of a column, including the legacy time column.
    pub fn data_type_of(&self, name: &str) -> Option<DataType> {
        if let Some((_, f)) = self.field_spec(name) {
            return Some(f.data_type);
        }
        let t = self.time_field_spec.as_ref()?;
        let g = t
            .outgoing_granularity_spec
            .as_ref()
            .unwrap_or(&t.incoming_granularity_spec);
        (g.name == name).then_some(g.data_type)
    }

    /// Whether the schema has a column of that name.
    pub fn has_column(&self, name: &str) -> bool {
        self.specs().iter().any(|(_, _, f)| f.name == name)
            || self.time_field_spec.as_ref().is_some_and(|t| {
                t.incoming_granularity_spec.name == name
                    || t.outgoing_granularity_spec
                        .as_ref()
                        .is_some_and(|o| o.name == name)
            })
    }

    /// Keys Pinot would not recognise, by JSON path (Pinot's `unrecognizedProperties`).
    pub fn unrecognized(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        collect_unknown("$", &self.extra, SCHEMA_KNOWN_KEYS, &mut out);
        for (path, _, spec) in self.specs() {
            collect_unknown(&path, &spec.extra, FIELD_KNOWN_KEYS, &mut out);
        }
        out
    }
}

/// Pinot's column-name rule: not empty, no whitespace.
fn check_column_name(path: &str, name: &str) -> Result<(), ConfigError> {
    if name.trim().is_empty() {
        return Err(ConfigError::new(
            format!("{path}.name"),
            "column name must not be empty: expected a name such as \"userId\"",
        ));
    }
    if name.chars().any(char::is_whitespace) {
        return Err(ConfigError::new(
            format!("{path}.name"),
            format!("column name '{name}' must not contain whitespace"),
        ));
    }
    Ok(())
}

/// Adds keys of `extra` not in `known` to `out` under `prefix.key`.
pub(crate) fn collect_unknown(
    prefix: &str,
    extra: &Map<String, Value>,
    known: &[&str],
    out: &mut BTreeMap<String, Value>,
) {
    for (k, v) in extra {
        if !known.contains(&k.as_str()) {
            out.insert(format!("{prefix}.{k}"), v.clone());
        }
    }
}

fn check_type_allowed(path: &str, ft: FieldType, dt: DataType) -> Result<(), ConfigError> {
    let ok = match ft {
        FieldType::Dimension | FieldType::Time | FieldType::DateTime => !dt.is_complex(),
        FieldType::Metric => matches!(
            dt,
            DataType::Int
                | DataType::Long
                | DataType::Float
                | DataType::Double
                | DataType::BigDecimal
                | DataType::Bytes
        ),
        FieldType::Complex => dt.is_complex(),
    };
    if ok {
        Ok(())
    } else {
        let allowed = match ft {
            FieldType::Metric => "INT, LONG, FLOAT, DOUBLE, BIG_DECIMAL, BYTES",
            FieldType::Complex => "MAP, LIST, STRUCT, OPEN_STRUCT",
            _ => "INT, LONG, FLOAT, DOUBLE, BIG_DECIMAL, BOOLEAN, TIMESTAMP, STRING, JSON, BYTES, UUID",
        };
        let kind = match ft {
            FieldType::Dimension => "dimension",
            FieldType::Metric => "metric",
            FieldType::Time => "time",
            FieldType::DateTime => "date-time",
            FieldType::Complex => "complex",
        };
        Err(ConfigError::new(
            format!("{path}.dataType"),
            format!(
                "data type {} is not allowed for a {kind} field: expected one of {}",
                dt.name(),
                allowed
            ),
        ))
    }
}

/// Pinot's default null value for a type and field kind.
pub fn pinot_default_null(dt: DataType, ft: FieldType) -> DefaultValue {
    let metric = ft == FieldType::Metric;
    match dt {
        DataType::Int => DefaultValue::Int(if metric { 0 } else { i32::MIN }),
        DataType::Long => DefaultValue::Long(if metric { 0 } else { i64::MIN }),
        DataType::Float => DefaultValue::Float(if metric { 0.0 } else { f32::NEG_INFINITY }),
        DataType::Double => DefaultValue::Double(if metric { 0.0 } else { f64::NEG_INFINITY }),
        DataType::BigDecimal => DefaultValue::String("0".into()),
        DataType::Boolean => DefaultValue::Boolean(false),
        DataType::Timestamp => DefaultValue::Long(0),
        DataType::String | DataType::Json => DefaultValue::String("null".into()),
        DataType::Bytes => DefaultValue::Bytes(Vec::new()),
        DataType::Uuid => DefaultValue::String("00000000-0000-0000-0000-000000000000".into()),
        DataType::Map | DataType::Struct | DataType::OpenStruct => {
            DefaultValue::String("{}".into())
        }
        DataType::List => DefaultValue::String("[]".into()),
    }
}

/// Converts a `defaultNullValue` (a JSON value or a string) to the column type.
pub fn convert_default(dt: DataType, v: &Value) -> Result<DefaultValue, String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => {
            return Err(format!(
                "expected a scalar default value for {}, got {other}",
                dt.name()
            ))
        }
    };
    let bad = || {
        format!(
            "default null value '{text}' cannot be converted to {}: expected {}",
            dt.name(),
            expected_literal(dt)
        )
    };
    Ok(match dt {
        DataType::Int => DefaultValue::Int(parse_int_like(&text).ok_or_else(bad)?),
        DataType::Long => DefaultValue::Long(parse_long_like(&text).ok_or_else(bad)?),
        DataType::Timestamp => DefaultValue::Long(
            parse_long_like(&text)
                .or_else(|| parse_timestamp_millis(&text))
                .ok_or_else(bad)?,
        ),
        DataType::Float => DefaultValue::Float(text.trim().parse().map_err(|_| bad())?),
        DataType::Double => DefaultValue::Double(text.trim().parse().map_err(|_| bad())?),
        DataType::Boolean => DefaultValue::Boolean(match text.trim() {
            t if t.eq_ignore_ascii_case("true") || t == "1" => true,
            t if t.eq_ignore_ascii_case("false") || t == "0" => false,
            _ => return Err(bad()),
        }),
        DataType::Bytes => DefaultValue::Bytes(hex_decode(&text).ok_or_else(bad)?),
        DataType::BigDecimal => {
            if !is_java_big_decimal(text.trim()) {
                return Err(bad());
            }
            DefaultValue::String(text.trim().to_string())
        }
        DataType::Uuid => {
            if !is_uuid(text.trim()) {
                return Err(bad());
            }
            DefaultValue::String(text.trim().to_ascii_lowercase())
        }
        _ => DefaultValue::String(text),
    })
}

/// What a default value of a type looks like, for messages.
fn expected_literal(dt: DataType) -> &'static str {
    match dt {
        DataType::Int => "a whole number from -2147483648 to 2147483647",
        DataType::Long => "a whole number (64-bit)",
        DataType::Float | DataType::Double => "a number such as 0 or -1.5",
        DataType::BigDecimal => "a decimal number such as 0 or 12.50",
        DataType::Boolean => "true, false, 1 or 0",
        DataType::Timestamp => "epoch milliseconds or a time such as 2024-01-01 00:00:00",
        DataType::Bytes => "hex digits such as 00ff",
        DataType::Uuid => "a UUID such as 00000000-0000-0000-0000-000000000000",
        _ => "a string",
    }
}

/// Java `BigDecimal(String)` syntax: sign, digits with an optional point, optional exponent.
fn is_java_big_decimal(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exp_ok
}

/// Canonical 8-4-4-4-12 hex UUID text.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn parse_int_like(s: &str) -> Option<i32> {
    let s = s.trim();
    s.parse::<i32>().ok().or_else(|| {
        let f: f64 = s.parse().ok()?;
        (f.fract() == 0.0 && f >= i32::MIN as f64 && f <= i32::MAX as f64).then_some(f as i32)
    })
}

fn parse_long_like(s: &str) -> Option<i64> {
    let s = s.trim();
    s.parse::<i64>().ok().or_else(|| {
        let f: f64 = s.parse().ok()?;
        (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64)
    })
}

pub use riffle_common::hex_decode;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_schema_defaults_and_types() {
        let s = Schema::from_json(
            br#"{"schemaName":"t","dimensionFieldSpecs":[{"name":"a","dataType":"INT"},
            {"name":"tags","dataType":"STRING","singleValueField":false}],
            "metricFieldSpecs":[{"name":"m","dataType":"DOUBLE"}],
            "dateTimeFieldSpecs":[{"name":"ts","dataType":"LONG","format":"1:MILLISECONDS:EPOCH","granularity":"1:MILLISECONDS"}],
            "surprise": 1}"#,
        )
        .expect("should parse");
        let cols = s.columns().expect("should parse");
        assert_eq!(cols[0].default_null, DefaultValue::Int(i32::MIN));
        assert!(!cols[1].single_value);
        assert_eq!(cols[2].default_null, DefaultValue::Double(0.0));
        assert_eq!(cols[3].field_type, FieldType::DateTime);
        assert!(s.unrecognized().contains_key("$.surprise"));
        // Round trip keeps the unknown key.
        assert_eq!(s.to_json()["surprise"], 1);
    }

    #[test]
    fn test_schema_errors_name_the_path() {
        let e = Schema::from_json(
            br#"{"schemaName":"t","dimensionFieldSpecs":[{"name":"a","dataType":"INTEGER"}]}"#,
        )
        .expect_err("should be rejected");
        assert!(
            e.path.starts_with("$.dimensionFieldSpecs[0].dataType"),
            "{e}"
        );
        let e = Schema::from_json(
            br#"{"schemaName":"t","dimensionFieldSpecs":[{"name":"a","dataType":"INT"}],"metricFieldSpecs":[{"name":"a","dataType":"INT"}]}"#,
        )
        .expect_err("should be rejected");
        assert_eq!(e.path, "$.metricFieldSpecs[0].name");
    }
}
