//! Each transform family, the filter and the error paths, on messages decoded by the JSON
//! decoder into the plan's staging columns; expected rows worked out by hand.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::util::display::array_value_to_string;
use bytes::Bytes;
use riffle_config::{Schema, StreamConfig, TableConfig};
use riffle_decode::{decode_batch, decoder_for, DecodeTarget, SpecialColumns};
use riffle_segment::{BlockBuilder, TableColumns};
use riffle_stream::{StreamMessage, StreamOffset};

use crate::{Applied, IngestPlan, TransformOptions};

fn schema(fields: &str) -> Schema {
    Schema::from_json(format!(r#"{{"schemaName":"t",{fields}}}"#).as_bytes()).unwrap()
}

fn table(ingestion: &str) -> TableConfig {
    TableConfig::from_json(
        format!(
            r#"{{"tableName":"t","tableType":"OFFLINE","segmentsConfig":{{}},"tenants":{{}},
               "tableIndexConfig":{{}},"metadata":{{}},"ingestionConfig":{ingestion}}}"#
        )
        .as_bytes(),
    )
    .unwrap()
}

fn plan_with(
    schema: &Schema,
    ingestion: &str,
    options: TransformOptions,
) -> Result<IngestPlan, String> {
    let cols = TableColumns::new(schema.columns().unwrap());
    IngestPlan::new(&table(ingestion), schema, &cols, options)
        .map_err(|e| e.to_string())
        .map(|p| p.expect("a plan"))
}

fn plan(schema: &Schema, ingestion: &str) -> IngestPlan {
    plan_with(schema, ingestion, TransformOptions::default()).unwrap()
}

/// Decodes JSON lines into the plan's staging block and applies the plan.
fn ingest(plan: &IngestPlan, lines: &[&str]) -> Applied {
    let cfg = StreamConfig::parse(
        "$",
        &[
            ("streamType", "memory"),
            ("stream.memory.topic.name", "t"),
            (
                "stream.memory.decoder.class.name",
                "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    )
    .unwrap();
    let target = DecodeTarget {
        extras: plan.extras().to_vec(),
        complex: None,
        file_roots: Vec::new(),
    };
    let mut dec = decoder_for(&cfg, plan.staging(), &target).unwrap();
    let special = SpecialColumns::new(plan.staging(), false);
    let msgs: Vec<StreamMessage> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| StreamMessage {
            key: None,
            value: Bytes::copy_from_slice(l.as_bytes()),
            headers: vec![],
            offset: StreamOffset::Long(i as i64),
            next_offset: StreamOffset::Long(i as i64 + 1),
            timestamp_ms: None,
        })
        .collect();
    let mut b = BlockBuilder::with_extras(plan.staging().clone(), 16, plan.extras().len());
    let stats = decode_batch(dec.as_mut(), &special, 0, &msgs, &mut b, false);
    assert_eq!(stats.errors, 0, "{:?}", stats.first_error);
    let (batch, extras) = b.finish_with_extras().unwrap();
    plan.apply(batch, extras)
}

/// Column `name` of every row, as Arrow displays it.
fn col(batch: &RecordBatch, name: &str) -> Vec<String> {
    let i = batch.schema().index_of(name).unwrap();
    (0..batch.num_rows())
        .map(|r| array_value_to_string(batch.column(i), r).unwrap())
        .collect()
}

#[test]
fn airline_ts_is_days_since_epoch_in_milliseconds() {
    let s = schema(
        r#""dimensionFieldSpecs":[{"name":"Carrier","dataType":"STRING"}],
        "dateTimeFieldSpecs":[{"name":"DaysSinceEpoch","dataType":"INT","format":"1:DAYS:EPOCH","granularity":"1:DAYS"},
          {"name":"ts","dataType":"TIMESTAMP","format":"1:MILLISECONDS:TIMESTAMP","granularity":"1:SECONDS"},
          {"name":"tsRaw","dataType":"TIMESTAMP","format":"1:MILLISECONDS:TIMESTAMP","granularity":"1:SECONDS"}]"#,
    );
    let p = plan(
        &s,
        r#"{"transformConfigs":[{"columnName":"ts","transformFunction":"fromEpochDays(DaysSinceEpoch)"},
            {"columnName":"tsRaw","transformFunction":"fromEpochDays(DaysSinceEpoch)"}]}"#,
    );
    assert!(p.extras().is_empty());
    let a = ingest(
        &p,
        &[
            r#"{"Carrier":"AA","DaysSinceEpoch":16071}"#,
            r#"{"Carrier":"DL","DaysSinceEpoch":16101}"#,
            r#"{"Carrier":"UA"}"#,
            r#"{"Carrier":"WN","DaysSinceEpoch":16071,"ts":42}"#,
        ],
    );
    assert!(a.errors.is_empty(), "{:?}", a.errors);
    let b = &a.batch;
    // 16071 days = 2014-01-01; 16101 = 2014-01-31.
    assert_eq!(
        col(b, "ts"),
        [
            "2014-01-01T00:00:00",
            "2014-01-31T00:00:00",
            // No input: null, so the TIMESTAMP default (0).
            "1970-01-01T00:00:00",
            // The message's own value wins over the transform, as in Pinot.
            "1970-01-01T00:00:00.042"
        ]
    );
    assert_eq!(col(b, "tsRaw")[1], "2014-01-31T00:00:00");
    assert_eq!(col(b, "DaysSinceEpoch")[2], "-2147483648");
}

#[test]
fn epoch_and_datetime_families() {
    let s = schema(
        r#""dimensionFieldSpecs":[{"name":"secs","dataType":"LONG"},{"name":"rounded","dataType":"LONG"},
          {"name":"bucket","dataType":"LONG"},{"name":"hours","dataType":"LONG"},
          {"name":"day","dataType":"STRING"},{"name":"ny","dataType":"STRING"},{"name":"parsed","dataType":"LONG"}]"#,
    );
    let p = plan(
        &s,
        r#"{"transformConfigs":[
            {"columnName":"secs","transformFunction":"toEpochSeconds(millis)"},
            {"columnName":"rounded","transformFunction":"toEpochSecondsRounded(millis, 10)"},
            {"columnName":"bucket","transformFunction":"toEpochMinutesBucket(millis, 15)"},
            {"columnName":"hours","transformFunction":"toEpochHours(fromEpochDays(days))"},
            {"columnName":"day","transformFunction":"toDateTime(millis, 'yyyy-MM-dd')"},
            {"columnName":"ny","transformFunction":"toDateTime(millis, 'yyyy-MM-dd HH:mm', 'America/New_York')"},
            {"columnName":"parsed","transformFunction":"fromDateTime(text, 'yyyy-MM-dd''T''HH:mm:ss')"}]}"#,
    );
    assert_eq!(p.extras(), ["millis", "days", "text"]);
    // 1589007623456 ms = 2020-05-09T07:00:23.456Z (03:00 in New York, EDT).
    let a = ingest(
        &p,
        &[r#"{"millis":1589007623456,"days":1,"text":"2020-05-09T07:00:23"}"#],
    );
    assert!(a.errors.is_empty(), "{:?}", a.errors);
    let b = &a.batch;
    assert_eq!(col(b, "secs"), ["1589007623"]);
    assert_eq!(col(b, "rounded"), ["1589007620"]);
    // 1589007623456 / 60000 = 26483460 minutes; / 15 = 1765564 buckets.
    assert_eq!(col(b, "bucket"), ["1765564"]);
    assert_eq!(col(b, "hours"), ["24"]);
    assert_eq!(col(b, "day"), ["2020-05-09"]);
    assert_eq!(col(b, "ny"), ["2020-05-09 03:00"]);
    assert_eq!(col(b, "parsed"), ["1589007623000"]);
}

#[test]
fn json_path_family_with_pinot_defaults() {
    let s = schema(
        r#""dimensionFieldSpecs":[{"name":"name","dataType":"STRING"},{"name":"n","dataType":"LONG"},
          {"name":"missingLong","dataType":"LONG"},{"name":"missingDouble","dataType":"DOUBLE"},
          {"name":"withDefault","dataType":"STRING"},{"name":"tags","dataType":"STRING","singleValueField":false},
          {"name":"noTags","dataType":"STRING","singleValueField":false},{"name":"raw","dataType":"STRING"},
          {"name":"obj","dataType":"STRING"}]"#,
    );
    let p = plan(
        &s,
        r#"{"transformConfigs":[
            {"columnName":"name","transformFunction":"jsonPathString(payload, '$.user.name')"},
            {"columnName":"n","transformFunction":"jsonPathLong(payload, '$.n')"},
            {"columnName":"missingLong","transformFunction":"jsonPathLong(payload, '$.nope', -1)"},
            {"columnName":"missingDouble","transformFunction":"jsonPathDouble(payload, '$.nope')"},
            {"columnName":"withDefault","transformFunction":"jsonPathString(payload, '$.nope', 'none')"},
            {"columnName":"tags","transformFunction":"jsonPathArray(payload, '$.tags')"},
            {"columnName":"noTags","transformFunction":"jsonPathArrayDefaultEmpty(payload, '$.nope')"},
            {"columnName":"raw","transformFunction":"jsonFormat(payload)"},
            {"columnName":"obj","transformFunction":"jsonPathString(payload, '$.user')"}]}"#,
    );
    let a = ingest(
        &p,
        &[r#"{"payload":{"user":{"name":"ann","age":3},"n":"12","tags":["x","y"]}}"#],
    );
    assert!(a.errors.is_empty(), "{:?}", a.errors);
    let b = &a.batch;
    assert_eq!(col(b, "name"), ["ann"]);
    assert_eq!(col(b, "n"), ["12"]);
    assert_eq!(col(b, "missingLong"), ["-1"]);
    assert_eq!(col(b, "missingDouble"), ["NaN"]);
    assert_eq!(col(b, "withDefault"), ["none"]);
    assert_eq!(col(b, "tags"), ["[x, y]"]);
    // An empty list is stored as the default once, as Pinot stores it.
    assert_eq!(col(b, "noTags"), ["[null]"]);
    assert_eq!(
        col(b, "raw"),
        [r#"{"user":{"name":"ann","age":3},"n":"12","tags":["x","y"]}"#]
    );
    // jsonPathString serialises a non-string value.
    assert_eq!(col(b, "obj"), [r#"{"name":"ann","age":3}"#]);
}

#[test]
fn strings_split_renames_and_chains() {
    let s = schema(
        r#""dimensionFieldSpecs":[{"name":"eventId","dataType":"STRING"},{"name":"full","dataType":"STRING"},
          {"name":"parts","dataType":"STRING","singleValueField":false},{"name":"shout","dataType":"STRING"},
          {"name":"initial","dataType":"STRING"},{"name":"domain","dataType":"STRING"}]"#,
    );
    let p = plan(
        &s,
        r#"{"transformConfigs":[
            {"columnName":"eventId","transformFunction":"\"event-id\""},
            {"columnName":"full","transformFunction":"concat(first, last, ' ')"},
            {"columnName":"parts","transformFunction":"split(path, '/')"},
            {"columnName":"shout","transformFunction":"upper(full)"},
            {"columnName":"initial","transformFunction":"substr(first, 0, 1)"},
            {"columnName":"email_lower","transformFunction":"lower(email)"},
            {"columnName":"domain","transformFunction":"splitPart(email_lower, '@', 1)"}]}"#,
    );
    let a = ingest(
        &p,
        &[
            r#"{"event-id":"e-1","first":"Ada","last":"Lovelace","path":"/a/b//c","email":"Ada@Example.COM"}"#,
        ],
    );
    assert!(a.errors.is_empty(), "{:?}", a.errors);
    let b = &a.batch;
    assert_eq!(col(b, "eventId"), ["e-1"]);
    assert_eq!(col(b, "full"), ["Ada Lovelace"]);
    assert_eq!(col(b, "parts"), ["[a, b, c]"]);
    // Chained: upper() reads the transformed `full`.
    assert_eq!(col(b, "shout"), ["ADA LOVELACE"]);
    assert_eq!(col(b, "initial"), ["A"]);
    // Through an intermediate column that is not in the schema.
    assert_eq!(col(b, "domain"), ["example.com"]);
    assert!(b.schema().index_of("email_lower").is_err());
}

#[test]
fn filter_drops_rows_where_true() {
    let s = schema(
        r#""dimensionFieldSpecs":[{"name":"campaign","dataType":"STRING"}],
           "metricFieldSpecs":[{"name":"clicks","dataType":"INT"}]"#,
    );
    let p = plan(
        &s,
        r#"{"filterConfig":{"filterFunction":"strcmp(campaign, 'X') = 0 OR ts < 1589007600000"}}"#,
    );
    assert_eq!(p.extras(), ["ts"]);
    let a = ingest(
        &p,
        &[
            r#"{"campaign":"X","clicks":1,"ts":1589007600001}"#,
            r#"{"campaign":"Y","clicks":2,"ts":1589007600001}"#,
            r#"{"campaign":"Y","clicks":3,"ts":1}"#,
            r#"{"campaign":"Z","clicks":4}"#,
        ],
    );
    assert_eq!(a.filtered, 2);
    assert!(a.errors.is_empty());
    assert_eq!(a.kept, [1, 3]);
    assert_eq!(col(&a.batch, "clicks"), ["2", "4"]);
}

#[test]
fn a_failing_row_leaves_the_others() {
    let s = schema(
        r#""dimensionFieldSpecs":[{"name":"n","dataType":"INT"},{"name":"s","dataType":"STRING"}]"#,
    );
    let p = plan(
        &s,
        r#"{"transformConfigs":[{"columnName":"n","transformFunction":"jsonPathString(payload, '$.v')"}]}"#,
    );
    let a = ingest(
        &p,
        &[
            r#"{"payload":{"v":"7"},"s":"a"}"#,
            r#"{"payload":{"v":"seven"},"s":"b"}"#,
            r#"{"payload":{"v":"9"},"s":"c"}"#,
        ],
    );
    assert_eq!(a.kept, [0, 2]);
    assert_eq!(col(&a.batch, "n"), ["7", "9"]);
    assert_eq!(a.errors.len(), 1);
    let (row, e) = &a.errors[0];
    assert_eq!(*row, 1);
    assert!(
        e.contains("column 'n'") && e.contains("seven") && e.contains("INT"),
        "{e}"
    );
}

#[test]
fn refuses_what_cannot_run_naming_the_path() {
    let s = schema(
        r#""dimensionFieldSpecs":[{"name":"a","dataType":"STRING"},{"name":"b","dataType":"STRING"}]"#,
    );
    let e = plan_with(
        &s,
        r#"{"transformConfigs":[{"columnName":"a","transformFunction":"Groovy({x + 1}, x)"}]}"#,
        TransformOptions::default(),
    )
    .unwrap_err();
    assert!(
        e.contains("$.ingestionConfig.transformConfigs[0].transformFunction"),
        "{e}"
    );
    assert!(
        e.contains("Groovy")
            && e.contains("arbitrary code")
            && e.contains("--ingestion-groovy-safe-subset"),
        "{e}"
    );
    let e = plan_with(
        &s,
        r#"{"transformConfigs":[{"columnName":"a","transformFunction":"noSuchFn(x)"}]}"#,
        TransformOptions::default(),
    )
    .unwrap_err();
    assert!(e.contains("unknown function 'nosuchfn'"), "{e}");
    let e = plan_with(
        &s,
        r#"{"transformConfigs":[{"columnName":"a","transformFunction":"upper(b)"},
            {"columnName":"b","transformFunction":"lower(a)"}]}"#,
        TransformOptions::default(),
    )
    .unwrap_err();
    assert!(e.contains("cycle"), "{e}");
    let e = plan_with(
        &s,
        r#"{"filterConfig":{"filterFunction":"a ="}}"#,
        TransformOptions::default(),
    )
    .unwrap_err();
    assert!(
        e.contains("$.ingestionConfig.filterConfig.filterFunction"),
        "{e}"
    );
    let safe = TransformOptions {
        groovy_safe_subset: true,
    };
    let e = plan_with(
        &s,
        r#"{"transformConfigs":[{"columnName":"a","transformFunction":"Groovy({x.execute()}, x)"}]}"#,
        safe,
    )
    .unwrap_err();
    assert!(e.contains("outside the safe subset"), "{e}");
}

#[test]
fn groovy_safe_subset_when_enabled() {
    let s = schema(
        r#""dimensionFieldSpecs":[{"name":"first","dataType":"STRING"},{"name":"full","dataType":"STRING"},
            {"name":"size","dataType":"STRING"}],"metricFieldSpecs":[{"name":"total","dataType":"DOUBLE"}]"#,
    );
    let p = plan_with(
        &s,
        r#"{"transformConfigs":[
            {"columnName":"full","transformFunction":"Groovy({first + ' ' + last}, first, last)"},
            {"columnName":"total","transformFunction":"Groovy({price * qty + 1}, price, qty)"},
            {"columnName":"size","transformFunction":"Groovy({qty > 10 ? 'big' : 'small'}, qty)"}],
           "filterConfig":{"filterFunction":"Groovy({qty == 0}, qty)"}}"#,
        TransformOptions {
            groovy_safe_subset: true,
        },
    )
    .unwrap();
    let a = ingest(
        &p,
        &[
            r#"{"first":"Ada","last":"L","price":2.5,"qty":12}"#,
            r#"{"first":"Bo","last":"K","price":1,"qty":0}"#,
        ],
    );
    assert!(a.errors.is_empty(), "{:?}", a.errors);
    assert_eq!(a.filtered, 1);
    assert_eq!(col(&a.batch, "full"), ["Ada L"]);
    assert_eq!(col(&a.batch, "total"), ["31.0"]);
    assert_eq!(col(&a.batch, "size"), ["big"]);
}

#[test]
fn no_plan_without_transforms_or_filter() {
    let s = schema(r#""dimensionFieldSpecs":[{"name":"a","dataType":"STRING"}]"#);
    let cols = TableColumns::new(s.columns().unwrap());
    let p = IngestPlan::new(&table("{}"), &s, &cols, TransformOptions::default()).unwrap();
    assert!(p.is_none());
    let _ = Arc::clone(&cols);
}

#[test]
fn a_source_field_null_in_a_whole_block_keeps_its_type() {
    let s = schema(r#""metricFieldSpecs":[{"name":"hours","dataType":"DOUBLE"}]"#);
    let p = plan(
        &s,
        r#"{"transformConfigs":[{"columnName":"hours","transformFunction":"divide(minutes, 60)"}],
            "filterConfig":{"filterFunction":"minutes IS NULL"}}"#,
    );
    // Before any block had a value, and after.
    for _ in 0..2 {
        let a = ingest(&p, &[r#"{"minutes":null}"#, r#"{}"#]);
        assert!(a.errors.is_empty(), "{:?}", a.errors);
        assert_eq!(a.filtered, 2);
        let a = ingest(&p, &[r#"{"minutes":90}"#]);
        assert!(a.errors.is_empty(), "{:?}", a.errors);
        assert_eq!(col(&a.batch, "hours"), ["1.5"]);
    }
}

#[test]
fn rollup_merges_rows_by_their_dimensions() {
    let s = schema(
        r#""dimensionFieldSpecs":[{"name":"country","dataType":"STRING"}],
        "metricFieldSpecs":[{"name":"total","dataType":"LONG"},{"name":"rows","dataType":"LONG"},
          {"name":"lo","dataType":"DOUBLE"},{"name":"hi","dataType":"DOUBLE"},
          {"name":"users","dataType":"BYTES"},{"name":"exact","dataType":"BIG_DECIMAL"}]"#,
    );
    let p = plan(
        &s,
        r#"{"aggregationConfigs":[
            {"columnName":"total","aggregationFunction":"SUM(bytes)"},
            {"columnName":"rows","aggregationFunction":"COUNT(*)"},
            {"columnName":"lo","aggregationFunction":"MIN(price)"},
            {"columnName":"hi","aggregationFunction":"MAX(price)"},
            {"columnName":"users","aggregationFunction":"DISTINCTCOUNTHLL(user, 12)"},
            {"columnName":"exact","aggregationFunction":"SUMPRECISION(amount)"}]}"#,
    );
    let a = ingest(
        &p,
        &[
            r#"{"country":"FR","bytes":10,"price":2.5,"user":"a","amount":"0.1"}"#,
            r#"{"country":"DE","bytes":1,"price":9,"user":"b","amount":"1"}"#,
            r#"{"country":"FR","bytes":5,"price":1.5,"user":"a","amount":"0.2"}"#,
            r#"{"country":"FR","bytes":7,"price":3,"user":"c","amount":"0.3"}"#,
        ],
    );
    assert!(a.errors.is_empty(), "{:?}", a.errors);
    let b = &a.batch;
    assert_eq!(col(b, "country"), ["FR", "DE"]);
    assert_eq!(col(b, "total"), ["22", "1"]);
    assert_eq!(col(b, "rows"), ["3", "1"]);
    assert_eq!(col(b, "lo"), ["1.5", "9.0"]);
    assert_eq!(col(b, "hi"), ["3.0", "9.0"]);
    assert_eq!(col(b, "exact"), ["0.6", "1"]);
    // Each group's sketch: FR saw two users.
    let users = b.column(b.schema().index_of("users").unwrap()).clone();
    let fr = users.slice(0, 1);
    let empty = riffle_functions::aggregation::hll_of(
        12,
        &arrow::array::new_null_array(&arrow::datatypes::DataType::Utf8, 0),
    )
    .unwrap();
    let merged = riffle_functions::aggregation::hll_merge(
        &empty,
        arrow::array::AsArray::as_binary::<i32>(&fr).value(0),
    )
    .unwrap();
    assert_eq!(merged.len(), 1 + (1 << 12));
    assert_eq!(merged.iter().skip(1).filter(|r| **r > 0).count(), 2);

    // Merging two rolled-up blocks at seal gives the sums of both.
    let second = ingest(
        &p,
        &[r#"{"country":"FR","bytes":100,"price":0.5,"user":"z","amount":"0.4"}"#],
    );
    let table = TableColumns::new(s_columns(&s));
    let all = p
        .rollup()
        .unwrap()
        .merge(&[a.batch.clone(), second.batch], &table)
        .unwrap();
    assert_eq!(col(&all, "total"), ["122", "1"]);
    assert_eq!(col(&all, "rows"), ["4", "1"]);
    assert_eq!(col(&all, "lo"), ["0.5", "9.0"]);
    assert_eq!(col(&all, "exact"), ["1.0", "1"]);
}

fn s_columns(s: &Schema) -> Vec<riffle_config::Column> {
    s.columns().unwrap()
}

#[test]
fn rollup_rules_are_pinot_s() {
    let s = schema(
        r#""dimensionFieldSpecs":[{"name":"d","dataType":"STRING"}],
        "metricFieldSpecs":[{"name":"m","dataType":"LONG"},{"name":"n","dataType":"LONG"}]"#,
    );
    for (cfg, want) in [
        (
            r#"[{"columnName":"m","aggregationFunction":"SUM(x)"}]"#,
            "metric 'n'",
        ),
        (
            r#"[{"columnName":"m","aggregationFunction":"SUM(d)"},{"columnName":"n","aggregationFunction":"COUNT(*)"}]"#,
            "must not be a schema column",
        ),
        (
            r#"[{"columnName":"m","aggregationFunction":"AVG(x)"},{"columnName":"n","aggregationFunction":"COUNT(*)"}]"#,
            "cannot aggregate at ingestion",
        ),
        (
            r#"[{"columnName":"m","aggregationFunction":"DISTINCTCOUNTHLL(x)"},{"columnName":"n","aggregationFunction":"COUNT(*)"}]"#,
            "BYTES",
        ),
    ] {
        let e = plan_with(
            &s,
            &format!(r#"{{"aggregationConfigs":{cfg}}}"#),
            TransformOptions::default(),
        )
        .unwrap_err();
        assert!(
            e.contains("$.ingestionConfig.aggregationConfigs") && e.contains(want),
            "{want}: {e}"
        );
    }
}
