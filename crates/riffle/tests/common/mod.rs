//! Helpers shared by the end-to-end tests: an in-process server on free ports, HTTP calls,
//! and waiting for a count.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use riffle_node::{Node as Server, NodeConfig as ServerConfig};
use serde_json::{json, Value};

/// The repository root.
pub fn repo() -> PathBuf {
    // The directory cargo runs the test in (a build reused from another checkout keeps
    // the compile-time path).
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../..")
}

/// Starts a server on `data_dir` with free loopback ports, the built-in streams, and the
/// Kafka plugin when `kafka` (as the `riffle` binary's registry); `tweak` changes the
/// config before the start.
pub async fn start_configured(
    data_dir: &Path,
    kafka: bool,
    tweak: impl FnOnce(&mut ServerConfig),
) -> Server {
    let mut c = ServerConfig::new(data_dir.to_path_buf());
    c.controller_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    c.broker_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    c.discovery_interval = Duration::from_millis(if kafka { 500 } else { 200 });
    tweak(&mut c);
    let mut registry = riffle_stream::StreamRegistry::with_builtins();
    if kafka {
        registry.register(std::sync::Arc::new(riffle_kafka::KafkaPlugin));
    }
    Server::open(c, registry).await.expect("server starts")
}

/// Starts a server on `data_dir` with free loopback ports.
pub async fn start(data_dir: &Path) -> Server {
    start_configured(data_dir, false, |_| {}).await
}

/// Starts a server whose registry has the Kafka plugin.
pub async fn start_with_kafka(data_dir: &Path) -> Server {
    start_configured(data_dir, true, |_| {}).await
}

/// The metadata (`GET /segments/{t}/{s}/metadata`) of every segment of a table, from the
/// controller at `controller` (`http://host:port`).
pub async fn segment_metas(controller: &str, table: &str) -> Vec<Value> {
    let (s, v) = get(&format!("{controller}/segments/{table}")).await;
    assert_eq!(s, 200, "{v}");
    let mut out = Vec::new();
    for n in v[0]["REALTIME"].as_array().expect("segment names") {
        let n = n.as_str().expect("a segment name");
        let (s, m) = get(&format!("{controller}/segments/{table}/{n}/metadata")).await;
        assert_eq!(s, 200, "{m}");
        out.push(m);
    }
    out
}

/// Checks that each partition's segments chain: every one starts where the previous
/// committed one ended (no gap, no overlap), and a committed one holds as many docs as
/// offsets when `docs_are_offsets` (integer offsets, no malformed messages). Returns the
/// number of committed segments.
pub fn check_chains<'a>(
    metas: impl IntoIterator<Item = &'a Value>,
    docs_are_offsets: bool,
) -> usize {
    let mut by_part: std::collections::BTreeMap<u64, Vec<&Value>> = Default::default();
    for m in metas {
        by_part
            .entry(m["partitionId"].as_u64().expect("partitionId"))
            .or_default()
            .push(m);
    }
    let mut done = 0;
    for (p, mut v) in by_part {
        v.sort_by_key(|m| m["sequenceNumber"].as_u64().expect("sequenceNumber"));
        let mut expect = v[0]["startOffset"]
            .as_str()
            .expect("startOffset")
            .to_string();
        for m in &v {
            assert_eq!(
                m["startOffset"],
                json!(expect),
                "partition {p}: gap or overlap at {m}"
            );
            if m["status"] == "DONE" {
                done += 1;
                let end = m["endOffset"].as_str().expect("endOffset").to_string();
                if docs_are_offsets {
                    let span = end.parse::<u64>().expect("integer offset")
                        - expect.parse::<u64>().expect("integer offset");
                    assert_eq!(m["totalDocs"].as_u64(), Some(span), "{m}");
                }
                expect = end;
            }
        }
    }
    done
}

/// `POST` JSON, returning status and body.
pub async fn post(url: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `GET`, returning status and body.
pub async fn get(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Runs SQL on the broker; panics on exceptions.
pub async fn sql(server: &Server, q: &str) -> Value {
    let (status, v) = post(
        &format!("http://{}/query/sql", server.broker_addr),
        &json!({ "sql": q }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["exceptions"], json!([]), "query {q} failed: {v}");
    v
}

/// `SELECT COUNT(*)` of a table.
pub async fn count(server: &Server, table: &str) -> i64 {
    let v = sql(server, &format!("SELECT COUNT(*) FROM {table}")).await;
    v["resultTable"]["rows"][0][0].as_i64().expect("a count")
}

/// Waits until `COUNT(*)` of `table` is `n` (and stays there for a moment), or panics
/// with the last count after `timeout`.
pub async fn wait_count(server: &Server, table: &str, n: i64, timeout: Duration) {
    let start = Instant::now();
    let mut last = -1;
    while start.elapsed() < timeout {
        last = count(server, table).await;
        if last == n {
            // Nothing more may arrive: duplicates would show up now.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let again = count(server, table).await;
            assert_eq!(again, n, "count moved past {n} to {again}");
            return;
        }
        assert!(last <= n, "count {last} is above the expected {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("count of {table} is {last}, expected {n} within {timeout:?}");
}

/// Appends lines to a stream partition file.
pub fn append(data_dir: &Path, topic: &str, file: &str, lines: &[String]) {
    use std::io::Write;
    let dir = data_dir.join("streams").join(topic);
    std::fs::create_dir_all(&dir).expect("topic dir");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(file))
        .expect("partition file");
    let mut buf = String::new();
    for l in lines {
        buf.push_str(l);
        buf.push('\n');
    }
    f.write_all(buf.as_bytes()).expect("append");
}

/// The transcript sample rows from the repository's example.
pub fn transcript_rows() -> Vec<String> {
    std::fs::read_to_string(repo().join("examples/transcript/transcript.jsonl"))
        .expect("transcript.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// A file's JSON.
pub fn read_json(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join(rel)).expect("file")).expect("json")
}
