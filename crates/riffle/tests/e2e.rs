//! End to end: Pinot configs in, SQL answers out, through the real HTTP APIs and CLI.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn riffle(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_riffle"))
        .args(args)
        .output()
        .expect("run riffle");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Expected per-subject average scores of the transcript sample, computed from the file.
fn expected_averages() -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for l in transcript_rows() {
        let v: Value = serde_json::from_str(&l).unwrap();
        let e = sums
            .entry(v["subject"].as_str().unwrap().to_string())
            .or_default();
        // Scores are FLOAT columns: compare with the f32 value.
        e.0 += v["score"].as_f64().unwrap() as f32 as f64;
        e.1 += 1.0;
    }
    sums.into_iter().map(|(k, (s, n))| (k, s / n)).collect()
}

async fn check_averages(server: &riffle_node::Node) {
    let v = sql(
        server,
        "SELECT subject, AVG(score) FROM transcript GROUP BY subject ORDER BY subject LIMIT 100",
    )
    .await;
    assert_eq!(
        v["resultTable"]["dataSchema"]["columnNames"],
        json!(["subject", "avg(score)"])
    );
    let expected = expected_averages();
    let rows = v["resultTable"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), expected.len(), "{v}");
    for r in rows {
        let want = expected[r[0].as_str().unwrap()];
        let got = r[1].as_f64().unwrap();
        assert!((got - want).abs() < 1e-9, "{}: {got} != {want}", r[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcript_through_cli_and_http_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let cport = server.controller_addr.port().to_string();
    let bport = server.broker_addr.port().to_string();
    append(
        dir.path(),
        "transcript-topic",
        "0.jsonl",
        &transcript_rows(),
    );

    let repo = repo();
    let schema = repo.join("examples/transcript/transcript_schema.json");
    let table = repo.join("examples/transcript/transcript_file_table_config.json");
    let (ok, out) = tokio::task::spawn_blocking(move || {
        riffle(&[
            "AddTable",
            "-schemaFile",
            schema.to_str().unwrap(),
            "-tableConfigFile",
            table.to_str().unwrap(),
            "-controllerHost",
            "127.0.0.1",
            "-controllerPort",
            &cport,
            "-exec",
        ])
    })
    .await
    .unwrap();
    assert!(ok, "AddTable failed: {out}");
    assert!(out.contains("successfully added"), "{out}");

    wait_count(&server, "transcript", 12, Duration::from_secs(20)).await;
    check_averages(&server).await;

    // PostQuery prints Pinot's response.
    let (ok, out) = tokio::task::spawn_blocking(move || {
        riffle(&[
            "PostQuery",
            "-brokerHost",
            "127.0.0.1",
            "-brokerPort",
            &bport,
            "-query",
            "SELECT COUNT(*) FROM transcript",
        ])
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    let v: Value = serde_json::from_str(out.trim()).expect("PostQuery prints JSON");
    assert_eq!(v["resultTable"]["rows"], json!([[12]]));

    // The controller API describes what was created.
    let c = format!("http://{}", server.controller_addr);
    assert_eq!(
        get(&format!("{c}/tables")).await.1,
        json!({"tables": ["transcript"]})
    );
    let (s, t) = get(&format!("{c}/tables/transcript")).await;
    assert_eq!(s, 200);
    assert_eq!(t["REALTIME"]["tableName"], "transcript_REALTIME");
    let (s, segs) = get(&format!("{c}/segments/transcript")).await;
    assert_eq!(s, 200);
    let names = segs[0]["REALTIME"].as_array().unwrap();
    assert_eq!(names.len(), 1);
    assert!(names[0].as_str().unwrap().starts_with("transcript__0__0__"));
    let (_, sch) = get(&format!("{c}/tables/transcript/schema")).await;
    assert_eq!(sch["schemaName"], "transcript");
    let (_, info) = get(&format!("{c}/tables/transcript/consumingSegmentsInfo")).await;
    let seg = info["_segmentToConsumingInfoMap"].as_object().unwrap();
    assert_eq!(seg.len(), 1);
    // Caught up: the latest upstream offset is the file's length and the lag is zero. File
    // offsets are bytes, so no records lag is claimed.
    let file_len = std::fs::metadata(dir.path().join("streams/transcript-topic/0.jsonl"))
        .unwrap()
        .len();
    let po = &seg.values().next().unwrap()[0]["partitionOffsetInfo"];
    assert_eq!(po["currentOffsetsMap"]["0"], file_len.to_string(), "{info}");
    assert_eq!(
        po["latestUpstreamOffsetMap"]["0"],
        file_len.to_string(),
        "{info}"
    );
    assert_eq!(po["recordsLagMap"], json!({}), "{info}");
    assert_eq!(po["availabilityLagMsMap"]["0"], "0", "{info}");

    // Restart on the same data directory: the same rows, no duplicates.
    server.shutdown().await;
    let server = start(dir.path()).await;
    wait_count(&server, "transcript", 12, Duration::from_secs(20)).await;
    check_averages(&server).await;
    // And consumption continues.
    let more: Vec<String> = (0..3)
        .map(|i| json!({"studentID": 300 + i, "firstName": "New", "lastName": "Row", "gender": "Female", "subject": "Art", "score": 4.0, "timestampInEpoch": 1_573_000_000_000i64}).to_string())
        .collect();
    append(dir.path(), "transcript-topic", "0.jsonl", &more);
    wait_count(&server, "transcript", 15, Duration::from_secs(20)).await;
    // A partition that appears later is consumed from its start.
    append(dir.path(), "transcript-topic", "1.jsonl", &more[..2]);
    wait_count(&server, "transcript", 17, Duration::from_secs(20)).await;
    let v = sql(
        &server,
        "SELECT COUNT(*) FROM transcript WHERE subject = 'Art'",
    )
    .await;
    assert_eq!(v["resultTable"]["rows"], json!([[5]]));
    assert_eq!(v["numConsumingSegmentsQueried"], 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configs_are_rejected_with_400_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let c = format!("http://{}", server.controller_addr);
    let cases: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(
            repo().join("crates/riffle-config/tests/data/invalid_configs.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    let valid_schema = read_json("examples/transcript/transcript_schema.json");
    let (s, _) = post(&format!("{c}/schemas"), &valid_schema).await;
    assert_eq!(s, 200);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let path = case["expect_path"].as_str().unwrap();
        let (status, body) = match case.get("table") {
            Some(table) => post(&format!("{c}/tables"), table).await,
            None => post(&format!("{c}/schemas"), &case["schema"]).await,
        };
        assert_eq!(
            status, 400,
            "case {name}: expected 400, got {status}: {body}"
        );
        assert_eq!(body["code"], 400, "case {name}: {body}");
        let msg = body["error"].as_str().unwrap();
        assert!(
            msg.contains(path),
            "case {name}: error does not name {path}: {msg}"
        );
    }
    // Nothing was created by the rejected configs.
    assert_eq!(get(&format!("{c}/tables")).await.1, json!({"tables": []}));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_lines_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let c = format!("http://{}", server.controller_addr);
    // 100,000 good lines with 1,000 malformed ones mixed in, over two partitions.
    for p in 0..2 {
        let mut lines = Vec::with_capacity(50_500);
        for i in 0..50_000 {
            let id = p * 50_000 + i;
            lines.push(format!(
                r#"{{"studentID":{id},"firstName":"f{id}","lastName":"l","gender":"x","subject":"s{}","score":1.5,"timestampInEpoch":{}}}"#,
                id % 7,
                1_600_000_000_000i64 + id as i64
            ));
            if i % 100 == 50 {
                lines.push(match (i / 100) % 5 {
                    0 => "{\"studentID\": ".to_string(),
                    1 => "not json at all".to_string(),
                    2 => r#"{"studentID":"abc"}"#.to_string(),
                    3 => "[1,2,3]".to_string(),
                    _ => r#"{"score": {"nested": true}}"#.to_string(),
                });
            }
        }
        append(
            dir.path(),
            "transcript-topic",
            &format!("{p}.jsonl"),
            &lines,
        );
    }
    let schema = read_json("examples/transcript/transcript_schema.json");
    let table = read_json("examples/transcript/transcript_file_table_config.json");
    let (s, body) = post(
        &format!("{c}/tableConfigs"),
        &json!({"tableName": "transcript", "schema": schema, "realtime": table}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    wait_count(&server, "transcript", 100_000, Duration::from_secs(60)).await;
    let v = sql(
        &server,
        "SELECT COUNT(DISTINCT studentID), SUM(score) FROM transcript",
    )
    .await;
    assert_eq!(v["resultTable"]["rows"][0][0], 100_000);
    assert_eq!(v["resultTable"]["rows"][0][1].as_f64().unwrap(), 150_000.0);
    // The dropped messages are counted and visible per partition.
    let (_, info) = get(&format!("{c}/tables/transcript/consumingSegmentsInfo")).await;
    let errors: u64 = info["_segmentToConsumingInfoMap"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v[0]["riffleDecodeErrors"].as_u64().unwrap())
        .sum();
    assert_eq!(errors, 1_000, "{info}");
    for v in info["_segmentToConsumingInfoMap"]
        .as_object()
        .unwrap()
        .values()
    {
        assert_eq!(v[0]["consumerState"], "CONSUMING");
        assert!(v[0]["riffleLastError"]
            .as_str()
            .unwrap()
            .contains("malformed message at offset"));
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_on_decode_error_stops_the_partition_visibly() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let c = format!("http://{}", server.controller_addr);
    let mut rows = transcript_rows();
    rows.insert(5, "{broken".to_string());
    append(dir.path(), "transcript-topic", "0.jsonl", &rows);
    let schema = read_json("examples/transcript/transcript_schema.json");
    let mut table = read_json("examples/transcript/transcript_file_table_config.json");
    table["tableIndexConfig"]["streamConfigs"]["stopOnDecodeError"] = json!("true");
    let (s, body) = post(
        &format!("{c}/tableConfigs"),
        &json!({"tableName": "transcript", "schema": schema, "realtime": table}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    wait_count(&server, "transcript", 5, Duration::from_secs(20)).await;
    let (_, info) = get(&format!("{c}/tables/transcript/consumingSegmentsInfo")).await;
    let seg = info["_segmentToConsumingInfoMap"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    assert_eq!(seg[0]["consumerState"], "NOT_CONSUMING", "{info}");
    assert_eq!(seg[0]["riffleState"], "ERROR");
    let err = seg[0]["riffleLastError"].as_str().unwrap();
    assert!(
        err.contains("stopOnDecodeError") && err.contains("offset"),
        "{err}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_shapes_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let c = format!("http://{}", server.controller_addr);
    let b = format!("http://{}", server.broker_addr);
    assert_eq!(
        get(&format!("{c}/health")).await,
        (200, Value::String("OK".into()))
    );
    assert_eq!(
        get(&format!("{b}/health")).await,
        (200, Value::String("OK".into()))
    );

    // Schemas: add (unknown keys reported), get, list, conflict without override.
    let mut schema = read_json("examples/transcript/transcript_schema.json");
    schema["myOwnKey"] = json!(1);
    let (s, v) = post(&format!("{c}/schemas"), &schema).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "transcript successfully added");
    assert_eq!(v["unrecognizedProperties"], json!({"$.myOwnKey": 1}));
    assert_eq!(get(&format!("{c}/schemas")).await.1, json!(["transcript"]));
    let (s, v) = get(&format!("{c}/schemas/transcript")).await;
    assert_eq!(s, 200);
    assert_eq!(v["dimensionFieldSpecs"][0]["name"], "studentID");
    let (s, _) = post(&format!("{c}/schemas?override=false"), &schema).await;
    assert_eq!(s, 409);
    assert_eq!(get(&format!("{c}/schemas/nosuch")).await.0, 404);

    // Tables: add, conflict, list, get, delete.
    let table = read_json("examples/transcript/transcript_file_table_config.json");
    let (s, v) = post(&format!("{c}/tables"), &table).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "Table transcript_REALTIME successfully added");
    assert_eq!(post(&format!("{c}/tables"), &table).await.0, 409);
    // A schema in use cannot be deleted.
    let r = reqwest::Client::new()
        .delete(format!("{c}/schemas/transcript"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);

    // Broker: errors are HTTP 200 with Pinot codes and the X-Pinot-Error-Code header.
    let r = reqwest::Client::new()
        .post(format!("{b}/query/sql"))
        .json(&json!({"sql": "SELECT * FROM nosuch"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["X-Pinot-Error-Code"], "190");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["exceptions"][0]["errorCode"], 190);
    for key in [
        "numServersQueried",
        "numServersResponded",
        "numDocsScanned",
        "totalDocs",
        "numSegmentsQueried",
        "numConsumingSegmentsQueried",
        "minConsumingFreshnessTimeMs",
        "timeUsedMs",
        "numEntriesScannedInFilter",
    ] {
        assert!(v.get(key).is_some(), "{key} missing: {v}");
    }
    let (s, v) = get(&format!(
        "{b}/query/sql?sql=SELECT%20COUNT(*)%20FROM%20transcript"
    ))
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["resultTable"]["rows"], json!([[0]]));
    let (s, v) = post(
        &format!("{c}/sql"),
        &json!({"sql": "SELECT COUNT(*) FROM transcript"}),
    )
    .await;
    assert_eq!((s, v["resultTable"]["rows"].clone()), (200, json!([[0]])));
    let r = reqwest::Client::new()
        .post(format!("{b}/query/sql"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let (s, _) = post(&format!("{b}/query/sql"), &json!({"query": "x"})).await;
    assert_eq!(s, 400);
    let r = reqwest::Client::new()
        .post(format!("{b}/query/sql"))
        .header("Pinot-Use-Http-Status-For-Errors", "true")
        .json(&json!({"sql": "SELECT * FROM transcript WHERE"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    let r = reqwest::Client::new()
        .delete(format!("{c}/tables/transcript"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(get(&format!("{c}/tables/transcript")).await.0, 404);
    let r = reqwest::Client::new()
        .delete(format!("{c}/schemas/transcript"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_schema_and_table_and_cli_help() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let c = format!("http://{}", server.controller_addr);
    let cport = server.controller_addr.port().to_string();

    // AddSchema through the CLI; without -exec it only prints.
    let schema_path = repo().join("examples/transcript/transcript_schema.json");
    let sp = schema_path.to_str().unwrap().to_string();
    let (cp, sp2) = (cport.clone(), sp.clone());
    let (ok, out) = tokio::task::spawn_blocking(move || {
        riffle(&["AddSchema", "-schemaFile", &sp2, "-controllerPort", &cp])
    })
    .await
    .unwrap();
    assert!(ok && out.contains("dry run"), "{out}");
    assert_eq!(get(&format!("{c}/schemas")).await.1, json!([]));
    let (ok, out) = tokio::task::spawn_blocking(move || {
        riffle(&[
            "AddSchema",
            "-schemaFile",
            &sp,
            "-controllerHost",
            "127.0.0.1",
            "-controllerPort",
            &cport,
            "-exec",
        ])
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    assert_eq!(get(&format!("{c}/schemas")).await.1, json!(["transcript"]));

    // Every admin command explains itself.
    for cmd in ["AddTable", "AddSchema", "PostQuery"] {
        let (ok, out) = riffle(&[cmd, "-help"]);
        assert!(ok && out.contains("usage: riffle"), "{cmd}: {out}");
        let (ok, out) = riffle(&[cmd, "--help"]);
        assert!(ok && out.contains(cmd), "{cmd}: {out}");
    }
    let (ok, out) = riffle(&["AddTable", "-bogus", "x"]);
    assert!(!ok && out.contains("-bogus"), "{out}");

    // PUT /schemas: the name must match; a new column is accepted.
    let mut schema = read_json("examples/transcript/transcript_schema.json");
    schema["dimensionFieldSpecs"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "school", "dataType": "STRING"}));
    let r = reqwest::Client::new()
        .put(format!("{c}/schemas/other"))
        .json(&schema)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = reqwest::Client::new()
        .put(format!("{c}/schemas/transcript"))
        .json(&schema)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, v) = get(&format!("{c}/schemas/transcript")).await;
    assert_eq!(v["dimensionFieldSpecs"].as_array().unwrap().len(), 6);

    // PUT /tables: a new config restarts consumption from the catalog's offsets.
    append(
        dir.path(),
        "transcript-topic",
        "0.jsonl",
        &transcript_rows(),
    );
    let mut table = read_json("examples/transcript/transcript_file_table_config.json");
    let (s, v) = post(&format!("{c}/tables"), &table).await;
    assert_eq!(s, 200, "{v}");
    wait_count(&server, "transcript", 12, Duration::from_secs(20)).await;
    table["tableIndexConfig"]["streamConfigs"]["realtime.segment.flush.threshold.rows"] =
        json!("1000");
    let r = reqwest::Client::new()
        .put(format!("{c}/tables/transcript"))
        .json(&table)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "Table config updated for transcript_REALTIME");
    let (_, t) = get(&format!("{c}/tables/transcript")).await;
    assert_eq!(
        t["REALTIME"]["tableIndexConfig"]["streamConfigs"]["realtime.segment.flush.threshold.rows"],
        "1000"
    );
    // Same rows after the restart of consumption, no duplicates; the new column reads
    // its default value.
    wait_count(&server, "transcript", 12, Duration::from_secs(20)).await;
    let v = sql(
        &server,
        "SELECT COUNT(*) FROM transcript WHERE school = 'null'",
    )
    .await;
    assert_eq!(v["resultTable"]["rows"], json!([[12]]));
    // An invalid update is refused and changes nothing.
    table["tableIndexConfig"]["streamConfigs"]["realtime.segment.flush.threshold.time"] =
        json!("6x");
    let r = reqwest::Client::new()
        .put(format!("{c}/tables/transcript"))
        .json(&table)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let (_, t) = get(&format!("{c}/tables/transcript")).await;
    assert!(t["REALTIME"]["tableIndexConfig"]["streamConfigs"]
        .get("realtime.segment.flush.threshold.time")
        .is_none_or(|v| v != "6x"));

    // Secrets never come back out: GET masks them, and an update that sends the mask
    // back keeps the stored value.
    table["tableIndexConfig"]["streamConfigs"]["realtime.segment.flush.threshold.time"] =
        json!("1h");
    table["tableIndexConfig"]["streamConfigs"]["sasl.password"] = json!("hunter2");
    let r = reqwest::Client::new()
        .put(format!("{c}/tables/transcript"))
        .json(&table)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, t) = get(&format!("{c}/tables/transcript")).await;
    assert!(!t.to_string().contains("hunter2"), "{t}");
    assert_eq!(
        t["REALTIME"]["tableIndexConfig"]["streamConfigs"]["sasl.password"],
        "*****"
    );
    let mut back = t["REALTIME"].clone();
    back["tableIndexConfig"]["streamConfigs"]["realtime.segment.flush.threshold.time"] =
        json!("2h");
    let r = reqwest::Client::new()
        .put(format!("{c}/tables/transcript"))
        .json(&back)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let name = riffle_common::TableNameWithType::parse("transcript_REALTIME").unwrap();
    let stored = server
        .tables()
        .table(&name)
        .await
        .unwrap()
        .unwrap()
        .to_json()
        .to_string();
    assert!(
        stored.contains("hunter2") && stored.contains("\"2h\""),
        "{stored}"
    );
    server.shutdown().await;
}

/// Retention deletes offsets a table has not read yet (while the server is down): by default
/// the partition stops with an error naming the lost range; a table that opted into
/// `realtime.segment.dataLossPolicy=RESUME_FROM_EARLIEST` counts the gap and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_loss_stops_or_resumes_by_policy() {
    use riffle_stream::memory::MemoryBroker;
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let c = format!("http://{}", server.controller_addr);
    let broker = MemoryBroker::global();
    let rows = transcript_rows();
    for (table, policy) in [
        ("loss_stop", None),
        ("loss_resume", Some("RESUME_FROM_EARLIEST")),
    ] {
        broker.create_topic(table, 1).unwrap();
        for r in rows.iter().take(10) {
            broker.produce(table, 0, r.clone()).unwrap();
        }
        let mut schema = read_json("examples/transcript/transcript_schema.json");
        schema["schemaName"] = json!(table);
        let mut cfg = json!({
            "streamType": "memory",
            "stream.memory.topic.name": table,
            "stream.memory.decoder.class.name": "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
            "stream.memory.consumer.prop.auto.offset.reset": "smallest"
        });
        if let Some(p) = policy {
            cfg["realtime.segment.dataLossPolicy"] = json!(p);
        }
        let t = json!({"tableName": table, "tableType": "REALTIME",
            "segmentsConfig": {"timeColumnName": "timestampInEpoch", "replication": "1"},
            "tenants": {}, "tableIndexConfig": {"streamConfigs": cfg}});
        let (s, v) = post(
            &format!("{c}/tableConfigs"),
            &json!({"tableName": table, "schema": schema, "realtime": t}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        wait_count(&server, table, 10, Duration::from_secs(20)).await;
    }
    // Down: 10 more messages arrive and retention drops offsets 0..15.
    server.shutdown().await;
    for table in ["loss_stop", "loss_resume"] {
        for r in rows.iter().take(10) {
            broker.produce(table, 0, r.clone()).unwrap();
        }
        broker.truncate_before(table, 0, 15).unwrap();
    }
    let server = start(dir.path()).await;
    let c = format!("http://{}", server.controller_addr);
    // The opted-in table reads what is left (offsets 15..20) and says what it skipped.
    wait_count(&server, "loss_resume", 5, Duration::from_secs(20)).await;
    let (_, info) = get(&format!("{c}/tables/loss_resume/consumingSegmentsInfo")).await;
    let p = info["_segmentToConsumingInfoMap"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()[0]
        .clone();
    assert_eq!(p["riffleOffsetsLost"], 15, "{info}");
    assert_eq!(p["consumerState"], "CONSUMING");
    assert!(
        p["riffleLastError"]
            .as_str()
            .unwrap()
            .contains("offsets from 0 up to 15"),
        "{p}"
    );
    // The default stops, naming the lost range, and skips nothing.
    let start_wait = std::time::Instant::now();
    loop {
        let (_, info) = get(&format!("{c}/tables/loss_stop/consumingSegmentsInfo")).await;
        let p = info["_segmentToConsumingInfoMap"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()[0]
            .clone();
        if p["riffleState"] == "ERROR" {
            let e = p["riffleLastError"].as_str().unwrap();
            assert!(
                e.contains("offsets from 0 up to 15") && e.contains("RESUME_FROM_EARLIEST"),
                "{e}"
            );
            assert_eq!(p["partitionOffsetInfo"]["currentOffsetsMap"]["0"], "0");
            break;
        }
        assert!(start_wait.elapsed() < Duration::from_secs(20), "{info}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&server, "loss_stop").await, 0);
    // A policy Riffle does not know is refused, naming the key.
    let (s, _) = post(
        &format!("{c}/schemas"),
        &read_json("examples/transcript/transcript_schema.json"),
    )
    .await;
    assert_eq!(s, 200);
    let mut bad = read_json("examples/transcript/transcript_file_table_config.json");
    bad["tableIndexConfig"]["streamConfigs"]["realtime.segment.dataLossPolicy"] = json!("SKIP");
    let (s, v) = post(&format!("{c}/tables"), &bad).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("realtime.segment.dataLossPolicy"),
        "{v}"
    );
    server.shutdown().await;
}
