//! `riffle quickstart`: a server on a fresh data directory, the `events` table of Pinot's
//! Kafka guide with its stream switched to the built-in file stream, a generator appending
//! events (`ts`, `uuid`, `count`) to its partitions, and a few queries with live answers.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rand::Rng;
use riffle_node::Node;
use serde_json::{json, Value};

use crate::{QueryArgs, ServeArgs};

const EVENTS_SCHEMA: &str = include_str!("../../../examples/events/events_schema.json");
const EVENTS_TABLE: &str = include_str!("../../../examples/events/events_file_table_config.json");

/// Quickstart flags.
#[derive(clap::Args, Debug)]
pub struct QuickstartArgs {
    /// Data directory; default: a new directory under the system temp dir.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Controller API port.
    #[arg(long, default_value_t = 9000)]
    controller_port: u16,
    /// Broker API port.
    #[arg(long, default_value_t = 8099)]
    broker_port: u16,
    /// Events generated per second.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Partitions of the events topic.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    duration_secs: Option<u64>,
}

const QUERIES: &[&str] = &[
    "SELECT COUNT(*) FROM events",
    "SELECT SUM(\"count\"), MIN(ts), MAX(ts) FROM events",
    "SELECT uuid, \"count\", ts FROM events ORDER BY ts DESC LIMIT 3",
];

async fn query(client: &reqwest::Client, broker: &str, sql: &str) -> Result<Value> {
    let resp = client
        .post(format!("{broker}/query/sql"))
        .json(&json!({ "sql": sql }))
        .send()
        .await
        .context("query the broker")?;
    Ok(resp.json().await?)
}

fn rows(v: &Value) -> String {
    v["resultTable"]["rows"].to_string()
}

/// Runs the quickstart until Ctrl-C (or `--duration-secs`).
pub async fn run(a: QuickstartArgs) -> Result<()> {
    let data_dir = match a.data_dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!(
            "riffle-quickstart-{}-{}",
            std::process::id(),
            riffle_common::now_ms()
        )),
    };
    if data_dir.join("catalog.redb").exists() {
        bail!(
            "{} already holds a Riffle catalog; the quickstart needs a fresh directory",
            data_dir.display()
        );
    }
    let serve = ServeArgs {
        data_dir: data_dir.clone(),
        host: a.host,
        controller_port: a.controller_port,
        broker_port: a.broker_port,
        deep_store_uri: None,
        deep_store_options: Vec::new(),
        retention_interval_secs: 600,
        max_consuming_bytes: 1 << 30,
        allow_stream_paths: Vec::new(),
        fetch_file_roots: Vec::new(),
        segment_fetcher_options: Vec::new(),
        ingestion_groovy_safe_subset: false,
        auth_config: None,
        tls_cert: None,
        tls_key: None,
        insecure_no_auth: false,
        cors_origins: Vec::new(),
        http_header_timeout_secs: 10,
        http_max_connections: 1024,
        query: QueryArgs::default(),
    };
    let server = Node::open(serve.config()?, riffle_node::default_streams()).await?;
    let controller = format!("http://{}", server.controller_addr);
    let broker = format!("http://{}", server.broker_addr);

    // The topic: one file per partition, created before the table so that all partitions
    // are found at once.
    let topic_dir = data_dir.join("streams").join("events");
    std::fs::create_dir_all(&topic_dir)?;
    let mut files = Vec::new();
    for p in 0..a.partitions.max(1) {
        let path = topic_dir.join(format!("{p}.jsonl"));
        files.push(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("create {}", path.display()))?,
        );
    }

    let client = reqwest::Client::new();
    let schema: Value = serde_json::from_str(EVENTS_SCHEMA)?;
    let table: Value = serde_json::from_str(EVENTS_TABLE)?;
    let resp = client
        .post(format!("{controller}/tableConfigs"))
        .json(&json!({"tableName": "events", "schema": schema, "realtime": table}))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!(
            "create table events: {}",
            resp.text().await.unwrap_or_default()
        );
    }

    // The generator (Pinot's datagen: ts, uuid, count), round-robin over the partitions.
    let rate = a.rate.max(1);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_gen = stop.clone();
    let gen = tokio::task::spawn_blocking(move || -> Result<()> {
        let mut rng = rand::rng();
        let tick = Duration::from_millis(10);
        let per_tick = (rate as f64 / 100.0).max(1.0) as u32;
        let mut n: u64 = 0;
        while !stop_gen.load(std::sync::atomic::Ordering::Relaxed) {
            let start = std::time::Instant::now();
            for _ in 0..per_tick {
                let line = json!({
                    "ts": riffle_common::now_ms(),
                    "uuid": uuid::Uuid::new_v4().to_string(),
                    "count": rng.random_range(0..=1000),
                });
                let idx = (n % files.len() as u64) as usize;
                let f = &mut files[idx];
                writeln!(f, "{line}")?;
                n += 1;
            }
            std::thread::sleep(tick.saturating_sub(start.elapsed()));
        }
        Ok(())
    });

    println!();
    println!("Riffle quickstart");
    println!("  data directory : {}", data_dir.display());
    println!("  controller     : {controller}   (Pinot controller API)");
    println!("  broker         : {broker}   (Pinot broker API: POST /query/sql)");
    println!(
        "  table          : events, {} partitions of {} (stream type: file), {rate} events/s",
        a.partitions,
        topic_dir.display()
    );
    println!();
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("Example queries (live answers):");
    for sql in QUERIES {
        let v = query(&client, &broker, sql).await?;
        println!("  {sql}\n    -> {}", rows(&v));
    }
    println!();
    println!("Try them yourself:");
    println!(
        "  curl -s -X POST {broker}/query/sql -H 'Content-Type: application/json' -d '{{\"sql\": \"SELECT COUNT(*) FROM events\"}}'"
    );
    println!(
        "  riffle PostQuery -brokerPort {} -query \"SELECT COUNT(*) FROM events\"",
        server.broker_addr.port()
    );
    println!("  python3 -c \"from pinotdb import connect; c=connect(host='127.0.0.1', port={}).cursor(); c.execute('SELECT COUNT(*) FROM events'); print(c.fetchall())\"", server.broker_addr.port());
    println!();
    println!("Press Ctrl-C to stop.");

    let started = std::time::Instant::now();
    let deadline = a.duration_secs.map(Duration::from_secs);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut ticks = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = ticker.tick() => {
                if gen.is_finished() {
                    break;
                }
                if deadline.is_some_and(|d| started.elapsed() >= d) {
                    break;
                }
                ticks += 1;
                if ticks % 5 == 0 {
                    let v = query(&client, &broker, QUERIES[0]).await?;
                    println!("events so far: {}", v["resultTable"]["rows"][0][0]);
                }
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    println!("stopping; data kept in {}", data_dir.display());
    server.shutdown().await;
    match gen.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.context("the event generator failed")),
        Err(e) => bail!("the event generator failed: {e}"),
    }
}
