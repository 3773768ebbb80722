use super::*;
use arrow::array::{
    Array, BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
    ListArray, StringArray, TimestampMillisecondArray,
};
use bytes::Bytes;
use riffle_config::Schema;
use riffle_stream::StreamOffset;

fn columns(schema: &str) -> Arc<TableColumns> {
    TableColumns::new(
        Schema::from_json(schema.as_bytes())
            .unwrap()
            .columns()
            .unwrap(),
    )
}

fn msg(offset: i64, v: &str) -> StreamMessage {
    StreamMessage {
        key: Some(Bytes::from_static(b"k1")),
        value: Bytes::copy_from_slice(v.as_bytes()),
        headers: vec![("src".into(), Bytes::from_static(b"web"))],
        offset: StreamOffset::Long(offset),
        next_offset: StreamOffset::Long(offset + 1),
        timestamp_ms: Some(1_000 + offset),
    }
}

const SCHEMA: &str = r#"{"schemaName":"t",
 "dimensionFieldSpecs":[{"name":"i","dataType":"INT"},{"name":"s","dataType":"STRING"},
  {"name":"b","dataType":"BOOLEAN"},{"name":"mv","dataType":"INT","singleValueField":false},
  {"name":"j","dataType":"JSON"},{"name":"raw","dataType":"BYTES"},
  {"name":"__key","dataType":"STRING"},{"name":"__header$src","dataType":"STRING"},
  {"name":"__metadata$offset","dataType":"LONG"},{"name":"__metadata$partition","dataType":"INT"}],
 "metricFieldSpecs":[{"name":"f","dataType":"FLOAT"},{"name":"l","dataType":"LONG"}],
 "dateTimeFieldSpecs":[{"name":"ts","dataType":"TIMESTAMP","format":"1:MILLISECONDS:EPOCH","granularity":"1:MILLISECONDS"}]}"#;

fn decode_all(populate: bool, lines: &[&str]) -> (arrow::record_batch::RecordBatch, DecodeStats) {
    let cols = columns(SCHEMA);
    let cfg = StreamConfig::parse(
        "$",
        &[
            ("streamType", "memory"),
            ("stream.memory.topic.name", "t"),
            (
                "stream.memory.decoder.class.name",
                "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    )
    .unwrap();
    let mut dec = decoder_for(&cfg, &cols, &Default::default()).unwrap();
    let special = SpecialColumns::new(&cols, populate);
    let msgs: Vec<StreamMessage> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| msg(i as i64, l))
        .collect();
    let mut b = BlockBuilder::new(cols, 8);
    let stats = decode_batch(dec.as_mut(), &special, 3, &msgs, &mut b, false);
    (b.finish().unwrap(), stats)
}

fn col<'a, T: 'static>(b: &'a arrow::record_batch::RecordBatch, name: &str) -> &'a T {
    let i = b.schema().index_of(name).unwrap();
    b.column(i).as_any().downcast_ref::<T>().unwrap()
}

#[test]
fn test_coercions_and_defaults() {
    let (b, stats) = decode_all(
        true,
        &[
            r#"{"i":"42","s":7,"b":"TRUE","mv":[1,"2",null],"j":{"a":[1]},"raw":"0aff","f":"1.5","l":3.9,"ts":"2024-01-02 03:04:05.123","extra":{"deep":[1,2]}}"#,
            r#"{}"#,
            r#"{"i":1.9,"s":true,"mv":5,"b":0,"ts":1700000000000,"s":"last wins"}"#,
        ],
    );
    assert_eq!(stats.rows, 3);
    assert_eq!(stats.errors, 0);
    assert_eq!(col::<Int32Array>(&b, "i").values(), &[42, i32::MIN, 1]);
    let s = col::<StringArray>(&b, "s");
    assert_eq!(
        (s.value(0), s.value(1), s.value(2)),
        ("7", "null", "last wins")
    );
    let bo = col::<BooleanArray>(&b, "b");
    assert!(bo.value(0) && !bo.value(1) && !bo.value(2));
    let mv = col::<ListArray>(&b, "mv");
    let first = mv.value(0);
    assert_eq!(
        first
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap()
            .values(),
        &[1, 2]
    );
    assert_eq!(
        mv.value(1)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap()
            .values(),
        &[i32::MIN]
    );
    assert_eq!(
        mv.value(2)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap()
            .values(),
        &[5]
    );
    assert_eq!(col::<StringArray>(&b, "j").value(0), r#"{"a":[1]}"#);
    assert_eq!(col::<BinaryArray>(&b, "raw").value(0), &[0x0a, 0xff]);
    assert_eq!(col::<BinaryArray>(&b, "raw").value(1), b"");
    assert_eq!(col::<Float32Array>(&b, "f").values(), &[1.5, 0.0, 0.0]);
    assert_eq!(col::<Int64Array>(&b, "l").values(), &[3, 0, 0]);
    let ts = col::<TimestampMillisecondArray>(&b, "ts");
    assert_eq!(ts.values(), &[1_704_164_645_123, 0, 1_700_000_000_000]);
    // Special columns with metadata.populate.
    assert_eq!(col::<StringArray>(&b, "__key").value(0), "k1");
    assert_eq!(col::<StringArray>(&b, "__header$src").value(2), "web");
    assert_eq!(
        col::<Int64Array>(&b, "__metadata$offset").values(),
        &[0, 1, 2]
    );
    assert_eq!(
        col::<Int32Array>(&b, "__metadata$partition").values(),
        &[3, 3, 3]
    );
    assert_eq!(stats.latest_timestamp_ms, Some(1_002));
}

#[test]
fn test_special_columns_need_populate() {
    let (b, _) = decode_all(false, &[r#"{"i":1}"#]);
    assert_eq!(col::<StringArray>(&b, "__key").value(0), "null");
    assert_eq!(
        col::<Int64Array>(&b, "__metadata$offset").value(0),
        i64::MIN
    );
}

#[test]
fn test_malformed_messages_are_rolled_back() {
    let (b, stats) = decode_all(
        false,
        &[
            r#"{"i":1,"s":"ok"}"#,
            r#"{"i":2,"s":"half", "f": "#,
            r#"not json"#,
            r#"[1,2]"#,
            r#"{"i":"abc"}"#,
            r#"{"i":99999999999}"#,
            r#"{"mv":{"a":1}}"#,
            r#"{"raw":"xyz"}"#,
            r#"{"i":3} trailing"#,
            "",
            r#"{"i":4,"s":"ok2"}"#,
        ],
    );
    assert_eq!(stats.rows, 2);
    assert_eq!(stats.errors, 9);
    assert_eq!(col::<Int32Array>(&b, "i").values(), &[1, 4]);
    let s = col::<StringArray>(&b, "s");
    assert_eq!((s.value(0), s.value(1)), ("ok", "ok2"));
    let (offset, err) = stats.first_error.unwrap();
    assert_eq!(offset, StreamOffset::Long(1));
    assert!(err.message.contains("EOF"), "{}", err.message);
}

#[test]
fn test_error_names_column_and_value() {
    let (_, stats) = decode_all(false, &[r#"{"i":"abc"}"#]);
    let (_, err) = stats.first_error.unwrap();
    assert!(err.message.contains("column 'i'"), "{}", err.message);
    assert!(err.message.contains("'abc'"), "{}", err.message);
    assert!(err.message.contains("INT"), "{}", err.message);
}

#[test]
fn test_stop_on_error_keeps_rows_before() {
    let cols = columns(SCHEMA);
    let mut dec: Box<dyn MessageDecoder> = Box::new(json::JsonDecoder::new(&cols));
    let special = SpecialColumns::new(&cols, false);
    let msgs = vec![msg(0, r#"{"i":1}"#), msg(1, "bad"), msg(2, r#"{"i":3}"#)];
    let mut b = BlockBuilder::new(cols, 4);
    let stats = decode_batch(dec.as_mut(), &special, 0, &msgs, &mut b, true);
    assert_eq!(stats.rows, 1);
    assert_eq!(stats.first_error.unwrap().0, StreamOffset::Long(1));
    let batch = b.finish().unwrap();
    assert_eq!(batch.num_rows(), 1);
    let f = col::<Float64Array>;
    let _ = f;
}

#[test]
fn test_unsupported_decoder_is_named() {
    let cols = columns(SCHEMA);
    let cfg = StreamConfig::parse(
        "$",
        &[
            ("streamType", "memory"),
            ("stream.memory.topic.name", "t"),
            (
                "stream.memory.decoder.class.name",
                "org.apache.pinot.plugin.inputformat.bson.BSONMessageDecoder",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    )
    .unwrap();
    let err = decoder_for(&cfg, &cols, &Default::default()).err().unwrap();
    assert!(
        err.message.contains("BSONMessageDecoder"),
        "{}",
        err.message
    );
    assert!(err.message.contains("CSVMessageDecoder"), "{}", err.message);
}

#[test]
fn test_key_order_changes_between_messages() {
    // The position cache must never confuse columns when the key order changes.
    let (b, stats) = decode_all(
        false,
        &[
            r#"{"i":1,"s":"a","l":10}"#,
            r#"{"s":"b","i":2,"l":20}"#,
            r#"{"l":30,"extra":1,"i":3}"#,
            r#"{"i":4,"s":"d","l":40}"#,
            r#"{"extra":{"i":99},"s":"e"}"#,
        ],
    );
    assert_eq!(stats.errors, 0);
    assert_eq!(col::<Int32Array>(&b, "i").values(), &[1, 2, 3, 4, i32::MIN]);
    assert_eq!(col::<Int64Array>(&b, "l").values(), &[10, 20, 30, 40, 0]);
    let s = col::<StringArray>(&b, "s");
    assert_eq!(
        (0..5).map(|i| s.value(i)).collect::<Vec<_>>(),
        vec!["a", "b", "null", "d", "e"]
    );
}
