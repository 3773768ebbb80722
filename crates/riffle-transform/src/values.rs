//! Source-only fields (read by transforms, not in the schema) as Arrow arrays. Their type
//! is not declared anywhere, so it is read from a block's values, as Pinot's functions see
//! the Java objects a decoder produced:
//!
//! | values in the block | Arrow type |
//! | --- | --- |
//! | whole numbers only | Int64 |
//! | numbers | Float64 |
//! | booleans only | Boolean |
//! | arrays of scalars (a lone scalar is a one-item array) | List of the items' type |
//! | text, objects, arrays of objects, or a mix | Utf8 (objects and arrays as JSON text, numbers as text) |
//! | nothing but nulls | Utf8, all null |

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
};
use arrow::datatypes::{DataType, Field};
use serde_json::Value;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Null,
    Int,
    Float,
    Bool,
    Text,
}

fn scalar_kind(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_i64() => Kind::Int,
        Value::Number(_) => Kind::Float,
        _ => Kind::Text,
    }
}

fn join(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (Kind::Null, k) | (k, Kind::Null) => k,
        (x, y) if x == y => x,
        (Kind::Int, Kind::Float) | (Kind::Float, Kind::Int) => Kind::Float,
        _ => Kind::Text,
    }
}

fn arrow_type(k: Kind) -> DataType {
    match k {
        Kind::Int => DataType::Int64,
        Kind::Float => DataType::Float64,
        Kind::Bool => DataType::Boolean,
        Kind::Null | Kind::Text => DataType::Utf8,
    }
}

/// The Arrow type the values of one field take.
pub fn infer(values: &[Option<Value>]) -> DataType {
    let mut scalar = Kind::Null;
    let mut items = Kind::Null;
    let mut lists = false;
    let mut nested = false;
    for v in values.iter().flatten() {
        match v {
            Value::Object(_) => nested = true,
            Value::Array(a) => {
                lists = true;
                for x in a {
                    if x.is_object() || x.is_array() {
                        nested = true;
                    }
                    items = join(items, scalar_kind(x));
                }
            }
            other => scalar = join(scalar, scalar_kind(other)),
        }
    }
    if nested {
        return DataType::Utf8;
    }
    if lists {
        let item = arrow_type(join(items, scalar));
        return DataType::List(Arc::new(Field::new("item", item, true)));
    }
    arrow_type(scalar)
}

/// The values as an array of `dt` (from [`infer`]).
pub fn to_array(values: &[Option<Value>], dt: &DataType) -> ArrayRef {
    match dt {
        DataType::List(f) => {
            let mut b = ListBuilder::new(ScalarBuilder::new(f.data_type(), values.len()));
            for v in values {
                match v {
                    None | Some(Value::Null) => b.append(false),
                    Some(Value::Array(a)) => {
                        for x in a {
                            b.values().push(Some(x));
                        }
                        b.append(true);
                    }
                    Some(x) => {
                        b.values().push(Some(x));
                        b.append(true);
                    }
                }
            }
            let list = b.finish();
            // The items' field must match the inferred type's (a ListBuilder names it too).
            let item = Arc::new(Field::new("item", f.data_type().clone(), true));
            let (_, offsets, items, nulls) = list.into_parts();
            Arc::new(arrow::array::ListArray::new(item, offsets, items, nulls))
        }
        _ => {
            let mut b = ScalarBuilder::new(dt, values.len());
            for v in values {
                b.push(v.as_ref());
            }
            b.finish()
        }
    }
}

/// Builds a scalar array of one of the inferred types.
enum ScalarBuilder {
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
}

impl ScalarBuilder {
    fn new(dt: &DataType, cap: usize) -> ScalarBuilder {
        match dt {
            DataType::Int64 => ScalarBuilder::Int(Int64Builder::with_capacity(cap)),
            DataType::Float64 => ScalarBuilder::Float(Float64Builder::with_capacity(cap)),
            DataType::Boolean => ScalarBuilder::Bool(BooleanBuilder::with_capacity(cap)),
            _ => ScalarBuilder::Text(StringBuilder::with_capacity(cap, cap * 16)),
        }
    }

    fn push(&mut self, v: Option<&Value>) {
        let v = v.filter(|v| !v.is_null());
        match self {
            ScalarBuilder::Int(b) => b.append_option(v.and_then(Value::as_i64)),
            ScalarBuilder::Float(b) => b.append_option(v.and_then(Value::as_f64)),
            ScalarBuilder::Bool(b) => b.append_option(v.and_then(Value::as_bool)),
            ScalarBuilder::Text(b) => match v {
                None => b.append_null(),
                Some(Value::String(s)) => b.append_value(s),
                Some(other) => b.append_value(other.to_string()),
            },
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ScalarBuilder::Int(b) => Arc::new(b.finish()),
            ScalarBuilder::Float(b) => Arc::new(b.finish()),
            ScalarBuilder::Bool(b) => Arc::new(b.finish()),
            ScalarBuilder::Text(b) => Arc::new(b.finish()),
        }
    }
}

impl arrow::array::ArrayBuilder for ScalarBuilder {
    fn len(&self) -> usize {
        match self {
            ScalarBuilder::Int(b) => b.len(),
            ScalarBuilder::Float(b) => b.len(),
            ScalarBuilder::Bool(b) => b.len(),
            ScalarBuilder::Text(b) => b.len(),
        }
    }
    fn finish(&mut self) -> ArrayRef {
        ScalarBuilder::finish(self)
    }
    fn finish_cloned(&self) -> ArrayRef {
        match self {
            ScalarBuilder::Int(b) => Arc::new(b.finish_cloned()),
            ScalarBuilder::Float(b) => Arc::new(b.finish_cloned()),
            ScalarBuilder::Bool(b) => Arc::new(b.finish_cloned()),
            ScalarBuilder::Text(b) => Arc::new(b.finish_cloned()),
        }
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
    fn into_box_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int64Type;
    use serde_json::json;

    fn vals(v: &[Value]) -> Vec<Option<Value>> {
        v.iter()
            .map(|x| if x.is_null() { None } else { Some(x.clone()) })
            .collect()
    }

    #[test]
    fn infers_types_from_values() {
        assert_eq!(
            infer(&vals(&[json!(1), json!(null), json!(3)])),
            DataType::Int64
        );
        assert_eq!(infer(&vals(&[json!(1), json!(2.5)])), DataType::Float64);
        assert_eq!(infer(&vals(&[json!(true)])), DataType::Boolean);
        assert_eq!(infer(&vals(&[json!(1), json!("x")])), DataType::Utf8);
        assert_eq!(infer(&vals(&[json!({"a": 1})])), DataType::Utf8);
        assert_eq!(infer(&vals(&[json!(null)])), DataType::Utf8);
        assert_eq!(
            infer(&vals(&[json!([1, 2]), json!(3)])),
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true)))
        );
        assert_eq!(infer(&vals(&[json!([{"a": 1}])])), DataType::Utf8);
    }

    #[test]
    fn builds_arrays() {
        let v = vals(&[json!(1), json!(null), json!(3)]);
        let a = to_array(&v, &infer(&v));
        let a = a.as_primitive::<Int64Type>();
        assert_eq!((a.value(0), a.is_null(1), a.value(2)), (1, true, 3));
        let v = vals(&[json!({"a": 1}), json!("t")]);
        let a = to_array(&v, &infer(&v));
        let s = a.as_string::<i32>();
        assert_eq!((s.value(0), s.value(1)), ("{\"a\":1}", "t"));
        let v = vals(&[json!([1, 2]), json!(null), json!(3)]);
        let a = to_array(&v, &infer(&v));
        let l = a.as_list::<i32>();
        assert_eq!(l.value(0).len(), 2);
        assert!(l.is_null(1));
        assert_eq!(l.value(2).as_primitive::<Int64Type>().value(0), 3);
    }
}
