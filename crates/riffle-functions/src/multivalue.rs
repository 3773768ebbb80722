//! Predicates on multi-value columns with Pinot's meaning.
//!
//! A multi-value column holds a list per row (Arrow `List<item>`). In Pinot a predicate on
//! it matches a row when **any** value matches (`mv = 3`, `mv IN (...)`, `mv < 3`,
//! `mv BETWEEN a AND b`); the exclusive forms (`mv <> 3`, `mv NOT IN (...)`) match when **no**
//! value matches, which is the negation of the inclusive form. The query engine rewrites
//! such predicates into `mv_any(mv, op, value...)` (negated for the exclusive forms).
//!
//! `mv_any(list, op, v...)`: `op` is one of `=`, `<>`, `<`, `<=`, `>`, `>=` (one value),
//! `in` (one or more values) or `between` (low, high). Values may be literals or columns.
//! Values and list items are compared in a common type: two integers as LONG, two numbers
//! of which one is not an integer as DOUBLE (`61.0` against an INT list), text as text;
//! otherwise the value is converted to the item type, as Pinot converts a literal to the
//! column's type. A null list is null; a null item or value never matches.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Datum, Scalar, UInt32Array,
};
use datafusion::arrow::compute::kernels::{boolean, cmp};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// `mv_any(list, op, value...)`: whether any item of the list satisfies `item op value`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MvAny {
    signature: Signature,
}

impl MvAny {
    /// The function's name in a session.
    pub const NAME: &'static str = "mv_any";

    /// The function.
    pub fn new() -> MvAny {
        MvAny {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl Default for MvAny {
    fn default() -> Self {
        MvAny::new()
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The type items and a value are compared in.
fn common_type(item: &DataType, value: &DataType) -> DataType {
    if item.is_numeric() && value.is_numeric() {
        if item.is_integer() && value.is_integer() {
            DataType::Int64
        } else {
            DataType::Float64
        }
    } else if is_text(item) && (is_text(value) || value.is_numeric()) {
        DataType::Utf8
    } else if item.is_numeric() && is_text(value) {
        DataType::Float64
    } else {
        item.clone()
    }
}

/// One side of a comparison against the flattened items.
enum Rhs {
    Scalar(Scalar<ArrayRef>),
    Array(ArrayRef),
}

impl Rhs {
    fn datum(&self) -> &dyn Datum {
        match self {
            Rhs::Scalar(s) => s,
            Rhs::Array(a) => a,
        }
    }
}

pub(crate) type CmpFn =
    fn(
        &dyn Datum,
        &dyn Datum,
    ) -> std::result::Result<BooleanArray, datafusion::arrow::error::ArrowError>;

/// The flattened items of the lists, and the row each belongs to.
pub(crate) struct Flat {
    pub(crate) items: ArrayRef,
    pub(crate) parents: UInt32Array,
}

impl Flat {
    /// `items op value` for every item, in the common type.
    pub(crate) fn compare(&self, value: &ColumnarValue, f: CmpFn) -> Result<BooleanArray> {
        let target = common_type(self.items.data_type(), &value.data_type());
        let items = cast(&self.items, &target)?;
        let rhs = match value {
            ColumnarValue::Scalar(s) => {
                let s = if s.data_type() == target {
                    s.clone()
                } else if s.is_null() {
                    ScalarValue::try_from(&target)?
                } else {
                    s.cast_to(&target)?
                };
                Rhs::Scalar(s.to_scalar()?)
            }
            ColumnarValue::Array(a) => Rhs::Array(take(&cast(a, &target)?, &self.parents, None)?),
        };
        Ok(f(&items, rhs.datum())?)
    }
}

fn op_fn(op: &str) -> Option<CmpFn> {
    Some(match op {
        "=" => cmp::eq,
        "<>" | "!=" => cmp::neq,
        "<" => cmp::lt,
        "<=" => cmp::lt_eq,
        ">" => cmp::gt,
        ">=" => cmp::gt_eq,
        _ => return None,
    })
}

impl ScalarUDFImpl for MvAny {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [DataType::List(_) | DataType::LargeList(_) | DataType::Null, _, _, ..] => {
                Ok(DataType::Boolean)
            }
            _ => exec_err!(
                "mv_any takes a multi-value column, an operator and values; got {arg_types:?}"
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [list, op, values @ ..] = args.args.as_slice() else {
            return exec_err!("mv_any takes a multi-value column, an operator and values");
        };
        let op = match op {
            ColumnarValue::Scalar(
                ScalarValue::Utf8(Some(s))
                | ScalarValue::LargeUtf8(Some(s))
                | ScalarValue::Utf8View(Some(s)),
            ) => s.to_ascii_lowercase(),
            _ => return exec_err!("mv_any: the operator must be a text literal"),
        };
        let list = list.to_array(rows)?;
        if list.data_type().is_null() {
            return Ok(ColumnarValue::Array(Arc::new(BooleanArray::new_null(rows))));
        }
        let (offsets, items) = list_parts(&list)?;
        let list_nulls = list.nulls().cloned();
        let (first, last) = (
            offsets.first().copied().unwrap_or(0),
            offsets.last().copied().unwrap_or(0),
        );
        let items = items.slice(first, last - first);
        // The row of each item: needed only to compare with a column, not with literals
        // (the usual case, where building it would cost an allocation per batch).
        let mut parents = Vec::new();
        if values.iter().any(|v| matches!(v, ColumnarValue::Array(_))) {
            parents.reserve(items.len());
            for (row, w) in offsets.windows(2).enumerate() {
                parents.extend(std::iter::repeat_n(row as u32, w[1] - w[0]));
            }
        }
        let flat = Flat {
            items,
            parents: UInt32Array::from(parents),
        };
        let matched = match (op.as_str(), values) {
            ("in", [first_value, more @ ..]) => {
                let mut acc = flat.compare(first_value, cmp::eq)?;
                for v in more {
                    acc = boolean::or_kleene(&acc, &flat.compare(v, cmp::eq)?)?;
                }
                acc
            }
            ("between", [low, high]) => boolean::and_kleene(
                &flat.compare(low, cmp::gt_eq)?,
                &flat.compare(high, cmp::lt_eq)?,
            )?,
            (o, [v]) => match op_fn(o) {
                Some(f) => flat.compare(v, f)?,
                None => return exec_err!("mv_any: unknown operator '{o}'"),
            },
            (o, vs) => {
                return exec_err!("mv_any: operator '{o}' does not take {} values", vs.len())
            }
        };
        let mut out = BooleanBuilder::with_capacity(rows);
        for (row, w) in offsets.windows(2).enumerate() {
            if list_nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                out.append_null();
                continue;
            }
            let (s, e) = (w[0] - first, w[1] - first);
            out.append_value((s..e).any(|j| matched.is_valid(j) && matched.value(j)));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// The offsets of a list array (row `r` holds items `offsets[r]..offsets[r + 1]`) and its
/// items; an error for anything but a list.
pub(crate) fn list_parts(list: &ArrayRef) -> Result<(Vec<usize>, ArrayRef)> {
    Ok(match list.data_type() {
        DataType::List(_) => {
            let l = list.as_list::<i32>();
            (
                l.value_offsets().iter().map(|&v| v as usize).collect(),
                l.values().clone(),
            )
        }
        DataType::LargeList(_) => {
            let l = list.as_list::<i64>();
            (
                l.value_offsets().iter().map(|&v| v as usize).collect(),
                l.values().clone(),
            )
        }
        other => return exec_err!("not a multi-value column: {other}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, ListArray, StringArray};
    use datafusion::arrow::buffer::OffsetBuffer;
    use datafusion::arrow::datatypes::{Field, Int32Type};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::logical_expr::ScalarUDF;
    use datafusion::prelude::SessionContext;

    async fn answer(ctx: &SessionContext, sql: &str) -> Vec<Option<bool>> {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        batches
            .iter()
            .flat_map(|b| b.column(0).as_boolean().iter().collect::<Vec<_>>())
            .collect()
    }

    fn session() -> SessionContext {
        let ctx = SessionContext::new();
        ctx.register_udf(ScalarUDF::new_from_impl(MvAny::new()));
        // rows: [1, 5], [7], null, [] , [3, null]
        let ints = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), Some(5)]),
            Some(vec![Some(7)]),
            None,
            Some(vec![]),
            Some(vec![Some(3), None]),
        ]);
        let texts = ListArray::new(
            Arc::new(Field::new("item", DataType::Utf8, true)),
            OffsetBuffer::from_lengths([2, 1, 0, 0, 1]),
            Arc::new(StringArray::from(vec!["SEA", "PDX", "LAX", "SFO"])),
            None,
        );
        let other = Int32Array::from(vec![5, 5, 5, 5, 3]);
        let batch = RecordBatch::try_from_iter(vec![
            ("i", Arc::new(ints) as ArrayRef),
            ("s", Arc::new(texts) as ArrayRef),
            ("o", Arc::new(other) as ArrayRef),
        ])
        .unwrap();
        ctx.register_batch("t", batch).unwrap();
        ctx
    }

    #[tokio::test]
    async fn any_item_matches_in_every_form() {
        let ctx = session();
        let (t, f, n) = (Some(true), Some(false), None);
        assert_eq!(
            answer(&ctx, "SELECT mv_any(i, '=', 5) FROM t").await,
            [t, f, n, f, f]
        );
        assert_eq!(
            answer(&ctx, "SELECT mv_any(i, '<', 2) FROM t").await,
            [t, f, n, f, f]
        );
        assert_eq!(
            answer(&ctx, "SELECT mv_any(i, '>=', 6.5) FROM t").await,
            [f, t, n, f, f]
        );
        assert_eq!(
            answer(&ctx, "SELECT mv_any(i, '<>', 1) FROM t").await,
            [t, t, n, f, t]
        );
        assert_eq!(
            answer(&ctx, "SELECT mv_any(i, 'in', 7, 3) FROM t").await,
            [f, t, n, f, t]
        );
        assert_eq!(
            answer(&ctx, "SELECT mv_any(i, 'between', 2, 6) FROM t").await,
            [t, f, n, f, t]
        );
        // A fraction is not truncated to the item type: 4.5 < 5 only.
        assert_eq!(
            answer(&ctx, "SELECT mv_any(i, '>', 4.5) FROM t").await,
            [t, t, n, f, f]
        );
        // A column as the value, row by row.
        assert_eq!(
            answer(&ctx, "SELECT mv_any(i, '=', o) FROM t").await,
            [t, f, n, f, t]
        );
        assert_eq!(
            answer(&ctx, "SELECT mv_any(s, 'between', 'PDX', 'SEA') FROM t").await,
            [t, f, f, f, f]
        );
        assert_eq!(
            answer(&ctx, "SELECT mv_any(s, '>=', 'SF') FROM t").await,
            [f, f, f, f, t]
        );
    }

    #[tokio::test]
    async fn array_functions_and_valuein() {
        use crate::arrays::{ArrayFn, ValueIn};
        let ctx = session();
        for f in ArrayFn::all() {
            ctx.register_udf(ScalarUDF::new_from_impl(f));
        }
        ctx.register_udf(ScalarUDF::new_from_impl(ValueIn::new()));
        let df = ctx
            .sql(
                "SELECT arraylength(i), arraymin(i), arraymax(i), arraysum(i), arrayaverage(i), \
                 arraylength(valuein(s, 'SEA', 'SFO')), arraylength(valuein(i, 5, 7)) FROM t",
            )
            .await
            .unwrap();
        let b = df.collect().await.unwrap();
        let b = &b[0];
        let col = |c: usize| -> Vec<Option<f64>> {
            let a = cast(b.column(c), &DataType::Float64).unwrap();
            a.as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .iter()
                .collect()
        };
        // rows: [1, 5], [7], null, [], [3, null]; s: [SEA, PDX], [LAX], [], [], [SFO]
        assert_eq!(col(0), [Some(2.0), Some(1.0), None, Some(0.0), Some(2.0)]);
        assert_eq!(col(1), [Some(1.0), Some(7.0), None, None, Some(3.0)]);
        assert_eq!(col(2), [Some(5.0), Some(7.0), None, None, Some(3.0)]);
        assert_eq!(col(3), [Some(6.0), Some(7.0), None, None, Some(3.0)]);
        assert_eq!(col(4), [Some(3.0), Some(7.0), None, None, Some(3.0)]);
        assert_eq!(
            col(5),
            [Some(1.0), Some(0.0), Some(0.0), Some(0.0), Some(1.0)]
        );
        assert_eq!(col(6), [Some(1.0), Some(1.0), None, Some(0.0), Some(0.0)]);
    }

    #[tokio::test]
    async fn bad_calls_are_errors_not_panics() {
        let ctx = session();
        for sql in [
            "SELECT mv_any(o, '=', 1) FROM t",
            "SELECT mv_any(i, 'like', 1) FROM t",
            "SELECT mv_any(i, 'between', 1) FROM t",
            "SELECT mv_any(i, o, 1) FROM t",
            "SELECT mv_any(i, '=', 'x') FROM t",
        ] {
            let r = match ctx.sql(sql).await {
                Ok(df) => df.collect().await.map(|_| ()),
                Err(e) => Err(e),
            };
            assert!(r.is_err(), "{sql} should be an error");
        }
    }
}
