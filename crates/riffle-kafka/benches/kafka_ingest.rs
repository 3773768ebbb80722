//! Kafka ingestion benchmark: how fast rows go from a Kafka broker to queryable through
//! Riffle's real ingestion path, against a plain librdkafka consumer draining the same
//! topic (the ceiling), and the publish-to-query latency at half the maximum rate.
//!
//! ```text
//! CARGO_TARGET_DIR=/tmp/kbench-target cargo bench -p riffle-kafka --bench kafka_ingest -- \
//!     [--rows N] [--partitions P] [--fetch-wait-ms W] [--latency-secs S] \
//!     [--latency-rate R] [--no-latency] [--no-plain] [--table-prop KEY=VALUE]... \
//!     [--wait-quiet SECS]
//! ```
//!
//! The broker is a local Tansu (`scripts/tansu.sh`) with in-memory storage on a free
//! loopback port. Phases, in one process:
//!
//! 1. **fill**: `N` (default 10,000,000) events of exactly 146 bytes (the generator of the
//!    file-stream benchmark, `riffle_ingest::bench::EventGen`) are produced round-robin into
//!    `P` partitions (default 2) of topic `bench_events` before anything reads them.
//! 2. **plain consumer** (the ceiling): librdkafka consumers drain the topic from offset
//!    0, counting messages and touching every payload: once with one consumer assigned all
//!    partitions, once with one consumer per partition on its own thread (Riffle's shape),
//!    and that again after Riffle's run. librdkafka's defaults (64 MiB prefetch queues),
//!    except `fetch.queue.backoff.ms` 10 as Riffle's clients (see below). The best of
//!    the three is the ceiling.
//! 3. **Riffle**: catalog, segment registry and `IngestManager` with the Kafka plugin, wired
//!    as the server wires them; the table (`streamType: kafka`, Pinot's Kafka JSON decoder,
//!    offset criteria smallest) is created, a clock starts with `start_table`, and the
//!    published row count (what a query sees) is polled every millisecond until it is
//!    exactly `N`; the partitions' read counters must also say `N`.
//! 4. **latency**: a second table consumes an empty topic; a producer thread produces at
//!    half the maximum rate (the lower of the fill rate of phase 1 and Riffle's rate of
//!    phase 3; or `--latency-rate`) in 5 ms ticks for `S` seconds (default 10); per tick it
//!    records the cumulative count and when it was sent, a watcher polling every
//!    millisecond records when the broker had acknowledged that many messages (the
//!    publish) and when that many rows were queryable. Producer, broker and Riffle share
//!    the machine's cores.
//!
//! Tansu's fetch answers only after sleeping half of the request's `max_wait_ms` (250 ms
//! with librdkafka's default `fetch.wait.max.ms` of 500), even when it has records, which
//! would make every fetch a quarter of a second for any client. Both Riffle's table
//! (`fetch.max.wait.ms`, the Java key Pinot users write) and the plain consumers
//! (`fetch.wait.max.ms`) are therefore given `--fetch-wait-ms` (default 10): a real Kafka
//! broker answers as soon as it has data and needs no such setting.
//!
//! The load average is printed before and after each phase: a figure measured while the
//! machine was busy is not a figure. `--wait-quiet SECS` waits up to SECS for the 1-minute
//! load to drop below 1.0 before starting.
//!
//! `--table-prop KEY=VALUE` sets a key of the table's stream config, `--table-prop KEY=`
//! removes one: e.g. `--table-prop realtime.segment.flush.threshold.segment.size=
//! --table-prop realtime.segment.flush.threshold.rows=100000000` for a run without seals.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use riffle_catalog::Catalog;
use riffle_config::{Schema, TableConfig};
use riffle_ingest::bench::{
    process_cpu_secs, EventGen, LoadAvg, MachineFacts, Rate, EVENT_BYTES, LINE_BYTES, SCHEMA_JSON,
};
use riffle_ingest::{IngestContext, IngestManager, PartitionState};
use riffle_kafka::testing::{Tansu, TansuOptions};
use riffle_segment::SegmentRegistry;
use riffle_stream::StreamRegistry;

type Res<T> = Result<T, String>;

const USAGE: &str = "usage: kafka_ingest [--rows N] [--partitions P] [--fetch-wait-ms W] \
[--latency-secs S] [--latency-rate R] [--no-latency] [--no-plain] [--table-prop KEY=VALUE]... [--wait-quiet SECS]";

#[derive(Clone, Debug)]
struct Cfg {
    rows: u64,
    partitions: u32,
    fetch_wait_ms: u64,
    latency_secs: f64,
    latency_rate: Option<u64>,
    tick: Duration,
    poll: Duration,
    wait_quiet: u64,
    plain: bool,
    /// Extra stream-config keys of Riffle's tables.
    table_props: Vec<(String, String)>,
}

fn parse_args() -> Res<Cfg> {
    let mut c = Cfg {
        rows: 10_000_000,
        partitions: 2,
        fetch_wait_ms: 10,
        latency_secs: 10.0,
        latency_rate: None,
        tick: Duration::from_millis(5),
        poll: Duration::from_millis(1),
        wait_quiet: 0,
        plain: true,
        table_props: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        fn num<T: std::str::FromStr>(name: &str, v: &str) -> Res<T> {
            v.replace('_', "")
                .parse()
                .map_err(|_| format!("{name}: '{v}' is not a number\n{USAGE}"))
        }
        match a.as_str() {
            "--bench" => {}
            "--rows" => c.rows = num("--rows", &value("--rows")?)?,
            "--partitions" => c.partitions = num("--partitions", &value("--partitions")?)?,
            "--fetch-wait-ms" => {
                c.fetch_wait_ms = num("--fetch-wait-ms", &value("--fetch-wait-ms")?)?
            }
            "--latency-secs" => c.latency_secs = num("--latency-secs", &value("--latency-secs")?)?,
            "--latency-rate" => {
                c.latency_rate = Some(num("--latency-rate", &value("--latency-rate")?)?)
            }
            "--no-latency" => c.latency_secs = 0.0,
            "--no-plain" => c.plain = false,
            "--table-prop" => {
                let v = value("--table-prop")?;
                let (k, v) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--table-prop wants key=value\n{USAGE}"))?;
                c.table_props.push((k.to_string(), v.to_string()));
            }
            "--wait-quiet" => c.wait_quiet = num("--wait-quiet", &value("--wait-quiet")?)?,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    if c.rows < u64::from(c.partitions) || c.partitions == 0 {
        return Err("rows must be at least partitions, partitions at least 1".into());
    }
    Ok(c)
}

/// CPU seconds (user + system) of a process, from /proc/<pid>/stat (USER_HZ = 100).
fn cpu_of(pid: Option<u32>) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let f: Vec<&str> = s[s.rfind(')')? + 2..].split_whitespace().collect();
    Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
}

fn load() -> String {
    LoadAvg::read().map_or_else(|| "n/a".into(), |l| l.to_string())
}

fn thousands(v: f64) -> String {
    let s = (v.round() as u64).to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

// ---------------------------------------------------------------------------------------
// Producing

/// Counts delivery reports.
#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: parking_lot::Mutex<Option<String>>,
}

struct CountingContext(Arc<Deliveries>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => {
                self.0.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                self.0
                    .first_error
                    .lock()
                    .get_or_insert_with(|| e.to_string());
            }
        }
    }
}

fn producer(
    bootstrap: &str,
    linger_ms: &str,
) -> Res<(ThreadedProducer<CountingContext>, Arc<Deliveries>)> {
    let d = Arc::new(Deliveries::default());
    let p = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", linger_ms)
        .set("batch.size", "1000000")
        .set("batch.num.messages", "100000")
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "2097151")
        .set("message.timeout.ms", "300000")
        .set("acks", "1")
        .create_with_context(CountingContext(d.clone()))
        .map_err(|e| format!("producer: {e}"))?;
    Ok((p, d))
}

/// Sends one record, waiting while librdkafka's queue is full.
fn send(
    p: &ThreadedProducer<CountingContext>,
    topic: &str,
    partition: i32,
    line: &[u8],
) -> Res<()> {
    let mut rec = BaseRecord::<(), [u8]>::to(topic)
        .partition(partition)
        .payload(line);
    loop {
        match p.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                rec = r;
                std::thread::sleep(Duration::from_micros(500));
            }
            Err((e, _)) => return Err(format!("produce to {topic}: {e}")),
        }
    }
}

/// Produces `rows` events round-robin into the partitions; returns the seconds it took
/// until every one was acknowledged.
fn fill(bootstrap: &str, topic: &str, rows: u64, partitions: u32) -> Res<f64> {
    let (p, d) = producer(bootstrap, "20")?;
    let mut gen = EventGen::new(42);
    let mut buf = Vec::with_capacity(LINE_BYTES);
    let start = Instant::now();
    let mut last_report = Instant::now();
    for i in 0..rows {
        buf.clear();
        gen.push_line(&mut buf);
        send(
            &p,
            topic,
            (i % u64::from(partitions)) as i32,
            &buf[..EVENT_BYTES],
        )?;
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!(
                "  fill: {} sent, {} acknowledged after {:.0} s",
                thousands((i + 1) as f64),
                thousands(d.ok.load(Ordering::Relaxed) as f64),
                start.elapsed().as_secs_f64()
            );
        }
    }
    p.flush(Duration::from_secs(600))
        .map_err(|e| format!("flush: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    let (ok, failed) = (d.ok.load(Ordering::SeqCst), d.failed.load(Ordering::SeqCst));
    if ok != rows || failed != 0 {
        return Err(format!(
            "fill: {ok} of {rows} acknowledged, {failed} failed: {:?}",
            d.first_error.lock()
        ));
    }
    Ok(secs)
}

// ---------------------------------------------------------------------------------------
// The plain consumer

fn plain_config(bootstrap: &str, fetch_wait_ms: u64) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("group.id", "kafka-ingest-bench")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        // As Riffle's clients: librdkafka's 1 s default pause after a full queue would make
        // the ceiling a matter of queue sizes.
        .set("fetch.queue.backoff.ms", "10");
    c
}

/// Drains `partitions` from offset 0 with one consumer; returns (messages, payload bytes).
fn drain(
    bootstrap: &str,
    topic: &str,
    partitions: &[i32],
    want: u64,
    fetch_wait_ms: u64,
) -> Res<(u64, u64)> {
    let c: BaseConsumer = plain_config(bootstrap, fetch_wait_ms)
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    c.assign(&tpl).map_err(|e| e.to_string())?;
    let (mut n, mut bytes) = (0u64, 0u64);
    let mut last = Instant::now();
    while n < want {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let v = m.payload().unwrap_or_default();
                // Touch the payload, as a consumer that uses it would.
                bytes += v.len() as u64 + u64::from(v.last().copied().unwrap_or(0) == 0);
                n += 1;
                last = Instant::now();
            }
            Some(Err(e)) => return Err(format!("plain consumer: {e}")),
            None if last.elapsed() > Duration::from_secs(60) => {
                return Err(format!("plain consumer: stuck at {n} of {want}"))
            }
            None => {}
        }
    }
    Ok((n, bytes))
}

fn plain_one(cfg: &Cfg, bootstrap: &str, topic: &str) -> Res<Rate> {
    let parts: Vec<i32> = (0..cfg.partitions as i32).collect();
    let start = Instant::now();
    let (n, bytes) = drain(bootstrap, topic, &parts, cfg.rows, cfg.fetch_wait_ms)?;
    Ok(Rate {
        rows: n,
        bytes,
        secs: start.elapsed().as_secs_f64(),
    })
}

fn plain_per_partition(cfg: &Cfg, bootstrap: &str, topic: &str) -> Res<Rate> {
    let start = Instant::now();
    let per = cfg.rows / u64::from(cfg.partitions);
    let rest = cfg.rows % u64::from(cfg.partitions);
    let handles: Vec<_> = (0..cfg.partitions)
        .map(|p| {
            let (b, t, w) = (bootstrap.to_string(), topic.to_string(), cfg.fetch_wait_ms);
            let want = per + u64::from(u64::from(p) < rest);
            std::thread::spawn(move || drain(&b, &t, &[p as i32], want, w))
        })
        .collect();
    let (mut rows, mut bytes) = (0, 0);
    for h in handles {
        let (n, b) = h
            .join()
            .map_err(|_| "consumer thread panicked".to_string())??;
        rows += n;
        bytes += b;
    }
    Ok(Rate {
        rows,
        bytes,
        secs: start.elapsed().as_secs_f64(),
    })
}

// ---------------------------------------------------------------------------------------
// Riffle

fn table_json(name: &str, topic: &str, bootstrap: &str, cfg: &Cfg) -> String {
    let mut t = serde_json::json!({
        "tableName": name,
        "tableType": "REALTIME",
        "segmentsConfig": {"timeColumnName": "ts", "schemaName": name, "replicasPerPartition": "1"},
        "tenants": {},
        "tableIndexConfig": {
            "loadMode": "MMAP",
            "streamConfigs": {
                "streamType": "kafka",
                "stream.kafka.topic.name": topic,
                "stream.kafka.broker.list": bootstrap,
                "stream.kafka.decoder.class.name":
                    "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
                "stream.kafka.consumer.factory.class.name":
                    "org.apache.pinot.plugin.stream.kafka30.KafkaConsumerFactory",
                "stream.kafka.consumer.prop.auto.offset.reset": "smallest",
                "fetch.max.wait.ms": cfg.fetch_wait_ms.to_string(),
                "realtime.segment.flush.threshold.rows": "0",
                "realtime.segment.flush.threshold.time": "24h",
                "realtime.segment.flush.threshold.segment.size": "100M"
            }
        },
        "metadata": {}
    });
    for (k, v) in &cfg.table_props {
        let sc = &mut t["tableIndexConfig"]["streamConfigs"];
        if v.is_empty() {
            // `--table-prop KEY=` removes the key.
            if let Some(m) = sc.as_object_mut() {
                m.remove(k);
            }
        } else {
            sc[k] = serde_json::json!(v);
        }
    }
    t.to_string()
}

/// An in-process server core with the Kafka plugin: catalog, segments, ingest manager.
struct Core {
    segments: Arc<SegmentRegistry>,
    manager: Arc<IngestManager>,
    table: TableConfig,
    schema: Schema,
    raw: String,
}

impl Core {
    async fn create(dir: &Path, name: &str, topic: &str, bootstrap: &str, cfg: &Cfg) -> Res<Core> {
        let catalog = Arc::new(
            Catalog::open(&dir.join(format!("{name}.redb")))
                .map_err(|e| format!("catalog: {e}"))?,
        );
        let segments = Arc::new(SegmentRegistry::new());
        let mut streams = StreamRegistry::with_builtins();
        streams.register(Arc::new(riffle_kafka::KafkaPlugin));
        let mut ctx = IngestContext::local(catalog.clone(), streams, segments.clone(), dir)
            .map_err(|e| format!("ingest context: {e}"))?;
        ctx.discovery_interval = Duration::from_secs(3600);
        let manager = Arc::new(IngestManager::new(ctx));
        let schema_json = SCHEMA_JSON.replace("\"bench_events\"", &format!("\"{name}\""));
        let schema =
            Schema::from_json(schema_json.as_bytes()).map_err(|e| format!("schema: {e}"))?;
        let table = TableConfig::from_json(table_json(name, topic, bootstrap, cfg).as_bytes())
            .map_err(|e| format!("table config: {e}"))?;
        let (metas, warnings) = manager
            .prepare_table(&table, &schema)
            .await
            .map_err(|e| format!("prepare table: {e}"))?;
        if !warnings.is_empty() {
            return Err(format!("table warnings: {warnings:?}"));
        }
        let config_json = serde_json::to_string(&table.to_json()).map_err(|e| e.to_string())?;
        catalog
            .create_table(&table.name_with_type(), &config_json, None, &metas)
            .map_err(|e| format!("create table: {e}"))?;
        Ok(Core {
            segments,
            manager,
            table,
            schema,
            raw: name.to_string(),
        })
    }

    async fn start(&self) -> Res<()> {
        self.manager
            .start_table(&self.table, &self.schema)
            .await
            .map_err(|e| format!("start table: {e}"))
    }

    fn published(&self) -> u64 {
        published(&self.segments, &self.raw)
    }

    fn status(&self) -> Vec<riffle_ingest::PartitionStatus> {
        self.manager
            .status(&self.table.name_with_type())
            .unwrap_or_default()
    }

    fn failure(&self) -> Option<String> {
        self.status()
            .into_iter()
            .find(|s| s.state == PartitionState::Error)
            .map(|s| {
                format!(
                    "partition {}: {}",
                    s.partition,
                    s.last_error.unwrap_or_default()
                )
            })
    }

    async fn stop(&self) {
        self.manager.stop_table(&self.table.name_with_type()).await;
    }
}

fn published(segments: &SegmentRegistry, raw: &str) -> u64 {
    segments.table(raw).map_or(0, |t| {
        t.segments().iter().map(|s| s.num_rows() as u64).sum()
    })
}

struct RiffleRun {
    rate: Rate,
    first_rows_secs: f64,
    cpu_secs: Option<f64>,
}

async fn riffle(cfg: &Cfg, dir: &Path, bootstrap: &str, topic: &str, bytes: u64) -> Res<RiffleRun> {
    let core = Core::create(dir, "bench_events", topic, bootstrap, cfg).await?;
    let cpu0 = process_cpu_secs();
    let start = Instant::now();
    core.start().await?;
    let want = cfg.rows;
    let mut first = None;
    let mut last = (0u64, Instant::now());
    let mut checked = Instant::now();
    let elapsed = loop {
        let n = core.published();
        let now = Instant::now();
        if n > 0 && first.is_none() {
            first = Some(now - start);
        }
        if n >= want {
            if n != want {
                core.stop().await;
                return Err(format!("published {n} rows, expected exactly {want}"));
            }
            break now - start;
        }
        if n != last.0 {
            last = (n, now);
        } else if now - last.1 > Duration::from_secs(60) {
            core.stop().await;
            return Err(format!("no progress for 60 s at {n} of {want} rows"));
        }
        if now - checked > Duration::from_millis(100) {
            checked = now;
            if let Some(f) = core.failure() {
                core.stop().await;
                return Err(f);
            }
        }
        std::thread::sleep(cfg.poll);
    };
    let cpu1 = process_cpu_secs();
    let t = Instant::now();
    let read = loop {
        let read: u64 = core.status().iter().map(|s| s.messages_read).sum();
        if read >= want || t.elapsed() > Duration::from_secs(5) {
            break read;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let errors: u64 = core.status().iter().map(|s| s.decode_errors).sum();
    core.stop().await;
    if read != want || errors != 0 {
        return Err(format!(
            "partitions read {read} messages with {errors} decode errors, expected {want} and 0"
        ));
    }
    Ok(RiffleRun {
        rate: Rate {
            rows: want,
            bytes,
            secs: elapsed.as_secs_f64(),
        },
        first_rows_secs: first.unwrap_or_default().as_secs_f64(),
        cpu_secs: cpu0.zip(cpu1).map(|(a, b)| b - a),
    })
}

// ---------------------------------------------------------------------------------------
// Latency

struct Latency {
    rate: u64,
    achieved: f64,
    rows: u64,
    samples: usize,
    late_ticks: usize,
    /// Acknowledged by the broker -> queryable.
    publish: [Duration; 4],
    /// Handed to the producer -> queryable.
    send: [Duration; 4],
}

fn percentiles(mut v: Vec<Duration>) -> [Duration; 4] {
    v.sort();
    let pct = |q: f64| {
        let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[i]
    };
    [pct(0.5), pct(0.9), pct(0.99), *v.last().unwrap()]
}

async fn latency(cfg: &Cfg, dir: &Path, broker: &Tansu, rate: u64) -> Res<Latency> {
    let topic = "bench_latency";
    broker
        .create_topic(topic, cfg.partitions as i32)
        .await
        .map_err(|e| format!("create topic: {e:#}"))?;
    let bootstrap = broker.bootstrap();
    let core = Arc::new(Core::create(dir, "bench_latency", topic, &bootstrap, cfg).await?);
    core.start().await?;
    let t = Instant::now();
    loop {
        let st = core.status();
        if st.len() == cfg.partitions as usize
            && st.iter().all(|s| s.state == PartitionState::Consuming)
        {
            break;
        }
        if let Some(f) = core.failure() {
            core.stop().await;
            return Err(f);
        }
        if t.elapsed() > Duration::from_secs(30) {
            core.stop().await;
            return Err("latency: partitions not consuming after 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let total = (rate as f64 * cfg.latency_secs).round() as u64;
    let parts = u64::from(cfg.partitions);
    // Events prepared before the clock.
    let mut gen = EventGen::new(7);
    let mut lines = Vec::with_capacity(total as usize * LINE_BYTES);
    for _ in 0..total {
        gen.push_line(&mut lines);
    }
    let (p, delivered) = producer(&bootstrap, "5")?;
    let (tx, rx) = mpsc::channel::<(u64, Instant)>();
    let done = Arc::new(AtomicBool::new(false));
    let (secs, tick) = (cfg.latency_secs, cfg.tick);
    let writer_done = done.clone();
    let writer = std::thread::spawn(move || -> Res<(f64, usize, usize)> {
        let result = riffle_ingest::bench::paced_writes(
            rate as f64,
            secs,
            tick,
            total,
            |from, to| {
                for j in from..to {
                    let a = j as usize * LINE_BYTES;
                    send(&p, topic, (j % parts) as i32, &lines[a..a + EVENT_BYTES])?;
                }
                Ok(())
            },
            |written, sent_at| {
                tx.send((written, sent_at))
                    .map_err(|_| "watcher went away".to_string())
            },
        )
        .and_then(|stats| {
            p.flush(Duration::from_secs(60))
                .map_err(|e| format!("flush: {e}"))
                .map(|()| stats)
        });
        writer_done.store(true, Ordering::SeqCst);
        drop(tx);
        result
    });
    let segments = core.segments.clone();
    let raw = core.raw.clone();
    let poll = cfg.poll;
    let watcher = std::thread::spawn(move || -> Res<(Vec<Duration>, Vec<Duration>)> {
        // (cumulative count, sent at, acknowledged at)
        let mut pending: VecDeque<(u64, Instant, Option<Instant>)> = VecDeque::new();
        let (mut publish, mut send) = (Vec::new(), Vec::new());
        let mut last_change = (0u64, Instant::now());
        loop {
            let mut closed = false;
            loop {
                match rx.try_recv() {
                    Ok((c, at)) => pending.push_back((c, at, None)),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            let acked = delivered.ok.load(Ordering::SeqCst);
            let n = published(&segments, &raw);
            let now = Instant::now();
            for t in pending.iter_mut() {
                if t.2.is_none() && acked >= t.0 {
                    t.2 = Some(now);
                }
            }
            while let Some(&(cum, sent_at, acked_at)) = pending.front() {
                if cum > n {
                    break;
                }
                // Seen queryable at the same poll as acknowledged: 0 from the publish.
                let acked_at = acked_at.unwrap_or(now);
                publish.push(now.saturating_duration_since(acked_at));
                send.push(now.saturating_duration_since(sent_at));
                pending.pop_front();
            }
            if closed && pending.is_empty() && done.load(Ordering::SeqCst) {
                return Ok((publish, send));
            }
            if n != last_change.0 || pending.is_empty() {
                last_change = (n, now);
            } else if now - last_change.1 > Duration::from_secs(30) {
                return Err(format!(
                    "latency: stuck at {n} rows, {} ticks pending",
                    pending.len()
                ));
            }
            std::thread::sleep(poll);
        }
    });
    let joined = tokio::task::spawn_blocking(move || (writer.join(), watcher.join()))
        .await
        .map_err(|e| e.to_string())?;
    let failure = core.failure();
    let final_count = core.published();
    core.stop().await;
    let (ran, ticks, late) = joined.0.map_err(|_| "writer panicked".to_string())??;
    let (publish, send) = joined.1.map_err(|_| "watcher panicked".to_string())??;
    if let Some(f) = failure {
        return Err(f);
    }
    if final_count != total || publish.len() != ticks {
        return Err(format!(
            "latency: {final_count} of {total} rows queryable, {} of {ticks} ticks seen",
            publish.len()
        ));
    }
    Ok(Latency {
        rate,
        achieved: total as f64 / ran,
        rows: total,
        samples: publish.len(),
        late_ticks: late,
        publish: percentiles(publish),
        send: percentiles(send),
    })
}

// ---------------------------------------------------------------------------------------

async fn run(cfg: Cfg) -> Res<()> {
    if cfg.wait_quiet > 0 {
        let t = Instant::now();
        while LoadAvg::read().is_some_and(|l| l.one >= 1.0)
            && t.elapsed() < Duration::from_secs(cfg.wait_quiet)
        {
            std::thread::sleep(Duration::from_secs(5));
        }
    }
    let m = MachineFacts::read();
    let load_start = load();
    println!("== Riffle Kafka ingestion benchmark (Tansu {} broker, memory storage, {EVENT_BYTES}-byte JSON events) ==", riffle_kafka::testing::TANSU_VERSION);
    println!(
        "machine: nproc={}  cpu=\"{}\"  ram={:.1} GiB",
        m.nproc, m.cpu_model, m.mem_gib
    );
    println!("load average (1/5/15 min) at start: {load_start}");
    if LoadAvg::read().is_some_and(|l| l.one >= 1.0) {
        println!("WARNING: 1-min load is not below 1.0: the machine is busy, do not report these figures");
    }
    println!(
        "rows {}  partitions {}  fetch wait {} ms  table keys {:?}",
        thousands(cfg.rows as f64),
        cfg.partitions,
        cfg.fetch_wait_ms,
        cfg.table_props
    );

    let broker = Tansu::start_with(TansuOptions::default()).map_err(|e| format!("{e:#}"))?;
    let bootstrap = broker.bootstrap();
    let topic = "bench_events";
    broker
        .create_topic(topic, cfg.partitions as i32)
        .await
        .map_err(|e| format!("create topic: {e:#}"))?;

    println!(
        "\n-- fill: producing {} messages --",
        thousands(cfg.rows as f64)
    );
    let l0 = load();
    let fill_secs = {
        let (b, r, p) = (bootstrap.clone(), cfg.rows, cfg.partitions);
        tokio::task::spawn_blocking(move || fill(&b, topic, r, p))
            .await
            .map_err(|e| e.to_string())??
    };
    println!(
        "   {} msgs/s ({:.1} s), load before {l0} after {}",
        thousands(cfg.rows as f64 / fill_secs),
        fill_secs,
        load()
    );
    let bytes = cfg.rows * EVENT_BYTES as u64;
    std::thread::sleep(Duration::from_secs(5));

    println!("\n-- drain: rows/s from the broker --");
    println!(
        "   {:<44} {:>12} {:>8} {:>9} {:>8} {:>8}  load before / after",
        "run", "rows/s", "MB/s", "seconds", "cpu ns/r", "broker"
    );
    // CPU per row of this process (consumers and librdkafka's threads) and of the broker.
    let broker_pid = broker.pid();
    let row = |name: &str, r: &Rate, before: &str, cpu: Option<f64>, broker_cpu: Option<f64>| {
        let per_row = |c: Option<f64>| {
            c.map_or_else(
                || "n/a".into(),
                |c| format!("{:.0}", c * 1e9 / r.rows as f64),
            )
        };
        println!(
            "   {:<44} {:>12} {:>8.1} {:>9.3} {:>8} {:>8}  {before} / {}",
            name,
            thousands(r.rows_per_sec()),
            r.mb_per_sec(),
            r.secs,
            per_row(cpu),
            per_row(broker_cpu),
            load()
        );
    };
    let mut ceiling = 0f64;
    if cfg.plain {
        let l = load();
        let (cpu0, bcpu0) = (process_cpu_secs(), cpu_of(broker_pid));
        let plain1 = {
            let (c, b) = (cfg.clone(), bootstrap.clone());
            tokio::task::spawn_blocking(move || plain_one(&c, &b, topic))
                .await
                .map_err(|e| e.to_string())??
        };
        row(
            "plain librdkafka, 1 consumer, all partitions",
            &plain1,
            &l,
            cpu0.zip(process_cpu_secs()).map(|(a, b)| b - a),
            bcpu0.zip(cpu_of(broker_pid)).map(|(a, b)| b - a),
        );
        let l = load();
        let (cpu0, bcpu0) = (process_cpu_secs(), cpu_of(broker_pid));
        let plain_p = {
            let (c, b) = (cfg.clone(), bootstrap.clone());
            tokio::task::spawn_blocking(move || plain_per_partition(&c, &b, topic))
                .await
                .map_err(|e| e.to_string())??
        };
        row(
            "plain librdkafka, 1 consumer per partition",
            &plain_p,
            &l,
            cpu0.zip(process_cpu_secs()).map(|(a, b)| b - a),
            bcpu0.zip(cpu_of(broker_pid)).map(|(a, b)| b - a),
        );
        ceiling = plain1.rows_per_sec().max(plain_p.rows_per_sec());
    }
    let dir = std::env::temp_dir().join(format!("riffle-kafka-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let l = load();
    let bcpu0 = cpu_of(broker_pid);
    let r = riffle(&cfg, &dir, &bootstrap, topic, bytes).await;
    let bcpu = bcpu0.zip(cpu_of(broker_pid)).map(|(a, b)| b - a);
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    row(
        "riffle: broker to queryable rows",
        &r.rate,
        &l,
        r.cpu_secs,
        bcpu,
    );
    if cfg.plain {
        let l = load();
        let (cpu0, bcpu0) = (process_cpu_secs(), cpu_of(broker_pid));
        let plain_again = {
            let (c, b) = (cfg.clone(), bootstrap.clone());
            tokio::task::spawn_blocking(move || plain_per_partition(&c, &b, topic))
                .await
                .map_err(|e| e.to_string())??
        };
        row(
            "plain librdkafka, 1 per partition (again)",
            &plain_again,
            &l,
            cpu0.zip(process_cpu_secs()).map(|(a, b)| b - a),
            bcpu0.zip(cpu_of(broker_pid)).map(|(a, b)| b - a),
        );
        ceiling = ceiling.max(plain_again.rows_per_sec());
    }
    let rr = r.rate.rows_per_sec();
    let ratio = (ceiling > 0.0).then(|| rr / ceiling);
    println!(
        "   riffle / best plain consumer: {}   first rows queryable after {:.3} s   CPU {} s ({:.0} ns of CPU per row)",
        ratio.map_or_else(|| "n/a".into(), |x| format!("{x:.2}x")),
        r.first_rows_secs,
        r.cpu_secs.map_or_else(|| "n/a".into(), |c| format!("{c:.2}")),
        r.cpu_secs.map_or(0.0, |c| c * 1e9 / cfg.rows as f64)
    );
    println!(
        "   goals: >= 0.9x the plain consumer: {}; >= 1,000,000 rows/s: {}",
        ratio.map_or("n/a", |x| if x >= 0.9 { "met" } else { "MISSED" }),
        if rr >= 1_000_000.0 { "met" } else { "MISSED" }
    );

    if cfg.latency_secs > 0.0 {
        let max_rate = rr.min(cfg.rows as f64 / fill_secs);
        let rate = cfg.latency_rate.unwrap_or((max_rate / 2.0) as u64).max(1);
        println!(
            "\n-- latency: {} rows/s for {} s in {} ms ticks (half the lower of the fill and Riffle rates unless --latency-rate) --",
            thousands(rate as f64),
            cfg.latency_secs,
            cfg.tick.as_millis()
        );
        let l = load();
        let lat = latency(&cfg, &dir, &broker, rate).await;
        let _ = std::fs::remove_dir_all(&dir);
        let lat = lat?;
        let f = |d: &[Duration; 4]| {
            format!(
                "p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
                d[0].as_secs_f64() * 1e3,
                d[1].as_secs_f64() * 1e3,
                d[2].as_secs_f64() * 1e3,
                d[3].as_secs_f64() * 1e3
            )
        };
        println!(
            "   target {} rows/s, achieved {} rows/s, {} rows, {} samples, {} late ticks; load before {l} after {}",
            thousands(lat.rate as f64),
            thousands(lat.achieved),
            thousands(lat.rows as f64),
            lat.samples,
            lat.late_ticks,
            load()
        );
        println!(
            "   acknowledged by the broker -> queryable: {}",
            f(&lat.publish)
        );
        println!(
            "   handed to the producer     -> queryable: {}",
            f(&lat.send)
        );
        println!(
            "   goals (publish-to-query): p50 <= 100 ms: {}; p99 <= 500 ms: {}",
            if lat.publish[0] <= Duration::from_millis(100) {
                "met"
            } else {
                "MISSED"
            },
            if lat.publish[2] <= Duration::from_millis(500) {
                "met"
            } else {
                "MISSED"
            }
        );
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!("\nload average at end: {}", load());
    drop(broker);
    Ok(())
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kafka_ingest: {e}");
            ExitCode::FAILURE
        }
    }
}
