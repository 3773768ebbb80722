//! Helpers shared by the end-to-end tests: an in-process server on free ports, HTTP calls,
//! and waiting for a count.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use riffle_server::{Server, ServerConfig};
use serde_json::{json, Value};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Starts a server on `data_dir` with free loopback ports.
pub async fn start(data_dir: &Path) -> Server {
    let mut c = ServerConfig::new(data_dir.to_path_buf());
    c.controller_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    c.broker_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    c.discovery_interval = Duration::from_millis(200);
    Server::start(c, riffle_stream::StreamRegistry::with_builtins())
        .await
        .expect("server starts")
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
