//! Shape statistics and histograms.
//!
//! | Name | Result | Meaning (Pinot's) |
//! | --- | --- | --- |
//! | `SKEWNESS(x)` | DOUBLE | sample skewness n·m3 / ((n−1)(n−2)·s³), s² = m2/(n−1); NaN below 3 values, 0 when s² is 0 |
//! | `KURTOSIS(x)` | DOUBLE | sample excess kurtosis (n(n+1)·m4 − 3·m2²(n−1)) / ((n−1)(n−2)(n−3)·s⁴); NaN below 4 values, 0 when s² is 0 |
//! | `HISTOGRAM(x, ARRAY[e0, e1, ...])`, `HISTOGRAM(x, lower, upper, bins)` | DOUBLE[] | counts per bin [e_i, e_i+1), the last bin closed; values outside ignored |
//!
//! m2, m3 and m4 are the sums of the 2nd, 3rd and 4th powers of the deviations from the
//! mean (Apache Commons Math's definitions, which Pinot uses). Each block's moments are
//! computed in two passes and combined with the pairwise update, so a state merges exactly
//! as Pinot's `PinotFourthMoment` does.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type};
use datafusion::common::{exec_err, Result, ScalarValue};

use super::{Aggregation, AggregationArgs, AggregationState};

/// The non-null values of a numeric column as DOUBLE.
fn doubles(name: &str, a: &ArrayRef, mut f: impl FnMut(f64)) -> Result<()> {
    if !(a.data_type().is_numeric() || a.data_type().is_null()) {
        return exec_err!("{name} takes a number, got {}", a.data_type());
    }
    let a = cast(a, &DataType::Float64)?;
    for v in a.as_primitive::<Float64Type>().iter().flatten() {
        f(v);
    }
    Ok(())
}

fn numeric_argument(name: &str, types: &[DataType]) -> Result<()> {
    match types.first() {
        Some(t) if t.is_numeric() || t.is_null() => Ok(()),
        Some(t) => exec_err!("{name} takes a number, got {t}"),
        None => exec_err!("{name} takes a column"),
    }
}

/// Which shape statistic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    Skewness,
    Kurtosis,
}

/// `SKEWNESS` / `KURTOSIS`.
#[derive(Debug)]
pub(super) struct Moments {
    pub(super) name: &'static str,
    pub(super) shape: Shape,
}

impl Aggregation for Moments {
    fn name(&self) -> &str {
        self.name
    }

    fn result_type(&self, types: &[DataType]) -> Result<DataType> {
        numeric_argument(self.name, types)?;
        Ok(DataType::Float64)
    }

    fn initialise(&self, _args: &AggregationArgs) -> Result<Box<dyn AggregationState>> {
        Ok(Box::new(MomentState {
            name: self.name,
            shape: self.shape,
            m: Fourth::default(),
        }))
    }
}

/// Count, mean and the sums of the powers of the deviations.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Fourth {
    n: f64,
    m1: f64,
    m2: f64,
    m3: f64,
    m4: f64,
}

impl Fourth {
    /// The moments of `values` (two passes).
    fn of(values: &[f64]) -> Fourth {
        let n = values.len() as f64;
        if values.is_empty() {
            return Fourth::default();
        }
        let m1 = values.iter().sum::<f64>() / n;
        let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
        for v in values {
            let d = v - m1;
            let d2 = d * d;
            m2 += d2;
            m3 += d2 * d;
            m4 += d2 * d2;
        }
        Fourth { n, m1, m2, m3, m4 }
    }

    /// `self` and `b` as one population (the pairwise update).
    fn combine(&mut self, b: Fourth) {
        if b.n == 0.0 {
            return;
        }
        if self.n == 0.0 {
            *self = b;
            return;
        }
        let a = *self;
        let n = a.n + b.n;
        let delta = b.m1 - a.m1;
        let d2 = delta * delta;
        let d3 = d2 * delta;
        let d4 = d3 * delta;
        self.n = n;
        self.m1 = (a.n * a.m1 + b.n * b.m1) / n;
        self.m2 = a.m2 + b.m2 + d2 * a.n * b.n / n;
        self.m3 = a.m3
            + b.m3
            + d3 * a.n * b.n * (a.n - b.n) / (n * n)
            + 3.0 * delta * (a.n * b.m2 - b.n * a.m2) / n;
        self.m4 = a.m4
            + b.m4
            + d4 * a.n * b.n * (a.n * a.n - a.n * b.n + b.n * b.n) / (n * n * n)
            + 6.0 * d2 * (a.n * a.n * b.m2 + b.n * b.n * a.m2) / (n * n)
            + 4.0 * delta * (a.n * b.m3 - b.n * a.m3) / n;
    }

    fn skewness(&self) -> f64 {
        let n = self.n;
        if n < 3.0 {
            return f64::NAN;
        }
        let variance = self.m2 / (n - 1.0);
        if variance < 1e-19 {
            return 0.0;
        }
        (n * self.m3) / ((n - 1.0) * (n - 2.0) * variance.sqrt() * variance)
    }

    fn kurtosis(&self) -> f64 {
        let n = self.n;
        if n <= 3.0 {
            return f64::NAN;
        }
        let variance = self.m2 / (n - 1.0);
        if variance < 1e-19 {
            return 0.0;
        }
        (n * (n + 1.0) * self.m4 - 3.0 * self.m2 * self.m2 * (n - 1.0))
            / ((n - 1.0) * (n - 2.0) * (n - 3.0) * variance * variance)
    }
}

#[derive(Debug)]
struct MomentState {
    name: &'static str,
    shape: Shape,
    m: Fourth,
}

impl AggregationState for MomentState {
    fn aggregate(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(a) = values.first() else {
            return exec_err!("{} takes a column", self.name);
        };
        let mut block = Vec::with_capacity(a.len());
        doubles(self.name, a, |v| block.push(v))?;
        self.m.combine(Fourth::of(&block));
        Ok(())
    }

    fn serialize(&self) -> Result<Vec<u8>> {
        let m = &self.m;
        Ok([m.n, m.m1, m.m2, m.m3, m.m4]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect())
    }

    fn merge(&mut self, b: &[u8]) -> Result<()> {
        let v: Vec<f64> = b
            .chunks_exact(8)
            .filter_map(|c| c.try_into().ok().map(f64::from_le_bytes))
            .collect();
        let [n, m1, m2, m3, m4] = v.as_slice() else {
            return exec_err!("{}: a malformed intermediate result", self.name);
        };
        self.m.combine(Fourth {
            n: *n,
            m1: *m1,
            m2: *m2,
            m3: *m3,
            m4: *m4,
        });
        Ok(())
    }

    fn finish(&self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(Some(match self.shape {
            Shape::Skewness => self.m.skewness(),
            Shape::Kurtosis => self.m.kurtosis(),
        })))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

/// `HISTOGRAM`.
#[derive(Debug)]
pub(super) struct Histogram {
    pub(super) name: &'static str,
}

/// Edges given as a literal array (`ARRAY[0, 1, 10]`), as numbers.
fn literal_edges(v: &ScalarValue) -> Option<Vec<f64>> {
    let array = match v {
        ScalarValue::List(l) => l.value(0),
        ScalarValue::LargeList(l) => l.value(0),
        ScalarValue::FixedSizeList(l) => l.value(0),
        _ => return None,
    };
    if !array.data_type().is_numeric() || array.null_count() > 0 {
        return None;
    }
    let a = cast(&array, &DataType::Float64).ok()?;
    Some(a.as_primitive::<Float64Type>().values().to_vec())
}

impl Aggregation for Histogram {
    fn name(&self) -> &str {
        self.name
    }

    fn arity(&self) -> (usize, usize) {
        (2, 4)
    }

    fn result_type(&self, types: &[DataType]) -> Result<DataType> {
        numeric_argument(self.name, types)?;
        Ok(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Float64,
            true,
        ))))
    }

    fn initialise(&self, args: &AggregationArgs) -> Result<Box<dyn AggregationState>> {
        let usage = "use HISTOGRAM(x, ARRAY[e0, e1, ...]) with increasing edges, or \
                     HISTOGRAM(x, lower, upper, bins)";
        let (edges, equal) = match args.types.len() {
            2 => {
                let edges = args
                    .literals
                    .get(1)
                    .and_then(|l| l.as_ref())
                    .and_then(literal_edges);
                match edges {
                    Some(e) if e.len() > 1 && e.windows(2).all(|w| w[1] > w[0]) => (e, None),
                    _ => {
                        return exec_err!(
                            "{}: the edges must be at least two increasing numbers; {usage}",
                            self.name
                        )
                    }
                }
            }
            4 => {
                let (Some(lower), Some(upper), Some(bins)) =
                    (args.number(1), args.number(2), args.number(3))
                else {
                    return exec_err!(
                        "{}: lower, upper and bins must be numbers; {usage}",
                        self.name
                    );
                };
                // NaN edges fail too.
                if upper.partial_cmp(&lower) != Some(std::cmp::Ordering::Greater) {
                    return exec_err!(
                        "{}: the upper edge {upper} must be greater than the lower edge {lower}",
                        self.name
                    );
                }
                if !(1.0..=1_000_000.0).contains(&bins) || bins.fract() != 0.0 {
                    return exec_err!(
                        "{}: the number of bins must be a whole number from 1 to 1000000, got {bins}",
                        self.name
                    );
                }
                let bins = bins as usize;
                let width = (upper - lower) / bins as f64;
                let mut e: Vec<f64> = (0..bins).map(|i| lower + i as f64 * width).collect();
                e.push(upper);
                (e, Some(width))
            }
            _ => return exec_err!("{}: {usage}", self.name),
        };
        let bins = edges.len() - 1;
        Ok(Box::new(HistogramState {
            name: self.name,
            edges,
            width: equal,
            counts: vec![0.0; bins],
        }))
    }
}

#[derive(Debug)]
struct HistogramState {
    name: &'static str,
    edges: Vec<f64>,
    /// The bin width when the bins are equal (found by division, else by search).
    width: Option<f64>,
    counts: Vec<f64>,
}

impl HistogramState {
    fn bin(&self, v: f64) -> Option<usize> {
        let (lower, upper) = (*self.edges.first()?, *self.edges.last()?);
        if !(lower..=upper).contains(&v) {
            return None;
        }
        let last = self.counts.len().checked_sub(1)?;
        if v == upper {
            return Some(last);
        }
        Some(match self.width {
            Some(w) => (((v - lower) / w).floor() as usize).min(last),
            // The last edge not above v.
            None => self.edges.partition_point(|e| *e <= v).saturating_sub(1),
        })
    }
}

impl AggregationState for HistogramState {
    fn aggregate(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(a) = values.first() else {
            return exec_err!("{} takes a column", self.name);
        };
        let mut bins = Vec::new();
        doubles(self.name, a, |v| bins.extend(self.bin(v)))?;
        for b in bins {
            if let Some(c) = self.counts.get_mut(b) {
                *c += 1.0;
            }
        }
        Ok(())
    }

    fn serialize(&self) -> Result<Vec<u8>> {
        Ok(self.counts.iter().flat_map(|c| c.to_le_bytes()).collect())
    }

    fn merge(&mut self, b: &[u8]) -> Result<()> {
        if b.len() != self.counts.len() * 8 {
            return exec_err!("{}: a malformed intermediate result", self.name);
        }
        for (c, o) in self.counts.iter_mut().zip(b.chunks_exact(8)) {
            if let Ok(o) = o.try_into() {
                *c += f64::from_le_bytes(o);
            }
        }
        Ok(())
    }

    fn finish(&self) -> Result<ScalarValue> {
        Ok(ScalarValue::List(ScalarValue::new_list_nullable(
            &self
                .counts
                .iter()
                .map(|c| ScalarValue::Float64(Some(*c)))
                .collect::<Vec<_>>(),
            &DataType::Float64,
        )))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + 8 * (self.edges.capacity() + self.counts.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook definitions, straight from the values.
    fn direct(values: &[f64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let m = |k: i32| values.iter().map(|v| (v - mean).powi(k)).sum::<f64>();
        let var = m(2) / (n - 1.0);
        let skew = n / ((n - 1.0) * (n - 2.0)) * m(3) / var.powf(1.5);
        let kurt = n * (n + 1.0) / ((n - 1.0) * (n - 2.0) * (n - 3.0)) * m(4) / (var * var)
            - 3.0 * (n - 1.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0));
        (skew, kurt)
    }

    #[test]
    fn moments_combined_from_blocks_equal_the_definition() {
        let values: Vec<f64> = (0..1000)
            .map(|i| ((i * 37) % 101) as f64 * 1.5 + (i as f64).sqrt())
            .collect();
        let mut m = Fourth::default();
        for chunk in values.chunks(97) {
            m.combine(Fourth::of(chunk));
        }
        let (skew, kurt) = direct(&values);
        assert!(
            (m.skewness() - skew).abs() < 1e-9,
            "{} vs {skew}",
            m.skewness()
        );
        assert!(
            (m.kurtosis() - kurt).abs() < 1e-9,
            "{} vs {kurt}",
            m.kurtosis()
        );
        // Pinot's edge cases.
        assert!(Fourth::of(&[1.0, 2.0]).skewness().is_nan());
        assert!(Fourth::of(&[1.0, 2.0, 3.0]).kurtosis().is_nan());
        assert_eq!(Fourth::of(&[5.0; 10]).skewness(), 0.0);
    }

    #[test]
    fn histogram_bins_are_half_open_but_the_last() {
        let h = HistogramState {
            name: "h",
            edges: vec![0.0, 1.0, 10.0, 100.0],
            width: None,
            counts: vec![0.0; 3],
        };
        let bins: Vec<Option<usize>> = [-1.0, 0.0, 0.5, 1.0, 9.99, 10.0, 100.0, 100.5]
            .iter()
            .map(|v| h.bin(*v))
            .collect();
        assert_eq!(
            bins,
            vec![
                None,
                Some(0),
                Some(0),
                Some(1),
                Some(1),
                Some(2),
                Some(2),
                None
            ]
        );
        let eq = HistogramState {
            name: "h",
            edges: vec![0.0, 100.0, 200.0, 300.0],
            width: Some(100.0),
            counts: vec![0.0; 3],
        };
        assert_eq!(eq.bin(299.0), Some(2));
        assert_eq!(eq.bin(300.0), Some(2));
        assert_eq!(eq.bin(100.0), Some(1));
    }
}
