//! The `*MV` forms: any aggregation over every value of a multi-value column.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result, ScalarValue};

use super::{Aggregation, AggregationArgs, AggregationState};

/// An aggregation over every value of a multi-value column: the inner aggregation sees
/// the values of all lists as one column (other arguments repeated for each value).
#[derive(Debug)]
pub(super) struct MultiValue {
    pub(super) name: &'static str,
    pub(super) inner: Arc<dyn Aggregation>,
}

fn item_type(t: &DataType) -> Option<DataType> {
    match t {
        DataType::List(f) | DataType::LargeList(f) => Some(f.data_type().clone()),
        DataType::Null => Some(DataType::Null),
        _ => None,
    }
}

impl Aggregation for MultiValue {
    fn name(&self) -> &str {
        self.name
    }

    fn arity(&self) -> (usize, usize) {
        self.inner.arity()
    }

    fn result_type(&self, types: &[DataType]) -> Result<DataType> {
        let Some(item) = types.first().and_then(item_type) else {
            return exec_err!("{} takes a multi-value column, got {types:?}", self.name);
        };
        let mut t = types.to_vec();
        t[0] = item;
        self.inner.result_type(&t)
    }

    fn initialise(&self, args: &AggregationArgs) -> Result<Box<dyn AggregationState>> {
        let mut inner_args = args.clone();
        match inner_args.types.first().and_then(item_type) {
            Some(item) => inner_args.types[0] = item,
            None => return exec_err!("{} takes a multi-value column", self.name),
        }
        Ok(Box::new(MultiValueState {
            name: self.name,
            inner: self.inner.initialise(&inner_args)?,
        }))
    }
}

#[derive(Debug)]
struct MultiValueState {
    name: &'static str,
    inner: Box<dyn AggregationState>,
}

impl AggregationState for MultiValueState {
    fn aggregate(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(list) = values.first() else {
            return exec_err!("{} takes a column", self.name);
        };
        if list.data_type().is_null() {
            return Ok(());
        }
        let (offsets, items) = crate::multivalue::list_parts(list)?;
        let mut rows = Vec::new();
        let mut parents = Vec::new();
        for (row, w) in offsets.windows(2).enumerate() {
            if list.is_valid(row) {
                rows.extend((w[0] as u32)..(w[1] as u32));
                parents.extend(std::iter::repeat_n(row as u32, w[1] - w[0]));
            }
        }
        let flat = take(items.as_ref(), &UInt32Array::from(rows), None)?;
        let parents = UInt32Array::from(parents);
        let mut args = vec![flat];
        for v in &values[1..] {
            args.push(take(v.as_ref(), &parents, None)?);
        }
        self.inner.aggregate(&args)
    }

    fn serialize(&self) -> Result<Vec<u8>> {
        self.inner.serialize()
    }

    fn merge(&mut self, intermediate: &[u8]) -> Result<()> {
        self.inner.merge(intermediate)
    }

    fn finish(&self) -> Result<ScalarValue> {
        self.inner.finish()
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.inner.size()
    }
}
