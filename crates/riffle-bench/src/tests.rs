//! Unit tests of the harness pieces, and every lifecycle benchmark end to end, tiny.

#![allow(clippy::unwrap_used)]

use riffle_segment::SealOptions;

use crate::*;

#[test]
fn test_events_are_146_bytes_and_valid_json() {
    let mut gen = EventGen::new(1);
    let mut buf = Vec::new();
    for _ in 0..10_000 {
        buf.clear();
        gen.push_line(&mut buf);
        assert_eq!(buf.len(), LINE_BYTES);
        assert_eq!(buf[EVENT_BYTES], b'\n');
        let v: serde_json::Value = serde_json::from_slice(&buf[..EVENT_BYTES]).unwrap();
        assert_eq!(v["uuid"].as_str().unwrap().len(), 36);
        assert!(v["ts"].as_i64().unwrap() >= BASE_TS_MS);
    }
}

#[test]
fn test_rows_before_splits_round_robin() {
    for parts in 1..5u64 {
        for a in 0..20u64 {
            let total: u64 = (0..parts).map(|p| rows_before(a, p, parts)).sum();
            assert_eq!(total, a);
        }
    }
}

#[test]
fn test_bench_table_and_schema_are_valid() {
    let t = table_config().unwrap();
    t.validate(&schema().unwrap()).unwrap();
    assert_eq!(stream_config(&t).unwrap().stream_type, "file");
}

#[test]
fn test_threshold_table_has_exact_segment_rows() {
    let s = setup_with_threshold(1_000_000).unwrap();
    let sc = s.table.streams()[0].clone();
    assert_eq!(sc.flush.segment_rows, Some(1_000_000));
    assert!(!sc.flush.is_autotune());
    assert_eq!(s.max_consuming_bytes, Some(UNCAPPED_BYTES));
}

#[test]
fn test_indexed_table_options() {
    let o = SealOptions::from_table(&indexed_table().unwrap());
    assert!(o.inverted.contains("country") && o.inverted.contains("device"));
    assert!(o.range.contains("ts") && o.range.contains("price"));
    assert!(o.bloom.contains("uuid"));
}

#[test]
fn test_rows_of_partition_and_median() {
    for parts in 1..5u64 {
        for rows in 0..20u64 {
            let sum: u64 = (0..parts).map(|p| rows_of_partition(rows, p, parts)).sum();
            assert_eq!(sum, rows);
        }
    }
    assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(vec![4.0, 1.0]), 2.5);
    assert_eq!(median(Vec::new()), 0.0);
}

/// The three benchmarks end to end, tiny: the figures are meaningless, the checks inside
/// (exact row counts, seals committed, nothing committed before the crash) are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_benchmarks_run_small() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = LifecycleBenchConfig::new(dir.path().to_path_buf());
    cfg.seal_rows = 20_000;
    cfg.threshold = 5_000;
    cfg.rounds = 1;
    cfg.latency_rate = Some(10_000);
    cfg.latency_secs = 0.5;
    cfg.restart_rows = 20_000;
    cfg.footprint_rows = 5_000;
    let seal = run_seal_bench(&cfg).await.unwrap();
    assert_eq!(seal.expected_seals, 4);
    assert_eq!(seal.runs.len(), 2);
    assert!(seal
        .runs
        .iter()
        .filter(|r| r.seals)
        .all(|r| r.report.all_committed_secs.is_some()));
    assert_eq!(seal.latency.len(), 2);
    assert!(seal.to_string().contains("ratio seals/no seal"));
    let restart = run_restart_bench(&cfg).await.unwrap();
    assert_eq!(restart.in_progress, 1);
    assert!(restart.queryable_secs > 0.0);
    let fp = run_footprint_bench(&cfg).await.unwrap();
    assert_eq!(fp.sealed.len(), 3);
    assert!(fp.consuming_bytes > 0 && fp.parquet.bytes > 0);
    assert!(fp.to_string().contains("Parquet"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_query_bench_runs_small_with_its_http_auth_phase() {
    let dir = tempfile::tempdir().unwrap();
    let report = crate::queries::run_query_bench(crate::queries::QueryBenchConfig {
        work_dir: dir.path().to_path_buf(),
        rows: 2_000,
        light: 4,
        heavy: 1,
        threads: vec![2],
        repeat: 2,
    })
    .await
    .unwrap();
    let run = &report.runs[0];
    assert_eq!(run.alone.0.len(), 4);
    assert_eq!(run.http.len(), 2);
    assert_eq!(run.http[0].open.0.len(), 4);
    assert_eq!(run.http[0].auth.0.len(), 4);
    assert_eq!(run.http[1].auth.0.len(), 2);
    let text = report.to_string();
    assert!(text.contains("auth's cost, COUNT(*)"), "{text}");
}
