//! `ORDER BY c [DESC] LIMIT n` over sealed segments reads only the rows that can be in the
//! answer, and answers exactly what a full sort would (ties, further keys, offsets, a
//! filter, a raw column, a consuming segment beside the sealed ones). Also over these
//! segments: distinct values from the dictionaries, and filters answered by the scan.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use riffle_common::{format_pinot_timestamp, AsyncPool, PartitionId, StreamOffset};
use riffle_config::{IndexConfig, Schema};
use riffle_query::{QueryEngine, QueryRequest};
use riffle_segment::{
    write_segment, BlockBuilder, ConsumingSegment, LoadMode, SealOptions, SealedSegment,
    SegmentRef, SegmentRegistry, TableColumns, TableData,
};
use serde_json::{json, Value};

const SCHEMA: &str = r#"{"schemaName":"t",
 "dimensionFieldSpecs":[{"name":"v","dataType":"INT"}],
 "metricFieldSpecs":[{"name":"price","dataType":"DOUBLE"}],
 "dateTimeFieldSpecs":[{"name":"ts","dataType":"TIMESTAMP","format":"1:MILLISECONDS:EPOCH",
   "granularity":"1:MILLISECONDS"}]}"#;

/// Row `i`: (ts, v, price); `v` and `price` repeat (ties), `ts` grows.
fn row(i: i64) -> (i64, i32, f64) {
    (i, ((i * 7919) % 13) as i32, ((i * 31) % 1000) as f64 / 10.0)
}

fn batch(cols: &Arc<TableColumns>, rows: std::ops::Range<i64>) -> arrow::record_batch::RecordBatch {
    let mut b = BlockBuilder::new(cols.clone(), (rows.end - rows.start) as usize);
    for i in rows {
        let (ts, v, price) = row(i);
        b.push_i32(0, v);
        b.push_f64(1, price);
        b.push_timestamp(2, ts);
        b.end_row();
    }
    b.finish().unwrap()
}

/// Three sealed segments of 1,000 rows (ts 0..3000, sorted within each, `price` raw), and a
/// consuming segment of 100 rows (ts 3000..3100).
fn engine(dir: &std::path::Path) -> QueryEngine {
    let cols = TableColumns::new(
        Schema::from_json(SCHEMA.as_bytes())
            .unwrap()
            .columns()
            .unwrap(),
    );
    let data = Arc::new(TableData::new("t", cols.clone(), Some("ts".into())));
    let mut indexes = IndexConfig::default();
    indexes.no_dictionary.insert("price".into());
    let opts = SealOptions::new(&indexes, Some("ts"));
    for k in 0..3i64 {
        let name = format!("t__0__{k}__20240101T0000Z");
        let path = dir.join(&name);
        write_segment(
            &path,
            &name,
            &cols,
            &[batch(&cols, k * 1000..(k + 1) * 1000)],
            &opts,
        )
        .unwrap();
        let seg = SealedSegment::open(&path, &name, cols.clone(), LoadMode::Mmap).unwrap();
        data.put_segment(SegmentRef::Sealed(Arc::new(seg)));
    }
    let seg = Arc::new(ConsumingSegment::new(
        "t__0__3__20240101T0000Z".into(),
        PartitionId(0),
        3,
        "3000".into(),
        3000,
        cols.clone(),
    ));
    seg.append(
        Some(batch(&cols, 3000..3100)),
        StreamOffset::Long(3100),
        100,
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
}

async fn q(e: &QueryEngine, sql: &str) -> Value {
    let r = e
        .execute(QueryRequest {
            sql: sql.into(),
            options: BTreeMap::new(),
            ..Default::default()
        })
        .await
        .to_json();
    assert_eq!(r["exceptions"], json!([]), "{sql}: {r}");
    r
}

/// Every row, ordered by `key`, first `n` after `offset`, as `cols` makes them.
fn expected(
    mut key: impl FnMut(&(i64, i32, f64), &(i64, i32, f64)) -> std::cmp::Ordering,
    offset: usize,
    n: usize,
    cols: impl Fn(&(i64, i32, f64)) -> Value,
) -> Value {
    let mut all: Vec<_> = (0..3100).map(row).collect();
    all.sort_by(|a, b| key(a, b));
    Value::Array(all.iter().skip(offset).take(n).map(cols).collect())
}

fn ts(ms: i64) -> Value {
    json!(format_pinot_timestamp(ms))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_rows_read_only_the_segments_that_can_hold_them() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let r = q(&e, "SELECT ts, v FROM t ORDER BY ts DESC LIMIT 150").await;
    let want = expected(|a, b| b.0.cmp(&a.0), 0, 150, |r| json!([ts(r.0), r.1]));
    assert_eq!(r["resultTable"]["rows"], want);
    // The consuming segment's 100 rows and the last sealed segment's 150 latest; the two
    // older sealed segments hold nothing later than 2,850 and are not read.
    assert_eq!(r["numDocsScanned"], json!(250), "{r}");
    assert_eq!(r["numSegmentsProcessed"], json!(2), "{r}");
    assert_eq!(r["numSegmentsQueried"], json!(4), "{r}");
    assert_eq!(r["totalDocs"], json!(3100), "{r}");

    // Ascending: the first sealed segment's 10 earliest, the consuming segment whole.
    let r = q(&e, "SELECT ts, v FROM t ORDER BY ts LIMIT 10").await;
    let want = expected(|a, b| a.0.cmp(&b.0), 0, 10, |r| json!([ts(r.0), r.1]));
    assert_eq!(r["resultTable"]["rows"], want);
    assert_eq!(r["numDocsScanned"], json!(110), "{r}");

    // An offset widens what is kept.
    let r = q(&e, "SELECT ts FROM t ORDER BY ts DESC LIMIT 5 OFFSET 98").await;
    let want = expected(|a, b| b.0.cmp(&a.0), 98, 5, |r| json!([ts(r.0)]));
    assert_eq!(r["resultTable"]["rows"], want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ties_further_keys_raw_columns_and_filters_answer_as_a_full_sort() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    // A dictionary column in no order, with ties broken by a second key.
    let r = q(&e, "SELECT v, ts FROM t ORDER BY v DESC, ts LIMIT 20").await;
    let want = expected(
        |a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)),
        0,
        20,
        |r| json!([r.1, ts(r.0)]),
    );
    assert_eq!(r["resultTable"]["rows"], want);
    let docs = r["numDocsScanned"].as_u64().unwrap();
    assert!(docs < 3100, "{r}");

    // A raw (no-dictionary) DOUBLE column, ascending, ties broken descending.
    let r = q(
        &e,
        "SELECT price, ts FROM t ORDER BY price, ts DESC LIMIT 7",
    )
    .await;
    let want = expected(
        |a, b| a.2.total_cmp(&b.2).then(b.0.cmp(&a.0)),
        0,
        7,
        |r| json!([r.2, ts(r.0)]),
    );
    assert_eq!(r["resultTable"]["rows"], want);
    assert!(r["numDocsScanned"].as_u64().unwrap() < 3100, "{r}");

    // With a filter every row is considered (the filter could drop what a scan kept).
    let r = q(&e, "SELECT ts FROM t WHERE v = 3 ORDER BY ts DESC LIMIT 5").await;
    let mut all: Vec<_> = (0..3100).map(row).filter(|r| r.1 == 3).collect();
    all.sort_by_key(|r| std::cmp::Reverse(r.0));
    let want: Vec<Value> = all.iter().take(5).map(|r| json!([ts(r.0)])).collect();
    assert_eq!(r["resultTable"]["rows"], Value::Array(want));

    // An expression as the sort key is sorted in full.
    let r = q(&e, "SELECT v FROM t ORDER BY v * -1 DESC, ts LIMIT 3").await;
    let want = expected(
        |a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)),
        0,
        3,
        |r| json!([r.1]),
    );
    assert_eq!(r["resultTable"]["rows"], want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_values_and_exact_filters_over_sealed_segments_answer_as_computed() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let all: Vec<(i64, i32, f64)> = (0..3100).map(row).collect();

    // Duplicate-insensitive aggregations read each sealed segment's distinct values.
    let sql = "SELECT DISTINCTCOUNT(v), COUNT(DISTINCT v), MIN(v), MAX(v) FROM t";
    let plan = q(&e, &format!("EXPLAIN PLAN FOR {sql}")).await;
    assert!(plan.to_string().contains("distinct_values"), "{plan}");
    let r = q(&e, sql).await;
    let distinct: std::collections::BTreeSet<i32> = all.iter().map(|r| r.1).collect();
    let (lo, hi) = (
        distinct.first().copied().map(f64::from),
        distinct.last().copied().map(f64::from),
    );
    assert_eq!(
        r["resultTable"]["rows"],
        json!([[distinct.len(), distinct.len(), lo, hi]]),
        "{r}"
    );
    // Still counted as every doc read.
    assert_eq!(r["numDocsScanned"], json!(3100), "{r}");
    // A filter first: the distinct values of the selected docs only.
    let r = q(&e, "SELECT DISTINCTCOUNT(v) FROM t WHERE ts < 5").await;
    let few: std::collections::BTreeSet<i32> =
        all.iter().filter(|r| r.0 < 5).map(|r| r.1).collect();
    assert_eq!(r["resultTable"]["rows"], json!([[few.len()]]), "{r}");
    // A raw column has no dictionary: read row by row, same answer.
    let r = q(&e, "SELECT DISTINCTCOUNT(price) FROM t").await;
    let prices: std::collections::BTreeSet<u64> = all.iter().map(|r| r.2.to_bits()).collect();
    assert_eq!(r["resultTable"]["rows"], json!([[prices.len()]]), "{r}");

    // A time range across sealed and consuming segments, answered by the scan alone.
    let sql = "SELECT COUNT(*), SUM(price) FROM t WHERE ts >= 1500 AND ts < 3050";
    let plan = q(&e, &format!("EXPLAIN PLAN FOR {sql}")).await;
    assert!(!plan.to_string().contains("FilterExec"), "{plan}");
    let r = q(&e, sql).await;
    let kept: Vec<&(i64, i32, f64)> = all.iter().filter(|r| r.0 >= 1500 && r.0 < 3050).collect();
    let sum: f64 = kept.iter().map(|r| r.2).sum();
    let row = &r["resultTable"]["rows"][0];
    assert_eq!(row[0], json!(kept.len()), "{r}");
    assert!((row[1].as_f64().unwrap() - sum).abs() < 1e-6, "{r}");
    assert_eq!(r["numDocsScanned"], json!(kept.len()), "{r}");
    // The first sealed segment (ts < 1000) is pruned.
    assert_eq!(r["numSegmentsPrunedByServer"], json!(1), "{r}");
}
