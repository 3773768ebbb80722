//! End to end over Kafka: a Tansu broker (Kafka-compatible, started per test, installed by
//! `scripts/tansu.sh`), an in-process Riffle server with the Kafka plugin, Pinot configs in,
//! SQL answers out.
//!
//! Broker behaviour relied on: topic creation, produce with keys and headers, fetch with a
//! right high watermark, metadata, ListOffsets EARLIEST. Not relied on (Tansu 0.6 gaps):
//! ListOffsets LATEST (the plugin checks it against a fetch, which the `largest` test
//! exercises), ListOffsets by time, CreatePartitions, read_committed.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use riffle_kafka::testing::{produce, Tansu, TestRecord};
use riffle_node::Node as Server;
use serde_json::{json, Value};

fn tansu() -> Tansu {
    Tansu::start().unwrap_or_else(|e| panic!("{e:#}"))
}

/// The events schema with Pinot's special columns added.
fn events_schema() -> Value {
    let mut schema = read_json("examples/events/events_schema.json");
    let dims = schema["dimensionFieldSpecs"].as_array_mut().unwrap();
    dims.push(json!({"name": "__key", "dataType": "STRING"}));
    dims.push(json!({"name": "__header$source", "dataType": "STRING"}));
    dims.push(json!({"name": "__metadata$offset", "dataType": "LONG"}));
    dims.push(json!({"name": "__metadata$partition", "dataType": "INT"}));
    schema
}

/// The seed events table over Kafka, reading `bootstrap`, with extra stream keys.
fn events_table(bootstrap: &str, extra: &[(&str, &str)]) -> Value {
    let mut table = read_json("examples/events/events_realtime_table_config.json");
    let sc = &mut table["tableIndexConfig"]["streamConfigs"];
    sc["stream.kafka.broker.list"] = json!(bootstrap);
    sc["stream.kafka.metadata.populate"] = json!("true");
    for (k, v) in extra {
        sc[*k] = json!(v);
    }
    table
}

async fn create_table(server: &Server, table: &Value) -> Value {
    let c = format!("http://{}", server.controller_addr);
    let (s, body) = post(
        &format!("{c}/tableConfigs"),
        &json!({"tableName": "events", "schema": events_schema(), "realtime": table}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    body
}

/// An events record: JSON value, a key and a `source` header.
fn event(i: u64, partition: i32) -> TestRecord {
    TestRecord {
        partition,
        key: Some(format!("k{i}").into_bytes()),
        value: Some(
            json!({"ts": 1_700_000_000_000u64 + i, "uuid": format!("u{i}"), "count": i % 100})
                .to_string()
                .into_bytes(),
        ),
        headers: vec![(
            "source".to_string(),
            format!("gen-{partition}").into_bytes(),
        )],
        timestamp_ms: None,
    }
}

/// Per partition: (messages, max offset).
type Produced = BTreeMap<i64, (i64, i64)>;

fn tally(into: &mut Produced, offsets: &[(i32, i64)]) {
    for (p, o) in offsets {
        let e = into.entry(i64::from(*p)).or_insert((0, -1));
        e.0 += 1;
        e.1 = e.1.max(*o);
    }
}

/// Per partition: (rows, max `__metadata$offset`), from SQL.
async fn per_partition(server: &Server) -> Produced {
    let v = sql(
        server,
        "SELECT \"__metadata$partition\", COUNT(*), MAX(\"__metadata$offset\") FROM events \
         GROUP BY \"__metadata$partition\" ORDER BY \"__metadata$partition\" LIMIT 100",
    )
    .await;
    v["resultTable"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_i64().unwrap(),
                (r[1].as_i64().unwrap(), r[2].as_f64().unwrap() as i64),
            )
        })
        .collect()
}

/// (b) The seed events table: 400,000 messages in 4 partitions before the table exists
/// (offset criteria smallest), 10,000 more while it consumes; exact counts, and per
/// partition the rows and the highest offset match what was produced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_table_reads_every_kafka_message_exactly_once() {
    let broker = tansu();
    broker.create_topic("events", 4).await.unwrap();
    let producer = broker.producer().unwrap();
    let mut produced = Produced::new();
    let t0 = Instant::now();
    let first: Vec<TestRecord> = (0..400_000u64).map(|i| event(i, (i % 4) as i32)).collect();
    tally(
        &mut produced,
        &produce(&producer, "events", first).await.unwrap(),
    );
    eprintln!("produced 400,000 messages in {:?}", t0.elapsed());

    let dir = tempfile::tempdir().unwrap();
    let server = start_with_kafka(dir.path()).await;
    let body = create_table(&server, &events_table(&broker.bootstrap(), &[])).await;
    eprintln!("table created: {body}");
    let t0 = Instant::now();
    wait_count(&server, "events", 400_000, Duration::from_secs(180)).await;
    eprintln!("400,000 rows consumed in {:?}", t0.elapsed());

    let more: Vec<TestRecord> = (400_000..410_000u64)
        .map(|i| event(i, (i % 4) as i32))
        .collect();
    tally(
        &mut produced,
        &produce(&producer, "events", more).await.unwrap(),
    );
    wait_count(&server, "events", 410_000, Duration::from_secs(60)).await;

    assert_eq!(per_partition(&server).await, produced);
    for (p, (n, max)) in &produced {
        assert_eq!(*n, 102_500, "partition {p}");
        assert_eq!(*max, 102_499, "partition {p}");
    }
    let v = sql(
        &server,
        "SELECT COUNT(DISTINCT uuid), SUM(\"count\") FROM events",
    )
    .await;
    assert_eq!(v["resultTable"]["rows"][0][0], 410_000);
    let want: u64 = (0..410_000u64).map(|i| i % 100).sum();
    assert_eq!(
        v["resultTable"]["rows"][0][1].as_f64().unwrap() as u64,
        want
    );
    // Keys and headers arrive in their columns.
    let v = sql(
        &server,
        "SELECT __key, \"__header$source\", \"__metadata$partition\" FROM events \
         WHERE uuid = 'u409998' LIMIT 10",
    )
    .await;
    assert_eq!(v["resultTable"]["rows"], json!([["k409998", "gen-2", 2]]));
    let (_, info) = get(&format!(
        "http://{}/tables/events/consumingSegmentsInfo",
        server.controller_addr
    ))
    .await;
    let segs = info["_segmentToConsumingInfoMap"].as_object().unwrap();
    assert_eq!(segs.len(), 4, "{info}");
    for v in segs.values() {
        assert_eq!(v[0]["consumerState"], "CONSUMING", "{info}");
    }
    server.shutdown().await;
}

/// (c) `stream.kafka.partition.ids: "0,2"` consumes partitions 0 and 2 only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_ids_subset_is_the_only_one_consumed() {
    let broker = tansu();
    broker.create_topic("events", 4).await.unwrap();
    let producer = broker.producer().unwrap();
    let recs: Vec<TestRecord> = (0..400u64).map(|i| event(i, (i % 4) as i32)).collect();
    let mut produced = Produced::new();
    tally(
        &mut produced,
        &produce(&producer, "events", recs).await.unwrap(),
    );

    let dir = tempfile::tempdir().unwrap();
    let server = start_with_kafka(dir.path()).await;
    // Through POST /schemas and POST /tables, whose answer lists the warnings.
    let c = format!("http://{}", server.controller_addr);
    let (st, body) = post(&format!("{c}/schemas"), &events_schema()).await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = post(
        &format!("{c}/tables"),
        &events_table(
            &broker.bootstrap(),
            &[
                ("stream.kafka.partition.ids", "0,2"),
                ("group.id", "pinot-consumers"),
            ],
        ),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    // Keys that are accepted but not honoured are reported with the table's creation.
    assert!(
        body["warnings"]
            .to_string()
            .contains("group.id is a consumer-group setting"),
        "{body}"
    );
    wait_count(&server, "events", 200, Duration::from_secs(30)).await;
    // Partition discovery runs meanwhile and must not add 1 or 3.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(count(&server, "events").await, 200);
    let want: Produced = produced
        .into_iter()
        .filter(|(p, _)| *p == 0 || *p == 2)
        .collect();
    assert_eq!(per_partition(&server).await, want);
    let (_, info) = get(&format!(
        "http://{}/tables/events/consumingSegmentsInfo",
        server.controller_addr
    ))
    .await;
    let mut segs: Vec<&String> = info["_segmentToConsumingInfoMap"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    segs.sort();
    assert_eq!(segs.len(), 2, "{info}");
    assert!(segs[0].starts_with("events__0__0__") && segs[1].starts_with("events__2__0__"));

    // A subset naming a partition the topic does not have is refused at creation.
    let mut bad = events_table(
        &broker.bootstrap(),
        &[("stream.kafka.partition.ids", "2-5")],
    );
    bad["tableName"] = json!("events2");
    bad["segmentsConfig"]["schemaName"] = json!("events2");
    let mut schema = events_schema();
    schema["schemaName"] = json!("events2");
    let (s, body) = post(
        &format!("{c}/tableConfigs"),
        &json!({"tableName": "events2", "schema": schema, "realtime": bad}),
    )
    .await;
    assert_ne!(s, 200, "{body}");
    let msg = body.to_string();
    assert!(
        msg.contains("stream.kafka.partition.ids") && msg.contains("4, 5"),
        "{msg}"
    );
    server.shutdown().await;
}

/// (d) Offset criteria `largest`: only messages produced after the table is created are
/// counted. On Tansu this needs the plugin's end-offset check: ListOffsets LATEST answers
/// the last record batch, inside which some of the earlier messages lie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn largest_starts_at_the_end_of_each_partition() {
    let broker = tansu();
    broker.create_topic("events", 2).await.unwrap();
    let producer = broker.producer().unwrap();
    // Batched sends: the last record batch of each partition holds several records.
    let before: Vec<TestRecord> = (0..1000u64).map(|i| event(i, (i % 2) as i32)).collect();
    produce(&producer, "events", before).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let server = start_with_kafka(dir.path()).await;
    create_table(
        &server,
        &events_table(
            &broker.bootstrap(),
            &[("stream.kafka.consumer.prop.auto.offset.reset", "largest")],
        ),
    )
    .await;
    let after: Vec<TestRecord> = (1000..1030u64).map(|i| event(i, (i % 2) as i32)).collect();
    produce(&producer, "events", after).await.unwrap();
    wait_count(&server, "events", 30, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(count(&server, "events").await, 30);
    let v = sql(&server, "SELECT uuid FROM events ORDER BY uuid LIMIT 100").await;
    let got: Vec<String> = v["resultTable"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    let mut want: Vec<String> = (1000..1030).map(|i| format!("u{i}")).collect();
    want.sort();
    assert_eq!(got, want);
    server.shutdown().await;
}
