//! The record readers on the same rows written in each format: identical blocks; and
//! malformed files stop with the file and record named.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, ListBuilder, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow::util::display::array_value_to_string;
use riffle_config::Schema;
use riffle_segment::{BlockBuilder, TableColumns};

use super::{open_reader, FileFormat};
use crate::DecodeTarget;

fn columns() -> Arc<TableColumns> {
    let s = Schema::from_json(
        br#"{"schemaName":"t","dimensionFieldSpecs":[{"name":"id","dataType":"INT"},
        {"name":"name","dataType":"STRING"},{"name":"tags","dataType":"STRING","singleValueField":false},
        {"name":"ok","dataType":"BOOLEAN"}],"metricFieldSpecs":[{"name":"score","dataType":"DOUBLE"}],
        "dateTimeFieldSpecs":[{"name":"ts","dataType":"TIMESTAMP","format":"1:MILLISECONDS:EPOCH","granularity":"1:MILLISECONDS"}]}"#,
    )
    .unwrap();
    TableColumns::new(s.columns().unwrap())
}

/// The rows every format holds: (id, name, tags, ok, score, ts ms); `None` is absent.
type Row = (i64, Option<&'static str>, Vec<&'static str>, bool, f64, i64);

fn rows() -> Vec<Row> {
    vec![
        (1, Some("ann"), vec!["a", "b"], true, 2.5, 1_700_000_000_000),
        (2, Some("bo, jr"), vec![], false, 7.0, 1_700_000_000_001),
        (3, None, vec!["solo"], true, -1.25, 1_700_000_003_000),
    ]
}

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(name: &str) -> Dir {
    let d = std::env::temp_dir().join(format!("riffle-readers-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Dir(d)
}

fn read_all(path: &Path, format: FileFormat, configs: &[(&str, &str)]) -> Vec<Vec<String>> {
    let cols = columns();
    let configs: BTreeMap<String, String> = configs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut r = open_reader(path, format, &cols, &DecodeTarget::default(), &configs).unwrap();
    let mut out = Vec::new();
    for pass in 0..2 {
        let mut b = BlockBuilder::new(cols.clone(), 4);
        // Small reads: records cross read boundaries.
        while r.read_rows(&mut b, 2).unwrap() > 0 {}
        let batch = b.finish().unwrap();
        let got: Vec<Vec<String>> = (0..batch.num_rows())
            .map(|i| {
                (0..batch.num_columns())
                    .map(|c| array_value_to_string(batch.column(c), i).unwrap())
                    .collect()
            })
            .collect();
        if pass == 0 {
            out = got;
            r.rewind().unwrap();
        } else {
            assert_eq!(got, out, "a rewound reader reads the same rows");
        }
    }
    out
}

fn expected() -> Vec<Vec<String>> {
    vec![
        vec!["1", "ann", "[a, b]", "true", "2.5", "2023-11-14T22:13:20"],
        vec![
            "2",
            "bo, jr",
            "[null]",
            "false",
            "7.0",
            "2023-11-14T22:13:20.001",
        ],
        vec![
            "3",
            "null",
            "[solo]",
            "true",
            "-1.25",
            "2023-11-14T22:13:23",
        ],
    ]
    .into_iter()
    .map(|r| r.into_iter().map(String::from).collect())
    .collect()
}

fn json_row(r: &Row) -> serde_json::Value {
    let mut v = serde_json::json!({"id": r.0, "tags": r.2, "ok": r.3, "score": r.4, "ts": r.5, "extra": {"x": 1}});
    if let Some(n) = r.1 {
        v["name"] = n.into();
    }
    v
}

#[test]
fn json_lines_spread_objects_and_arrays_read_the_same_rows() {
    let d = dir("json");
    let lines: String = rows()
        .iter()
        .map(|r| json_row(r).to_string() + "\n")
        .collect();
    std::fs::write(d.0.join("a.json"), &lines).unwrap();
    let pretty: String = rows()
        .iter()
        .map(|r| serde_json::to_string_pretty(&json_row(r)).unwrap() + " ")
        .collect();
    std::fs::write(d.0.join("b.json"), pretty).unwrap();
    let array = serde_json::Value::Array(rows().iter().map(json_row).collect());
    std::fs::write(d.0.join("c.json"), array.to_string()).unwrap();
    for f in ["a.json", "b.json", "c.json"] {
        assert_eq!(
            read_all(&d.0.join(f), FileFormat::Json, &[]),
            expected(),
            "{f}"
        );
    }
    // A broken record: the error names the file and the record.
    std::fs::write(d.0.join("bad.json"), format!("{lines}{{\"id\": \"x\"}}\n")).unwrap();
    let cols = columns();
    let mut r = open_reader(
        &d.0.join("bad.json"),
        FileFormat::Json,
        &cols,
        &DecodeTarget::default(),
        &BTreeMap::new(),
    )
    .unwrap();
    let mut b = BlockBuilder::new(cols.clone(), 4);
    let e = r.read_rows(&mut b, 100).err().unwrap();
    assert!(
        e.message.contains("bad.json") && e.message.contains("record 4"),
        "{e}"
    );
    assert_eq!(
        b.rows(),
        3,
        "the rows before the bad record stay, none of it"
    );
}

#[test]
fn csv_with_header_quotes_and_multi_values() {
    let d = dir("csv");
    let mut text = String::from("id,name,tags,ok,score,ts,extra\n");
    for r in rows() {
        text += &format!(
            "{},{},{},{},{},{},zz\n",
            r.0,
            r.1.map(|n| format!("\"{n}\"")).unwrap_or_default(),
            r.2.join(";"),
            r.3,
            r.4,
            r.5
        );
    }
    std::fs::write(d.0.join("a.csv"), &text).unwrap();
    assert_eq!(
        read_all(&d.0.join("a.csv"), FileFormat::Csv, &[]),
        expected()
    );
    // Another delimiter, the header given in the config and the file's own skipped.
    let piped = text.replace(',', "|").replace("bo| jr", "bo, jr");
    std::fs::write(d.0.join("b.csv"), piped).unwrap();
    assert_eq!(
        read_all(
            &d.0.join("b.csv"),
            FileFormat::Csv,
            &[
                ("delimiter", "|"),
                ("header", "id|name|tags|ok|score|ts|extra"),
                ("skipHeader", "true")
            ]
        ),
        expected()
    );
}

/// Avro's zig-zag long.
fn long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn text(out: &mut Vec<u8>, s: &str) {
    long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

fn avro_file(codec: &str) -> Vec<u8> {
    let schema = r#"{"type":"record","name":"R","fields":[{"name":"id","type":"int"},
        {"name":"name","type":["null","string"]},{"name":"tags","type":{"type":"array","items":"string"}},
        {"name":"ok","type":"boolean"},{"name":"score","type":"double"},
        {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},{"name":"extra","type":"string"}]}"#;
    let mut f = b"Obj\x01".to_vec();
    long(&mut f, 2);
    text(&mut f, "avro.schema");
    text(&mut f, schema);
    text(&mut f, "avro.codec");
    text(&mut f, codec);
    long(&mut f, 0);
    let sync = [7u8; 16];
    f.extend_from_slice(&sync);
    // Two blocks: the first row, then the other two.
    let all = rows();
    for chunk in [&all[..1], &all[1..]] {
        let mut block = Vec::new();
        for r in chunk {
            long(&mut block, r.0);
            match r.1 {
                None => long(&mut block, 0),
                Some(n) => {
                    long(&mut block, 1);
                    text(&mut block, n);
                }
            }
            if !r.2.is_empty() {
                long(&mut block, r.2.len() as i64);
                for t in &r.2 {
                    text(&mut block, t);
                }
            }
            long(&mut block, 0);
            block.push(r.3 as u8);
            block.extend_from_slice(&r.4.to_le_bytes());
            long(&mut block, r.5);
            text(&mut block, "zz");
        }
        let data = match codec {
            "deflate" => {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(&block).unwrap();
                e.finish().unwrap()
            }
            _ => block,
        };
        long(&mut f, chunk.len() as i64);
        long(&mut f, data.len() as i64);
        f.extend_from_slice(&data);
        f.extend_from_slice(&sync);
    }
    f
}

#[test]
fn avro_container_files_with_and_without_compression() {
    let d = dir("avro");
    for codec in ["null", "deflate"] {
        let p = d.0.join(format!("{codec}.avro"));
        std::fs::write(&p, avro_file(codec)).unwrap();
        assert_eq!(read_all(&p, FileFormat::Avro, &[]), expected(), "{codec}");
    }
    // A truncated file: the error names the file.
    let mut cut = avro_file("null");
    cut.truncate(cut.len() - 20);
    let p = d.0.join("cut.avro");
    std::fs::write(&p, cut).unwrap();
    let cols = columns();
    let mut r = open_reader(
        &p,
        FileFormat::Avro,
        &cols,
        &DecodeTarget::default(),
        &BTreeMap::new(),
    )
    .unwrap();
    let mut b = BlockBuilder::new(cols.clone(), 4);
    let e = r.read_rows(&mut b, 100).err().unwrap();
    assert!(e.message.contains("cut.avro"), "{e}");
    assert_eq!(
        b.rows(),
        1,
        "the first block's row is read, nothing of the broken one"
    );
    let e = open_reader(
        &d.0.join("null.avro").with_extension("missing"),
        FileFormat::Avro,
        &cols,
        &DecodeTarget::default(),
        &BTreeMap::new(),
    )
    .err()
    .unwrap();
    assert!(e.message.contains("null.missing"), "{e}");
}

#[test]
fn garbage_orc_files_are_errors_naming_the_file() {
    let d = dir("orc");
    for (name, bytes) in [
        ("empty.orc", &b""[..]),
        ("junk.orc", &b"ORC but nothing else follows"[..]),
        ("zeros.orc", &[0u8; 4096][..]),
    ] {
        let p = d.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        let opened = open_reader(
            &p,
            FileFormat::Orc,
            &columns(),
            &DecodeTarget::default(),
            &BTreeMap::new(),
        );
        let e = match opened {
            Err(e) => e,
            Ok(mut r) => {
                let mut b = BlockBuilder::new(columns(), 16);
                r.read_rows(&mut b, 16).expect_err("garbage read as rows")
            }
        };
        assert!(e.message.contains(name), "{e}");
    }
}

#[test]
fn parquet_files_through_the_arrow_reader() {
    let d = dir("parquet");
    let all = rows();
    let mut tags = ListBuilder::new(StringBuilder::new());
    for r in &all {
        for t in &r.2 {
            tags.values().append_value(t);
        }
        tags.append(true);
    }
    let schema = Arc::new(ArrowSchema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        Field::new("ok", DataType::Boolean, false),
        Field::new("score", DataType::Float64, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("extra", DataType::Utf8, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(all.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter(all.iter().map(|r| r.1))),
        Arc::new(tags.finish()),
        Arc::new(BooleanArray::from_iter(all.iter().map(|r| Some(r.3)))),
        Arc::new(Float64Array::from_iter_values(all.iter().map(|r| r.4))),
        Arc::new(TimestampMicrosecondArray::from_iter_values(
            all.iter().map(|r| r.5 * 1000),
        )),
        Arc::new(StringArray::from_iter_values(all.iter().map(|_| "zz"))),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let p = d.0.join("a.parquet");
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&p).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    assert_eq!(read_all(&p, FileFormat::Parquet, &[]), expected());
    std::fs::write(d.0.join("bad.parquet"), b"PAR1 not really").unwrap();
    let e = open_reader(
        &d.0.join("bad.parquet"),
        FileFormat::Parquet,
        &columns(),
        &DecodeTarget::default(),
        &BTreeMap::new(),
    )
    .err()
    .unwrap();
    assert!(e.message.contains("bad.parquet"), "{e}");
}

#[test]
fn formats_by_name_and_extension() {
    assert_eq!(FileFormat::parse("PARQUET").unwrap(), FileFormat::Parquet);
    assert_eq!(
        FileFormat::parse("org.apache.pinot.plugin.inputformat.csv.CSVRecordReader").unwrap(),
        FileFormat::Csv
    );
    assert_eq!(FileFormat::parse("ORC").unwrap(), FileFormat::Orc);
    assert_eq!(
        FileFormat::parse("org.apache.pinot.plugin.inputformat.orc.ORCRecordReader").unwrap(),
        FileFormat::Orc
    );
    assert!(FileFormat::parse("THRIFT")
        .unwrap_err()
        .message
        .contains("not read yet"));
    assert_eq!(
        FileFormat::from_path(Path::new("x/y.JSONL")),
        Some(FileFormat::Json)
    );
}

#[test]
fn riffle_segments_read_back_as_records() {
    let d = dir("segment");
    let lines: String = rows()
        .iter()
        .map(|r| json_row(r).to_string() + "\n")
        .collect();
    std::fs::write(d.0.join("a.json"), &lines).unwrap();
    let cols = columns();
    let mut r = open_reader(
        &d.0.join("a.json"),
        FileFormat::Json,
        &cols,
        &DecodeTarget::default(),
        &BTreeMap::new(),
    )
    .unwrap();
    let mut b = BlockBuilder::new(cols.clone(), 4);
    while r.read_rows(&mut b, 100).unwrap() > 0 {}
    let batch = b.finish().unwrap();
    let seg = d.0.join("t_0");
    riffle_segment::write_segment(
        &seg,
        "t_0",
        &cols,
        &[batch],
        &riffle_segment::SealOptions::default(),
    )
    .unwrap();
    assert_eq!(read_all(&seg, FileFormat::Segment, &[]), expected());
    std::fs::write(d.0.join("junk"), b"RIFFLSEG and nothing else").unwrap();
    let e = open_reader(
        &d.0.join("junk"),
        FileFormat::Segment,
        &cols,
        &DecodeTarget::default(),
        &BTreeMap::new(),
    )
    .err()
    .unwrap();
    assert!(e.message.contains("junk"), "{e}");
}

#[test]
fn the_segment_format_by_name() {
    assert_eq!(FileFormat::parse("SEGMENT").unwrap(), FileFormat::Segment);
}
