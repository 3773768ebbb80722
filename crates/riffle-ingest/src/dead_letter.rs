//! The dead-letter table (`riffle.deadLetter.enabled` on a stream): each message that fails
//! to decode or transform becomes a row of `<table>_deadLetter` instead of only a count.
//!
//! Exactly-once like the data beside it: a consuming segment's dead letters live in a
//! consuming segment of their own (same name, published before the batch's rows and
//! offset), are frozen with it, and are committed in the same catalog transaction as the
//! data segment (as a JSON array under the segment's name). After a crash the data
//! segment's messages are read again, and so are its failures: nothing lost, nothing twice.
//! Committed dead letters are handed back by the controller when the table is hosted.
//!
//! Columns (the table `<raw table>_deadLetter`):
//!
//! | column | type | |
//! | --- | --- | --- |
//! | `sourceTable` | STRING | the table with its type (`events_REALTIME`) |
//! | `streamPartition` | INT | the partition (table-wide id) |
//! | `streamOffset` | STRING | the message's offset |
//! | `messageKey` | BYTES | the message key (cut at `riffle.deadLetter.maxValueBytes`) |
//! | `messageValue` | BYTES | the raw message (cut likewise) |
//! | `errorMessage` | STRING | what failed, naming the column and value where known |
//! | `failedAt` | TIMESTAMP | when it failed |
//!
//! Bounded: at most `riffle.deadLetter.maxPerSegment` per segment (more are only counted)
//! and kept `riffle.deadLetter.retention` (7 days by default).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, Int32Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::record_batch::RecordBatch;
use riffle_config::{DeadLetterConfig, Schema};
use riffle_segment::TableColumns;
use riffle_stream::StreamMessage;
use serde::{Deserialize, Serialize};

/// The dead-letter table of `raw`.
pub fn dead_letter_table(raw: &str) -> String {
    format!("{raw}_deadLetter")
}

const SCHEMA: &str = r#"{"schemaName":"deadLetter",
 "dimensionFieldSpecs":[{"name":"sourceTable","dataType":"STRING"},{"name":"streamPartition","dataType":"INT"},
  {"name":"streamOffset","dataType":"STRING"},{"name":"messageKey","dataType":"BYTES"},
  {"name":"messageValue","dataType":"BYTES"},{"name":"errorMessage","dataType":"STRING"}],
 "dateTimeFieldSpecs":[{"name":"failedAt","dataType":"TIMESTAMP","format":"1:MILLISECONDS:EPOCH","granularity":"1:MILLISECONDS"}]}"#;

/// The dead-letter table's columns.
pub fn dead_letter_columns() -> Arc<TableColumns> {
    // The schema is a constant of this file, parsed by the test below.
    let columns = Schema::from_json(SCHEMA.as_bytes())
        .and_then(|s| s.columns())
        .unwrap_or_default();
    TableColumns::new(columns)
}

/// One failed message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The table with its type.
    pub table: String,
    /// Table-wide partition id.
    pub partition: u32,
    /// The message's offset.
    pub offset: String,
    /// Its key (hex), cut at the configured size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Its value (hex), cut at the configured size.
    pub value: String,
    /// What failed.
    pub error: String,
    /// When (epoch ms).
    pub time_ms: i64,
}

impl DeadLetter {
    /// A dead letter for `msg`.
    pub fn new(
        table: &str,
        partition: u32,
        msg: &StreamMessage,
        error: &str,
        now_ms: i64,
        cfg: &DeadLetterConfig,
    ) -> DeadLetter {
        let cut = |b: &[u8]| -> (String, bool) {
            let n = b.len().min(cfg.max_value_bytes);
            (riffle_common::hex_encode(&b[..n]), n < b.len())
        };
        let (value, value_cut) = cut(&msg.value);
        let key = msg.key.as_ref().map(|k| cut(k));
        let mut error = error.to_string();
        if value_cut || key.as_ref().is_some_and(|k| k.1) {
            error.push_str(&format!(
                " (the message is cut at {} bytes here; it is {} bytes)",
                cfg.max_value_bytes,
                msg.value.len()
            ));
        }
        DeadLetter {
            table: table.to_string(),
            partition,
            offset: msg.offset.to_string(),
            key: key.map(|k| k.0),
            value,
            error,
            time_ms: now_ms,
        }
    }
}

/// Dead letters as rows of the dead-letter table.
pub fn to_batch(columns: &TableColumns, letters: &[DeadLetter]) -> Result<RecordBatch, String> {
    let n = letters.len();
    let mut table = StringBuilder::with_capacity(n, n * 16);
    let mut partition = Int32Builder::with_capacity(n);
    let mut offset = StringBuilder::with_capacity(n, n * 8);
    let mut key = BinaryBuilder::with_capacity(n, n * 8);
    let mut value = BinaryBuilder::with_capacity(n, n * 64);
    let mut error = StringBuilder::with_capacity(n, n * 64);
    let mut time = TimestampMillisecondBuilder::with_capacity(n);
    for d in letters {
        table.append_value(&d.table);
        partition.append_value(d.partition.min(i32::MAX as u32) as i32);
        offset.append_value(&d.offset);
        key.append_value(
            d.key
                .as_deref()
                .and_then(riffle_common::hex_decode)
                .unwrap_or_default(),
        );
        value.append_value(riffle_common::hex_decode(&d.value).unwrap_or_default());
        error.append_value(&d.error);
        time.append_value(d.time_ms);
    }
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(table.finish()),
        Arc::new(partition.finish()),
        Arc::new(offset.finish()),
        Arc::new(key.finish()),
        Arc::new(value.finish()),
        Arc::new(error.finish()),
        Arc::new(time.finish()),
    ];
    RecordBatch::try_new(columns.arrow.clone(), arrays).map_err(|e| format!("dead letters: {e}"))
}

/// Rows of the dead-letter table back as dead letters (to commit them).
pub fn from_batches(batches: &[RecordBatch]) -> Vec<DeadLetter> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int32Type, TimestampMillisecondType};
    let mut out = Vec::new();
    for b in batches {
        if b.num_columns() < 7 {
            continue;
        }
        let (Some(table), Some(offset), Some(error)) = (
            b.column(0).as_string_opt::<i32>(),
            b.column(2).as_string_opt::<i32>(),
            b.column(5).as_string_opt::<i32>(),
        ) else {
            continue;
        };
        let (Some(partition), Some(key), Some(value), Some(time)) = (
            b.column(1).as_primitive_opt::<Int32Type>(),
            b.column(3).as_binary_opt::<i32>(),
            b.column(4).as_binary_opt::<i32>(),
            b.column(6).as_primitive_opt::<TimestampMillisecondType>(),
        ) else {
            continue;
        };
        for r in 0..b.num_rows() {
            out.push(DeadLetter {
                table: table.value(r).to_string(),
                partition: partition.value(r).max(0) as u32,
                offset: offset.value(r).to_string(),
                key: (!key.is_null(r) && !key.value(r).is_empty())
                    .then(|| riffle_common::hex_encode(key.value(r))),
                value: riffle_common::hex_encode(value.value(r)),
                error: error.value(r).to_string(),
                time_ms: time.value(r),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use riffle_common::StreamOffset;

    #[test]
    fn rows_round_trip_and_values_are_cut() {
        let cols = dead_letter_columns();
        assert_eq!(cols.columns.len(), 7);
        let cfg = DeadLetterConfig {
            retention_ms: 1,
            max_per_segment: 10,
            max_value_bytes: 4,
        };
        let msg = StreamMessage {
            key: Some(Bytes::from_static(b"k")),
            value: Bytes::from_static(b"{bad json"),
            headers: vec![],
            offset: StreamOffset::Long(42),
            next_offset: StreamOffset::Long(43),
            timestamp_ms: None,
        };
        let d = DeadLetter::new("t_REALTIME", 3, &msg, "expected value", 7, &cfg);
        assert_eq!(d.value, riffle_common::hex_encode(b"{bad"));
        assert!(
            d.error.contains("cut at 4 bytes") && d.error.contains("9 bytes"),
            "{}",
            d.error
        );
        let b = to_batch(&cols, std::slice::from_ref(&d)).unwrap();
        assert_eq!(from_batches(&[b]), [d]);
    }
}
