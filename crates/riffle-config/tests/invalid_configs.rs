//! Data-driven rejection tests: every case of `data/invalid_configs.json` must fail with the
//! expected JSON path and a message containing the expected text.
//!
//! The file is also used by the HTTP server tests, so its format is a contract: a JSON array
//! of `{"name", "description"?, "schema"?, "table"?, "expect_path", "expect_message_contains"}`.
//! A missing `schema` means the valid transcript schema
//! (`examples/transcript/transcript_schema.json`); a missing `table` means the case checks the
//! schema alone. A case with a `table` has a valid schema: only the table is wrong.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use riffle_config::{ConfigError, Schema, TableConfig};
use serde_json::Value;

fn repo_file(rel: &str) -> PathBuf {
    // The directory cargo runs the test in (a build reused from another checkout keeps
    // the compile-time path).
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join(rel)
}

fn read_json(rel: &str) -> Value {
    let path = repo_file(rel);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a JSON value serialises")
}

/// Runs one case; `Ok(error)` is the rejection, `Err` says what went wrong with the case.
fn run_case(case: &Value, default_schema: &Value) -> Result<ConfigError, String> {
    let schema_json = case.get("schema").unwrap_or(default_schema);
    let schema = Schema::from_json(&to_bytes(schema_json));
    let Some(table_json) = case.get("table") else {
        return match schema {
            Err(e) => Ok(e),
            Ok(_) => Err("the schema was accepted".into()),
        };
    };
    let schema = schema.map_err(|e| format!("the case's schema should be valid but: {e}"))?;
    let table = match TableConfig::from_json(&to_bytes(table_json)) {
        Err(e) => return Ok(e),
        Ok(t) => t,
    };
    match table.validate(&schema) {
        Err(e) => Ok(e),
        Ok(_) => Err("the table config was accepted".into()),
    }
}

#[test]
fn test_invalid_configs_are_rejected_with_path_and_message() {
    let cases = read_json("tests/data/invalid_configs.json");
    let cases = cases.as_array().expect("invalid_configs.json is an array");
    assert!(cases.len() >= 25, "at least 25 cases, got {}", cases.len());
    let default_schema = read_json("../../examples/transcript/transcript_schema.json");

    let mut names = BTreeSet::new();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("every case has a name");
        assert!(names.insert(name), "duplicate case name {name}");
        let expect_path = case["expect_path"].as_str().expect("expect_path");
        let expect_msg = case["expect_message_contains"]
            .as_str()
            .expect("expect_message_contains");
        match run_case(case, &default_schema) {
            Err(why) => failures.push(format!("{name}: {why}")),
            Ok(e) => {
                if e.path != expect_path {
                    failures.push(format!(
                        "{name}: path {} != expected {expect_path} ({})",
                        e.path, e.message
                    ));
                } else if !e.message.contains(expect_msg) {
                    failures.push(format!(
                        "{name}: message '{}' does not contain '{expect_msg}'",
                        e.message
                    ));
                } else if e.message.starts_with(|c: char| c.is_ascii_uppercase()) {
                    failures.push(format!(
                        "{name}: message should start lower-case: '{}'",
                        e.message
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
}

/// The cases the brief names must all be present.
#[test]
fn test_invalid_configs_cover_the_required_cases() {
    let cases = read_json("tests/data/invalid_configs.json");
    let names: BTreeSet<&str> = cases
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for required in [
        "missing_stream_type",
        "missing_topic",
        "missing_decoder_class",
        "flush_time_unparsable",
        "flush_time_zero",
        "flush_rows_unparsable",
        "segment_size_unparsable",
        "rows_and_segment_size_both_set",
        "unknown_data_type",
        "duplicate_column",
        "time_column_not_in_schema",
        "realtime_without_time_column",
        "both_stream_config_locations",
        "empty_stream_config_maps",
        "bad_offset_reset",
        "bad_table_type",
        "table_name_double_underscore",
        "schema_name_double_underscore",
        "metric_of_type_string",
        "multi_value_datetime",
        "bad_datetime_format",
        "bad_granularity",
        "default_null_value_not_int",
        "inverted_index_missing_column",
        "bad_load_mode",
        "stream_map_nested_object",
        "protobuf_decoder_without_descriptor_file",
        "schema_table_name_mismatch",
    ] {
        assert!(names.contains(required), "missing case {required}");
    }
}

/// The pipeline the cases run through accepts the valid example the cases are derived from,
/// so a case fails because of its own change, not because of the base config.
#[test]
fn test_valid_example_passes_the_same_pipeline() {
    let schema = read_json("../../examples/transcript/transcript_schema.json");
    let table = read_json("../../examples/transcript/transcript_realtime_table_config.json");
    let case = serde_json::json!({ "schema": schema, "table": table });
    match run_case(&case, &schema) {
        Err(accepted) => assert_eq!(accepted, "the table config was accepted"),
        Ok(e) => panic!("the valid example was rejected: {e}"),
    }
}
