//! The segment lifecycle end to end, in process, on the memory stream (offsets count
//! records, so every range can be checked exactly): seal, commit, swap, restart, a corrupt
//! local copy replaced from the deep store, force commit, pause and resume, deletion,
//! retention, autotune, and indexes that answer like a scan.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use riffle_stream::memory::MemoryBroker;
use serde_json::{json, Value};

const T0: i64 = 1_700_000_000_000;

fn schema(name: &str) -> Value {
    json!({
        "schemaName": name,
        "dimensionFieldSpecs": [
            {"name": "id", "dataType": "LONG"},
            {"name": "city", "dataType": "STRING"},
            {"name": "kind", "dataType": "INT"}
        ],
        "metricFieldSpecs": [{"name": "amount", "dataType": "DOUBLE"}],
        "dateTimeFieldSpecs": [{"name": "ts", "dataType": "TIMESTAMP",
            "format": "1:MILLISECONDS:TIMESTAMP", "granularity": "1:MILLISECONDS"}]
    })
}

/// A row with a unique id; time grows with the id so segments have disjoint time ranges.
fn row(id: u64) -> String {
    let cities = ["paris", "lima", "oslo", "kyiv", "quito", "hanoi", "accra"];
    json!({
        "id": id,
        "city": cities[(id % 7) as usize],
        "kind": (id % 13) as i64,
        "amount": (id % 1000) as f64 / 4.0,
        "ts": T0 + id as i64 * 1000,
    })
    .to_string()
}

fn amount(id: u64) -> f64 {
    (id % 1000) as f64 / 4.0
}

/// Flips a byte in the middle of a sealed segment's local file; returns the path and the
/// corrupt bytes.
fn corrupt_local_copy(
    data: &std::path::Path,
    table: &str,
    segment: &str,
) -> (std::path::PathBuf, Vec<u8>) {
    let path = data
        .join("segments")
        .join(format!("{table}_REALTIME"))
        .join(format!("{segment}.seg"));
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

/// A fresh data directory, a memory topic named like the table with `partitions`, a
/// server (its config changed by `tweak`) and the table created on it.
async fn serve_table(
    table: &str,
    partitions: u32,
    stream: Value,
    extra: Value,
    tweak: impl FnOnce(&mut riffle_node::NodeConfig),
) -> (tempfile::TempDir, riffle_node::Node) {
    let dir = tempfile::tempdir().unwrap();
    MemoryBroker::global()
        .create_topic(table, partitions)
        .unwrap();
    let server = start_configured(dir.path(), false, tweak).await;
    create(&server, table, stream, extra).await;
    (dir, server)
}

async fn create(server: &riffle_node::Node, name: &str, stream: Value, extra: Value) {
    let mut cfg = json!({
        "streamType": "memory",
        "stream.memory.topic.name": name,
        "stream.memory.decoder.class.name": "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
        "stream.memory.consumer.prop.auto.offset.reset": "smallest",
    });
    for (k, v) in stream.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    let mut t = json!({"tableName": name, "tableType": "REALTIME",
        "segmentsConfig": {"timeColumnName": "ts", "replication": "1"},
        "tenants": {}, "tableIndexConfig": {"streamConfigs": cfg}});
    for (k, v) in extra.as_object().unwrap() {
        if k == "tableIndexConfig" {
            for (ik, iv) in v.as_object().unwrap() {
                t["tableIndexConfig"][ik] = iv.clone();
            }
        } else if k == "segmentsConfig" {
            for (ik, iv) in v.as_object().unwrap() {
                t["segmentsConfig"][ik] = iv.clone();
            }
        } else {
            t[k] = v.clone();
        }
    }
    let (s, v) = post(
        &format!("http://{}/tableConfigs", server.controller_addr),
        &json!({"tableName": name, "schema": schema(name), "realtime": t}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

fn produce(topic: &str, partitions: u32, ids: std::ops::Range<u64>) {
    let b = MemoryBroker::global();
    for id in ids {
        b.produce(topic, (id % partitions as u64) as u32, row(id))
            .unwrap();
    }
}

/// Catalog metadata of every segment of a table, by name.
async fn segments(server: &riffle_node::Node, table: &str) -> BTreeMap<String, Value> {
    segment_metas(&format!("http://{}", server.controller_addr), table)
        .await
        .into_iter()
        .map(|m| (m["segmentName"].as_str().unwrap().to_string(), m))
        .collect()
}

fn done(segs: &BTreeMap<String, Value>) -> Vec<&Value> {
    segs.values().filter(|m| m["status"] == "DONE").collect()
}

async fn wait_done(server: &riffle_node::Node, table: &str, n: usize) {
    let start = Instant::now();
    loop {
        let segs = segments(server, table).await;
        let d = done(&segs).len();
        if d >= n {
            assert_eq!(d, n, "more segments committed than expected: {segs:?}");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{d} of {n} segments committed: {segs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The committed ranges of each partition chain: each starts where the previous ended,
/// the IN_PROGRESS segment starts at the last end, and docs equal offsets (no bad rows).
fn check_chains(segs: &BTreeMap<String, Value>) {
    common::check_chains(segs.values(), true);
}

async fn sum_and_distinct(server: &riffle_node::Node, table: &str) -> (f64, i64, i64) {
    let v = sql(
        server,
        &format!("SELECT SUM(amount), COUNT(DISTINCT id), COUNT(*) FROM {table}"),
    )
    .await;
    let r = &v["resultTable"]["rows"][0];
    (
        r[0].as_f64().unwrap(),
        r[1].as_i64().unwrap(),
        r[2].as_i64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_seal_commit_swap_and_restart_exactly_once() {
    let table = "lc_seal";
    let (dir, server) = serve_table(
        table,
        2,
        json!({"realtime.segment.flush.threshold.segment.rows": "1000"}),
        json!({"tableIndexConfig": {"invertedIndexColumns": ["city"]}}),
        |_| {},
    )
    .await;
    produce(table, 2, 0..11_000);
    wait_count(&server, table, 11_000, Duration::from_secs(60)).await;
    wait_done(&server, table, 10).await;
    let segs = segments(&server, table).await;
    check_chains(&segs);
    for m in done(&segs) {
        assert_eq!(m["totalDocs"], 1000, "{m}");
        assert_eq!(m["stopReason"], "rowLimit", "{m}");
        assert!(m["downloadUrl"].as_str().unwrap().starts_with("file://"));
        assert_eq!(m["formatVersion"], 3, "sealed copy not loaded: {m}");
    }
    let want_sum: f64 = (0..11_000).map(amount).sum();
    assert_eq!(
        sum_and_distinct(&server, table).await,
        (want_sum, 11_000, 11_000)
    );
    let v = sql(&server, &format!("SELECT COUNT(*) FROM {table}")).await;
    assert_eq!(v["numSegmentsQueried"], 12, "{v}");
    assert_eq!(v["numConsumingSegmentsQueried"], 2, "{v}");
    assert_eq!(v["totalDocs"], 11_000, "{v}");
    // Time pruning: only the segments holding ids >= 10,000 can match.
    let v = sql(
        &server,
        &format!(
            "SELECT COUNT(*) FROM {table} WHERE ts >= CAST({} AS TIMESTAMP)",
            T0 + 10_000 * 1000
        ),
    )
    .await;
    assert_eq!(v["resultTable"]["rows"][0][0], 1000, "{v}");
    assert!(
        v["numSegmentsPrunedByServer"].as_u64().unwrap() >= 8,
        "time pruning: {v}"
    );
    // An inverted-index filter reads no values in sealed segments.
    let v = sql(
        &server,
        &format!("SELECT COUNT(*) FROM {table} WHERE city = 'lima'"),
    )
    .await;
    let lima = (0..11_000u64).filter(|i| i % 7 == 1).count() as u64;
    assert_eq!(v["resultTable"]["rows"][0][0], lima, "{v}");
    assert_eq!(v["numDocsScanned"], lima, "{v}");
    assert_eq!(
        v["numEntriesScannedInFilter"], 1000,
        "only the consuming rows are scanned: {v}"
    );

    // A value above every sealed segment's max prunes them all; the consuming rows are
    // scanned and match nothing.
    let v = sql(
        &server,
        &format!("SELECT COUNT(*) FROM {table} WHERE city = 'zzz'"),
    )
    .await;
    assert_eq!(v["resultTable"]["rows"][0][0], 0, "{v}");
    assert_eq!(v["numSegmentsPrunedByServer"], 10, "{v}");
    assert_eq!(v["numDocsScanned"], 0, "{v}");
    assert_eq!(v["numEntriesScannedInFilter"], 1000, "{v}");

    // Restart: sealed segments come back from disk, consuming rows are re-read.
    server.shutdown().await;
    // A corrupt local copy is detected at load and replaced from the deep store.
    let victim = done(&segs)[0]["segmentName"].as_str().unwrap().to_string();
    let (path, bytes) = corrupt_local_copy(dir.path(), table, &victim);
    let server = start(dir.path()).await;
    wait_count(&server, table, 11_000, Duration::from_secs(60)).await;
    assert_eq!(
        sum_and_distinct(&server, table).await,
        (want_sum, 11_000, 11_000)
    );
    let fixed = std::fs::read(&path).unwrap();
    assert_ne!(fixed, bytes, "the corrupt copy was replaced");
    let segs = segments(&server, table).await;
    assert_eq!(segs[&victim]["formatVersion"], 3);
    // Consumption goes on where it stopped.
    produce(table, 2, 11_000..12_500);
    wait_count(&server, table, 12_500, Duration::from_secs(60)).await;
    wait_done(&server, table, 12).await;
    let segs = segments(&server, table).await;
    check_chains(&segs);
    let want_sum: f64 = (0..12_500).map(amount).sum();
    assert_eq!(
        sum_and_distinct(&server, table).await,
        (want_sum, 12_500, 12_500)
    );

    // Deleting a committed segment removes its rows everywhere; a consuming one is refused.
    let c = format!("http://{}", server.controller_addr);
    let victim_docs = segs[&victim]["totalDocs"].as_i64().unwrap();
    let r = reqwest::Client::new()
        .delete(format!("{c}/segments/{table}/{victim}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(count(&server, table).await, 12_500 - victim_docs);
    assert!(!path.exists());
    let consuming = segs
        .values()
        .find(|m| m["status"] == "IN_PROGRESS")
        .unwrap()["segmentName"]
        .as_str()
        .unwrap()
        .to_string();
    let r = reqwest::Client::new()
        .delete(format!("{c}/segments/{table}/{consuming}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    server.shutdown().await;
}

async fn pause_flag(server: &riffle_node::Node, table: &str) -> Value {
    let (s, v) = get(&format!(
        "http://{}/tables/{table}/pauseStatus",
        server.controller_addr
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn control(server: &riffle_node::Node, path: &str) -> Value {
    let (s, v) = post(
        &format!("http://{}/tables/{path}", server.controller_addr),
        &json!({}),
    )
    .await;
    assert_eq!(s, 200, "{path}: {v}");
    v
}

/// Waits and checks that the count stays at `n` (nothing is consumed while paused).
async fn stays(server: &riffle_node::Node, table: &str, n: i64) {
    for _ in 0..10 {
        assert_eq!(count(server, table).await, n);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_commit_pause_and_resume_count_exactly() {
    let table = "lc_pause";
    let (dir, server) = serve_table(table, 2, json!({}), json!({}), |_| {}).await;
    produce(table, 2, 0..200);
    wait_count(&server, table, 200, Duration::from_secs(30)).await;

    // Force commit: both consuming segments commit, consumption goes on in new ones.
    let v = control(&server, &format!("{table}/forceCommit")).await;
    assert_eq!(v["forceCommitStatus"], "SUCCESS");
    let job = v["forceCommitJobId"].as_str().unwrap().to_string();
    let c = format!("http://{}", server.controller_addr);
    let start_t = Instant::now();
    loop {
        let (s, st) = get(&format!("{c}/tables/forceCommitStatus/{job}")).await;
        assert_eq!(s, 200, "{st}");
        assert_eq!(st["segmentsForceCommitted"].as_array().unwrap().len(), 2);
        if st["numberOfSegmentsYetToBeCommitted"] == 0 {
            break;
        }
        assert!(start_t.elapsed() < Duration::from_secs(30), "{st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let segs = segments(&server, table).await;
    assert_eq!(done(&segs).len(), 2);
    for m in done(&segs) {
        assert_eq!(m["stopReason"], "forceCommitMessageReceived");
        assert_eq!(m["totalDocs"], 100);
    }
    check_chains(&segs);
    assert_eq!(count(&server, table).await, 200);
    produce(table, 2, 200..300);
    wait_count(&server, table, 300, Duration::from_secs(30)).await;
    // Bad requests.
    let (s, _) = post(
        &format!("{c}/tables/{table}/forceCommit?partitions=0&segments=x"),
        &json!({}),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = post(
        &format!("{c}/tables/{table}/resumeConsumption?consumeFrom=middle"),
        &json!({}),
    )
    .await;
    assert_eq!(s, 400);

    // Pause: consuming segments commit; nothing more is read.
    let v = control(
        &server,
        &format!("{table}/pauseConsumption?comment=maintenance"),
    )
    .await;
    assert_eq!(v["pauseFlag"], true, "{v}");
    assert_eq!(v["consumingSegments"], json!([]), "{v}");
    assert_eq!(v["comment"], "maintenance");
    produce(table, 2, 300..400);
    stays(&server, table, 300).await;
    let segs = segments(&server, table).await;
    assert!(segs.values().all(|m| m["status"] == "DONE"), "{segs:?}");
    check_chains(&segs);
    // The pause survives a restart.
    server.shutdown().await;
    let server = start(dir.path()).await;
    assert_eq!(pause_flag(&server, table).await["pauseFlag"], true);
    stays(&server, table, 300).await;

    // Resume from the last consumed offset: exactly the 100 produced meanwhile.
    let v = control(&server, &format!("{table}/resumeConsumption")).await;
    assert_eq!(v["pauseFlag"], false, "{v}");
    assert_eq!(v["consumingSegments"].as_array().unwrap().len(), 2, "{v}");
    wait_count(&server, table, 400, Duration::from_secs(30)).await;
    let (sum, distinct, _) = sum_and_distinct(&server, table).await;
    assert_eq!(distinct, 400);
    assert_eq!(sum, (0..400).map(amount).sum::<f64>());

    // Resume from smallest: the whole stream again (410 messages), on top of the 400.
    control(&server, &format!("{table}/pauseConsumption")).await;
    produce(table, 2, 400..410);
    stays(&server, table, 400).await;
    control(
        &server,
        &format!("{table}/resumeConsumption?consumeFrom=smallest"),
    )
    .await;
    wait_count(&server, table, 810, Duration::from_secs(30)).await;

    // Resume from largest: what was produced while paused is skipped.
    control(&server, &format!("{table}/pauseConsumption")).await;
    produce(table, 2, 410..420);
    control(
        &server,
        &format!("{table}/resumeConsumption?consumeFrom=largest"),
    )
    .await;
    stays(&server, table, 810).await;
    produce(table, 2, 420..425);
    wait_count(&server, table, 815, Duration::from_secs(30)).await;
    // (Ranges overlap by design after `smallest`: the stream was read again on request.)
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_segments_only() {
    let table = "lc_retention";
    let (_dir, server) = serve_table(
        table,
        1,
        json!({"realtime.segment.flush.threshold.segment.rows": "500"}),
        json!({"segmentsConfig": {"retentionTimeUnit": "DAYS", "retentionTimeValue": "365"}}),
        |_| {},
    )
    .await;
    // 1,000 rows from 2023 (ids 0..1000 map to T0 + id s), then 600 rows from now.
    produce(table, 1, 0..1000);
    let now = riffle_common::now_ms();
    for i in 0..600u64 {
        let mut v: Value = serde_json::from_str(&row(100_000 + i)).unwrap();
        v["ts"] = json!(now);
        MemoryBroker::global()
            .produce(table, 0, v.to_string())
            .unwrap();
    }
    wait_count(&server, table, 1600, Duration::from_secs(30)).await;
    wait_done(&server, table, 3).await;
    let deleted = server.tables().enforce_retention().await;
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert_eq!(count(&server, table).await, 600);
    let segs = segments(&server, table).await;
    assert_eq!(done(&segs).len(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autotune_converges_to_the_target_size() {
    let dir = tempfile::tempdir().unwrap();
    let table = "lc_autotune";
    MemoryBroker::global().create_topic(table, 1).unwrap();
    produce(table, 1, 0..300_000);
    let server = start(dir.path()).await;
    // Pinot's autotune never goes below 10,000 rows: the target is well above that.
    let target = 500_000u64;
    create(
        &server,
        table,
        json!({
            "realtime.segment.flush.threshold.rows": "0",
            "realtime.segment.flush.threshold.segment.size": "500000",
            "realtime.segment.flush.autotune.initialRows": "2000",
        }),
        json!({}),
    )
    .await;
    wait_count(&server, table, 300_000, Duration::from_secs(180)).await;
    let start_t = Instant::now();
    let mut sizes: Vec<(u64, u64, u64)>;
    loop {
        let segs = segments(&server, table).await;
        let mut d: Vec<&Value> = done(&segs);
        d.sort_by_key(|m| m["sequenceNumber"].as_u64().unwrap());
        sizes = d
            .iter()
            .map(|m| {
                (
                    m["totalDocs"].as_u64().unwrap(),
                    m["sizeBytes"].as_u64().unwrap(),
                    m["flushThresholdRows"].as_u64().unwrap(),
                )
            })
            .collect();
        if sizes.len() >= 8 || start_t.elapsed() > Duration::from_secs(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(sizes.len() >= 8, "{sizes:?}");
    assert_eq!(
        sizes[0].0, 2000,
        "the first segment has the initial rows: {sizes:?}"
    );
    // Thresholds grow while segments are small, then every segment lands within Pinot's
    // bounds of the target (half to one and a half times).
    for (rows, size, _) in &sizes[sizes.len() - 3..] {
        assert!(
            *size >= target / 2 && *size <= target * 3 / 2,
            "{rows} rows, {size} bytes: {sizes:?}"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_answer_like_a_scan_and_read_less() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let plain = "lc_plain";
    let indexed = "lc_indexed";
    for (t, idx) in [
        (plain, json!({})),
        (
            indexed,
            json!({"tableIndexConfig": {
                "sortedColumn": ["kind"],
                "invertedIndexColumns": ["city"],
                "rangeIndexColumns": ["amount", "ts"],
                "bloomFilterColumns": ["id"],
                "noDictionaryColumns": ["amount"],
                "loadMode": "HEAP"
            }}),
        ),
    ] {
        MemoryBroker::global().create_topic(t, 2).unwrap();
        create(
            &server,
            t,
            json!({"realtime.segment.flush.threshold.segment.rows": "2000"}),
            idx,
        )
        .await;
        produce(t, 2, 0..9_000);
        wait_count(&server, t, 9_000, Duration::from_secs(60)).await;
        wait_done(&server, t, 4).await;
    }
    let queries = [
        "SELECT COUNT(*) FROM {t} WHERE city = 'oslo'",
        "SELECT COUNT(*), SUM(amount) FROM {t} WHERE city IN ('oslo', 'lima') AND kind = 3",
        "SELECT COUNT(*) FROM {t} WHERE city <> 'oslo'",
        "SELECT COUNT(*) FROM {t} WHERE kind BETWEEN 2 AND 5",
        "SELECT COUNT(*) FROM {t} WHERE kind > 11 OR city = 'paris'",
        "SELECT COUNT(*) FROM {t} WHERE amount >= 100.5 AND amount < 120",
        "SELECT SUM(amount) FROM {t} WHERE id = 4242",
        "SELECT COUNT(*) FROM {t} WHERE id = 123456",
        "SELECT city, COUNT(*) FROM {t} WHERE ts > CAST(1700000500000 AS TIMESTAMP) GROUP BY city ORDER BY city",
        "SELECT city, COUNT(*) FROM {t} WHERE ts > 1700000500000 GROUP BY city ORDER BY city",
        "SELECT COUNT(*) FROM {t} WHERE ts BETWEEN 1700000200000 AND 1700000700000",
        "SELECT id FROM {t} WHERE kind = 7 AND city = 'accra' ORDER BY id LIMIT 20",
        "SELECT MIN(ts), MAX(ts) FROM {t} WHERE amount < 1",
        "SELECT COUNT(*) FROM {t} WHERE city = 'nowhere'",
        "SELECT COUNT(*) FROM {t} WHERE kind IS NOT NULL AND amount > 249.5",
    ];
    for q in queries {
        let a = sql(&server, &q.replace("{t}", plain)).await;
        let b = sql(&server, &q.replace("{t}", indexed)).await;
        assert_eq!(
            a["resultTable"]["rows"], b["resultTable"]["rows"],
            "{q}: plain {a} vs indexed {b}"
        );
        assert_eq!(a["numDocsScanned"], b["numDocsScanned"], "{q}");
    }
    // Pinot's bare epoch-millisecond literal reads like the explicit cast, on sealed
    // segments too.
    let bare = sql(
        &server,
        &format!("SELECT COUNT(*) FROM {indexed} WHERE ts > 1700000500000"),
    )
    .await;
    let cast = sql(
        &server,
        &format!("SELECT COUNT(*) FROM {indexed} WHERE ts > CAST(1700000500000 AS TIMESTAMP)"),
    )
    .await;
    assert_eq!(bare["exceptions"], json!([]), "{bare}");
    assert_eq!(bare["resultTable"]["rows"], cast["resultTable"]["rows"]);
    assert_eq!(
        bare["numSegmentsPrunedByServer"],
        cast["numSegmentsPrunedByServer"]
    );
    // An inverted-index filter reads fewer values than the same filter scanned.
    let q = "SELECT COUNT(*) FROM {t} WHERE city = 'oslo'";
    let a = sql(&server, &q.replace("{t}", plain)).await;
    let b = sql(&server, &q.replace("{t}", indexed)).await;
    let (ea, eb) = (
        a["numEntriesScannedInFilter"].as_u64().unwrap(),
        b["numEntriesScannedInFilter"].as_u64().unwrap(),
    );
    assert!(eb < ea, "indexed {eb} vs plain {ea}");
    // Min/max (and bloom filters) prune every sealed segment for an absent id.
    let b = sql(
        &server,
        &format!("SELECT COUNT(*) FROM {indexed} WHERE id = 123456"),
    )
    .await;
    assert!(b["numSegmentsPrunedByServer"].as_u64().unwrap() >= 4, "{b}");
    server.shutdown().await;
}

/// Segments land in an S3-compatible deep store (moto, started here), and a fresh data
/// directory holding only the catalog gets every committed segment back from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_deep_store_restores_a_fresh_data_directory() {
    use riffle_storage::testing::S3Server;
    let s3 = S3Server::start().unwrap();
    s3.create_bucket("riffle-segments").unwrap();
    let start_s3 = |dir: std::path::PathBuf| {
        let opts = s3.options();
        async move {
            start_configured(&dir, false, |c| {
                c.deep_store_uri = Some("s3://riffle-segments/deep".into());
                c.deep_store_options = opts;
            })
            .await
        }
    };
    let first = tempfile::tempdir().unwrap();
    let table = "lc_s3";
    MemoryBroker::global().create_topic(table, 2).unwrap();
    let server = start_s3(first.path().to_path_buf()).await;
    create(
        &server,
        table,
        json!({"realtime.segment.flush.threshold.segment.rows": "1000"}),
        json!({}),
    )
    .await;
    produce(table, 2, 0..5_000);
    wait_count(&server, table, 5_000, Duration::from_secs(60)).await;
    wait_done(&server, table, 4).await;
    let segs = segments(&server, table).await;
    for m in done(&segs) {
        let url = m["downloadUrl"].as_str().unwrap();
        assert!(
            url.starts_with("s3://riffle-segments/deep/lc_s3_REALTIME/"),
            "{url}"
        );
    }
    server.shutdown().await;

    // A new machine: only the catalog is copied; no segment files.
    let second = tempfile::tempdir().unwrap();
    std::fs::copy(
        first.path().join("catalog.redb"),
        second.path().join("catalog.redb"),
    )
    .unwrap();
    let server = start_s3(second.path().to_path_buf()).await;
    wait_count(&server, table, 5_000, Duration::from_secs(60)).await;
    let (sum, distinct, _) = sum_and_distinct(&server, table).await;
    assert_eq!(distinct, 5_000);
    assert_eq!(sum, (0..5_000).map(amount).sum::<f64>());
    let local: Vec<_> = std::fs::read_dir(second.path().join("segments").join("lc_s3_REALTIME"))
        .unwrap()
        .collect();
    assert_eq!(local.len(), 4, "every committed segment was downloaded");
    let v = sql(&server, &format!("SELECT COUNT(*) FROM {table}")).await;
    assert_eq!(v["numSegmentsQueried"], 6, "{v}");
    server.shutdown().await;
}

/// A partition the stream closes (a split shard) commits its last segment and ends; the
/// others go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_partition_commits_its_last_segment_and_ends() {
    let table = "lc_closed";
    let (dir, server) = serve_table(table, 2, json!({}), json!({}), |_| {}).await;
    produce(table, 2, 0..300);
    wait_count(&server, table, 300, Duration::from_secs(30)).await;
    MemoryBroker::global().close_partition(table, 0).unwrap();
    wait_done(&server, table, 1).await;
    let segs = segments(&server, table).await;
    let last = done(&segs)[0];
    assert_eq!(last["partitionId"], 0);
    assert_eq!(last["stopReason"], "endOfPartitionGroup");
    assert_eq!(last["totalDocs"], 150);
    assert_eq!(last["endOffset"], "150");
    // Partition 1 still consumes; partition 0 has no consuming segment any more.
    let consuming: Vec<&Value> = segs
        .values()
        .filter(|m| m["status"] == "IN_PROGRESS")
        .collect();
    assert_eq!(consuming.len(), 1);
    assert_eq!(consuming[0]["partitionId"], 1);
    for id in (301..400).step_by(2) {
        MemoryBroker::global().produce(table, 1, row(id)).unwrap();
    }
    wait_count(&server, table, 350, Duration::from_secs(30)).await;
    // A restart does not reopen it.
    server.shutdown().await;
    let server = start(dir.path()).await;
    wait_count(&server, table, 350, Duration::from_secs(30)).await;
    assert_eq!(done(&segments(&server, table).await).len(), 1);
    server.shutdown().await;
}

/// A split and then a merge, as Kinesis reshards: a child starts only after each of its
/// parents was read to its end and committed, every row arrives exactly once, and a
/// restart in the middle loses nothing and reopens no ended partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_of_a_reshard_start_after_their_parents_end() {
    let table = "lc_reshard";
    let (dir, server) = serve_table(table, 1, json!({}), json!({}), |_| {}).await;
    let b = MemoryBroker::global();
    let put = |p: u32, ids: std::ops::Range<u64>| {
        for id in ids {
            b.produce(table, p, row(id)).unwrap();
        }
    };
    put(0, 0..100);
    wait_count(&server, table, 100, Duration::from_secs(30)).await;
    // Paused, partition 0 gets 50 rows nobody has read, then splits into 1 and 2, which get
    // rows at once.
    control(&server, &format!("{table}/pauseConsumption")).await;
    put(0, 100..150);
    assert_eq!(b.reshard(table, &[0], 2).unwrap(), vec![1, 2]);
    put(1, 150..170);
    put(2, 170..200);
    stays(&server, table, 100).await;
    // Resumed: only partition 0 consumes until it has read its end.
    let v = control(&server, &format!("{table}/resumeConsumption")).await;
    assert_eq!(v["consumingSegments"].as_array().unwrap().len(), 1, "{v}");
    wait_count(&server, table, 200, Duration::from_secs(30)).await;
    let segs = segments(&server, table).await;
    let last0 = segs
        .values()
        .filter(|m| m["partitionId"] == 0)
        .max_by_key(|m| m["sequenceNumber"].as_u64())
        .unwrap();
    assert_eq!(last0["stopReason"], "endOfPartitionGroup", "{last0}");
    assert_eq!(last0["status"], "DONE");
    let ended_at = last0["commitTimeMs"].as_i64().unwrap();
    for p in [1, 2] {
        let first = segs
            .values()
            .find(|m| m["partitionId"] == p && m["sequenceNumber"] == 0)
            .unwrap_or_else(|| panic!("partition {p} never started: {segs:?}"));
        assert!(
            first["creationTimeMillis"].as_i64().unwrap() >= ended_at,
            "partition {p} started before its parent ended: {first} vs {last0}"
        );
    }
    // Merge 1 and 2 into 3; a restart in the middle.
    assert_eq!(b.reshard(table, &[1, 2], 1).unwrap(), vec![3]);
    put(3, 200..260);
    server.shutdown().await;
    let server = start(dir.path()).await;
    put(3, 260..300);
    wait_count(&server, table, 300, Duration::from_secs(30)).await;
    let (sum, distinct, count) = sum_and_distinct(&server, table).await;
    assert_eq!((distinct, count), (300, 300));
    assert_eq!(sum, (0..300).map(amount).sum::<f64>());
    let segs = segments(&server, table).await;
    for p in [0, 1, 2] {
        let consuming = segs
            .values()
            .filter(|m| m["partitionId"] == p && m["status"] == "IN_PROGRESS")
            .count();
        assert_eq!(consuming, 0, "ended partition {p} reopened: {segs:?}");
    }
    server.shutdown().await;
}

/// A consuming segment that reaches the memory cap ends early
/// (`indexCapacityThresholdBreached`) instead of growing without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_cap_ends_a_segment_early() {
    let table = "lc_memcap";
    let (_dir, server) = serve_table(table, 1, json!({}), json!({}), |c| {
        c.max_consuming_bytes = 256 * 1024
    })
    .await;
    produce(table, 1, 0..20_000);
    wait_count(&server, table, 20_000, Duration::from_secs(60)).await;
    let start_t = Instant::now();
    let segs = loop {
        let segs = segments(&server, table).await;
        if done(&segs).len() >= 2 || start_t.elapsed() > Duration::from_secs(30) {
            break segs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let d = done(&segs);
    assert!(d.len() >= 2, "{segs:?}");
    for m in d {
        assert_eq!(m["stopReason"], "indexCapacityThresholdBreached", "{m}");
        assert!(m["totalDocs"].as_u64().unwrap() < 20_000);
    }
    check_chains(&segs);
    // With every sealed segment pruned, the one consuming segment is scanned. A segment
    // that reached the cap may still be committing (or swapping in for queries) when the
    // segments are listed, so the query is asked again until it agrees with a listing that
    // did not change across it.
    let sealed_docs = |segs: &BTreeMap<String, Value>| -> u64 {
        done(segs)
            .iter()
            .map(|m| m["totalDocs"].as_u64().unwrap())
            .sum()
    };
    let start_t = Instant::now();
    loop {
        let before = segments(&server, table).await;
        let v = sql(
            &server,
            &format!("SELECT COUNT(*) FROM {table} WHERE id = 99999999"),
        )
        .await;
        let after = segments(&server, table).await;
        assert_eq!(v["numDocsScanned"], 0, "{v}");
        let scanned = v["numEntriesScannedInFilter"].as_u64().unwrap();
        let expected = 20_000 - sealed_docs(&after);
        if before == after && scanned == expected {
            break;
        }
        assert!(
            start_t.elapsed() < Duration::from_secs(30),
            "scanned {scanned} entries, expected the consuming segment's {expected}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (sum, distinct, _) = sum_and_distinct(&server, table).await;
    assert_eq!(distinct, 20_000);
    assert_eq!(sum, (0..20_000).map(amount).sum::<f64>());
    server.shutdown().await;
}

/// A deep store that cannot take segments (here its table directory is a file) holds the
/// sealer at the first segment, retrying. Consumption goes on at once into the next
/// segments, but once the frozen segments beyond the first hold the memory cap together it
/// waits for the sealer: a partition holds about twice the cap, not a queue of segments (four
/// before this bound). When uploads work again every segment commits, exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_deep_store_bounds_what_a_partition_holds() {
    let table = "lc_stuck";
    let n = 60_000u64;
    let (dir, server) = serve_table(table, 1, json!({}), json!({}), |c| {
        c.max_consuming_bytes = 1 << 20
    })
    .await;
    let blocker = dir
        .path()
        .join("deepstore")
        .join(format!("{table}_REALTIME"));
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"not a directory").unwrap();
    produce(table, 1, 0..n);

    // Wait until the published count stands still for 2 s.
    let mut held = -1;
    let mut still_since = Instant::now();
    let started = Instant::now();
    loop {
        let c = count(&server, table).await;
        if c != held {
            held = c;
            still_since = Instant::now();
        } else if still_since.elapsed() > Duration::from_secs(2) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "count never settled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(held > 0 && (held as u64) < n, "held {held} of {n}");
    assert!(done(&segments(&server, table).await).is_empty());
    let (code, status) = get(&format!(
        "http://{}/tables/{table}/consumingSegmentsInfo",
        server.controller_addr
    ))
    .await;
    assert_eq!(code, 200, "{status}");
    assert!(
        status.to_string().contains("retrying"),
        "the stuck commit is visible: {status}"
    );

    // The deep store takes segments again: everything commits.
    std::fs::remove_file(&blocker).unwrap();
    wait_count(&server, table, n as i64, Duration::from_secs(90)).await;
    let started = Instant::now();
    let segs = loop {
        let segs = segments(&server, table).await;
        let docs: u64 = done(&segs)
            .iter()
            .map(|m| m["totalDocs"].as_u64().unwrap())
            .sum();
        if docs + 20_000 >= n || started.elapsed() > Duration::from_secs(60) {
            break segs;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    check_chains(&segs);
    let per_segment = done(&segs)
        .iter()
        .filter(|m| m["stopReason"] == "indexCapacityThresholdBreached")
        .map(|m| m["totalDocs"].as_u64().unwrap())
        .max()
        .unwrap();
    // Held while stuck: the segment in the sealer, one more frozen, and at most the start of
    // the consuming one; without the bound, four full segments.
    assert!(
        (held as u64) > per_segment * 3 / 2 && (held as u64) < per_segment * 5 / 2,
        "held {held} rows while stuck, {per_segment} per full segment"
    );
    let (sum, distinct, _) = sum_and_distinct(&server, table).await;
    assert_eq!(distinct, n as i64);
    assert_eq!(sum, (0..n).map(amount).sum::<f64>());
    server.shutdown().await;
}

/// A committed segment that can be loaded neither from the local disk (corrupt) nor from
/// the deep store (gone) leaves its rows out of queries, and every query on the table says
/// so with Pinot's "segments unavailable" error (305) beside the partial result, until the
/// segment is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unloadable_segment_makes_query_results_partial() {
    let table = "lc_unloadable";
    let (dir, server) = serve_table(
        table,
        1,
        json!({"realtime.segment.flush.threshold.segment.rows": "1000"}),
        json!({}),
        |_| {},
    )
    .await;
    produce(table, 1, 0..2_500);
    wait_count(&server, table, 2_500, Duration::from_secs(60)).await;
    wait_done(&server, table, 2).await;
    let segs = segments(&server, table).await;
    let victim = done(&segs)[0]["segmentName"].as_str().unwrap().to_string();
    let victim_docs = segs[&victim]["totalDocs"].as_i64().unwrap();
    server.shutdown().await;

    corrupt_local_copy(dir.path(), table, &victim);
    let remote = dir
        .path()
        .join("deepstore")
        .join(format!("{table}_REALTIME"))
        .join(&victim);
    std::fs::remove_file(&remote).unwrap();

    let server = start(dir.path()).await;
    // The broker's answer as it is, exceptions included.
    let query = |q: String| {
        let url = format!("http://{}/query/sql", server.broker_addr);
        async move {
            let (status, v) = post(&url, &json!({ "sql": q })).await;
            assert_eq!(status, 200, "{v}");
            v
        }
    };
    let started = Instant::now();
    let v = loop {
        let v = query(format!("SELECT COUNT(*) FROM {table}")).await;
        if v["resultTable"]["rows"][0][0] == 2_500 - victim_docs {
            break v;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(v["partialResult"], true, "{v}");
    assert_eq!(v["exceptions"][0]["errorCode"], 305, "{v}");
    let message = v["exceptions"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("1 segments of table lc_unloadable unavailable")
            && message.contains(&victim),
        "{message}"
    );
    // Clients that ask for HTTP statuses get Pinot's 503 for it.
    let r = reqwest::Client::new()
        .post(format!("http://{}/query/sql", server.broker_addr))
        .header("Pinot-Use-Http-Status-For-Errors", "true")
        .json(&json!({"sql": format!("SELECT COUNT(*) FROM {table}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["X-Pinot-Error-Code"], "305");
    let c = format!("http://{}", server.controller_addr);
    let (code, meta) = get(&format!("{c}/segments/{table}/{victim}/metadata")).await;
    assert_eq!(code, 200, "{meta}");
    assert!(meta["riffleLoadError"].is_string(), "{meta}");

    // Deleting the segment makes the result whole again (without its rows).
    let r = reqwest::Client::new()
        .delete(format!("{c}/segments/{table}/{victim}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v = sql(&server, &format!("SELECT COUNT(*) FROM {table}")).await;
    assert_eq!(v["exceptions"], json!([]), "{v}");
    assert_eq!(v["partialResult"], false, "{v}");
    assert_eq!(v["resultTable"]["rows"][0][0], 2_500 - victim_docs, "{v}");
    server.shutdown().await;
}
