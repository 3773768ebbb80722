//! Pinot's JSON functions on JSON text: `JSONEXTRACTSCALAR` and the `JSONPATH*` family.
//!
//! | Function | Result | Meaning (Pinot's) |
//! | --- | --- | --- |
//! | `JSONEXTRACTSCALAR(json, path, type[, default])` | `type`: INT, LONG, FLOAT, DOUBLE, BOOLEAN, TIMESTAMP (a LONG of milliseconds), STRING, BIG_DECIMAL (text), JSON (text), `INT_ARRAY` … `STRING_ARRAY` (multi-value) | the value at `path`; a row without it takes `default`, and without a default the query fails ("cannot resolve JSON path"), as Pinot's does |
//! | `JSONPATHSTRING(json, path[, default])` | STRING | the value at `path` (JSON text if it is not a string); missing: null, or `default` |
//! | `JSONPATHLONG(json, path[, default])` | LONG | the number at `path`; missing: `Long.MIN_VALUE` (-9223372036854775808), or `default` |
//! | `JSONPATHDOUBLE(json, path[, default])` | DOUBLE | the number at `path`; missing: NaN, or `default` |
//! | `JSONPATHARRAY(json, path)`, `JSONPATHARRAYDEFAULTEMPTY(json, path)` | multi-value STRING | the values at `path` (an array is spread); missing: null, or an empty list |
//! | `JSON_MATCH(json, 'filter')` | BOOLEAN | Pinot's JSON filter (`"$.a" = 'x' AND "$.tags[*]" IN (...)`, ...), evaluated on each row ([`matching`]) |
//! | `JSONEXTRACTKEY(json, path)` | multi-value STRING | the paths of the values `path` selects, as JsonPath lists them (`$['a']['b']`, `$['arr'][0]`); `''` or `'$..**'`: every key, depth first; not JSON or NULL: an empty list |
//!
//! Paths are JsonPath's common subset: `$`, `.name`, `['name']`, `[n]` (negative from the
//! end), `[*]` and `.*`. Text that is not JSON reads as missing. The path, type and default
//! are literals.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder,
    Int64Builder, ListBuilder, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use serde_json::Value;

/// One step of a JSON path.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Key(String),
    Index(i64),
    All,
}

/// Parses `$.a['b'][0][*].*`.
fn parse_path(path: &str) -> std::result::Result<Vec<Step>, String> {
    let p = path.trim();
    let mut chars = p
        .strip_prefix('$')
        .ok_or("a JSON path starts with $")?
        .chars()
        .peekable();
    let mut steps = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if chars.peek() == Some(&'*') {
                    chars.next();
                    steps.push(Step::All);
                    continue;
                }
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n == '.' || n == '[' || n == ']' {
                        break;
                    }
                    name.push(n);
                    chars.next();
                }
                if name.is_empty() {
                    return Err("an empty key after '.'".into());
                }
                steps.push(Step::Key(name));
            }
            '[' => {
                let mut inner = String::new();
                let mut quote: Option<char> = None;
                loop {
                    match chars.next() {
                        None => return Err("an unclosed '['".into()),
                        Some(q @ ('\'' | '"')) if quote.is_none() && inner.is_empty() => {
                            quote = Some(q)
                        }
                        Some(q) if Some(q) == quote => {
                            if chars.next() != Some(']') {
                                return Err("expected ']' after a quoted key".into());
                            }
                            steps.push(Step::Key(std::mem::take(&mut inner)));
                            break;
                        }
                        Some(']') if quote.is_none() => {
                            let t = inner.trim();
                            if t == "*" {
                                steps.push(Step::All);
                            } else {
                                let n: i64 =
                                    t.parse().map_err(|_| format!("'[{t}]' is not an index"))?;
                                steps.push(Step::Index(n));
                            }
                            break;
                        }
                        Some(ch) => inner.push(ch),
                    }
                }
            }
            other => return Err(format!("unexpected '{other}'")),
        }
    }
    Ok(steps)
}

/// The values at `steps`; `spread` when a wildcard was used (the answer is a list).
fn select<'a>(root: &'a Value, steps: &[Step]) -> (Vec<&'a Value>, bool) {
    let mut current = vec![root];
    let mut spread = false;
    for s in steps {
        let mut next = Vec::new();
        for v in current {
            match (s, v) {
                (Step::Key(k), Value::Object(m)) => next.extend(m.get(k)),
                (Step::Index(i), Value::Array(a)) => {
                    let at = if *i < 0 { a.len() as i64 + i } else { *i };
                    if at >= 0 {
                        next.extend(a.get(at as usize));
                    }
                }
                (Step::All, Value::Array(a)) => {
                    spread = true;
                    next.extend(a.iter());
                }
                (Step::All, Value::Object(m)) => {
                    spread = true;
                    next.extend(m.values());
                }
                _ => {}
            }
        }
        current = next;
    }
    (current, spread)
}

/// A key as JsonPath writes it in a path list: `['key']`, quotes escaped.
fn key_step(k: &str) -> String {
    format!("['{}']", k.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The paths (`$['a']['b']`, `$['a'][0]`) of the values at `steps`.
fn select_paths(root: &Value, steps: &[Step]) -> Vec<String> {
    let mut current = vec![(root, String::from("$"))];
    for s in steps {
        let mut next = Vec::new();
        for (v, path) in current {
            match (s, v) {
                (Step::Key(k), Value::Object(m)) => {
                    if let Some(c) = m.get(k) {
                        next.push((c, format!("{path}{}", key_step(k))));
                    }
                }
                (Step::Index(i), Value::Array(a)) => {
                    let at = if *i < 0 { a.len() as i64 + i } else { *i };
                    if let Some(c) = usize::try_from(at).ok().and_then(|at| a.get(at)) {
                        next.push((c, format!("{path}[{at}]")));
                    }
                }
                (Step::All, Value::Array(a)) => {
                    next.extend(
                        a.iter()
                            .enumerate()
                            .map(|(i, c)| (c, format!("{path}[{i}]"))),
                    );
                }
                (Step::All, Value::Object(m)) => {
                    next.extend(m.iter().map(|(k, c)| (c, format!("{path}{}", key_step(k)))));
                }
                _ => {}
            }
        }
        current = next;
    }
    current.into_iter().map(|(_, p)| p).collect()
}

/// Every key's path, depth first (`$..**`), through arrays' elements.
fn all_key_paths(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{path}{}", key_step(k));
                out.push(p.clone());
                all_key_paths(c, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                all_key_paths(c, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The single value at the path (a wildcard's values as an array), None when missing or null.
fn extract(text: &str, steps: &[Step]) -> Option<Value> {
    let root: Value = serde_json::from_str(text).ok()?;
    let (found, spread) = select(&root, steps);
    if spread {
        return Some(Value::Array(found.into_iter().cloned().collect()));
    }
    match found.first() {
        Some(Value::Null) | None => None,
        Some(v) => Some((*v).clone()),
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .or_else(|| s.trim().parse::<f64>().ok().map(|f| f as i64)),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(s.trim().eq_ignore_ascii_case("true")),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        _ => None,
    }
}

/// A JSONEXTRACTSCALAR result type.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Int,
    Long,
    Float,
    Double,
    Bool,
    Text,
    Json,
}

fn kind_of(t: &str) -> Option<(Kind, bool)> {
    let t = t.trim().to_ascii_uppercase();
    let (base, array) = match t.strip_suffix("_ARRAY") {
        Some(b) => (b.to_string(), true),
        None => (t, false),
    };
    let k = match base.as_str() {
        "INT" => Kind::Int,
        "LONG" | "TIMESTAMP" => Kind::Long,
        "FLOAT" => Kind::Float,
        "DOUBLE" => Kind::Double,
        "BOOLEAN" => Kind::Bool,
        "STRING" | "BIG_DECIMAL" => Kind::Text,
        "JSON" if !array => Kind::Json,
        _ => return None,
    };
    Some((k, array))
}

fn arrow_of(k: Kind) -> DataType {
    match k {
        Kind::Int => DataType::Int32,
        Kind::Long => DataType::Int64,
        Kind::Float => DataType::Float32,
        Kind::Double => DataType::Float64,
        Kind::Bool => DataType::Boolean,
        Kind::Text | Kind::Json => DataType::Utf8,
    }
}

fn type_of(kind: Option<(Kind, bool)>) -> DataType {
    match kind {
        Some((k, true)) => DataType::List(Arc::new(Field::new("item", arrow_of(k), true))),
        Some((k, false)) => arrow_of(k),
        None => DataType::Utf8,
    }
}

/// Which function of the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    ExtractScalar,
    PathString,
    PathLong,
    PathDouble,
    PathArray,
    PathArrayDefaultEmpty,
    ExtractKey,
    Match,
}

/// One of the JSON functions.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonFn {
    name: &'static str,
    op: Op,
    signature: Signature,
}

/// Every JSON function.
pub fn functions() -> Vec<ScalarUDF> {
    [
        ("jsonextractscalar", Op::ExtractScalar),
        ("jsonpathstring", Op::PathString),
        ("jsonpathlong", Op::PathLong),
        ("jsonpathdouble", Op::PathDouble),
        ("jsonpatharray", Op::PathArray),
        ("jsonpatharraydefaultempty", Op::PathArrayDefaultEmpty),
        ("jsonextractkey", Op::ExtractKey),
        ("json_match", Op::Match),
        ("jsonmatch", Op::Match),
    ]
    .into_iter()
    .map(|(name, op)| {
        ScalarUDF::new_from_impl(JsonFn {
            name,
            op,
            signature: Signature::variadic_any(Volatility::Immutable),
        })
    })
    .collect()
}

fn lit_text(args: &[ColumnarValue], i: usize) -> Option<String> {
    match args.get(i)? {
        ColumnarValue::Scalar(s) if !s.is_null() => {
            Some(crate::literal::text(s).map_or_else(|| s.to_string(), str::to_string))
        }
        _ => None,
    }
}

fn string_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

impl JsonFn {
    fn arity(&self) -> (usize, usize) {
        match self.op {
            Op::ExtractScalar => (3, 4),
            Op::PathString | Op::PathLong | Op::PathDouble => (2, 3),
            Op::PathArray | Op::PathArrayDefaultEmpty | Op::ExtractKey | Op::Match => (2, 2),
        }
    }
}

impl ScalarUDFImpl for JsonFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.op {
            Op::ExtractScalar | Op::PathString => DataType::Utf8,
            Op::PathLong => DataType::Int64,
            Op::PathDouble => DataType::Float64,
            Op::PathArray | Op::PathArrayDefaultEmpty | Op::ExtractKey => string_list(),
            Op::Match => DataType::Boolean,
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let (least, most) = self.arity();
        let n = args.arg_fields.len();
        if n < least || n > most {
            return exec_err!("{} takes {least} to {most} arguments, got {n}", self.name);
        }
        let t = match self.op {
            Op::ExtractScalar => {
                let given = args.scalar_arguments.get(2).copied().flatten();
                let name = given.and_then(crate::literal::text);
                match name.and_then(kind_of) {
                    Some(k) => type_of(Some(k)),
                    None => {
                        return exec_err!(
                            "{}: the result type (third argument) must be a literal such as 'INT', 'LONG', 'DOUBLE', 'STRING', 'JSON' or 'STRING_ARRAY'",
                            self.name
                        )
                    }
                }
            }
            _ => self.return_type(&[])?,
        };
        Ok(Arc::new(Field::new(self.name, t, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let rt = args.return_field.data_type().clone();
        let Some(json) = args.args.first() else {
            return exec_err!("{} takes a JSON column", self.name);
        };
        let json = cast(&json.to_array(rows)?, &DataType::Utf8)?;
        let json = json.as_string::<i32>();
        let Some(path) = lit_text(&args.args, 1) else {
            return exec_err!(
                "{}: the JSON path (second argument) must be a text literal",
                self.name
            );
        };
        if self.op == Op::ExtractKey {
            return extract_keys(json, &path).map(ColumnarValue::Array);
        }
        if self.op == Op::Match {
            let filter = match matching::JsonFilter::parse(&path) {
                Ok(f) => f,
                Err(e) => return exec_err!("json_match: {e}"),
            };
            let mut b = BooleanBuilder::with_capacity(rows);
            for i in 0..rows {
                let root: Option<Value> = if json.is_null(i) {
                    None
                } else {
                    serde_json::from_str(json.value(i)).ok()
                };
                b.append_value(root.is_some_and(|r| filter.matches(&r)));
            }
            return Ok(ColumnarValue::Array(Arc::new(b.finish())));
        }
        let steps = match parse_path(&path) {
            Ok(s) => s,
            Err(e) => return exec_err!("{}: JSON path '{path}': {e}", self.name),
        };
        let default_at = match self.op {
            Op::ExtractScalar => 3,
            _ => 2,
        };
        let default = lit_text(&args.args, default_at).map(Value::String);
        let values: Vec<Option<Value>> = (0..rows)
            .map(|i| {
                if json.is_null(i) {
                    None
                } else {
                    extract(json.value(i), &steps)
                }
            })
            .collect();
        let out: ArrayRef = match self.op {
            Op::ExtractScalar => {
                if default.is_none() && values.iter().any(|v| v.is_none()) {
                    return exec_err!(
                        "jsonextractscalar: cannot resolve JSON path '{path}' on some records; consider setting a default value"
                    );
                }
                let get = |i: usize| values[i].clone().or_else(|| default.clone());
                build_typed(&rt, rows, get, self.name)?
            }
            Op::PathString => {
                let mut b = StringBuilder::new();
                for v in &values {
                    match v.as_ref().or(default.as_ref()) {
                        Some(v) => b.append_value(as_text(v)),
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            Op::PathLong => {
                let fallback = default.as_ref().and_then(as_i64).unwrap_or(i64::MIN);
                let mut b = Int64Builder::new();
                for v in &values {
                    b.append_value(v.as_ref().and_then(as_i64).unwrap_or(fallback));
                }
                Arc::new(b.finish())
            }
            Op::PathDouble => {
                let fallback = default.as_ref().and_then(as_f64).unwrap_or(f64::NAN);
                let mut b = Float64Builder::new();
                for v in &values {
                    b.append_value(v.as_ref().and_then(as_f64).unwrap_or(fallback));
                }
                Arc::new(b.finish())
            }
            Op::ExtractKey | Op::Match => return exec_err!("{} is answered above", self.name),
            Op::PathArray | Op::PathArrayDefaultEmpty => {
                let mut b = ListBuilder::new(StringBuilder::new());
                for v in &values {
                    match v {
                        Some(Value::Array(items)) => {
                            for item in items {
                                b.values().append_value(as_text(item));
                            }
                            b.append(true);
                        }
                        Some(other) => {
                            b.values().append_value(as_text(other));
                            b.append(true);
                        }
                        None if self.op == Op::PathArrayDefaultEmpty => b.append(true),
                        None => b.append(false),
                    }
                }
                Arc::new(b.finish())
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// `JSONEXTRACTKEY(json, path)`: per row, the paths of the keys the path selects (`''` or
/// `'$..**'`: every key, recursively); an empty list for NULL or text that is not JSON.
fn extract_keys(json: &datafusion::arrow::array::StringArray, path: &str) -> Result<ArrayRef> {
    let every = matches!(path.trim(), "" | "$..**");
    let steps = if every {
        Vec::new()
    } else {
        match parse_path(path) {
            Ok(s) => s,
            Err(e) => return exec_err!("jsonextractkey: JSON path '{path}': {e}"),
        }
    };
    let mut b = ListBuilder::new(StringBuilder::new());
    for i in 0..json.len() {
        let root: Option<Value> = if json.is_null(i) {
            None
        } else {
            serde_json::from_str(json.value(i)).ok()
        };
        if let Some(root) = root {
            let paths = if every {
                let mut out = Vec::new();
                all_key_paths(&root, "$", &mut out);
                out
            } else {
                select_paths(&root, &steps)
            };
            for p in paths {
                b.values().append_value(p);
            }
        }
        b.append(true);
    }
    Ok(Arc::new(b.finish()))
}

/// JSONEXTRACTSCALAR's column of type `rt`.
fn build_typed(
    rt: &DataType,
    rows: usize,
    get: impl Fn(usize) -> Option<Value>,
    name: &str,
) -> Result<ArrayRef> {
    macro_rules! scalar {
        ($builder:expr, $conv:expr) => {{
            let mut b = $builder;
            for i in 0..rows {
                b.append_option(get(i).as_ref().and_then($conv));
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match rt {
        DataType::Int32 => scalar!(Int32Builder::new(), |v: &Value| as_i64(v).map(|x| x as i32)),
        DataType::Int64 => scalar!(Int64Builder::new(), as_i64),
        DataType::Float32 => scalar!(Float32Builder::new(), |v: &Value| as_f64(v)
            .map(|x| x as f32)),
        DataType::Float64 => scalar!(Float64Builder::new(), as_f64),
        DataType::Boolean => scalar!(BooleanBuilder::new(), as_bool),
        DataType::Utf8 => {
            let mut b = StringBuilder::new();
            for i in 0..rows {
                match get(i) {
                    Some(v) => b.append_value(as_text(&v)),
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        DataType::List(f) => {
            // Build the items as text, then convert the list to the item type.
            let mut b = ListBuilder::new(StringBuilder::new());
            for i in 0..rows {
                match get(i) {
                    Some(Value::Array(items)) => {
                        for item in &items {
                            match item {
                                Value::Null => b.values().append_null(),
                                v => b.values().append_value(as_text(v)),
                            }
                        }
                        b.append(true);
                    }
                    Some(v) => {
                        b.values().append_value(as_text(&v));
                        b.append(true);
                    }
                    None => b.append(false),
                }
            }
            let text: ArrayRef = Arc::new(b.finish());
            if f.data_type() == &DataType::Utf8 {
                text
            } else {
                cast(&text, rt)?
            }
        }
        other => return exec_err!("{name}: cannot answer {other}"),
    })
}

mod matching;

#[cfg(test)]
mod tests;
