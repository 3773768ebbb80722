//! Ingestion from Pulsar and Kinesis, each beside a plain consumer of the same server in the
//! same run.
//!
//! ```text
//! cargo bench -p riffle-bench --bench stream_ingest -- [--rows N] [--kinesis-rows N] [--only pulsar|kinesis]
//! ```
//!
//! For each stream: N benchmark events (the Kafka benchmark's, ~146 bytes of JSON) are
//! written to a fresh topic (pulsar-lite, `$RIFFLE_PULSAR_LITE`) or stream (kinesis-mock,
//! `$RIFFLE_KINESIS_MOCK`, in a network namespace of its own: the bench re-runs itself
//! under `unshare -n` for it), then read twice:
//! - **plain**: the plugin's own protocol client reading every message, nothing else (no
//!   decoding, no indexing): what the server can hand out;
//! - **riffle**: a node with a table on it, from table creation until all N rows are
//!   queryable.
//!
//! The plain consumer reads once to warm the server's caches, then Riffle and the plain
//! consumer are measured, partitions read in parallel by both. Printed per stream: rows/s
//! of both and their ratio, and CPU per row of this process during each (the server runs
//! in its own process). Load averages before and after.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use riffle_bench::{process_cpu_secs, EventGen, LoadAvg, MachineFacts, SCHEMA_JSON};
use riffle_common::TableNameWithType;
use riffle_config::{Schema, TableConfig};
use riffle_node::{Node, NodeConfig};
use riffle_stream::{OffsetCriteria, StreamConfig, StreamContext, StreamPlugin};

type Res<T> = Result<T, String>;

const USAGE: &str = "usage: stream_ingest [--rows N] [--kinesis-rows N] [--only pulsar|kinesis]";
const NETNS_ENV: &str = "RIFFLE_BENCH_NETNS";

struct Cfg {
    rows: u64,
    kinesis_rows: u64,
    only: Option<String>,
}

fn parse_args() -> Res<Cfg> {
    let mut cfg = Cfg {
        rows: 200_000,
        kinesis_rows: 20_000,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rows" => {
                cfg.rows = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--rows needs a positive number")?
            }
            "--kinesis-rows" => {
                cfg.kinesis_rows = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n > 0)
                    .ok_or("--kinesis-rows needs a positive number")?
            }
            "--only" => cfg.only = Some(args.next().ok_or("--only needs pulsar or kinesis")?),
            "--bench" => {}
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    Ok(cfg)
}

fn events(n: u64) -> Vec<Vec<u8>> {
    let mut g = EventGen::new(42);
    (0..n)
        .map(|_| {
            let mut line = Vec::with_capacity(160);
            g.push_line(&mut line);
            line.pop();
            line
        })
        .collect()
}

/// One side's result.
struct Side {
    secs: f64,
    cpu: Option<f64>,
}

fn show(stream: &str, rows: u64, plain: &Side, riffle: &Side) {
    let rate = |s: &Side| rows as f64 / s.secs;
    let ns = |s: &Side| s.cpu.map(|c| c * 1e9 / rows as f64);
    println!("{stream}: {rows} rows");
    println!(
        "  plain consumer: {:>12.0} rows/s  cpu {:>8} ns/row",
        rate(plain),
        ns(plain).map_or("n/a".into(), |v| format!("{v:.0}"))
    );
    println!(
        "  riffle:         {:>12.0} rows/s  cpu {:>8} ns/row",
        rate(riffle),
        ns(riffle).map_or("n/a".into(), |v| format!("{v:.0}"))
    );
    println!(
        "  riffle / plain rows/s: {:.2}x",
        rate(riffle) / rate(plain)
    );
    if let (Some(a), Some(b)) = (ns(riffle), ns(plain)) {
        println!("  riffle / plain cpu per row: {:.2}x", a / b);
    }
}

/// A node with one table on `streams`, timed from creation until `rows` rows are queryable.
async fn riffle_run(dir: &Path, streams: serde_json::Value, rows: u64) -> Res<Side> {
    let mut config = NodeConfig::loopback(dir.join("node"));
    config.discovery_interval = Duration::from_secs(3600);
    let node = Node::open(config, riffle_node::default_streams())
        .await
        .map_err(|e| format!("open node: {}", riffle_common::chain(&e)))?;
    let schema = Schema::from_json(SCHEMA_JSON.as_bytes()).map_err(|e| format!("schema: {e}"))?;
    let sc = streams;
    let table = serde_json::json!({
        "tableName": "bench_events",
        "tableType": "REALTIME",
        "segmentsConfig": {"timeColumnName": "ts", "schemaName": "bench_events", "replicasPerPartition": "1"},
        "tenants": {},
        "tableIndexConfig": {"loadMode": "MMAP", "streamConfigs": sc},
        "metadata": {}
    });
    let table = TableConfig::from_json(table.to_string().as_bytes())
        .map_err(|e| format!("table config: {e}"))?;
    let name = TableNameWithType::parse("bench_events_REALTIME").map_err(|e| e.to_string())?;
    let cpu0 = process_cpu_secs();
    let start = Instant::now();
    node.tables()
        .create_table(table, schema, true)
        .await
        .map_err(|e| format!("create table: {e}"))?;
    let mut last = (0u64, Instant::now());
    let secs = loop {
        let n: u64 = node.segments().table("bench_events").map_or(0, |t| {
            t.segments().iter().map(|s| s.num_rows() as u64).sum()
        });
        if n >= rows {
            break start.elapsed().as_secs_f64();
        }
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(60) {
            let st = node.tables().server().status(&name).unwrap_or_default();
            node.shutdown().await;
            return Err(format!(
                "no progress for 60 s at {n} of {rows} rows: {st:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let cpu1 = process_cpu_secs();
    node.shutdown().await;
    Ok(Side {
        secs,
        cpu: cpu0.zip(cpu1).map(|(a, b)| b - a),
    })
}

/// When the last message arrived, and this process's CPU seconds then.
type EndMark = (Instant, Option<f64>);

/// Reads every message of every partition with the plugin's own consumer, partitions in
/// parallel (as the node reads them). The run ends when the last of the N messages arrives
/// (not when the readers have waited out their last empty fetch).
async fn plain_run(
    plugin: Arc<dyn StreamPlugin>,
    map: &std::collections::BTreeMap<String, String>,
    rows: u64,
) -> Res<Side> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let cfg = StreamConfig::parse("$", map).map_err(|e| e.to_string())?;
    let ctx = StreamContext::new(std::env::temp_dir());
    let cpu0 = process_cpu_secs();
    let start = Instant::now();
    let mut md = plugin
        .metadata_provider(&cfg, &ctx)
        .await
        .map_err(|e| e.to_string())?;
    let t = Duration::from_secs(10);
    let read = Arc::new(AtomicU64::new(0));
    let done: Arc<std::sync::Mutex<Option<EndMark>>> = Arc::default();
    let mut tasks = Vec::new();
    for p in md.partition_ids(t).await.map_err(|e| e.to_string())? {
        let from = md
            .offset_for(p, &OffsetCriteria::Smallest, t)
            .await
            .map_err(|e| e.to_string())?;
        let (plugin, cfg, ctx) = (plugin.clone(), cfg.clone(), ctx.clone());
        let (read, done) = (read.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = plugin
                .partition_consumer(&cfg, &ctx, p)
                .await
                .map_err(|e| e.to_string())?;
            let mut at = from;
            loop {
                let b = c
                    .fetch(&at, Duration::from_millis(500))
                    .await
                    .map_err(|e| e.to_string())?;
                let n = b.messages.len() as u64;
                let total = read.fetch_add(n, Ordering::SeqCst) + n;
                if n > 0 && total >= rows {
                    if let Ok(mut d) = done.lock() {
                        d.get_or_insert((Instant::now(), process_cpu_secs()));
                    }
                }
                if b.messages.is_empty() || b.end_of_partition || total >= rows {
                    return Ok::<(), String>(());
                }
                at = b.next_offset;
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| e.to_string())??;
    }
    let total = read.load(Ordering::SeqCst);
    if total != rows {
        return Err(format!(
            "the plain consumer read {total} messages, expected {rows}"
        ));
    }
    let (end, cpu1) = done
        .lock()
        .ok()
        .and_then(|d| *d)
        .ok_or("the plain consumer never reached the end")?;
    Ok(Side {
        secs: (end - start).as_secs_f64(),
        cpu: cpu0.zip(cpu1).map(|(a, b)| b - a),
    })
}

async fn pulsar(cfg: &Cfg, dir: &Path) -> Res<()> {
    use riffle_pulsar::testing::PulsarLite;
    let broker = PulsarLite::start_with_partitions(2).map_err(|e| format!("{e:#}"))?;
    let data = events(cfg.rows);
    for (p, chunk) in [0usize, 1]
        .iter()
        .zip([&data[..data.len() / 2], &data[data.len() / 2..]])
    {
        broker
            .produce(&format!("bench-partition-{p}"), chunk)
            .await
            .map_err(|e| format!("produce: {e:#}"))?;
    }
    let map = broker.stream_config("bench");
    // A first plain read warms the server's caches; the measured runs follow it.
    plain_run(Arc::new(riffle_pulsar::PulsarPlugin), &map, cfg.rows).await?;
    let mut sc: serde_json::Map<String, serde_json::Value> = map
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::json!(v)))
        .collect();
    sc.insert(
        "stream.pulsar.consumer.prop.auto.offset.reset".into(),
        "smallest".into(),
    );
    sc.insert("realtime.segment.flush.threshold.rows".into(), "0".into());
    sc.insert(
        "realtime.segment.flush.threshold.segment.size".into(),
        "100M".into(),
    );
    let riffle = riffle_run(&dir.join("pulsar"), serde_json::Value::Object(sc), cfg.rows).await?;
    let plain = plain_run(Arc::new(riffle_pulsar::PulsarPlugin), &map, cfg.rows).await?;
    show(
        "pulsar (pulsar-lite 0.2.0, 2 partitions)",
        cfg.rows,
        &plain,
        &riffle,
    );
    Ok(())
}

async fn kinesis(cfg: &Cfg, dir: &Path) -> Res<()> {
    use riffle_kinesis::testing::KinesisMock;
    let mock = KinesisMock::start().await.map_err(|e| format!("{e:#}"))?;
    mock.create_stream("bench", 2)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let data = events(cfg.kinesis_rows);
    mock.put("bench", 0, &data[..data.len() / 2])
        .await
        .map_err(|e| format!("{e:#}"))?;
    mock.put("bench", 1, &data[data.len() / 2..])
        .await
        .map_err(|e| format!("{e:#}"))?;
    let map = mock.stream_config("bench");
    // A first plain read warms the server's caches; the measured runs follow it.
    plain_run(
        Arc::new(riffle_kinesis::KinesisPlugin),
        &map,
        cfg.kinesis_rows,
    )
    .await?;
    let mut sc: serde_json::Map<String, serde_json::Value> = map
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::json!(v)))
        .collect();
    sc.insert(
        "stream.kinesis.consumer.prop.auto.offset.reset".into(),
        "smallest".into(),
    );
    sc.insert("realtime.segment.flush.threshold.rows".into(), "0".into());
    sc.insert(
        "realtime.segment.flush.threshold.segment.size".into(),
        "100M".into(),
    );
    let riffle = riffle_run(
        &dir.join("kinesis"),
        serde_json::Value::Object(sc),
        cfg.kinesis_rows,
    )
    .await?;
    let plain = plain_run(
        Arc::new(riffle_kinesis::KinesisPlugin),
        &map,
        cfg.kinesis_rows,
    )
    .await?;
    show(
        "kinesis (kinesis-mock 0.6.2 on node, 2 shards)",
        cfg.kinesis_rows,
        &plain,
        &riffle,
    );
    Ok(())
}

/// A query to ClickHouse's HTTP interface; the answer's body.
fn clickhouse(port: u16, sql: &str) -> Res<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))
        .map_err(|e| format!("clickhouse: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{sql}",
        sql.len()
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("clickhouse: {e}"))?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("clickhouse: {e}"))?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((out.as_str(), ""));
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(format!("clickhouse answered {head}: {body}"));
    }
    Ok(body.trim().to_string())
}

/// Kafka (noida-db): Riffle against ClickHouse's Kafka engine draining the same topic into a
/// MergeTree table (`$RIFFLE_CLICKHOUSE`, from `scripts/clickhouse.sh`).
async fn kafka_vs_clickhouse(cfg: &Cfg, dir: &Path) -> Res<()> {
    use riffle_kafka::testing::{produce, Noida, TestRecord};
    let start_script = std::env::var_os("RIFFLE_CLICKHOUSE")
        .ok_or("RIFFLE_CLICKHOUSE is not set: RIFFLE_CLICKHOUSE=$(scripts/clickhouse.sh)")?;
    let noida = Noida::start().map_err(|e| format!("{e:#}"))?;
    let topic = "bench_ch";
    noida
        .create_topic(topic, 2)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let producer = noida.producer().map_err(|e| format!("{e:#}"))?;
    let data = events(cfg.rows);
    produce(
        &producer,
        topic,
        data.iter()
            .enumerate()
            .map(|(i, v)| TestRecord::value((i % 2) as i32, v.clone())),
    )
    .await
    .map_err(|e| format!("produce: {e:#}"))?;

    // ClickHouse: a Kafka table, a MergeTree table, a materialized view between them.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let chdir = dir.join("clickhouse");
    let mut server = std::process::Command::new(&start_script)
        .arg(&chdir)
        .arg(port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("start clickhouse: {e}"))?;
    let ready = Instant::now();
    while clickhouse(port, "SELECT 1").is_err() {
        if ready.elapsed() > Duration::from_secs(60) {
            let _ = server.kill();
            return Err("clickhouse did not answer within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cols = "ts UInt64, uuid String, count Int64, country String, device String, price Float64";
    let run = || -> Res<f64> {
        clickhouse(
            port,
            &format!("CREATE TABLE dst ({cols}) ENGINE = MergeTree ORDER BY ts"),
        )?;
        clickhouse(
            port,
            &format!(
                "CREATE TABLE queue ({cols}) ENGINE = Kafka('{}', '{topic}', 'clickhouse-bench', 'JSONEachRow', '\\n', '', 2)",
                noida.bootstrap()
            ),
        )?;
        let start = Instant::now();
        clickhouse(
            port,
            "CREATE MATERIALIZED VIEW mv TO dst AS SELECT * FROM queue",
        )?;
        let mut last = (0u64, Instant::now());
        loop {
            let n: u64 = clickhouse(port, "SELECT count() FROM dst")?
                .parse()
                .unwrap_or(0);
            if n >= cfg.rows {
                return Ok(start.elapsed().as_secs_f64());
            }
            if n != last.0 {
                last = (n, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(120) {
                return Err(format!(
                    "clickhouse: no progress for 120 s at {n} of {} rows",
                    cfg.rows
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let ch = run();
    let _ = server.kill();
    let _ = server.wait();
    let ch_secs = ch?;

    let sc = serde_json::json!({
        "streamType": "kafka",
        "stream.kafka.topic.name": topic,
        "stream.kafka.broker.list": noida.bootstrap(),
        "stream.kafka.decoder.class.name": "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
        "stream.kafka.consumer.factory.class.name": "org.apache.pinot.plugin.stream.kafka30.KafkaConsumerFactory",
        "stream.kafka.consumer.prop.auto.offset.reset": "smallest",
        "realtime.segment.flush.threshold.rows": "0",
        "realtime.segment.flush.threshold.segment.size": "100M"
    });
    let riffle = riffle_run(&dir.join("kafka"), sc, cfg.rows).await?;
    let rate = |secs: f64| cfg.rows as f64 / secs;
    println!("kafka (noida-db, 2 partitions): {} rows", cfg.rows);
    println!(
        "  clickhouse 18.16 Kafka engine -> MergeTree: {:>12.0} rows/s",
        rate(ch_secs)
    );
    println!(
        "  riffle:                                      {:>12.0} rows/s",
        rate(riffle.secs)
    );
    println!(
        "  riffle / clickhouse rows/s: {:.2}x",
        ch_secs / riffle.secs
    );
    Ok(())
}

/// Runs the Kinesis part again inside a private network namespace (kinesis-mock binds every
/// address).
fn kinesis_in_netns(cfg: &Cfg) -> Res<()> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let outer = std::fs::read_link("/proc/self/ns/net").map_err(|e| e.to_string())?;
    let status = std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$@\"", "sh"])
        .arg(&exe)
        .args([
            "--kinesis-rows",
            &cfg.kinesis_rows.to_string(),
            "--only",
            "kinesis",
        ])
        .env(NETNS_ENV, "1")
        .env("RIFFLE_TEST_NETNS", outer)
        .status()
        .map_err(|e| format!("unshare -n: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the kinesis run failed ({status})"))
    }
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let inner = std::env::var_os(NETNS_ENV).is_some();
    if !inner {
        let f = MachineFacts::read();
        println!(
            "machine: {} cpus, {}, {:.0} GiB",
            f.nproc, f.cpu_model, f.mem_gib
        );
        println!(
            "load before: {}",
            LoadAvg::read().map_or_else(|| "n/a".into(), |l| l.to_string())
        );
    }
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tempdir: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The ClickHouse comparison runs only when asked (`--only clickhouse`).
    let want = |s: &str| cfg.only.as_deref().is_none_or(|o| o == s);
    let mut failed = false;
    if want("pulsar") && !inner {
        if let Err(e) = rt.block_on(pulsar(&cfg, dir.path())) {
            eprintln!("pulsar: {e}");
            failed = true;
        }
    }
    if cfg.only.as_deref() == Some("clickhouse") && !inner {
        if let Err(e) = rt.block_on(kafka_vs_clickhouse(&cfg, dir.path())) {
            eprintln!("clickhouse: {e}");
            failed = true;
        }
    }
    if want("kinesis") {
        let r = if inner {
            rt.block_on(kinesis(&cfg, dir.path()))
        } else {
            kinesis_in_netns(&cfg)
        };
        if let Err(e) = r {
            eprintln!("kinesis: {e}");
            failed = true;
        }
    }
    if !inner {
        println!(
            "load after: {}",
            LoadAvg::read().map_or_else(|| "n/a".into(), |l| l.to_string())
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
