//! The documentation examples (`examples/`) and Pinot's airline files (`testdata/airline/`)
//! load unchanged, validate, and mean what Pinot means by them.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use riffle_common::TableType;
use riffle_config::stream::{decoder_supported, DEFAULT_FACTORY, JSON_DECODER};
use riffle_config::{
    DataType, FieldType, FlushConfig, OffsetCriteria, Schema, StreamConfig, TableConfig, TimeFormat,
};
use serde_json::Value;

fn repo_file(rel: &str) -> PathBuf {
    // The directory cargo runs the test in (a build reused from another checkout keeps
    // the compile-time path).
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../..")
    .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    let path = repo_file(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn read_value(rel: &str) -> Value {
    serde_json::from_slice(&read(rel)).unwrap_or_else(|e| panic!("parse {rel}: {e}"))
}

/// Loads a schema and a table config, validates them and returns the single stream.
fn load(schema: &str, table: &str) -> (Schema, TableConfig, StreamConfig) {
    let s = Schema::from_json(&read(schema)).unwrap_or_else(|e| panic!("{schema}: {e}"));
    let t = TableConfig::from_json(&read(table)).unwrap_or_else(|e| panic!("{table}: {e}"));
    t.validate(&s).unwrap_or_else(|e| panic!("{table}: {e}"));
    let streams = t.streams();
    assert_eq!(streams.len(), 1, "{table}: one stream");
    let stream = streams[0].clone();
    assert!(
        s.unrecognized().is_empty(),
        "{schema}: {:?}",
        s.unrecognized()
    );
    assert!(
        t.unrecognized().is_empty(),
        "{table}: {:?}",
        t.unrecognized()
    );
    (s, t, stream)
}

/// `to_json` gives back the file (with Pinot's `_REALTIME` suffix on the name) and parses to
/// the same config.
fn assert_round_trip(rel: &str, t: &TableConfig) {
    let mut original = read_value(rel);
    let out = t.to_json();
    assert_eq!(out["tableName"], format!("{}_REALTIME", t.raw_name()));
    original["tableName"] = out["tableName"].clone();
    assert_eq!(out, original, "{rel}: to_json must keep every key");
    let again = TableConfig::from_value(&out).unwrap_or_else(|e| panic!("{rel} again: {e}"));
    assert_eq!(&again, t);
}

/// `to_json` (which adds Pinot's `fieldType` to each spec) parses back to the same columns
/// and the same JSON.
fn assert_schema_round_trip(rel: &str, s: &Schema) {
    let out = s.to_json();
    let again = Schema::from_value(out.clone()).unwrap_or_else(|e| panic!("{rel} again: {e}"));
    assert_eq!(again.to_json(), out, "{rel}");
    assert_eq!(again.columns().ok(), s.columns().ok(), "{rel}");
    let original = read_value(rel);
    for key in [
        "dimensionFieldSpecs",
        "metricFieldSpecs",
        "dateTimeFieldSpecs",
    ] {
        let n = original[key].as_array().map_or(0, Vec::len);
        assert_eq!(out[key].as_array().map_or(0, Vec::len), n, "{rel} {key}");
    }
}

#[test]
fn test_transcript_kafka_example() {
    let schema = "examples/transcript/transcript_schema.json";
    let table = "examples/transcript/transcript_realtime_table_config.json";
    let (s, t, c) = load(schema, table);
    let cols = s.columns().expect("columns");
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "studentID",
            "firstName",
            "lastName",
            "gender",
            "subject",
            "score",
            "timestampInEpoch"
        ]
    );
    assert_eq!(cols[5].field_type, FieldType::Metric);
    assert_eq!(cols[5].data_type, DataType::Float);
    assert!(s.is_time_column("timestampInEpoch"));

    assert_eq!(t.table_type(), TableType::Realtime);
    assert_eq!(t.name_with_type().to_string(), "transcript_REALTIME");
    assert_eq!(t.replication(), 1);
    assert_eq!(c.stream_type, "kafka");
    assert_eq!(c.topic, "transcript-topic");
    assert_eq!(c.flush.rows, Some(50_000));
    assert_eq!(c.flush.time_ms, 3_600_000);
    assert!(!c.flush.is_autotune());
    assert_eq!(c.offset_criteria, OffsetCriteria::Smallest);
    // kafka20 factory is Pinot's alias of kafka30; the raw map keeps what was written.
    assert_eq!(c.factory_class, DEFAULT_FACTORY);
    assert_eq!(
        c.raw["stream.kafka.consumer.factory.class.name"],
        "org.apache.pinot.plugin.stream.kafka20.KafkaConsumerFactory"
    );
    assert_eq!(c.decoder_class, JSON_DECODER);
    assert!(c.decoder_supported());
    assert_eq!(c.plugin_key("broker.list"), Some("localhost:9876"));
    // Legacy keys Pinot ignores are accepted, kept, and not reported.
    assert_eq!(c.plugin_key("consumer.type"), Some("lowlevel"));
    assert_eq!(
        t.document().segments_config.extra["schemaName"],
        "transcript"
    );
    assert_eq!(
        t.document().segments_config.extra["timeType"],
        "MILLISECONDS"
    );
    // Pinot's defaults for what the example leaves out.
    assert_eq!(c.connection_timeout_ms, 30_000);
    assert_eq!(c.fetch_timeout_ms, 5_000);
    assert_eq!(c.idle_timeout_ms, 180_000);
    assert_eq!(c.flush.autotune_initial_rows, 100_000);
    assert_eq!(c.flush.variance_fraction, 0.0);
    assert_eq!(
        c.flush.target_size_bytes(),
        FlushConfig::DEFAULT_TARGET_SIZE
    );
    assert!(!c.stop_on_decode_error);
    assert_eq!(c.pauseless_download_timeout_seconds, 600);
    assert_eq!(c.commit_timeout_seconds, None);
    assert_eq!(c.topic_rate_limit, None);

    assert_round_trip(table, &t);
    assert_schema_round_trip(schema, &s);
}

#[test]
fn test_transcript_file_example() {
    let (_, t, c) = load(
        "examples/transcript/transcript_schema.json",
        "examples/transcript/transcript_file_table_config.json",
    );
    assert_eq!(c.stream_type, "file");
    assert_eq!(c.topic, "transcript-topic");
    assert_eq!(c.flush.rows, Some(50_000));
    assert_eq!(c.flush.time_ms, 3_600_000);
    assert_eq!(c.offset_criteria, OffsetCriteria::Smallest);
    assert_eq!(c.decoder_class, JSON_DECODER);
    assert!(c.raw.keys().all(|k| !k.starts_with("stream.kafka.")));
    assert_round_trip("examples/transcript/transcript_file_table_config.json", &t);
}

#[test]
fn test_transcript_rows_match_the_schema() {
    let schema =
        Schema::from_json(&read("examples/transcript/transcript_schema.json")).expect("schema");
    let cols = schema.columns().expect("columns");
    let text = String::from_utf8(read("examples/transcript/transcript.jsonl")).expect("utf-8");
    let rows: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {l}: {e}")))
        .collect();
    assert_eq!(rows.len(), 12);
    for row in &rows {
        let obj = row.as_object().expect("one object per line");
        assert_eq!(obj.len(), cols.len(), "{row}");
        for c in &cols {
            assert!(obj.contains_key(&c.name), "{row} lacks {}", c.name);
        }
        assert!(row["timestampInEpoch"].is_i64());
    }
    let key = |r: &Value| {
        (
            r["studentID"].as_i64().unwrap_or_default(),
            r["subject"].as_str().unwrap_or_default().to_string(),
            r["timestampInEpoch"].as_i64().unwrap_or_default(),
        )
    };
    assert_eq!(key(&rows[0]), (205, "Maths".into(), 1_571_900_400_000));
    assert_eq!(key(&rows[3]), (207, "Chemistry".into(), 1_572_418_800_000));
    assert_eq!(key(&rows[11]), (212, "History".into(), 1_572_854_400_000));
    let total: f64 = rows.iter().filter_map(|r| r["score"].as_f64()).sum();
    assert!((total - 42.3).abs() < 1e-9, "sum of scores {total}");
}

fn assert_events(table: &str, stream_type: &str) {
    let (s, t, c) = load("examples/events/events_schema.json", table);
    let ts = s
        .columns()
        .expect("columns")
        .into_iter()
        .find(|c| c.name == "ts")
        .expect("ts");
    assert_eq!(ts.data_type, DataType::Timestamp);
    assert_eq!(ts.format.map(|f| f.kind), Some(TimeFormat::Timestamp));
    assert_eq!(c.stream_type, stream_type);
    assert_eq!(c.topic, "events");
    assert_eq!(c.flush.rows, Some(0));
    assert_eq!(c.flush.segment_size_bytes, Some(104_857_600));
    assert_eq!(c.flush.target_size_bytes(), 104_857_600);
    assert_eq!(c.flush.time_ms, 24 * 3_600_000);
    assert!(c.flush.is_autotune());
    assert_eq!(c.flush.autotune_initial_rows, 100_000);
    assert_eq!(c.offset_criteria, OffsetCriteria::Smallest);
    assert_round_trip(table, &t);
}

#[test]
fn test_events_kafka_example() {
    assert_events("examples/events/events_realtime_table_config.json", "kafka");
}

#[test]
fn test_events_file_example() {
    assert_events("examples/events/events_file_table_config.json", "file");
}

#[test]
fn test_events_datagen_writes_rows_of_the_schema() {
    let python = ["python3", "python"].into_iter().find(|p| {
        std::process::Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(python) = python else {
        eprintln!("no python3: skipping datagen.py");
        return;
    };
    let out =
        std::env::temp_dir().join(format!("riffle-config-events-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let status = std::process::Command::new(python)
        .arg(repo_file("examples/events/datagen.py"))
        .args(["--count", "25", "--out"])
        .arg(&out)
        .status()
        .expect("run datagen.py");
    assert!(status.success());
    let text = std::fs::read_to_string(&out).expect("datagen output");
    let _ = std::fs::remove_file(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 25);
    for l in lines {
        let v: Value = serde_json::from_str(l).expect("a JSON line");
        assert!(
            v["ts"].as_i64().is_some_and(|ts| ts > 1_500_000_000_000),
            "{l}"
        );
        assert_eq!(v["uuid"].as_str().map(str::len), Some(36), "{l}");
        assert!(
            v["count"].as_i64().is_some_and(|c| (0..=1000).contains(&c)),
            "{l}"
        );
    }
}

#[test]
fn test_airline_testdata() {
    let schema = "testdata/airline/airlineStats_schema.json";
    let table = "testdata/airline/airlineStats_realtime_table_config.json";
    let (s, t, c) = load(schema, table);
    assert_eq!(s.columns().expect("columns").len(), 81);
    assert!(s.is_time_column("DaysSinceEpoch"));
    assert_eq!(c.stream_type, "kafka");
    assert_eq!(c.topic, "flights-realtime");
    // `realtime.segment.flush.threshold.size` is the deprecated spelling of `.rows`.
    assert_eq!(c.flush.rows, Some(50_000));
    assert_eq!(c.flush.time_ms, 3_600_000);
    assert!(!c.flush.is_autotune());
    assert_eq!(c.factory_class, DEFAULT_FACTORY);
    assert_eq!(c.decoder_class, JSON_DECODER);
    assert_eq!(c.offset_criteria, OffsetCriteria::Smallest);
    assert_eq!(c.plugin_key("broker.list"), Some("localhost:19092"));
    assert_eq!(t.replication(), 1);
    assert_round_trip(table, &t);
    assert_schema_round_trip(schema, &s);
}

#[test]
fn test_unrecognized_keys_are_reported_and_kept() {
    let mut v = read_value("examples/transcript/transcript_realtime_table_config.json");
    v["surpriseTopLevel"] = serde_json::json!({"a": 1});
    v["segmentsConfig"]["retentionPolicy"] = "forever".into();
    v["tableIndexConfig"]["fancyIndexColumns"] = serde_json::json!(["subject"]);
    v["tenants"]["brokr"] = "DefaultTenant".into();
    let bytes = serde_json::to_vec(&v).expect("serialise");
    let t = TableConfig::from_json(&bytes).expect("unknown keys are accepted");
    let schema =
        Schema::from_json(&read("examples/transcript/transcript_schema.json")).expect("schema");
    t.validate(&schema)
        .expect("unknown keys do not fail validation");
    let u = t.unrecognized();
    let paths: Vec<&str> = u.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        paths,
        [
            "$.segmentsConfig.retentionPolicy",
            "$.surpriseTopLevel",
            "$.tableIndexConfig.fancyIndexColumns",
            "$.tenants.brokr",
        ]
    );
    assert_eq!(u["$.surpriseTopLevel"], serde_json::json!({"a": 1}));
    let out = t.to_json();
    assert_eq!(out["surpriseTopLevel"], serde_json::json!({"a": 1}));
    assert_eq!(out["segmentsConfig"]["retentionPolicy"], "forever");
    assert_eq!(
        out["tableIndexConfig"]["fancyIndexColumns"],
        serde_json::json!(["subject"])
    );
    assert_eq!(out["tenants"]["brokr"], "DefaultTenant");
    // Legacy keys Pinot ignores are kept but not reported.
    assert_eq!(out["segmentsConfig"]["schemaName"], "transcript");
    assert_eq!(out["segmentsConfig"]["timeType"], "MILLISECONDS");
    assert_eq!(
        out["tableIndexConfig"]["streamConfigs"]["stream.kafka.consumer.type"],
        "lowlevel"
    );
}

#[test]
fn test_unrecognized_schema_keys_are_reported_and_kept() {
    let mut v = read_value("examples/transcript/transcript_schema.json");
    v["owner"] = "registrar".into();
    v["dimensionFieldSpecs"][0]["indexHint"] = "inverted".into();
    let s = Schema::from_value(v).expect("unknown keys are accepted");
    let paths: Vec<String> = s.unrecognized().into_keys().collect();
    assert_eq!(paths, ["$.dimensionFieldSpecs[0].indexHint", "$.owner"]);
    let out = s.to_json();
    assert_eq!(out["owner"], "registrar");
    assert_eq!(out["dimensionFieldSpecs"][0]["indexHint"], "inverted");
    assert_eq!(out["dimensionFieldSpecs"][0]["fieldType"], "DIMENSION");
}

#[test]
fn test_stream_aliases_and_new_location() {
    // The transcript stream moved to streamConfigMaps, with Pinot's other spellings.
    let mut v = read_value("examples/transcript/transcript_realtime_table_config.json");
    let mut map = v["tableIndexConfig"]["streamConfigs"].take();
    v["tableIndexConfig"]
        .as_object_mut()
        .expect("object")
        .remove("streamConfigs");
    let m = map.as_object_mut().expect("object");
    m.remove("realtime.segment.flush.threshold.rows");
    m.remove("realtime.segment.flush.threshold.time");
    m.insert(
        "realtime.segment.flush.threshold.size.llc".into(),
        "20000".into(),
    );
    m.insert(
        "realtime.segment.flush.threshold.time.llc".into(),
        "1h30m".into(),
    );
    m.insert(
        "realtime.segment.flush.autotune.initialRows".into(),
        "-5".into(),
    );
    m.insert("stream.kafka.fetch.timeout.millis".into(), "soon".into());
    m.insert("stream.kafka.idle.timeout.millis".into(), 60000.into());
    m.insert(
        "stream.kafka.consumer.factory.class.name".into(),
        "org.apache.pinot.core.realtime.impl.kafka2.KafkaConsumerFactory".into(),
    );
    m.insert(
        "stream.kafka.decoder.class.name".into(),
        "org.apache.pinot.core.realtime.impl.kafka.KafkaJSONMessageDecoder".into(),
    );
    m.insert(
        "stream.kafka.consumer.prop.auto.offset.reset".into(),
        "2d".into(),
    );
    m.insert(
        "realtime.segment.flush.threshold.variance.fraction".into(),
        "0.7".into(),
    );
    v["ingestionConfig"] =
        serde_json::json!({"streamIngestionConfig": {"streamConfigMaps": [map]}});
    let t = TableConfig::from_value(&v).expect("parse");
    let schema =
        Schema::from_json(&read("examples/transcript/transcript_schema.json")).expect("schema");
    t.validate(&schema).expect("valid");
    let c = t.streams()[0].clone();
    assert_eq!(c.flush.rows, Some(20_000));
    assert_eq!(c.flush.time_ms, 5_400_000);
    assert_eq!(c.flush.autotune_initial_rows, 100_000);
    assert_eq!(c.flush.variance_fraction, 0.0);
    assert_eq!(c.fetch_timeout_ms, 5_000);
    assert_eq!(c.idle_timeout_ms, 60_000);
    assert_eq!(c.factory_class, DEFAULT_FACTORY);
    assert_eq!(c.decoder_class, JSON_DECODER);
    assert_eq!(c.offset_criteria, OffsetCriteria::Period(172_800_000));
    assert!(decoder_supported(
        "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder"
    ));
    assert!(decoder_supported(
        "org.apache.pinot.plugin.inputformat.avro.SimpleAvroMessageDecoder"
    ));
    assert!(!decoder_supported(
        "org.apache.pinot.plugin.inputformat.protobuf.ProtoBufCodeGenMessageDecoder"
    ));
}

#[test]
fn test_undecodable_decoder_is_not_rejected() {
    let mut v = read_value("examples/transcript/transcript_realtime_table_config.json");
    v["tableIndexConfig"]["streamConfigs"]["stream.kafka.decoder.class.name"] =
        "org.apache.pinot.plugin.inputformat.protobuf.ProtoBufCodeGenMessageDecoder".into();
    let t = TableConfig::from_value(&v).expect("parse");
    let schema =
        Schema::from_json(&read("examples/transcript/transcript_schema.json")).expect("schema");
    t.validate(&schema)
        .expect("the server decides about decoders");
    let c = t.streams()[0].clone();
    assert!(!c.decoder_supported());
}
