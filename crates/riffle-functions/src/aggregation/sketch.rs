//! Pinot's estimating aggregations, on mergeable sketches.
//!
//! | Name | Result | Sketch and default |
//! | --- | --- | --- |
//! | `DISTINCTCOUNTHLL(x[, log2m])` | LONG | HyperLogLog, log2m 8 (Pinot's default; error about 1.04/√2^log2m) |
//! | `DISTINCTCOUNTHLLPLUS(x[, p])` | LONG | HyperLogLog, p 14 |
//! | `DISTINCTCOUNTULL(x[, p])`, `DISTINCTCOUNTCPCSKETCH(x[, lgK])` | LONG | HyperLogLog, 12 (an estimate of the same accuracy as Pinot's sketches, not the same sketch) |
//! | `PERCENTILETDIGEST(x, p[, compression])`, `PERCENTILETDIGEST<N>(x)` | DOUBLE | T-Digest, compression 100 |
//! | `PERCENTILEEST(x, p)`, `PERCENTILEEST<N>(x)` | LONG | T-Digest, compression 100, rounded (Pinot uses a Q-Digest with error 0.05) |
//! | the `...MV` forms | as above | over every value of a multi-value column |
//!
//! A sketch's intermediate result is the sketch itself (HyperLogLog: the precision and its
//! registers; T-Digest: its centroids), so partial results merge as Pinot's do. Values are
//! hashed by their canonical bytes (a number by its value, so INT 3 and LONG 3 are one),
//! with a fixed 64-bit hash, the same on every thread and run.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion_functions_aggregate_common::tdigest::{Centroid, TDigest};

use super::{Aggregation, AggregationArgs, AggregationState};

/// A HyperLogLog distinct count with its name and default precision.
#[derive(Debug)]
pub(super) struct Hll {
    pub(super) name: &'static str,
    pub(super) default_precision: u8,
}

impl Aggregation for Hll {
    fn name(&self) -> &str {
        self.name
    }

    fn arity(&self) -> (usize, usize) {
        (1, 3)
    }

    fn result_type(&self, types: &[DataType]) -> Result<DataType> {
        match types.first() {
            Some(DataType::List(_) | DataType::LargeList(_)) => {
                exec_err!("{} takes a single value per row", self.name)
            }
            Some(_) => Ok(DataType::Int64),
            None => exec_err!("{} takes a column", self.name),
        }
    }

    fn initialise(&self, args: &AggregationArgs) -> Result<Box<dyn AggregationState>> {
        let p = match args.types.len() {
            1 => self.default_precision,
            _ => match args.number(1) {
                Some(p) if (4.0..=18.0).contains(&p) && p.fract() == 0.0 => p as u8,
                _ => {
                    return exec_err!(
                        "{}: the precision (second argument) must be a whole number from 4 to 18",
                        self.name
                    )
                }
            },
        };
        Ok(Box::new(HllState {
            name: self.name,
            p,
            registers: vec![0; 1 << p],
        }))
    }
}

#[derive(Debug)]
pub(super) struct HllState {
    name: &'static str,
    p: u8,
    registers: Vec<u8>,
}

/// FNV-1a, then MurmurHash3's finaliser for the avalanche HyperLogLog needs.
pub(super) fn hash(tag: u8, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(&tag).chain(bytes) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// -0.0 and 0.0 are one value; a whole number is keyed as the integer it is.
fn number_key(v: f64) -> (u8, [u8; 8]) {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        (b'i', (v as i64).to_le_bytes())
    } else {
        (b'f', v.to_bits().to_le_bytes())
    }
}

impl HllState {
    /// An empty sketch of precision `p` (4 to 18).
    pub(super) fn new(name: &'static str, p: u8) -> HllState {
        HllState {
            name,
            p,
            registers: vec![0; 1 << p],
        }
    }

    pub(super) fn add(&mut self, h: u64) {
        let p = u32::from(self.p);
        let index = (h >> (64 - p)) as usize;
        let rest = (h << p) | (1 << (p - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        if let Some(r) = self.registers.get_mut(index) {
            *r = (*r).max(rank);
        }
    }

    pub(super) fn estimate(&self) -> i64 {
        let m = self.registers.len() as f64;
        let alpha = match self.registers.len() {
            16 => 0.673,
            32 => 0.697,
            64 => 0.709,
            _ => 0.7213 / (1.0 + 1.079 / m),
        };
        let sum: f64 = self
            .registers
            .iter()
            .map(|r| 2f64.powi(-i32::from(*r)))
            .sum();
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|r| **r == 0).count();
        let e = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        e.round() as i64
    }
}

/// Calls `f` with the canonical key (a tag and bytes) of every non-null value of `a`: an
/// integer (or BOOLEAN, TIMESTAMP) by its value, another number by [`number_key`], bytes and
/// text by their bytes. Distinct counts, exact or estimated, count distinct keys.
pub(super) fn for_each_key(a: &ArrayRef, mut f: impl FnMut(u8, &[u8])) -> Result<()> {
    let t = a.data_type();
    if t.is_null() {
        return Ok(());
    }
    if t.is_integer() || matches!(t, DataType::Boolean | DataType::Timestamp(_, _)) {
        let a = cast(a, &DataType::Int64)?;
        for v in a.as_primitive::<Int64Type>().iter().flatten() {
            f(b'i', &v.to_le_bytes());
        }
    } else if t.is_numeric() {
        let a = cast(a, &DataType::Float64)?;
        for v in a.as_primitive::<Float64Type>().iter().flatten() {
            let (tag, bytes) = number_key(v);
            f(tag, &bytes);
        }
    } else if matches!(
        t,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    ) {
        let a = cast(a, &DataType::Binary)?;
        for v in a.as_binary::<i32>().iter().flatten() {
            f(b'b', v);
        }
    } else {
        let a = cast(a, &DataType::Utf8)?;
        for v in a.as_string::<i32>().iter().flatten() {
            f(b's', v.as_bytes());
        }
    }
    Ok(())
}

/// The serialized HyperLogLog of `values` at precision `p` (4 to 18): what an ingestion
/// rollup's `DISTINCTCOUNTHLL` column stores, and `DISTINCTCOUNTHLL` of a BYTES column reads.
pub fn hll_of(p: u8, values: &ArrayRef) -> Result<Vec<u8>> {
    let mut s = HllState::new("distinctcounthll", p.clamp(4, 18));
    for_each_key(values, |tag, bytes| s.add(hash(tag, bytes)))?;
    s.serialize()
}

/// Merges serialized sketch `b` into `a` (both from [`hll_of`]); sketches of different
/// precisions merge at the lower one.
pub fn hll_merge(a: &[u8], b: &[u8]) -> Result<Vec<u8>> {
    let mut s = HllState::from_bytes("distinctcounthll", a)?;
    s.merge_any(b)?;
    s.serialize()
}

impl HllState {
    fn from_bytes(name: &'static str, b: &[u8]) -> Result<HllState> {
        match b.split_first() {
            Some((p, regs)) if (4..=18).contains(p) && regs.len() == 1 << p => Ok(HllState {
                name,
                p: *p,
                registers: regs.to_vec(),
            }),
            _ => exec_err!(
                "{name}: not a serialized HyperLogLog (a BYTES column must hold sketches, as an ingestion rollup stores them)"
            ),
        }
    }

    /// The same sketch at a lower precision `q`: an index keeps its first `q` bits, and the
    /// bits dropped count in the rank.
    fn folded(&self, q: u8) -> HllState {
        let d = u32::from(self.p - q);
        let mut out = HllState::new(self.name, q);
        for (i, r) in self.registers.iter().enumerate() {
            if *r == 0 {
                continue;
            }
            let low = (i as u64) & ((1 << d) - 1);
            let rank = if low == 0 {
                *r as u32 + d
            } else {
                (low.leading_zeros() - (64 - d)) + 1
            };
            let j = i >> d;
            out.registers[j] = out.registers[j].max(rank.min(255) as u8);
        }
        out
    }

    /// Merges a serialized sketch of any precision.
    fn merge_any(&mut self, b: &[u8]) -> Result<()> {
        let other = HllState::from_bytes(self.name, b)?;
        if other.p == self.p {
            for (r, o) in self.registers.iter_mut().zip(&other.registers) {
                *r = (*r).max(*o);
            }
            return Ok(());
        }
        if self.registers.iter().all(|r| *r == 0) {
            *self = HllState {
                name: self.name,
                ..other
            };
            return Ok(());
        }
        let (mut low, high) = if other.p < self.p {
            (other, self.folded(b[0]))
        } else {
            (self.folded(self.p), other.folded(self.p))
        };
        for (r, o) in low.registers.iter_mut().zip(&high.registers) {
            *r = (*r).max(*o);
        }
        low.name = self.name;
        *self = low;
        Ok(())
    }
}

impl AggregationState for HllState {
    fn aggregate(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(a) = values.first() else {
            return exec_err!("{} takes a column", self.name);
        };
        // A BYTES column holds serialized sketches (an ingestion rollup's), as in Pinot.
        if matches!(a.data_type(), DataType::Binary) {
            let b = a.as_binary::<i32>();
            for v in b.iter().flatten() {
                self.merge_any(v)?;
            }
            return Ok(());
        }
        for_each_key(a, |tag, bytes| self.add(hash(tag, bytes)))
    }

    fn serialize(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.registers.len() + 1);
        out.push(self.p);
        out.extend_from_slice(&self.registers);
        Ok(out)
    }

    fn merge(&mut self, b: &[u8]) -> Result<()> {
        // Sketches read from a BYTES column may have another precision.
        self.merge_any(b)
    }

    fn finish(&self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(self.estimate())))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.registers.capacity()
    }
}

/// A T-Digest percentile; `long` rounds the answer to a LONG (`PERCENTILEEST`).
#[derive(Debug)]
pub(super) struct Digest {
    pub(super) name: &'static str,
    pub(super) long: bool,
}

const DEFAULT_COMPRESSION: usize = 100;

/// Values buffered before they are folded into the digest.
const BUFFER: usize = 4096;

impl Aggregation for Digest {
    fn name(&self) -> &str {
        self.name
    }

    fn arity(&self) -> (usize, usize) {
        if self.long {
            (2, 2)
        } else {
            (2, 3)
        }
    }

    fn result_type(&self, types: &[DataType]) -> Result<DataType> {
        match types.first() {
            Some(t) if t.is_numeric() || t.is_null() => Ok(if self.long {
                DataType::Int64
            } else {
                DataType::Float64
            }),
            Some(t) => exec_err!("{} takes a number, got {t}", self.name),
            None => exec_err!("{} takes a column", self.name),
        }
    }

    fn initialise(&self, args: &AggregationArgs) -> Result<Box<dyn AggregationState>> {
        let percentile = match args.number(1) {
            Some(p) if (0.0..=100.0).contains(&p) => p,
            _ => {
                return exec_err!(
                    "{}: the percentile (second argument) must be a number from 0 to 100",
                    self.name
                )
            }
        };
        let compression = match args.types.len() {
            3 => match args.number(2) {
                Some(c) if (10.0..=10_000.0).contains(&c) => c as usize,
                _ => {
                    return exec_err!(
                        "{}: the compression (third argument) must be from 10 to 10000",
                        self.name
                    )
                }
            },
            _ => DEFAULT_COMPRESSION,
        };
        Ok(Box::new(DigestState {
            name: self.name,
            long: self.long,
            percentile,
            digest: TDigest::new(compression),
            buffer: Vec::new(),
        }))
    }
}

#[derive(Debug)]
struct DigestState {
    name: &'static str,
    long: bool,
    percentile: f64,
    digest: TDigest,
    buffer: Vec<f64>,
}

impl DigestState {
    /// The digest with the buffered values folded in.
    fn folded(&self) -> TDigest {
        if self.buffer.is_empty() {
            self.digest.clone()
        } else {
            self.digest.merge_unsorted_f64(self.buffer.clone())
        }
    }

    fn fold(&mut self) {
        if !self.buffer.is_empty() {
            self.digest = self
                .digest
                .merge_unsorted_f64(std::mem::take(&mut self.buffer));
        }
    }
}

fn f64_at(b: &[u8], i: usize) -> Option<f64> {
    b.get(i * 8..i * 8 + 8)
        .and_then(|s| s.try_into().ok())
        .map(f64::from_le_bytes)
}

impl AggregationState for DigestState {
    fn aggregate(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(a) = values.first() else {
            return exec_err!("{} takes a column", self.name);
        };
        let a = cast(a, &DataType::Float64)?;
        self.buffer.extend(
            a.as_primitive::<Float64Type>()
                .iter()
                .flatten()
                .filter(|v| v.is_finite()),
        );
        if self.buffer.len() >= BUFFER {
            self.fold();
        }
        Ok(())
    }

    /// The digest: max size, sum, count, max, min, then (mean, weight) per centroid, each an
    /// f64.
    fn serialize(&self) -> Result<Vec<u8>> {
        let d = self.folded();
        let mut out = Vec::with_capacity(40 + d.centroids().len() * 16);
        for v in [d.max_size() as f64, d.sum(), d.count(), d.max(), d.min()] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for c in d.centroids() {
            out.extend_from_slice(&c.mean().to_le_bytes());
            out.extend_from_slice(&c.weight().to_le_bytes());
        }
        Ok(out)
    }

    fn merge(&mut self, b: &[u8]) -> Result<()> {
        let bad = || exec_err!("{}: a malformed intermediate result", self.name);
        if b.len() < 40 || (b.len() - 40) % 16 != 0 {
            return bad();
        }
        let head: Option<Vec<f64>> = (0..5).map(|i| f64_at(b, i)).collect();
        let Some(head) = head else {
            return bad();
        };
        let centroids: Option<Vec<Centroid>> = (0..(b.len() - 40) / 16)
            .map(|i| Some(Centroid::new(f64_at(b, 5 + 2 * i)?, f64_at(b, 6 + 2 * i)?)))
            .collect();
        let Some(centroids) = centroids else {
            return bad();
        };
        let other = TDigest::try_from_parts(
            head[0] as usize,
            head[1],
            head[2],
            head[3],
            head[4],
            centroids,
        )?;
        self.fold();
        self.digest = TDigest::merge_digests([&self.digest, &other]);
        Ok(())
    }

    fn finish(&self) -> Result<ScalarValue> {
        let d = self.folded();
        if d.count() == 0.0 {
            return Ok(if self.long {
                ScalarValue::Int64(None)
            } else {
                ScalarValue::Float64(None)
            });
        }
        let v = d.estimate_quantile(self.percentile / 100.0);
        Ok(if self.long {
            ScalarValue::Int64(Some(v.round() as i64))
        } else {
            ScalarValue::Float64(Some(v))
        })
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.buffer.capacity() * 8 + self.digest.size()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use crate::aggregation::AggregationRegistry;

    const N: i64 = 100_000;

    /// `v` 0..N (all distinct), `k` "k{v}", `g` v % 2, in four partitions, so that partial
    /// sketches are merged.
    fn session() -> SessionContext {
        let ctx = SessionContext::new();
        crate::register(&ctx, &AggregationRegistry::with_builtins());
        let schema = Arc::new(Schema::new(vec![
            Field::new("v", DataType::Int64, false),
            Field::new("k", DataType::Utf8, false),
            Field::new("g", DataType::Int64, false),
        ]));
        let parts: Vec<Vec<RecordBatch>> = (0..4)
            .map(|p| {
                let vs: Vec<i64> = (p * N / 4..(p + 1) * N / 4).collect();
                let ks: Vec<String> = vs.iter().map(|v| format!("k{v}")).collect();
                let gs: Vec<i64> = vs.iter().map(|v| v % 2).collect();
                vec![RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(vs)),
                        Arc::new(StringArray::from(ks)),
                        Arc::new(Int64Array::from(gs)),
                    ],
                )
                .unwrap()]
            })
            .collect();
        ctx.register_table("t", Arc::new(MemTable::try_new(schema, parts).unwrap()))
            .unwrap();
        ctx
    }

    async fn one_row(ctx: &SessionContext, sql: &str) -> Vec<f64> {
        let b = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let b = &b[0];
        (0..b.num_columns())
            .map(|c| {
                let a = cast(b.column(c), &DataType::Float64).unwrap();
                a.as_primitive::<Float64Type>().value(0)
            })
            .collect()
    }

    fn within(got: f64, want: f64, rel: f64) -> bool {
        (got - want).abs() <= rel * want
    }

    #[tokio::test]
    async fn distinct_count_sketches_stay_within_their_error_bounds() {
        let ctx = session();
        let got = one_row(
            &ctx,
            "SELECT distinctcounthll(v), distinctcounthll(k), distinctcounthll(v, 12), \
             distinctcounthllplus(v), distinctcountull(k), distinctcountcpcsketch(v) FROM t",
        )
        .await;
        let n = N as f64;
        // Three standard errors (1.04/sqrt(m)) of each precision.
        for (i, (g, bound)) in got
            .iter()
            .zip([0.195, 0.195, 0.049, 0.025, 0.049, 0.049])
            .enumerate()
        {
            assert!(
                within(*g, n, bound),
                "column {i}: {g} not within {bound} of {n}"
            );
        }
        // Small sets are counted (nearly) exactly.
        let got = one_row(
            &ctx,
            "SELECT distinctcounthll(g), distinctcounthllplus(g) FROM t",
        )
        .await;
        assert_eq!(got, [2.0, 2.0]);
        // Grouped: each half.
        let b = ctx
            .sql("SELECT g, distinctcounthllplus(v) FROM t GROUP BY g ORDER BY g")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let counts = cast(b[0].column(1), &DataType::Float64).unwrap();
        for v in counts.as_primitive::<Float64Type>().values() {
            assert!(within(*v, n / 2.0, 0.025), "{v}");
        }
    }

    #[tokio::test]
    async fn percentile_sketches_stay_near_the_exact_percentile() {
        let ctx = session();
        let got = one_row(
            &ctx,
            "SELECT percentiletdigest(v, 50), percentiletdigest(v, 99, 200), \
             percentileest(v, 90), percentile(v, 90) FROM t",
        )
        .await;
        let n = N as f64;
        assert!(within(got[0], 0.5 * n, 0.01), "{got:?}");
        assert!(within(got[1], 0.99 * n, 0.01), "{got:?}");
        assert!(within(got[2], 0.9 * n, 0.01), "{got:?}");
        assert_eq!(got[2].fract(), 0.0, "PERCENTILEEST answers a LONG");
        assert_eq!(got[3], 0.9 * n, "the exact one is exact");
    }

    #[tokio::test]
    async fn bad_sketch_arguments_are_errors() {
        let ctx = session();
        for sql in [
            "SELECT distinctcounthll(v, 40) FROM t",
            "SELECT percentiletdigest(v, 101) FROM t",
            "SELECT percentiletdigest(v, 50, 1) FROM t",
            "SELECT percentileest(k, 50) FROM t",
        ] {
            let r = match ctx.sql(sql).await {
                Ok(df) => df.collect().await.map(|_| ()),
                Err(e) => Err(e),
            };
            assert!(r.is_err(), "{sql}");
        }
    }
}
