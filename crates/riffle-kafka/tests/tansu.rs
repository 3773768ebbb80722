//! The Kafka plugin against a Tansu broker, beyond the conformance suite. Each test says
//! which broker behaviour it relies on.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use riffle_common::PartitionId;
use riffle_kafka::testing::{produce, stream_map, Tansu, TestRecord};
use riffle_kafka::KafkaPlugin;
use riffle_stream::{
    MessageBatch, PartitionConsumer, StreamConfig, StreamContext, StreamError, StreamErrorKind,
    StreamOffset, StreamPlugin,
};

const T: Duration = Duration::from_secs(10);

fn ctx() -> StreamContext {
    StreamContext {
        data_dir: std::env::temp_dir(),
    }
}

fn tansu() -> Tansu {
    Tansu::start().unwrap_or_else(|e| panic!("{e:#}"))
}

fn config(t: &Tansu, topic: &str, extra: &[(&str, &str)]) -> StreamConfig {
    StreamConfig::parse("$", &stream_map(&t.bootstrap(), topic, extra)).unwrap()
}

async fn consumer(c: &StreamConfig, p: u32) -> Box<dyn PartitionConsumer> {
    KafkaPlugin
        .partition_consumer(c, &ctx(), PartitionId(p))
        .await
        .unwrap()
}

/// Fetches from `from` until a batch with records arrives.
async fn first_batch(c: &mut dyn PartitionConsumer, from: i64) -> MessageBatch {
    let start = Instant::now();
    loop {
        let b = c
            .fetch(&StreamOffset::Long(from), Duration::from_millis(500))
            .await
            .unwrap();
        if b.unfiltered_count > 0 || start.elapsed() > T {
            return b;
        }
    }
}

/// Fetches until an error, which must come within the limit.
async fn first_error(c: &mut dyn PartitionConsumer) -> StreamError {
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < T, "no error");
        match c
            .fetch(&StreamOffset::Long(0), Duration::from_millis(300))
            .await
        {
            Ok(b) => assert!(b.messages.is_empty(), "{b:?}"),
            Err(e) => return e,
        }
    }
}

/// Relies on: produce and fetch of keys, headers, record timestamps and null values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_carry_key_headers_and_timestamp_and_tombstones_are_skipped() {
    let t = tansu();
    t.create_topic("t", 1).await.unwrap();
    let p = t.producer().unwrap();
    produce(
        &p,
        "t",
        [
            TestRecord {
                partition: 0,
                key: Some(b"k1".to_vec()),
                value: Some(b"{\"a\":1}".to_vec()),
                headers: vec![
                    ("source".into(), b"web".to_vec()),
                    ("trace".into(), vec![0, 255]),
                ],
                timestamp_ms: Some(1_600_000_000_123),
            },
            TestRecord::tombstone(0, "k1"),
            TestRecord::value(0, "{\"a\":2}"),
        ],
    )
    .await
    .unwrap();
    let c = config(&t, "t", &[("stream.kafka.metadata.populate", "true")]);
    let mut cons = consumer(&c, 0).await;
    // Tansu may deliver the three records in more than one fetch.
    let mut msgs = Vec::new();
    let mut at = 0;
    let mut unfiltered = 0;
    while at < 3 {
        let b = first_batch(cons.as_mut(), at).await;
        assert!(b.unfiltered_count > 0, "nothing at {at}");
        unfiltered += b.unfiltered_count;
        at = b.next_offset.as_i64().unwrap();
        msgs.extend(b.messages);
    }
    assert_eq!(unfiltered, 3, "the tombstone counts as read");
    assert_eq!(at, 3, "next offset moves past the tombstone");
    assert_eq!(msgs.len(), 2, "the tombstone is not returned");
    let m = &msgs[0];
    assert_eq!(m.key, Some(Bytes::from_static(b"k1")));
    assert_eq!(m.value, Bytes::from_static(b"{\"a\":1}"));
    assert_eq!(
        m.headers,
        vec![
            ("source".to_string(), Bytes::from_static(b"web")),
            ("trace".to_string(), Bytes::from_static(&[0, 255])),
        ]
    );
    assert_eq!(m.timestamp_ms, Some(1_600_000_000_123));
    assert_eq!(
        (m.offset.clone(), m.next_offset.clone()),
        (StreamOffset::Long(0), StreamOffset::Long(1))
    );
    assert_eq!(msgs[1].offset, StreamOffset::Long(2));
    assert_eq!(msgs[1].key, None);
    assert!(msgs[1].timestamp_ms.is_some());
}

/// Relies on: metadata answering "unknown topic" for a missing topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_is_not_found() {
    let t = tansu();
    let mut md = KafkaPlugin
        .metadata_provider(&config(&t, "nosuch", &[]), &ctx())
        .await
        .unwrap();
    let e = md.partition_ids(T).await.unwrap_err();
    assert_eq!(e.kind, StreamErrorKind::NotFound, "{e}");
    assert!(
        e.message.contains("'nosuch'") && e.message.contains(&t.bootstrap()),
        "{e}"
    );
}

/// Relies on: Tansu without `--authentication` refusing the SASL handshake. The Java-style
/// `sasl.jaas.config` is translated: without a username and password librdkafka would not
/// even create the client for PLAIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_sasl_login_is_unauthorized_with_the_reason() {
    let t = tansu();
    t.create_topic("t", 1).await.unwrap();
    let c = config(
        &t,
        "t",
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required \
                 username=\"alice\" password=\"alice-secret\";",
            ),
        ],
    );
    assert_eq!(
        KafkaPlugin.validate(&c, &ctx()).unwrap(),
        Vec::<String>::new()
    );
    let mut cons = consumer(&c, 0).await;
    let e = first_error(cons.as_mut()).await;
    assert_eq!(e.kind, StreamErrorKind::Unauthorized, "{e}");
    assert!(!e.is_retryable());
    assert!(e.message.contains("SASL PLAIN"), "{e}");
    assert!(!e.message.contains("alice-secret"), "{e}");
    let mut md = KafkaPlugin.metadata_provider(&c, &ctx()).await.unwrap();
    let t0 = Instant::now();
    let e = md.partition_ids(Duration::from_secs(30)).await.unwrap_err();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(e.kind, StreamErrorKind::Unauthorized, "{e}");
    assert!(e.message.contains("SASL"), "{e}");
}

/// Relies on: plain (non-transactional) records being visible under read_committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_reads_plain_records() {
    let t = tansu();
    t.create_topic("t", 1).await.unwrap();
    let p = t.producer().unwrap();
    produce(
        &p,
        "t",
        (0..5).map(|i| TestRecord::value(0, format!("v{i}"))),
    )
    .await
    .unwrap();
    let c = config(
        &t,
        "t",
        &[("stream.kafka.isolation.level", "read_committed")],
    );
    let mut cons = consumer(&c, 0).await;
    let mut got = 0;
    let mut at = 0;
    let start = Instant::now();
    while got < 5 {
        assert!(start.elapsed() < T, "read {got} of 5 under read_committed");
        let b = first_batch(cons.as_mut(), at).await;
        got += b.messages.len();
        at = b.next_offset.as_i64().unwrap();
    }
    assert_eq!(at, 5);
}
