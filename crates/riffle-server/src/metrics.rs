//! `GET /metrics` (both ports): the server's state in Prometheus' text format (version
//! 0.0.4), what a scraper or a person with `curl` reads to see ingestion, lag, errors and
//! queries without asking table by table.
//!
//! Pinot publishes the same facts as JMX metrics (`llcPartitionConsuming`,
//! `realtimeRowsConsumed`, `invalidRealtimeRowsDropped`, ...); Riffle names them
//! `riffle_*` with labels instead. Per partition: its state (one series, `state` label), a
//! stopping error's stage and time, counters, record and availability lag; per table:
//! segments and rows; queries: counts, errors by Pinot code, a latency histogram, slots and
//! memory in use. With access control on, a caller sees only the tables it may use.
//!
//! Invariant: a partition whose loop stopped on an error (a permanent commit or seal
//! failure included) shows `state="ERROR"` from the moment the loop records it; nothing
//! here is cached.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use riffle_common::TableType;
use riffle_query::counters::LATENCY_BUCKETS;

use crate::auth::Caller;
use crate::Services;

/// Prometheus' text exposition content type.
const CONTENT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub async fn metrics(
    State(s): State<Arc<Services>>,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let principal = caller.and_then(|c| c.0 .0);
    let visible = |t: &str| principal.as_ref().is_none_or(|p| p.may_use(t));
    let mut out = Exposition::default();
    out.family("riffle_build_info", "gauge", "The running version.");
    out.sample(
        "riffle_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    let names = s.tables.table_names().await.unwrap_or_default();
    let names: Vec<_> = names
        .into_iter()
        .filter(|n| visible(&n.to_string()))
        .collect();
    partitions(&s, &names, &mut out).await;
    tables(&s, &names, &mut out);
    queries(&s, &mut out);
    ([(CONTENT_TYPE, CONTENT)], out.text).into_response()
}

/// Each consuming partition's state, counters, lag and stopping error.
async fn partitions(
    s: &Services,
    names: &[riffle_common::TableNameWithType],
    out: &mut Exposition,
) {
    const FAMILIES: [(&str, &str, &str); 12] = [
        ("riffle_partition_state", "gauge", "1 for the partition's current state (STARTING, CONSUMING, RETRYING, ERROR, STOPPED, PAUSED, ENDED)."),
        ("riffle_partition_consuming", "gauge", "1 while the partition consumes (Pinot's llcPartitionConsuming)."),
        ("riffle_partition_messages_read_total", "counter", "Messages read from the stream since the server started."),
        ("riffle_partition_rows_indexed_total", "counter", "Rows indexed since the server started (Pinot's realtimeRowsConsumed)."),
        ("riffle_partition_decode_errors_total", "counter", "Messages dropped since the server started because they could not be decoded or transformed (Pinot's invalidRealtimeRowsDropped)."),
        ("riffle_partition_rows_filtered_total", "counter", "Rows the table's ingestion filter dropped since the server started (Pinot's realtimeRowsFiltered)."),
        ("riffle_partition_offsets_lost_total", "counter", "Offsets the stream deleted before they were read, skipped under RESUME_FROM_EARLIEST."),
        ("riffle_partition_segments_committed_total", "counter", "Segments committed since the server started."),
        ("riffle_partition_records_lag", "gauge", "Records between the next offset to read and the stream's end (when offsets count records)."),
        ("riffle_partition_availability_lag_seconds", "gauge", "How long the newest indexed row has waited for what follows it (0 when caught up)."),
        ("riffle_partition_last_indexed_timestamp_seconds", "gauge", "When rows were last indexed (epoch seconds)."),
        ("riffle_partition_last_error_timestamp_seconds", "gauge", "When the partition's last error happened (epoch seconds), with its stage and whether it retries."),
    ];
    for (name, kind, help) in FAMILIES {
        out.family(name, kind, help);
    }
    for table in names {
        if table.table_type() != TableType::Realtime {
            continue;
        }
        let Some(statuses) = s.tables.server().status(table) else {
            continue;
        };
        let lag: BTreeMap<u32, _> = s
            .tables
            .consuming_info(table)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.partition, (c.records_lag, c.availability_lag_ms)))
            .collect();
        let table_label = table.to_string();
        for st in statuses {
            let partition = st.partition.to_string();
            let labels = [
                ("table", table_label.as_str()),
                ("partition", partition.as_str()),
            ];
            let state = serde_json::to_value(st.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            out.sample(
                "riffle_partition_state",
                &[labels[0], labels[1], ("state", state.as_str())],
                1.0,
            );
            let consuming = if st.is_consuming() { 1.0 } else { 0.0 };
            out.sample("riffle_partition_consuming", &labels, consuming);
            for (name, v) in [
                ("riffle_partition_messages_read_total", st.messages_read),
                ("riffle_partition_rows_indexed_total", st.rows_indexed),
                ("riffle_partition_decode_errors_total", st.decode_errors),
                ("riffle_partition_rows_filtered_total", st.rows_filtered),
                ("riffle_partition_offsets_lost_total", st.offsets_lost),
                (
                    "riffle_partition_segments_committed_total",
                    st.segments_committed,
                ),
            ] {
                out.sample(name, &labels, v as f64);
            }
            if let Some((records, availability)) = lag.get(&st.partition) {
                if let Some(r) = records {
                    out.sample("riffle_partition_records_lag", &labels, *r as f64);
                }
                if let Some(ms) = availability {
                    out.sample(
                        "riffle_partition_availability_lag_seconds",
                        &labels,
                        *ms as f64 / 1e3,
                    );
                }
            }
            if st.last_indexed_ms > 0 {
                out.sample(
                    "riffle_partition_last_indexed_timestamp_seconds",
                    &labels,
                    st.last_indexed_ms as f64 / 1e3,
                );
            }
            if let Some(e) = &st.last_error {
                let stage = serde_json::to_value(e.stage)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let retrying = if e.retrying { "true" } else { "false" };
                out.sample(
                    "riffle_partition_last_error_timestamp_seconds",
                    &[
                        labels[0],
                        labels[1],
                        ("stage", stage.as_str()),
                        ("retrying", retrying),
                    ],
                    e.at_ms as f64 / 1e3,
                );
            }
        }
    }
}

/// Segments and rows each table serves, and segments it could not load.
fn tables(s: &Services, names: &[riffle_common::TableNameWithType], out: &mut Exposition) {
    out.family(
        "riffle_table_segments",
        "gauge",
        "Segments the table serves, by kind (sealed, consuming).",
    );
    out.family(
        "riffle_table_rows",
        "gauge",
        "Rows the table serves, by kind of segment (sealed, consuming).",
    );
    out.family(
        "riffle_table_segments_unavailable",
        "gauge",
        "Committed segments this server could not load (queries answer without them).",
    );
    for table in names {
        let Some(data) = s.segments.table(table.raw().as_str()) else {
            continue;
        };
        let table_label = table.to_string();
        let (mut counts, mut rows) = ([0u64; 2], [0u64; 2]);
        for seg in data.segments() {
            let i = usize::from(seg.is_consuming());
            counts[i] += 1;
            rows[i] += seg.num_rows() as u64;
        }
        for (i, kind) in ["sealed", "consuming"].into_iter().enumerate() {
            let labels = [("table", table_label.as_str()), ("kind", kind)];
            out.sample("riffle_table_segments", &labels, counts[i] as f64);
            out.sample("riffle_table_rows", &labels, rows[i] as f64);
        }
        out.sample(
            "riffle_table_segments_unavailable",
            &[("table", table_label.as_str())],
            data.unavailable().len() as f64,
        );
    }
}

/// Queries answered, their errors and latency; what runs now.
fn queries(s: &Services, out: &mut Exposition) {
    let c = s.query.counters();
    out.family(
        "riffle_queries_total",
        "counter",
        "Queries answered since the server started.",
    );
    out.sample("riffle_queries_total", &[], c.queries as f64);
    out.family(
        "riffle_query_errors_total",
        "counter",
        "Queries answered with an error, by Pinot error code (150 parse, 190 table, 240 scheduling, 245 resource limit, 250 timeout, ...).",
    );
    for (code, n) in &c.errors {
        out.sample(
            "riffle_query_errors_total",
            &[("code", code.to_string().as_str())],
            *n as f64,
        );
    }
    out.family(
        "riffle_query_duration_seconds",
        "histogram",
        "Time from request to answer.",
    );
    for (i, n) in c.latency_cumulative.iter().enumerate() {
        let le = LATENCY_BUCKETS
            .get(i)
            .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
        out.sample(
            "riffle_query_duration_seconds_bucket",
            &[("le", le.as_str())],
            *n as f64,
        );
    }
    out.sample("riffle_query_duration_seconds_sum", &[], c.latency_sum_secs);
    out.sample("riffle_query_duration_seconds_count", &[], c.queries as f64);
    let limits = s.query.limits();
    for (name, help, v) in [
        (
            "riffle_queries_running",
            "Queries holding a slot now (a timed-out query until its work has stopped).",
            s.query.running() as f64,
        ),
        (
            "riffle_query_slots",
            "Queries that may run at once (maxConcurrentQueries).",
            limits.max_concurrent_queries as f64,
        ),
        (
            "riffle_query_memory_reserved_bytes",
            "Memory the running queries hold.",
            s.query.memory_reserved() as f64,
        ),
        (
            "riffle_query_memory_limit_bytes",
            "The server-wide query memory budget (maxServerMemoryBytes).",
            limits.max_server_memory_bytes as f64,
        ),
    ] {
        out.family(name, "gauge", help);
        out.sample(name, &[], v);
    }
}

/// Prometheus' text format, written as it goes.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape_label(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// A label value as the format wants it: `\`, `"` and newlines escaped.
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_written_in_the_text_format() {
        let mut e = Exposition::default();
        e.family("x_total", "counter", "Things.");
        e.sample("x_total", &[("t", "a\"b\\c\nd"), ("p", "0")], 3.0);
        e.sample("x_total", &[], 0.5);
        assert_eq!(
            e.text,
            "# HELP x_total Things.\n# TYPE x_total counter\n\
             x_total{t=\"a\\\"b\\\\c\\nd\",p=\"0\"} 3\nx_total 0.5\n"
        );
    }
}
