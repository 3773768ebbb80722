//! A data directory written by the version before the controller / server-role split
//! (`tests/data/compat-v1`, made by `scripts/make-compat-fixture.py` with that version's
//! binary, then killed with SIGKILL) starts under this code with every row and segment
//! intact: committed segments load from their local copies with their catalog facts
//! unchanged, consuming rows are re-read from the stream at the recorded offsets, the
//! paused table stays paused, the deep store keeps every committed object (although the
//! recorded download URLs point to where the directory was made), and consumption goes on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use riffle_node::{default_streams, Node, NodeConfig};
use serde_json::{json, Value};

fn fixture() -> PathBuf {
    // The directory cargo runs the test in (a build reused from another checkout keeps
    // the compile-time path).
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/data/compat-v1")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

async fn get(url: &str) -> Value {
    let r = reqwest::get(url).await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.unwrap()
}

async fn query(node: &Node, sql: &str) -> Vec<Value> {
    let v: Value = reqwest::Client::new()
        .post(format!("http://{}/query/sql", node.broker_addr))
        .json(&json!({ "sql": sql }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["exceptions"], json!([]), "{sql}: {v}");
    v["resultTable"]["rows"][0].as_array().unwrap().clone()
}

async fn wait_count(node: &Node, table: &str, n: i64) {
    let start = Instant::now();
    loop {
        let c = query(node, &format!("SELECT COUNT(*) FROM {table}")).await[0]
            .as_i64()
            .unwrap();
        if c == n {
            return;
        }
        assert!(c < n, "{table}: {c} rows, more than {n}");
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{table}: {c} of {n} rows"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The fields of a segment's metadata that must not change across versions.
const KEPT: &[&str] = &[
    "segmentName",
    "tableName",
    "status",
    "partitionId",
    "sequenceNumber",
    "startOffset",
    "endOffset",
    "creationTimeMillis",
    "flushThresholdRows",
    "totalDocs",
    "autotune",
    "commitTimeMs",
    "crc",
    "downloadUrl",
    "endTimeMs",
    "sizeBytes",
    "startTimeMs",
    "stopReason",
    "formatVersion",
    "columns",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_of_the_previous_version_starts_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(&fixture().join("data"), &data);
    let expected: Value =
        serde_json::from_slice(&std::fs::read(fixture().join("expected.json")).unwrap()).unwrap();
    let node = Node::open(NodeConfig::loopback(data.clone()), default_streams())
        .await
        .expect("the node opens the old data directory");
    let c = format!("http://{}", node.controller_addr);

    for (table, want) in expected["tables"].as_object().unwrap() {
        // Every row: committed ones from the segments, consuming ones re-read.
        wait_count(&node, table, want["count"].as_i64().unwrap()).await;
        let row = query(
            &node,
            &format!("SELECT SUM(id), COUNT(DISTINCT id) FROM {table}"),
        )
        .await;
        assert_eq!(row[0].as_f64(), want["sumId"].as_f64(), "{table}");
        assert_eq!(row[1], want["distinctId"], "{table}");
        // Every segment, with what the catalog recorded.
        let names = get(&format!("{c}/segments/{table}")).await;
        let mut names: Vec<String> = serde_json::from_value(names[0]["REALTIME"].clone()).unwrap();
        names.sort();
        let mut old: Vec<String> = want["segments"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        old.sort();
        assert_eq!(names, old, "{table}");
        for (name, was) in want["segments"].as_object().unwrap() {
            let now = get(&format!("{c}/segments/{table}/{name}/metadata")).await;
            assert!(now.get("riffleLoadError").is_none(), "{name}: {now}");
            for k in KEPT {
                if was["status"] == "IN_PROGRESS" && *k == "totalDocs" {
                    continue;
                }
                assert_eq!(now.get(*k), was.get(*k), "{name}: {k}");
            }
            // The deep store still holds every committed segment.
            if was["status"] == "DONE" {
                let object = data
                    .join("deepstore")
                    .join(format!("{table}_REALTIME"))
                    .join(name);
                assert!(object.is_file(), "{} was removed", object.display());
            }
        }
    }
    let paused = get(&format!("{c}/tables/compat_paused/pauseStatus")).await;
    assert_eq!(paused["pauseFlag"], true, "{paused}");
    assert_eq!(paused["consumingSegments"], json!([]), "{paused}");
    assert_eq!(
        paused["comment"],
        expected["tables"]["compat_paused"]["pauseStatus"]["comment"]
    );
    let offline = get(&format!("{c}/tables/compat_offline")).await;
    assert_eq!(
        offline["OFFLINE"]["tableIndexConfig"]["loadMode"], "HEAP",
        "{offline}"
    );

    // Consumption goes on from the recorded offsets.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("streams/compat-topic/0.jsonl"))
        .unwrap();
    for i in 0..10 {
        let id = 10_000 + i;
        writeln!(
            f,
            "{}",
            json!({"id": id, "kind": "z", "amount": 1.0, "ts": 1_700_001_000_000i64 + id})
        )
        .unwrap();
    }
    drop(f);
    let before = expected["tables"]["compat"]["count"].as_i64().unwrap();
    wait_count(&node, "compat", before + 10).await;
    node.shutdown().await;
}
