//! The Avro reader on data encoded here by hand, following the specification's binary
//! encoding, with expected rows worked out by hand.

use std::sync::Arc;

use arrow::util::display::array_value_to_string;
use bytes::Bytes;
use riffle_config::{Schema, StreamConfig};
use riffle_segment::{BlockBuilder, TableColumns};
use riffle_stream::{StreamMessage, StreamOffset};

use crate::{decode_batch, decoder_for, DecodeStats, DecodeTarget, SpecialColumns};

/// Avro's zig-zag varint.
fn long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

const WRITER: &str = r#"{"type":"record","name":"Event","namespace":"riffle.test","fields":[
  {"name":"id","type":"int"},
  {"name":"name","type":["null","string"]},
  {"name":"skipped","type":{"type":"array","items":{"type":"record","name":"Deep","fields":[{"name":"x","type":"long"}]}}},
  {"name":"tags","type":{"type":"array","items":"string"}},
  {"name":"score","type":"double"},
  {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["CLICK","VIEW"]}},
  {"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}},
  {"name":"day","type":{"type":"int","logicalType":"date"}},
  {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
  {"name":"attrs","type":{"type":"map","values":"long"}},
  {"name":"again","type":"Deep"},
  {"name":"source","type":"string"}
]}"#;

const FIELDS: &str = r#"{"schemaName":"t","dimensionFieldSpecs":[{"name":"id","dataType":"INT"},
  {"name":"name","dataType":"STRING"},{"name":"tags","dataType":"STRING","singleValueField":false},
  {"name":"kind","dataType":"STRING"},{"name":"day","dataType":"STRING"},{"name":"price","dataType":"BIG_DECIMAL"},
  {"name":"attrs","dataType":"JSON"},{"name":"again","dataType":"STRING"},{"name":"missing","dataType":"LONG"}],
  "metricFieldSpecs":[{"name":"score","dataType":"FLOAT"}],
  "dateTimeFieldSpecs":[{"name":"at","dataType":"TIMESTAMP","format":"1:MILLISECONDS:EPOCH","granularity":"1:MILLISECONDS"}]}"#;

/// One datum of [`WRITER`].
fn datum(id: i32, name: Option<&str>, tags: &[&str]) -> Vec<u8> {
    let mut b = Vec::new();
    long(&mut b, id as i64);
    match name {
        None => long(&mut b, 0),
        Some(n) => {
            long(&mut b, 1);
            text(&mut b, n);
        }
    }
    // `skipped`: one block of two records written with a byte size (negative count).
    let mut block = Vec::new();
    long(&mut block, 7);
    long(&mut block, -8);
    long(&mut b, -2);
    long(&mut b, block.len() as i64);
    b.extend_from_slice(&block);
    long(&mut b, 0);
    if !tags.is_empty() {
        long(&mut b, tags.len() as i64);
        for t in tags {
            text(&mut b, t);
        }
    }
    long(&mut b, 0);
    b.extend_from_slice(&2.5f64.to_le_bytes());
    long(&mut b, 1); // VIEW
    long(&mut b, 1_700_000_000_123_456); // micros
    long(&mut b, 19_700); // 2023-12-09
                          // 12345 unscaled, scale 2: 123.45 (two bytes, big-endian).
    long(&mut b, 2);
    b.extend_from_slice(&[0x30, 0x39]);
    long(&mut b, 1);
    text(&mut b, "k");
    long(&mut b, 5);
    long(&mut b, 0);
    long(&mut b, -3); // again.x
    text(&mut b, "web");
    b
}

fn run(
    props: &[(&str, &str)],
    target: &DecodeTarget,
    values: &[Vec<u8>],
) -> (arrow::record_batch::RecordBatch, DecodeStats) {
    let cols = TableColumns::new(
        Schema::from_json(FIELDS.as_bytes())
            .unwrap()
            .columns()
            .unwrap(),
    );
    let mut m: std::collections::BTreeMap<String, String> = [
        ("streamType", "memory"),
        ("stream.memory.topic.name", "t"),
        (
            "stream.memory.decoder.class.name",
            "org.apache.pinot.plugin.inputformat.avro.SimpleAvroMessageDecoder",
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in props {
        m.insert(format!("stream.memory.decoder.prop.{k}"), v.to_string());
    }
    let cfg = StreamConfig::parse("$", &m).unwrap();
    let mut dec = decoder_for(&cfg, &cols, target).unwrap();
    let msgs: Vec<StreamMessage> = values
        .iter()
        .enumerate()
        .map(|(i, v)| StreamMessage {
            key: None,
            value: Bytes::copy_from_slice(v),
            headers: vec![],
            offset: StreamOffset::Long(i as i64),
            next_offset: StreamOffset::Long(i as i64 + 1),
            timestamp_ms: None,
        })
        .collect();
    let mut b = BlockBuilder::with_extras(cols.clone(), 4, target.extras.len());
    let stats = decode_batch(
        dec.as_mut(),
        &SpecialColumns::new(&cols, false),
        0,
        &msgs,
        &mut b,
        false,
    );
    (b.finish().unwrap(), stats)
}

fn row(b: &arrow::record_batch::RecordBatch, r: usize) -> Vec<String> {
    (0..b.num_columns())
        .map(|c| array_value_to_string(b.column(c), r).unwrap())
        .collect()
}

#[test]
fn reads_every_type_into_the_columns() {
    let (b, stats) = run(
        &[("schema", WRITER)],
        &DecodeTarget::default(),
        &[datum(1, Some("ann"), &["a", "b"]), datum(2, None, &[])],
    );
    assert_eq!(stats.errors, 0, "{:?}", stats.first_error);
    assert_eq!(
        row(&b, 0),
        [
            "1",
            "ann",
            "[a, b]",
            "VIEW",
            "2023-12-09",
            "123.45",
            r#"{"k":5}"#,
            r#"{"x":-3}"#,
            "-9223372036854775808",
            "2.5",
            "2023-11-14T22:13:20.123"
        ]
    );
    // A null union branch and an empty array read the defaults.
    assert_eq!(&row(&b, 1)[..3], ["2", "null", "[null]"]);
}

#[test]
fn strips_leading_bytes_and_keeps_source_fields() {
    let mut framed = vec![0xde, 0xad];
    framed.extend(datum(3, Some("bo"), &["x"]));
    let target = DecodeTarget {
        extras: vec!["source".into(), "skipped".into()],
        complex: None,
        file_roots: Vec::new(),
    };
    let cols = TableColumns::new(
        Schema::from_json(FIELDS.as_bytes())
            .unwrap()
            .columns()
            .unwrap(),
    );
    let (b, stats) = run(
        &[("schema", WRITER), ("leading.bytes.to.strip", "2")],
        &target,
        &[framed],
    );
    assert_eq!(stats.errors, 0, "{:?}", stats.first_error);
    assert_eq!(row(&b, 0)[0], "3");
    let _ = Arc::clone(&cols);
}

#[test]
fn malformed_data_is_an_error_naming_the_field() {
    let good = datum(1, Some("ann"), &[]);
    let mut bad_branch = good.clone();
    bad_branch[1] = 0x08; // union branch 4
    let truncated = good[..good.len() - 2].to_vec();
    let mut trailing = good.clone();
    trailing.push(0);
    let (b, stats) = run(
        &[("schema", WRITER)],
        &DecodeTarget::default(),
        &[bad_branch, truncated, trailing, vec![0xff; 12], good],
    );
    assert_eq!(b.num_rows(), 1);
    assert_eq!(stats.errors, 4);
    let (off, e) = stats.first_error.unwrap();
    assert_eq!(off, StreamOffset::Long(0));
    assert!(
        e.message.contains("field 'name'") && e.message.contains("union branch 4"),
        "{e}"
    );
}

#[test]
fn bad_configs_are_refused_with_the_prop() {
    let cols = TableColumns::new(
        Schema::from_json(FIELDS.as_bytes())
            .unwrap()
            .columns()
            .unwrap(),
    );
    for (props, want) in [
        (vec![], "decoder.prop.schema is required"),
        (vec![("schema", "{")], "decoder.prop.schema"),
        (vec![("schema", r#""string""#)], "must be a record"),
        (
            vec![(
                "schema",
                r#"{"type":"record","name":"r","fields":[{"name":"a","type":"Nope"}]}"#,
            )],
            "unknown Avro type 'Nope'",
        ),
        (
            vec![("schema", WRITER), ("leading.bytes.to.strip", "x")],
            "leading.bytes.to.strip",
        ),
    ] {
        let mut m: std::collections::BTreeMap<String, String> = [
            ("streamType", "memory"),
            ("stream.memory.topic.name", "t"),
            (
                "stream.memory.decoder.class.name",
                "org.apache.pinot.plugin.inputformat.avro.SimpleAvroMessageDecoder",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in props {
            m.insert(format!("stream.memory.decoder.prop.{k}"), v.to_string());
        }
        let cfg = StreamConfig::parse("$", &m).unwrap();
        let e = decoder_for(&cfg, &cols, &DecodeTarget::default())
            .err()
            .unwrap();
        assert!(e.message.contains(want), "{want}: {e}");
    }
}
