//! A Kafka broker outage while messages are produced: the broker is killed, kept down for
//! 10 s and restarted on the same port and storage; Riffle's table ends with exactly the
//! acknowledged messages, none twice, and its partitions show RETRYING while the broker is
//! down and CONSUMING again after.
//!
//! The broker is Tansu (installed by `scripts/tansu.sh`) storing its topics in a local S3
//! server (moto, installed by `scripts/moto.sh`, started by the test): Tansu 0.6's only
//! other storage is memory, which a restart loses.
//!
//! The producer is librdkafka's (acks=all, retries, a 120 s message timeout), paced at
//! 2,500 messages/s over 4 partitions. It keeps producing while the broker is down: those
//! messages wait in the client's queue and are delivered after the restart. So that no
//! produce request is cut off mid-flight by the kill (whose outcome the producer cannot
//! know: written or not, it would retry, and the topic itself could then hold a message
//! twice, which is not what this test is about), the kill comes right after every
//! message sent so far has been acknowledged. (Idempotence would not help here: Tansu
//! 0.6 advances a producer's sequence in its metadata before it writes the batch, so a kill
//! between the two would have the retry answered as a duplicate, acknowledged but never
//! written.) The kill comes 6 s into the 20 s of producing; the broker is down for 10 s
//! (a little more: the state reading below waits for the metadata timeout); the
//! partitions must be CONSUMING again within 15 s of the restart.
//!
//! Broker behaviour relied on: produce/fetch/metadata, and a restarted Tansu serving the
//! offsets and records it stored before it was killed (dynostore over S3).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use riffle_kafka::testing::rdkafka::error::{KafkaError, RDKafkaErrorCode};
use riffle_kafka::testing::rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use riffle_kafka::testing::{S3Server, Tansu};
use riffle_node::Node as Server;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

const MESSAGES: u64 = 50_000;
const PARTITIONS: u64 = 4;
/// Messages per tick of [`TICK`]: 2,500 messages/s, 20 s in all.
const PER_TICK: u64 = 50;
const TICK: Duration = Duration::from_millis(20);
/// When the broker is killed, after the first message is produced.
const KILL_AFTER: Duration = Duration::from_secs(6);
const DOWN_FOR: Duration = Duration::from_secs(10);

fn event(i: u64) -> Vec<u8> {
    json!({"ts": 1_700_000_000_000u64 + i, "uuid": format!("u{i}"), "count": i % 100})
        .to_string()
        .into_bytes()
}

/// What the producer has had acknowledged, and what failed (to be sent again).
#[derive(Default)]
struct Acks {
    acked: BTreeSet<u64>,
    /// Per partition: the highest acknowledged offset.
    max_offset: BTreeMap<i32, i64>,
    failures: Vec<String>,
}

/// Settles delivery futures in the order they were sent.
async fn collect(
    mut rx: mpsc::UnboundedReceiver<(u64, DeliveryFuture)>,
    acks: Arc<Mutex<Acks>>,
    settled: Arc<AtomicUsize>,
    retry: mpsc::UnboundedSender<u64>,
) {
    while let Some((id, f)) = rx.recv().await {
        match f.await {
            Ok(Ok(d)) => {
                let mut a = acks.lock().unwrap();
                assert!(a.acked.insert(id), "u{id} acknowledged twice");
                let m = a.max_offset.entry(d.partition).or_insert(-1);
                *m = (*m).max(d.offset);
            }
            Ok(Err((e, _))) => {
                acks.lock().unwrap().failures.push(format!("u{id}: {e}"));
                let _ = retry.send(id);
            }
            Err(_) => {
                acks.lock()
                    .unwrap()
                    .failures
                    .push(format!("u{id}: cancelled"));
                let _ = retry.send(id);
            }
        }
        settled.fetch_add(1, Ordering::SeqCst);
    }
}

fn send(producer: &FutureProducer, id: u64) -> DeliveryFuture {
    let value = event(id);
    let key = format!("k{id}");
    let partition = (id % PARTITIONS) as i32;
    loop {
        let rec: FutureRecord<'_, String, Vec<u8>> = FutureRecord::to("events")
            .partition(partition)
            .key(&key)
            .payload(&value);
        match producer.send_result(rec) {
            Ok(f) => return f,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err((e, _)) => panic!("cannot produce u{id}: {e}"),
        }
    }
}

/// The `riffleState` and `riffleLastError` of each consuming segment.
async fn states_and_errors(server: &Server) -> (Vec<String>, Vec<String>) {
    let (_, info) = get(&format!(
        "http://{}/tables/events/consumingSegmentsInfo",
        server.controller_addr
    ))
    .await;
    let segs: Vec<&Value> = info["_segmentToConsumingInfoMap"]
        .as_object()
        .map(|m| m.values().map(|v| &v[0]).collect())
        .unwrap_or_default();
    let text = |v: &Value| v.as_str().unwrap_or("?").to_string();
    (
        segs.iter().map(|v| text(&v["riffleState"])).collect(),
        segs.iter().map(|v| text(&v["riffleLastError"])).collect(),
    )
}

async fn states(server: &Server) -> Vec<String> {
    states_and_errors(server).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_while_producing_loses_and_duplicates_nothing() {
    let s3 = S3Server::start().unwrap_or_else(|e| panic!("{e:#}"));
    let mut broker = Tansu::start_with(s3.tansu_options()).unwrap_or_else(|e| panic!("{e:#}"));
    broker
        .create_topic("events", PARTITIONS as i32)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let server = start_with_kafka(dir.path()).await;
    let mut table = read_json("examples/events/events_realtime_table_config.json");
    table["tableIndexConfig"]["streamConfigs"]["stream.kafka.broker.list"] =
        json!(broker.bootstrap());
    let (s, body) = post(
        &format!("http://{}/tableConfigs", server.controller_addr),
        &json!({
            "tableName": "events",
            "schema": read_json("examples/events/events_schema.json"),
            "realtime": table,
        }),
    )
    .await;
    assert_eq!(s, 200, "{body}");

    let producer: FutureProducer = broker
        .client_config()
        .set("acks", "all")
        .set("linger.ms", "50")
        .set("batch.num.messages", "10000")
        .set("max.in.flight.requests.per.connection", "1")
        .set("message.timeout.ms", "120000")
        .set("retry.backoff.ms", "200")
        .set("reconnect.backoff.max.ms", "1000")
        .create()
        .unwrap();
    let acks = Arc::new(Mutex::new(Acks::default()));
    let settled = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    let (retry_tx, mut retry_rx) = mpsc::unbounded_channel();
    let collector = tokio::spawn(collect(rx, acks.clone(), settled.clone(), retry_tx));

    // The producer runs on its own task at its own pace; it stops only for the moment it
    // takes to see every message sent so far acknowledged and the broker killed.
    let sent = Arc::new(AtomicUsize::new(0));
    let (drained_tx, drained_rx) = oneshot::channel::<()>();
    let (killed_tx, killed_rx) = oneshot::channel::<()>();
    let producing = {
        let producer = producer.clone();
        let sent = sent.clone();
        let settled = settled.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut next = 0u64;
            let mut kill = Some((drained_tx, killed_rx));
            let mut ticker = tokio::time::interval(TICK);
            while next < MESSAGES {
                ticker.tick().await;
                if start.elapsed() >= KILL_AFTER {
                    if let Some((drained, killed)) = kill.take() {
                        // Everything sent so far acknowledged: no request in flight.
                        let n = sent.load(Ordering::SeqCst);
                        while settled.load(Ordering::SeqCst) < n {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        drained.send(()).unwrap();
                        // Until the broker is dead, nothing more is sent.
                        killed.await.unwrap();
                    }
                }
                for _ in 0..PER_TICK.min(MESSAGES - next) {
                    let f = send(&producer, next);
                    sent.fetch_add(1, Ordering::SeqCst);
                    tx.send((next, f)).unwrap();
                    next += 1;
                }
                while let Ok(id) = retry_rx.try_recv() {
                    let f = send(&producer, id);
                    sent.fetch_add(1, Ordering::SeqCst);
                    tx.send((id, f)).unwrap();
                }
            }
            (tx, retry_rx, start.elapsed())
        })
    };

    // The outage.
    drained_rx.await.unwrap();
    let before_kill = count(&server, "events").await;
    broker.kill().unwrap();
    killed_tx.send(()).unwrap();
    let killed_at = Instant::now();
    eprintln!(
        "broker killed; {} messages acknowledged, {before_kill} rows in the table",
        acks.lock().unwrap().acked.len()
    );
    // The states are read first, then the endpoint asks the (dead) broker for the latest
    // offsets, which takes its connection timeout: a reading or two in the outage.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut seen = Vec::new();
    let mut retrying_all = false;
    while killed_at.elapsed() < DOWN_FOR {
        let (st, errors) = states_and_errors(&server).await;
        if st.len() == PARTITIONS as usize && st.iter().all(|s| s == "RETRYING") {
            retrying_all = true;
            for e in &errors {
                assert!(
                    e.contains("unreachable")
                        || e.contains("AllBrokersDown")
                        || e.contains("BrokerTransportFailure"),
                    "the last error should name the unreachable broker: {errors:?}"
                );
            }
            if seen.is_empty() {
                eprintln!("while down: {st:?}, last errors {errors:?}");
            }
        }
        seen.push(st);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rows_while_down = count(&server, "events").await;
    eprintln!("partition states while down: {seen:?}; {rows_while_down} rows");
    assert!(
        retrying_all,
        "every partition should show RETRYING while the broker is down; seen {seen:?}"
    );
    broker.restart().unwrap();
    let restarted_at = Instant::now();
    eprintln!("broker restarted after {:?}", killed_at.elapsed());
    // Consumption resumes promptly: a partition retries a lost broker at least every
    // second and does not replay the errors of the outage.
    loop {
        let st = states(&server).await;
        if st.len() == PARTITIONS as usize && st.iter().all(|s| s == "CONSUMING") {
            eprintln!(
                "every partition CONSUMING {:?} after the restart",
                restarted_at.elapsed()
            );
            break;
        }
        assert!(
            restarted_at.elapsed() < Duration::from_secs(15),
            "partitions should be CONSUMING again within 15 s of the restart: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The producer ends; every message is acknowledged.
    let (tx, mut retry_rx, took) = producing.await.unwrap();
    eprintln!("{MESSAGES} messages sent in {took:?}");
    let t0 = Instant::now();
    loop {
        let (n, settled_n) = (sent.load(Ordering::SeqCst), settled.load(Ordering::SeqCst));
        if let Ok(id) = retry_rx.try_recv() {
            let f = send(&producer, id);
            sent.fetch_add(1, Ordering::SeqCst);
            tx.send((id, f)).unwrap();
            continue;
        }
        if settled_n == n {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "{settled_n} of {n} deliveries settled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(tx);
    collector.await.unwrap();
    let (acked, failures, max_offset) = {
        let a = acks.lock().unwrap();
        (
            a.acked.len() as i64,
            a.failures.clone(),
            a.max_offset.clone(),
        )
    };
    eprintln!(
        "acknowledged {acked}; {} failed deliveries sent again: {:?}; max offsets {max_offset:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(acked, MESSAGES as i64, "every message is acknowledged");

    // Exactly the acknowledged messages, none twice.
    wait_count(&server, "events", acked, Duration::from_secs(120)).await;
    eprintln!(
        "all {acked} rows in the table {:?} after the restart",
        restarted_at.elapsed()
    );
    let v = sql(
        &server,
        "SELECT COUNT(*), COUNT(DISTINCT uuid), SUM(\"count\") FROM events",
    )
    .await;
    let row = &v["resultTable"]["rows"][0];
    assert_eq!(row[0], json!(acked), "{v}");
    assert_eq!(row[1], json!(acked), "no duplicates: {v}");
    let want: u64 = (0..MESSAGES).map(|i| i % 100).sum();
    assert_eq!(row[2].as_f64().unwrap() as u64, want, "{v}");

    // Each partition consumed up to the last acknowledged offset, and consumes again.
    let t0 = Instant::now();
    loop {
        let st = states(&server).await;
        if st.len() == PARTITIONS as usize && st.iter().all(|s| s == "CONSUMING") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "partitions should be CONSUMING again after the restart: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, info) = get(&format!(
        "http://{}/tables/events/consumingSegmentsInfo",
        server.controller_addr
    ))
    .await;
    let mut offsets = BTreeMap::new();
    for v in info["_segmentToConsumingInfoMap"]
        .as_object()
        .unwrap()
        .values()
    {
        let m: &Value = &v[0]["partitionToOffsetMap"];
        for (p, o) in m.as_object().unwrap() {
            offsets.insert(
                p.parse::<i32>().unwrap(),
                o.as_str().unwrap().parse::<i64>().unwrap() - 1,
            );
        }
    }
    assert_eq!(offsets, max_offset, "{info}");
    server.shutdown().await;
    drop(broker);
    drop(s3);
}
