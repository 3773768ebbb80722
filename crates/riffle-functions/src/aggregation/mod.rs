//! The aggregation-function plugin API: Pinot's `AggregationFunction` contract as a Rust
//! trait, a registry by name, and the adapter that runs any registered aggregation inside
//! the query engine (DataFusion), grouped or not, across segments and threads.
//!
//! An aggregation is two things:
//! - an [`Aggregation`]: its name, its result type for given argument types, and a way to
//!   make a fresh state ([`Aggregation::initialise`]) from the query's arguments (literal
//!   arguments such as a percentile's `95` are handed over as values);
//! - an [`AggregationState`] per group (or one for the whole query): it folds in a block of
//!   rows ([`AggregationState::aggregate`]), or some rows of a block for grouped queries
//!   ([`AggregationState::aggregate_rows`]), serialises itself as an intermediate result
//!   ([`AggregationState::serialize`]), merges another state's intermediate result
//!   ([`AggregationState::merge`]) and extracts the final result
//!   ([`AggregationState::finish`]).
//!
//! This is Pinot's map / combine / reduce: each segment (each thread's share of the rows)
//! aggregates into its own states, intermediate results are merged, and the final result is
//! extracted once. A state must therefore merge losslessly: merging the intermediate results
//! of two parts gives the state of the whole (an exact answer never becomes an estimate on
//! the way).
//!
//! Register aggregations in an [`AggregationRegistry`]; the query engine registers the
//! registry's functions in every query's session. Names are matched as Pinot matches them:
//! in any case (the engine lowercases unquoted function names), and the registry also
//! answers to the name without underscores (`DISTINCT_COUNT` = `DISTINCTCOUNT`).
//!
//! Invariants: a state never panics on input (bad input is an error naming the function);
//! `merge` accepts exactly what `serialize` of the same aggregation produced, and refuses
//! anything else with an error rather than a wrong answer.

pub mod builtin;
mod kll;
mod moments;
mod multi_value;
mod precision;
pub use precision::add_decimal_text;
mod raw;
mod sketch;
pub use sketch::{hll_merge, hll_of};
mod smart_hll;
mod theta;
mod udaf;
mod with_time;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::AggregateUDF;

pub use udaf::AggregationUdf;

/// What a query gives an aggregation: its arguments' types, and the values of those that
/// are literals (`PERCENTILE(x, 95)`: `[None, Some(95)]`).
#[derive(Clone, Debug)]
pub struct AggregationArgs {
    /// The type of each argument.
    pub types: Vec<DataType>,
    /// The value of each argument that is a literal.
    pub literals: Vec<Option<ScalarValue>>,
}

impl AggregationArgs {
    /// Literal argument `i` as a number, if it is one.
    pub fn number(&self, i: usize) -> Option<f64> {
        crate::literal::number(self.literals.get(i)?.as_ref()?)
    }

    /// Literal argument `i` as text, if it is text.
    pub fn text(&self, i: usize) -> Option<&str> {
        crate::literal::text(self.literals.get(i)?.as_ref()?)
    }
}

/// An aggregation function (see the module documentation).
pub trait Aggregation: Send + Sync + Debug + 'static {
    /// The name queries call it by (lowercase; Pinot's name without underscores).
    fn name(&self) -> &str;

    /// How many arguments it takes: the least and the most.
    fn arity(&self) -> (usize, usize) {
        (1, 1)
    }

    /// The type of the final result for these argument types; an error names what is
    /// wrong with them.
    fn result_type(&self, types: &[DataType]) -> Result<DataType>;

    /// A fresh, empty state (an aggregation over no rows).
    fn initialise(&self, args: &AggregationArgs) -> Result<Box<dyn AggregationState>>;
}

/// The running state of one aggregation over one group (see the module documentation).
pub trait AggregationState: Send + Sync + Debug {
    /// Folds in every row of a block; `values[i]` holds argument `i` (a literal argument is
    /// repeated for each row).
    fn aggregate(&mut self, values: &[ArrayRef]) -> Result<()>;

    /// Folds in the rows `rows` of a block (a grouped query hands each group its rows).
    fn aggregate_rows(&mut self, values: &[ArrayRef], rows: &UInt32Array) -> Result<()> {
        let taken = values
            .iter()
            .map(|v| take(v.as_ref(), rows, None))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        self.aggregate(&taken)
    }

    /// The intermediate result: what another state of the same aggregation can merge.
    fn serialize(&self) -> Result<Vec<u8>>;

    /// Merges an intermediate result of [`AggregationState::serialize`].
    fn merge(&mut self, intermediate: &[u8]) -> Result<()>;

    /// The final result, of the type [`Aggregation::result_type`] named.
    fn finish(&self) -> Result<ScalarValue>;

    /// Bytes this state holds (for the query's memory accounting).
    fn size(&self) -> usize;
}

/// Aggregations by name.
#[derive(Clone, Debug, Default)]
pub struct AggregationRegistry {
    by_name: BTreeMap<String, Arc<dyn Aggregation>>,
}

impl AggregationRegistry {
    /// An empty registry.
    pub fn new() -> AggregationRegistry {
        AggregationRegistry::default()
    }

    /// Pinot's aggregations that Riffle implements with this API ([`builtin`]).
    pub fn with_builtins() -> AggregationRegistry {
        let mut r = AggregationRegistry::new();
        for a in builtin::all() {
            r.register(a);
        }
        r
    }

    /// Adds (or replaces) an aggregation under its name.
    pub fn register(&mut self, aggregation: Arc<dyn Aggregation>) {
        self.by_name
            .insert(aggregation.name().to_ascii_lowercase(), aggregation);
    }

    /// The aggregation called `name` (any case, underscores ignored).
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Aggregation>> {
        let key: String = name
            .chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        self.by_name.get(&key)
    }

    /// The names registered.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Every aggregation as a DataFusion function.
    pub fn udafs(&self) -> Vec<AggregateUDF> {
        self.by_name
            .values()
            .map(|a| AggregateUDF::new_from_impl(AggregationUdf::new(a.clone())))
            .collect()
    }
}
