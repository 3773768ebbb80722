//! `LASTWITHTIME` / `FIRSTWITHTIME`.

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_err, Result, ScalarValue};

use super::{Aggregation, AggregationArgs, AggregationState};

/// `LASTWITHTIME(x, t, 'TYPE')` / `FIRSTWITHTIME(...)`: the value of `x` at the greatest
/// (least) `t`. The result has `x`'s type; the type literal is checked against Pinot's
/// names. On equal times the last one wins a `LAST` and the first one a `FIRST`.
#[derive(Debug)]
pub(super) struct WithTime {
    pub(super) name: &'static str,
    pub(super) last: bool,
}

impl Aggregation for WithTime {
    fn name(&self) -> &str {
        self.name
    }

    fn arity(&self) -> (usize, usize) {
        (3, 3)
    }

    fn result_type(&self, types: &[DataType]) -> Result<DataType> {
        match types {
            [DataType::List(_) | DataType::LargeList(_), ..] => {
                exec_err!("{} takes a single value per row", self.name)
            }
            [v, t, _] if t.is_integer() || matches!(t, DataType::Timestamp(_, _)) => {
                Ok(v.clone())
            }
            _ => exec_err!(
                "{} takes a value, a time (a whole number or TIMESTAMP) and a type name; got {types:?}",
                self.name
            ),
        }
    }

    fn initialise(&self, args: &AggregationArgs) -> Result<Box<dyn AggregationState>> {
        let known = [
            "INT",
            "LONG",
            "FLOAT",
            "DOUBLE",
            "STRING",
            "BOOLEAN",
            "TIMESTAMP",
        ];
        match args.text(2).map(|s| s.to_ascii_uppercase()) {
            Some(t) if known.contains(&t.as_str()) => {}
            _ => {
                return exec_err!(
                    "{}: the third argument must be one of {}",
                    self.name,
                    known.join(", ")
                )
            }
        }
        Ok(Box::new(WithTimeState {
            name: self.name,
            last: self.last,
            result_type: args.types.first().cloned().unwrap_or(DataType::Null),
            best: None,
        }))
    }
}

#[derive(Debug)]
struct WithTimeState {
    name: &'static str,
    last: bool,
    result_type: DataType,
    /// The best time so far and its value.
    best: Option<(i64, ScalarValue)>,
}

impl WithTimeState {
    fn better(&self, t: i64) -> bool {
        match &self.best {
            None => true,
            Some((b, _)) if self.last => t >= *b,
            Some((b, _)) => t < *b,
        }
    }

    fn offer(&mut self, t: i64, v: ScalarValue) {
        if self.better(t) {
            self.best = Some((t, v));
        }
    }
}

/// The encoding of a value in an intermediate result: a tag and its bytes.
fn encode_value(v: &ScalarValue) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match v {
        v if v.is_null() => out.push(b'n'),
        ScalarValue::Boolean(Some(b)) => {
            out.push(b'b');
            out.push(u8::from(*b));
        }
        ScalarValue::Float32(Some(f)) => {
            out.push(b'f');
            out.extend_from_slice(&f64::from(*f).to_le_bytes());
        }
        ScalarValue::Float64(Some(f)) => {
            out.push(b'f');
            out.extend_from_slice(&f.to_le_bytes());
        }
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => {
            out.push(b's');
            out.extend_from_slice(s.as_bytes());
        }
        other => match other.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(Some(i)) => {
                out.push(b'i');
                out.extend_from_slice(&i.to_le_bytes());
            }
            _ => return exec_err!("a value of type {} cannot be kept", other.data_type()),
        },
    }
    Ok(out)
}

fn decode_value(b: &[u8], t: &DataType) -> Option<ScalarValue> {
    let (tag, rest) = b.split_first()?;
    let eight = || -> Option<[u8; 8]> { rest.try_into().ok() };
    let v = match tag {
        b'n' => return ScalarValue::try_from(t).ok(),
        b'b' => ScalarValue::Boolean(Some(*rest.first()? != 0)),
        b'f' => ScalarValue::Float64(Some(f64::from_le_bytes(eight()?))),
        b's' => ScalarValue::Utf8(Some(String::from_utf8(rest.to_vec()).ok()?)),
        b'i' => ScalarValue::Int64(Some(i64::from_le_bytes(eight()?))),
        _ => return None,
    };
    v.cast_to(t).ok()
}

impl AggregationState for WithTimeState {
    fn aggregate(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [v, t, ..] = values else {
            return exec_err!("{} takes a value and a time", self.name);
        };
        let t = match t.data_type() {
            DataType::Timestamp(_, _) => cast(
                &cast(
                    t,
                    &DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Millisecond, None),
                )?,
                &DataType::Int64,
            )?,
            _ => cast(t, &DataType::Int64)?,
        };
        let times = t.as_primitive::<Int64Type>();
        for (i, time) in times.iter().enumerate() {
            if let Some(time) = time {
                if self.better(time) {
                    let value = ScalarValue::try_from_array(v.as_ref(), i)?;
                    self.offer(time, value);
                }
            }
        }
        Ok(())
    }

    fn serialize(&self) -> Result<Vec<u8>> {
        match &self.best {
            None => Ok(Vec::new()),
            Some((t, v)) => {
                let mut out = t.to_le_bytes().to_vec();
                out.extend(encode_value(v)?);
                Ok(out)
            }
        }
    }

    fn merge(&mut self, b: &[u8]) -> Result<()> {
        if b.is_empty() {
            return Ok(());
        }
        let time = b
            .get(..8)
            .and_then(|s| s.try_into().ok())
            .map(i64::from_le_bytes);
        let value = b
            .get(8..)
            .and_then(|rest| decode_value(rest, &self.result_type));
        match (time, value) {
            (Some(t), Some(v)) => {
                self.offer(t, v);
                Ok(())
            }
            _ => exec_err!("{}: a malformed intermediate result", self.name),
        }
    }

    fn finish(&self) -> Result<ScalarValue> {
        match &self.best {
            Some((_, v)) => v.cast_to(&self.result_type),
            None => ScalarValue::try_from(&self.result_type),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.best.as_ref().map_or(0, |(_, v)| v.size())
    }
}
