//! Null handling: a column that records nulls (column-based null handling, or a table's
//! `nullHandlingEnabled`) reads as its default null value unless the query sets
//! `enableNullHandling`, and then has SQL NULL semantics, in consuming and sealed segments;
//! without it, `IS [NOT] NULL` filters still see the recorded nulls (Pinot's basic null
//! support).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use riffle_common::{AsyncPool, PartitionId, StreamOffset};
use riffle_config::{Column, IndexConfig, Schema};
use riffle_query::{QueryEngine, QueryRequest};
use riffle_segment::{
    write_segment, BlockBuilder, ConsumingSegment, LoadMode, SealOptions, SealedSegment,
    SegmentRef, SegmentRegistry, TableColumns, TableData,
};
use serde_json::{json, Value};

/// `m` and `s` record nulls; `k` is `notNull`, so a missing `k` is only its default.
const SCHEMA: &str = r#"{"schemaName":"t", "enableColumnBasedNullHandling": true,
 "dimensionFieldSpecs":[{"name":"s","dataType":"STRING"},
                        {"name":"k","dataType":"INT","notNull":true}],
 "metricFieldSpecs":[{"name":"m","dataType":"INT"}]}"#;

/// Row `i` of 0..20: every third has no `m`, every fourth no `s`, every fifth no `k`.
fn write(b: &mut BlockBuilder, rows: std::ops::Range<i32>) {
    for i in rows {
        if i % 4 != 0 {
            b.push_str(0, &format!("s{}", i % 3));
        }
        if i % 5 != 0 {
            b.push_i32(1, i);
        }
        if i % 3 != 0 {
            b.push_i32(2, i);
        }
        b.end_row();
    }
}

fn columns() -> Arc<TableColumns> {
    TableColumns::new(
        Schema::from_json(SCHEMA.as_bytes())
            .unwrap()
            .columns()
            .unwrap(),
    )
}

/// Rows 0..10 sealed (indexes on `s` and `m`), rows 10..20 consuming.
fn engine(dir: &std::path::Path) -> QueryEngine {
    let cols = columns();
    let data = Arc::new(TableData::new("t", cols.clone(), None));
    let mut b = BlockBuilder::new(cols.clone(), 10);
    write(&mut b, 0..10);
    let mut indexes = IndexConfig::default();
    indexes.inverted.insert("s".into());
    indexes.range.insert("m".into());
    let name = "t__0__0__20240101T0000Z";
    let path = dir.join(name);
    write_segment(
        &path,
        name,
        &cols,
        &[b.finish().unwrap()],
        &SealOptions::new(&indexes, None),
    )
    .unwrap();
    let seg = SealedSegment::open(&path, name, cols.clone(), LoadMode::Mmap).unwrap();
    data.put_segment(SegmentRef::Sealed(Arc::new(seg)));
    let c = Arc::new(ConsumingSegment::new(
        "t__0__1__20240101T0000Z".into(),
        PartitionId(0),
        1,
        "10".into(),
        10,
        cols.clone(),
    ));
    let mut b = BlockBuilder::new(cols.clone(), 10);
    write(&mut b, 10..20);
    c.append(
        Some(b.finish().unwrap()),
        StreamOffset::Long(20),
        10,
        None,
        5,
    )
    .unwrap();
    data.put_segment(SegmentRef::Consuming(c));
    let reg = Arc::new(SegmentRegistry::new());
    reg.add_table(data);
    QueryEngine::new(
        reg,
        "Broker_test".into(),
        AsyncPool::new("query", 2).unwrap(),
    )
}

async fn rows(e: &QueryEngine, sql: &str) -> Value {
    let r = e
        .execute(QueryRequest {
            sql: sql.into(),
            options: BTreeMap::new(),
            ..Default::default()
        })
        .await
        .to_json();
    assert_eq!(r["exceptions"], json!([]), "{sql}: {r}");
    r["resultTable"]["rows"].clone()
}

const ON: &str = "SET enableNullHandling = true; ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_option_nulls_read_as_default_values() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    // m: 7 of 20 rows have none and read 0 (a metric's default); s: 5 read 'null'.
    let sum: i32 = (0..20).filter(|i| i % 3 != 0).sum();
    assert_eq!(
        rows(&e, "SELECT COUNT(m), SUM(m), MIN(m) FROM t").await,
        json!([[20, sum as f64, 0.0]])
    );
    // The sealed segment's indexes do not know the defaults: still found in both segments.
    assert_eq!(
        rows(&e, "SELECT COUNT(*) FROM t WHERE s = 'null'").await,
        json!([[5]])
    );
    assert_eq!(
        rows(&e, "SELECT COUNT(*) FROM t WHERE m = 0").await,
        json!([[7]])
    );
    assert_eq!(
        rows(&e, "SELECT COUNT(*) FROM t WHERE m < 1").await,
        json!([[7]])
    );
    // Pinot's basic null support: IS [NOT] NULL sees the recorded nulls (the null vector),
    // while the values read as defaults.
    assert_eq!(
        rows(&e, "SELECT COUNT(*) FROM t WHERE m IS NULL").await,
        json!([[7]])
    );
    assert_eq!(
        rows(&e, "SELECT COUNT(*) FROM t WHERE m IS NOT NULL").await,
        json!([[13]])
    );
    // k (notNull) reads its default, Integer.MIN_VALUE, where it is missing.
    let want: Vec<i32> = (0..20)
        .filter(|i| i % 3 == 0 && i % 5 != 0 && *i > 5)
        .collect();
    assert_eq!(
        rows(
            &e,
            "SELECT m, k FROM t WHERE m IS NULL AND k > 5 ORDER BY k"
        )
        .await,
        json!(want.iter().map(|k| json!([0, k])).collect::<Vec<_>>())
    );
    assert_eq!(
        rows(&e, "SELECT COUNT(*) FROM t WHERE k IS NULL").await,
        json!([[0]])
    );
    assert_eq!(
        rows(&e, "SELECT s, m FROM t WHERE k = 12").await,
        json!([["null", 0]])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_option_nulls_are_sql_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let q = |s: &str| format!("{ON}{s}");
    let sum: i32 = (0..20).filter(|i| i % 3 != 0).sum();
    let avg = sum as f64 / 13.0;
    // Aggregates skip nulls.
    assert_eq!(
        rows(
            &e,
            &q("SELECT COUNT(*), COUNT(m), SUM(m), MIN(m), AVG(m) FROM t")
        )
        .await,
        json!([[20, 13, sum as f64, 1.0, avg]])
    );
    assert_eq!(
        rows(&e, &q("SELECT COUNT(*) FROM t WHERE m IS NULL")).await,
        json!([[7]])
    );
    assert_eq!(
        rows(&e, &q("SELECT COUNT(*) FROM t WHERE s IS NOT NULL")).await,
        json!([[15]])
    );
    assert_eq!(
        rows(&e, &q("SELECT COUNT(*) FROM t WHERE s = 'null' OR m = 0")).await,
        json!([[0]])
    );
    // A null is answered as null; a notNull column without a value holds its default.
    assert_eq!(
        rows(&e, &q("SELECT s, m FROM t WHERE k = 12")).await,
        json!([[null, null]])
    );
    assert_eq!(
        rows(&e, &q("SELECT COUNT(*) FROM t WHERE k IS NULL")).await,
        json!([[0]])
    );
    assert_eq!(
        rows(&e, &q("SELECT COUNT(*) FROM t WHERE k = -2147483648")).await,
        json!([[4]])
    );
}

#[test]
fn a_table_with_null_handling_enabled_records_nulls_in_every_single_value_column() {
    let schema = Schema::from_json(
        br#"{"schemaName":"t","dimensionFieldSpecs":[{"name":"a","dataType":"INT"},
          {"name":"b","dataType":"INT","singleValueField":false}]}"#,
    )
    .unwrap();
    let cols = schema.columns().unwrap();
    assert!(cols.iter().all(|c| !c.nullable));
    let cols = Column::with_table_nulls(cols, true);
    assert_eq!(
        cols.iter().map(|c| c.nullable).collect::<Vec<_>>(),
        [true, false]
    );
}
