//! Sealed segments end to end: round trips of every type, filters against a brute-force
//! evaluation, pruning, corruption, schema evolution and the v1 golden file.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
    ListArray, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::{Field, Int32Type, Schema as ArrowSchema};
use riffle_config::Codec;
use riffle_config::{DefaultValue, Schema, TableConfig};
use riffle_segment::sealed::{
    write_segment, Literal, LoadMode, Predicate, SealOptions, SealedSegment, FORMAT_VERSION,
};
use riffle_segment::{SegmentError, TableColumns};
use roaring::RoaringBitmap;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// The engine view of a schema, with every field nullable so batches may hold nulls.
fn table(schema_json: &str) -> Arc<TableColumns> {
    let s = Schema::from_json(schema_json.as_bytes()).unwrap();
    let cols = TableColumns::new(s.columns().unwrap());
    let mut t = Arc::try_unwrap(cols).unwrap();
    let fields: Vec<Field> = t
        .arrow
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    t.arrow = Arc::new(ArrowSchema::new(fields));
    Arc::new(t)
}

fn batch(cols: &TableColumns, arrays: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(cols.arrow.clone(), arrays).unwrap()
}

fn all_rows(seg: &SealedSegment) -> RecordBatch {
    let batches = seg.read(None, None, 1000).unwrap();
    let schema = batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| seg.columns().arrow.clone());
    concat_batches(&schema, &batches).unwrap()
}

fn names(v: &[&str]) -> std::collections::BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn open_both(path: &Path, name: &str, cols: &Arc<TableColumns>) -> [SealedSegment; 2] {
    [
        SealedSegment::open(path, name, cols.clone(), LoadMode::Mmap).unwrap(),
        SealedSegment::open(path, name, cols.clone(), LoadMode::Heap).unwrap(),
    ]
}

fn assert_same_rows(got: &RecordBatch, want: &RecordBatch) {
    assert_eq!(got.num_rows(), want.num_rows());
    assert_eq!(got.num_columns(), want.num_columns());
    for i in 0..want.num_columns() {
        assert_eq!(
            got.column(i).as_ref(),
            want.column(i).as_ref(),
            "column {} differs",
            want.schema().field(i).name()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Round trip of every type
// ---------------------------------------------------------------------------------------

const ALL_TYPES: &str = r#"{"schemaName":"t",
  "dimensionFieldSpecs":[
    {"name":"i","dataType":"INT"},{"name":"l","dataType":"LONG"},
    {"name":"b","dataType":"BOOLEAN"},{"name":"s","dataType":"STRING"},
    {"name":"by","dataType":"BYTES"},{"name":"j","dataType":"JSON"},
    {"name":"bd","dataType":"BIG_DECIMAL"},
    {"name":"mvi","dataType":"INT","singleValueField":false},
    {"name":"mvs","dataType":"STRING","singleValueField":false}],
  "metricFieldSpecs":[{"name":"f","dataType":"FLOAT"},{"name":"d","dataType":"DOUBLE"}],
  "dateTimeFieldSpecs":[{"name":"ts","dataType":"TIMESTAMP","format":"1:MILLISECONDS:TIMESTAMP","granularity":"1:MILLISECONDS"}]}"#;

/// Three batches holding every type, with nulls in every column.
fn all_types_batches(cols: &TableColumns, rng: &mut Rng) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for n in [37usize, 1, 300] {
        let mut by_name: Vec<(String, ArrayRef)> = Vec::new();
        let null = |rng: &mut Rng| rng.chance(10);
        macro_rules! col {
            ($name:expr, $arr:ty, $gen:expr) => {{
                let v: $arr = (0..n)
                    .map(|_| {
                        if null(rng) {
                            None
                        } else {
                            Some($gen(&mut *rng))
                        }
                    })
                    .collect();
                by_name.push(($name.to_string(), Arc::new(v) as ArrayRef));
            }};
        }
        col!("i", Int32Array, |r: &mut Rng| r.below(50) as i32 - 25);
        col!("l", Int64Array, |r: &mut Rng| r.next() as i64);
        col!("b", BooleanArray, |r: &mut Rng| r.chance(50));
        col!("s", StringArray, |r: &mut Rng| format!("s{}", r.below(40)));
        col!("by", BinaryArray, |r: &mut Rng| vec![
            r.below(4) as u8;
            r.below(3) as usize
        ]);
        col!("j", StringArray, |r: &mut Rng| format!(
            "{{\"k\":{}}}",
            r.below(9)
        ));
        col!("bd", StringArray, |r: &mut Rng| format!(
            "{}.{}",
            r.below(100),
            r.below(10)
        ));
        col!("f", Float32Array, |r: &mut Rng| r.below(1000) as f32 / 8.0
            - 60.0);
        col!("d", Float64Array, |r: &mut Rng| r.next() as f64 / 1e10);
        col!(
            "ts",
            TimestampMillisecondArray,
            |r: &mut Rng| 1_700_000_000_000 + r.below(1_000_000) as i64
        );
        let mvi: ListArray = ListArray::from_iter_primitive::<Int32Type, _, _>((0..n).map(|_| {
            if rng.chance(5) {
                None
            } else {
                let k = rng.below(4) as usize;
                Some(
                    (0..k)
                        .map(|_| Some(rng.below(100) as i32))
                        .collect::<Vec<_>>(),
                )
            }
        }));
        by_name.push(("mvi".into(), Arc::new(mvi)));
        let mut offsets = vec![0i32];
        let mut items: Vec<Option<String>> = Vec::new();
        let mut valid = Vec::new();
        for _ in 0..n {
            let k = rng.below(3) as usize;
            for _ in 0..k {
                items.push(Some(format!("m{}", rng.below(10))));
            }
            offsets.push(items.len() as i32);
            valid.push(!rng.chance(5));
        }
        let mvs = ListArray::try_new(
            Arc::new(Field::new("item", arrow::datatypes::DataType::Utf8, true)),
            arrow::buffer::OffsetBuffer::new(offsets.into()),
            Arc::new(StringArray::from(items)),
            Some(arrow::buffer::NullBuffer::from(valid)),
        )
        .unwrap();
        by_name.push(("mvs".into(), Arc::new(mvs)));
        let arrays = cols
            .columns
            .iter()
            .map(|c| {
                by_name
                    .iter()
                    .find(|(n, _)| *n == c.name)
                    .unwrap()
                    .1
                    .clone()
            })
            .collect();
        out.push(batch(cols, arrays));
    }
    out
}

/// The rows of `input` in the order a segment sorted by column `by` holds them.
fn sorted_by(input: &RecordBatch, by: usize) -> RecordBatch {
    let s = input
        .column(by)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let mut idx: Vec<u32> = (0..input.num_rows() as u32).collect();
    idx.sort_by_key(|i| {
        let i = *i as usize;
        (
            s.is_null(i),
            if s.is_null(i) { "" } else { s.value(i) }.to_string(),
        )
    });
    let idx = arrow::array::UInt32Array::from(idx);
    let cols = input
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), &idx, None).unwrap())
        .collect();
    RecordBatch::try_new(input.schema(), cols).unwrap()
}

#[test]
fn test_round_trip_every_type_mmap_and_heap() {
    let cols = table(ALL_TYPES);
    let mut rng = Rng(7);
    let batches = all_types_batches(&cols, &mut rng);
    let input = concat_batches(&cols.arrow, &batches).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let variants = [
        ("plain", SealOptions::default(), None),
        (
            "indexed",
            SealOptions {
                sorted_column: Some("s".into()),
                no_dictionary: names(&["l", "d", "by", "mvi"]),
                inverted: names(&["i", "s", "j", "l"]),
                range: names(&["i", "l", "d", "f", "ts", "mvi"]),
                bloom: names(&["s", "l", "by", "b"]),
                time_column: Some("ts".into()),
                ..SealOptions::default()
            },
            Some(cols.index_of("s").unwrap()),
        ),
        (
            "raw",
            SealOptions {
                no_dictionary: cols.columns.iter().map(|c| c.name.clone()).collect(),
                range: cols.columns.iter().map(|c| c.name.clone()).collect(),
                bloom: cols.columns.iter().map(|c| c.name.clone()).collect(),
                ..SealOptions::default()
            },
            None,
        ),
    ];
    for (label, opts, sorted) in variants {
        let path = dir.path().join(format!("{label}.seg"));
        let sealed = write_segment(&path, "seg_0", &cols, &batches, &opts).unwrap();
        assert!(!dir.path().join(format!("{label}.seg.tmp")).exists());
        assert_eq!(sealed.size_bytes, std::fs::metadata(&path).unwrap().len());
        let reopened = SealedSegment::open(&path, "seg_0", cols.clone(), LoadMode::Heap).unwrap();
        assert_eq!(sealed.crc, reopened.file_crc(), "{label}");
        assert_eq!(
            sealed.crc,
            crc32fast::hash(&std::fs::read(&path).unwrap()),
            "{label}"
        );
        assert_eq!(sealed.info.total_docs, input.num_rows() as u64);
        assert_eq!(sealed.info.format_version, FORMAT_VERSION);
        let want = match sorted {
            Some(i) => sorted_by(&input, i),
            None => input.clone(),
        };
        for seg in open_both(&path, "seg_0", &cols) {
            assert_eq!(seg.info(), &sealed.info);
            assert_eq!(seg.num_rows(), input.num_rows());
            assert_same_rows(&all_rows(&seg), &want);
            // Batches of at most batch_rows, projection and selection.
            let parts = seg.read(None, None, 100).unwrap();
            assert_eq!(parts.len(), 4, "{label}");
            assert!(parts.iter().all(|b| b.num_rows() <= 100));
            let sel: RoaringBitmap = [0u32, 5, 6, 7, 200, 337, 5000].into_iter().collect();
            let got = seg.read(Some(&[3, 0]), Some(&sel), 2).unwrap();
            assert_eq!(got.iter().map(|b| b.num_rows()).sum::<usize>(), 6);
            let got = concat_batches(&got[0].schema(), &got).unwrap();
            let idx = arrow::array::UInt32Array::from(vec![0u32, 5, 6, 7, 200, 337]);
            for (k, c) in [3usize, 0].into_iter().enumerate() {
                let w = take(want.column(c).as_ref(), &idx, None).unwrap();
                assert_eq!(got.column(k).as_ref(), w.as_ref(), "{label} column {c}");
            }
            // An empty projection still counts rows.
            let counted = seg.read(Some(&[]), None, 1000).unwrap();
            assert_eq!(counted.iter().map(|b| b.num_rows()).sum::<usize>(), 338);
        }
        let info = |n: &str| sealed.info.columns.iter().find(|c| c.name == n).unwrap();
        // Stats: null counts, min / max and cardinality follow the data.
        for (ci, c) in cols.columns.iter().enumerate() {
            assert_eq!(
                info(&c.name).null_count,
                input.column(ci).null_count() as u64
            );
        }
        let ints = input
            .column(0)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap();
        let imin = ints.iter().flatten().min().unwrap();
        let imax = ints.iter().flatten().max().unwrap();
        assert_eq!(info("i").min_value, Some(serde_json::json!(imin)));
        assert_eq!(info("i").max_value, Some(serde_json::json!(imax)));
        let ts = input
            .column(cols.index_of("ts").unwrap())
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap();
        if label == "indexed" {
            assert_eq!(sealed.info.start_time_ms, ts.iter().flatten().min());
            assert_eq!(sealed.info.end_time_ms, ts.iter().flatten().max());
            assert!(info("s").sorted);
            assert_eq!(info("s").indexes, vec!["sorted", "bloom"]);
            assert_eq!(info("i").indexes, vec!["inverted", "range"]);
            // Inverted on a raw column is skipped (as Pinot refuses it); range and bloom stay.
            assert!(!info("l").has_dictionary);
            assert_eq!(info("l").indexes, vec!["range", "bloom"]);
            assert!(!info("mvi").has_dictionary && info("mvi").indexes.is_empty());
            let distinct: std::collections::BTreeSet<i32> = ints.iter().flatten().collect();
            assert_eq!(info("i").cardinality, Some(distinct.len() as u64));
        } else {
            assert_eq!(sealed.info.start_time_ms, None);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Filters against brute force
// ---------------------------------------------------------------------------------------

const FILTER_SCHEMA: &str = r#"{"schemaName":"t",
  "dimensionFieldSpecs":[{"name":"k","dataType":"INT"},{"name":"s","dataType":"STRING"},
    {"name":"i2","dataType":"INT"},{"name":"b","dataType":"BOOLEAN"},
    {"name":"mv","dataType":"INT","singleValueField":false}],
  "metricFieldSpecs":[{"name":"r","dataType":"LONG"},{"name":"d","dataType":"DOUBLE"},
    {"name":"f","dataType":"FLOAT"}],
  "dateTimeFieldSpecs":[{"name":"ts","dataType":"TIMESTAMP","format":"1:MILLISECONDS:TIMESTAMP","granularity":"1:MILLISECONDS"}]}"#;

/// 2024-01-01T00:00:00Z.
const BASE_MS: i64 = 1_704_067_200_000;
const SPECIAL_DOUBLES: [f64; 6] = [f64::NAN, -0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY, 1.5];

fn filter_batches(cols: &TableColumns, rows: usize, rng: &mut Rng) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut row = 0usize;
    while row < rows {
        let n = (rows - row).min(1 + rng.below(1500) as usize);
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for c in &cols.columns {
            let a: ArrayRef = match c.name.as_str() {
                "k" => Arc::new(
                    (0..n)
                        .map(|_| (!rng.chance(5)).then(|| rng.below(20) as i32))
                        .collect::<Int32Array>(),
                ),
                "s" => Arc::new(
                    (0..n)
                        .map(|_| (!rng.chance(5)).then(|| format!("v{}", rng.below(200))))
                        .collect::<StringArray>(),
                ),
                "i2" => Arc::new(
                    (0..n)
                        .map(|_| (!rng.chance(3)).then(|| rng.below(1000) as i32 - 500))
                        .collect::<Int32Array>(),
                ),
                "b" => Arc::new(
                    (0..n)
                        .map(|_| (!rng.chance(5)).then(|| rng.chance(30)))
                        .collect::<BooleanArray>(),
                ),
                "mv" => Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(
                    (0..n)
                        .map(|_| Some(vec![Some(rng.below(9) as i32); 1 + rng.below(2) as usize])),
                )),
                "r" => Arc::new(
                    (0..n)
                        .map(|j| {
                            (!rng.chance(2)).then(|| ((row + j) * 10) as i64 + rng.below(50) as i64)
                        })
                        .collect::<Int64Array>(),
                ),
                "d" => Arc::new(
                    (0..n)
                        .map(|_| {
                            (!rng.chance(5)).then(|| {
                                if rng.chance(5) {
                                    SPECIAL_DOUBLES[rng.below(6) as usize]
                                } else {
                                    (rng.below(4000) as f64 - 2000.0) / 4.0
                                }
                            })
                        })
                        .collect::<Float64Array>(),
                ),
                "f" => Arc::new(
                    (0..n)
                        .map(|_| (!rng.chance(5)).then(|| rng.below(64) as f32 / 4.0))
                        .collect::<Float32Array>(),
                ),
                // Roughly increasing with the row, so that sorting by it keeps `r` local.
                "ts" => Arc::new(
                    (0..n)
                        .map(|j| {
                            let secs = ((row + j) * 3600 / rows) as u64 + rng.below(4);
                            (!rng.chance(3)).then(|| BASE_MS + secs.min(3599) as i64 * 1000)
                        })
                        .collect::<TimestampMillisecondArray>(),
                ),
                other => panic!("unexpected column {other}"),
            };
            arrays.push(a);
        }
        out.push(batch(cols, arrays));
        row += n;
    }
    out
}

/// A value as the brute force sees it.
#[derive(Clone, Debug)]
enum Tv {
    Null,
    Num(f64),
    Text(String),
}

fn row_value(a: &dyn Array, i: usize) -> Tv {
    if a.is_null(i) {
        return Tv::Null;
    }
    let any = a.as_any();
    if let Some(x) = any.downcast_ref::<Int32Array>() {
        Tv::Num(x.value(i) as f64)
    } else if let Some(x) = any.downcast_ref::<Int64Array>() {
        Tv::Num(x.value(i) as f64)
    } else if let Some(x) = any.downcast_ref::<Float64Array>() {
        Tv::Num(x.value(i))
    } else if let Some(x) = any.downcast_ref::<Float32Array>() {
        Tv::Num(x.value(i) as f64)
    } else if let Some(x) = any.downcast_ref::<BooleanArray>() {
        Tv::Num(x.value(i) as u8 as f64)
    } else if let Some(x) = any.downcast_ref::<TimestampMillisecondArray>() {
        Tv::Num(x.value(i) as f64)
    } else if let Some(x) = any.downcast_ref::<StringArray>() {
        Tv::Text(x.value(i).to_string())
    } else if let Some(x) = any.downcast_ref::<BinaryArray>() {
        Tv::Text(format!("{:?}", x.value(i)))
    } else {
        panic!("unexpected array {:?}", a.data_type())
    }
}

/// The literal as the brute force compares it with a value (`is_ts` parses date-times).
fn lit_value(l: &Literal, text_column: bool, is_ts: bool) -> Tv {
    match (l, text_column) {
        (Literal::Int(v), false) => Tv::Num(*v as f64),
        (Literal::Float(f), false) => Tv::Num(*f),
        (Literal::Bool(b), false) => Tv::Num(*b as u8 as f64),
        (Literal::Str(s), false) => {
            if is_ts {
                Tv::Num(riffle_config::datetime::parse_timestamp_millis(s).unwrap() as f64)
            } else {
                Tv::Num(s.parse::<f64>().unwrap())
            }
        }
        (Literal::Str(s), true) => Tv::Text(s.clone()),
        (Literal::Int(v), true) => Tv::Text(v.to_string()),
        (other, true) => panic!("no text form for {other:?}"),
    }
}

fn tv_cmp(a: &Tv, b: &Tv) -> std::cmp::Ordering {
    match (a, b) {
        (Tv::Num(x), Tv::Num(y)) => x.total_cmp(y),
        (Tv::Text(x), Tv::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        _ => panic!("incomparable {a:?} {b:?}"),
    }
}

fn brute_matches(p: &Predicate, v: &Tv, text: bool, is_ts: bool) -> bool {
    let lit = |l: &Literal| lit_value(l, text, is_ts);
    match p {
        Predicate::IsNull(_) => matches!(v, Tv::Null),
        Predicate::IsNotNull(_) => !matches!(v, Tv::Null),
        _ if matches!(v, Tv::Null) => false,
        Predicate::Eq(_, l) => tv_cmp(v, &lit(l)).is_eq(),
        Predicate::NotEq(_, l) => !tv_cmp(v, &lit(l)).is_eq(),
        Predicate::In(_, ls) => ls.iter().any(|l| tv_cmp(v, &lit(l)).is_eq()),
        Predicate::Range { low, high, .. } => {
            low.as_ref().is_none_or(|(l, incl)| {
                let c = tv_cmp(v, &lit(l));
                if *incl {
                    c.is_ge()
                } else {
                    c.is_gt()
                }
            }) && high.as_ref().is_none_or(|(l, incl)| {
                let c = tv_cmp(v, &lit(l));
                if *incl {
                    c.is_le()
                } else {
                    c.is_lt()
                }
            })
        }
    }
}

/// A segment's rows as the brute force sees them: per column, its values (None for a
/// multi-value column) and whether it is text.
struct Rows {
    n: usize,
    cols: Vec<(String, Option<Vec<Tv>>, bool)>,
}

fn rows_of(all: &RecordBatch) -> Rows {
    let schema = all.schema();
    let cols = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(ci, f)| {
            let a = all.column(ci);
            let values =
                (!matches!(a.data_type(), arrow::datatypes::DataType::List(_))).then(|| {
                    (0..all.num_rows())
                        .map(|r| row_value(a.as_ref(), r))
                        .collect()
                });
            let text = matches!(a.data_type(), arrow::datatypes::DataType::Utf8);
            (f.name().clone(), values, text)
        })
        .collect();
    Rows {
        n: all.num_rows(),
        cols,
    }
}

/// The docs matching every predicate, by brute force (multi-value predicates select every
/// row, as the segment does).
fn brute_rows(rows: &Rows, preds: &[Predicate]) -> RoaringBitmap {
    let mut keep = vec![true; rows.n];
    for p in preds {
        let (_, values, text) = rows.cols.iter().find(|c| c.0 == p.column()).unwrap();
        let Some(values) = values else { continue };
        let is_ts = p.column() == "ts";
        for (r, v) in values.iter().enumerate() {
            keep[r] &= brute_matches(p, v, *text, is_ts);
        }
    }
    (0..rows.n as u32).filter(|r| keep[*r as usize]).collect()
}

fn brute(all: &RecordBatch, preds: &[Predicate]) -> RoaringBitmap {
    brute_rows(&rows_of(all), preds)
}

/// A literal for column `c` near its values: natural type mostly, sometimes another
/// convertible type (Int for doubles, Float for ints, text for numbers and timestamps).
fn random_literal(c: &str, rng: &mut Rng) -> Literal {
    match c {
        "k" => match rng.below(4) {
            0 => Literal::Float(rng.below(44) as f64 / 2.0 - 1.0),
            1 => Literal::Str((rng.below(22) as i64 - 1).to_string()),
            _ => Literal::Int(rng.below(22) as i64 - 1),
        },
        "i2" => match rng.below(3) {
            0 => Literal::Float((rng.below(2100) as f64 - 1050.0) / 2.0),
            _ => Literal::Int(rng.below(1100) as i64 - 550),
        },
        "r" => Literal::Int(rng.below(52_000) as i64 - 100),
        "b" => match rng.below(3) {
            0 => Literal::Int(rng.below(2) as i64),
            _ => Literal::Bool(rng.chance(50)),
        },
        "d" => match rng.below(5) {
            0 => Literal::Int(rng.below(1000) as i64 - 500),
            1 => Literal::Float(SPECIAL_DOUBLES[1 + rng.below(5) as usize]),
            2 => Literal::Str(((rng.below(4000) as f64 - 2000.0) / 4.0).to_string()),
            _ => Literal::Float((rng.below(4400) as f64 - 2200.0) / 4.0),
        },
        "f" => match rng.below(2) {
            0 => Literal::Float(rng.below(140) as f64 / 8.0 - 1.0),
            _ => Literal::Int(rng.below(18) as i64),
        },
        "s" => match rng.below(5) {
            0 => Literal::Str(format!("v{}", rng.below(2000))),
            1 => Literal::Str(format!("v{}x", rng.below(200))),
            _ => Literal::Str(format!("v{}", rng.below(210))),
        },
        "ts" => {
            let secs = rng.below(3700) as i64 - 50;
            match rng.below(4) {
                0 if (0..3600).contains(&secs) => {
                    Literal::Str(format!("2024-01-01T00:{:02}:{:02}Z", secs / 60, secs % 60))
                }
                1 => Literal::Str((BASE_MS + secs * 1000).to_string()),
                _ => Literal::Int(BASE_MS + secs * 1000 + rng.below(2) as i64 * 500),
            }
        }
        "mv" => Literal::Int(rng.below(10) as i64),
        other => panic!("unexpected column {other}"),
    }
}

fn random_predicate(rng: &mut Rng) -> Predicate {
    const COLS: [&str; 9] = ["k", "s", "i2", "b", "mv", "r", "d", "f", "ts"];
    let c = COLS[rng.below(COLS.len() as u64) as usize];
    let col = c.to_string();
    match rng.below(8) {
        0 => Predicate::Eq(col, random_literal(c, rng)),
        1 => Predicate::NotEq(col, random_literal(c, rng)),
        2 => Predicate::In(
            col,
            (0..rng.below(5)).map(|_| random_literal(c, rng)).collect(),
        ),
        3 => Predicate::IsNull(col),
        4 => Predicate::IsNotNull(col),
        _ => {
            let bound =
                |rng: &mut Rng| (!rng.chance(20)).then(|| (random_literal(c, rng), rng.chance(50)));
            let low = bound(rng);
            let high = bound(rng);
            Predicate::Range {
                column: col,
                low,
                high,
            }
        }
    }
}

fn filter_variants(cols: &TableColumns) -> Vec<(&'static str, SealOptions)> {
    vec![
        (
            "indexed",
            SealOptions {
                sorted_column: Some("ts".into()),
                no_dictionary: names(&["r", "i2", "f"]),
                inverted: names(&["k", "s", "b"]),
                range: names(&["r", "d", "i2", "f"]),
                bloom: names(&["s", "r", "d"]),
                time_column: Some("ts".into()),
                ..SealOptions::default()
            },
        ),
        ("dictionary, no index", SealOptions::default()),
        (
            "raw, no index",
            SealOptions {
                no_dictionary: cols.columns.iter().map(|c| c.name.clone()).collect(),
                ..SealOptions::default()
            },
        ),
    ]
}

#[test]
fn test_filter_matches_brute_force_with_and_without_indexes() {
    let cols = table(FILTER_SCHEMA);
    let mut rng = Rng(42);
    let rows = 5_000;
    let batches = filter_batches(&cols, rows, &mut rng);
    let dir = tempfile::tempdir().unwrap();
    let mut segs = Vec::new();
    for (label, opts) in filter_variants(&cols) {
        let path = dir
            .path()
            .join(format!("{}.seg", label.replace([',', ' '], "_")));
        write_segment(&path, "f_0", &cols, &batches, &opts).unwrap();
        let seg = SealedSegment::open(&path, "f_0", cols.clone(), LoadMode::Mmap).unwrap();
        let all = rows_of(&all_rows(&seg));
        segs.push((label, seg, all));
    }
    let mut checked_nonempty = 0;
    for round in 0..1500 {
        let preds: Vec<Predicate> = (0..1 + (round % 3))
            .map(|_| random_predicate(&mut rng))
            .collect();
        for (label, seg, all) in &segs {
            let want = brute_rows(all, &preds);
            let got = seg.filter(&preds).unwrap();
            assert_eq!(
                got.docs,
                want,
                "{label}: {preds:?} selected {} docs, brute force {}",
                got.docs.len(),
                want.len()
            );
            assert!(got.entries_scanned <= (rows * preds.len()) as u64);
            if !want.is_empty() {
                checked_nonempty += 1;
            }
            for p in &preds {
                // (Multi-value columns prune with "some item matches", which the brute force
                // does not model: it selects every row for them, as `filter` does.)
                if p.column() != "mv" && !brute_rows(all, std::slice::from_ref(p)).is_empty() {
                    assert!(seg.can_match(p), "{label}: can_match false for {p:?}");
                }
            }
        }
    }
    assert!(checked_nonempty > 1000, "{checked_nonempty}");
    // Bounds at the ends of the integer domain (the typed scan of raw integer columns).
    let range = |c: &str, low: Option<(i64, bool)>, high: Option<(i64, bool)>| Predicate::Range {
        column: c.into(),
        low: low.map(|(v, i)| (Literal::Int(v), i)),
        high: high.map(|(v, i)| (Literal::Int(v), i)),
    };
    for c in ["r", "i2", "ts"] {
        for p in [
            range(c, Some((i64::MAX, false)), None),
            range(c, None, Some((i64::MIN, false))),
            range(c, Some((i64::MIN, true)), Some((i64::MAX, true))),
            range(c, Some((i64::MIN, false)), Some((i64::MAX, false))),
            range(c, Some((-5, false)), Some((BASE_MS, true))),
        ] {
            for (label, seg, all) in &segs {
                let want = brute_rows(all, std::slice::from_ref(&p));
                assert_eq!(
                    seg.filter(std::slice::from_ref(&p)).unwrap().docs,
                    want,
                    "{label}: {p:?}"
                );
            }
        }
    }

    // Index use: no entries scanned on inverted and sorted columns; block skipping on a
    // selective range over a raw range-indexed column.
    let (_, indexed, _) = &segs[0];
    let (_, plain, _) = &segs[1];
    for p in [
        Predicate::Eq("k".into(), Literal::Int(3)),
        Predicate::In(
            "s".into(),
            vec![Literal::Str("v1".into()), Literal::Str("v7".into())],
        ),
        Predicate::NotEq("k".into(), Literal::Int(3)),
        Predicate::Range {
            column: "k".into(),
            low: Some((Literal::Int(2), true)),
            high: Some((Literal::Float(9.5), false)),
        },
        Predicate::Range {
            column: "ts".into(),
            low: Some((Literal::Int(BASE_MS + 100_000), true)),
            high: Some((Literal::Str("2024-01-01T00:05:00Z".into()), false)),
        },
        Predicate::Range {
            column: "d".into(),
            low: Some((Literal::Float(-10.0), true)),
            high: None,
        },
    ] {
        let got = indexed.filter(std::slice::from_ref(&p)).unwrap();
        assert_eq!(got.entries_scanned, 0, "{p:?}");
        assert!(!got.docs.is_empty(), "{p:?}");
        assert_eq!(
            plain
                .filter(std::slice::from_ref(&p))
                .unwrap()
                .entries_scanned,
            rows as u64,
            "{p:?}"
        );
    }

    // Two ranges on one raw column are one scan of their intersection.
    let (label, raw, all) = &segs[2];
    {
        let c = "ts";
        let both = [
            range(c, Some((BASE_MS + 50_000, false)), None),
            range(c, Some((BASE_MS, true)), Some((BASE_MS + 900_000, false))),
        ];
        let got = raw.filter(&both).unwrap();
        assert_eq!(got.docs, brute_rows(all, &both), "{label}: {both:?}");
        assert!(!got.docs.is_empty(), "{label}: {both:?}");
        assert_eq!(got.entries_scanned, rows as u64, "{label}: {both:?}");
    }
    let selective = Predicate::Range {
        column: "r".into(),
        low: Some((Literal::Int(20_000), true)),
        high: Some((Literal::Int(21_000), false)),
    };
    let got = indexed.filter(std::slice::from_ref(&selective)).unwrap();
    assert!(!got.docs.is_empty());
    // Two of five blocks are read: the one holding 20,000..21,000 and the last, where the
    // rows with a NULL sort key (from everywhere in `r`) ended up.
    assert!(
        got.entries_scanned < rows as u64 / 2,
        "{}",
        got.entries_scanned
    );
    assert_eq!(
        plain
            .filter(std::slice::from_ref(&selective))
            .unwrap()
            .entries_scanned,
        rows as u64
    );
    // Index-answered predicates go first; the scan reads only the docs they left.
    let both = [
        selective.clone(),
        Predicate::Eq("k".into(), Literal::Int(3)),
    ];
    let got = indexed.filter(&both).unwrap();
    let k3 = indexed.filter(&both[1..]).unwrap().docs.len();
    assert!(got.entries_scanned <= k3, "{} > {k3}", got.entries_scanned);
}

#[test]
fn test_sorted_column_equality_is_a_contiguous_range() {
    let cols = table(FILTER_SCHEMA);
    let mut rng = Rng(3);
    let batches = filter_batches(&cols, 4_000, &mut rng);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sorted.seg");
    let opts = SealOptions {
        sorted_column: Some("ts".into()),
        // Raw in the config: a sorted column still gets its dictionary.
        no_dictionary: names(&["ts"]),
        ..SealOptions::default()
    };
    let sealed = write_segment(&path, "s_0", &cols, &batches, &opts).unwrap();
    let ts = sealed.info.columns.iter().find(|c| c.name == "ts").unwrap();
    assert!(ts.sorted && ts.has_dictionary);
    assert_eq!(ts.indexes, vec!["sorted"]);
    for seg in open_both(&path, "s_0", &cols) {
        let all = all_rows(&seg);
        let tsa = all
            .column(cols.index_of("ts").unwrap())
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap();
        // Sorted ascending, nulls last.
        let nn = tsa.len() - tsa.null_count();
        assert!((0..nn).all(|i| tsa.is_valid(i)));
        assert!((1..nn).all(|i| tsa.value(i - 1) <= tsa.value(i)));
        let v = tsa.value(nn / 2);
        let sel = seg
            .filter(&[Predicate::Eq("ts".into(), Literal::Int(v))])
            .unwrap();
        assert_eq!(sel.entries_scanned, 0);
        let (lo, hi) = (sel.docs.min().unwrap(), sel.docs.max().unwrap());
        assert_eq!(sel.docs.len(), (hi - lo + 1) as u64, "not contiguous");
        assert!(sel.docs.iter().all(|d| tsa.value(d as usize) == v));
        assert_eq!(
            sel.docs,
            brute(&all, &[Predicate::Eq("ts".into(), Literal::Int(v))])
        );
    }
}

#[test]
fn test_can_match_prunes_by_min_max_and_bloom() {
    let cols = table(FILTER_SCHEMA);
    let mut rng = Rng(11);
    let batches = filter_batches(&cols, 3_000, &mut rng);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prune.seg");
    let opts = SealOptions {
        no_dictionary: names(&["r", "s"]),
        bloom: names(&["r", "s"]),
        ..SealOptions::default()
    };
    write_segment(&path, "p_0", &cols, &batches, &opts).unwrap();
    let seg = SealedSegment::open(&path, "p_0", cols.clone(), LoadMode::Heap).unwrap();
    let eq = |c: &str, l: Literal| Predicate::Eq(c.into(), l);
    // Outside min / max.
    assert!(!seg.can_match(&eq("k", Literal::Int(20))));
    assert!(!seg.can_match(&eq("k", Literal::Int(-1))));
    assert!(!seg.can_match(&eq("k", Literal::Float(2.5))));
    assert!(!seg.can_match(&Predicate::Range {
        column: "r".into(),
        low: Some((Literal::Int(40_000), false)),
        high: None
    }));
    assert!(!seg.can_match(&Predicate::Range {
        column: "ts".into(),
        low: None,
        high: Some((Literal::Str("2023-12-31T23:59:59Z".into()), true))
    }));
    assert!(seg.can_match(&Predicate::Range {
        column: "ts".into(),
        low: None,
        high: Some((Literal::Str("2024-01-01T00:10:00Z".into()), true))
    }));
    assert!(!seg.can_match(&Predicate::In(
        "k".into(),
        vec![Literal::Int(25), Literal::Int(99)]
    )));
    assert!(seg.can_match(&eq("k", Literal::Int(3))));
    // A literal that does not convert never prunes.
    assert!(seg.can_match(&eq("k", Literal::Str("three".into()))));
    // Unknown columns never prune.
    assert!(seg.can_match(&eq("nope", Literal::Int(1))));
    // Nulls.
    assert!(seg.can_match(&Predicate::IsNull("k".into())));
    assert!(!seg.can_match(&Predicate::IsNull("mv".into())));
    // Multi-value: min / max over the items (Pinot: some item matches).
    assert!(!seg.can_match(&eq("mv", Literal::Int(100))));
    assert!(seg.can_match(&eq("mv", Literal::Int(3))));
    assert!(seg.can_match(&Predicate::IsNotNull("k".into())));
    // Bloom: values inside min / max but absent are mostly pruned.
    let all = all_rows(&seg);
    let present: std::collections::HashSet<i64> = all
        .column(cols.index_of("r").unwrap())
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    let mut absent = 0;
    let mut passed = 0;
    for v in 100..29_000i64 {
        if present.contains(&v) {
            assert!(seg.can_match(&eq("r", Literal::Int(v))));
        } else {
            absent += 1;
            passed += seg.can_match(&eq("r", Literal::Int(v))) as u32;
        }
    }
    assert!(absent > 10_000);
    assert!(
        passed * 20 < absent,
        "{passed} of {absent} absent values passed the bloom filter"
    );
    let mut passed = 0;
    for v in 0..1000 {
        passed += seg.can_match(&eq("s", Literal::Str(format!("v{v}x")))) as u32;
    }
    assert!(passed < 50, "{passed}");
}

#[test]
fn test_unknown_and_multi_value_columns_select_everything() {
    let cols = table(FILTER_SCHEMA);
    let mut rng = Rng(5);
    let batches = filter_batches(&cols, 500, &mut rng);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.seg");
    write_segment(&path, "u_0", &cols, &batches, &SealOptions::default()).unwrap();
    let seg = SealedSegment::open(&path, "u_0", cols, LoadMode::Mmap).unwrap();
    for p in [
        Predicate::Eq("missing".into(), Literal::Int(1)),
        Predicate::Eq("mv".into(), Literal::Int(1)),
        Predicate::Eq("k".into(), Literal::Str("not a number".into())),
        Predicate::Range {
            column: "d".into(),
            low: Some((Literal::Float(f64::NAN), true)),
            high: None,
        },
    ] {
        let sel = seg.filter(std::slice::from_ref(&p)).unwrap();
        assert_eq!(sel.docs.len(), 500, "{p:?}");
        assert!(seg.can_match(&p));
    }
    assert_eq!(seg.filter(&[]).unwrap().docs.len(), 500);
}

// ---------------------------------------------------------------------------------------
// Schema evolution, time range, empty segments
// ---------------------------------------------------------------------------------------

#[test]
fn test_added_and_removed_columns() {
    let old = table(
        r#"{"schemaName":"t","dimensionFieldSpecs":[{"name":"a","dataType":"INT"},
        {"name":"gone","dataType":"STRING"}]}"#,
    );
    let new = table(
        r#"{"schemaName":"t","dimensionFieldSpecs":[{"name":"a","dataType":"INT"},
        {"name":"added","dataType":"STRING","defaultNullValue":"none"},
        {"name":"addedmv","dataType":"LONG","singleValueField":false}],
        "metricFieldSpecs":[{"name":"m","dataType":"DOUBLE"}]}"#,
    );
    let b = batch(
        &old,
        vec![
            Arc::new(Int32Array::from(vec![3, 1, 2])),
            Arc::new(StringArray::from(vec!["x", "y", "z"])),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evolve.seg");
    write_segment(&path, "e_0", &old, &[b], &SealOptions::default()).unwrap();
    for seg in open_both(&path, "e_0", &new) {
        let all = all_rows(&seg);
        assert_eq!(all.schema().fields().len(), 4);
        let a = all.column(0).as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!(a.values(), &[3, 1, 2]);
        let added = all
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(added.iter().collect::<Vec<_>>(), vec![Some("none"); 3]);
        assert_eq!(new.default_of(1), &DefaultValue::String("none".into()));
        let mv = all.column(2).as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(mv.value(0).len(), 1);
        let m = all
            .column(3)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(m.values(), &[0.0, 0.0, 0.0]);
        // Predicates on a column the segment lacks select everything; removed columns are gone.
        let sel = seg
            .filter(&[Predicate::Eq("added".into(), Literal::Str("zzz".into()))])
            .unwrap();
        assert_eq!(sel.docs.len(), 3);
        assert!(seg.column_info("gone").is_some());
        assert!(seg.can_match(&Predicate::Eq("gone".into(), Literal::Str("q".into()))));
    }
}

#[test]
fn test_time_range_from_epoch_column_format() {
    let cols = table(
        r#"{"schemaName":"t","dimensionFieldSpecs":[{"name":"a","dataType":"INT"}],
        "dateTimeFieldSpecs":[{"name":"secs","dataType":"LONG","format":"1:SECONDS:EPOCH","granularity":"1:SECONDS"},
        {"name":"day","dataType":"STRING","format":"1:DAYS:SIMPLE_DATE_FORMAT:yyyyMMdd","granularity":"1:DAYS"}]}"#,
    );
    let b = batch(
        &cols,
        vec![
            Arc::new(Int32Array::from(vec![1, 2, 3])),
            Arc::new(Int64Array::from(vec![
                Some(1_700_000_100),
                None,
                Some(1_700_000_000),
            ])),
            Arc::new(StringArray::from(vec!["20240101", "20240102", "20231231"])),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.seg");
    let opts = SealOptions {
        time_column: Some("secs".into()),
        ..SealOptions::default()
    };
    let f = write_segment(&path, "t_0", &cols, std::slice::from_ref(&b), &opts).unwrap();
    assert_eq!(f.info.start_time_ms, Some(1_700_000_000_000));
    assert_eq!(f.info.end_time_ms, Some(1_700_000_100_000));
    let opts = SealOptions {
        time_column: Some("day".into()),
        ..SealOptions::default()
    };
    let f = write_segment(&path, "t_0", &cols, &[b], &opts).unwrap();
    assert_eq!((f.info.start_time_ms, f.info.end_time_ms), (None, None));
}

#[test]
fn test_empty_segment() {
    let cols = table(FILTER_SCHEMA);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.seg");
    let opts = filter_variants(&cols).remove(0).1;
    let f = write_segment(&path, "e_0", &cols, &[], &opts).unwrap();
    assert_eq!(f.info.total_docs, 0);
    for seg in open_both(&path, "e_0", &cols) {
        assert!(seg.read(None, None, 10).unwrap().is_empty());
        assert!(seg.filter(&[]).unwrap().docs.is_empty());
        assert!(!seg.can_match(&Predicate::IsNull("k".into())));
        assert!(!seg.can_match(&Predicate::Eq("k".into(), Literal::Int(1))));
    }
}

#[test]
fn test_seal_options_from_table_config() {
    let cfg = TableConfig::from_json(
        br#"{"tableName":"t","tableType":"REALTIME","segmentsConfig":{"timeColumnName":"ts"},
        "tenants":{},
        "tableIndexConfig":{"sortedColumn":["city"],"invertedIndexColumns":["a"],
          "rangeIndexColumns":["b"],"bloomFilterColumns":["c"],"noDictionaryColumns":["d"],
          "noDictionaryConfig":{"e":"SNAPPY"},"bloomFilterConfigs":{"f":{"fpp":0.01}}},
        "fieldConfigList":[
          {"name":"g","encodingType":"RAW","indexType":"INVERTED"},
          {"name":"h","encodingType":"DICTIONARY","indexTypes":["RANGE","inverted","TEXT"]},
          {"name":"i","indexes":{"inverted":{},"range":{"disabled":true},"bloom":{"fpp":0.01}}},
          {"name":"j","indexes":{"dictionary":{"disabled":true},"h3":{}}},
          {"name":"k","indexTypes":["BLOOM_FILTER","SORTED"]}]}"#,
    )
    .unwrap();
    let o = SealOptions::from_table(&cfg);
    assert_eq!(o.sorted_column.as_deref(), Some("city"));
    assert_eq!(o.time_column.as_deref(), Some("ts"));
    assert_eq!(o.inverted, names(&["a", "g", "h", "i"]));
    assert_eq!(o.range, names(&["b", "h"]));
    assert_eq!(o.bloom, names(&["c", "f", "i", "k"]));
    assert_eq!(o.no_dictionary, names(&["d", "e", "g", "j"]));
    let cfg = TableConfig::from_json(
        br#"{"tableName":"t","tableType":"OFFLINE","segmentsConfig":{},"tenants":{},
        "tableIndexConfig":{},"fieldConfigList":[{"name":"k","indexTypes":["SORTED"]}]}"#,
    )
    .unwrap();
    let o = SealOptions::from_table(&cfg);
    assert_eq!(o.sorted_column.as_deref(), Some("k"));
    assert_eq!(o.time_column, None);
    assert!(o.inverted.is_empty() && o.no_dictionary.is_empty());
}

// ---------------------------------------------------------------------------------------
// Corruption
// ---------------------------------------------------------------------------------------

fn indexed_segment(dir: &Path) -> (PathBuf, Arc<TableColumns>) {
    let cols = table(FILTER_SCHEMA);
    let mut rng = Rng(9);
    let batches = filter_batches(&cols, 2_500, &mut rng);
    let path = dir.join("good.seg");
    let opts = filter_variants(&cols).remove(0).1;
    write_segment(&path, "c_0", &cols, &batches, &opts).unwrap();
    (path, cols)
}

/// The footer JSON and the trailer of a segment file.
fn footer_of(bytes: &[u8]) -> (usize, serde_json::Value) {
    let t = bytes.len() - 32;
    let fo = u64::from_le_bytes(bytes[t..t + 8].try_into().unwrap()) as usize;
    (fo, serde_json::from_slice(&bytes[fo..t]).unwrap())
}

fn expect_corrupt(path: &Path, cols: &Arc<TableColumns>, what: &str) -> String {
    let mut reason = String::new();
    for mode in [LoadMode::Mmap, LoadMode::Heap] {
        match SealedSegment::open(path, "c_0", cols.clone(), mode) {
            Err(SegmentError::Corrupt { segment, reason: r }) => {
                assert_eq!(segment, "c_0");
                assert!(r.contains(&path.display().to_string()), "{what}: {r}");
                reason = r;
            }
            Err(other) => panic!("{what}: expected corrupt, got {other}"),
            Ok(_) => panic!("{what}: a damaged file opened"),
        }
    }
    reason
}

#[test]
fn test_truncated_files_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (path, cols) = indexed_segment(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let bad = dir.path().join("bad.seg");
    let mut cuts: Vec<usize> = (0..50).map(|k| bytes.len() * k / 50).collect();
    cuts.extend((1..=40).map(|k| bytes.len() - k));
    for cut in cuts {
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        expect_corrupt(&bad, &cols, &format!("truncated at {cut}"));
    }
    // Bytes appended are as bad as bytes missing.
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"extra");
    std::fs::write(&bad, &longer).unwrap();
    expect_corrupt(&bad, &cols, "appended");
}

#[test]
fn test_flipped_bytes_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (path, cols) = indexed_segment(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let (fo, footer) = footer_of(&bytes);
    let bad = dir.path().join("bad.seg");
    let mut spots: Vec<(usize, String)> = Vec::new();
    for s in footer["sections"].as_array().unwrap() {
        let off = s["offset"].as_u64().unwrap() as usize;
        let len = s["length"].as_u64().unwrap() as usize;
        let name = s["name"].as_str().unwrap().to_string();
        spots.push((off, format!("{name} first byte")));
        spots.push((off + len / 2, format!("{name} middle")));
        spots.push((off + len - 1, format!("{name} last byte")));
    }
    assert!(spots.len() > 40, "{} sections", spots.len() / 3);
    for k in 0..10 {
        spots.push((fo + (bytes.len() - 32 - fo) * k / 10, format!("footer {k}")));
    }
    for at in [0, 3, 9, 20, 63] {
        spots.push((at, format!("header byte {at}")));
    }
    for k in 1..=32 {
        spots.push((bytes.len() - k, format!("trailer byte -{k}")));
    }
    for (at, what) in spots {
        let mut b = bytes.clone();
        b[at] ^= 0x5a;
        std::fs::write(&bad, &b).unwrap();
        let reason = expect_corrupt(&bad, &cols, &what);
        if what.ends_with("middle") {
            assert!(reason.contains("checksum mismatch"), "{what}: {reason}");
        }
    }
    // Padding between sections is checked too.
    let first = footer["sections"][0]["length"].as_u64().unwrap() as usize + 64;
    if first % 64 != 0 {
        let mut b = bytes.clone();
        b[first] = 1;
        std::fs::write(&bad, &b).unwrap();
        expect_corrupt(&bad, &cols, "padding");
    }
    // Garbage and an empty file.
    std::fs::write(&bad, vec![0xabu8; 10_000]).unwrap();
    expect_corrupt(&bad, &cols, "garbage");
    std::fs::write(&bad, b"").unwrap();
    expect_corrupt(&bad, &cols, "empty");
}

#[test]
fn test_unknown_version_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (path, cols) = indexed_segment(dir.path());
    let mut b = std::fs::read(&path).unwrap();
    let t = b.len() - 32;
    let next = FORMAT_VERSION + 1;
    b[8..12].copy_from_slice(&next.to_le_bytes());
    b[t + 20..t + 24].copy_from_slice(&next.to_le_bytes());
    let bad = dir.path().join("next.seg");
    std::fs::write(&bad, &b).unwrap();
    let reason = expect_corrupt(&bad, &cols, "next version");
    assert!(
        reason.contains(&format!(
            "format version {next} is not supported (this build reads [1, 2, 3])"
        )),
        "{reason}"
    );
    // A newer file that calls itself version 1 (its footer has packed ids).
    b[8..12].copy_from_slice(&1u32.to_le_bytes());
    b[t + 20..t + 24].copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(&bad, &b).unwrap();
    let reason = expect_corrupt(&bad, &cols, "version 1 header on a newer file");
    assert!(
        reason.contains(&format!("footer says format version {FORMAT_VERSION}")),
        "{reason}"
    );
}

/// Rewrites the footer JSON and its CRC: a file whose checksums are right but whose
/// structure lies must still be refused (or read consistently), never panic.
#[test]
fn test_consistent_checksums_with_lying_footer_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (path, cols) = indexed_segment(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let (fo, footer) = footer_of(&bytes);
    let bad = dir.path().join("lie.seg");

    fn numbers(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Number(_) => out.push(at),
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    numbers(x, format!("{at}/{i}"), out);
                }
            }
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    numbers(
                        x,
                        format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            _ => {}
        }
    }
    let mut pointers = Vec::new();
    numbers(&footer, String::new(), &mut pointers);
    assert!(pointers.len() > 100);
    let mut refused = 0;
    for (k, ptr) in pointers.iter().enumerate() {
        // Every third number, to keep the test quick; several kinds of lies.
        if k % 3 != 0 {
            continue;
        }
        for lie in [1i64, -1, 1 << 40] {
            let mut f = footer.clone();
            let v = f.pointer_mut(ptr).unwrap();
            let n = v.as_i64().unwrap_or(0);
            *v = serde_json::json!(n.saturating_add(lie));
            let fb = serde_json::to_vec(&f).unwrap();
            let mut b = bytes[..fo].to_vec();
            b.extend_from_slice(&fb);
            b.extend_from_slice(&(fo as u64).to_le_bytes());
            b.extend_from_slice(&(fb.len() as u64).to_le_bytes());
            b.extend_from_slice(&crc32fast::hash(&fb).to_le_bytes());
            b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
            b.extend_from_slice(b"RIFFLSEG");
            std::fs::write(&bad, &b).unwrap();
            match SealedSegment::open(&bad, "c_0", cols.clone(), LoadMode::Heap) {
                Err(SegmentError::Corrupt { .. }) => refused += 1,
                Err(other) => panic!("{ptr}: {other}"),
                Ok(seg) => {
                    // Accepted (a statistic changed): reading and filtering must not panic.
                    let _ = seg.read(None, None, 777);
                    for c in ["k", "s", "r", "d", "ts", "i2"] {
                        let p = Predicate::Range {
                            column: c.into(),
                            low: Some((Literal::Int(3), true)),
                            high: None,
                        };
                        let _ = seg.filter(std::slice::from_ref(&p));
                        let _ = seg.can_match(&p);
                    }
                }
            }
        }
    }
    assert!(refused > 100, "{refused}");
}

// ---------------------------------------------------------------------------------------
// Golden file (format version 1)
// ---------------------------------------------------------------------------------------

const GOLDEN_SCHEMA: &str = r#"{"schemaName":"golden",
  "dimensionFieldSpecs":[{"name":"city","dataType":"STRING"},{"name":"n","dataType":"INT"},
    {"name":"raw","dataType":"LONG"},{"name":"flag","dataType":"BOOLEAN"},
    {"name":"blob","dataType":"BYTES"},{"name":"tags","dataType":"STRING","singleValueField":false}],
  "metricFieldSpecs":[{"name":"price","dataType":"DOUBLE"},{"name":"ratio","dataType":"FLOAT"}],
  "dateTimeFieldSpecs":[{"name":"ts","dataType":"TIMESTAMP","format":"1:MILLISECONDS:TIMESTAMP","granularity":"1:MILLISECONDS"}]}"#;

fn golden_path() -> PathBuf {
    golden_path_of(1)
}

fn golden_path_of(version: u32) -> PathBuf {
    // The directory cargo runs the test in (a build reused from another checkout keeps
    // the compile-time path).
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join(format!("tests/data/golden_v{version}.seg"))
}

fn golden_options() -> SealOptions {
    SealOptions {
        sorted_column: Some("city".into()),
        no_dictionary: names(&["raw", "ratio"]),
        inverted: names(&["n"]),
        range: names(&["raw", "price"]),
        bloom: names(&["n", "raw"]),
        time_column: Some("ts".into()),
        // Version 2: codecs whose bytes do not depend on the build (GZIP's do: the
        // deflate backend is chosen by feature unification); `raw` gets the default (LZ4).
        compression: [
            ("price", Codec::Zstandard),
            ("tags", Codec::Snappy),
            ("blob", Codec::Lz4),
            ("ratio", Codec::PassThrough),
        ]
        .into_iter()
        .map(|(c, k)| (c.to_string(), k))
        .collect(),
    }
}

/// 24 rows; row r is fully determined by r (rows with r % 7 == 3 hold nulls).
fn golden_rows(cols: &TableColumns) -> RecordBatch {
    let n = 24;
    let null = |r: usize| r % 7 == 3;
    let cities = ["paris", "lyon", "nice", "brest"];
    let tags: ListArray = {
        let mut offsets = vec![0i32];
        let mut items = Vec::new();
        for r in 0..n {
            for k in 0..(r % 3) {
                items.push(format!("t{}", (r + k) % 5));
            }
            offsets.push(items.len() as i32);
        }
        ListArray::try_new(
            Arc::new(Field::new("item", arrow::datatypes::DataType::Utf8, true)),
            arrow::buffer::OffsetBuffer::new(offsets.into()),
            Arc::new(StringArray::from(items)),
            None,
        )
        .unwrap()
    };
    let arrays: Vec<ArrayRef> = cols
        .columns
        .iter()
        .map(|c| -> ArrayRef {
            match c.name.as_str() {
                "city" => Arc::new(StringArray::from_iter(
                    (0..n).map(|r| (!null(r)).then(|| cities[r % 4])),
                )),
                "n" => Arc::new(Int32Array::from_iter(
                    (0..n).map(|r| (!null(r)).then_some((r % 5) as i32 * 10)),
                )),
                "raw" => Arc::new(Int64Array::from_iter(
                    (0..n).map(|r| Some(r as i64 * 1_000_003 - 7)),
                )),
                "flag" => Arc::new(BooleanArray::from_iter(
                    (0..n).map(|r| (!null(r)).then_some(r % 2 == 0)),
                )),
                "blob" => Arc::new(BinaryArray::from_iter(
                    (0..n).map(|r| (!null(r)).then(|| vec![r as u8, 0xff])),
                )),
                "tags" => Arc::new(tags.clone()),
                "price" => Arc::new(Float64Array::from_iter(
                    (0..n).map(|r| (!null(r)).then_some(r as f64 * 1.25 - 3.0)),
                )),
                "ratio" => Arc::new(Float32Array::from_iter(
                    (0..n).map(|r| Some(r as f32 / 8.0)),
                )),
                "ts" => Arc::new(TimestampMillisecondArray::from_iter(
                    (0..n).map(|r| Some(BASE_MS + r as i64 * 60_000)),
                )),
                other => panic!("unexpected column {other}"),
            }
        })
        .collect();
    batch(cols, arrays)
}

/// Writes the golden file of the current version when asked (once per format version, with
/// `RIFFLE_WRITE_GOLDEN=1 cargo test -p riffle-segment --test sealed golden`; never rewrite
/// an existing version's file). Otherwise writes the same rows to a temporary file and checks
/// that they stay small and read back like the committed golden file, byte for byte.
#[test]
fn test_write_golden_when_asked() {
    let cols = table(GOLDEN_SCHEMA);
    let rows = golden_rows(&cols);
    let dir = tempfile::tempdir().unwrap();
    let golden = golden_path_of(FORMAT_VERSION);
    let path = if std::env::var("RIFFLE_WRITE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        golden.clone()
    } else {
        dir.path().join("golden.seg")
    };
    let name = "golden__0__0__20240101T0000Z";
    let f = write_segment(&path, name, &cols, &[rows], &golden_options()).unwrap();
    assert!(f.size_bytes < 20_000, "{} bytes", f.size_bytes);
    let fresh = SealedSegment::open(&path, name, cols.clone(), LoadMode::Heap).unwrap();
    let stored = SealedSegment::open(&golden, name, cols, LoadMode::Heap).unwrap();
    assert_eq!(fresh.info(), stored.info());
    assert_eq!(stored.info().format_version, FORMAT_VERSION);
    assert_same_rows(&all_rows(&fresh), &all_rows(&stored));
    // The writer is deterministic: a change that alters a single byte of an existing
    // version's files (a new layout, another dictionary order) needs a new version.
    assert!(
        std::fs::read(&path).unwrap() == std::fs::read(&golden).unwrap(),
        "the writer no longer writes the golden v{FORMAT_VERSION} bytes"
    );
}

/// Versions 2 and 3 keep what version 1 holds, smaller: the same rows, statistics and
/// indexes from every golden file.
#[test]
fn test_golden_v2_and_v3_read_as_v1() {
    let cols = table(GOLDEN_SCHEMA);
    let name = "golden__0__0__20240101T0000Z";
    for mode in [LoadMode::Heap, LoadMode::Mmap] {
        let v1 = SealedSegment::open(&golden_path_of(1), name, cols.clone(), mode).unwrap();
        for version in [2, 3] {
            let vn =
                SealedSegment::open(&golden_path_of(version), name, cols.clone(), mode).unwrap();
            let (mut a, mut b) = (v1.info().clone(), vn.info().clone());
            assert_eq!((a.format_version, b.format_version), (1, version));
            a.format_version = 0;
            b.format_version = 0;
            assert_eq!(a, b);
            assert_same_rows(&all_rows(&v1), &all_rows(&vn));
            let p = [Predicate::Eq("n".into(), Literal::Int(20))];
            assert_eq!(v1.filter(&p).unwrap(), vn.filter(&p).unwrap());
        }
    }
}

#[test]
fn test_golden_v1_still_reads() {
    let cols = table(GOLDEN_SCHEMA);
    let path = golden_path();
    assert!(path.exists(), "missing {}", path.display());
    let want = sorted_by(&golden_rows(&cols), cols.index_of("city").unwrap());
    for seg in open_both(&path, "golden__0__0__20240101T0000Z", &cols) {
        let info = seg.info();
        assert_eq!(info.format_version, 1);
        assert_eq!(info.name, "golden__0__0__20240101T0000Z");
        assert_eq!(info.total_docs, 24);
        assert_eq!(info.start_time_ms, Some(BASE_MS));
        assert_eq!(info.end_time_ms, Some(BASE_MS + 23 * 60_000));
        let c = |n: &str| seg.column_info(n).unwrap().clone();
        assert_eq!(c("city").indexes, vec!["sorted"]);
        assert!(c("city").sorted);
        assert_eq!(c("city").cardinality, Some(4));
        assert_eq!(c("city").null_count, 3);
        assert_eq!(c("city").min_value, Some(serde_json::json!("brest")));
        assert_eq!(c("city").max_value, Some(serde_json::json!("paris")));
        assert_eq!(c("n").indexes, vec!["inverted", "bloom"]);
        assert_eq!(c("raw").indexes, vec!["range", "bloom"]);
        assert!(!c("raw").has_dictionary);
        assert_eq!(c("price").indexes, vec!["range"]);
        assert_eq!(c("blob").min_value, Some(serde_json::json!("00ff")));
        assert_eq!(c("flag").max_value, Some(serde_json::json!(true)));
        assert_eq!(c("tags").min_value, Some(serde_json::json!("t0")));
        assert_same_rows(&all_rows(&seg), &want);
        let sel = seg
            .filter(&[Predicate::Eq("city".into(), Literal::Str("nice".into()))])
            .unwrap();
        assert_eq!(
            sel.docs.iter().collect::<Vec<_>>(),
            vec![10, 11, 12, 13, 14]
        );
        assert_eq!(sel.entries_scanned, 0);
        let sel = seg
            .filter(&[
                Predicate::Eq("n".into(), Literal::Int(20)),
                Predicate::Range {
                    column: "raw".into(),
                    low: Some((Literal::Int(10_000_000), true)),
                    high: None,
                },
            ])
            .unwrap();
        assert_eq!(
            sel.docs,
            brute(
                &all_rows(&seg),
                &[
                    Predicate::Eq("n".into(), Literal::Int(20)),
                    Predicate::Range {
                        column: "raw".into(),
                        low: Some((Literal::Int(10_000_000), true)),
                        high: None,
                    },
                ]
            )
        );
        assert_eq!(sel.docs.len(), 2);
        assert!(!seg.can_match(&Predicate::Eq("n".into(), Literal::Int(15))));
    }
}
