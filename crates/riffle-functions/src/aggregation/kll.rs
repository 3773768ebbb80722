//! `PERCENTILEKLL(x, p[, k])`: a percentile on a KLL sketch (DOUBLE; k = 200 by default,
//! as Pinot's).
//!
//! The sketch is a stack of compactors: level h holds items of weight 2^h, and its
//! capacity shrinks by 2/3 per level below the top (at least 2). When the sketch holds more
//! than its capacity, the lowest full level is sorted and every other item (starting at a
//! deterministic alternating offset) moves up a level with twice the weight. Below k
//! values nothing is compacted, so the answer is exact; above, the rank error is about
//! 1.65% at k = 200 (DataSketches' figure). Sketches merge by concatenating their levels
//! and compacting. The answer is the smallest retained value whose weighted rank reaches
//! p% of the count (DataSketches' inclusive rule): p = 0 is the minimum, p = 100 the
//! maximum.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{exec_err, Result, ScalarValue};

use super::{Aggregation, AggregationArgs, AggregationState};

/// Pinot's default k.
const DEFAULT_K: usize = 200;

/// `PERCENTILEKLL`.
#[derive(Debug)]
pub(super) struct Kll {
    pub(super) name: &'static str,
}

impl Aggregation for Kll {
    fn name(&self) -> &str {
        self.name
    }

    fn arity(&self) -> (usize, usize) {
        (2, 3)
    }

    fn result_type(&self, types: &[DataType]) -> Result<DataType> {
        match types.first() {
            Some(t) if t.is_numeric() || t.is_null() => Ok(DataType::Float64),
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
        let k = match args.types.len() {
            3 => match args.number(2) {
                Some(k) if (8.0..=65_535.0).contains(&k) && k.fract() == 0.0 => k as usize,
                _ => {
                    return exec_err!(
                        "{}: k (third argument) must be a whole number from 8 to 65535",
                        self.name
                    )
                }
            },
            _ => DEFAULT_K,
        };
        Ok(Box::new(KllState {
            name: self.name,
            percentile,
            sketch: KllSketch::new(k),
        }))
    }
}

/// The sketch itself.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct KllSketch {
    k: usize,
    /// Values seen.
    n: u64,
    /// Items per level; level h weighs 2^h.
    levels: Vec<Vec<f64>>,
    /// Flips at each compaction: which half of a sorted level moves up.
    flip: bool,
}

impl KllSketch {
    pub(super) fn new(k: usize) -> KllSketch {
        KllSketch {
            k,
            n: 0,
            levels: vec![Vec::new()],
            flip: false,
        }
    }

    /// Capacity of level `h` of `depth` levels.
    fn capacity(&self, h: usize, depth: usize) -> usize {
        let below_top = depth.saturating_sub(h + 1) as i32;
        ((self.k as f64) * (2.0f64 / 3.0).powi(below_top))
            .ceil()
            .max(2.0) as usize
    }

    fn retained(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    fn total_capacity(&self) -> usize {
        let depth = self.levels.len();
        (0..depth).map(|h| self.capacity(h, depth)).sum()
    }

    pub(super) fn add(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        self.n += 1;
        if let Some(l) = self.levels.first_mut() {
            l.push(v);
        }
        self.compress();
    }

    /// Compacts the lowest full level until the sketch fits.
    fn compress(&mut self) {
        while self.retained() > self.total_capacity() {
            let depth = self.levels.len();
            let Some(h) = (0..depth).find(|h| {
                self.levels
                    .get(*h)
                    .is_some_and(|l| l.len() >= self.capacity(*h, depth))
            }) else {
                return;
            };
            if h + 1 == depth {
                self.levels.push(Vec::new());
            }
            let mut level = std::mem::take(&mut self.levels[h]);
            level.sort_unstable_by(f64::total_cmp);
            // An odd item stays where it is.
            if level.len() % 2 == 1 {
                if let Some(keep) = level.pop() {
                    self.levels[h].push(keep);
                }
            }
            self.flip = !self.flip;
            let start = usize::from(self.flip);
            let up: Vec<f64> = level.iter().skip(start).step_by(2).copied().collect();
            self.levels[h + 1].extend(up);
        }
    }

    fn merge(&mut self, other: &KllSketch) {
        self.n += other.n;
        while self.levels.len() < other.levels.len() {
            self.levels.push(Vec::new());
        }
        for (mine, theirs) in self.levels.iter_mut().zip(&other.levels) {
            mine.extend_from_slice(theirs);
        }
        self.compress();
    }

    /// The smallest retained value whose weighted rank reaches `q` (0 to 1) of the total.
    pub(super) fn quantile(&self, q: f64) -> Option<f64> {
        let mut items: Vec<(f64, u64)> = self
            .levels
            .iter()
            .enumerate()
            .flat_map(|(h, l)| l.iter().map(move |v| (*v, 1u64 << h)))
            .collect();
        if items.is_empty() {
            return None;
        }
        items.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let total: u64 = items.iter().map(|i| i.1).sum();
        let target = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (v, w) in &items {
            seen += w;
            if seen >= target {
                return Some(*v);
            }
        }
        items.last().map(|i| i.0)
    }

    fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.k as u32).to_le_bytes());
        out.extend_from_slice(&self.n.to_le_bytes());
        out.push(u8::from(self.flip));
        out.extend_from_slice(&(self.levels.len() as u32).to_le_bytes());
        for l in &self.levels {
            out.extend_from_slice(&(l.len() as u32).to_le_bytes());
            for v in l {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    fn deserialize(b: &[u8]) -> Option<KllSketch> {
        let mut at = 0usize;
        let mut take = |n: usize| {
            let s = b.get(at..at + n)?;
            at += n;
            Some(s)
        };
        let u32_of = |s: &[u8]| s.try_into().ok().map(u32::from_le_bytes);
        let k = u32_of(take(4)?)? as usize;
        let n = u64::from_le_bytes(take(8)?.try_into().ok()?);
        let flip = *take(1)?.first()? == 1;
        let depth = u32_of(take(4)?)? as usize;
        if depth > 64 {
            return None;
        }
        let mut levels = Vec::with_capacity(depth);
        for _ in 0..depth {
            let len = u32_of(take(4)?)? as usize;
            let bytes = take(len.checked_mul(8)?)?;
            levels.push(
                bytes
                    .chunks_exact(8)
                    .filter_map(|c| c.try_into().ok().map(f64::from_le_bytes))
                    .collect(),
            );
        }
        (at == b.len() && !levels.is_empty()).then_some(KllSketch { k, n, levels, flip })
    }
}

#[derive(Debug)]
struct KllState {
    name: &'static str,
    percentile: f64,
    sketch: KllSketch,
}

impl AggregationState for KllState {
    fn aggregate(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(a) = values.first() else {
            return exec_err!("{} takes a column", self.name);
        };
        if !(a.data_type().is_numeric() || a.data_type().is_null()) {
            return exec_err!("{} takes a number, got {}", self.name, a.data_type());
        }
        let a = cast(a, &DataType::Float64)?;
        for v in a.as_primitive::<Float64Type>().iter().flatten() {
            self.sketch.add(v);
        }
        Ok(())
    }

    fn serialize(&self) -> Result<Vec<u8>> {
        Ok(self.sketch.serialize())
    }

    fn merge(&mut self, b: &[u8]) -> Result<()> {
        match KllSketch::deserialize(b) {
            Some(other) if other.k == self.sketch.k => {
                self.sketch.merge(&other);
                Ok(())
            }
            _ => exec_err!("{}: not an intermediate result of this sketch", self.name),
        }
    }

    fn finish(&self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(
            self.sketch.quantile(self.percentile / 100.0),
        ))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + 8 * self.sketch.retained() + 24 * self.sketch.levels.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_k_and_within_its_rank_error_above() {
        let mut s = KllSketch::new(200);
        for v in (1..=150).rev() {
            s.add(f64::from(v));
        }
        assert_eq!(s.quantile(0.5), Some(75.0));
        assert_eq!(s.quantile(0.0), Some(1.0));
        assert_eq!(s.quantile(1.0), Some(150.0));

        // 1M values in a scrambled order, in two sketches merged.
        let (mut a, mut b) = (KllSketch::new(200), KllSketch::new(200));
        for i in 0..1_000_000u64 {
            let v = ((i * 7_919) % 1_000_000) as f64;
            if i % 2 == 0 {
                a.add(v)
            } else {
                b.add(v)
            }
        }
        let round = KllSketch::deserialize(&b.serialize());
        assert_eq!(round.as_ref(), Some(&b));
        a.merge(&b);
        assert!(a.retained() < 2_000, "retained {}", a.retained());
        for q in [0.01, 0.25, 0.5, 0.95, 0.99] {
            let got = a.quantile(q).unwrap_or(f64::NAN) / 1_000_000.0;
            // Rank error: 1.65% at k = 200; 3% leaves room.
            assert!((got - q).abs() < 0.03, "q {q}: rank {got}");
        }
        assert!(KllSketch::deserialize(&[1, 2, 3]).is_none());
    }
}
