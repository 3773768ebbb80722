//! `DISTINCTCOUNTSMARTHLL(x[, 'threshold=T;hllLog2m=P'])` (INT): Pinot's "smart"
//! HyperLogLog: exact (a set of values) up to T = 100000 distinct values, then a
//! HyperLogLog of precision P = 12. Partial results merge either way (an exact one into an
//! estimating one).

use std::collections::HashSet;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result, ScalarValue};

use super::sketch::{for_each_key, hash, HllState};
use super::theta::{parameters, single_value_only};
use super::{Aggregation, AggregationArgs, AggregationState};

/// `DISTINCTCOUNTSMARTHLL`.
#[derive(Debug)]
pub(super) struct SmartHll {
    pub(super) name: &'static str,
}

/// Pinot's defaults: exact up to this many values, then a HyperLogLog of this precision.
const SMART_THRESHOLD: u64 = 100_000;
const SMART_LOG2M: u64 = 12;

impl Aggregation for SmartHll {
    fn name(&self) -> &str {
        self.name
    }

    fn arity(&self) -> (usize, usize) {
        (1, 2)
    }

    fn result_type(&self, types: &[DataType]) -> Result<DataType> {
        single_value_only(self.name, types)?;
        Ok(DataType::Int32)
    }

    fn initialise(&self, args: &AggregationArgs) -> Result<Box<dyn AggregationState>> {
        if args.types.len() > 1 && args.text(1).is_none() {
            return exec_err!(
                "{}: the second argument must be a parameter string such as 'threshold=1000;hllLog2m=12'",
                self.name
            );
        }
        let p = parameters(
            self.name,
            args.text(1),
            &[
                ("threshold", 1..=100_000_000),
                ("hllLog2m", 4..=18),
                ("log2m", 4..=18),
            ],
        )?;
        Ok(Box::new(SmartState {
            name: self.name,
            threshold: p[0].unwrap_or(SMART_THRESHOLD) as usize,
            p: p[1].or(p[2]).unwrap_or(SMART_LOG2M) as u8,
            exact: Some(HashSet::new()),
            hll: None,
        }))
    }
}

#[derive(Debug)]
struct SmartState {
    name: &'static str,
    threshold: usize,
    p: u8,
    /// The distinct keys (tag and bytes) while there are at most `threshold`.
    exact: Option<HashSet<Box<[u8]>>>,
    hll: Option<HllState>,
}

impl SmartState {
    fn key(tag: u8, bytes: &[u8]) -> Box<[u8]> {
        let mut k = Vec::with_capacity(bytes.len() + 1);
        k.push(tag);
        k.extend_from_slice(bytes);
        k.into()
    }

    /// The HyperLogLog, made from the exact set the first time.
    fn hll(&mut self) -> &mut HllState {
        let (name, p, exact) = (self.name, self.p, &mut self.exact);
        self.hll.get_or_insert_with(|| {
            let mut h = HllState::new(name, p);
            for k in exact.take().unwrap_or_default() {
                if let Some((tag, rest)) = k.split_first() {
                    h.add(hash(*tag, rest));
                }
            }
            h
        })
    }

    fn add(&mut self, tag: u8, bytes: &[u8]) {
        if let Some(set) = &mut self.exact {
            set.insert(Self::key(tag, bytes));
            if set.len() > self.threshold {
                self.hll();
            }
            return;
        }
        self.hll().add(hash(tag, bytes));
    }
}

impl AggregationState for SmartState {
    fn aggregate(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(a) = values.first() else {
            return exec_err!("{} takes a column", self.name);
        };
        for_each_key(a, |tag, bytes| self.add(tag, bytes))
    }

    fn serialize(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        match (&self.exact, &self.hll) {
            (Some(set), _) => {
                out.push(0);
                for k in set {
                    out.extend_from_slice(&(k.len() as u32).to_le_bytes());
                    out.extend_from_slice(k);
                }
            }
            (None, Some(h)) => {
                out.push(1);
                out.extend_from_slice(&h.serialize()?);
            }
            (None, None) => out.push(0),
        }
        Ok(out)
    }

    fn merge(&mut self, b: &[u8]) -> Result<()> {
        match b.split_first() {
            Some((0, mut rest)) => {
                while !rest.is_empty() {
                    let len = rest
                        .get(..4)
                        .and_then(|s| s.try_into().ok())
                        .map(u32::from_le_bytes);
                    let Some(k) = len.and_then(|n| rest.get(4..4 + n as usize)) else {
                        return exec_err!("{}: a malformed intermediate result", self.name);
                    };
                    if let Some((tag, bytes)) = k.split_first() {
                        self.add(*tag, bytes);
                    }
                    rest = &rest[4 + k.len()..];
                }
                Ok(())
            }
            Some((1, sketch)) => self.hll().merge(sketch),
            _ => exec_err!("{}: a malformed intermediate result", self.name),
        }
    }

    fn finish(&self) -> Result<ScalarValue> {
        let n = match (&self.exact, &self.hll) {
            (Some(set), _) => set.len() as i64,
            (None, Some(h)) => h.estimate(),
            (None, None) => 0,
        };
        Ok(ScalarValue::Int32(Some(
            i32::try_from(n).unwrap_or(i32::MAX),
        )))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.exact.as_ref().map_or(0, |s| {
                s.capacity() * (std::mem::size_of::<Box<[u8]>>() + 16)
            })
            + self.hll.as_ref().map_or(0, HllState::size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use std::sync::Arc;

    fn count(s: &dyn AggregationState) -> i64 {
        match s.finish() {
            Ok(ScalarValue::Int32(Some(n))) => n.into(),
            other => panic!("not a count: {other:?}"),
        }
    }

    #[test]
    fn smart_hll_is_exact_up_to_its_threshold_then_estimates() {
        let make = |threshold: usize| SmartState {
            name: "s",
            threshold,
            p: 12,
            exact: Some(HashSet::new()),
            hll: None,
        };
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(0..50_000));
        let mut exact = make(100_000);
        exact
            .aggregate(std::slice::from_ref(&a))
            .unwrap_or_default();
        assert_eq!(count(&exact), 50_000);
        let mut small = make(1_000);
        small.aggregate(&[a]).unwrap_or_default();
        assert!(small.exact.is_none());
        let n = count(&small) as f64;
        // p = 12: about 1.6% standard error.
        assert!((n - 50_000.0).abs() / 50_000.0 < 0.06, "estimate {n}");
        // An exact partial merges into an estimating one.
        small
            .merge(&exact.serialize().unwrap_or_default())
            .unwrap_or_default();
        assert!((count(&small) as f64 - 50_000.0).abs() / 50_000.0 < 0.06);
    }
}
