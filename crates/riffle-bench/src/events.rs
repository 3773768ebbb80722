//! The benchmark's events (exactly [`EVENT_BYTES`] bytes of JSON each), its table and
//! schema, and writing events to the file stream's partition files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use riffle_config::{Schema, StreamConfig, TableConfig};

use crate::*;

/// Bytes of one event, without its newline.
pub const EVENT_BYTES: usize = 146;

/// Bytes of one event line in the file, with its newline.
pub const LINE_BYTES: usize = EVENT_BYTES + 1;

/// Raw table name (and topic) of the benchmark.
pub const TABLE: &str = "bench_events";

/// The event time of event 0 (2023-11-14T22:13:20Z); event `i` is `i` ms later.
pub const BASE_TS_MS: i64 = 1_700_000_000_000;

/// Countries (ISO codes), picked uniformly.
pub const COUNTRIES: [&str; 12] = [
    "US", "DE", "FR", "GB", "IN", "BR", "JP", "CA", "NL", "ES", "IT", "SE",
];

/// Device kinds; the rest of the device field is a build string that pads the event.
pub const DEVICES: [&str; 6] = [
    "android",
    "ios",
    "web",
    "smart-tv",
    "android-tablet",
    "ipad",
];

/// Build strings pad the device field to make every event exactly [`EVENT_BYTES`].
pub const BUILD: &str = "build-2024.11.3-rc7-8f3a2c9d1e0b4a6f";

/// The benchmark table's schema.
pub const SCHEMA_JSON: &str = r#"{
  "schemaName": "bench_events",
  "dimensionFieldSpecs": [
    {"name": "uuid", "dataType": "STRING"},
    {"name": "country", "dataType": "STRING"},
    {"name": "device", "dataType": "STRING"}
  ],
  "metricFieldSpecs": [
    {"name": "count", "dataType": "INT"},
    {"name": "price", "dataType": "DOUBLE"}
  ],
  "dateTimeFieldSpecs": [
    {"name": "ts", "dataType": "TIMESTAMP", "format": "1:MILLISECONDS:EPOCH",
     "granularity": "1:MILLISECONDS"}
  ]
}"#;

/// The benchmark table's config: the `file` stream, Pinot's Kafka JSON decoder (an alias),
/// reading from the smallest offset. Flush settings are those of `examples/events`.
pub const TABLE_CONFIG_JSON: &str = r#"{
  "tableName": "bench_events",
  "tableType": "REALTIME",
  "segmentsConfig": {
    "timeColumnName": "ts",
    "schemaName": "bench_events",
    "replicasPerPartition": "1"
  },
  "tenants": {},
  "tableIndexConfig": {
    "loadMode": "MMAP",
    "streamConfigs": {
      "streamType": "file",
      "stream.file.topic.name": "bench_events",
      "stream.file.decoder.class.name": "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
      "stream.file.consumer.prop.auto.offset.reset": "smallest",
      "realtime.segment.flush.threshold.rows": "0",
      "realtime.segment.flush.threshold.time": "24h",
      "realtime.segment.flush.threshold.segment.size": "100M"
    }
  },
  "metadata": {}
}"#;

/// A small deterministic generator (splitmix64).
#[derive(Debug, Clone)]
pub struct EventGen {
    state: u64,
    next: u64,
}

impl EventGen {
    /// A generator whose first event is event 0.
    pub fn new(seed: u64) -> EventGen {
        EventGen {
            state: seed,
            next: 0,
        }
    }

    fn rand(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Appends the next event and its newline to `out`: exactly [`LINE_BYTES`] bytes.
    pub fn push_line(&mut self, out: &mut Vec<u8>) {
        use std::fmt::Write as _;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let i = self.next;
        self.next += 1;
        let (a, b, c) = (self.rand(), self.rand(), self.rand());
        let mut hex = [0u8; 32];
        for k in 0..16 {
            hex[k] = HEX[((a >> (60 - 4 * k)) & 15) as usize];
            hex[16 + k] = HEX[((b >> (60 - 4 * k)) & 15) as usize];
        }
        hex[12] = b'4'; // version 4
        hex[16] = HEX[8 + (b >> 62) as usize]; // variant 10xx
        let h = |r: std::ops::Range<usize>| std::str::from_utf8(&hex[r]).unwrap_or("0");
        let count = c % 100_000;
        let country = COUNTRIES[((c >> 17) % COUNTRIES.len() as u64) as usize];
        let device = DEVICES[((c >> 23) % DEVICES.len() as u64) as usize];
        let cents = (c >> 29) % 100_000;
        let mut line = String::with_capacity(EVENT_BYTES + 8);
        let _ = write!(
            line,
            r#"{{"ts":{},"uuid":"{}-{}-{}-{}-{}","count":{count},"country":"{country}","device":"{device}"#,
            BASE_TS_MS + i as i64,
            h(0..8),
            h(8..12),
            h(12..16),
            h(16..20),
            h(20..32),
        );
        let price = format!("{}.{:02}", cents / 100, cents % 100);
        let tail = r#"","price":"#.len() + price.len() + 1;
        let pad = EVENT_BYTES.saturating_sub(line.len() + tail);
        if pad > 0 {
            line.push('/');
            line.push_str(&BUILD[..(pad - 1).min(BUILD.len())]);
        }
        let _ = write!(line, r#"","price":{price}}}"#);
        assert_eq!(
            line.len(),
            EVENT_BYTES,
            "bench event is not {EVENT_BYTES} bytes: {line}"
        );
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
}

/// The first event the throughput phase writes, without its newline.
pub fn sample_event() -> String {
    let mut gen = EventGen::new(42);
    let mut buf = Vec::with_capacity(LINE_BYTES);
    gen.push_line(&mut buf);
    String::from_utf8_lossy(&buf[..EVENT_BYTES]).into_owned()
}

/// The partition file of `p` under a data directory.
pub fn partition_file(data_dir: &Path, p: u32) -> PathBuf {
    data_dir
        .join("streams")
        .join(TABLE)
        .join(format!("{p}.jsonl"))
}

/// Writes `rows` events round-robin into `partitions` files. Returns bytes written.
pub fn write_events(data_dir: &Path, rows: u64, partitions: u32) -> Result<u64, BenchError> {
    let topic = data_dir.join("streams").join(TABLE);
    std::fs::create_dir_all(&topic).map_err(|e| io_err("create", &topic, e))?;
    let mut files = Vec::new();
    for p in 0..partitions {
        let path = partition_file(data_dir, p);
        let f = File::create(&path).map_err(|e| io_err("create", &path, e))?;
        files.push((path, BufWriter::with_capacity(1 << 20, f)));
    }
    let mut gen = EventGen::new(42);
    let mut line = Vec::with_capacity(LINE_BYTES);
    for i in 0..rows {
        line.clear();
        gen.push_line(&mut line);
        let (path, w) = &mut files[(i % partitions as u64) as usize];
        w.write_all(&line).map_err(|e| io_err("write", path, e))?;
    }
    for (path, mut w) in files {
        w.flush().map_err(|e| io_err("write", &path, e))?;
    }
    Ok(rows * LINE_BYTES as u64)
}

pub fn schema() -> Result<Schema, BenchError> {
    Schema::from_json(SCHEMA_JSON.as_bytes()).map_err(|e| err(format!("bench schema: {e}")))
}

pub fn table_config() -> Result<TableConfig, BenchError> {
    TableConfig::from_json(TABLE_CONFIG_JSON.as_bytes())
        .map_err(|e| err(format!("bench table config: {e}")))
}

pub fn stream_config(table: &TableConfig) -> Result<StreamConfig, BenchError> {
    table
        .streams()
        .first()
        .cloned()
        .ok_or_else(|| err("bench table has no stream"))
}

/// The table a phase runs, and how the in-process server is set up for it.
#[derive(Clone, Debug)]
pub struct TableSetup {
    /// The table config (the bench table, or a variant of it).
    pub table: TableConfig,
    /// Overrides `NodeConfig::max_consuming_bytes` (the memory cap of a consuming
    /// segment); `None` keeps the node's default.
    pub max_consuming_bytes: Option<usize>,
}

impl TableSetup {
    /// The bench table as [`TABLE_CONFIG_JSON`] has it, with the server's defaults.
    pub fn bench_default() -> Result<TableSetup, BenchError> {
        Ok(TableSetup {
            table: table_config()?,
            max_consuming_bytes: None,
        })
    }
}

/// [`write_events`] on the blocking pool.
pub async fn write_events_async(
    data_dir: &Path,
    rows: u64,
    partitions: u32,
) -> Result<u64, BenchError> {
    let d = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || write_events(&d, rows, partitions))
        .await
        .map_err(|e| err(format!("writer task: {e}")))?
}
