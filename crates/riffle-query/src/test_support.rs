//! The engine the unit tests query: a table of consuming segments, one per partition, each
//! holding the rows its builder wrote.

use super::*;
use riffle_common::{PartitionId, StreamOffset};
use riffle_config::Schema;
use riffle_segment::{BlockBuilder, ConsumingSegment, SegmentRef, TableColumns, TableData};

/// An engine over table `table` of schema `schema` (JSON), with one consuming segment per
/// entry of `partitions` (named `<table>__<p>__0__20240101T0000Z`, its freshness
/// `1000 + p`); `write(p, builder)` writes partition `p`'s rows and returns how many.
pub(crate) fn engine_over(
    table: &str,
    schema: &str,
    time_column: Option<&str>,
    partitions: usize,
    mut write: impl FnMut(usize, &mut BlockBuilder) -> usize,
) -> QueryEngine {
    let cols = TableColumns::new(
        Schema::from_json(schema.as_bytes())
            .unwrap()
            .columns()
            .unwrap(),
    );
    let data = Arc::new(TableData::new(
        table,
        cols.clone(),
        time_column.map(str::to_string),
    ));
    for p in 0..partitions {
        let seg = Arc::new(ConsumingSegment::new(
            format!("{table}__{p}__0__20240101T0000Z"),
            PartitionId(p as u32),
            0,
            "0".into(),
            0,
            cols.clone(),
        ));
        let mut b = BlockBuilder::new(cols.clone(), 4);
        let rows = write(p, &mut b);
        seg.append(
            Some(b.finish().unwrap()),
            StreamOffset::Long(rows as i64),
            rows as u64,
            Some(1_000 + p as i64),
            5,
        )
        .unwrap();
        data.put_segment(SegmentRef::Consuming(seg));
    }
    let reg = Arc::new(SegmentRegistry::new());
    reg.add_table(data);
    QueryEngine::new(
        reg,
        "Broker_test".into(),
        riffle_common::AsyncPool::new("query", 2).unwrap(),
    )
}
