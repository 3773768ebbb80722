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
//!
//! Invariants: a function never panics on any input (nulls stay null, a zero multiple is
//! an error naming the function); no function reads state outside its arguments.

pub mod adapted;
pub mod round;

use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

/// Every function of the library.
pub fn functions() -> Vec<ScalarUDF> {
    vec![ScalarUDF::new_from_impl(round::PinotRound::new())]
}

/// Registers the library in a session, replacing DataFusion's functions of the same names
/// (the adapted ones wrap the session's own: [`adapted::adapted`]).
pub fn register(ctx: &SessionContext) {
    for f in adapted::adapted(ctx).into_iter().chain(functions()) {
        ctx.register_udf(f);
    }
}
