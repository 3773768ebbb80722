//! The Protobuf decoders on hand-encoded descriptors and messages: types, defaults,
//! repeated (packed and not) fields, enums, nested messages, unknown fields, malformed input
//! and the Confluent message-index path.

use std::sync::Arc;

use arrow::util::display::array_value_to_string;
use bytes::Bytes;
use riffle_config::{Schema, StreamConfig};
use riffle_segment::{BlockBuilder, TableColumns};
use riffle_stream::{StreamMessage, StreamOffset};

use super::Types;
use crate::{decode_batch, decoder_for, DecodeTarget, SpecialColumns};

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn len_field(out: &mut Vec<u8>, n: u64, data: &[u8]) {
    varint(out, n << 3 | 2);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn int_field(out: &mut Vec<u8>, n: u64, v: u64) {
    varint(out, n << 3);
    varint(out, v);
}

/// `FieldDescriptorProto`: name, number, label (3 = repeated), type, type name.
fn field(name: &str, number: u64, repeated: bool, kind: u64, type_name: &str) -> Vec<u8> {
    let mut f = Vec::new();
    len_field(&mut f, 1, name.as_bytes());
    int_field(&mut f, 3, number);
    int_field(&mut f, 4, if repeated { 3 } else { 1 });
    int_field(&mut f, 5, kind);
    if !type_name.is_empty() {
        len_field(&mut f, 6, type_name.as_bytes());
    }
    f
}

fn message(name: &str, fields: &[Vec<u8>], nested: &[Vec<u8>], enums: &[Vec<u8>]) -> Vec<u8> {
    let mut m = Vec::new();
    len_field(&mut m, 1, name.as_bytes());
    for f in fields {
        len_field(&mut m, 2, f);
    }
    for n in nested {
        len_field(&mut m, 3, n);
    }
    for e in enums {
        len_field(&mut m, 4, e);
    }
    m
}

/// A descriptor set: package `ex`, messages `Event` (with nested `Inner` and enum `Color`)
/// and `Other`.
fn descriptor_set() -> Vec<u8> {
    let mut color = Vec::new();
    len_field(&mut color, 1, b"Color");
    for (name, n) in [("RED", 0u64), ("BLUE", 1)] {
        let mut v = Vec::new();
        len_field(&mut v, 1, name.as_bytes());
        int_field(&mut v, 2, n);
        len_field(&mut color, 2, &v);
    }
    let inner = message("Inner", &[field("a", 1, false, 9, "")], &[], &[]);
    let event = message(
        "Event",
        &[
            field("id", 1, false, 5, ""),
            field("name", 2, false, 9, ""),
            field("tags", 3, true, 9, ""),
            field("score", 4, false, 1, ""),
            field("ok", 5, false, 8, ""),
            field("color", 6, false, 14, ".ex.Event.Color"),
            field("inner", 7, false, 11, ".ex.Event.Inner"),
            field("nums", 8, true, 3, ""),
            field("delta", 9, false, 18, ""),
        ],
        &[inner],
        &[color],
    );
    let other = message("Other", &[field("name", 1, false, 9, "")], &[], &[]);
    let mut file = Vec::new();
    len_field(&mut file, 1, b"ex.proto");
    len_field(&mut file, 2, b"ex");
    len_field(&mut file, 4, &event);
    len_field(&mut file, 4, &other);
    let mut set = Vec::new();
    len_field(&mut set, 1, &file);
    set
}

fn columns() -> Arc<TableColumns> {
    let s = Schema::from_json(
        br#"{"schemaName":"t","dimensionFieldSpecs":[{"name":"id","dataType":"INT"},
        {"name":"name","dataType":"STRING"},{"name":"tags","dataType":"STRING","singleValueField":false},
        {"name":"ok","dataType":"BOOLEAN"},{"name":"color","dataType":"STRING"},
        {"name":"inner","dataType":"STRING"},{"name":"nums","dataType":"LONG","singleValueField":false}],
        "metricFieldSpecs":[{"name":"score","dataType":"DOUBLE"},{"name":"delta","dataType":"LONG"}]}"#,
    )
    .unwrap();
    TableColumns::new(s.columns().unwrap())
}

fn config(props: &[(&str, &str)]) -> StreamConfig {
    let mut m: std::collections::BTreeMap<String, String> = [
        ("streamType", "memory"),
        ("stream.memory.topic.name", "t"),
        (
            "stream.memory.decoder.class.name",
            "org.apache.pinot.plugin.inputformat.protobuf.ProtoBufMessageDecoder",
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in props {
        m.insert(format!("stream.memory.decoder.prop.{k}"), v.to_string());
    }
    StreamConfig::parse("$", &m).unwrap()
}

fn msg(i: i64, value: Vec<u8>) -> StreamMessage {
    StreamMessage {
        key: None,
        value: Bytes::from(value),
        headers: vec![],
        offset: StreamOffset::Long(i),
        next_offset: StreamOffset::Long(i + 1),
        timestamp_ms: None,
    }
}

#[test]
fn protobuf_messages_decode_into_the_columns() {
    let dir = std::env::temp_dir().join(format!("riffle-proto-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let desc = dir.join("ex.desc");
    std::fs::write(&desc, descriptor_set()).unwrap();
    let cols = columns();
    let target = DecodeTarget {
        extras: vec![],
        complex: None,
        file_roots: vec![dir.clone()],
    };
    let path = desc.to_string_lossy().to_string();
    let cfg = config(&[("descriptorFile", &path), ("protoClassName", "ex.Event")]);
    let mut dec = decoder_for(&cfg, &cols, &target).unwrap();

    let mut full = Vec::new();
    int_field(&mut full, 1, 7);
    len_field(&mut full, 2, b"ann");
    len_field(&mut full, 3, b"x");
    len_field(&mut full, 3, b"y");
    varint(&mut full, 4 << 3 | 1);
    full.extend_from_slice(&2.5f64.to_le_bytes());
    int_field(&mut full, 5, 1);
    int_field(&mut full, 6, 1);
    let mut inner = Vec::new();
    len_field(&mut inner, 1, b"deep");
    len_field(&mut full, 7, &inner);
    let mut packed = Vec::new();
    for v in [3u64, 300, u64::MAX] {
        varint(&mut packed, v);
    }
    len_field(&mut full, 8, &packed);
    int_field(&mut full, 9, 5); // sint64 zig-zag: -3
    int_field(&mut full, 99, 1); // an unknown field is skipped
                                 // An empty message: every column reads its default.
    let empty = Vec::new();
    // Truncated: a string longer than the message.
    let mut truncated = Vec::new();
    varint(&mut truncated, 2 << 3 | 2);
    varint(&mut truncated, 50);
    truncated.extend_from_slice(b"short");
    // A wire type that does not match the field's type.
    let mut mismatched = Vec::new();
    len_field(&mut mismatched, 1, b"x");

    let msgs = [
        msg(0, full),
        msg(1, empty),
        msg(2, truncated),
        msg(3, mismatched),
    ];
    let mut b = BlockBuilder::with_extras(cols.clone(), 8, 0);
    let stats = decode_batch(
        dec.as_mut(),
        &SpecialColumns::new(&cols, false),
        0,
        &msgs,
        &mut b,
        false,
    );
    assert_eq!(stats.rows, 2);
    assert_eq!(stats.errors, 2);
    let (off, e) = stats.first_error.unwrap();
    assert_eq!(off, StreamOffset::Long(2));
    assert!(
        e.message.contains("name") && e.message.contains("50"),
        "{e}"
    );
    let batch = b.finish().unwrap();
    let rows: Vec<Vec<String>> = (0..batch.num_rows())
        .map(|r| {
            (0..batch.num_columns())
                .map(|c| array_value_to_string(batch.column(c), r).unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        rows,
        [
            [
                "7",
                "ann",
                "[x, y]",
                "true",
                "BLUE",
                "{\"a\":\"deep\"}",
                "[3, 300, -1]",
                "2.5",
                "-3"
            ],
            [
                "-2147483648",
                "null",
                "[null]",
                "false",
                "null",
                "null",
                "[-9223372036854775808]",
                "0.0",
                "0"
            ],
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn descriptor_files_outside_the_allowed_directories_are_refused() {
    let cols = columns();
    let cfg = config(&[("descriptorFile", "/etc/passwd"), ("protoClassName", "x")]);
    let e = decoder_for(&cfg, &cols, &DecodeTarget::default())
        .err()
        .unwrap();
    assert!(e.message.contains("descriptorFile"), "{e}");
}

#[test]
fn confluent_message_indexes_name_messages_and_nested_types() {
    let t = Types::parse(&descriptor_set()).unwrap();
    assert_eq!(t.by_index(&[0]), Some(".ex.Event"));
    assert_eq!(t.by_index(&[1]), Some(".ex.Other"));
    assert_eq!(t.by_index(&[0, 0]), Some(".ex.Event.Inner"));
    assert_eq!(t.by_index(&[2]), None);
    assert_eq!(t.by_index(&[1, 0]), None);
    assert_eq!(t.by_index(&[-1]), None);
    assert!(
        Types::parse(b"\x0a\x05ab").is_err(),
        "a truncated descriptor"
    );
}
