//! Running SQL over the whole library in the crate's tests.

use datafusion::arrow::util::display::array_value_to_string;
use datafusion::prelude::SessionContext;

/// A session with the library registered as a query session has it.
pub(crate) fn session() -> SessionContext {
    let ctx = SessionContext::new();
    crate::register(
        &ctx,
        &crate::aggregation::AggregationRegistry::with_builtins(),
    );
    ctx
}

/// Every row of `sql`'s answer, each value as Arrow displays it.
pub(crate) async fn rows(sql: &str) -> Vec<Vec<String>> {
    let batches = session().sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            out.push(
                (0..b.num_columns())
                    .map(|c| array_value_to_string(b.column(c), r).unwrap())
                    .collect(),
            );
        }
    }
    out
}

/// The first row of `sql`'s answer.
pub(crate) async fn first_row(sql: &str) -> Vec<String> {
    rows(sql).await.into_iter().next().unwrap_or_default()
}

/// The error `sql` fails with, planning or running ("" if it does not fail).
pub(crate) async fn error(sql: &str) -> String {
    match session().sql(sql).await {
        Ok(df) => df.collect().await.err().map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    }
    .unwrap_or_default()
}
