//! Kafka ingestion benchmark: how fast rows go from a Kafka broker to queryable through
//! Riffle's real ingestion path, against a plain librdkafka consumer draining the same
//! topic (the ceiling), and the publish-to-query latency at half the maximum rate.
//!
//! ```text
//! CARGO_TARGET_DIR=/tmp/kbench-target cargo bench -p riffle-bench --bench kafka_ingest -- \
//!     [--rows N] [--partitions P] [--fetch-wait-ms W] [--latency-secs S] \
//!     [--latency-rate R] [--no-latency] [--no-plain] [--table-prop KEY=VALUE]... \
//!     [--wait-quiet SECS]
//! ```
//!
//! The broker is a local Tansu (`scripts/tansu.sh`) with in-memory storage on a free
//! loopback port. Phases, in one process:
//!
//! 1. **fill**: `N` (default 10,000,000) events of exactly 146 bytes (the generator of the
//!    file-stream benchmark, `riffle_bench::EventGen`) are produced round-robin into
//!    `P` partitions (default 2) of topic `bench_events` before anything reads them.
//! 2. **plain consumer** (the ceiling): librdkafka consumers drain the topic from offset
//!    0, counting messages and touching every payload: once with one consumer assigned all
//!    partitions, once with one consumer per partition on its own thread (Riffle's shape),
//!    and that again after Riffle's run, this time also decoding every payload's JSON into
//!    a typed struct (serde_json): the CPU baseline Riffle's CPU per row is held to. librdkafka's defaults (64 MiB prefetch queues),
//!    except `fetch.queue.backoff.ms` 10 as Riffle's clients (see below). The best of
//!    the three is the ceiling.
//! 3. **Riffle**: a node with the Kafka plugin, built by `Node::open` as `riffle serve`
//!    builds it; a clock starts, the table (`streamType: kafka`, Pinot's Kafka JSON decoder,
//!    offset criteria smallest) is created (consumption starts with it), and the
//!    published row count (what a query sees) is polled every millisecond until it is
//!    exactly `N`; the partitions' read counters must also say `N`. Twice (once with
//!    `--table-prop`): first with thresholds no partition reaches (the Kafka path alone:
//!    consume, decode, append to queryable rows; the CPU per row held to 1.3x the decoding
//!    baseline, which does no segment work), then with the table's default thresholds
//!    (size-based, first segment 100,000 rows: segments are sealed and committed during
//!    the run, as in production).
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
use riffle_bench::report::thousands;
use riffle_bench::{
    process_cpu_secs, EventGen, LoadAvg, MachineFacts, Rate, EVENT_BYTES, LINE_BYTES, SCHEMA_JSON,
};
use riffle_common::TableNameWithType;
use riffle_config::{Schema, TableConfig};
use riffle_ingest::PartitionStatus;
use riffle_kafka::testing::{Tansu, TansuOptions};
use riffle_node::{Node, NodeConfig};
use riffle_segment::SegmentRegistry;

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

/// The table keys of a run in which no segment reaches its end: one consuming segment per
/// partition for the whole run.
fn no_seal_props() -> Vec<(String, String)> {
    vec![
        (
            "realtime.segment.flush.threshold.segment.size".into(),
            String::new(),
        ),
        (
            "realtime.segment.flush.threshold.rows".into(),
            "1000000000".into(),
        ),
    ]
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

mod latency;
mod plain;
mod riffle;

use latency::*;
use plain::*;
use riffle::*;

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
            tokio::task::spawn_blocking(move || plain_per_partition(&c, &b, topic, false))
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
    // First without a seal in the run: the Kafka path alone (consume, decode, append to
    // queryable rows), as the baseline below does no segment work; first, so that it and
    // not the run with seals pays for the process's first use of memory. Skipped when the
    // table keys were given.
    // One Riffle run: its result, the load before it and the broker's CPU over it.
    let run_riffle = |c: Cfg, d: std::path::PathBuf| {
        let bootstrap = bootstrap.clone();
        async move {
            let l = load();
            let bcpu0 = cpu_of(broker_pid);
            let r = riffle(&c, &d, &bootstrap, topic, bytes).await;
            (r, l, bcpu0.zip(cpu_of(broker_pid)).map(|(a, b)| b - a))
        }
    };
    let cleanup = |_: &String| {
        let _ = std::fs::remove_dir_all(&dir);
    };
    let mut unsealed = None;
    if cfg.table_props.is_empty() {
        let mut c = cfg.clone();
        c.table_props = no_seal_props();
        let (r, l, bcpu) = run_riffle(c, dir.join("no-seal")).await;
        let r = r.inspect_err(cleanup)?;
        let name = "riffle, no segment sealed in the run";
        row(name, &r.rate, &l, r.cpu_secs, bcpu);
        unsealed = r.cpu_secs.map(|c| c / cfg.rows as f64);
    }
    let (r, l, bcpu) = run_riffle(cfg.clone(), dir.clone()).await;
    let r = r.inspect_err(cleanup)?;
    let name = "riffle: broker to queryable rows, with seals";
    row(name, &r.rate, &l, r.cpu_secs, bcpu);
    // The CPU baseline: the same consumers decoding the same JSON into a typed struct.
    let mut decode_cpu_per_row = None;
    if cfg.plain {
        let l = load();
        let (cpu0, bcpu0) = (process_cpu_secs(), cpu_of(broker_pid));
        let plain_again = {
            let (c, b) = (cfg.clone(), bootstrap.clone());
            tokio::task::spawn_blocking(move || plain_per_partition(&c, &b, topic, true))
                .await
                .map_err(|e| e.to_string())??
        };
        let cpu = cpu0.zip(process_cpu_secs()).map(|(a, b)| b - a);
        row(
            "plain librdkafka + JSON decode, 1 per partition",
            &plain_again,
            &l,
            cpu,
            bcpu0.zip(cpu_of(broker_pid)).map(|(a, b)| b - a),
        );
        decode_cpu_per_row = cpu.map(|c| c / plain_again.rows as f64);
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
    let riffle_cpu_per_row = r.cpu_secs.map(|c| c / cfg.rows as f64);
    let ratio_of = |x: Option<f64>| x.zip(decode_cpu_per_row).map(|(a, b)| a / b);
    let show = |x: Option<f64>| x.map_or_else(|| "n/a".into(), |x| format!("{x:.2}x"));
    let cpu_ratio = ratio_of(unsealed.or(riffle_cpu_per_row));
    println!(
        "   riffle CPU per row / (librdkafka + JSON decode) CPU per row: Kafka path {}, with the run's seals {}",
        show(ratio_of(unsealed)),
        show(ratio_of(riffle_cpu_per_row))
    );
    println!(
        "   goals: Kafka path CPU per row <= 1.3x librdkafka + JSON decode: {}; >= 1,000,000 rows/s: {}",
        cpu_ratio.map_or("n/a", |x| if x <= 1.3 { "met" } else { "MISSED" }),
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
