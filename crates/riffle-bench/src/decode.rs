//! The decoder benchmark: the 146-byte benchmark event through each decoder, and through the
//! JSON decoder with a chain of three transforms, beside the plain JSON path, in one run.
//!
//! Each variant decodes the same events (encoded once before timing: JSON as the file
//! stream carries them; Avro with the writer's schema, plain and with Confluent's 5-byte
//! framing stripped; CSV) in batches of [`BATCH`] messages on one thread, into the column
//! builders, and finishes each block as the partition loop does; the transform variant also
//! runs its ingestion plan on every block. The variants take turns, `repeat` times each;
//! each figure is the median. What is measured is the decode stage, the only stage that
//! differs between variants (fetching and publishing are the same code for all), so the
//! ratios are those of the stage, not diluted by the rest of the loop.

use std::time::Instant;

use bytes::Bytes;
use riffle_config::{Schema, StreamConfig, TableConfig};
use riffle_decode::{decode_batch, decoder_for, DecodeTarget, SpecialColumns};
use riffle_segment::{BlockBuilder, TableColumns};
use riffle_stream::{StreamMessage, StreamOffset};
use riffle_transform::{IngestPlan, TransformOptions};

use crate::*;

/// Messages per decoded batch.
pub const BATCH: usize = 4096;

/// The Avro schema of the benchmark event.
pub const AVRO_SCHEMA: &str = r#"{"type":"record","name":"Event","namespace":"riffle.bench","fields":[
  {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"uuid","type":"string"},
  {"name":"count","type":"int"},
  {"name":"country","type":"string"},
  {"name":"device","type":"string"},
  {"name":"price","type":"double"}]}"#;

/// The transform chain: three of Pinot's functions into three more columns.
pub const TRANSFORMS: &str = r#"{"transformConfigs":[
  {"columnName":"hour","transformFunction":"toEpochHours(ts)"},
  {"columnName":"countryLower","transformFunction":"lower(country)"},
  {"columnName":"deviceKind","transformFunction":"splitPart(device, '/', 0)"}]}"#;

/// One variant's result.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeFigure {
    /// Variant name.
    pub name: String,
    /// Median nanoseconds per event.
    pub ns_per_row: f64,
    /// Events per second at that median.
    pub rows_per_sec: f64,
    /// Bytes per message.
    pub bytes_per_message: f64,
}

/// The run's figures; the first is the plain JSON path.
#[derive(Debug, Clone)]
pub struct DecodeBenchReport {
    /// Events per variant and run.
    pub rows: usize,
    /// Runs of each variant.
    pub repeat: usize,
    /// Figures in the order run.
    pub figures: Vec<DecodeFigure>,
    /// Load average before and after.
    pub load: (Option<LoadAvg>, Option<LoadAvg>),
}

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

struct Encoded {
    json: Vec<Bytes>,
    avro: Vec<Bytes>,
    framed: Vec<Bytes>,
    csv: Vec<Bytes>,
    proto: Vec<Bytes>,
}

/// Protobuf's varint.
fn uvarint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A length-delimited protobuf field.
fn pb_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    uvarint(out, field << 3 | 2);
    uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A varint protobuf field.
fn pb_varint(out: &mut Vec<u8>, field: u64, v: u64) {
    uvarint(out, field << 3);
    uvarint(out, v);
}

/// The descriptor set of the benchmark event's message (`riffle.bench.Event`), written as
/// `protoc --descriptor_set_out` writes one.
pub fn proto_descriptor_set() -> Vec<u8> {
    let mut msg = Vec::new();
    pb_bytes(&mut msg, 1, b"Event");
    for (number, name, kind) in [
        (1u64, "ts", 3u64),
        (2, "uuid", 9),
        (3, "count", 5),
        (4, "country", 9),
        (5, "device", 9),
        (6, "price", 1),
    ] {
        let mut f = Vec::new();
        pb_bytes(&mut f, 1, name.as_bytes());
        pb_varint(&mut f, 3, number);
        pb_varint(&mut f, 4, 1);
        pb_varint(&mut f, 5, kind);
        pb_bytes(&mut msg, 2, &f);
    }
    let mut file = Vec::new();
    pb_bytes(&mut file, 1, b"event.proto");
    pb_bytes(&mut file, 2, b"riffle.bench");
    pb_bytes(&mut file, 4, &msg);
    let mut set = Vec::new();
    pb_bytes(&mut set, 1, &file);
    set
}

fn encode(rows: usize) -> Result<Encoded, BenchError> {
    let mut gen = EventGen::new(42);
    let mut buf = Vec::with_capacity(LINE_BYTES);
    let mut e = Encoded {
        json: Vec::with_capacity(rows),
        avro: Vec::with_capacity(rows),
        framed: Vec::with_capacity(rows),
        csv: Vec::with_capacity(rows),
        proto: Vec::with_capacity(rows),
    };
    for _ in 0..rows {
        buf.clear();
        gen.push_line(&mut buf);
        let line = &buf[..buf.len() - 1];
        let v: serde_json::Value =
            serde_json::from_slice(line).map_err(|x| err(format!("bench event: {x}")))?;
        let get_i = |k: &str| v.get(k).and_then(serde_json::Value::as_i64).unwrap_or(0);
        let get_s = |k: &str| v.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
        let price = v
            .get("price")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0);
        let mut a = Vec::with_capacity(128);
        long(&mut a, get_i("ts"));
        text(&mut a, get_s("uuid"));
        long(&mut a, get_i("count"));
        text(&mut a, get_s("country"));
        text(&mut a, get_s("device"));
        a.extend_from_slice(&price.to_le_bytes());
        let mut f = vec![0u8, 0, 0, 0, 1];
        f.extend_from_slice(&a);
        let csv = format!(
            "{},{},{},{},{},{}",
            get_i("ts"),
            get_s("uuid"),
            get_i("count"),
            get_s("country"),
            get_s("device"),
            v.get("price").map(|p| p.to_string()).unwrap_or_default()
        );
        e.json.push(Bytes::copy_from_slice(line));
        e.avro.push(Bytes::from(a));
        e.framed.push(Bytes::from(f));
        e.csv.push(Bytes::from(csv.into_bytes()));
        let mut pb = Vec::with_capacity(128);
        pb_varint(&mut pb, 1, get_i("ts") as u64);
        pb_bytes(&mut pb, 2, get_s("uuid").as_bytes());
        pb_varint(&mut pb, 3, get_i("count") as u64);
        pb_bytes(&mut pb, 4, get_s("country").as_bytes());
        pb_bytes(&mut pb, 5, get_s("device").as_bytes());
        uvarint(&mut pb, 6 << 3 | 1);
        pb.extend_from_slice(&price.to_le_bytes());
        e.proto.push(Bytes::from(pb));
    }
    Ok(e)
}

fn stream(decoder: &str, props: &[(&str, &str)]) -> Result<StreamConfig, BenchError> {
    let mut m: std::collections::BTreeMap<String, String> = [
        ("streamType", "memory"),
        ("stream.memory.topic.name", TABLE),
        ("stream.memory.decoder.class.name", decoder),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in props {
        m.insert(format!("stream.memory.decoder.prop.{k}"), v.to_string());
    }
    StreamConfig::parse("$", &m).map_err(|e| err(format!("stream config: {e}")))
}

/// One variant, ready to run.
struct Variant {
    name: String,
    config: StreamConfig,
    columns: std::sync::Arc<TableColumns>,
    target: DecodeTarget,
    plan: Option<IngestPlan>,
    messages: Vec<StreamMessage>,
}

fn messages(values: &[Bytes]) -> Vec<StreamMessage> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| StreamMessage {
            key: None,
            value: v.clone(),
            headers: vec![],
            offset: StreamOffset::Long(i as i64),
            next_offset: StreamOffset::Long(i as i64 + 1),
            timestamp_ms: None,
        })
        .collect()
}

impl Variant {
    /// Decodes every message once; nanoseconds per message.
    fn run(&self) -> Result<f64, BenchError> {
        let mut dec = decoder_for(&self.config, &self.columns, &self.target)
            .map_err(|e| err(format!("{}: decoder: {e}", self.name)))?;
        let special = SpecialColumns::new(&self.columns, false);
        let mut b =
            BlockBuilder::with_extras(self.columns.clone(), BATCH, self.target.extras.len());
        let start = Instant::now();
        let mut rows = 0usize;
        for chunk in self.messages.chunks(BATCH) {
            let stats = decode_batch(dec.as_mut(), &special, 0, chunk, &mut b, false);
            if stats.errors > 0 {
                return Err(err(format!("{}: {:?}", self.name, stats.first_error)));
            }
            let (batch, extras) = b
                .finish_with_extras()
                .map_err(|e| err(format!("{}: {e}", self.name)))?;
            rows += match &self.plan {
                None => batch.num_rows(),
                Some(p) => {
                    let a = p.apply(batch, extras);
                    if let Some((_, e)) = a.errors.first() {
                        return Err(err(format!("{}: {e}", self.name)));
                    }
                    a.batch.num_rows()
                }
            };
        }
        let ns = start.elapsed().as_nanos() as f64;
        if rows != self.messages.len() {
            return Err(err(format!(
                "{}: {rows} rows of {}",
                self.name,
                self.messages.len()
            )));
        }
        Ok(ns / rows.max(1) as f64)
    }
}

/// Runs the decoder benchmark (with `only`, the variants whose name contains it beside the
/// plain JSON path); `dir` holds the protobuf descriptor set it writes.
pub fn run_decode_bench(
    rows: usize,
    repeat: usize,
    only: Option<&str>,
    dir: &std::path::Path,
) -> Result<DecodeBenchReport, BenchError> {
    let load_before = LoadAvg::read();
    let enc = encode(rows)?;
    let desc = dir.join("event.desc");
    std::fs::write(&desc, proto_descriptor_set())
        .map_err(|e| err(format!("write {}: {e}", desc.display())))?;
    let desc_text = desc.display().to_string();
    let with_dir = DecodeTarget {
        file_roots: vec![dir.to_path_buf()],
        ..DecodeTarget::default()
    };
    let schema = schema()?;
    let columns = TableColumns::new(schema.columns().map_err(|e| err(e.to_string()))?);
    let json_class = "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder";
    let mut with_transforms: serde_json::Value =
        serde_json::from_str(SCHEMA_JSON).map_err(|e| err(e.to_string()))?;
    if let Some(d) = with_transforms
        .get_mut("dimensionFieldSpecs")
        .and_then(serde_json::Value::as_array_mut)
    {
        d.push(serde_json::json!({"name": "hour", "dataType": "LONG"}));
        d.push(serde_json::json!({"name": "countryLower", "dataType": "STRING"}));
        d.push(serde_json::json!({"name": "deviceKind", "dataType": "STRING"}));
    }
    let t_schema = Schema::from_json(with_transforms.to_string().as_bytes())
        .map_err(|e| err(e.to_string()))?;
    let t_columns = TableColumns::new(t_schema.columns().map_err(|e| err(e.to_string()))?);
    let t_table = TableConfig::from_json(
        format!(
            r#"{{"tableName":"{TABLE}","tableType":"OFFLINE","segmentsConfig":{{}},"tenants":{{}},
               "tableIndexConfig":{{}},"metadata":{{}},"ingestionConfig":{TRANSFORMS}}}"#
        )
        .as_bytes(),
    )
    .map_err(|e| err(e.to_string()))?;
    let plan = IngestPlan::new(&t_table, &t_schema, &t_columns, TransformOptions::default())
        .map_err(|e| err(e.to_string()))?
        .ok_or_else(|| err("no ingestion plan"))?;
    let plain = DecodeTarget::default();
    let header = "ts,uuid,count,country,device,price";
    let variants = vec![
        Variant {
            name: "JSON (plain path)".into(),
            config: stream(json_class, &[])?,
            columns: columns.clone(),
            target: plain.clone(),
            plan: None,
            messages: messages(&enc.json),
        },
        Variant {
            name: "JSON + 3 transforms".into(),
            config: stream(json_class, &[])?,
            columns: plan.staging().clone(),
            target: DecodeTarget {
                extras: plan.extras().to_vec(),
                complex: None,
                file_roots: Vec::new(),
            },
            plan: Some(plan),
            messages: messages(&enc.json),
        },
        Variant {
            name: "Avro (schema in config)".into(),
            config: stream(
                "org.apache.pinot.plugin.inputformat.avro.SimpleAvroMessageDecoder",
                &[("schema", AVRO_SCHEMA)],
            )?,
            columns: columns.clone(),
            target: plain.clone(),
            plan: None,
            messages: messages(&enc.avro),
        },
        Variant {
            name: "Avro, Confluent framing".into(),
            config: stream(
                "org.apache.pinot.plugin.inputformat.avro.SimpleAvroMessageDecoder",
                &[("schema", AVRO_SCHEMA), ("leading.bytes.to.strip", "5")],
            )?,
            columns: columns.clone(),
            target: plain.clone(),
            plan: None,
            messages: messages(&enc.framed),
        },
        Variant {
            name: "Protobuf (descriptor)".into(),
            config: stream(
                "org.apache.pinot.plugin.inputformat.protobuf.ProtoBufMessageDecoder",
                &[
                    ("descriptorFile", &desc_text),
                    ("protoClassName", "riffle.bench.Event"),
                ],
            )?,
            columns: columns.clone(),
            target: with_dir,
            plan: None,
            messages: messages(&enc.proto),
        },
        Variant {
            name: "CSV".into(),
            config: stream(
                "org.apache.pinot.plugin.inputformat.csv.CSVMessageDecoder",
                &[("header", header)],
            )?,
            columns: columns.clone(),
            target: plain,
            plan: None,
            messages: messages(&enc.csv),
        },
    ];
    let mut variants = variants;
    if let Some(o) = only.map(str::to_ascii_lowercase) {
        let mut i = 0;
        variants.retain(|v| {
            i += 1;
            i == 1 || v.name.to_ascii_lowercase().contains(&o)
        });
    }
    // Warm-up, then the variants take turns.
    for v in &variants {
        v.run()?;
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..repeat.max(1) {
        for (i, v) in variants.iter().enumerate() {
            samples[i].push(v.run()?);
        }
    }
    let figures = variants
        .iter()
        .zip(samples)
        .map(|(v, mut s)| {
            s.sort_by(|a, b| a.total_cmp(b));
            let ns = s[s.len() / 2];
            DecodeFigure {
                name: v.name.clone(),
                ns_per_row: ns,
                rows_per_sec: 1e9 / ns.max(1e-9),
                bytes_per_message: v.messages.iter().map(|m| m.value.len()).sum::<usize>() as f64
                    / v.messages.len().max(1) as f64,
            }
        })
        .collect();
    Ok(DecodeBenchReport {
        rows,
        repeat,
        figures,
        load: (load_before, LoadAvg::read()),
    })
}

impl DecodeBenchReport {
    /// The report as text: each variant beside the plain JSON path.
    pub fn render(&self) -> String {
        let mut out = format!(
            "decode stage, {} events x {} runs per variant (median), one thread, batches of {BATCH}\n",
            self.rows, self.repeat
        );
        let base = self.figures.first().map(|f| f.ns_per_row).unwrap_or(1.0);
        out.push_str(&format!(
            "{:<26} {:>8} {:>12} {:>10} {:>14} {:>14}\n",
            "variant", "bytes", "events/s", "ns/event", "rate vs JSON", "cost vs JSON"
        ));
        for f in &self.figures {
            out.push_str(&format!(
                "{:<26} {:>8.1} {:>12.0} {:>10.1} {:>13.2}x {:>13.2}x\n",
                f.name,
                f.bytes_per_message,
                f.rows_per_sec,
                f.ns_per_row,
                base / f.ns_per_row,
                f.ns_per_row / base
            ));
        }
        out.push_str(&format!(
            "load average before {} after {}\n",
            load_text(self.load.0),
            load_text(self.load.1)
        ));
        out
    }
}
