//! Bounded-time fuzzing of what Riffle reads from outside: stream messages (the JSON
//! decoder), segment files (the sealed-segment reader: `segment` as mutated, where the
//! checksums stop nearly every mutation, and `segment-body` with every checksum made right
//! again after the mutation, so that the decoding behind them is fuzzed), Pinot schema and
//! table configs, and SQL (parse, shape check, plan and run under the query limits).
//!
//! ```text
//! cargo run --release -p riffle-fuzz -- [json|segment|segment-body|config|sql|all] [--secs 300] [--seed N] [--out DIR]
//! ```
//!
//! Each target starts from valid seeds and mutates them (bit flips, random and "interesting"
//! bytes and tokens, deletions, duplications, splices of two inputs), keeping inputs the
//! target accepted as further seeds so that mutations go past the first parse. Stable Rust
//! and no coverage feedback: this is a mutation fuzzer, not libFuzzer. A panic is caught,
//! the input written to `<out>/<target>-crash-<n>.bin` and counted; the command exits 1
//! when any target crashed. An abort (stack overflow, failed allocation) kills the process:
//! the input being tried is always in `<out>/<target>.current`. Crashes found become
//! regression tests beside the code they broke.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use riffle_common::{PartitionId, StreamOffset};
use riffle_config::{LoadMode, Schema, TableConfig};
use riffle_decode::{decode_batch, decoder_for, SpecialColumns};
use riffle_query::{QueryEngine, QueryRequest};
use riffle_segment::{
    BlockBuilder, ConsumingSegment, SealOptions, SealedSegment, SegmentRef, SegmentRegistry,
    TableColumns, TableData,
};
use riffle_stream::{StreamConfig, StreamMessage};

mod targets;
use targets::*;

const SCHEMA: &str = r#"{"schemaName":"fuzz",
 "dimensionFieldSpecs":[{"name":"id","dataType":"INT"},{"name":"name","dataType":"STRING"},
   {"name":"big","dataType":"LONG"},{"name":"ok","dataType":"BOOLEAN"},
   {"name":"blob","dataType":"BYTES"},{"name":"doc","dataType":"JSON"},
   {"name":"tags","dataType":"STRING","singleValueField":false},
   {"name":"nums","dataType":"INT","singleValueField":false}],
 "metricFieldSpecs":[{"name":"price","dataType":"DOUBLE"},{"name":"ratio","dataType":"FLOAT"}],
 "dateTimeFieldSpecs":[{"name":"ts","dataType":"TIMESTAMP","format":"1:MILLISECONDS:EPOCH","granularity":"1:MILLISECONDS"}]}"#;

const TABLE: &str = r#"{"tableName":"fuzz","tableType":"REALTIME",
 "segmentsConfig":{"timeColumnName":"ts","schemaName":"fuzz","replicasPerPartition":"1",
   "retentionTimeUnit":"DAYS","retentionTimeValue":"7"},
 "tenants":{},
 "tableIndexConfig":{"loadMode":"MMAP","invertedIndexColumns":["name"],"rangeIndexColumns":["price"],
   "bloomFilterColumns":["id"],"noDictionaryColumns":["big"],"sortedColumn":["name"],
   "streamConfigs":{"streamType":"file","stream.file.topic.name":"t",
     "stream.file.decoder.class.name":"org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
     "realtime.segment.flush.threshold.rows":"1000","stream.file.consumer.prop.auto.offset.reset":"smallest"}},
 "fieldConfigList":[{"name":"name","encodingType":"DICTIONARY","indexTypes":["INVERTED"]}],
 "ingestionConfig":{"transformConfigs":[{"columnName":"ratio","transformFunction":"price * 2"}]},
 "metadata":{"customConfigs":{}}}"#;

const MESSAGES: &[&str] = &[
    r#"{"id":1,"name":"a","big":9007199254740993,"ok":true,"blob":"cafe","doc":{"x":[1,2]},"tags":["p","q"],"nums":[1,2,3],"price":1.5,"ratio":0.25,"ts":1700000000000}"#,
    r#"{"id":"2","name":null,"price":"3.5e2","ts":"2024-01-01T00:00:00Z","tags":"one"}"#,
    r#"{"id":-2147483648,"big":-9223372036854775808,"price":1e308,"ok":"false","nums":[]}"#,
    r#"{"name":"\u00e9\ud83d\ude00","doc":"{\"y\":null}","blob":"","ts":0}"#,
    r#"[1,2,3]"#,
];

const QUERIES: &[&str] = &[
    "SELECT COUNT(*) FROM fuzz",
    "SELECT name, SUM(price), AVG(ratio), MIN(ts), MAX(big) FROM fuzz WHERE id > 0 AND name <> 'x' GROUP BY name ORDER BY 2 DESC LIMIT 5",
    "SELECT id, name FROM fuzz WHERE name IN ('a','b') OR price BETWEEN 1 AND 10 ORDER BY id LIMIT 3 OPTION(timeoutMs=1000)",
    "SELECT DISTINCT tags FROM fuzz",
    "SELECT CAST(ts AS TIMESTAMP), lower(name), length(name), substr(name, 1, 2) FROM fuzz LIMIT 2",
    "SET timeoutMs = 500; SELECT a.id FROM fuzz a JOIN fuzz b ON a.id = b.id WHERE a.ok",
    "SELECT COUNT(DISTINCT name) FROM fuzz_REALTIME WHERE ts > 1700000000000",
    "SELECT name, COUNT(*) AS c FROM fuzz GROUP BY name HAVING COUNT(*) > 1 ORDER BY c",
    "SELECT repeat(name, 3), lpad(name, 5, '0') FROM fuzz WHERE (id = 1 OR (id = 2 AND (price > 0)))",
    "SELECT * FROM (SELECT id, price * 2 AS p FROM fuzz) t WHERE p > 1 LIMIT 4",
];

const JSON_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "true",
    "false",
    "1e308",
    "-0",
    "1e-400",
    "9223372036854775808",
    "-9223372036854775809",
    "\\u0000",
    "\\ud800",
    "\"\\",
    "NaN",
];
const SQL_TOKENS: &[&str] = &[
    " SELECT ",
    " FROM ",
    " WHERE ",
    " GROUP BY ",
    " ORDER BY ",
    " LIMIT ",
    " OR ",
    " AND ",
    " NOT ",
    "(",
    ")",
    ",",
    "'",
    "\"",
    "*",
    " + ",
    " / 0",
    " JOIN ",
    " UNION ",
    " CAST(",
    " AS ",
    " BETWEEN ",
    " IN (",
    " LIKE '%",
    " IS NULL",
    "--",
    "/*",
    ";",
    " OPTION(",
    "9999999999999999999",
    " COUNT(*) ",
    " fuzz ",
    " repeat(",
    " $docId ",
    " CASE WHEN ",
    " END ",
];

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One mutation of `input` (sometimes several), drawing tokens from `tokens` and splices
/// from `pool`.
fn mutate(rng: &mut Rng, input: &[u8], tokens: &[&str], pool: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                let t = tokens[rng.below(tokens.len())].as_bytes();
                v.splice(i..i, t.iter().copied());
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(16)).min(len);
                v.drain(a..b);
            }
            4 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                let piece = v[a..b].to_vec();
                let at = rng.below(v.len() + 1);
                for _ in 0..1 + rng.below(3) {
                    v.splice(at..at, piece.iter().copied());
                }
            }
            5 if !pool.is_empty() => {
                let other = &pool[rng.below(pool.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            6 if len > 0 => v.truncate(rng.below(len)),
            _ => {
                let i = rng.below(len + 1);
                v.insert(i, rng.next() as u8);
            }
        }
    }
    v.truncate(1 << 16);
    v
}

struct Outcome {
    runs: u64,
    accepted: u64,
    crashes: u64,
}

/// Mutates and runs `target` for `secs`; panics are caught and saved.
fn fuzz(
    name: &str,
    secs: u64,
    rng: &mut Rng,
    out: &Path,
    seeds: Vec<Vec<u8>>,
    tokens: &[&str],
    mut run: impl FnMut(&[u8]) -> bool,
) -> Result<Outcome> {
    let current = out.join(format!("{name}.current"));
    let mut pool = seeds.clone();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut o = Outcome {
        runs: 0,
        accepted: 0,
        crashes: 0,
    };
    while Instant::now() < deadline {
        let base = &pool[rng.below(pool.len())];
        let input = mutate(rng, base, tokens, &pool);
        std::fs::write(&current, &input).context("write the current input")?;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&input)));
        o.runs += 1;
        match result {
            Ok(true) => {
                o.accepted += 1;
                if pool.len() < 2_000 {
                    pool.push(input);
                } else {
                    let i = rng.below(pool.len() - seeds.len()) + seeds.len();
                    pool[i] = input;
                }
            }
            Ok(false) => {}
            Err(_) => {
                o.crashes += 1;
                let path = out.join(format!("{name}-crash-{}.bin", o.crashes));
                std::fs::write(&path, &input).context("save the crash")?;
                eprintln!("{name}: CRASH saved to {}", path.display());
            }
        }
    }
    let _ = std::fs::remove_file(&current);
    Ok(o)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut targets = Vec::new();
    let (mut secs, mut seed, mut out) = (300u64, None, PathBuf::from("target/fuzz"));
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| anyhow!("{flag} needs a value"))
        };
        match a.as_str() {
            "--secs" => secs = value("--secs")?.parse().context("--secs")?,
            "--seed" => seed = Some(value("--seed")?.parse::<u64>().context("--seed")?),
            "--out" => out = PathBuf::from(value("--out")?),
            "json" | "segment" | "segment-body" | "config" | "sql" => {
                targets.push(a.clone())
            }
            "all" => targets.extend(["json", "segment", "segment-body", "config", "sql"].map(String::from)),
            other => bail!(
                "unknown argument '{other}'; usage: riffle-fuzz [json|segment|segment-body|config|sql|all] \
                 [--secs N] [--seed N] [--out DIR]"
            ),
        }
    }
    if targets.is_empty() {
        targets.extend(["json", "segment", "segment-body", "config", "sql"].map(String::from));
    }
    std::fs::create_dir_all(&out).with_context(|| format!("create {}", out.display()))?;
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1
    });
    println!("seed {seed} (repeat a run with --seed {seed}); {secs} s per target");
    // Caught panics are counted and saved; their default message would flood the output.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("panic: {info}");
    }));
    let mut rng = Rng(seed);
    let cols = columns()?;
    let sc = stream_config()?;
    let schema = Schema::from_json(SCHEMA.as_bytes()).map_err(|e| anyhow!("{e}"))?;
    let mut crashed = false;
    for t in &targets {
        let started = Instant::now();
        let o = match t.as_str() {
            "json" => {
                let seeds = MESSAGES.iter().map(|m| m.as_bytes().to_vec()).collect();
                fuzz(t, secs, &mut rng, &out, seeds, JSON_TOKENS, |i| {
                    run_json(i, &cols, &sc)
                })?
            }
            "segment" => {
                let seeds = vec![segment_seed(&out, &cols, &sc)?];
                let path = out.join("segment.input.seg");
                fuzz(t, secs, &mut rng, &out, seeds, JSON_TOKENS, |i| {
                    run_segment(i, &path, &cols)
                })?
            }
            "segment-body" => {
                let seeds = vec![segment_seed(&out, &cols, &sc)?];
                let path = out.join("segment-body.input.seg");
                fuzz(t, secs, &mut rng, &out, seeds, JSON_TOKENS, |i| {
                    run_segment(&reseal(i), &path, &cols)
                })?
            }
            "config" => {
                let seeds = vec![SCHEMA.as_bytes().to_vec(), TABLE.as_bytes().to_vec()];
                fuzz(t, secs, &mut rng, &out, seeds, JSON_TOKENS, |i| {
                    run_config(i, &schema)
                })?
            }
            _ => {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("runtime")?;
                let engine = sql_engine(&cols, &sc)?;
                let seeds = QUERIES.iter().map(|q| q.as_bytes().to_vec()).collect();
                fuzz(t, secs, &mut rng, &out, seeds, SQL_TOKENS, |i| {
                    run_sql(i, &engine, &rt)
                })?
            }
        };
        println!(
            "{t:8} {:>10} runs in {:.0} s ({:.0}/s), {:>8} accepted, {} crashes",
            o.runs,
            started.elapsed().as_secs_f64(),
            o.runs as f64 / started.elapsed().as_secs_f64().max(1e-9),
            o.accepted,
            o.crashes
        );
        crashed |= o.crashes > 0;
    }
    if crashed {
        bail!("crashes found; inputs saved in {}", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every target runs (a second each, fixed seed) without a crash: the fuzzer keeps
    /// working as the code under it changes.
    #[test]
    fn each_target_runs_without_a_crash() -> Result<()> {
        let out = std::env::temp_dir().join(format!("riffle-fuzz-test-{}", std::process::id()));
        std::fs::create_dir_all(&out)?;
        let mut rng = Rng(42);
        let cols = columns()?;
        let sc = stream_config()?;
        let schema = Schema::from_json(SCHEMA.as_bytes()).map_err(|e| anyhow!("{e}"))?;
        let seeds = MESSAGES.iter().map(|m| m.as_bytes().to_vec()).collect();
        let o = fuzz("json", 1, &mut rng, &out, seeds, JSON_TOKENS, |i| {
            run_json(i, &cols, &sc)
        })?;
        assert!(o.runs > 10 && o.accepted > 0 && o.crashes == 0);
        let seeds = vec![segment_seed(&out, &cols, &sc)?];
        assert!(
            run_segment(&seeds[0], &out.join("s.seg"), &cols),
            "the seed segment opens"
        );
        let path = out.join("in.seg");
        let o = fuzz("segment", 1, &mut rng, &out, seeds, JSON_TOKENS, |i| {
            run_segment(i, &path, &cols)
        })?;
        assert!(o.runs > 10 && o.crashes == 0);
        // Resealed, mutations get past the checksums: some open, and are read.
        let seeds = vec![segment_seed(&out, &cols, &sc)?];
        assert_eq!(
            reseal(&seeds[0]),
            seeds[0],
            "a valid file reseals to itself"
        );
        let o = fuzz("segment-body", 1, &mut rng, &out, seeds, JSON_TOKENS, |i| {
            run_segment(&reseal(i), &path, &cols)
        })?;
        assert!(
            o.runs > 10 && o.crashes == 0 && o.accepted > 0,
            "runs {} accepted {} crashes {}",
            o.runs,
            o.accepted,
            o.crashes
        );
        let seeds = vec![SCHEMA.as_bytes().to_vec(), TABLE.as_bytes().to_vec()];
        assert!(run_config(TABLE.as_bytes(), &schema));
        let o = fuzz("config", 1, &mut rng, &out, seeds, JSON_TOKENS, |i| {
            run_config(i, &schema)
        })?;
        assert!(o.runs > 10 && o.crashes == 0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let engine = sql_engine(&cols, &sc)?;
        for q in QUERIES {
            assert!(run_sql(q.as_bytes(), &engine, &rt), "seed query fails: {q}");
        }
        let seeds = QUERIES.iter().map(|q| q.as_bytes().to_vec()).collect();
        let o = fuzz("sql", 1, &mut rng, &out, seeds, SQL_TOKENS, |i| {
            run_sql(i, &engine, &rt)
        })?;
        assert!(o.runs > 10 && o.crashes == 0);
        let _ = std::fs::remove_dir_all(&out);
        Ok(())
    }
}
