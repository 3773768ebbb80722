//! Pinot's query semantics through the whole engine: multi-value columns and result types.

use super::*;
use serde_json::{json, Value};

const SCHEMA: &str = r#"{"schemaName":"flights",
 "dimensionFieldSpecs":[{"name":"id","dataType":"INT"},
   {"name":"airports","dataType":"STRING","singleValueField":false},
   {"name":"delays","dataType":"INT","singleValueField":false},
   {"name":"a","dataType":"INT"},{"name":"b","dataType":"INT"}]}"#;

/// id, airports, delays (empty: the default), a, b.
type Row<'a> = (i32, &'a [&'a str], &'a [i32], Option<i32>, i32);

const ROWS: &[Row] = &[
    (1, &["SEA", "PDX"], &[5, 30], Some(7), 2),
    (2, &["LAX"], &[], Some(3), 4),
    (3, &[], &[12], None, 1),
    (4, &["SEA", "SFO", "LAX"], &[0, 45, 90], Some(10), 4),
];

fn engine() -> QueryEngine {
    // Two segments: rows split between them.
    let parts = [&ROWS[..2], &ROWS[2..]];
    crate::test_support::engine_over("flights", SCHEMA, None, parts.len(), |p, bb| {
        for (id, airports, delays, a, b) in parts[p].iter() {
            bb.push_i32(0, *id);
            bb.push_list_start(1);
            for s in airports.iter() {
                bb.push_str(1, s);
            }
            bb.push_list_end(1);
            bb.push_list_start(2);
            for d in delays.iter() {
                bb.push_i32(2, *d);
            }
            bb.push_list_end(2);
            match a {
                Some(a) => bb.push_i32(3, *a),
                None => bb.push_default(3),
            }
            bb.push_i32(4, *b);
            bb.end_row();
        }
        parts[p].len()
    })
}

async fn q(sql: &str) -> Value {
    engine()
        .execute(QueryRequest {
            sql: sql.into(),
            ..Default::default()
        })
        .await
        .to_json()
}

/// The ids a filter keeps, in order.
async fn ids(filter: &str) -> Vec<i64> {
    let r = q(&format!(
        "SELECT id FROM flights WHERE {filter} ORDER BY id"
    ))
    .await;
    assert_eq!(r["exceptions"], json!([]), "{filter}: {r}");
    r["resultTable"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[0].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn test_multi_value_predicates_match_any_value_as_pinot() {
    assert_eq!(ids("airports = 'SEA'").await, [1, 4]);
    assert_eq!(ids("'LAX' = airports").await, [2, 4]);
    assert_eq!(ids("airports IN ('PDX', 'SFO')").await, [1, 4]);
    assert_eq!(ids("delays > 40").await, [4]);
    assert_eq!(ids("40 < delays").await, [4]);
    assert_eq!(
        ids("delays <= 5").await,
        [1, 2, 4],
        "row 2 holds the INT default"
    );
    assert_eq!(ids("delays BETWEEN 10 AND 40").await, [1, 3]);
    assert_eq!(ids("delays >= 44.5").await, [4]);
    // The empty list holds the default value once, as Pinot stores it.
    assert_eq!(ids("airports = 'null'").await, [3]);
    assert_eq!(ids("delays = -2147483648").await, [2]);
    // Exclusive forms: no value matches.
    assert_eq!(ids("airports <> 'SEA'").await, [2, 3]);
    assert_eq!(ids("airports NOT IN ('LAX', 'PDX')").await, [3]);
    assert_eq!(ids("delays NOT BETWEEN 0 AND 40").await, [2]);
    assert_eq!(ids("NOT (airports = 'SEA')").await, [2, 3]);
    // Combined with single-value predicates, in any case of the name.
    assert_eq!(ids("AIRPORTS = 'LAX' AND b = 4 OR id = 1").await, [1, 2, 4]);
    // A single-value column is untouched.
    assert_eq!(ids("id IN (2, 3)").await, [2, 3]);
}

#[tokio::test]
async fn test_arithmetic_and_aggregations_answer_double_as_pinot() {
    // a - b on the INT default null would wrap in INT; Pinot computes in DOUBLE.
    let r = q("SELECT a - b, a / b, 7 / 2 AS half, a % 5 AS m FROM flights WHERE id = 3").await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(
        r["resultTable"]["rows"],
        json!([[-2147483649.0, -2147483648.0, 3.5, -3.0]]),
        "{r}"
    );
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnDataTypes"],
        json!(["DOUBLE", "DOUBLE", "DOUBLE", "DOUBLE"]),
        "{r}"
    );
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnNames"],
        json!(["a - b", "a / b", "half", "m"]),
        "{r}"
    );
    let r = q(
        "SELECT SUM(b), MIN(b), MAX(b), AVG(b), COUNT(*), SUM(b) / COUNT(*) FROM flights \
         WHERE id <> 3",
    )
    .await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnDataTypes"],
        json!(["DOUBLE", "DOUBLE", "DOUBLE", "DOUBLE", "LONG", "DOUBLE"]),
        "{r}"
    );
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnNames"],
        json!([
            "sum(b)",
            "min(b)",
            "max(b)",
            "avg(b)",
            "count(*)",
            "sum(b) / count(*)"
        ]),
        "{r}"
    );
    assert_eq!(
        r["resultTable"]["rows"],
        json!([[10.0, 2.0, 4.0, 10.0 / 3.0, 3, 10.0 / 3.0]]),
        "{r}"
    );
    // Grouped, ordered by the aggregate, with HAVING on it.
    let r = q(
        "SELECT b, SUM(a) FROM flights WHERE id <> 3 GROUP BY b HAVING SUM(a) > 1 \
         ORDER BY SUM(a) DESC",
    )
    .await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(
        r["resultTable"]["rows"],
        json!([[4, 13.0], [2, 7.0]]),
        "{r}"
    );
}

/// Rows of a query, checked free of errors.
async fn rows(sql: &str) -> Value {
    let r = q(sql).await;
    assert_eq!(r["exceptions"], json!([]), "{sql}: {r}");
    r["resultTable"]["rows"].clone()
}

#[tokio::test]
async fn test_group_by_a_multi_value_column_groups_each_value_as_pinot() {
    assert_eq!(
        rows("SELECT airports, COUNT(*) FROM flights GROUP BY airports ORDER BY airports").await,
        json!([["LAX", 2], ["PDX", 1], ["SEA", 2], ["SFO", 1], ["null", 1]])
    );
    // The filter keeps whole rows: the rows holding SEA count in all their groups.
    assert_eq!(
        rows(
            "SELECT airports, COUNT(*), SUM(b) FROM flights WHERE airports = 'SEA' \
             GROUP BY airports ORDER BY COUNT(*) DESC, airports"
        )
        .await,
        json!([
            ["SEA", 2, 6.0],
            ["LAX", 1, 4.0],
            ["PDX", 1, 2.0],
            ["SFO", 1, 4.0]
        ])
    );
    // Two multi-value columns: every combination.
    assert_eq!(
        rows(
            "SELECT airports, delays, COUNT(*) FROM flights WHERE id = 1 \
             GROUP BY airports, delays ORDER BY airports, delays"
        )
        .await,
        json!([["PDX", 5, 1], ["PDX", 30, 1], ["SEA", 5, 1], ["SEA", 30, 1]])
    );
    // With a single-value column beside it, and a qualified name.
    assert_eq!(
        rows(
            "SELECT b, flights.delays, COUNT(*) FROM flights WHERE b = 4 \
             GROUP BY b, flights.delays ORDER BY delays"
        )
        .await,
        json!([[4, -2147483648, 1], [4, 0, 1], [4, 45, 1], [4, 90, 1]])
    );
}

#[tokio::test]
async fn test_explain_plan_for_answers_the_operators() {
    let r = q("EXPLAIN PLAN FOR SELECT b, COUNT(*) FROM flights WHERE airports = 'SEA' GROUP BY b")
        .await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnNames"],
        json!(["Operator", "Operator_Id", "Parent_Id"])
    );
    let rows = r["resultTable"]["rows"].as_array().unwrap();
    assert!(rows.len() >= 3, "{r}");
    assert_eq!(rows[0][1], 0);
    assert_eq!(rows[0][2], -1);
    let text: Vec<&str> = rows.iter().map(|row| row[0].as_str().unwrap()).collect();
    assert!(text.iter().any(|t| t.contains("Aggregate")), "{text:?}");
    assert!(text.iter().any(|t| t.contains("mv_any")), "{text:?}");
    // Every parent is an earlier row.
    for row in rows {
        assert!(row[2].as_i64().unwrap() < row[1].as_i64().unwrap(), "{r}");
    }
    // Nothing was scanned.
    assert_eq!(r["numDocsScanned"], 0, "{r}");
}

#[tokio::test]
async fn test_substr_is_pinots_and_substring_stays_sql() {
    let r = rows(
        "SELECT SUBSTR('LAX', 0, 2), substr('LAX', 1), SUBSTR('LAX', 1, -1), \
         SUBSTRING('LAX', 1, 2), SUBSTRING('LAX' FROM 2) FROM flights WHERE id = 1",
    )
    .await;
    assert_eq!(r, json!([["LA", "AX", "AX", "LA", "AX"]]));
}

#[tokio::test]
async fn test_valuein_and_array_functions_as_pinot() {
    // VALUEIN keeps only the listed values: groups for them alone.
    assert_eq!(
        rows(
            "SELECT VALUEIN(airports, 'SEA', 'LAX'), COUNT(*) FROM flights \
             GROUP BY VALUEIN(airports, 'SEA', 'LAX') ORDER BY COUNT(*) DESC, 1"
        )
        .await,
        json!([["LAX", 2], ["SEA", 2]])
    );
    let r = q("SELECT VALUEIN(airports, 'SEA'), COUNT(*) FROM flights \
               GROUP BY VALUEIN(airports, 'SEA')")
    .await;
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnNames"],
        json!(["valuein(airports, 'SEA')", "count(*)"]),
        "{r}"
    );
    assert_eq!(
        rows(
            "SELECT id, ARRAYLENGTH(airports), ARRAYMAX(delays), ARRAYSUM(delays), \
             ARRAYAVERAGE(delays) FROM flights WHERE id IN (1, 4) ORDER BY id"
        )
        .await,
        json!([[1, 2, 30.0, 35.0, 17.5], [4, 3, 90.0, 135.0, 45.0]])
    );
}

#[tokio::test]
async fn test_virtual_columns_as_pinot() {
    // SELECT * leaves them out.
    let r = q("SELECT * FROM flights WHERE id = 1").await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnNames"],
        json!(["id", "airports", "delays", "a", "b"]),
        "{r}"
    );
    // Named, bare as Pinot writes them, in any case; a filter on them works.
    assert_eq!(
        rows(
            "SELECT id, $docId, $segmentName, $HOSTNAME <> '' FROM flights \
             WHERE $segmentName = 'flights__1__0__20240101T0000Z' ORDER BY id"
        )
        .await,
        json!([
            [3, 0, "flights__1__0__20240101T0000Z", true],
            [4, 1, "flights__1__0__20240101T0000Z", true]
        ])
    );
    assert_eq!(
        rows("SELECT $segmentName, COUNT(*) FROM flights GROUP BY $segmentName ORDER BY 1").await,
        json!([
            ["flights__0__0__20240101T0000Z", 2],
            ["flights__1__0__20240101T0000Z", 2]
        ])
    );
    assert_eq!(
        rows("SELECT COUNT(*) FROM flights WHERE $docId = 0").await,
        json!([[2]])
    );
    // A filter the scan evaluates itself (consuming segments have no index) keeps each
    // row's own doc id.
    assert_eq!(
        rows("SELECT id, $docId FROM flights WHERE id >= 2 ORDER BY id").await,
        json!([[2, 1], [3, 0], [4, 1]])
    );
}

#[tokio::test]
async fn test_pushed_filters_leave_no_filter_above_the_scan() {
    let r = q("EXPLAIN PLAN FOR SELECT id FROM flights WHERE id >= 2 AND a = 7").await;
    let plan = r["resultTable"]["rows"].to_string();
    assert!(plan.contains("SegmentScanExec"), "{plan}");
    assert!(!plan.contains("FilterExec"), "{plan}");
    // A filter the segments cannot take stays above.
    let r = q("EXPLAIN PLAN FOR SELECT id FROM flights WHERE id + 1 >= 2").await;
    assert!(
        r["resultTable"]["rows"].to_string().contains("FilterExec"),
        "{r}"
    );
    // Answers are the same either way.
    assert_eq!(
        rows("SELECT COUNT(*) FROM flights WHERE id >= 2").await,
        rows("SELECT COUNT(*) FROM flights WHERE id * 2 >= 4").await
    );
}
