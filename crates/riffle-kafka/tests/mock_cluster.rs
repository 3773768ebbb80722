//! The Kafka plugin against librdkafka's in-process mock cluster, for the broker behaviour
//! Tansu 0.6 lacks or that needs fault injection. Each test says what it relies on.
//!
//! The mock cluster cannot resolve ListOffsets by timestamp either (it answers "no offset"),
//! so no broker available to the tests resolves a time to a record: the time criteria are
//! tested here for their "no record at or after the time -> end offset" rule, and the
//! instant the plugin asks for and its use of the answer in the unit tests of
//! `src/metadata.rs`.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::producer::Producer as _;
use riffle_common::{now_ms, PartitionId};
use riffle_kafka::testing::{produce, producer, stream_map, TestRecord};
use riffle_kafka::KafkaPlugin;
use riffle_stream::{
    MessageBatch, MetadataProvider, OffsetCriteria, PartitionConsumer, StreamConfig, StreamContext,
    StreamErrorKind, StreamMessage, StreamOffset, StreamPlugin,
};

const T: Duration = Duration::from_secs(10);

fn ctx() -> StreamContext {
    StreamContext::new(std::env::temp_dir())
}

fn config(bootstrap: &str, topic: &str, extra: &[(&str, &str)]) -> StreamConfig {
    StreamConfig::parse("$", &stream_map(bootstrap, topic, extra)).unwrap()
}

fn mock(topic: &str, partitions: i32) -> MockCluster<'static, DefaultProducerContext> {
    let m = MockCluster::new(1).unwrap();
    m.create_topic(topic, partitions, 1).unwrap();
    m
}

async fn provider(c: &StreamConfig) -> Box<dyn MetadataProvider> {
    KafkaPlugin.metadata_provider(c, &ctx()).await.unwrap()
}

async fn consumer(c: &StreamConfig, p: u32) -> Box<dyn PartitionConsumer> {
    KafkaPlugin
        .partition_consumer(c, &ctx(), PartitionId(p))
        .await
        .unwrap()
}

fn values(prefix: &str, n: usize) -> Vec<TestRecord> {
    (0..n)
        .map(|i| TestRecord::value(0, format!("{prefix}-{i}")))
        .collect()
}

/// Reads `n` messages from `from`; returns them and the next offset.
async fn read_n(
    c: &mut dyn PartitionConsumer,
    from: i64,
    n: usize,
) -> (Vec<StreamMessage>, StreamOffset) {
    let start = Instant::now();
    let mut at = StreamOffset::Long(from);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            start.elapsed() < T,
            "read {} of {n} messages from {from}",
            out.len()
        );
        let b = c.fetch(&at, Duration::from_millis(200)).await.unwrap();
        out.extend(b.messages);
        at = b.next_offset;
    }
    (out, at)
}

fn text(m: &StreamMessage) -> String {
    String::from_utf8_lossy(&m.value).into_owned()
}

/// Relies on: the mock cluster taking its only broker down and up (connections refused
/// while down), produce and fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_is_transient_and_fetch_resumes_at_the_next_offset() {
    let m = mock("t", 1);
    let bs = m.bootstrap_servers();
    let p = producer(&bs).unwrap();
    produce(&p, "t", values("a", 10)).await.unwrap();
    // Reconnect quickly once the broker is back.
    let c = config(
        &bs,
        "t",
        &[
            ("reconnect.backoff.ms", "50"),
            ("reconnect.backoff.max.ms", "200"),
        ],
    );
    let mut cons = consumer(&c, 0).await;
    let (got, next) = read_n(cons.as_mut(), 0, 10).await;
    assert_eq!(text(&got[9]), "a-9");
    assert_eq!(next, StreamOffset::Long(10));

    m.broker_down(1).unwrap();
    let start = Instant::now();
    let err = loop {
        assert!(
            start.elapsed() < T,
            "no error from fetches while the only broker is down"
        );
        match cons.fetch(&next, Duration::from_millis(300)).await {
            Ok(b) => {
                assert!(b.messages.is_empty(), "{b:?}");
                assert_eq!(b.next_offset, next);
            }
            Err(e) => break e,
        }
    };
    eprintln!("error with the broker down: {err}");
    assert_eq!(err.kind, StreamErrorKind::Transient, "{err}");
    assert!(err.is_retryable());
    assert!(
        err.message.contains("partition 0") && err.message.contains("offset 10"),
        "{err}"
    );
    // While it stays down, fetches keep failing (quickly) rather than looking idle.
    let t0 = Instant::now();
    let again = cons.fetch(&next, Duration::from_millis(300)).await;
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(&again, Err(e) if e.kind == StreamErrorKind::Transient),
        "{again:?}"
    );

    m.broker_up(1).unwrap();
    produce(&p, "t", values("b", 5)).await.unwrap();
    let start = Instant::now();
    let mut at = next.clone();
    let mut got: Vec<StreamMessage> = Vec::new();
    while got.len() < 5 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not resumed: {got:?}"
        );
        match cons.fetch(&at, Duration::from_millis(300)).await {
            Ok(b) => {
                got.extend(b.messages);
                at = b.next_offset;
            }
            Err(e) => assert!(e.is_retryable(), "{e}"),
        }
    }
    assert_eq!(
        got[0].offset,
        StreamOffset::Long(10),
        "resumed at the next offset"
    );
    let texts: Vec<String> = got.iter().map(text).collect();
    assert_eq!(texts, ["b-0", "b-1", "b-2", "b-3", "b-4"]);
    assert_eq!(at, StreamOffset::Long(15));
}

/// Relies on: ListOffsets EARLIEST / LATEST (right on the mock cluster), ListOffsets by
/// timestamp answering "no offset" (the mock cluster cannot search by time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_criteria_and_latest_offsets() {
    let m = mock("t", 2);
    let bs = m.bootstrap_servers();
    let p = producer(&bs).unwrap();
    produce(&p, "t", values("a", 7)).await.unwrap();
    let mut recs = values("b", 3);
    for r in &mut recs {
        r.partition = 1;
    }
    produce(&p, "t", recs).await.unwrap();
    let c = config(&bs, "t", &[]);
    let mut md = provider(&c).await;
    assert_eq!(
        md.partition_ids(T).await.unwrap(),
        vec![PartitionId(0), PartitionId(1)]
    );
    let off = |n| StreamOffset::Long(n);
    assert_eq!(
        md.offset_for(PartitionId(0), &OffsetCriteria::Smallest, T)
            .await
            .unwrap(),
        off(0)
    );
    let t0 = Instant::now();
    assert_eq!(
        md.offset_for(PartitionId(0), &OffsetCriteria::Largest, T)
            .await
            .unwrap(),
        off(7)
    );
    // On a broker whose ListOffsets is right, checking the end costs one short fetch.
    assert!(
        t0.elapsed() < Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(
        md.offset_for(PartitionId(1), &OffsetCriteria::Largest, T)
            .await
            .unwrap(),
        off(3)
    );
    // No record at or after an hour from now: the end of the partition.
    let future = OffsetCriteria::Timestamp(now_ms() + 3_600_000);
    assert_eq!(
        md.offset_for(PartitionId(0), &future, T).await.unwrap(),
        off(7)
    );
    // A period resolves through the same lookup; the mock finds no record by time.
    let o = md
        .offset_for(PartitionId(1), &OffsetCriteria::Period(3_600_000), T)
        .await
        .unwrap();
    assert!(o == off(0) || o == off(3), "{o}");
    let latest = md
        .latest_offsets(&[PartitionId(0), PartitionId(1)], T)
        .await
        .unwrap();
    assert_eq!(latest.get(&PartitionId(0)), Some(&off(7)));
    assert_eq!(latest.get(&PartitionId(1)), Some(&off(3)));
    // Largest is where new messages start.
    let mut cons = consumer(&c, 0).await;
    let b = cons
        .fetch(&off(7), Duration::from_millis(300))
        .await
        .unwrap();
    assert!(b.messages.is_empty() && b.next_offset == off(7), "{b:?}");
    produce(&p, "t", values("c", 2)).await.unwrap();
    let (got, _) = read_n(cons.as_mut(), 7, 2).await;
    assert_eq!(text(&got[0]), "c-0");
}

/// Relies on: the mock cluster dropping its oldest message sets when a partition holds
/// more than 5 MB (its retention), and answering out-of-range fetches with
/// OFFSET_OUT_OF_RANGE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_offsets_are_reported_as_data_loss() {
    let m = mock("t", 1);
    let bs = m.bootstrap_servers();
    let p = producer(&bs).unwrap();
    let big = "x".repeat(200_000);
    for i in 0..40 {
        produce(&p, "t", [TestRecord::value(0, format!("{i}:{big}"))])
            .await
            .unwrap();
    }
    let c = config(&bs, "t", &[]);
    let mut md = provider(&c).await;
    let low = md
        .offset_for(PartitionId(0), &OffsetCriteria::Smallest, T)
        .await
        .unwrap()
        .as_i64()
        .unwrap();
    assert!(low > 0, "the mock cluster kept every message");
    let mut cons = consumer(&c, 0).await;
    let b: MessageBatch = cons
        .fetch(&StreamOffset::Long(0), Duration::from_secs(2))
        .await
        .unwrap();
    let loss = b.data_loss.expect("data loss reported");
    assert_eq!(loss.requested, StreamOffset::Long(0));
    assert_eq!(loss.available_from, StreamOffset::Long(low));
    assert!(b.messages.is_empty());
    // From the first offset still there, reading works.
    let (got, next) = read_n(cons.as_mut(), low, (40 - low) as usize).await;
    assert!(text(&got[0]).starts_with(&format!("{low}:")));
    assert_eq!(next, StreamOffset::Long(40));
    // Beyond the end is an error, not data loss and not a silent jump.
    let e = cons
        .fetch(&StreamOffset::Long(45), Duration::from_secs(2))
        .await
        .unwrap_err();
    eprintln!("beyond the end: {e}");
    assert_eq!(e.kind, StreamErrorKind::OffsetOutOfRange, "{e}");
    assert!(e.message.contains("offset 45"), "{e}");
}

/// Relies on: metadata answers for a missing topic, and for partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_topics_and_partitions_are_not_found() {
    let m = mock("t", 3);
    let bs = m.bootstrap_servers();
    let mut md = provider(&config(&bs, "nosuch", &[])).await;
    let e = md.partition_ids(T).await.unwrap_err();
    assert_eq!(e.kind, StreamErrorKind::NotFound, "{e}");
    assert!(e.message.contains("'nosuch'"), "{e}");

    let mut md = provider(&config(&bs, "t", &[("stream.kafka.partition.ids", "0,2")])).await;
    assert_eq!(
        md.partition_ids(T).await.unwrap(),
        vec![PartitionId(0), PartitionId(2)]
    );
    let mut md = provider(&config(&bs, "t", &[("stream.kafka.partition.ids", "1-4")])).await;
    let e = md.partition_ids(T).await.unwrap_err();
    assert_eq!(e.kind, StreamErrorKind::NotFound, "{e}");
    assert!(
        e.message.contains("3, 4") && e.message.contains("stream.kafka.partition.ids"),
        "{e}"
    );
}

/// Relies on: nothing listening on the address (no broker at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_broker_is_a_retryable_error_with_the_reason() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = config(&format!("127.0.0.1:{port}"), "t", &[]);
    let mut md = provider(&c).await;
    let e = md.partition_ids(Duration::from_secs(2)).await.unwrap_err();
    assert!(e.is_retryable(), "{e} ({:?})", e.kind);
    let mut cons = consumer(&c, 0).await;
    let start = Instant::now();
    let e = loop {
        assert!(start.elapsed() < T, "no error without a broker");
        match cons
            .fetch(&StreamOffset::Long(0), Duration::from_millis(300))
            .await
        {
            Ok(b) => assert!(b.messages.is_empty()),
            Err(e) => break e,
        }
    };
    assert_eq!(e.kind, StreamErrorKind::Transient, "{e}");
    assert!(
        e.message.contains("Connection refused") || e.message.contains("transport"),
        "{e}"
    );
    eprintln!("error without a broker: {e}");
}

/// The mock cluster, owned by the producer that created it (`test.mock.num.brokers`), so
/// that the harness can be shared across threads.
struct MockHarness {
    producer: rdkafka::producer::FutureProducer,
    bootstrap: String,
}

impl MockHarness {
    fn new() -> MockHarness {
        let producer: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .set("linger.ms", "5")
            .set("max.in.flight.requests.per.connection", "1")
            .create()
            .unwrap();
        let bootstrap = producer
            .client()
            .mock_cluster()
            .unwrap()
            .bootstrap_servers();
        MockHarness {
            producer,
            bootstrap,
        }
    }
}

#[async_trait::async_trait]
impl riffle_stream::conformance::Harness for MockHarness {
    fn plugin(&self) -> std::sync::Arc<dyn StreamPlugin> {
        std::sync::Arc::new(KafkaPlugin)
    }

    fn context(&self) -> StreamContext {
        ctx()
    }

    async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
    ) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
        self.producer
            .client()
            .mock_cluster()
            .ok_or_else(|| anyhow::anyhow!("no mock cluster"))?
            .create_topic(name, partitions as i32, 1)?;
        Ok(stream_map(&self.bootstrap, name, &[]))
    }

    async fn produce(&self, topic: &str, partition: u32, values: &[Vec<u8>]) -> anyhow::Result<()> {
        let records: Vec<TestRecord> = values
            .iter()
            .map(|v| TestRecord::value(partition as i32, v.clone()))
            .collect();
        produce(&self.producer, topic, records).await?;
        Ok(())
    }

    async fn produce_skipped(&self, topic: &str, partition: u32) -> anyhow::Result<bool> {
        produce(
            &self.producer,
            topic,
            [TestRecord::tombstone(partition as i32, "gone")],
        )
        .await?;
        Ok(true)
    }

    async fn add_partition(&self, _topic: &str) -> anyhow::Result<bool> {
        // The mock cluster has no CreatePartitions.
        Ok(false)
    }

    fn exact_time_criteria(&self) -> bool {
        // The mock cluster answers ListOffsets by timestamp with "no offset".
        false
    }
}

/// The conformance suite on a second broker implementation, whose ListOffsets LATEST is
/// right. Relies on: produce, fetch, metadata, ListOffsets EARLIEST/LATEST.
///
/// The mock cluster answers every ListOffsets by timestamp with "no offset", which the
/// plugin (rightly, for Kafka) resolves to the end of the partition; check (g) expects the
/// first message for `Period(1h)` and fails there, after its smallest / largest / latest
/// checks passed. That one failure is expected; any other fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_plugin_conforms_on_the_mock_cluster() {
    let h = MockHarness::new();
    let Err(e) = riffle_stream::conformance::run_suite(&h).await else {
        return;
    };
    let text = format!("{e:#}");
    let failures: Vec<&str> = text.lines().filter(|l| l.starts_with("- ")).collect();
    assert!(
        failures.len() == 1
            && failures[0].starts_with("- check (g) offset criteria: Period(3600000) gives"),
        "{text}"
    );
}

/// Relies on: a server that answers the TLS handshake with HTTP (no broker at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_failure_is_unauthorized_with_the_tls_error() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let c = config(&addr.to_string(), "t", &[("security.protocol", "SSL")]);
    let mut md = provider(&c).await;
    let t0 = Instant::now();
    let e = md.partition_ids(Duration::from_secs(30)).await.unwrap_err();
    eprintln!("metadata over a failing TLS handshake: {e}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(e.kind, StreamErrorKind::Unauthorized, "{e}");
    assert!(e.message.contains("SSL"), "{e}");
    let mut cons = consumer(&c, 0).await;
    let start = Instant::now();
    let e = loop {
        assert!(start.elapsed() < T, "no error over a failing TLS handshake");
        match cons
            .fetch(&StreamOffset::Long(0), Duration::from_millis(300))
            .await
        {
            Ok(b) => assert!(b.messages.is_empty()),
            Err(e) => break e,
        }
    };
    eprintln!("fetch over a failing TLS handshake: {e}");
    assert_eq!(e.kind, StreamErrorKind::Unauthorized, "{e}");
    assert!(!e.is_retryable());
    assert!(e.message.contains("SSL"), "{e}");
}

/// Relies on: nothing (the client cannot be created).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_ca_file_is_a_config_error_naming_the_key() {
    let c = config(
        "127.0.0.1:9",
        "t",
        &[
            ("security.protocol", "SSL"),
            ("ssl.truststore.location", "/nonexistent/ca.pem"),
        ],
    );
    let e = match KafkaPlugin.metadata_provider(&c, &ctx()).await {
        Ok(_) => panic!("a client with an unreadable CA file was created"),
        Err(e) => e,
    };
    assert_eq!(e.kind, StreamErrorKind::InvalidConfig, "{e}");
    assert!(e.message.contains("ssl.ca.location"), "{e}");
    let e = match KafkaPlugin
        .partition_consumer(&c, &ctx(), PartitionId(0))
        .await
    {
        Ok(_) => panic!("a client with an unreadable CA file was created"),
        Err(e) => e,
    };
    assert_eq!(e.kind, StreamErrorKind::InvalidConfig, "{e}");
}
