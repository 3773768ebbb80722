//! Hand-worked values: 1613472303123 is 2021-02-16T10:45:03.123Z, a Tuesday of ISO week 7.

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, TimestampMillisecondArray};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::prelude::SessionContext;

use super::*;

const MS: i64 = 1_613_472_303_123;

fn session() -> SessionContext {
    let ctx = SessionContext::new();
    for f in functions() {
        ctx.register_udf(f);
    }
    let batch = RecordBatch::try_from_iter(vec![
        (
            "ms",
            Arc::new(Int64Array::from(vec![Some(MS), None])) as ArrayRef,
        ),
        (
            "ts",
            Arc::new(TimestampMillisecondArray::from(vec![Some(MS), None])) as ArrayRef,
        ),
    ])
    .unwrap();
    ctx.register_batch("t", batch).unwrap();
    ctx
}

/// The first row's value of each expression, as text.
async fn first_row(ctx: &SessionContext, exprs: &[&str]) -> Vec<String> {
    let sql = format!("SELECT {} FROM t", exprs.join(", "));
    let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
    let b = &batches[0];
    (0..b.num_columns())
        .map(|c| array_value_to_string(b.column(c), 0).unwrap())
        .collect()
}

async fn check(ctx: &SessionContext, cases: &[(&str, &str)]) {
    let exprs: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let got = first_row(ctx, &exprs).await;
    for ((e, want), got) in cases.iter().zip(got) {
        assert_eq!(got, *want, "{e}");
    }
}

#[tokio::test]
async fn epoch_conversions() {
    let ctx = session();
    check(
        &ctx,
        &[
            ("toepochseconds(ms)", "1613472303"),
            ("toepochminutes(ms)", "26891205"),
            ("toepochhours(ms)", "448186"),
            ("toepochdays(ms)", "18674"),
            ("toepochdays(ts)", "18674"),
            ("toepochminutesrounded(ms, 10)", "26891200"),
            ("toepochminutesbucket(ms, 15)", "1792747"),
            ("fromepochdays(18674)", "1613433600000"),
            ("fromepochseconds(1613472303)", "1613472303000"),
            ("fromepochminutesbucket(1792747, 15)", "1613472300000"),
            ("timeconvert(ms, 'MILLISECONDS', 'HOURS')", "448186"),
            ("timeconvert(18674, 'DAYS', 'SECONDS')", "1613433600"),
        ],
    )
    .await;
}

#[tokio::test]
async fn datetrunc_in_units_and_zones() {
    let ctx = session();
    check(
        &ctx,
        &[
            ("datetrunc('day', ms)", "1613433600000"),
            ("datetrunc('DAY', ts)", "1613433600000"),
            ("datetrunc('hour', ms)", "1613469600000"),
            ("datetrunc('week', ms)", "1613347200000"),
            ("datetrunc('month', ms)", "1612137600000"),
            ("datetrunc('quarter', ms)", "1609459200000"),
            ("datetrunc('year', ms)", "1609459200000"),
            ("datetrunc('second', ms)", "1613472303000"),
            ("datetrunc('week', 18674, 'DAYS')", "18673"),
            (
                "datetrunc('hour', ms, 'MILLISECONDS', 'UTC', 'SECONDS')",
                "1613469600",
            ),
            (
                "datetrunc('day', ms, 'MILLISECONDS', '+05:30')",
                "1613413800000",
            ),
            (
                "datetrunc('day', ms, 'MILLISECONDS', 'America/Los_Angeles')",
                "1613462400000",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn datetimeconvert_as_pinot_and_grafana_write_it() {
    let ctx = session();
    check(
        &ctx,
        &[
            (
                "datetimeconvert(ms, '1:MILLISECONDS:EPOCH', '1:MINUTES:EPOCH', '15:MINUTES')",
                "26891205",
            ),
            (
                "datetimeconvert(ms, '1:MILLISECONDS:EPOCH', '1:DAYS:SIMPLE_DATE_FORMAT:yyyy-MM-dd', '1:DAYS')",
                "2021-02-16",
            ),
            (
                "datetimeconvert('2021-02-16 10:45:03', '1:SECONDS:SIMPLE_DATE_FORMAT:yyyy-MM-dd HH:mm:ss', '1:MILLISECONDS:EPOCH', '1:HOURS')",
                "1613469600000",
            ),
            // Grafana's $__timeGroup on a TIMESTAMP column.
            (
                "datetimeconvert(ts, '1:SECONDS:TIMESTAMP', '1:MILLISECONDS:EPOCH', '15:SECONDS')",
                "1613472300000",
            ),
            (
                "datetimeconvert(ms, 'EPOCH|MILLISECONDS|1', 'EPOCH|HOURS|1', '1:HOURS')",
                "448186",
            ),
            (
                "datetimeconvert(ms, '1:MILLISECONDS:EPOCH', '1:HOURS:SIMPLE_DATE_FORMAT:yyyy-MM-dd HH tz(+05:30)', '1:HOURS')",
                "2021-02-16 16",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn patterns_and_fields() {
    let ctx = session();
    check(
        &ctx,
        &[
            ("todatetime(ms, 'yyyy-MM-dd''T''HH:mm:ss.SSS')", "2021-02-16T10:45:03.123"),
            ("todatetime(ms, 'yyyy/MM/dd HH:mm', '+01:00')", "2021/02/16 11:45"),
            ("fromdatetime('2021-02-16T10:45:03.123', 'yyyy-MM-dd''T''HH:mm:ss.SSS')", "1613472303123"),
            ("fromdatetime('2021-02-16', 'yyyy-MM-dd')", "1613433600000"),
            ("fromdatetime('20210216', 'yyyyMMdd')", "1613433600000"),
            (
                "datetimeconvert(20210216, '1:DAYS:SIMPLE_DATE_FORMAT:yyyyMMdd', '1:DAYS:EPOCH', '1:DAYS')",
                "18674",
            ),
            ("year(ms)", "2021"),
            ("quarter(ms)", "1"),
            ("month(ts)", "2"),
            ("week(ms)", "7"),
            ("dayofyear(ms)", "47"),
            ("day(ms)", "16"),
            ("dayofweek(ms)", "2"),
            ("yearofweek(ms)", "2021"),
            ("hour(ms)", "10"),
            ("hour(ms, '+05:30')", "16"),
            ("minute(ms)", "45"),
            ("second(ms)", "3"),
            ("millisecond(ms)", "123"),
        ],
    )
    .await;
}

#[tokio::test]
async fn nulls_stay_null_and_ago_is_now_minus_the_duration() {
    let ctx = session();
    let batches = ctx
        .sql("SELECT toepochdays(ms), datetrunc('day', ts), year(ms) FROM t")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    for c in 0..3 {
        assert!(batches[0].column(c).is_null(1), "column {c}");
    }
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let got: i64 = first_row(&ctx, &["ago('PT1H')"]).await[0].parse().unwrap();
    assert!((got - (before - 3_600_000)).abs() < 60_000, "{got}");
    let got: i64 = first_row(&ctx, &["ago('P1DT0.5S')"]).await[0]
        .parse()
        .unwrap();
    assert!((got - (before - 86_400_500)).abs() < 60_000, "{got}");
}

#[tokio::test]
async fn bad_literals_are_errors_that_name_the_function() {
    let ctx = session();
    for (sql, needle) in [
        ("SELECT datetrunc('fortnight', ms) FROM t", "datetrunc"),
        (
            "SELECT datetimeconvert(ms, 'bad', '1:DAYS:EPOCH', '1:DAYS') FROM t",
            "datetimeconvert",
        ),
        (
            "SELECT datetimeconvert(ms, '1:MILLISECONDS:EPOCH', '1:DAYS:EPOCH', '0:DAYS') FROM t",
            "datetimeconvert",
        ),
        (
            "SELECT todatetime(ms, 'yyyy-MM-dd', 'Mars/Olympus') FROM t",
            "todatetime",
        ),
        ("SELECT todatetime(ms, 'yyyy-QQ') FROM t", "todatetime"),
        (
            "SELECT toepochminutesbucket(ms, 0) FROM t",
            "toepochminutesbucket",
        ),
        (
            "SELECT timeconvert(ms, 'FORTNIGHTS', 'DAYS') FROM t",
            "timeconvert",
        ),
        ("SELECT ago('one hour') FROM t", "ago"),
        ("SELECT year(ms, ms) FROM t", "year"),
        ("SELECT datetrunc(ms) FROM t", "datetrunc"),
    ] {
        let r = match ctx.sql(sql).await {
            Ok(df) => df.collect().await.map(|_| ()),
            Err(e) => Err(e),
        };
        let e = r.expect_err(sql).to_string();
        assert!(e.contains(needle), "{sql}: {e}");
    }
    // A text that does not read as the pattern is null, not an error.
    let got = first_row(&ctx, &["fromdatetime('not a date', 'yyyy-MM-dd')"]).await;
    assert_eq!(got[0], "");
}

#[test]
fn dateadd_and_datediff_follow_the_calendar() {
    // 2021-01-31T00:00Z
    let jan31 = 1_612_051_200_000;
    let feb28 = jan31 + 28 * 86_400_000;
    assert_eq!(date_add("month", 1, jan31), Some(feb28));
    assert_eq!(date_add("MONTHS", -1, feb28), Some(jan31 - 3 * 86_400_000)); // Jan 28
    assert_eq!(date_add("day", 2, MS), Some(MS + 2 * 86_400_000));
    assert_eq!(date_add("year", 1, jan31), Some(1_643_587_200_000)); // 2022-01-31
    assert_eq!(date_add("fortnight", 1, MS), None);
    assert_eq!(date_diff("day", jan31, feb28), Some(28));
    assert_eq!(date_diff("day", feb28, jan31), Some(-28));
    assert_eq!(date_diff("hour", MS, MS + 3_599_999), Some(0));
    // As Joda counts: a month added to January 31 lands on February 28.
    assert_eq!(date_diff("month", jan31, feb28), Some(1));
    assert_eq!(date_diff("month", jan31, feb28 - 1), Some(0));
    assert_eq!(date_diff("month", jan31, 1_614_556_800_000), Some(1)); // 2021-03-01
    assert_eq!(date_diff("year", jan31, 1_643_587_200_000), Some(1));
    assert_eq!(date_diff("quarter", 1_643_587_200_000, jan31), Some(-4));
}

#[tokio::test]
async fn dateadd_and_datediff_through_sql() {
    let ctx = session();
    check(
        &ctx,
        &[
            ("dateadd('day', 1, ms)", "1613558703123"),
            ("date_add('hour', -1, ts)", "1613468703123"),
            ("datediff('minute', ms, ms + 3600000)", "60"),
        ],
    )
    .await;
    let r = match ctx.sql("SELECT dateadd('eon', 1, ms) FROM t").await {
        Ok(df) => df.collect().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(r.expect_err("unknown unit").to_string().contains("dateadd"));
}

#[test]
fn datetrunc_in_utc_by_arithmetic_equals_the_calendar() {
    let times = [
        MS,
        0,
        -1,
        -86_400_001,
        1_700_000_000_000,
        -62_000_000_000_000,
        253_402_300_799_999,
    ];
    for unit in [
        "millisecond",
        "second",
        "minute",
        "hour",
        "day",
        "week",
        "DAYS",
        "Weeks",
    ] {
        let lits = [Some(ScalarValue::Utf8(Some(unit.into()))), None];
        let plan = datetrunc("datetrunc", &lits).unwrap();
        for t in times
            .iter()
            .copied()
            .chain((0..500).map(|i| i * 7_919_333_121 - 1_000_000_000_000))
        {
            let want = truncate(&unit.to_ascii_lowercase(), t, &Tz::utc()).unwrap();
            match plan(In::Long(t)) {
                Some(Out::Long(got)) => assert_eq!(got, want, "{unit} of {t}"),
                other => panic!("{unit} of {t}: {other:?}"),
            }
        }
    }
}
