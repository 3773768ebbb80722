//! Pinot's aggregations that DataFusion lacks, on the plugin API.
//!
//! | Name | Result | Meaning (Pinot's) |
//! | --- | --- | --- |
//! | `DISTINCTCOUNT(x)` | INT | exact number of distinct values (any type) |
//! | `PERCENTILE(x, p)` | DOUBLE | exact: the sorted values' item at index ⌊n·p/100⌋ (the last for p = 100) |
//! | `MINMAXRANGE(x)` | DOUBLE | max − min |
//! | `MODE(x[, 'MIN' \| 'MAX' \| 'AVG'])` | DOUBLE | the most frequent value; ties reduced by MIN (default), MAX or AVG |
//! | `DISTINCTSUM(x)`, `DISTINCTAVG(x)` | DOUBLE | sum / average of the distinct values |
//! | `LASTWITHTIME(x, t, 'TYPE')`, `FIRSTWITHTIME(...)` | the type of `x` | the value at the greatest (least) `t` |
//! | `COUNTMV`, `SUMMV`, `MINMV`, `MAXMV`, `AVGMV`, `MINMAXRANGEMV`, `DISTINCTCOUNTMV`, `DISTINCTSUMMV`, `DISTINCTAVGMV`, `PERCENTILEMV`, `MODEMV` | as above (`COUNTMV`: LONG) | the same over every value of a multi-value column |
//!
//! | `DISTINCTCOUNTBITMAP(x)` | INT | as `DISTINCTCOUNT` (exact for every type; Pinot's bitmap hashes non-INT values) |
//! | `SEGMENTPARTITIONEDDISTINCTCOUNT(x)` | LONG | as `DISTINCTCOUNT` (exact across segments, so correct whatever the partitioning) |
//!
//! The estimating ones are in `sketch` (`DISTINCTCOUNTHLL`, `PERCENTILETDIGEST`, ...),
//! `theta` (`DISTINCTCOUNTTHETASKETCH`, `DISTINCTCOUNTSMARTHLL`) and `kll`
//! (`PERCENTILEKLL`); `moments` has `SKEWNESS`, `KURTOSIS` and `HISTOGRAM`, `precision`
//! has `SUMPRECISION`.
//!
//! Over no rows, `COUNTMV` and `DISTINCTCOUNT*` answer 0 and the others NULL (Pinot without
//! null handling answers its default values there, such as -Infinity, which JSON cannot
//! carry). Numbers are read as DOUBLE, as Pinot reads them.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{exec_err, Result, ScalarValue};

use super::kll::Kll;
use super::moments::{Histogram, Moments, Shape};
use super::multi_value::MultiValue;
use super::precision::SumPrecision;
use super::raw::Raw;
use super::sketch::{for_each_key, Digest, Hll};
use super::smart_hll::SmartHll;
use super::theta::Theta;
use super::with_time::WithTime;
use super::{Aggregation, AggregationArgs, AggregationState};

/// Every built-in aggregation.
pub fn all() -> Vec<Arc<dyn Aggregation>> {
    let single = [
        ("percentile", Kind::Percentile),
        ("minmaxrange", Kind::MinMaxRange),
        ("mode", Kind::Mode),
        ("distinctsum", Kind::DistinctSum),
        ("distinctavg", Kind::DistinctAvg),
    ];
    let multi = [
        ("countmv", Kind::Count),
        ("summv", Kind::Sum),
        ("minmv", Kind::Min),
        ("maxmv", Kind::Max),
        ("avgmv", Kind::Avg),
        ("minmaxrangemv", Kind::MinMaxRange),
        ("percentilemv", Kind::Percentile),
        ("modemv", Kind::Mode),
        ("distinctsummv", Kind::DistinctSum),
        ("distinctavgmv", Kind::DistinctAvg),
    ];
    let mut out: Vec<Arc<dyn Aggregation>> = vec![
        Arc::new(DistinctCount {
            name: "distinctcount",
            long: false,
        }),
        // Exact here, where Pinot's bitmap hashes values other than INT into 32 bits.
        Arc::new(DistinctCount {
            name: "distinctcountbitmap",
            long: false,
        }),
        Arc::new(DistinctCount {
            name: "segmentpartitioneddistinctcount",
            long: true,
        }),
        Arc::new(Theta {
            name: "distinctcountthetasketch",
        }),
        Arc::new(SmartHll {
            name: "distinctcountsmarthll",
        }),
        Arc::new(Moments {
            name: "skewness",
            shape: Shape::Skewness,
        }),
        Arc::new(Moments {
            name: "kurtosis",
            shape: Shape::Kurtosis,
        }),
        Arc::new(Histogram { name: "histogram" }),
        Arc::new(SumPrecision {
            name: "sumprecision",
        }),
        Arc::new(Kll {
            name: "percentilekll",
        }),
        Arc::new(MultiValue {
            name: "percentilekllmv",
            inner: Arc::new(Kll {
                name: "percentilekllmv",
            }),
        }),
        Arc::new(MultiValue {
            name: "distinctcountbitmapmv",
            inner: Arc::new(DistinctCount {
                name: "distinctcountbitmapmv",
                long: false,
            }),
        }),
    ];
    for (name, kind) in single {
        out.push(Arc::new(Numeric { name, kind }));
    }
    for (name, kind) in multi {
        out.push(Arc::new(MultiValue {
            name,
            inner: Arc::new(Numeric { name, kind }),
        }));
    }
    out.push(Arc::new(MultiValue {
        name: "distinctcountmv",
        inner: Arc::new(DistinctCount {
            name: "distinctcountmv",
            long: false,
        }),
    }));
    // Sketches (see `sketch`): single-value and multi-value forms.
    for (name, mv_name, p) in [
        ("distinctcounthll", "distinctcounthllmv", 8),
        ("distinctcounthllplus", "distinctcounthllplusmv", 14),
        ("distinctcountull", "distinctcountullmv", 12),
        ("distinctcountcpcsketch", "distinctcountcpcsketchmv", 12),
    ] {
        out.push(Arc::new(Hll {
            name,
            default_precision: p,
        }));
        out.push(Arc::new(MultiValue {
            name: mv_name,
            inner: Arc::new(Hll {
                name: mv_name,
                default_precision: p,
            }),
        }));
    }
    // The raw forms: the merged sketch as hex (see `raw`).
    for (name, inner) in [
        (
            "distinctcountrawhll",
            Arc::new(Hll {
                name: "distinctcountrawhll",
                default_precision: 8,
            }) as Arc<dyn Aggregation>,
        ),
        (
            "distinctcountrawhllplus",
            Arc::new(Hll {
                name: "distinctcountrawhllplus",
                default_precision: 14,
            }),
        ),
        (
            "distinctcountrawull",
            Arc::new(Hll {
                name: "distinctcountrawull",
                default_precision: 12,
            }),
        ),
        (
            "distinctcountrawcpcsketch",
            Arc::new(Hll {
                name: "distinctcountrawcpcsketch",
                default_precision: 12,
            }),
        ),
        (
            "distinctcountrawthetasketch",
            Arc::new(Theta {
                name: "distinctcountrawthetasketch",
            }),
        ),
        (
            "percentilerawtdigest",
            Arc::new(Digest {
                name: "percentilerawtdigest",
                long: false,
            }),
        ),
        (
            "percentilerawest",
            Arc::new(Digest {
                name: "percentilerawest",
                long: true,
            }),
        ),
        (
            "percentilerawkll",
            Arc::new(Kll {
                name: "percentilerawkll",
            }),
        ),
    ] {
        out.push(Arc::new(Raw { name, inner }));
    }
    for (name, inner) in [
        (
            "distinctcountrawhllmv",
            Arc::new(Hll {
                name: "distinctcountrawhllmv",
                default_precision: 8,
            }) as Arc<dyn Aggregation>,
        ),
        (
            "percentilerawtdigestmv",
            Arc::new(Digest {
                name: "percentilerawtdigestmv",
                long: false,
            }),
        ),
        (
            "percentilerawestmv",
            Arc::new(Digest {
                name: "percentilerawestmv",
                long: true,
            }),
        ),
        (
            "percentilerawkllmv",
            Arc::new(Kll {
                name: "percentilerawkllmv",
            }),
        ),
    ] {
        out.push(Arc::new(MultiValue {
            name,
            inner: Arc::new(Raw { name, inner }),
        }));
    }
    out.push(Arc::new(WithTime {
        name: "lastwithtime",
        last: true,
    }));
    out.push(Arc::new(WithTime {
        name: "firstwithtime",
        last: false,
    }));
    for (name, mv_name, long) in [
        ("percentiletdigest", "percentiletdigestmv", false),
        ("percentileest", "percentileestmv", true),
    ] {
        out.push(Arc::new(Digest { name, long }));
        out.push(Arc::new(MultiValue {
            name: mv_name,
            inner: Arc::new(Digest {
                name: mv_name,
                long,
            }),
        }));
    }
    out
}

/// What a [`Numeric`] aggregation computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    MinMaxRange,
    Percentile,
    Mode,
    DistinctSum,
    DistinctAvg,
}

/// An aggregation over the numbers of its first argument.
#[derive(Debug)]
struct Numeric {
    name: &'static str,
    kind: Kind,
}

impl Aggregation for Numeric {
    fn name(&self) -> &str {
        self.name
    }

    fn arity(&self) -> (usize, usize) {
        match self.kind {
            Kind::Percentile => (2, 2),
            Kind::Mode => (1, 2),
            _ => (1, 1),
        }
    }

    fn result_type(&self, types: &[DataType]) -> Result<DataType> {
        match types.first() {
            Some(_) if self.kind == Kind::Count => Ok(DataType::Int64),
            Some(t) if t.is_numeric() || t.is_null() => Ok(match self.kind {
                Kind::Count => DataType::Int64,
                _ => DataType::Float64,
            }),
            Some(t) => exec_err!("{} takes a number, got {t}", self.name),
            None => exec_err!("{} takes a column", self.name),
        }
    }

    fn initialise(&self, args: &AggregationArgs) -> Result<Box<dyn AggregationState>> {
        let percentile = if self.kind == Kind::Percentile {
            match args.number(1) {
                Some(p) if (0.0..=100.0).contains(&p) => p,
                _ => {
                    return exec_err!(
                        "{}: the percentile (second argument) must be a number from 0 to 100",
                        self.name
                    )
                }
            }
        } else {
            0.0
        };
        let reducer = if self.kind == Kind::Mode && args.types.len() > 1 {
            match args.text(1).map(|s| s.to_ascii_uppercase()).as_deref() {
                Some("MIN") => Reducer::Min,
                Some("MAX") => Reducer::Max,
                Some("AVG") => Reducer::Avg,
                _ => return exec_err!("{}: the reducer must be 'MIN', 'MAX' or 'AVG'", self.name),
            }
        } else {
            Reducer::Min
        };
        Ok(Box::new(NumericState {
            name: self.name,
            kind: self.kind,
            percentile,
            reducer,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            values: Vec::new(),
            counts: HashMap::new(),
        }))
    }
}

#[derive(Clone, Copy, Debug)]
enum Reducer {
    Min,
    Max,
    Avg,
}

#[derive(Debug)]
struct NumericState {
    name: &'static str,
    kind: Kind,
    percentile: f64,
    reducer: Reducer,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// PERCENTILE's values.
    values: Vec<f64>,
    /// MODE's counts, DISTINCTSUM/AVG's set (count unused), by the value's bits.
    counts: HashMap<u64, u64>,
}

/// -0.0 and 0.0 are one value.
fn bits(v: f64) -> u64 {
    if v == 0.0 {
        0
    } else {
        v.to_bits()
    }
}

impl NumericState {
    fn add(&mut self, v: f64) {
        match self.kind {
            Kind::Count | Kind::Sum | Kind::Avg => {
                self.count += 1;
                self.sum += v;
            }
            Kind::Min | Kind::Max | Kind::MinMaxRange => {
                self.count += 1;
                self.min = self.min.min(v);
                self.max = self.max.max(v);
            }
            Kind::Percentile => self.values.push(v),
            Kind::Mode | Kind::DistinctSum | Kind::DistinctAvg => {
                *self.counts.entry(bits(v)).or_insert(0) += 1
            }
        }
    }

    fn tag(&self) -> u8 {
        self.kind as u8
    }
}

fn read_u64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
}

impl AggregationState for NumericState {
    fn aggregate(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(a) = values.first() else {
            return exec_err!("{} takes a column", self.name);
        };
        if self.kind == Kind::Count {
            self.count += (a.len() - a.null_count()) as u64;
            return Ok(());
        }
        let a = cast(a, &DataType::Float64)?;
        for v in a.as_primitive::<Float64Type>().iter().flatten() {
            self.add(v);
        }
        Ok(())
    }

    fn serialize(&self) -> Result<Vec<u8>> {
        let mut out = vec![self.tag()];
        let mut put = |v: u64| out.extend_from_slice(&v.to_le_bytes());
        match self.kind {
            Kind::Count | Kind::Sum | Kind::Avg => {
                put(self.count);
                put(self.sum.to_bits());
            }
            Kind::Min | Kind::Max | Kind::MinMaxRange => {
                put(self.count);
                put(self.min.to_bits());
                put(self.max.to_bits());
            }
            Kind::Percentile => {
                for v in &self.values {
                    put(v.to_bits());
                }
            }
            Kind::Mode | Kind::DistinctSum | Kind::DistinctAvg => {
                for (k, c) in &self.counts {
                    put(*k);
                    put(*c);
                }
            }
        }
        Ok(out)
    }

    fn merge(&mut self, b: &[u8]) -> Result<()> {
        if b.first() != Some(&self.tag()) || (b.len() - 1) % 8 != 0 {
            return exec_err!("{}: not an intermediate result of this function", self.name);
        }
        let words: Vec<u64> = (1..b.len())
            .step_by(8)
            .filter_map(|at| read_u64(b, at))
            .collect();
        match (self.kind, words.as_slice()) {
            (Kind::Count | Kind::Sum | Kind::Avg, [c, s]) => {
                self.count += c;
                self.sum += f64::from_bits(*s);
            }
            (Kind::Min | Kind::Max | Kind::MinMaxRange, [c, lo, hi]) => {
                self.count += c;
                self.min = self.min.min(f64::from_bits(*lo));
                self.max = self.max.max(f64::from_bits(*hi));
            }
            (Kind::Percentile, w) => self.values.extend(w.iter().map(|v| f64::from_bits(*v))),
            (Kind::Mode | Kind::DistinctSum | Kind::DistinctAvg, w) if w.len() % 2 == 0 => {
                for kc in w.chunks_exact(2) {
                    *self.counts.entry(kc[0]).or_insert(0) += kc[1];
                }
            }
            _ => return exec_err!("{}: a malformed intermediate result", self.name),
        }
        Ok(())
    }

    fn finish(&self) -> Result<ScalarValue> {
        let none = || ScalarValue::Float64(None);
        Ok(match self.kind {
            Kind::Count => ScalarValue::Int64(Some(self.count as i64)),
            _ if self.count == 0 && self.values.is_empty() && self.counts.is_empty() => none(),
            Kind::Sum => ScalarValue::Float64(Some(self.sum)),
            Kind::Avg => ScalarValue::Float64(Some(self.sum / self.count as f64)),
            Kind::Min => ScalarValue::Float64(Some(self.min)),
            Kind::Max => ScalarValue::Float64(Some(self.max)),
            Kind::MinMaxRange => ScalarValue::Float64(Some(self.max - self.min)),
            Kind::Percentile => {
                let mut v = self.values.clone();
                v.sort_by(|a, b| a.total_cmp(b));
                let n = v.len();
                let at = ((n as f64 * self.percentile / 100.0) as usize).min(n - 1);
                ScalarValue::Float64(Some(v[at]))
            }
            Kind::Mode => {
                let top = self.counts.values().copied().max().unwrap_or(0);
                let tied: Vec<f64> = self
                    .counts
                    .iter()
                    .filter(|(_, c)| **c == top)
                    .map(|(k, _)| f64::from_bits(*k))
                    .collect();
                let r = match self.reducer {
                    Reducer::Min => tied.iter().copied().fold(f64::INFINITY, f64::min),
                    Reducer::Max => tied.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    Reducer::Avg => tied.iter().sum::<f64>() / tied.len() as f64,
                };
                ScalarValue::Float64(Some(r))
            }
            Kind::DistinctSum | Kind::DistinctAvg => {
                let sum: f64 = self.counts.keys().map(|k| f64::from_bits(*k)).sum();
                let r = if self.kind == Kind::DistinctSum {
                    sum
                } else {
                    sum / self.counts.len() as f64
                };
                ScalarValue::Float64(Some(r))
            }
        })
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.values.capacity() * 8 + self.counts.capacity() * 24
    }
}

/// `DISTINCTCOUNT(x)`: exact, over values of any type.
#[derive(Debug)]
struct DistinctCount {
    name: &'static str,
    /// LONG rather than INT (`SEGMENTPARTITIONEDDISTINCTCOUNT`).
    long: bool,
}

impl Aggregation for DistinctCount {
    fn name(&self) -> &str {
        self.name
    }

    fn result_type(&self, types: &[DataType]) -> Result<DataType> {
        match types.first() {
            Some(
                DataType::List(_)
                | DataType::LargeList(_)
                | DataType::Struct(_)
                | DataType::Map(_, _),
            ) => {
                exec_err!("{} takes a single value per row", self.name)
            }
            Some(_) if self.long => Ok(DataType::Int64),
            Some(_) => Ok(DataType::Int32),
            None => exec_err!("{} takes a column", self.name),
        }
    }

    fn initialise(&self, _args: &AggregationArgs) -> Result<Box<dyn AggregationState>> {
        Ok(Box::new(DistinctState {
            name: self.name,
            long: self.long,
            seen: hashbrown::HashSet::new(),
            bytes: 0,
            scratch: Vec::new(),
        }))
    }
}

/// Distinct values by their canonical bytes: a tag (integer, float, text, bytes) and the
/// value. A value already seen costs one hash and no allocation; the size is kept as keys
/// are added (DataFusion asks for it after every batch).
#[derive(Debug)]
struct DistinctState {
    name: &'static str,
    long: bool,
    seen: hashbrown::HashSet<Box<[u8]>>,
    /// Bytes of the keys held.
    bytes: usize,
    /// The key being looked up.
    scratch: Vec<u8>,
}

impl DistinctState {
    fn insert(&mut self, tag: u8, value: &[u8]) {
        self.scratch.clear();
        self.scratch.push(tag);
        self.scratch.extend_from_slice(value);
        let bytes = &mut self.bytes;
        self.seen
            .get_or_insert_with(self.scratch.as_slice(), |k: &[u8]| {
                *bytes += k.len();
                k.into()
            });
    }
}

impl AggregationState for DistinctState {
    fn aggregate(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(a) = values.first() else {
            return exec_err!("{} takes a column", self.name);
        };
        for_each_key(a, |tag, bytes| self.insert(tag, bytes))
    }

    fn serialize(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for k in &self.seen {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(k);
        }
        Ok(out)
    }

    fn merge(&mut self, b: &[u8]) -> Result<()> {
        let mut at = 0;
        while at < b.len() {
            let len = b
                .get(at..at + 4)
                .and_then(|s| s.try_into().ok())
                .map(u32::from_le_bytes);
            let item = len.and_then(|n| b.get(at + 4..at + 4 + n as usize));
            match item {
                Some(k) if !k.is_empty() => {
                    if !self.seen.contains(k) {
                        self.bytes += k.len();
                        self.seen.insert(k.into());
                    }
                    at += 4 + k.len();
                }
                _ => return exec_err!("{}: a malformed intermediate result", self.name),
            }
        }
        Ok(())
    }

    fn finish(&self) -> Result<ScalarValue> {
        let n = self.seen.len();
        Ok(if self.long {
            ScalarValue::Int64(Some(n as i64))
        } else {
            ScalarValue::Int32(Some(i32::try_from(n).unwrap_or(i32::MAX)))
        })
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.bytes
            + self.seen.capacity() * (std::mem::size_of::<Box<[u8]>>() + 1)
            + self.scratch.capacity()
    }
}
