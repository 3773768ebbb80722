//! The Kafka plugin against a Tansu broker, beyond the conformance suite. Each test says
//! which broker behaviour it relies on.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use riffle_common::PartitionId;
use riffle_kafka::testing::{produce, stream_map, S3Server, Tansu, TansuOptions, TestRecord};
use riffle_kafka::{KafkaConfig, KafkaPlugin};
use riffle_stream::{
    MessageBatch, PartitionConsumer, StreamConfig, StreamContext, StreamError, StreamErrorKind,
    StreamOffset, StreamPlugin,
};

const T: Duration = Duration::from_secs(10);

fn ctx() -> StreamContext {
    StreamContext::new(std::env::temp_dir())
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

    // Without metadata.populate nothing reads headers, so they are not parsed.
    let plain = config(&t, "t", &[]);
    let mut cons = consumer(&plain, 0).await;
    let b = first_batch(cons.as_mut(), 0).await;
    let m = &b.messages[0];
    assert_eq!(m.value, Bytes::from_static(b"{\"a\":1}"));
    assert_eq!(m.key, Some(Bytes::from_static(b"k1")));
    assert!(
        m.headers.is_empty(),
        "headers read without populate: {:?}",
        m.headers
    );
}

/// Relies on: produce and fetch of many records. A fetch takes what is queued behind its
/// first message in batches; whatever the limits, every record is read once, in order,
/// and a fetch never holds more than `max.poll.records` messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_taken_batches_keep_every_record_once_within_the_limits() {
    let t = tansu();
    t.create_topic("bulk", 1).await.unwrap();
    let p = t.producer().unwrap();
    const N: i64 = 5_000;
    let records = (0..N).map(|i| {
        if i % 97 == 13 {
            TestRecord::tombstone(0, format!("k{i}"))
        } else {
            // Values of varied sizes, numbered.
            TestRecord::value(0, format!("{i}:{}", "x".repeat((i % 300) as usize)))
        }
    });
    produce(&p, "bulk", records).await.unwrap();
    let c = config(&t, "bulk", &[("max.poll.records", "37")]);
    let mut cons = consumer(&c, 0).await;
    let mut at = 0i64;
    let mut seen = Vec::new();
    let start = Instant::now();
    while at < N {
        assert!(start.elapsed() < T * 4, "stuck at {at}");
        let b = cons
            .fetch(&StreamOffset::Long(at), Duration::from_millis(500))
            .await
            .unwrap();
        assert!(b.messages.len() <= 37, "{} messages", b.messages.len());
        assert!(
            b.unfiltered_count <= 4 * 37,
            "{} records",
            b.unfiltered_count
        );
        for m in &b.messages {
            let text = std::str::from_utf8(&m.value).unwrap();
            let n: i64 = text.split(':').next().unwrap().parse().unwrap();
            assert_eq!(
                m.offset,
                StreamOffset::Long(n),
                "value {text:.20} at {}",
                m.offset
            );
            seen.push(n);
        }
        let next = b.next_offset.as_i64().unwrap();
        assert!(next >= at, "next offset went back: {at} -> {next}");
        assert_eq!(next - at, b.unfiltered_count as i64, "records counted");
        at = next;
    }
    let expected: Vec<i64> = (0..N).filter(|i| i % 97 != 13).collect();
    assert_eq!(seen, expected, "every record with a value, once, in order");
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

/// Relies on: a Tansu broker with S3 storage (moto, from `scripts/moto.sh`) serving after a
/// restart the records it stored before it was killed. While the broker is down a fetch
/// fails as retryable, naming the unreachable brokers; once it is back the very next fetch
/// reads, rather than returning one by one the errors librdkafka queued during the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_the_next_fetch_reads() {
    let s3 = S3Server::start().unwrap_or_else(|e| panic!("{e:#}"));
    let mut t = Tansu::start_with(s3.tansu_options()).unwrap_or_else(|e| panic!("{e:#}"));
    t.create_topic("t", 1).await.unwrap();
    let p = t.producer().unwrap();
    produce(
        &p,
        "t",
        (0..100).map(|i| TestRecord::value(0, format!("v{i}"))),
    )
    .await
    .unwrap();
    let c = config(&t, "t", &[]);
    let mut cons = consumer(&c, 0).await;
    let mut at = 0;
    while at < 100 {
        at = first_batch(cons.as_mut(), at)
            .await
            .next_offset
            .as_i64()
            .unwrap();
    }

    t.kill().unwrap();
    // Down for 5 s, fetched from every 300 ms: librdkafka queues an error for each failed
    // reconnect meanwhile.
    let down = Instant::now();
    let mut errors = 0;
    while down.elapsed() < Duration::from_secs(5) {
        match cons
            .fetch(&StreamOffset::Long(at), Duration::from_millis(200))
            .await
        {
            Ok(b) => assert!(b.messages.is_empty(), "{b:?}"),
            Err(e) => {
                assert!(e.is_retryable(), "{e}");
                assert_eq!(e.kind, StreamErrorKind::Transient, "{e}");
                errors += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(errors > 5, "{errors} errors while the broker was down");

    t.restart().unwrap();
    produce(
        &p,
        "t",
        (0..100).map(|i| TestRecord::value(0, format!("w{i}"))),
    )
    .await
    .unwrap();
    let back = Instant::now();
    let b = cons
        .fetch(&StreamOffset::Long(at), Duration::from_secs(3))
        .await
        .unwrap_or_else(|e| panic!("the first fetch after the restart failed: {e}"));
    assert!(
        b.unfiltered_count > 0,
        "the first fetch after the restart read nothing in {:?}",
        back.elapsed()
    );
    assert_eq!(b.messages[0].value, Bytes::from_static(b"w0"));
    assert_eq!(b.messages[0].offset, StreamOffset::Long(100));
}

/// Which SASL login can be tested end to end here: none succeeds with Tansu 0.6 as shipped.
/// Its SASL library is built without PLAIN (the handshake finds no shared mechanism), and
/// its only storage (object stores) keeps no SCRAM credentials: storing one is a no-op,
/// looking one up finds none (and `tansu user create` cannot log in to a broker that
/// requires it). So this test shows the other half end to end: the keys, Pinot's
/// `sasl.jaas.config` translated or librdkafka's own, reach the broker, which runs the
/// SCRAM exchange with the user name and refuses it (`unknown-user`), reported as
/// `Unauthorized` (not retried) with the broker's reason and without the password.
/// `translated_sasl_keys_reach_librdkafka` (below) shows the values librdkafka is given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_logins_reach_a_broker_that_requires_them() {
    let t = Tansu::start_with(TansuOptions {
        authentication: true,
        ..TansuOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    let scram: [&[(&str, &str)]; 2] = [
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required \
                 username=\"alice\" password=\"alice-secret\";",
            ),
        ],
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", "alice"),
            ("sasl.password", "alice-secret"),
        ],
    ];
    for extra in scram {
        let c = config(&t, "t", extra);
        assert_eq!(
            KafkaPlugin.validate(&c, &ctx()).unwrap(),
            Vec::<String>::new()
        );
        let mut md = KafkaPlugin.metadata_provider(&c, &ctx()).await.unwrap();
        let t0 = Instant::now();
        let e = md.partition_ids(Duration::from_secs(30)).await.unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert_eq!(e.kind, StreamErrorKind::Unauthorized, "{e}");
        assert!(
            e.message.contains("SASL SCRAM authentication failed")
                && e.message.contains("unknown-user"),
            "{e}"
        );
        assert!(!e.message.contains("alice-secret"), "{e}");
        let mut cons = consumer(&c, 0).await;
        let e = first_error(cons.as_mut()).await;
        assert_eq!(e.kind, StreamErrorKind::Unauthorized, "{e}");
        assert!(!e.is_retryable());
        assert!(e.message.contains("SCRAM"), "{e}");
    }
    // PLAIN: the broker offers no such mechanism.
    let c = config(
        &t,
        "t",
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required \
                 username=\"alice\" password=\"alice-secret\";",
            ),
        ],
    );
    let mut md = KafkaPlugin.metadata_provider(&c, &ctx()).await.unwrap();
    let e = md.partition_ids(Duration::from_secs(30)).await.unwrap_err();
    assert_eq!(e.kind, StreamErrorKind::Unauthorized, "{e}");
    assert!(
        e.message.contains("SASL PLAIN mechanism handshake failed"),
        "{e}"
    );
    assert!(!e.message.contains("alice-secret"), "{e}");
}

/// The SASL keys of a Pinot table config, as librdkafka holds them in the configuration
/// the plugin's clients are created from (read back with `rd_kafka_conf_get`): the Java
/// client's `sasl.jaas.config` becomes `sasl.mechanisms`, `sasl.username` and
/// `sasl.password`. (A successful login cannot be shown against Tansu 0.6: see
/// `sasl_logins_reach_a_broker_that_requires_them`.)
#[test]
fn translated_sasl_keys_reach_librdkafka() {
    for (mechanism, module) in [
        (
            "PLAIN",
            "org.apache.kafka.common.security.plain.PlainLoginModule",
        ),
        (
            "SCRAM-SHA-512",
            "org.apache.kafka.common.security.scram.ScramLoginModule",
        ),
    ] {
        let jaas = format!("{module} required username=\"alice\" password=\"p@ss word\";");
        let mut extra = vec![
            ("security.protocol", "SASL_SSL"),
            ("sasl.jaas.config", jaas.as_str()),
        ];
        if mechanism != "PLAIN" {
            // PLAIN is what a PlainLoginModule implies; SCRAM needs the mechanism named.
            extra.push(("sasl.mechanism", mechanism));
        }
        let sc = StreamConfig::parse("$", &stream_map("127.0.0.1:9", "t", &extra)).unwrap();
        let k = KafkaConfig::parse(&sc).unwrap();
        assert!(k.warnings.is_empty(), "{:?}", k.warnings);
        let native = k
            .client_config("riffle-test")
            .create_native_config()
            .unwrap();
        assert_eq!(native.get("security.protocol").unwrap(), "sasl_ssl");
        assert_eq!(native.get("sasl.mechanisms").unwrap(), mechanism);
        assert_eq!(native.get("sasl.username").unwrap(), "alice");
        assert_eq!(native.get("sasl.password").unwrap(), "p@ss word");
        assert!(
            native.get("sasl.jaas.config").is_err(),
            "librdkafka has no such key: it must not be passed"
        );
    }
}
