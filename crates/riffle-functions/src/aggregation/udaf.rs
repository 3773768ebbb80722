//! Runs an [`Aggregation`] as a DataFusion aggregate function: one state for an ungrouped
//! query, a state per group otherwise; intermediate results travel as BINARY.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{
    new_empty_array, Array, ArrayRef, AsArray, BinaryArray, BooleanArray, UInt32Array,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

use super::{Aggregation, AggregationArgs, AggregationState};

/// An [`Aggregation`] as a DataFusion aggregate function.
#[derive(Debug)]
pub struct AggregationUdf {
    inner: Arc<dyn Aggregation>,
    name: String,
    signature: Signature,
}

impl AggregationUdf {
    /// The adapter for `inner`.
    pub fn new(inner: Arc<dyn Aggregation>) -> AggregationUdf {
        AggregationUdf {
            name: inner.name().to_ascii_lowercase(),
            inner,
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }

    fn args(&self, acc: &AccumulatorArgs) -> Result<AggregationArgs> {
        let types: Vec<DataType> = acc
            .expr_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        self.check_arity(types.len())?;
        let literals = acc
            .exprs
            .iter()
            .map(|e| e.downcast_ref::<Literal>().map(|l| l.value().clone()))
            .collect();
        Ok(AggregationArgs { types, literals })
    }

    fn check_arity(&self, n: usize) -> Result<()> {
        let (least, most) = self.inner.arity();
        if n < least || n > most {
            let wanted = if least == most {
                format!("{least}")
            } else {
                format!("{least} to {most}")
            };
            return exec_err!("{} takes {wanted} arguments, got {n}", self.name);
        }
        Ok(())
    }
}

impl PartialEq for AggregationUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for AggregationUdf {}

impl Hash for AggregationUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl AggregateUDFImpl for AggregationUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.check_arity(arg_types.len())?;
        self.inner.result_type(arg_types)
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let args = self.args(&acc_args)?;
        Ok(Box::new(Single {
            state: self.inner.initialise(&args)?,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[intermediate]", args.name),
            DataType::Binary,
            true,
        ))])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        acc_args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let args = self.args(&acc_args)?;
        Ok(Box::new(Grouped {
            aggregation: self.inner.clone(),
            args,
            result_type: acc_args.return_field.data_type().clone(),
            states: Vec::new(),
        }))
    }
}

/// One state for the whole query (or one thread's share of it).
#[derive(Debug)]
struct Single {
    state: Box<dyn AggregationState>,
}

fn merge_all(state: &mut dyn AggregationState, intermediates: &ArrayRef) -> Result<()> {
    let Some(b) = intermediates.as_binary_opt::<i32>() else {
        return exec_err!("an intermediate aggregation result is not BINARY");
    };
    for bytes in b.iter().flatten() {
        state.merge(bytes)?;
    }
    Ok(())
}

impl Accumulator for Single {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.state.aggregate(values)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.state.finish()
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.state.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Binary(Some(self.state.serialize()?))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        match states.first() {
            Some(s) => merge_all(self.state.as_mut(), s),
            None => Ok(()),
        }
    }
}

/// A state per group.
struct Grouped {
    aggregation: Arc<dyn Aggregation>,
    args: AggregationArgs,
    result_type: DataType,
    states: Vec<Box<dyn AggregationState>>,
}

impl Grouped {
    fn ensure(&mut self, groups: usize) -> Result<()> {
        while self.states.len() < groups {
            self.states.push(self.aggregation.initialise(&self.args)?);
        }
        Ok(())
    }
}

fn included(filter: Option<&BooleanArray>, row: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(row) && f.value(row))
}

impl GroupsAccumulator for Grouped {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.ensure(total_num_groups)?;
        // The rows of each group, in row order.
        let mut pairs: Vec<(usize, u32)> = group_indices
            .iter()
            .enumerate()
            .filter(|(row, _)| included(opt_filter, *row))
            .map(|(row, g)| (*g, row as u32))
            .collect();
        pairs.sort_by_key(|p| p.0);
        let mut start = 0;
        while start < pairs.len() {
            let g = pairs[start].0;
            let end = start + pairs[start..].iter().take_while(|p| p.0 == g).count();
            let rows = UInt32Array::from_iter_values(pairs[start..end].iter().map(|p| p.1));
            match self.states.get_mut(g) {
                Some(s) => s.aggregate_rows(values, &rows)?,
                None => return exec_err!("group {g} out of range"),
            }
            start = end;
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let taken = emit_to.take_needed(&mut self.states);
        if taken.is_empty() {
            return Ok(new_empty_array(&self.result_type));
        }
        let results = taken
            .iter()
            .map(|s| s.finish())
            .collect::<Result<Vec<_>>>()?;
        ScalarValue::iter_to_array(results)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let taken = emit_to.take_needed(&mut self.states);
        let bytes = taken
            .iter()
            .map(|s| s.serialize())
            .collect::<Result<Vec<_>>>()?;
        Ok(vec![Arc::new(BinaryArray::from_iter_values(bytes))])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.ensure(total_num_groups)?;
        let Some(b) = values.first().and_then(|v| v.as_binary_opt::<i32>()) else {
            return exec_err!("an intermediate aggregation result is not BINARY");
        };
        for (row, g) in group_indices.iter().enumerate() {
            if b.is_valid(row) {
                match self.states.get_mut(*g) {
                    Some(s) => s.merge(b.value(row))?,
                    None => return exec_err!("group {g} out of range"),
                }
            }
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let rows = values.first().map_or(0, |v| v.len());
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let mut s = self.aggregation.initialise(&self.args)?;
            if included(opt_filter, row) {
                s.aggregate_rows(values, &UInt32Array::from(vec![row as u32]))?;
            }
            out.push(s.serialize()?);
        }
        Ok(vec![Arc::new(BinaryArray::from_iter_values(out))])
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.states.capacity() * std::mem::size_of::<Box<dyn AggregationState>>()
            + self.states.iter().map(|s| s.size()).sum::<usize>()
    }
}
