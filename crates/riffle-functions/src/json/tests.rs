//! JSON paths and functions against hand-worked documents.

use super::*;
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::prelude::SessionContext;

fn session() -> SessionContext {
    let ctx = SessionContext::new();
    for f in functions() {
        ctx.register_udf(f);
    }
    let docs = StringArray::from(vec![
        Some(
            r#"{"a":{"b":7,"s":"x","f":2.5,"ok":true},"arr":[1,2,3],"tags":["p","q"],"o":{"k":1}}"#,
        ),
        Some(r#"{"a":{"b":"9"},"arr":[],"tags":"solo"}"#),
        Some("not json"),
        None,
    ]);
    let batch = RecordBatch::try_from_iter(vec![("j", Arc::new(docs) as ArrayRef)]).unwrap();
    ctx.register_batch("t", batch).unwrap();
    ctx
}

async fn column(ctx: &SessionContext, expr: &str) -> Vec<String> {
    let b = ctx
        .sql(&format!("SELECT {expr} FROM t"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let a = b[0].column(0);
    (0..a.len())
        .map(|i| {
            if a.is_null(i) {
                "NULL".to_string()
            } else {
                array_value_to_string(a, i).unwrap()
            }
        })
        .collect()
}

#[test]
fn paths_parse_and_bad_ones_say_why() {
    assert_eq!(
        parse_path("$.a['b c'][0][*].*").unwrap(),
        [
            Step::Key("a".into()),
            Step::Key("b c".into()),
            Step::Index(0),
            Step::All,
            Step::All
        ]
    );
    assert_eq!(parse_path("$").unwrap(), []);
    for bad in ["a.b", "$.", "$[x]", "$['a'", "$.a]"] {
        assert!(parse_path(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn json_functions_as_pinot_answers_them() {
    let ctx = session();
    assert_eq!(
        column(&ctx, "jsonextractscalar(j, '$.a.b', 'INT', '-1')").await,
        ["7", "9", "-1", "-1"]
    );
    assert_eq!(
        column(&ctx, "jsonextractscalar(j, '$.a.s', 'STRING', 'none')").await,
        ["x", "none", "none", "none"]
    );
    assert_eq!(
        column(&ctx, "jsonextractscalar(j, '$.a', 'JSON', '{}')").await,
        [
            r#"{"b":7,"s":"x","f":2.5,"ok":true}"#,
            r#"{"b":"9"}"#,
            "{}",
            "{}"
        ]
    );
    assert_eq!(
        column(&ctx, "jsonextractscalar(j, '$.arr[*]', 'INT_ARRAY', '[]')").await[0],
        "[1, 2, 3]"
    );
    assert_eq!(
        column(&ctx, "jsonextractscalar(j, '$.arr[-1]', 'LONG', '0')").await,
        ["3", "0", "0", "0"]
    );
    assert_eq!(
        column(&ctx, "jsonpathstring(j, '$.a.b')").await,
        ["7", "9", "NULL", "NULL"]
    );
    assert_eq!(
        column(&ctx, "jsonpathlong(j, '$.a.b')").await,
        ["7", "9", "-9223372036854775808", "-9223372036854775808"]
    );
    assert_eq!(
        column(&ctx, "jsonpathdouble(j, '$.a.f')").await,
        ["2.5", "NaN", "NaN", "NaN"]
    );
    assert_eq!(
        column(&ctx, "jsonpathdouble(j, '$.a.f', '0.5')").await,
        ["2.5", "0.5", "0.5", "0.5"]
    );
    assert_eq!(
        column(&ctx, "jsonpatharray(j, '$.tags')").await,
        ["[p, q]", "[solo]", "NULL", "NULL"]
    );
    assert_eq!(
        column(&ctx, "jsonpatharraydefaultempty(j, '$.nothing')").await,
        ["[]", "[]", "[]", "[]"]
    );
    // Pinot's JSON filter on each row; not JSON or NULL: false.
    assert_eq!(
        column(&ctx, "json_match(j, '\"$.a.b\" = 7')").await,
        ["true", "false", "false", "false"]
    );
    assert_eq!(
        column(
            &ctx,
            "json_match(j, '\"$.a.b\" = ''9'' OR \"$.arr[*]\" IN (2, 5)')"
        )
        .await,
        ["true", "true", "false", "false"]
    );
    assert_eq!(
        column(
            &ctx,
            "json_match(j, '\"$.a.f\" > 2 AND \"$.o.k\" IS NOT NULL')"
        )
        .await,
        ["true", "false", "false", "false"]
    );
    assert_eq!(
        column(
            &ctx,
            "json_match(j, 'NOT (\"$.tags[*]\" = ''p'') AND \"$.a\" IS NOT NULL')"
        )
        .await,
        ["false", "true", "false", "false"]
    );
    assert_eq!(
        column(&ctx, "json_match(j, 'REGEXP_LIKE(\"$.a.s\", ''^x$'')')").await,
        ["true", "false", "false", "false"]
    );
    for bad in [
        "json_match(j, 'a = 1')",
        "json_match(j, '\"$.a\" LIKE 1')",
        "json_match(j, '(')",
    ] {
        let r = match ctx.sql(&format!("SELECT {bad} FROM t")).await {
            Ok(df) => df.collect().await.map(|_| ()),
            Err(e) => Err(e),
        };
        let e = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("json_match"), "{bad}: {e}");
    }
    // Key paths as Pinot lists them; not JSON or NULL: an empty list.
    assert_eq!(
        column(&ctx, "jsonextractkey(j, '$.o.*')").await,
        ["[$['o']['k']]", "[]", "[]", "[]"]
    );
    assert_eq!(
        column(&ctx, "jsonextractkey(j, '')").await[1],
        "[$['a'], $['a']['b'], $['arr'], $['tags']]"
    );
    assert_eq!(
        column(&ctx, "jsonextractkey(j, '$.arr[*]')").await[0],
        "[$['arr'][0], $['arr'][1], $['arr'][2]]"
    );
}

#[tokio::test]
async fn a_missing_path_without_default_fails_the_query_as_in_pinot() {
    let ctx = session();
    for (sql, needle) in [
        (
            "SELECT jsonextractscalar(j, '$.a.b', 'INT') FROM t",
            "cannot resolve json path",
        ),
        (
            "SELECT jsonextractscalar(j, '$.a.b', 'WHATEVER', '0') FROM t",
            "result type",
        ),
        ("SELECT jsonpathstring(j, 'a.b') FROM t", "starts with $"),
        ("SELECT jsonpathstring(j) FROM t", "jsonpathstring"),
    ] {
        let r = match ctx.sql(sql).await {
            Ok(df) => df.collect().await.map(|_| ()),
            Err(e) => Err(e),
        };
        let e = r.expect_err(sql).to_string().to_lowercase();
        assert!(e.contains(needle), "{sql}: {e}");
    }
}
