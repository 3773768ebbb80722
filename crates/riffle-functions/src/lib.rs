//! Pinot's function library: scalar functions with the meaning Pinot gives them, as
//! DataFusion functions, so that a query (and, later, an ingestion transform) behaves as
//! it does in Pinot.
//!
//! Owns the functions whose name DataFusion already uses with another meaning (they replace
//! DataFusion's in a session: [`register`]) and Pinot's own functions. Today:
//!
//! - `ROUND(t, m)` ([`round::PinotRound`]): Pinot floors `t` to a multiple of `m`
//!   (`(t / m) * m`, Superset's 5/10/15/30-minute grains rely on it), where DataFusion would
//!   round to `m` decimal places. A TIMESTAMP `t` is floored in epoch milliseconds and stays
//!   a TIMESTAMP; a number is floored as a LONG. `ROUND(x)` rounds to the nearest whole
//!   number, as before.
//! - `LOG(x)` natural, `STRPOS` 0-based with -1 when absent, `REGEXP_REPLACE` of every
//!   match ([`adapted`]: DataFusion's implementations with Pinot's arguments or results).
//! - `mv_any(mv, op, value...)` ([`multivalue::MvAny`]): a predicate on a multi-value
//!   column as Pinot means it (any value matches); the query engine rewrites `mv = 3`,
//!   `mv IN (...)`, `mv BETWEEN ...` and their negations into it; `VALUEIN`,
//!   `ARRAYLENGTH`, `ARRAYMIN` / `MAX` / `SUM` / `AVERAGE` on multi-value columns, and the
//!   typed ones (`ARRAYSORTINT`, `ARRAYCONTAINSSTRING`, ...: [`typed_arrays`]).
//! - `SUBSTR(s, begin[, end])` ([`strings`]): 0-based, `end` exclusive, as Pinot's;
//!   `SPLIT`, Pinot's three-argument `CONCAT(a, b, separator)` and `JSONFORMAT`
//!   ([`ingest_strings`]), which ingestion transforms use most.
//! - Pinot's date-time functions on epoch values ([`datetime`]): `DATETRUNC`,
//!   `DATETIMECONVERT`, `TIMECONVERT`, `TOEPOCH*`, `FROMEPOCH*`, `TODATETIME`,
//!   `FROMDATETIME`, `YEAR` … `MILLISECOND`, `AGO`.
//! - `ADD`/`SUB`/`MULT`/`DIV`/`MOD` (DOUBLE), `STARTSWITH`, `ENDSWITH`, `SPLITPART`,
//!   `STRCMP`, `TOUTF8`, Base64 and URL coding ([`scalars`]).
//! - `JSONEXTRACTSCALAR`, `JSONEXTRACTKEY` and the `JSONPATH*` family ([`json`]), with
//!   Pinot's defaults.
//! - `REGEXPEXTRACT` ([`regexp`]), the hash functions (`SHA`, `SHA256` as hex, Murmur, FNV,
//!   CRC32, Adler-32: [`hash`]), the IP functions ([`ip`]) and the vector functions
//!   (`COSINEDISTANCE`, `L2DISTANCE`, ...: [`vector`]); `TEXT_MATCH` ([`text`]) and
//!   `JSON_MATCH` ([`json`]) evaluated on each row (no text or JSON index).
//! - Aggregations beyond DataFusion's, and the plugin API they are written on
//!   ([`aggregation`]).
//!
//! Invariants: a function never panics on any input (nulls stay null, a zero multiple is
//! an error naming the function); no function reads state outside its arguments
//! (except `AGO`, which reads the clock once per query batch).

pub mod adapted;
pub mod aggregation;
pub mod arrays;
pub mod datetime;
pub mod hash;
pub mod ingest_strings;
pub mod ip;
pub mod json;
pub mod literal;
pub mod multivalue;
pub mod regexp;
pub mod round;
pub mod scalars;
#[cfg(test)]
mod sql_test;
pub mod strings;
pub mod text;
pub mod typed_arrays;
pub mod vector;

use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

/// Every function of the library.
pub fn functions() -> Vec<ScalarUDF> {
    let mut out = vec![
        ScalarUDF::new_from_impl(round::PinotRound::new()),
        ScalarUDF::new_from_impl(multivalue::MvAny::new()),
        ScalarUDF::new_from_impl(strings::PinotSubstr::new()),
        ScalarUDF::new_from_impl(regexp::RegexpExtract::new()),
        ScalarUDF::new_from_impl(text::TextMatch::new()),
        ScalarUDF::new_from_impl(arrays::ValueIn::new()),
    ];
    out.extend(
        arrays::ArrayFn::all()
            .into_iter()
            .map(ScalarUDF::new_from_impl),
    );
    out.extend(datetime::functions());
    out.extend(json::functions());
    out.extend(scalars::functions());
    out.extend(hash::functions());
    out.extend(ingest_strings::functions());
    out.extend(ip::functions());
    out.extend(vector::functions());
    out.extend(typed_arrays::functions());
    out
}

/// Registers the library in a session, replacing DataFusion's functions of the same names
/// (the adapted ones wrap the session's own: [`adapted::adapted`]), and the aggregations of
/// `aggregations` (Pinot's built-in ones and any plugins: [`aggregation`]).
pub fn register(ctx: &SessionContext, aggregations: &aggregation::AggregationRegistry) {
    for f in adapted::adapted(ctx).into_iter().chain(functions()) {
        ctx.register_udf(f);
    }
    for a in aggregations.udafs() {
        ctx.register_udaf(a);
    }
}
