//! An aggregation-function plugin, written as a third party would write one: it depends
//! only on the plugin API of `riffle-functions` (and DataFusion's Arrow types), and is
//! registered by whoever builds the query engine:
//!
//! ```
//! use std::sync::Arc;
//! use riffle_functions::aggregation::AggregationRegistry;
//!
//! let mut registry = AggregationRegistry::with_builtins();
//! registry.register(Arc::new(riffle_agg_example::GeoMean));
//! assert!(registry.get("GEO_MEAN").is_some());
//! ```
//!
//! `GEOMEAN(x)`: the geometric mean of the positive values of `x`, a DOUBLE
//! (`exp(avg(ln x))`); values ≤ 0 and nulls are skipped, and no value at all answers NULL.
//! The intermediate result is the count and the sum of logarithms (16 bytes), so partial
//! results from segments merge exactly.

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{exec_err, Result, ScalarValue};
use riffle_functions::aggregation::{Aggregation, AggregationArgs, AggregationState};

/// The `GEOMEAN` aggregation.
#[derive(Debug)]
pub struct GeoMean;

impl Aggregation for GeoMean {
    fn name(&self) -> &str {
        "geomean"
    }

    fn result_type(&self, types: &[DataType]) -> Result<DataType> {
        match types {
            [t] if t.is_numeric() || t.is_null() => Ok(DataType::Float64),
            _ => exec_err!("geomean takes one number, got {types:?}"),
        }
    }

    fn initialise(&self, _args: &AggregationArgs) -> Result<Box<dyn AggregationState>> {
        Ok(Box::new(GeoMeanState::default()))
    }
}

/// How many positive values, and the sum of their natural logarithms.
#[derive(Debug, Default)]
struct GeoMeanState {
    count: u64,
    log_sum: f64,
}

impl AggregationState for GeoMeanState {
    fn aggregate(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(a) = values.first() else {
            return exec_err!("geomean takes one number");
        };
        let a = cast(a, &DataType::Float64)?;
        for v in a.as_primitive::<Float64Type>().iter().flatten() {
            if v > 0.0 {
                self.count += 1;
                self.log_sum += v.ln();
            }
        }
        Ok(())
    }

    fn serialize(&self) -> Result<Vec<u8>> {
        let mut out = self.count.to_le_bytes().to_vec();
        out.extend_from_slice(&self.log_sum.to_le_bytes());
        Ok(out)
    }

    fn merge(&mut self, intermediate: &[u8]) -> Result<()> {
        let (Some(c), Some(s)) = (intermediate.get(0..8), intermediate.get(8..16)) else {
            return exec_err!("geomean: a malformed intermediate result");
        };
        if intermediate.len() != 16 {
            return exec_err!("geomean: a malformed intermediate result");
        }
        let mut c8 = [0u8; 8];
        c8.copy_from_slice(c);
        let mut s8 = [0u8; 8];
        s8.copy_from_slice(s);
        self.count += u64::from_le_bytes(c8);
        self.log_sum += f64::from_le_bytes(s8);
        Ok(())
    }

    fn finish(&self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(
            (self.count > 0).then(|| (self.log_sum / self.count as f64).exp()),
        ))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}
