//! The `...RAW...` forms of the sketches (`DISTINCTCOUNTRAWHLL`, `PERCENTILERAWTDIGEST`,
//! ...): the same aggregation, answering its merged sketch as hex text instead of the
//! estimate, for a client that merges sketches itself.
//!
//! The bytes are Riffle's own intermediate state of that aggregation (the one partial
//! results merge with: HyperLogLog precision and registers, T-Digest centroids, theta
//! hashes, KLL levels), not the byte formats of Pinot's Java libraries, which Riffle does not
//! reproduce: a client can merge Riffle's raw sketches with each other, not with Pinot's.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};

use super::{Aggregation, AggregationArgs, AggregationState};

/// A raw form of `inner`.
#[derive(Debug)]
pub(super) struct Raw {
    pub(super) name: &'static str,
    pub(super) inner: Arc<dyn Aggregation>,
}

impl Aggregation for Raw {
    fn name(&self) -> &str {
        self.name
    }

    fn arity(&self) -> (usize, usize) {
        self.inner.arity()
    }

    fn result_type(&self, types: &[DataType]) -> Result<DataType> {
        // The inner aggregation checks the arguments.
        self.inner.result_type(types)?;
        Ok(DataType::Utf8)
    }

    fn initialise(&self, args: &AggregationArgs) -> Result<Box<dyn AggregationState>> {
        Ok(Box::new(RawState {
            inner: self.inner.initialise(args)?,
        }))
    }
}

#[derive(Debug)]
struct RawState {
    inner: Box<dyn AggregationState>,
}

impl AggregationState for RawState {
    fn aggregate(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.inner.aggregate(values)
    }

    fn serialize(&self) -> Result<Vec<u8>> {
        self.inner.serialize()
    }

    fn merge(&mut self, intermediate: &[u8]) -> Result<()> {
        self.inner.merge(intermediate)
    }

    fn finish(&self) -> Result<ScalarValue> {
        let bytes = self.inner.serialize()?;
        Ok(ScalarValue::Utf8(Some(
            bytes.iter().map(|b| format!("{b:02x}")).collect(),
        )))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.inner.size()
    }
}
