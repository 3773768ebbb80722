//! Distinct counts on a theta sketch (Pinot's "smart" HyperLogLog is in `smart_hll`).
//!
//! | Name | Result | Sketch and default |
//! | --- | --- | --- |
//! | `DISTINCTCOUNTTHETASKETCH(x[, 'nominalEntries=N'])` | LONG | a theta (k minimum values) sketch of N = 16384 entries (Pinot's default): exact below N distinct values, then an estimate with a relative error of about 1/√N |
//!
//! The theta sketch keeps the hashes below its threshold theta, at most 2N between trims;
//! a trim keeps the N smallest and lowers theta to the next one. Sketches merge by taking
//! the smaller theta and the union of the hashes below it, so partial results merge as
//! Pinot's do.
//!
//! With filters and a set expression, as Pinot's
//! `DISTINCTCOUNTTHETASKETCH(x, params, 'filter1', ..., 'SET_INTERSECT($1, $2)')` (at least
//! four arguments), one sketch is kept per filter (of the values of the rows it keeps) and
//! one of every row (`$0`); the answer is the estimate of the set expression over them:
//! `SET_UNION(...)`, `SET_INTERSECT(...)`, `SET_DIFF(a, b)` and `$n`, nested at will. The
//! query engine turns each filter's text into the predicate itself (a BOOLEAN argument).
//! Set operations take the smallest theta of their inputs, as DataSketches' do.

use std::collections::HashSet;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::compute::filter;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result, ScalarValue};

use super::sketch::{for_each_key, hash};
use super::{Aggregation, AggregationArgs, AggregationState};

/// Pinot's default nominal entries of a theta sketch.
const DEFAULT_NOMINAL_ENTRIES: usize = 16_384;

/// `key=value` pairs separated by `;`, keys compared without case; an unknown key or a
/// value that is not a whole number in `range` is an error naming it.
pub(super) fn parameters(
    name: &str,
    text: Option<&str>,
    known: &[(&str, std::ops::RangeInclusive<u64>)],
) -> Result<Vec<Option<u64>>> {
    let mut out = vec![None; known.len()];
    let Some(text) = text else {
        return Ok(out);
    };
    for pair in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return exec_err!("{name}: the parameter '{pair}' is not key=value");
        };
        let (k, v) = (k.trim(), v.trim());
        let Some(i) = known.iter().position(|(n, _)| n.eq_ignore_ascii_case(k)) else {
            let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
            return exec_err!(
                "{name}: unknown parameter '{k}' (known: {})",
                names.join(", ")
            );
        };
        let range = &known[i].1;
        match v.parse::<u64>() {
            Ok(n) if range.contains(&n) => out[i] = Some(n),
            _ => {
                return exec_err!(
                    "{name}: {k} must be a whole number from {} to {}, got '{v}'",
                    range.start(),
                    range.end()
                )
            }
        }
    }
    Ok(out)
}

pub(super) fn single_value_only(name: &str, types: &[DataType]) -> Result<()> {
    match types.first() {
        Some(DataType::List(_) | DataType::LargeList(_)) => {
            exec_err!("{name} takes a single value per row")
        }
        Some(_) => Ok(()),
        None => exec_err!("{name} takes a column"),
    }
}

/// `DISTINCTCOUNTTHETASKETCH`.
#[derive(Debug)]
pub(super) struct Theta {
    pub(super) name: &'static str,
}

impl Aggregation for Theta {
    fn name(&self) -> &str {
        self.name
    }

    fn arity(&self) -> (usize, usize) {
        (1, 3 + MAX_FILTERS)
    }

    fn result_type(&self, types: &[DataType]) -> Result<DataType> {
        single_value_only(self.name, types)?;
        if types.len() == 3 {
            return exec_err!(
                "{}: give the parameters, at least one filter and a set expression                  (x, 'nominalEntries=4096', 'dim = 1', 'SET_UNION($1)'), or only x and the parameters",
                self.name
            );
        }
        if let Some(t) = types
            .iter()
            .take(types.len().saturating_sub(1))
            .skip(2)
            .find(|t| !matches!(t, DataType::Boolean | DataType::Null))
        {
            return exec_err!(
                "{}: a filter must be a predicate written as text, such as 'dim = 1' (got {t})",
                self.name
            );
        }
        Ok(DataType::Int64)
    }

    fn initialise(&self, args: &AggregationArgs) -> Result<Box<dyn AggregationState>> {
        if args.types.len() > 1 && args.text(1).is_none() {
            return exec_err!(
                "{}: the second argument must be a parameter string such as 'nominalEntries=4096'",
                self.name
            );
        }
        let p = parameters(
            self.name,
            args.text(1),
            &[("nominalEntries", 16..=(1 << 26))],
        )?;
        let k = p[0].map_or(DEFAULT_NOMINAL_ENTRIES, |n| n as usize);
        // As DataSketches does: the next power of two.
        let k = k.next_power_of_two();
        let n = args.types.len();
        if n < 4 {
            return Ok(Box::new(ThetaState::new(self.name, k)));
        }
        let filters = n - 3;
        let Some(text) = args.text(n - 1) else {
            return exec_err!(
                "{}: the last argument must be a set expression as text, such as 'SET_INTERSECT($1, $2)'",
                self.name
            );
        };
        let expr = SetExpr::parse(text, filters).map_err(|e| {
            datafusion::common::DataFusionError::Execution(format!(
                "{}: set expression '{text}': {e}",
                self.name
            ))
        })?;
        Ok(Box::new(ThetaSetState {
            name: self.name,
            sketches: (0..=filters)
                .map(|_| ThetaState::new(self.name, k))
                .collect(),
            expr,
        }))
    }
}

/// Filters a theta sketch call may have.
const MAX_FILTERS: usize = 32;

/// A set expression over the sketches: `$0` is every row's, `$n` filter n's.
#[derive(Clone, Debug, PartialEq)]
enum SetExpr {
    Sketch(usize),
    Union(Vec<SetExpr>),
    Intersect(Vec<SetExpr>),
    Diff(Box<SetExpr>, Box<SetExpr>),
}

impl SetExpr {
    /// Parses Pinot's post-aggregation expression; `$n` up to `filters`.
    fn parse(text: &str, filters: usize) -> std::result::Result<SetExpr, String> {
        let mut rest = text.trim();
        let e = Self::parse_one(&mut rest, filters, 0)?;
        if !rest.trim().is_empty() {
            return Err(format!("unexpected '{}'", rest.trim()));
        }
        Ok(e)
    }

    fn parse_one(
        rest: &mut &str,
        filters: usize,
        depth: usize,
    ) -> std::result::Result<SetExpr, String> {
        if depth > 32 {
            return Err("nested too deeply".into());
        }
        *rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('$') {
            let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
            let n: usize = digits
                .parse()
                .map_err(|_| "a '$' without a number".to_string())?;
            if n > filters {
                return Err(format!("${n} names no filter (there are {filters})"));
            }
            *rest = &r[digits.len()..];
            return Ok(SetExpr::Sketch(n));
        }
        let open = rest
            .find('(')
            .ok_or("expected SET_UNION, SET_INTERSECT, SET_DIFF or $n")?;
        let name = rest[..open].trim().replace('_', "").to_ascii_lowercase();
        *rest = &rest[open + 1..];
        let mut args = Vec::new();
        loop {
            args.push(Self::parse_one(rest, filters, depth + 1)?);
            *rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                *rest = r;
            } else if let Some(r) = rest.strip_prefix(')') {
                *rest = r;
                break;
            } else {
                return Err("expected ',' or ')'".into());
            }
        }
        match name.as_str() {
            "setunion" => Ok(SetExpr::Union(args)),
            "setintersect" => Ok(SetExpr::Intersect(args)),
            "setdiff" => match <[SetExpr; 2]>::try_from(args) {
                Ok([a, b]) => Ok(SetExpr::Diff(Box::new(a), Box::new(b))),
                Err(_) => Err("SET_DIFF takes two sets".into()),
            },
            other => Err(format!("unknown set operation '{other}'")),
        }
    }

    /// The expression's sketch: its theta and the hashes below it.
    fn eval(&self, sketches: &[ThetaState]) -> (u64, HashSet<u64>) {
        match self {
            SetExpr::Sketch(n) => sketches
                .get(*n)
                .map(|s| {
                    let mut c = s.copy();
                    c.trim();
                    (c.theta, c.hashes)
                })
                .unwrap_or((u64::MAX, HashSet::new())),
            SetExpr::Union(args) => {
                let parts: Vec<_> = args.iter().map(|a| a.eval(sketches)).collect();
                let theta = parts.iter().map(|p| p.0).min().unwrap_or(u64::MAX);
                let hashes = parts
                    .into_iter()
                    .flat_map(|p| p.1)
                    .filter(|h| *h < theta)
                    .collect();
                (theta, hashes)
            }
            SetExpr::Intersect(args) => {
                let parts: Vec<_> = args.iter().map(|a| a.eval(sketches)).collect();
                let theta = parts.iter().map(|p| p.0).min().unwrap_or(u64::MAX);
                let mut it = parts.into_iter();
                let first = it.next().map(|p| p.1).unwrap_or_default();
                let rest: Vec<HashSet<u64>> = it.map(|p| p.1).collect();
                let hashes = first
                    .into_iter()
                    .filter(|h| *h < theta && rest.iter().all(|r| r.contains(h)))
                    .collect();
                (theta, hashes)
            }
            SetExpr::Diff(a, b) => {
                let (ta, ha) = a.eval(sketches);
                let (tb, hb) = b.eval(sketches);
                let theta = ta.min(tb);
                let hashes = ha
                    .into_iter()
                    .filter(|h| *h < theta && !hb.contains(h))
                    .collect();
                (theta, hashes)
            }
        }
    }
}

/// Theta sketches per filter and a set expression over them.
#[derive(Debug)]
struct ThetaSetState {
    name: &'static str,
    /// `$0` (every row), then one per filter.
    sketches: Vec<ThetaState>,
    expr: SetExpr,
}

impl AggregationState for ThetaSetState {
    fn aggregate(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(a) = values.first() else {
            return exec_err!("{} takes a column", self.name);
        };
        let filters = self.sketches.len() - 1;
        for (i, sketch) in self.sketches.iter_mut().enumerate() {
            if i == 0 {
                for_each_key(a, |tag, bytes| sketch.add(hash(tag, bytes)))?;
                continue;
            }
            let Some(mask) = values.get(1 + i).and_then(|m| m.as_boolean_opt()) else {
                return exec_err!("{}: filter {i} of {filters} is not a predicate", self.name);
            };
            let kept = filter(a.as_ref(), mask)?;
            for_each_key(&kept, |tag, bytes| sketch.add(hash(tag, bytes)))?;
        }
        Ok(())
    }

    fn serialize(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for s in &self.sketches {
            let b = s.serialize()?;
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(&b);
        }
        Ok(out)
    }

    fn merge(&mut self, b: &[u8]) -> Result<()> {
        let mut at = 0usize;
        for s in self.sketches.iter_mut() {
            let len = b
                .get(at..at + 8)
                .and_then(|x| x.try_into().ok())
                .map(u64::from_le_bytes)
                .and_then(|n| usize::try_from(n).ok());
            let Some(part) = len.and_then(|n| b.get(at + 8..at + 8 + n)) else {
                return exec_err!("{}: a malformed intermediate result", self.name);
            };
            s.merge(part)?;
            at += 8 + part.len();
        }
        Ok(())
    }

    fn finish(&self) -> Result<ScalarValue> {
        let (theta, hashes) = self.expr.eval(&self.sketches);
        let k = self
            .sketches
            .first()
            .map_or(DEFAULT_NOMINAL_ENTRIES, |s| s.k);
        let mut result = ThetaState {
            name: self.name,
            k,
            theta,
            hashes,
        };
        result.trim();
        Ok(ScalarValue::Int64(Some(result.estimate())))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.sketches.iter().map(|s| s.size()).sum::<usize>()
    }
}

/// A theta sketch: the hashes below `theta`, at most `2k` of them.
#[derive(Debug)]
pub(super) struct ThetaState {
    name: &'static str,
    k: usize,
    /// Hashes at or above it are not kept; `u64::MAX` while nothing was dropped.
    theta: u64,
    hashes: HashSet<u64>,
}

impl ThetaState {
    pub(super) fn new(name: &'static str, k: usize) -> ThetaState {
        ThetaState {
            name,
            k,
            theta: u64::MAX,
            hashes: HashSet::new(),
        }
    }

    fn copy(&self) -> ThetaState {
        ThetaState {
            name: self.name,
            k: self.k,
            theta: self.theta,
            hashes: self.hashes.clone(),
        }
    }

    fn add(&mut self, h: u64) {
        if h < self.theta && self.hashes.insert(h) && self.hashes.len() > 2 * self.k {
            self.trim();
        }
    }

    /// Keeps the `k` smallest hashes; theta becomes the next one.
    fn trim(&mut self) {
        if self.hashes.len() <= self.k {
            return;
        }
        let mut v: Vec<u64> = self.hashes.drain().collect();
        let (_, next, _) = v.select_nth_unstable(self.k);
        self.theta = *next;
        v.truncate(self.k);
        self.hashes = v.into_iter().collect();
    }

    /// The estimate: exact while nothing was dropped.
    pub(super) fn estimate(&self) -> i64 {
        let kept = self.hashes.iter().filter(|h| **h < self.theta).count();
        if self.theta == u64::MAX {
            return kept as i64;
        }
        // The retained share of the hash space is theta / 2^64.
        let fraction = self.theta as f64 / 2f64.powi(64);
        (kept.min(self.k) as f64 / fraction).round() as i64
    }
}

impl AggregationState for ThetaState {
    fn aggregate(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(a) = values.first() else {
            return exec_err!("{} takes a column", self.name);
        };
        for_each_key(a, |tag, bytes| self.add(hash(tag, bytes)))
    }

    fn serialize(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(16 + 8 * self.hashes.len());
        out.extend_from_slice(&(self.k as u64).to_le_bytes());
        out.extend_from_slice(&self.theta.to_le_bytes());
        for h in &self.hashes {
            out.extend_from_slice(&h.to_le_bytes());
        }
        Ok(out)
    }

    fn merge(&mut self, b: &[u8]) -> Result<()> {
        let word = |i: usize| {
            b.get(i * 8..i * 8 + 8)
                .and_then(|s| s.try_into().ok())
                .map(u64::from_le_bytes)
        };
        let (Some(k), Some(theta)) = (word(0), word(1)) else {
            return exec_err!("{}: not an intermediate result of this sketch", self.name);
        };
        if k != self.k as u64 || b.len() % 8 != 0 {
            return exec_err!("{}: not an intermediate result of this sketch", self.name);
        }
        if theta < self.theta {
            self.theta = theta;
            let t = self.theta;
            self.hashes.retain(|h| *h < t);
        }
        for i in 2..b.len() / 8 {
            if let Some(h) = word(i) {
                self.add(h);
            }
        }
        Ok(())
    }

    fn finish(&self) -> Result<ScalarValue> {
        let mut copy = self.copy();
        copy.trim();
        Ok(ScalarValue::Int64(Some(copy.estimate())))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.hashes.capacity() * 9
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use std::sync::Arc;

    fn theta(k: usize, values: impl Iterator<Item = i64>) -> ThetaState {
        let mut s = ThetaState::new("t", k);
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(values));
        s.aggregate(&[a]).unwrap_or_default();
        s
    }

    fn count(s: &dyn AggregationState) -> i64 {
        match s.finish() {
            Ok(ScalarValue::Int64(Some(n))) => n,
            Ok(ScalarValue::Int32(Some(n))) => n.into(),
            other => panic!("not a count: {other:?}"),
        }
    }

    #[test]
    fn theta_is_exact_below_its_nominal_entries() {
        let s = theta(1024, (0..1000).chain(0..1000));
        assert_eq!(count(&s), 1000);
    }

    #[test]
    fn theta_estimates_within_its_error_and_merges() {
        // k = 4096: relative standard error about 1/sqrt(4096) = 1.6%; 5% is three sigmas.
        let a = theta(4096, 0..300_000);
        let b = theta(4096, 200_000..500_000);
        let n = count(&a) as f64;
        assert!((n - 300_000.0).abs() / 300_000.0 < 0.05, "estimate {n}");
        let mut merged = ThetaState::new("t", 4096);
        merged
            .merge(&a.serialize().unwrap_or_default())
            .unwrap_or_default();
        merged
            .merge(&b.serialize().unwrap_or_default())
            .unwrap_or_default();
        let m = count(&merged) as f64;
        assert!((m - 500_000.0).abs() / 500_000.0 < 0.05, "merged {m}");
        assert!(merged.merge(&[1, 2, 3]).is_err());
    }

    #[test]
    fn parameters_name_what_is_wrong() {
        let known = [("nominalEntries", 16..=1024)];
        assert_eq!(
            parameters("f", Some("NOMINALENTRIES = 64"), &known).ok(),
            Some(vec![Some(64)])
        );
        let e = parameters("f", Some("nominalEntries=8"), &known)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("nominalEntries must be a whole number from 16"),
            "{e}"
        );
        let e = parameters("f", Some("lgK=8"), &known)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("unknown parameter 'lgK'"), "{e}");
    }
}
