//! Query limits: hostile shapes, memory and result sizes fail the query with an error that
//! names the limit; the engine answers the next query as before.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use riffle_common::{AsyncPool, ErrorKind, PartitionId, StreamOffset};
use riffle_config::Schema;
use riffle_query::{BrokerResponse, QueryEngine, QueryLimits, QueryRequest};
use riffle_segment::{
    BlockBuilder, ConsumingSegment, SegmentRef, SegmentRegistry, TableColumns, TableData,
};

const SCHEMA: &str = r#"{"schemaName":"events",
 "dimensionFieldSpecs":[{"name":"id","dataType":"INT"},{"name":"s","dataType":"STRING"}]}"#;

/// A table `events` of `rows` rows: `id` 0.. and `s` a distinct 32-byte string.
fn engine(rows: i32, limits: QueryLimits) -> QueryEngine {
    let cols = TableColumns::new(
        Schema::from_json(SCHEMA.as_bytes())
            .unwrap()
            .columns()
            .unwrap(),
    );
    let data = Arc::new(TableData::new("events", cols.clone(), None));
    let seg = Arc::new(ConsumingSegment::new(
        "events__0__0__20240101T0000Z".into(),
        PartitionId(0),
        0,
        "0".into(),
        0,
        cols.clone(),
    ));
    let mut b = BlockBuilder::new(cols.clone(), rows as usize);
    for i in 0..rows {
        b.push_i32(0, i);
        b.push_str(1, &format!("{i:032}"));
        b.end_row();
    }
    let batch = b.finish().unwrap();
    seg.append(
        Some(batch),
        StreamOffset::Long(i64::from(rows)),
        rows as u64,
        None,
        5,
    )
    .unwrap();
    data.put_segment(SegmentRef::Consuming(seg));
    let reg = Arc::new(SegmentRegistry::new());
    reg.add_table(data);
    QueryEngine::new(
        reg,
        "Broker_test".into(),
        AsyncPool::new("query", 2).unwrap(),
    )
    .with_limits(limits)
}

async fn q(e: &QueryEngine, sql: &str) -> BrokerResponse {
    e.execute(QueryRequest {
        sql: sql.into(),
        options: BTreeMap::new(),
        ..Default::default()
    })
    .await
}

fn error_of(r: &BrokerResponse) -> (ErrorKind, String) {
    r.exceptions
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("expected an error, got {}", r.to_json()))
}

async fn count_works(e: &QueryEngine, expect: i64) {
    let r = q(e, "SELECT COUNT(*) FROM events").await;
    assert!(r.exceptions.is_empty(), "{}", r.to_json());
    assert_eq!(r.to_json()["resultTable"]["rows"][0][0], expect);
}

fn chain(op: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("id = {i}"))
        .collect::<Vec<_>>()
        .join(&format!(" {op} "))
}

#[tokio::test]
async fn long_operator_chains_are_refused_before_planning() {
    let e = engine(100, QueryLimits::default());
    for sql in [
        format!("SELECT COUNT(*) FROM events WHERE {}", chain("OR", 2_000)),
        format!("SELECT COUNT(*) FROM events WHERE {}", chain("AND", 2_000)),
        format!(
            "SELECT {} FROM events",
            (0..2_000)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(" + ")
        ),
    ] {
        let r = q(&e, &sql).await;
        let (kind, message) = error_of(&r);
        assert_eq!(kind, ErrorKind::SqlParsing, "{message}");
        assert!(message.contains("maxExpressionDepth"), "{message}");
        assert!(message.contains("1000"), "{message}");
        assert_eq!(r.to_json()["exceptions"][0]["errorCode"], 150);
    }
    count_works(&e, 100).await;
}

#[tokio::test]
async fn chains_just_below_the_limit_are_planned_and_answered() {
    let e = engine(100, QueryLimits::default());
    let r = q(
        &e,
        &format!("SELECT COUNT(*) FROM events WHERE {}", chain("OR", 990)),
    )
    .await;
    assert!(r.exceptions.is_empty(), "{}", r.to_json());
    assert_eq!(r.to_json()["resultTable"]["rows"][0][0], 100);
}

#[tokio::test]
async fn too_many_expressions_are_refused() {
    let limits = QueryLimits {
        max_expression_elements: 500,
        ..QueryLimits::default()
    };
    let e = engine(10, limits);
    let list = (0..1_000).map(|i| i.to_string()).collect::<Vec<_>>();
    let r = q(
        &e,
        &format!(
            "SELECT COUNT(*) FROM events WHERE id IN ({})",
            list.join(",")
        ),
    )
    .await;
    let (kind, message) = error_of(&r);
    assert_eq!(kind, ErrorKind::SqlParsing);
    assert!(message.contains("maxExpressionElements"), "{message}");
    assert!(message.contains("500"), "{message}");
}

#[tokio::test]
async fn a_query_past_its_memory_budget_fails_and_the_next_one_runs() {
    let limits = QueryLimits {
        max_query_memory_bytes: 1 << 20,
        ..QueryLimits::default()
    };
    let e = engine(200_000, limits);
    let r = q(
        &e,
        "SELECT s, COUNT(*) FROM events GROUP BY s ORDER BY s DESC LIMIT 5",
    )
    .await;
    let (kind, message) = error_of(&r);
    assert_eq!(kind, ErrorKind::ResourceLimitExceeded, "{message}");
    assert!(message.contains("maxQueryMemoryBytes"), "{message}");
    assert!(message.contains(&(1u64 << 20).to_string()), "{message}");
    assert_eq!(r.to_json()["exceptions"][0]["errorCode"], 245);
    count_works(&e, 200_000).await;
}

#[tokio::test]
async fn the_server_budget_bounds_all_queries_together() {
    let limits = QueryLimits {
        max_server_memory_bytes: 1 << 20,
        ..QueryLimits::default()
    };
    let e = engine(200_000, limits);
    let r = q(
        &e,
        "SELECT s, COUNT(*) FROM events GROUP BY s ORDER BY s DESC LIMIT 5",
    )
    .await;
    let (kind, message) = error_of(&r);
    assert_eq!(kind, ErrorKind::ResourceLimitExceeded, "{message}");
    assert!(message.contains("maxServerMemoryBytes"), "{message}");
    // Everything the failed query reserved went back: the same query fits a bigger budget
    // and light queries run.
    count_works(&e, 200_000).await;
}

#[tokio::test]
async fn results_past_the_row_and_byte_limits_fail() {
    let limits = QueryLimits {
        max_result_rows: 1_000,
        ..QueryLimits::default()
    };
    let e = engine(5_000, limits);
    // A cross join of 25 million rows is stopped at the row limit, not buffered.
    let r = q(
        &e,
        "SELECT a.id, b.id FROM events a CROSS JOIN events b LIMIT 100000000",
    )
    .await;
    let (kind, message) = error_of(&r);
    assert_eq!(kind, ErrorKind::ResourceLimitExceeded, "{message}");
    assert!(message.contains("maxResultRows"), "{message}");
    assert!(message.contains("1000"), "{message}");

    // maxQueryResponseSizeBytes as a query option.
    let r = e
        .execute(QueryRequest {
            sql: "SELECT s FROM events LIMIT 900".into(),
            options: BTreeMap::from([("maxQueryResponseSizeBytes".into(), "1000".into())]),
            ..Default::default()
        })
        .await;
    let (kind, message) = error_of(&r);
    assert_eq!(kind, ErrorKind::ResourceLimitExceeded, "{message}");
    assert!(message.contains("maxQueryResponseSizeBytes"), "{message}");
    // Within the limits the same table answers.
    let r = q(&e, "SELECT s FROM events LIMIT 900").await;
    assert!(r.exceptions.is_empty(), "{}", r.to_json());
    assert_eq!(r.rows.len(), 900);
}

#[tokio::test]
async fn string_bombs_fail_before_they_allocate() {
    let e = engine(1_000, QueryLimits::default());
    for (sql, limit) in [
        (
            "SELECT MAX(length(repeat(s, 1000000))) FROM events",
            "maxStringBytes",
        ),
        (
            "SELECT MAX(length(repeat(s, 100000))) FROM events",
            "maxQueryMemoryBytes",
        ),
        (
            "SELECT MAX(length(lpad(s, 100000000, 'x'))) FROM events",
            "maxStringBytes",
        ),
        (
            "SELECT MAX(length(rpad(s, 100000000))) FROM events",
            "maxStringBytes",
        ),
    ] {
        let r = q(&e, sql).await;
        let (kind, message) = error_of(&r);
        assert_eq!(kind, ErrorKind::ResourceLimitExceeded, "{sql}: {message}");
        assert!(message.contains(limit), "{sql}: {message}");
    }
    // Within the limits the functions answer as before.
    let r = q(
        &e,
        "SELECT repeat('ab', 3), lpad('7', 3, '0'), rpad('7', 3, '-') FROM events LIMIT 1",
    )
    .await;
    assert!(r.exceptions.is_empty(), "{}", r.to_json());
    assert_eq!(
        r.to_json()["resultTable"]["rows"][0],
        serde_json::json!(["ababab", "007", "7--"])
    );
    count_works(&e, 1_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_query_slots_a_query_waits_then_answers_error_240() {
    let limits = QueryLimits {
        max_concurrent_queries: 1,
        max_queue_wait: std::time::Duration::from_millis(100),
        ..QueryLimits::default()
    };
    let e = Arc::new(engine(20_000, limits));
    // A query that holds the only slot until its 3 s timeout (400M pairs).
    let heavy = {
        let e = e.clone();
        tokio::spawn(async move {
            e.execute(QueryRequest {
                sql: "SELECT COUNT(*) FROM events a, events b WHERE a.s <> b.s".into(),
                options: BTreeMap::from([("timeoutMs".into(), "3000".into())]),
                ..Default::default()
            })
            .await
        })
    };
    let started = std::time::Instant::now();
    while e.running() == 0 {
        assert!(
            started.elapsed().as_secs() < 10,
            "the heavy query never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let r = q(&e, "SELECT COUNT(*) FROM events").await;
    let (kind, message) = error_of(&r);
    assert_eq!(kind, ErrorKind::QuerySchedulingTimeout, "{message}");
    assert!(message.contains("maxConcurrentQueries"), "{message}");
    assert_eq!(r.to_json()["exceptions"][0]["errorCode"], 240);
    // Once the slot is free again, queries run.
    let _ = heavy.await;
    // The slot goes back when the timed-out query's work has stopped, moments later.
    let answered = std::time::Instant::now();
    while e.running() > 0 {
        assert!(answered.elapsed().as_secs() < 5, "the slot stayed taken");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    count_works(&e, 20_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_its_timeout_lets_go_of_its_threads_and_its_slot() {
    let limits = QueryLimits {
        max_concurrent_queries: 1,
        max_queue_wait: std::time::Duration::from_secs(5),
        ..QueryLimits::default()
    };
    let e = engine(300_000, limits);
    // 90 billion pairs each: a join whose filter is cheap (one output batch after another),
    // one whose filter matches nothing (no output to hand up), and a cross join feeding a
    // sort. Each would compute for minutes; each must stop at its timeout.
    for sql in [
        "SELECT COUNT(*) FROM events a, events b WHERE a.id < b.id",
        "SELECT COUNT(*) FROM events a, events b WHERE a.s = concat(b.s, 'x') OR a.id < 0",
        "SELECT a.s FROM events a, events b ORDER BY a.s, b.s LIMIT 10",
    ] {
        let r = e
            .execute(QueryRequest {
                sql: sql.into(),
                options: BTreeMap::from([("timeoutMs".into(), "300".into())]),
                ..Default::default()
            })
            .await;
        let (kind, message) = error_of(&r);
        assert_eq!(kind, ErrorKind::ExecutionTimeout, "{sql}: {message}");
        let answered = std::time::Instant::now();
        while e.alive_query_tasks() > 0 || e.running() > 0 {
            assert!(
                answered.elapsed() < std::time::Duration::from_secs(5),
                "{sql}: still computing {:?} after its timeout ({} tasks, {} slots)",
                answered.elapsed(),
                e.alive_query_tasks(),
                e.running()
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // The only slot is free again: the next query runs at once.
        count_works(&e, 300_000).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_queries_answer_while_two_heavy_ones_hold_every_query_thread() {
    // Two query threads (the engine's pool), two heavy queries of 90 billion pairs each:
    // every COUNT(*) is answered while both are still running, none waits for them.
    let e = Arc::new(engine(300_000, QueryLimits::default()));
    let heavy: Vec<_> = (0..2)
        .map(|_| {
            let e = e.clone();
            tokio::spawn(async move {
                e.execute(QueryRequest {
                    sql: "SELECT COUNT(*) FROM events a, events b WHERE a.id < b.id".into(),
                    options: BTreeMap::from([("timeoutMs".into(), "60000".into())]),
                    ..Default::default()
                })
                .await
            })
        })
        .collect();
    let started = std::time::Instant::now();
    while e.running() < 2 {
        assert!(
            started.elapsed().as_secs() < 10,
            "the heavy queries never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    for _ in 0..20 {
        count_works(&e, 300_000).await;
        assert_eq!(
            e.running(),
            2,
            "a heavy query ended: the test proves nothing"
        );
    }
    // A caller that goes away takes its query with it: the threads come back.
    for h in heavy {
        h.abort();
    }
    let dropped = std::time::Instant::now();
    while e.alive_query_tasks() > 0 || e.running() > 0 {
        assert!(
            dropped.elapsed().as_secs() < 5,
            "queries nobody waits for kept computing"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
