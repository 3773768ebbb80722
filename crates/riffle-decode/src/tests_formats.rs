//! The CSV decoder and complex types (flattening, unnesting) through `decode_batch`, on
//! hand-written messages with their expected rows.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use arrow::util::display::array_value_to_string;
use bytes::Bytes;
use riffle_config::{Schema, StreamConfig};
use riffle_segment::{BlockBuilder, TableColumns};
use riffle_stream::{StreamMessage, StreamOffset};

use crate::{decode_batch, decoder_for, ComplexType, DecodeStats, DecodeTarget, SpecialColumns};

fn columns(fields: &str) -> Arc<TableColumns> {
    let s = Schema::from_json(format!(r#"{{"schemaName":"t",{fields}}}"#).as_bytes()).unwrap();
    TableColumns::new(s.columns().unwrap())
}

fn config(decoder: &str, props: &[(&str, &str)]) -> StreamConfig {
    let mut m: std::collections::BTreeMap<String, String> = [
        ("streamType", "memory"),
        ("stream.memory.topic.name", "t"),
        ("stream.memory.decoder.class.name", decoder),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in props {
        m.insert(format!("stream.memory.decoder.prop.{k}"), v.to_string());
    }
    StreamConfig::parse("$", &m).unwrap()
}

fn run(
    cols: &Arc<TableColumns>,
    cfg: &StreamConfig,
    target: &DecodeTarget,
    messages: &[&str],
) -> (RecordBatch, DecodeStats) {
    let mut dec = decoder_for(cfg, cols, target).unwrap();
    let msgs: Vec<StreamMessage> = messages
        .iter()
        .enumerate()
        .map(|(i, v)| StreamMessage {
            key: None,
            value: Bytes::copy_from_slice(v.as_bytes()),
            headers: vec![],
            offset: StreamOffset::Long(i as i64),
            next_offset: StreamOffset::Long(i as i64 + 1),
            timestamp_ms: None,
        })
        .collect();
    let mut b = BlockBuilder::with_extras(cols.clone(), 8, target.extras.len());
    let stats = decode_batch(
        dec.as_mut(),
        &SpecialColumns::new(cols, false),
        0,
        &msgs,
        &mut b,
        false,
    );
    (b.finish().unwrap(), stats)
}

/// Every row, each value as Arrow displays it.
fn rows(b: &RecordBatch) -> Vec<Vec<String>> {
    (0..b.num_rows())
        .map(|r| {
            (0..b.num_columns())
                .map(|c| array_value_to_string(b.column(c), r).unwrap())
                .collect()
        })
        .collect()
}

const CSV: &str = "org.apache.pinot.plugin.inputformat.csv.CSVMessageDecoder";
const JSON: &str = "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder";

const FIELDS: &str = r#""dimensionFieldSpecs":[{"name":"id","dataType":"INT"},{"name":"name","dataType":"STRING"},
    {"name":"tags","dataType":"STRING","singleValueField":false},{"name":"ok","dataType":"BOOLEAN"}],
    "metricFieldSpecs":[{"name":"score","dataType":"DOUBLE"}]"#;

#[test]
fn csv_with_a_configured_header() {
    let cols = columns(FIELDS);
    let cfg = config(CSV, &[("header", "id,name,tags,score,ok,ignored")]);
    let (b, stats) = run(
        &cols,
        &cfg,
        &DecodeTarget::default(),
        &[
            "1,Ann,a;b;c,2.5,true,x",
            "2,\"Smith, Bo\",,7,false,y",
            "3,,solo,,,",
            "not-a-number,x,,,,",
        ],
    );
    assert_eq!(stats.rows, 3);
    assert_eq!(stats.errors, 1);
    let (off, e) = stats.first_error.unwrap();
    assert_eq!(off, StreamOffset::Long(3));
    assert!(
        e.message.contains("column 'id'") && e.message.contains("not-a-number"),
        "{e}"
    );
    assert_eq!(
        rows(&b),
        [
            ["1", "Ann", "[a, b, c]", "true", "2.5"],
            // A quoted field keeps its delimiter; an empty field is the default.
            ["2", "Smith, Bo", "[null]", "false", "7.0"],
            ["3", "null", "[solo]", "false", "0.0"],
        ]
    );
}

#[test]
fn csv_with_a_header_in_each_message_and_other_delimiters() {
    let cols = columns(FIELDS);
    let cfg = config(
        CSV,
        &[
            ("delimiter", "|"),
            ("multiValueDelimiter", ","),
            ("nullStringValue", "NULL"),
        ],
    );
    let (b, stats) = run(
        &cols,
        &cfg,
        &DecodeTarget::default(),
        &["name|id|tags\nAnn|1|x,y", "id|name\n2|NULL", "id|name"],
    );
    assert_eq!(stats.rows, 2);
    assert_eq!(stats.errors, 1, "a header without a record is malformed");
    assert_eq!(
        rows(&b),
        [
            ["1", "Ann", "[x, y]", "false", "0.0"],
            ["2", "null", "[null]", "false", "0.0"],
        ]
    );
    let bad = config(CSV, &[("delimiter", "||")]);
    let e = decoder_for(&bad, &cols, &DecodeTarget::default())
        .err()
        .unwrap();
    assert!(e.message.contains("decoder.prop.delimiter"), "{e}");
}

#[test]
fn csv_keeps_source_fields_for_transforms() {
    let cols = columns(FIELDS);
    let cfg = config(CSV, &[("header", "id,extra,list")]);
    let target = DecodeTarget {
        extras: vec!["extra".into(), "list".into()],
        complex: None,
        file_roots: Vec::new(),
    };
    let mut dec = decoder_for(&cfg, &cols, &target).unwrap();
    let msg = StreamMessage {
        key: None,
        value: Bytes::from_static(b"4,hello,p;q"),
        headers: vec![],
        offset: StreamOffset::Long(0),
        next_offset: StreamOffset::Long(1),
        timestamp_ms: None,
    };
    let mut b = BlockBuilder::with_extras(cols.clone(), 4, 2);
    let stats = decode_batch(
        dec.as_mut(),
        &SpecialColumns::new(&cols, false),
        0,
        &[msg],
        &mut b,
        false,
    );
    assert_eq!(stats.rows, 1);
    let (_, extras) = b.finish_with_extras().unwrap();
    assert_eq!(extras[0], [Some(serde_json::json!("hello"))]);
    assert_eq!(extras[1], [Some(serde_json::json!(["p", "q"]))]);
}

#[test]
fn complex_types_flatten_and_unnest_into_rows() {
    let cols = columns(
        r#""dimensionFieldSpecs":[{"name":"order","dataType":"INT"},{"name":"user.name","dataType":"STRING"},
        {"name":"items.sku","dataType":"STRING"},{"name":"labels","dataType":"STRING","singleValueField":false},
        {"name":"notes","dataType":"STRING"}],"metricFieldSpecs":[{"name":"items.qty","dataType":"LONG"}]"#,
    );
    let complex =
        ComplexType::parse("$", &serde_json::json!({"fieldsToUnnest": ["items"]})).unwrap();
    let target = DecodeTarget {
        extras: vec![],
        complex: Some(complex),
        file_roots: Vec::new(),
    };
    let (b, stats) = run(
        &cols,
        &config(JSON, &[]),
        &target,
        &[
            r#"{"order":1,"user":{"name":"ann"},"labels":["x","y"],"notes":[{"n":1}],
                "items":[{"sku":"a","qty":2},{"sku":"b","qty":3}]}"#,
            r#"{"order":2,"items":[]}"#,
            r#"{"order":3,"items":[{"sku":"c","qty":"many"}]}"#,
            r#"[1,2]"#,
        ],
    );
    assert_eq!(stats.rows, 3);
    // Rows keep the message they came from, for offsets of errors.
    assert_eq!(stats.row_messages, [0, 0, 1]);
    assert_eq!(stats.errors, 2);
    let (off, e) = stats.first_error.unwrap();
    assert_eq!(off, StreamOffset::Long(2));
    assert!(
        e.message.contains("items.qty") && e.message.contains("many"),
        "{e}"
    );
    assert_eq!(
        rows(&b),
        [
            ["1", "ann", "a", "[x, y]", "[{\"n\":1}]", "2"],
            ["1", "ann", "b", "[x, y]", "[{\"n\":1}]", "3"],
            ["2", "null", "null", "[null]", "null", "0"],
        ]
    );
}

#[test]
fn complex_types_with_a_non_json_decoder_are_refused() {
    let cols = columns(FIELDS);
    let complex = ComplexType::parse("$", &serde_json::json!({})).unwrap();
    let target = DecodeTarget {
        extras: vec![],
        complex: Some(complex),
        file_roots: Vec::new(),
    };
    let avro = config(
        "org.apache.pinot.plugin.inputformat.avro.SimpleAvroMessageDecoder",
        &[("schema", r#"{"type":"record","name":"r","fields":[]}"#)],
    );
    let e = decoder_for(&avro, &cols, &target).err().unwrap();
    assert!(
        e.message.contains("complexTypeConfig") && e.message.contains("SimpleAvro"),
        "{e}"
    );
    assert!(decoder_for(&config(JSON, &[]), &cols, &target).is_ok());
}
