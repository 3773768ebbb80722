//! Pinot's aggregations on the plugin API, and a plugin registered from its own crate,
//! answered through the whole engine over two segments, grouped and not, against values
//! computed here row by row.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use riffle_common::{AsyncPool, PartitionId, StreamOffset};
use riffle_config::Schema;
use riffle_functions::aggregation::AggregationRegistry;
use riffle_query::{QueryEngine, QueryRequest};
use riffle_segment::{
    BlockBuilder, ConsumingSegment, SegmentRef, SegmentRegistry, TableColumns, TableData,
};
use serde_json::{json, Value};

const SCHEMA: &str = r#"{"schemaName":"m",
 "dimensionFieldSpecs":[{"name":"g","dataType":"INT"},{"name":"x","dataType":"INT"},
   {"name":"s","dataType":"STRING"},
   {"name":"tags","dataType":"INT","singleValueField":false},{"name":"i","dataType":"INT"}]}"#;

const ROWS: i32 = 1000;

/// Row `i`: g = i % 3, x = i % 10, s = "s{i % 7}", tags = [i % 5, (i + 1) % 5].
fn row(i: i32) -> (i32, i32, String, [i32; 2]) {
    (i % 3, i % 10, format!("s{}", i % 7), [i % 5, (i + 1) % 5])
}

fn engine(registry: AggregationRegistry) -> QueryEngine {
    let cols = TableColumns::new(
        Schema::from_json(SCHEMA.as_bytes())
            .unwrap()
            .columns()
            .unwrap(),
    );
    let data = Arc::new(TableData::new("m", cols.clone(), None));
    for (p, range) in [(0, 0..400), (1, 400..ROWS)] {
        let seg = Arc::new(ConsumingSegment::new(
            format!("m__{p}__0__20240101T0000Z"),
            PartitionId(p),
            0,
            "0".into(),
            0,
            cols.clone(),
        ));
        let mut b = BlockBuilder::new(cols.clone(), range.len());
        let n = range.len();
        for i in range {
            let (g, x, s, tags) = row(i);
            b.push_i32(0, g);
            b.push_i32(1, x);
            b.push_str(2, &s);
            b.push_list_start(3);
            for t in tags {
                b.push_i32(3, t);
            }
            b.push_list_end(3);
            b.push_i32(4, i);
            b.end_row();
        }
        seg.append(
            Some(b.finish().unwrap()),
            StreamOffset::Long(n as i64),
            n as u64,
            None,
            5,
        )
        .unwrap();
        data.put_segment(SegmentRef::Consuming(seg));
    }
    let reg = Arc::new(SegmentRegistry::new());
    reg.add_table(data);
    QueryEngine::new(
        reg,
        "Broker_test".into(),
        AsyncPool::new("query", 2).unwrap(),
    )
    .with_aggregations(registry)
}

async fn q(e: &QueryEngine, sql: &str) -> Value {
    e.execute(QueryRequest {
        sql: sql.into(),
        options: BTreeMap::new(),
        ..Default::default()
    })
    .await
    .to_json()
}

async fn ok(e: &QueryEngine, sql: &str) -> Value {
    let r = q(e, sql).await;
    assert_eq!(r["exceptions"], json!([]), "{sql}: {r}");
    r
}

/// Pinot's exact percentile: the sorted values' item at index ⌊n·p/100⌋.
fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let at = ((v.len() as f64 * p / 100.0) as usize).min(v.len() - 1);
    v[at]
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64()
        .is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
}

#[tokio::test]
async fn pinot_aggregations_answer_as_computed_row_by_row() {
    let e = engine(AggregationRegistry::with_builtins());
    let xs: Vec<f64> = (0..ROWS).map(|i| f64::from(row(i).1)).collect();
    let r = ok(
        &e,
        "SELECT DISTINCTCOUNT(x), DISTINCT_COUNT(s), PERCENTILE(x, 50), PERCENTILE90(x), \
         percentile(x, 100), MINMAXRANGE(x), MODE(x), MODE(x, 'MAX'), MODE(x, 'AVG'), \
         DISTINCTSUM(x), DISTINCTAVG(x) FROM m",
    )
    .await;
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnDataTypes"],
        json!([
            "INT", "INT", "DOUBLE", "DOUBLE", "DOUBLE", "DOUBLE", "DOUBLE", "DOUBLE", "DOUBLE",
            "DOUBLE", "DOUBLE"
        ])
    );
    let distinct_x: BTreeSet<i32> = (0..ROWS).map(|i| row(i).1).collect();
    let distinct_s: BTreeSet<String> = (0..ROWS).map(|i| row(i).2).collect();
    let want = [
        distinct_x.len() as f64,
        distinct_s.len() as f64,
        percentile(xs.clone(), 50.0),
        percentile(xs.clone(), 90.0),
        percentile(xs.clone(), 100.0),
        9.0,
        0.0, // every value is as frequent: the least
        9.0,
        4.5,
        distinct_x.iter().map(|v| f64::from(*v)).sum(),
        4.5,
    ];
    let got = &r["resultTable"]["rows"][0];
    for (i, w) in want.iter().enumerate() {
        assert!(close(&got[i], *w), "column {i}: {} != {w} ({r})", got[i]);
    }
}

#[tokio::test]
async fn multi_value_aggregations_see_every_value() {
    let e = engine(AggregationRegistry::with_builtins());
    let values: Vec<f64> = (0..ROWS).flat_map(|i| row(i).3.map(f64::from)).collect();
    let r = ok(
        &e,
        "SELECT COUNTMV(tags), SUMMV(tags), MINMV(tags), MAXMV(tags), AVGMV(tags), \
         DISTINCTCOUNTMV(tags), PERCENTILE75MV(tags), MINMAXRANGEMV(tags) FROM m",
    )
    .await;
    let got = &r["resultTable"]["rows"][0];
    let sum: f64 = values.iter().sum();
    let distinct: BTreeSet<i64> = values.iter().map(|v| *v as i64).collect();
    let want = [
        values.len() as f64,
        sum,
        0.0,
        4.0,
        sum / values.len() as f64,
        distinct.len() as f64,
        percentile(values.clone(), 75.0),
        4.0,
    ];
    for (i, w) in want.iter().enumerate() {
        assert!(close(&got[i], *w), "column {i}: {} != {w} ({r})", got[i]);
    }
    assert_eq!(r["resultTable"]["dataSchema"]["columnDataTypes"][0], "LONG");
}

#[tokio::test]
async fn a_plugin_from_its_own_crate_is_registered_and_queried() {
    let mut registry = AggregationRegistry::with_builtins();
    registry.register(Arc::new(riffle_agg_example::GeoMean));
    let e = engine(registry);
    // Grouped, ordered, beside built-ins: one answer per group, computed here.
    let r = ok(
        &e,
        "SELECT g, GEOMEAN(x + 1), geo_mean(x), PERCENTILE(x, 50), DISTINCTCOUNT(s) FROM m \
         GROUP BY g ORDER BY g",
    )
    .await;
    let rows = r["resultTable"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{r}");
    for (g, got) in rows.iter().enumerate() {
        let members: Vec<i32> = (0..ROWS).filter(|i| row(*i).0 == g as i32).collect();
        let plus_one: Vec<f64> = members.iter().map(|i| f64::from(row(*i).1 + 1)).collect();
        let geo = (plus_one.iter().map(|v| v.ln()).sum::<f64>() / plus_one.len() as f64).exp();
        let positive: Vec<f64> = members
            .iter()
            .map(|i| f64::from(row(*i).1))
            .filter(|v| *v > 0.0)
            .collect();
        let geo0 = (positive.iter().map(|v| v.ln()).sum::<f64>() / positive.len() as f64).exp();
        let xs: Vec<f64> = members.iter().map(|i| f64::from(row(*i).1)).collect();
        let names: BTreeSet<String> = members.iter().map(|i| row(*i).2).collect();
        assert_eq!(got[0], g, "{r}");
        assert!(close(&got[1], geo), "group {g}: {} != {geo}", got[1]);
        assert!(close(&got[2], geo0), "group {g}: {} != {geo0}", got[2]);
        assert!(close(&got[3], percentile(xs, 50.0)), "{r}");
        assert_eq!(got[4], names.len(), "{r}");
    }
    // Without the plugin the name is unknown.
    let r = q(
        &engine(AggregationRegistry::with_builtins()),
        "SELECT GEOMEAN(x) FROM m",
    )
    .await;
    assert_ne!(r["exceptions"], json!([]), "{r}");
}

#[tokio::test]
async fn bad_arguments_are_errors_that_name_the_function() {
    let e = engine(AggregationRegistry::with_builtins());
    for (sql, needle) in [
        ("SELECT PERCENTILE(x, 150) FROM m", "percentile"),
        ("SELECT PERCENTILE(x) FROM m", "percentile"),
        ("SELECT MODE(x, 'MEDIAN') FROM m", "mode"),
        ("SELECT MINMAXRANGE(s) FROM m", "minmaxrange"),
        ("SELECT SUMMV(x) FROM m", "summv"),
    ] {
        let r = q(&e, sql).await;
        let msg = r["exceptions"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase();
        assert!(msg.contains(needle), "{sql}: {r}");
    }
    // The engine answers the next query.
    let r = ok(&e, "SELECT COUNT(*) FROM m").await;
    assert_eq!(r["resultTable"]["rows"], json!([[ROWS]]));
}

#[tokio::test]
async fn values_at_the_last_and_first_time_and_sketches_through_the_engine() {
    let e = engine(AggregationRegistry::with_builtins());
    let r = ok(
        &e,
        "SELECT g, LASTWITHTIME(s, i, 'STRING'), FIRSTWITHTIME(x, i, 'INT'), \
         DISTINCTCOUNTHLL(s), DISTINCTCOUNTHLLMV(tags), PERCENTILETDIGEST50(x) \
         FROM m GROUP BY g ORDER BY g",
    )
    .await;
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnDataTypes"],
        json!(["INT", "STRING", "INT", "LONG", "LONG", "DOUBLE"]),
        "{r}"
    );
    for (g, got) in r["resultTable"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let members: Vec<i32> = (0..ROWS).filter(|i| row(*i).0 == g as i32).collect();
        let last = members.iter().max().unwrap();
        let first = members.iter().min().unwrap();
        assert_eq!(got[1], row(*last).2, "{r}");
        assert_eq!(got[2], row(*first).1, "{r}");
        // Small sets: the sketches count them exactly.
        let names: BTreeSet<String> = members.iter().map(|i| row(*i).2).collect();
        let tags: BTreeSet<i32> = members.iter().flat_map(|i| row(*i).3).collect();
        assert_eq!(got[3], names.len(), "{r}");
        assert_eq!(got[4], tags.len(), "{r}");
        let xs: Vec<f64> = members.iter().map(|i| f64::from(row(*i).1)).collect();
        let exact = percentile(xs, 50.0);
        assert!((got[5].as_f64().unwrap() - exact).abs() <= 1.0, "{r}");
    }
    let r = q(&e, "SELECT LASTWITHTIME(s, i, 'TEXT') FROM m").await;
    let msg = r["exceptions"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(msg.contains("lastwithtime"), "{r}");
}

/// Sample skewness and excess kurtosis straight from their definitions.
fn shape(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let m = |k: i32| values.iter().map(|v| (v - mean).powi(k)).sum::<f64>();
    let var = m(2) / (n - 1.0);
    let skew = n / ((n - 1.0) * (n - 2.0)) * m(3) / var.powf(1.5);
    let kurt = n * (n + 1.0) / ((n - 1.0) * (n - 2.0) * (n - 3.0)) * m(4) / (var * var)
        - 3.0 * (n - 1.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0));
    (skew, kurt)
}

#[tokio::test]
async fn the_remaining_distinct_counts_moments_histograms_and_sums_answer_as_computed() {
    let e = engine(AggregationRegistry::with_builtins());
    let r = ok(
        &e,
        "SELECT DISTINCTCOUNTTHETASKETCH(i), DISTINCTCOUNTTHETASKETCH(s, 'nominalEntries=16'), \
         DISTINCTCOUNTSMARTHLL(i), DISTINCTCOUNTBITMAP(s), SEGMENTPARTITIONEDDISTINCTCOUNT(x), \
         SKEWNESS(i * i), KURTOSIS(x), HISTOGRAM(x, ARRAY[0, 2, 5, 9]), \
         HISTOGRAM(i, 0, 1000, 4), SUMPRECISION(x), SUMPRECISION(i / 3.0, 6, 2), \
         PERCENTILEKLL(i, 50, 2000), PERCENTILEKLL(x, 100), VAR_POP(x), STDDEVSAMP(x) FROM m",
    )
    .await;
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnDataTypes"],
        json!([
            "LONG",
            "LONG",
            "INT",
            "INT",
            "LONG",
            "DOUBLE",
            "DOUBLE",
            "DOUBLE_ARRAY",
            "DOUBLE_ARRAY",
            "STRING",
            "STRING",
            "DOUBLE",
            "DOUBLE",
            "DOUBLE",
            "DOUBLE"
        ]),
        "{r}"
    );
    let got = &r["resultTable"]["rows"][0];
    // Below the nominal entries and the threshold: exact.
    assert_eq!(got[0], 1000, "{r}");
    assert_eq!(got[1], 7, "{r}");
    assert_eq!(got[2], 1000, "{r}");
    assert_eq!(got[3], 7, "{r}");
    assert_eq!(got[4], 10, "{r}");
    let squares: Vec<f64> = (0..ROWS).map(|i| f64::from(i) * f64::from(i)).collect();
    let xs: Vec<f64> = (0..ROWS).map(|i| f64::from(row(i).1)).collect();
    assert!(
        close(&got[5], shape(&squares).0),
        "{} vs {:?}",
        got[5],
        shape(&squares)
    );
    assert!(
        close(&got[6], shape(&xs).1),
        "{} vs {:?}",
        got[6],
        shape(&xs)
    );
    // x is 0..9, 100 rows each: [0,2) [2,5) [5,9] hold 200, 300, 500.
    assert_eq!(got[7], json!([200.0, 300.0, 500.0]), "{r}");
    assert_eq!(got[8], json!([250.0, 250.0, 250.0, 250.0]), "{r}");
    assert_eq!(got[9], "4500", "{r}");
    // Σ i/3 for i < 1000 = 499500 / 3 = 166500, to 6 digits then 2 decimals.
    assert_eq!(got[10], "166500.00", "{r}");
    // Below k (2000 here) every value is kept: the exact inclusive-rank answer.
    assert!(close(&got[11], 499.0), "{r}");
    assert!(close(&got[12], 9.0), "{r}");
    let mean = 4.5;
    let var_pop = xs.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / xs.len() as f64;
    assert!(close(&got[13], var_pop), "{r}");
    let sd = (var_pop * xs.len() as f64 / (xs.len() - 1) as f64).sqrt();
    assert!(close(&got[14], sd), "{r}");

    // Grouped: one answer per group.
    let r = ok(
        &e,
        "SELECT g, DISTINCTCOUNTTHETASKETCH(s), HISTOGRAM(x, 0, 10, 2) FROM m GROUP BY g ORDER BY g",
    )
    .await;
    let rows = r["resultTable"]["rows"].as_array().unwrap();
    for (g, got) in rows.iter().enumerate() {
        let members: Vec<i32> = (0..ROWS).filter(|i| row(*i).0 == g as i32).collect();
        let names: BTreeSet<String> = members.iter().map(|i| row(*i).2).collect();
        let low = members.iter().filter(|i| row(**i).1 < 5).count() as f64;
        assert_eq!(got[1], names.len(), "{r}");
        assert_eq!(got[2], json!([low, members.len() as f64 - low]), "{r}");
    }

    // The raw forms: the merged sketch as hex (Riffle's own bytes).
    let r = ok(
        &e,
        "SELECT DISTINCTCOUNTRAWHLL(i), DISTINCTCOUNTRAWTHETASKETCH(s), \
         PERCENTILERAWTDIGEST(x, 50), PERCENTILERAWKLL(x, 50) FROM m",
    )
    .await;
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnDataTypes"],
        json!(["STRING", "STRING", "STRING", "STRING"]),
        "{r}"
    );
    let hex: Vec<String> = (0..4)
        .map(|c| r["resultTable"]["rows"][0][c].as_str().unwrap().to_string())
        .collect();
    for h in &hex {
        assert!(!h.is_empty() && h.len() % 2 == 0, "{r}");
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()), "{r}");
    }
    // HyperLogLog: the precision (8) then 256 registers.
    assert!(
        hex[0].starts_with("08") && hex[0].len() == 2 * 257,
        "{}",
        hex[0]
    );
    // Theta: k = 16384, theta untouched, then the 7 distinct names' hashes.
    assert!(
        hex[1].starts_with("0040000000000000ffffffffffffffff"),
        "{}",
        hex[1]
    );
    assert_eq!(hex[1].len(), 32 + 7 * 16, "{}", hex[1]);

    // Filters and a set expression, as Pinot writes them.
    let r = ok(
        &e,
        "SELECT DISTINCTCOUNTTHETASKETCH(i, '', 'g = 0', 'x < 5', 'SET_INTERSECT($1, $2)'), \
         DISTINCT_COUNT_THETA_SKETCH(i, 'nominalEntries=4096', 'g = 0', 'x < 5', 'SET_UNION($1, $2)'), \
         DISTINCTCOUNTTHETASKETCH(i, '', 'G = 0', 'setDiff($0, $1)'), \
         DISTINCTCOUNTTHETASKETCH(s, '', 's = ''s1'' OR x = 0', '$1') FROM m",
    )
    .await;
    let got = &r["resultTable"]["rows"][0];
    let count = |f: &dyn Fn(i32) -> bool| (0..ROWS).filter(|i| f(*i)).count();
    assert_eq!(got[0], count(&|i| i % 3 == 0 && i % 10 < 5), "{r}");
    assert_eq!(got[1], count(&|i| i % 3 == 0 || i % 10 < 5), "{r}");
    assert_eq!(got[2], count(&|i| i % 3 != 0), "{r}");
    let names: BTreeSet<String> = (0..ROWS)
        .filter(|i| row(*i).2 == "s1" || row(*i).1 == 0)
        .map(|i| row(i).2)
        .collect();
    assert_eq!(got[3], names.len(), "{r}");

    for (sql, needle) in [
        (
            "SELECT DISTINCTCOUNTTHETASKETCH(x, '', 'g = 0', 'SET_FOO($1)') FROM m",
            "unknown set operation 'setfoo'",
        ),
        (
            "SELECT DISTINCTCOUNTTHETASKETCH(x, '', 'g = 0', 'SET_UNION($1, $2)') FROM m",
            "$2 names no filter",
        ),
        (
            "SELECT DISTINCTCOUNTTHETASKETCH(x, '', 'g = ', '$1') FROM m",
            "the filter 'g = ' is not a predicate",
        ),
        (
            "SELECT DISTINCTCOUNTTHETASKETCH(x, '', 'g = 0') FROM m",
            "a set expression",
        ),
        (
            "SELECT DISTINCTCOUNTTHETASKETCH(x, 'lgK=4') FROM m",
            "unknown parameter 'lgK'",
        ),
        (
            "SELECT DISTINCTCOUNTTHETASKETCH(x, 'nominalEntries=4') FROM m",
            "nominalEntries",
        ),
        ("SELECT HISTOGRAM(x, ARRAY[5, 1]) FROM m", "increasing"),
        (
            "SELECT HISTOGRAM(x, 10, 0, 3) FROM m",
            "greater than the lower edge",
        ),
        ("SELECT SUMPRECISION(s) FROM m", "is not a decimal number"),
        ("SELECT PERCENTILEKLL(x, 101) FROM m", "percentile"),
    ] {
        let r = q(&e, sql).await;
        let text = r["exceptions"].to_string();
        assert!(text.contains(needle), "{sql}: {text}");
    }
}
