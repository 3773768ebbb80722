//! Pinot's broker response (`BrokerResponseNative`): the JSON shape, key order, statistics
//! and value encodings of PINOT-SPEC §6.2.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, TimeUnit};
use arrow::record_batch::RecordBatch;
use riffle_common::{format_pinot_timestamp, ErrorKind};
use riffle_segment::PINOT_TYPE_KEY;
use serde_json::{json, Map, Number, Value};

/// Statistics of one query; every field is always present in the response.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryStats {
    /// Docs that matched the filter and were read.
    pub num_docs_scanned: u64,
    /// Docs in all queried segments.
    pub total_docs: u64,
    /// Entries read to evaluate filters.
    pub num_entries_scanned_in_filter: u64,
    /// Entries read after filtering.
    pub num_entries_scanned_post_filter: u64,
    /// Segments of the queried tables.
    pub num_segments_queried: u64,
    /// Segments read.
    pub num_segments_processed: u64,
    /// Segments with at least one matching doc.
    pub num_segments_matched: u64,
    /// Consuming segments queried.
    pub num_consuming_segments_queried: u64,
    /// Consuming segments read.
    pub num_consuming_segments_processed: u64,
    /// Consuming segments with a match.
    pub num_consuming_segments_matched: u64,
    /// Segments skipped before reading (empty, or pruned by time / min-max).
    pub num_segments_pruned_by_server: u64,
    /// Min over consuming segments of the latest ingested event time; 0 if none.
    pub min_consuming_freshness_time_ms: i64,
}

/// A query result or error, ready to serialise in Pinot's shape.
#[derive(Clone, Debug, Default)]
pub struct BrokerResponse {
    /// Column names.
    pub column_names: Vec<String>,
    /// Pinot column types.
    pub column_types: Vec<String>,
    /// Rows of JSON values.
    pub rows: Vec<Vec<Value>>,
    /// Whether there is a result table.
    pub has_result: bool,
    /// Errors as (kind, message); the kind gives the Pinot code and the HTTP status.
    pub exceptions: Vec<(ErrorKind, String)>,
    /// Statistics.
    pub stats: QueryStats,
    /// Wall time.
    pub time_used_ms: u64,
    /// Request id.
    pub request_id: u64,
    /// Tables named in the query.
    pub tables_queried: Vec<String>,
    /// Broker id.
    pub broker_id: String,
}

impl BrokerResponse {
    /// A response holding one error.
    pub fn error(kind: ErrorKind, detail: &str) -> BrokerResponse {
        let name = kind.pinot_name();
        let message = if detail.is_empty() {
            name.to_string()
        } else if name.is_empty() {
            detail.to_string()
        } else {
            format!("{name}: {detail}")
        };
        BrokerResponse {
            exceptions: vec![(kind, message)],
            ..Default::default()
        }
    }

    /// The first exception's kind, if any.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.exceptions.first().map(|e| e.0)
    }

    /// The first exception's Pinot code, or -1 (the `X-Pinot-Error-Code` header).
    pub fn error_code(&self) -> i32 {
        self.error_kind().map_or(-1, |k| k.pinot_code())
    }

    /// The response JSON, keys in Pinot's order.
    pub fn to_json(&self) -> Value {
        let s = &self.stats;
        let mut m = Map::new();
        if self.has_result {
            m.insert(
                "resultTable".into(),
                json!({
                    "dataSchema": {"columnNames": self.column_names, "columnDataTypes": self.column_types},
                    "rows": self.rows,
                }),
            );
        }
        let partial = !self.exceptions.is_empty();
        m.insert("numRowsResultSet".into(), json!(self.rows.len()));
        m.insert("partialResult".into(), json!(partial));
        m.insert(
            "exceptions".into(),
            Value::Array(
                self.exceptions
                    .iter()
                    .map(|(k, msg)| json!({"errorCode": k.pinot_code(), "message": msg}))
                    .collect(),
            ),
        );
        for k in [
            "numGroupsLimitReached",
            "numGroupsWarningLimitReached",
            "maxRowsInDistinctReached",
            "maxRowsWithoutChangeInDistinctReached",
            "maxExecutionTimeInDistinctReached",
        ] {
            m.insert(k.into(), json!(false));
        }
        m.insert("timeUsedMs".into(), json!(self.time_used_ms));
        m.insert("requestId".into(), json!(self.request_id.to_string()));
        m.insert("clientRequestId".into(), Value::Null);
        m.insert("brokerId".into(), json!(self.broker_id));
        m.insert("numDocsScanned".into(), json!(s.num_docs_scanned));
        m.insert("totalDocs".into(), json!(s.total_docs));
        m.insert(
            "numEntriesScannedInFilter".into(),
            json!(s.num_entries_scanned_in_filter),
        );
        m.insert(
            "numEntriesScannedPostFilter".into(),
            json!(s.num_entries_scanned_post_filter),
        );
        m.insert("numServersQueried".into(), json!(1));
        m.insert("numServersResponded".into(), json!(1));
        m.insert("numSegmentsQueried".into(), json!(s.num_segments_queried));
        m.insert(
            "numSegmentsProcessed".into(),
            json!(s.num_segments_processed),
        );
        m.insert("numSegmentsMatched".into(), json!(s.num_segments_matched));
        m.insert(
            "numConsumingSegmentsQueried".into(),
            json!(s.num_consuming_segments_queried),
        );
        m.insert(
            "numConsumingSegmentsProcessed".into(),
            json!(s.num_consuming_segments_processed),
        );
        m.insert(
            "numConsumingSegmentsMatched".into(),
            json!(s.num_consuming_segments_matched),
        );
        m.insert(
            "minConsumingFreshnessTimeMs".into(),
            json!(s.min_consuming_freshness_time_ms),
        );
        m.insert("numSegmentsPrunedByBroker".into(), json!(0));
        m.insert(
            "numSegmentsPrunedByServer".into(),
            json!(s.num_segments_pruned_by_server),
        );
        for k in [
            "numSegmentsPrunedInvalid",
            "numSegmentsPrunedByLimit",
            "numSegmentsPrunedByValue",
            "brokerReduceTimeMs",
            "offlineThreadCpuTimeNs",
            "realtimeThreadCpuTimeNs",
            "offlineSystemActivitiesCpuTimeNs",
            "realtimeSystemActivitiesCpuTimeNs",
            "offlineResponseSerializationCpuTimeNs",
            "realtimeResponseSerializationCpuTimeNs",
            "offlineTotalCpuTimeNs",
            "realtimeTotalCpuTimeNs",
            "explainPlanNumEmptyFilterSegments",
            "explainPlanNumMatchAllFilterSegments",
        ] {
            m.insert(k.into(), json!(0));
        }
        m.insert("traceInfo".into(), json!({}));
        m.insert("tablesQueried".into(), json!(self.tables_queried));
        for k in [
            "offlineThreadMemAllocatedBytes",
            "realtimeThreadMemAllocatedBytes",
            "offlineResponseSerMemAllocatedBytes",
            "realtimeResponseSerMemAllocatedBytes",
            "offlineTotalMemAllocatedBytes",
            "realtimeTotalMemAllocatedBytes",
        ] {
            m.insert(k.into(), json!(0));
        }
        m.insert("pools".into(), json!([]));
        m.insert("rlsFiltersApplied".into(), json!(false));
        m.insert("groupsTrimmed".into(), json!(false));
        Value::Object(m)
    }
}

/// Pinot's type name for a result column.
pub fn pinot_type(field: &Field) -> String {
    if let Some(t) = field.metadata().get(PINOT_TYPE_KEY) {
        // Plain column references keep the schema's type (JSON, BIG_DECIMAL, UUID ...), when
        // the storage type still matches.
        let base = scalar_type_name(field.data_type());
        let stored_text = matches!(
            field.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        );
        if stored_text && matches!(t.as_str(), "JSON" | "BIG_DECIMAL" | "UUID") {
            return t.clone();
        }
        if let DataType::List(inner) = field.data_type() {
            if matches!(inner.data_type(), DataType::Utf8)
                && matches!(t.as_str(), "JSON" | "BIG_DECIMAL")
            {
                return format!("{t}_ARRAY");
            }
        }
        return base;
    }
    scalar_type_name(field.data_type())
}

fn scalar_type_name(dt: &DataType) -> String {
    match dt {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
            "INT".into()
        }
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "LONG".into(),
        DataType::Float16 | DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => "BIG_DECIMAL".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => "TIMESTAMP".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "BYTES".into(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            format!("{}_ARRAY", scalar_type_name(f.data_type()))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Null => "UNKNOWN".into(),
        DataType::Map(_, _) => "MAP".into(),
        _ => "OBJECT".into(),
    }
}

fn float_value(v: f64) -> Value {
    match Number::from_f64(v) {
        Some(n) => Value::Number(n),
        // JSON has no infinities: Pinot's Jackson writes them as bare tokens, which strict
        // parsers reject; we write Java's text instead.
        None if v.is_nan() => Value::String("NaN".into()),
        None if v > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// One value of an array as Pinot writes it.
pub fn value_at(a: &ArrayRef, i: usize) -> Value {
    if a.is_null(i) {
        return Value::Null;
    }
    use arrow::datatypes as t;
    match a.data_type() {
        DataType::Boolean => json!(a.as_boolean().value(i)),
        DataType::Int8 => json!(a.as_primitive::<t::Int8Type>().value(i)),
        DataType::Int16 => json!(a.as_primitive::<t::Int16Type>().value(i)),
        DataType::Int32 => json!(a.as_primitive::<t::Int32Type>().value(i)),
        DataType::Int64 => json!(a.as_primitive::<t::Int64Type>().value(i)),
        DataType::UInt8 => json!(a.as_primitive::<t::UInt8Type>().value(i)),
        DataType::UInt16 => json!(a.as_primitive::<t::UInt16Type>().value(i)),
        DataType::UInt32 => json!(a.as_primitive::<t::UInt32Type>().value(i)),
        DataType::UInt64 => json!(a.as_primitive::<t::UInt64Type>().value(i)),
        DataType::Float32 => {
            // The shortest text of the f32 (3.8, not 3.799999952316284), as Pinot writes it.
            let f = a.as_primitive::<t::Float32Type>().value(i);
            float_value(f.to_string().parse::<f64>().unwrap_or(f as f64))
        }
        DataType::Float64 => float_value(a.as_primitive::<t::Float64Type>().value(i)),
        DataType::Utf8 => json!(a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => json!(a.as_string::<i64>().value(i)),
        DataType::Utf8View => json!(a.as_string_view().value(i)),
        DataType::Binary => json!(riffle_common::hex_encode(a.as_binary::<i32>().value(i))),
        DataType::LargeBinary => json!(riffle_common::hex_encode(a.as_binary::<i64>().value(i))),
        DataType::BinaryView => json!(riffle_common::hex_encode(a.as_binary_view().value(i))),
        DataType::Timestamp(unit, _) => {
            let raw = match unit {
                TimeUnit::Second => a.as_primitive::<t::TimestampSecondType>().value(i) * 1000,
                TimeUnit::Millisecond => a.as_primitive::<t::TimestampMillisecondType>().value(i),
                TimeUnit::Microsecond => {
                    a.as_primitive::<t::TimestampMicrosecondType>().value(i) / 1000
                }
                TimeUnit::Nanosecond => {
                    a.as_primitive::<t::TimestampNanosecondType>().value(i) / 1_000_000
                }
            };
            json!(format_pinot_timestamp(raw))
        }
        DataType::Date32 => {
            json!(format_pinot_timestamp(
                a.as_primitive::<t::Date32Type>().value(i) as i64 * 86_400_000
            ))
        }
        DataType::Date64 => json!(format_pinot_timestamp(
            a.as_primitive::<t::Date64Type>().value(i)
        )),
        DataType::List(_) => {
            let l = a.as_list::<i32>().value(i);
            Value::Array((0..l.len()).map(|j| value_at(&l, j)).collect())
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>().value(i);
            Value::Array((0..l.len()).map(|j| value_at(&l, j)).collect())
        }
        _ => match arrow::util::display::array_value_to_string(a, i) {
            Ok(s) => Value::String(s),
            Err(_) => Value::Null,
        },
    }
}

/// Rows of record batches as JSON values.
pub fn rows_of(batches: &[RecordBatch]) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            rows.push(b.columns().iter().map(|c| value_at(c, r)).collect());
        }
    }
    rows
}
