//! Parsing and validation never panic: every example file is mutated at every position with
//! odd values, and truncated at many byte offsets; every outcome must be `Ok` or a
//! `ConfigError` with a `$`-rooted path.

#![allow(clippy::unwrap_used)]

use std::panic::{catch_unwind, AssertUnwindSafe};

use riffle_config::{OffsetCriteria, Schema, StreamConfig, TableConfig};
use serde_json::{json, Value};

const SCHEMAS: &[&str] = &[
    "examples/transcript/transcript_schema.json",
    "examples/events/events_schema.json",
    "testdata/airline/airlineStats_schema.json",
];
const TABLES: &[(&str, &str)] = &[
    (
        "examples/transcript/transcript_schema.json",
        "examples/transcript/transcript_realtime_table_config.json",
    ),
    (
        "examples/events/events_schema.json",
        "examples/events/events_realtime_table_config.json",
    ),
    (
        "testdata/airline/airlineStats_schema.json",
        "testdata/airline/airlineStats_realtime_table_config.json",
    ),
];

fn read(rel: &str) -> Vec<u8> {
    let path = // The directory cargo runs the test in (a build reused from another checkout keeps
        // the compile-time path).
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()))
        .join("../..")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn odd_values() -> Vec<Value> {
    vec![
        Value::Null,
        json!(""),
        json!(" "),
        json!(-1),
        json!(0),
        json!("0"),
        json!(1e300),
        json!("99999999999999999999999"),
        json!("1e400"),
        json!("99999999999999999999d"),
        json!("-"),
        json!("1:"),
        json!(":"),
        json!("|"),
        json!("EPOCH|"),
        json!("SIMPLE_DATE_FORMAT| tz("),
        json!("1:DAYS:SIMPLE_DATE_FORMAT:'"),
        json!("__"),
        json!("ÿ€😀"),
        json!("5ÿ"),
        json!(true),
        json!([]),
        json!(["x", 1, null]),
        json!({}),
        json!({"a": {"b": []}}),
        json!("x".repeat(2000)),
    ]
}

/// Every path to a value inside `v` (object keys and array indexes).
fn paths(v: &Value, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                prefix.push(json!(k));
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                prefix.push(json!(i));
                paths(c, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn set(v: &mut Value, path: &[Value], new: Value) {
    let mut cur = v;
    for p in path {
        cur = match p {
            Value::String(k) => &mut cur[k.as_str()],
            Value::Number(n) => &mut cur[n.as_u64().unwrap_or_default() as usize],
            _ => return,
        };
    }
    *cur = new;
}

/// Runs everything the crate offers on the inputs; panics only if the crate panics.
fn exercise(schema: &[u8], table: Option<&[u8]>) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let s = Schema::from_json(schema);
        if let Err(e) = &s {
            assert!(e.path.starts_with('$'), "{e}");
        }
        if let Ok(s) = &s {
            let _ = s.columns();
            let _ = s.unrecognized();
            let _ = Schema::from_value(s.to_json());
        }
        if let Some(table) = table {
            match TableConfig::from_json(table) {
                Err(e) => assert!(e.path.starts_with('$'), "{e}"),
                Ok(t) => {
                    let _ = t.unrecognized();
                    let _ = TableConfig::from_value(&t.to_json());
                    let _ = t.streams();
                    let _ = t.replication();
                    if let Ok(s) = &s {
                        if let Err(e) = t.validate(s) {
                            assert!(e.path.starts_with('$'), "{e}");
                        }
                    }
                }
            }
        }
    }));
    if outcome.is_err() {
        panic!(
            "panicked on schema {} / table {}",
            String::from_utf8_lossy(schema),
            table.map(String::from_utf8_lossy).unwrap_or_default()
        );
    }
}

#[test]
fn test_mutated_schemas_never_panic() {
    for rel in SCHEMAS {
        let base: Value = serde_json::from_slice(&read(rel)).expect("json");
        let mut all = Vec::new();
        paths(&base, &mut Vec::new(), &mut all);
        // The airline schema is large: mutate its first specs and top level only.
        all.retain(|p| p.len() < 2 || p.get(1).and_then(Value::as_u64).is_none_or(|i| i < 3));
        for p in &all {
            for odd in odd_values() {
                let mut v = base.clone();
                set(&mut v, p, odd);
                exercise(&serde_json::to_vec(&v).expect("ser"), None);
            }
        }
    }
}

#[test]
fn test_mutated_table_configs_never_panic() {
    for (schema, table) in TABLES {
        let schema = read(schema);
        let base: Value = serde_json::from_slice(&read(table)).expect("json");
        let mut all = Vec::new();
        paths(&base, &mut Vec::new(), &mut all);
        for p in &all {
            for odd in odd_values() {
                let mut v = base.clone();
                set(&mut v, p, odd);
                exercise(&schema, Some(&serde_json::to_vec(&v).expect("ser")));
            }
        }
    }
}

#[test]
fn test_truncated_files_never_panic() {
    for (schema, table) in TABLES {
        let schema = read(schema);
        let table = read(table);
        for cut in (0..table.len()).step_by(7) {
            exercise(&schema, Some(&table[..cut]));
        }
        for cut in (0..schema.len()).step_by(97) {
            exercise(&schema[..cut], Some(&table));
        }
        exercise(b"", Some(b""));
        exercise(b"\xff\xfe", Some(b"null"));
        exercise(b"[]", Some(b"42"));
    }
}

#[test]
fn test_odd_stream_values_never_panic() {
    let keys = [
        "streamType",
        "stream.kafka.topic.name",
        "stream.kafka.decoder.class.name",
        "stream.kafka.consumer.factory.class.name",
        "stream.kafka.consumer.prop.auto.offset.reset",
        "stream.kafka.consumer.type",
        "stream.kafka.fetch.timeout.millis",
        "realtime.segment.flush.threshold.rows",
        "realtime.segment.flush.threshold.segment.rows",
        "realtime.segment.flush.threshold.time",
        "realtime.segment.flush.threshold.segment.size",
        "realtime.segment.flush.threshold.variance.fraction",
        "realtime.segment.flush.autotune.initialRows",
        "topic.consumption.rate.limit",
    ];
    let values = [
        "",
        " ",
        "-",
        "0",
        "-0",
        "+5",
        "2147483648",
        "1.5",
        "1e400",
        "NaN",
        "inf",
        "6h30m1h",
        "99999999999999999999d",
        "ÿ",
        "5ÿ",
        "B",
        "KB",
        "1.K",
        ".5M",
        "9999999999P",
        ":",
        "a:b:c",
        "highlevel,lowlevel",
        "2022-13-45T99:99:99Z",
    ];
    let base: StreamConfig = StreamConfig::parse(
        "$",
        &[
            ("streamType", "kafka"),
            ("stream.kafka.topic.name", "t"),
            (
                "stream.kafka.decoder.class.name",
                "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    )
    .expect("base map parses");
    for k in keys {
        for v in values {
            let mut raw = base.raw.clone();
            raw.insert(k.to_string(), v.to_string());
            let r = catch_unwind(|| StreamConfig::parse("$", &raw));
            match r {
                Err(_) => panic!("StreamConfig::parse panicked on {k}={v}"),
                Ok(Err(e)) => assert!(e.path.starts_with('$'), "{e}"),
                Ok(Ok(c)) => {
                    assert!(c.flush.time_ms > 0);
                    let _ = c.offset_criteria.to_pinot_string();
                }
            }
            assert!(
                catch_unwind(|| OffsetCriteria::parse(v)).is_ok(),
                "offset {v}"
            );
        }
    }
}
