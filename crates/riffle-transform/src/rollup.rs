//! Pinot's ingestion-time rollup (`ingestionConfig.aggregationConfigs`): rows with the same
//! values in every column but the metrics are merged into one, each metric aggregated from
//! a source field (`SUM(bytes)` into `total_bytes`).
//!
//! | function | metric column | merged |
//! | --- | --- | --- |
//! | `SUM(x)`, `MIN(x)`, `MAX(x)` | a number | sum, least, greatest |
//! | `COUNT(*)` | a number | count of rows |
//! | `DISTINCTCOUNTHLL(x[, log2m])` (log2m 12 by default, as Pinot's rollup) | BYTES | a HyperLogLog sketch; `DISTINCTCOUNTHLL(column)` at query time merges the sketches |
//! | `DISTINCTCOUNTHLLPLUS(x[, p])` (p 14) | BYTES | likewise |
//! | `SUMPRECISION(x[, precision])` | BIG_DECIMAL | an exact decimal sum |
//!
//! Rows are merged within each decoded block as it is published, and the whole segment
//! again when it seals (Pinot merges within a segment, never across segments): a query
//! over a consuming segment sees the sums it would see after the seal, in fewer rows only
//! once sealed. Rules checked, as Pinot's: every metric column has exactly one
//! aggregation; its source field is not a schema column; a sketch goes to a BYTES metric,
//! `SUMPRECISION` to a BIG_DECIMAL one, the others to a numeric one.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, Float64Array, Int64Array, RecordBatch, StringBuilder,
    UInt32Array,
};
use arrow::compute::{cast, concat_batches, take};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use arrow::row::{RowConverter, SortField};
use riffle_config::{DataType as PinotType, FieldType, Schema};
use riffle_segment::TableColumns;
use serde_json::Value;

use crate::TransformError;

const PATH: &str = "$.ingestionConfig.aggregationConfigs";

/// How one metric aggregates.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `SUM(x)`.
    Sum,
    /// `MIN(x)`.
    Min,
    /// `MAX(x)`.
    Max,
    /// `COUNT(*)`.
    Count,
    /// `DISTINCTCOUNTHLL` / `DISTINCTCOUNTHLLPLUS` at a precision.
    Hll(u8),
    /// `SUMPRECISION(x)`.
    SumPrecision,
}

/// One metric column's aggregation.
#[derive(Clone, Debug)]
pub struct Metric {
    /// The metric column's position in the table.
    pub column: usize,
    /// The source field (`None` for `COUNT(*)`).
    pub source: Option<String>,
    /// How it aggregates.
    pub kind: Kind,
}

/// A table's rollup.
#[derive(Clone, Debug)]
pub struct Rollup {
    metrics: Vec<Metric>,
    keys: Vec<usize>,
}

fn parse_call(text: &str) -> Option<(String, Vec<String>)> {
    let t = text.trim();
    let open = t.find('(')?;
    let inner = t[open + 1..].trim_end().strip_suffix(')')?;
    let args = inner
        .split(',')
        .map(|a| a.trim().trim_matches('"').to_string())
        .filter(|a| !a.is_empty())
        .collect();
    Some((t[..open].trim().to_ascii_lowercase().replace('_', ""), args))
}

impl Rollup {
    /// The rollup of a table, or `None` without `aggregationConfigs`.
    pub fn new(
        configs: &[Value],
        schema: &Schema,
        table: &TableColumns,
    ) -> Result<Option<Rollup>, TransformError> {
        if configs.is_empty() {
            return Ok(None);
        }
        let mut metrics = Vec::new();
        for (i, c) in configs.iter().enumerate() {
            let p = format!("{PATH}[{i}]");
            let col = c
                .get("columnName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let func = c
                .get("aggregationFunction")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let column = table.index_of(col).ok_or_else(|| {
                TransformError::new(
                    format!("{p}.columnName"),
                    format!("'{col}' is not a column"),
                )
            })?;
            let (name, args) = parse_call(func).ok_or_else(|| {
                TransformError::new(
                    format!("{p}.aggregationFunction"),
                    format!("'{func}' is not a function call such as SUM(bytes)"),
                )
            })?;
            let dt = table.columns[column].data_type;
            let number = |i: usize, default: u8| -> Result<u8, TransformError> {
                match args.get(i) {
                    None => Ok(default),
                    Some(a) => a
                        .parse::<u8>()
                        .ok()
                        .filter(|p| (4..=18).contains(p))
                        .ok_or_else(|| {
                            TransformError::new(
                                format!("{p}.aggregationFunction"),
                                format!("'{a}' in '{func}': expected a precision from 4 to 18"),
                            )
                        }),
                }
            };
            let kind = match name.as_str() {
                "sum" => Kind::Sum,
                "min" => Kind::Min,
                "max" => Kind::Max,
                "count" => Kind::Count,
                "distinctcounthll" => Kind::Hll(number(1, 12)?),
                "distinctcounthllplus" => Kind::Hll(number(1, 14)?),
                "sumprecision" => Kind::SumPrecision,
                other => {
                    return Err(TransformError::new(
                        format!("{p}.aggregationFunction"),
                        format!(
                        "'{other}' cannot aggregate at ingestion: expected SUM, MIN, MAX, COUNT, \
                             DISTINCTCOUNTHLL, DISTINCTCOUNTHLLPLUS or SUMPRECISION"
                    ),
                    ))
                }
            };
            let wanted_ok = match &kind {
                Kind::Hll(_) => dt == PinotType::Bytes,
                Kind::SumPrecision => matches!(dt, PinotType::BigDecimal | PinotType::Bytes),
                _ => matches!(
                    dt,
                    PinotType::Int | PinotType::Long | PinotType::Float | PinotType::Double
                ),
            };
            if !wanted_ok || !table.columns[column].single_value {
                return Err(TransformError::new(
                    format!("{p}.columnName"),
                    format!(
                        "'{col}' ({} {}) cannot hold {func}: sketches go to single-value BYTES metrics, \
                         SUMPRECISION to BIG_DECIMAL, the others to numbers",
                        if table.columns[column].single_value { "single-value" } else { "multi-value" },
                        dt.name()
                    ),
                ));
            }
            let source = match (&kind, args.first().map(String::as_str)) {
                (Kind::Count, _) => None,
                (_, Some(s)) => {
                    if table.index_of(s).is_some() {
                        return Err(TransformError::new(
                            format!("{p}.aggregationFunction"),
                            format!(
                                "the source field '{s}' of '{func}' must not be a schema column"
                            ),
                        ));
                    }
                    Some(s.to_string())
                }
                (_, None) => {
                    return Err(TransformError::new(
                        format!("{p}.aggregationFunction"),
                        format!("'{func}' needs a source field"),
                    ))
                }
            };
            metrics.push(Metric {
                column,
                source,
                kind,
            });
        }
        for c in table
            .columns
            .iter()
            .filter(|c| c.field_type == FieldType::Metric)
        {
            let i = table.index_of(&c.name).unwrap_or(usize::MAX);
            if !metrics.iter().any(|m| m.column == i) {
                return Err(TransformError::new(
                    PATH,
                    format!(
                        "metric '{}' of schema '{}' has no aggregation: every metric must be aggregated",
                        c.name, schema.schema_name
                    ),
                ));
            }
        }
        let keys = (0..table.columns.len())
            .filter(|i| !metrics.iter().any(|m| m.column == *i))
            .collect();
        Ok(Some(Rollup { metrics, keys }))
    }

    /// Source fields the metrics read.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.metrics.iter().filter_map(|m| m.source.as_deref())
    }

    /// Groups of equal keys: for each row its group, and each group's first row.
    fn groups(&self, cols: &[ArrayRef]) -> Result<(Vec<u32>, Vec<u32>), String> {
        let keys: Vec<ArrayRef> = self.keys.iter().map(|i| cols[*i].clone()).collect();
        let rows = cols.first().map_or(0, |c| c.len());
        if keys.is_empty() {
            return Ok((vec![0; rows], if rows > 0 { vec![0] } else { vec![] }));
        }
        let conv = RowConverter::new(
            keys.iter()
                .map(|k| SortField::new(k.data_type().clone()))
                .collect(),
        )
        .map_err(|e| e.to_string())?;
        let converted = conv.convert_columns(&keys).map_err(|e| e.to_string())?;
        let mut index: HashMap<arrow::row::Row<'_>, u32> = HashMap::new();
        let mut group_of = Vec::with_capacity(rows);
        let mut firsts = Vec::new();
        for r in 0..rows {
            let g = *index.entry(converted.row(r)).or_insert_with(|| {
                firsts.push(r as u32);
                (firsts.len() - 1) as u32
            });
            group_of.push(g);
        }
        Ok((group_of, firsts))
    }

    /// Merges rows of the working columns (`cols`: the table's columns first, source fields
    /// at `source_at`): the metrics are computed from their source fields.
    pub fn from_sources(
        &self,
        cols: &[ArrayRef],
        source_at: &dyn Fn(&str) -> Option<usize>,
        table: &TableColumns,
    ) -> Result<Vec<ArrayRef>, String> {
        let (group_of, firsts) = self.groups(&cols[..table.columns.len()])?;
        let take_idx = UInt32Array::from(firsts.clone());
        let mut out: Vec<ArrayRef> = Vec::with_capacity(table.columns.len());
        for (i, c) in cols.iter().take(table.columns.len()).enumerate() {
            match self.metrics.iter().find(|m| m.column == i) {
                None => out.push(take(c.as_ref(), &take_idx, None).map_err(|e| e.to_string())?),
                Some(m) => {
                    let src = m
                        .source
                        .as_deref()
                        .and_then(source_at)
                        .map(|j| cols[j].clone());
                    let dt = table.arrow.field(i).data_type().clone();
                    out.push(aggregate(
                        &m.kind,
                        src.as_ref(),
                        &group_of,
                        firsts.len(),
                        &dt,
                        false,
                    )?);
                }
            }
        }
        Ok(out)
    }

    /// Merges already-aggregated rows (blocks of a segment that seals).
    pub fn merge(
        &self,
        batches: &[RecordBatch],
        table: &TableColumns,
    ) -> Result<RecordBatch, String> {
        let all = concat_batches(&table.arrow, batches).map_err(|e| e.to_string())?;
        let cols = all.columns().to_vec();
        let (group_of, firsts) = self.groups(&cols)?;
        if firsts.len() == all.num_rows() {
            return Ok(all);
        }
        let take_idx = UInt32Array::from(firsts.clone());
        let mut out: Vec<ArrayRef> = Vec::with_capacity(cols.len());
        for (i, c) in cols.iter().enumerate() {
            match self.metrics.iter().find(|m| m.column == i) {
                None => out.push(take(c.as_ref(), &take_idx, None).map_err(|e| e.to_string())?),
                Some(m) => {
                    let dt = table.arrow.field(i).data_type().clone();
                    out.push(aggregate(
                        &m.kind,
                        Some(c),
                        &group_of,
                        firsts.len(),
                        &dt,
                        true,
                    )?);
                }
            }
        }
        RecordBatch::try_new(table.arrow.clone(), out).map_err(|e| e.to_string())
    }
}

/// One metric's values per group. `partial`: the values are earlier aggregates (counts add
/// up, sketches merge).
fn aggregate(
    kind: &Kind,
    src: Option<&ArrayRef>,
    group_of: &[u32],
    groups: usize,
    dt: &DataType,
    partial: bool,
) -> Result<ArrayRef, String> {
    let e = |e: arrow::error::ArrowError| e.to_string();
    let out: ArrayRef = match kind {
        Kind::Count if !partial => {
            let mut c = vec![0i64; groups];
            for g in group_of {
                c[*g as usize] += 1;
            }
            Arc::new(Int64Array::from(c))
        }
        Kind::Sum | Kind::Count | Kind::Min | Kind::Max => {
            let Some(src) = src else {
                return Err("a metric without its source field".into());
            };
            let whole = dt.is_integer();
            if whole {
                let v = cast(src, &DataType::Int64).map_err(e)?;
                let v = v.as_primitive::<Int64Type>();
                let mut acc: Vec<Option<i64>> = vec![None; groups];
                for (r, g) in group_of.iter().enumerate() {
                    if v.is_null(r) {
                        continue;
                    }
                    let x = v.value(r);
                    let a = &mut acc[*g as usize];
                    *a = Some(match (kind, *a) {
                        (_, None) => x,
                        (Kind::Min, Some(y)) => y.min(x),
                        (Kind::Max, Some(y)) => y.max(x),
                        (_, Some(y)) => y.saturating_add(x),
                    });
                }
                Arc::new(Int64Array::from(acc))
            } else {
                let v = cast(src, &DataType::Float64).map_err(e)?;
                let v = v.as_primitive::<Float64Type>();
                let mut acc: Vec<Option<f64>> = vec![None; groups];
                for (r, g) in group_of.iter().enumerate() {
                    if v.is_null(r) {
                        continue;
                    }
                    let x = v.value(r);
                    let a = &mut acc[*g as usize];
                    *a = Some(match (kind, *a) {
                        (_, None) => x,
                        (Kind::Min, Some(y)) => y.min(x),
                        (Kind::Max, Some(y)) => y.max(x),
                        (_, Some(y)) => y + x,
                    });
                }
                Arc::new(Float64Array::from(acc))
            }
        }
        Kind::Hll(p) => {
            let mut sketches: Vec<Option<Vec<u8>>> = vec![None; groups];
            if let Some(src) = src {
                // Rows of each group, then one sketch per group.
                let mut rows: Vec<Vec<u32>> = vec![Vec::new(); groups];
                for (r, g) in group_of.iter().enumerate() {
                    rows[*g as usize].push(r as u32);
                }
                for (g, rs) in rows.into_iter().enumerate() {
                    let part = take(src.as_ref(), &UInt32Array::from(rs), None).map_err(e)?;
                    sketches[g] = Some(if partial {
                        let b = part.as_binary::<i32>();
                        let mut acc: Option<Vec<u8>> = None;
                        for v in b.iter().flatten() {
                            acc = Some(match acc {
                                None => v.to_vec(),
                                Some(a) => riffle_functions::aggregation::hll_merge(&a, v)
                                    .map_err(|x| x.to_string())?,
                            });
                        }
                        match acc {
                            Some(a) => a,
                            None => riffle_functions::aggregation::hll_of(*p, &part)
                                .map_err(|x| x.to_string())?,
                        }
                    } else {
                        riffle_functions::aggregation::hll_of(*p, &part)
                            .map_err(|x| x.to_string())?
                    });
                }
            }
            let mut b = BinaryBuilder::new();
            for s in sketches {
                match s {
                    Some(s) => b.append_value(s),
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        Kind::SumPrecision => {
            let Some(src) = src else {
                return Err("a metric without its source field".into());
            };
            let v = cast(src, &DataType::Utf8).map_err(e)?;
            let v = v.as_string::<i32>();
            let mut acc: Vec<Option<String>> = vec![None; groups];
            for (r, g) in group_of.iter().enumerate() {
                if v.is_null(r) {
                    continue;
                }
                let a = &mut acc[*g as usize];
                let sum = riffle_functions::aggregation::add_decimal_text(
                    a.as_deref().unwrap_or(""),
                    v.value(r),
                )
                .ok_or_else(|| {
                    format!(
                        "SUMPRECISION: '{}' is not a number (or the sum passes 38 digits)",
                        v.value(r)
                    )
                })?;
                *a = Some(sum);
            }
            let mut b = StringBuilder::new();
            for s in acc {
                b.append_option(s);
            }
            Arc::new(b.finish())
        }
    };
    if out.data_type() == dt {
        Ok(out)
    } else {
        cast(&out, dt).map_err(e)
    }
}
