//! Exactly-once over Kafka under crashes: the `riffle` binary consumes a Tansu topic while
//! small segments seal, and is SIGKILLed at random moments (during fetch, append, seal,
//! upload and commit) and restarted while a producer keeps writing. At the end every
//! message is counted once: `COUNT(*)`, `COUNT(DISTINCT id)` and `SUM(amount)` are exact.
//!
//! Broker behaviour relied on: produce, fetch with a right high watermark, metadata,
//! ListOffsets EARLIEST. `RIFFLE_KAFKA_KILLS` sets the number of kills (10 by default).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};
use riffle_kafka::testing::{produce, Tansu, TestRecord};
use serde_json::{json, Value};

const PARTITIONS: i32 = 3;
const TOPIC: &str = "kill-events";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `riffle serve` child process.
struct Riffle {
    child: Child,
    controller: String,
    broker: String,
}

impl Riffle {
    async fn start(data: &Path, ports: (u16, u16), log: &Path) -> Riffle {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_riffle"))
            .args([
                "serve",
                "--data-dir",
                data.to_str().unwrap(),
                "--host",
                "127.0.0.1",
                "--controller-port",
                &ports.0.to_string(),
                "--broker-port",
                &ports.1.to_string(),
            ])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let r = Riffle {
            child,
            controller: format!("http://127.0.0.1:{}", ports.0),
            broker: format!("http://127.0.0.1:{}", ports.1),
        };
        let start = Instant::now();
        loop {
            let ok = async {
                let a = reqwest::get(format!("{}/health", r.controller))
                    .await
                    .ok()?;
                let b = reqwest::get(format!("{}/health", r.broker)).await.ok()?;
                Some(a.status().is_success() && b.status().is_success())
            }
            .await;
            if ok == Some(true) {
                return r;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "riffle did not start; log: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(mut self) {
        // SIGKILL: nothing is flushed.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn totals(&self) -> Option<(i64, i64, i64)> {
        let (s, v) = post(
            &format!("{}/query/sql", self.broker),
            &json!({"sql": "SELECT COUNT(*), COUNT(DISTINCT id), SUM(amount) FROM killed"}),
        )
        .await;
        if s != 200 || v["exceptions"] != json!([]) {
            return None;
        }
        let r = &v["resultTable"]["rows"][0];
        Some((r[0].as_i64()?, r[1].as_i64()?, r[2].as_f64()? as i64))
    }
}

fn record(id: u64) -> TestRecord {
    TestRecord::value(
        (id % PARTITIONS as u64) as i32,
        json!({"id": id, "amount": id % 1000, "ts": 1_700_000_000_000u64 + id})
            .to_string()
            .into_bytes(),
    )
}

fn table(bootstrap: &str) -> Value {
    json!({
        "tableName": "killed",
        "schema": {
            "schemaName": "killed",
            "dimensionFieldSpecs": [{"name": "id", "dataType": "LONG"}],
            "metricFieldSpecs": [{"name": "amount", "dataType": "LONG"}],
            "dateTimeFieldSpecs": [{"name": "ts", "dataType": "LONG",
                "format": "1:MILLISECONDS:EPOCH", "granularity": "1:MILLISECONDS"}]
        },
        "realtime": {
            "tableName": "killed",
            "tableType": "REALTIME",
            "segmentsConfig": {"timeColumnName": "ts", "replication": "1"},
            "tenants": {},
            "tableIndexConfig": {"streamConfigs": {
                "streamType": "kafka",
                "stream.kafka.topic.name": TOPIC,
                "stream.kafka.broker.list": bootstrap,
                "stream.kafka.consumer.factory.class.name":
                    "org.apache.pinot.plugin.stream.kafka30.KafkaConsumerFactory",
                "stream.kafka.decoder.class.name":
                    "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
                "stream.kafka.consumer.prop.auto.offset.reset": "smallest",
                "realtime.segment.flush.threshold.segment.rows": "700"
            }}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_while_consuming_kafka_lose_and_duplicate_nothing() {
    let kills: usize = std::env::var("RIFFLE_KAFKA_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let n: u64 = 15_000.max(kills as u64 * 1_500);
    let broker = Tansu::start().unwrap_or_else(|e| panic!("{e:#}"));
    broker.create_topic(TOPIC, PARTITIONS).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("riffle.log");
    let ports = (free_port(), free_port());

    // The producer writes in small steps for the whole run.
    let producer = broker.producer().unwrap();
    let steps = (kills as u64 * 4).max(10);
    let step = n.div_ceil(steps);
    let producing = tokio::spawn(async move {
        let mut next = 0;
        while next < n {
            let end = (next + step).min(n);
            produce(&producer, TOPIC, (next..end).map(record))
                .await
                .unwrap();
            next = end;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    });

    let mut r = Riffle::start(&data, ports, &log).await;
    let (s, v) = post(
        &format!("{}/tableConfigs", r.controller),
        &table(&broker.bootstrap()),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..900))).await;
        r.kill();
        r = Riffle::start(&data, ports, &log).await;
    }
    producing.await.unwrap();

    let want = (
        n as i64,
        n as i64,
        (0..n).map(|i| (i % 1000) as i64).sum::<i64>(),
    );
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < Duration::from_secs(120) {
        last = r.totals().await;
        if last == Some(want) {
            break;
        }
        if let Some((c, _, _)) = last {
            assert!(c <= want.0, "count {c} above {}: duplicates", want.0);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        last,
        Some(want),
        "log: {}",
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Segments committed along the way, their ranges chaining per partition.
    let metas = segment_metas(&r.controller, "killed").await;
    for p in 0..PARTITIONS as u64 {
        let first = metas
            .iter()
            .filter(|m| m["partitionId"] == p)
            .min_by_key(|m| m["sequenceNumber"].as_u64())
            .unwrap();
        assert_eq!(first["startOffset"], "0", "{first}");
    }
    let done = check_chains(&metas, false);
    assert!(done as u64 >= n / 700 / 2, "only {done} segments committed");
    // Still exact after one more crash.
    r.kill();
    let r = Riffle::start(&data, ports, &log).await;
    let start = Instant::now();
    while r.totals().await != Some(want) {
        assert!(start.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    r.kill();
    println!("kills={kills} rows={n} committed_segments={done}");
}
