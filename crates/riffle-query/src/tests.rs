use super::*;
use riffle_common::PartitionId;
use riffle_segment::{BlockBuilder, ConsumingSegment, SegmentRef};
use serde_json::json;

const SCHEMA: &str = r#"{"schemaName":"transcript",
 "dimensionFieldSpecs":[{"name":"studentID","dataType":"INT"},{"name":"firstName","dataType":"STRING"},
   {"name":"subject","dataType":"STRING"},{"name":"doc","dataType":"JSON"}],
 "metricFieldSpecs":[{"name":"score","dataType":"FLOAT"}],
 "dateTimeFieldSpecs":[{"name":"ts","dataType":"TIMESTAMP","format":"1:MILLISECONDS:EPOCH","granularity":"1:MILLISECONDS"}]}"#;

/// Two consuming segments (partitions 0 and 1) and one empty one.
fn engine() -> QueryEngine {
    engine_named("transcript")
}

/// The same table under another name.
fn engine_named(table: &str) -> QueryEngine {
    type Row<'a> = (i32, &'a str, &'a str, f32, i64);
    let rows: [&[Row]; 3] = [
        &[
            (205, "Natalie", "Maths", 3.8, 1_571_900_400_000),
            (205, "Natalie", "History", 3.5, 1_571_900_400_000),
            (207, "Bob", "Maths", 3.2, 1_571_900_400_000),
        ],
        &[
            (207, "Bob", "Chemistry", 3.6, 1_572_418_800_000),
            (209, "Jane", "Maths", 3.2, 1_572_678_000_000),
        ],
        &[],
    ];
    crate::test_support::engine_over(table, SCHEMA, Some("ts"), rows.len(), |p, b| {
        for (id, name, subject, score, ts) in rows[p].iter() {
            b.push_i32(0, *id);
            b.push_str(1, name);
            b.push_str(2, subject);
            b.push_str(3, r#"{"a":1}"#);
            b.push_f32(4, *score);
            b.push_timestamp(5, *ts);
            b.end_row();
        }
        rows[p].len()
    })
}

async fn q(sql: &str) -> serde_json::Value {
    engine()
        .execute(QueryRequest {
            sql: sql.into(),
            options: BTreeMap::new(),
            ..Default::default()
        })
        .await
        .to_json()
}

#[tokio::test]
async fn test_count_and_stats() {
    let r = q("SELECT COUNT(*) FROM transcript").await;
    assert_eq!(r["exceptions"], json!([]));
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnNames"],
        json!(["count(*)"])
    );
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnDataTypes"],
        json!(["LONG"])
    );
    assert_eq!(r["resultTable"]["rows"], json!([[5]]));
    assert_eq!(r["totalDocs"], 5);
    assert_eq!(r["numDocsScanned"], 5);
    assert_eq!(r["numSegmentsQueried"], 3);
    assert_eq!(r["numSegmentsProcessed"], 2);
    assert_eq!(r["numSegmentsMatched"], 2);
    assert_eq!(r["numSegmentsPrunedByServer"], 1);
    assert_eq!(r["numConsumingSegmentsQueried"], 3);
    assert_eq!(r["minConsumingFreshnessTimeMs"], 1_000);
    assert_eq!(r["numServersQueried"], 1);
    assert_eq!(r["numServersResponded"], 1);
    assert_eq!(r["tablesQueried"], json!(["transcript"]));
}

#[tokio::test]
async fn test_filter_stats_count_matches() {
    let r = q("SELECT studentID, score FROM transcript WHERE subject = 'Chemistry'").await;
    assert_eq!(r["resultTable"]["rows"], json!([[207, 3.6]]));
    assert_eq!(r["numDocsScanned"], 1);
    assert_eq!(r["numSegmentsMatched"], 1);
    assert_eq!(r["numConsumingSegmentsMatched"], 1);
    assert_eq!(r["numEntriesScannedInFilter"], 5);
    assert_eq!(r["totalDocs"], 5);
}

#[tokio::test]
async fn test_group_by_avg_names_like_pinot() {
    let r = q("select subject, AVG(score) from transcript group by subject order by subject").await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnNames"],
        json!(["subject", "avg(score)"])
    );
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnDataTypes"],
        json!(["STRING", "DOUBLE"])
    );
    let rows = r["resultTable"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2][0], "Maths");
    let avg = rows[2][1].as_f64().unwrap();
    assert!((avg - (3.8 + 3.2 + 3.2) / 3.0).abs() < 1e-6, "{avg}");
}

#[tokio::test]
async fn test_default_limit_and_types() {
    let r = q(r#"SELECT "firstName", ts, doc FROM transcript ORDER BY ts, "firstName""#).await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnDataTypes"],
        json!(["STRING", "TIMESTAMP", "JSON"])
    );
    assert_eq!(
        r["resultTable"]["rows"][0],
        json!(["Bob", "2019-10-24 07:00:00.0", "{\"a\":1}"])
    );
    // The default LIMIT 10 applies to selections without LIMIT.
    let engine = engine();
    let data = engine.segments.table("transcript").unwrap();
    let cols = data.columns();
    let seg = Arc::new(ConsumingSegment::new(
        "big".into(),
        PartitionId(9),
        0,
        "0".into(),
        0,
        cols.clone(),
    ));
    let mut b = BlockBuilder::new(cols, 32);
    for _ in 0..25 {
        b.end_row();
    }
    seg.append(Some(b.finish().unwrap()), 25.into(), 25, None, 1)
        .unwrap();
    data.put_segment(SegmentRef::Consuming(seg));
    let r = engine
        .execute(QueryRequest {
            sql: "SELECT * FROM transcript".into(),
            options: BTreeMap::new(),
            ..Default::default()
        })
        .await
        .to_json();
    assert_eq!(r["numRowsResultSet"], 10);
    let r = engine
        .execute(QueryRequest {
            sql: "SELECT * FROM transcript LIMIT 100".into(),
            options: BTreeMap::new(),
            ..Default::default()
        })
        .await
        .to_json();
    assert_eq!(r["numRowsResultSet"], 30);
}

#[tokio::test]
async fn test_errors_have_pinot_codes() {
    let r = q("SELECT COUNT(*) FROM nosuch").await;
    assert_eq!(r["exceptions"][0]["errorCode"], 190);
    assert_eq!(r["exceptions"][0]["message"], "TableDoesNotExistError");
    assert!(r.get("resultTable").is_none());
    assert_eq!(r["numServersQueried"], 1);
    assert_eq!(r["totalDocs"], 0);
    let r = q("SELECT nosuch FROM transcript").await;
    assert_eq!(r["exceptions"][0]["errorCode"], 710, "{r}");
    assert!(r["exceptions"][0]["message"]
        .as_str()
        .unwrap()
        .contains("nosuch"));
    let r = q("SELEC * FRM transcript").await;
    assert_eq!(r["exceptions"][0]["errorCode"], 150);
    let r = q("DELETE FROM transcript").await;
    assert_eq!(r["exceptions"][0]["errorCode"], 150);
}

#[tokio::test]
async fn test_set_option_and_table_suffix() {
    let r = q("SET timeoutMs = 1000; SET useMultistageEngine=false; SELECT count(*) FROM transcript_REALTIME OPTION(preserveType='true')").await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(r["resultTable"]["rows"], json!([[5]]));
    let r = q("select COUNT(*) from TRANSCRIPT where \"studentID\" > 206").await;
    assert_eq!(r["resultTable"]["rows"], json!([[3]]), "{r}");
}

#[test]
fn test_query_options_parse() {
    let o = parse_query_options("timeoutMs=10; useMultistageEngine = true;;bad");
    assert_eq!(o.get("timeoutMs").map(String::as_str), Some("10"));
    assert_eq!(
        o.get("useMultistageEngine").map(String::as_str),
        Some("true")
    );
    assert_eq!(o.len(), 2);
}

#[tokio::test]
async fn test_cast_to_timestamp_reads_millis_and_floats_print_short() {
    let r = q("SELECT CAST(1571900400000 AS TIMESTAMP), DATE_TRUNC('day', CAST(ts AS TIMESTAMP)), score FROM transcript WHERE studentID = 209").await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(r["resultTable"]["rows"][0][0], "2019-10-24 07:00:00.0");
    assert_eq!(r["resultTable"]["rows"][0][1], "2019-11-02 00:00:00.0");
    assert_eq!(r["resultTable"]["rows"][0][2], json!(3.2));
}

/// Pinot compares a TIMESTAMP column with epoch milliseconds written as a bare number
/// (dashboards write their time filters so); DataFusion alone refuses to compare a timestamp
/// with an integer.
#[tokio::test]
async fn test_timestamp_compares_with_epoch_millis_literals() {
    let cases = [
        ("ts > 1571900400000", 2),
        ("1571900400000 < ts", 2),
        ("ts = 1571900400000", 3),
        ("ts <> 1571900400000", 2),
        ("ts >= 1572418800000 AND ts <= 1572678000000", 2),
        ("ts BETWEEN 1572000000000 AND 1572500000000", 1),
        ("ts NOT BETWEEN 1572000000000 AND 1572500000000", 4),
        ("ts IN (1572678000000, 1572418800000)", 2),
        ("ts NOT IN (1572678000000)", 4),
        ("ts > 1571900400000.0", 2),
        ("ts > '2019-10-25 00:00:00'", 2),
        ("ts > CAST(1571900400000 AS TIMESTAMP)", 2),
    ];
    for (filter, want) in cases {
        let r = q(&format!("SELECT COUNT(*) FROM transcript WHERE {filter}")).await;
        assert_eq!(r["exceptions"], json!([]), "{filter}: {r}");
        assert_eq!(r["resultTable"]["rows"], json!([[want]]), "{filter}: {r}");
    }
    // Other integer comparisons are untouched.
    let r = q("SELECT COUNT(*) FROM transcript WHERE studentID > 206").await;
    assert_eq!(r["resultTable"]["rows"], json!([[3]]), "{r}");
}

/// `timeoutMs` (Pinot's query option, from `SET`, `OPTION(...)` or `queryOptions`) stops a
/// query that runs longer, with Pinot's execution-timeout error; a value that is not a
/// positive number of milliseconds is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_timeout_ms_stops_a_long_query() {
    // A cross join of ten copies of the five rows: 9,765,625 rows, each summed over its ten
    // ids (a bare COUNT(*) would be answered from the row counts alone).
    let from: Vec<String> = (0..10).map(|i| format!("transcript t{i}")).collect();
    let ids: Vec<String> = (0..10).map(|i| format!("t{i}.studentID")).collect();
    let slow = format!("SELECT SUM({}) FROM {}", ids.join(" + "), from.join(", "));
    let started = std::time::Instant::now();
    let r = q(&format!("SET timeoutMs = 50; {slow}")).await;
    assert_eq!(r["exceptions"][0]["errorCode"], 250, "{r}");
    assert!(
        r["exceptions"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("ExecutionTimeoutError: the query did not finish within timeoutMs=50"),
        "{r}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let r = engine()
        .execute(QueryRequest {
            sql: slow.clone(),
            options: parse_query_options("timeoutMs=20"),
            ..Default::default()
        })
        .await
        .to_json();
    assert_eq!(r["exceptions"][0]["errorCode"], 250, "{r}");
    let r = q("SELECT COUNT(*) FROM transcript OPTION(timeoutMs=soon)").await;
    assert_eq!(r["exceptions"][0]["errorCode"], 700, "{r}");
    // Within the limit (here the default), the answer is whole.
    let r = q("SELECT COUNT(*) FROM transcript a, transcript b").await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(r["resultTable"]["rows"], json!([[25]]));
}

async fn q_on(e: &QueryEngine, sql: &str) -> serde_json::Value {
    e.execute(QueryRequest {
        sql: sql.into(),
        ..Default::default()
    })
    .await
    .to_json()
}

#[tokio::test]
async fn test_table_and_column_names_in_any_case() {
    // A table whose name has capitals (Pinot's `airlineStats`), named in any case.
    let e = engine_named("airlineStats");
    for sql in [
        "SELECT COUNT(*) FROM airlineStats",
        "SELECT COUNT(*) FROM airlinestats",
        "SELECT COUNT(*) FROM \"AIRLINESTATS_REALTIME\"",
    ] {
        let r = q_on(&e, sql).await;
        assert_eq!(r["exceptions"], json!([]), "{sql}: {r}");
        assert_eq!(r["resultTable"]["rows"], json!([[5]]), "{sql}");
        assert_eq!(r["tablesQueried"], json!(["airlineStats"]), "{sql}");
    }
    // Columns in any case, quoted or not, in every clause.
    let r = q_on(
        &e,
        "SELECT FIRSTNAME, count(*) AS n FROM airlinestats WHERE Subject = 'Maths' \
         GROUP BY \"firstname\" ORDER BY n DESC, FirstName",
    )
    .await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(
        r["resultTable"]["rows"],
        json!([["Bob", 1], ["Jane", 1], ["Natalie", 1]])
    );
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnNames"],
        json!(["firstName", "n"])
    );
    // An alias keeps its meaning even when a column has the same name in another case.
    let r = q_on(
        &e,
        "SELECT studentid AS Score FROM airlineStats ORDER BY Score DESC LIMIT 1",
    )
    .await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(r["resultTable"]["rows"], json!([[209]]));
    // A name that is no column in any case is still an unknown column.
    let r = q_on(&e, "SELECT nosuch FROM airlineStats").await;
    assert_eq!(r["exceptions"][0]["errorCode"], 710, "{r}");
}

#[tokio::test]
async fn test_a_repeated_select_expression_answers_twice() {
    let r = q(
        "SELECT COUNT(*), subject, COUNT(*), MAX(score), max(score) FROM transcript \
               GROUP BY subject ORDER BY subject",
    )
    .await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnNames"],
        json!([
            "count(*)",
            "subject",
            "count(*)",
            "max(score)",
            "max(score)"
        ])
    );
    let rows = r["resultTable"]["rows"].as_array().unwrap();
    assert_eq!(rows[2][0], 3);
    assert_eq!(rows[2][2], 3);
    assert_eq!(rows[2][3], rows[2][4]);
}

#[tokio::test]
async fn test_cast_takes_pinot_type_names() {
    // (Aliased: DataFusion names a cast after its column, so two casts of one column
    // would clash.)
    let r = q(
        "SELECT CAST(score AS LONG) a, CAST(studentID AS STRING) b, \
               CAST(studentID AS DOUBLE) c, CAST(firstName AS BYTES) d, \
               CAST(score AS BIG_DECIMAL) e, CAST(doc AS JSON) f \
               FROM transcript WHERE studentID = 209",
    )
    .await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnDataTypes"],
        json!(["LONG", "STRING", "DOUBLE", "BYTES", "BIG_DECIMAL", "JSON"]),
        "{r}"
    );
    let row = &r["resultTable"]["rows"][0];
    assert_eq!(row[0], 3, "{r}");
    assert_eq!(row[1], "209");
    assert_eq!(row[2], 209.0);
    assert_eq!(row[3], "4a616e65"); // "Jane" as hex, Pinot's BYTES encoding
}

#[tokio::test]
async fn test_where_may_name_a_select_alias() {
    let r = q("SELECT studentID, score * 10 AS tenfold FROM transcript \
               WHERE tenfold > 35 AND Subject = 'Maths' ORDER BY studentID")
    .await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    // Pinot computes in DOUBLE from the FLOAT 3.8 (3.799999952316284), as here.
    assert_eq!(
        r["resultTable"]["rows"],
        json!([[205, f64::from(3.8f32) * 10.0]]),
        "{r}"
    );
    // A column wins over an alias of the same name.
    let r = q("SELECT studentID AS score FROM transcript WHERE score > 3.5 ORDER BY 1").await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(r["resultTable"]["rows"], json!([[205], [207]]), "{r}");
}

/// Superset's Pinot time grains (superset/db_engine_specs/pinot.py), on `ts` of the row at
/// 2019-11-02 07:00:00 UTC (a Saturday), 07:03:20 for the sub-hour grains.
#[tokio::test]
async fn test_superset_time_grains_answer_as_in_pinot() {
    let e = engine();
    let grain =
        |unit: &str| format!("CAST(DATE_TRUNC('{unit}', CAST(ts AS TIMESTAMP)) AS TIMESTAMP)");
    let round = |m: u32| {
        format!("CAST(ROUND(DATE_TRUNC('minute', CAST(ts AS TIMESTAMP)), {m}) AS TIMESTAMP)")
    };
    let cases = [
        (grain("second"), "2019-11-02 07:00:00.0"),
        (grain("minute"), "2019-11-02 07:00:00.0"),
        (round(300_000), "2019-11-02 07:00:00.0"),
        (round(600_000), "2019-11-02 07:00:00.0"),
        (round(900_000), "2019-11-02 07:00:00.0"),
        (round(1_800_000), "2019-11-02 07:00:00.0"),
        (grain("hour"), "2019-11-02 07:00:00.0"),
        (grain("day"), "2019-11-02 00:00:00.0"),
        (grain("week"), "2019-10-28 00:00:00.0"),
        (grain("month"), "2019-11-01 00:00:00.0"),
        (grain("quarter"), "2019-10-01 00:00:00.0"),
        (grain("year"), "2019-01-01 00:00:00.0"),
    ];
    for (expr, want) in &cases {
        let r = q_on(
            &e,
            &format!("SELECT {expr} AS g FROM transcript WHERE studentID = 209"),
        )
        .await;
        assert_eq!(r["exceptions"], json!([]), "{expr}: {r}");
        assert_eq!(r["resultTable"]["rows"][0][0], *want, "{expr}");
        assert_eq!(
            r["resultTable"]["dataSchema"]["columnDataTypes"][0], "TIMESTAMP",
            "{expr}"
        );
    }
    // ROUND on a number floors to the multiple (Pinot), not to decimal places.
    let r = q_on(
        &e,
        "SELECT ROUND(studentID * 1000 + 777, 500) AS r FROM transcript WHERE studentID = 209",
    )
    .await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(r["resultTable"]["rows"][0][0], 209_500, "{r}");
    assert_eq!(
        r["resultTable"]["dataSchema"]["columnDataTypes"][0], "LONG",
        "{r}"
    );
}

#[tokio::test]
async fn test_names_shared_with_datafusion_answer_as_in_pinot() {
    let r = q(
        "SELECT LOG(EXP(2.0)) AS l, STRPOS(firstName, 'li') AS p, STRPOS(firstName, 'z') AS z, \
               REGEXP_REPLACE(firstName, 'a', '_') AS r FROM transcript \
               WHERE studentID = 205 AND subject = 'Maths'",
    )
    .await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(
        r["resultTable"]["rows"],
        json!([[2.0, 4, -1, "N_t_lie"]]),
        "{r}"
    );
}

#[tokio::test]
async fn test_timestamps_are_epoch_millis_in_arithmetic_and_comparisons() {
    let r = q("SELECT ts - 86400000, ts + 1 - ts FROM transcript WHERE studentID = 209").await;
    assert_eq!(r["exceptions"], json!([]), "{r}");
    assert_eq!(
        r["resultTable"]["rows"],
        json!([[1_572_678_000_000.0 - 86_400_000.0, 1.0]]),
        "{r}"
    );
    for (filter, n) in [
        ("ts > ago('PT1H')", 0),
        ("ts > ago('P5000D')", 5),
        ("ts >= 1572678000000 - 1", 1),
        ("ts > fromepochdays(18200)", 1),
        ("ts > now() - 3600000", 0),
        ("ts - 1000 < 1571900400000", 3),
    ] {
        let r = q(&format!("SELECT COUNT(*) FROM transcript WHERE {filter}")).await;
        assert_eq!(r["exceptions"], json!([]), "{filter}: {r}");
        assert_eq!(r["resultTable"]["rows"], json!([[n]]), "{filter}: {r}");
    }
}
