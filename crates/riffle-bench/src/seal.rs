//! The seal benchmark: no stall at seal.

use std::fmt;

use crate::*;

/// One rate run of the seal benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct SealRun {
    /// Round (runs of one round are beside each other).
    pub round: usize,
    /// With the row threshold (seals) or above the row count (no seal).
    pub seals: bool,
    /// The run.
    pub report: ThroughputReport,
}

/// One latency run of the seal benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct SealLatencyRun {
    /// Round.
    pub round: usize,
    /// With seals or without.
    pub seals: bool,
    /// The run.
    pub report: LatencyReport,
}

/// What the seal benchmark measured.
#[derive(Debug, Clone, PartialEq)]
pub struct SealBenchReport {
    /// The machine.
    pub machine: MachineFacts,
    /// Load average before the benchmark.
    pub load_before: Option<LoadAvg>,
    /// Load average after the benchmark.
    pub load_after: Option<LoadAvg>,
    /// Rows per rate run.
    pub rows: u64,
    /// Partitions.
    pub partitions: u32,
    /// Row threshold of the runs with seals.
    pub threshold: u64,
    /// Full segments (seals) each run with seals commits.
    pub expected_seals: u64,
    /// The unmeasured warm-up run (no seal), if one ran.
    pub warmup: Option<ThroughputReport>,
    /// The rate runs, in the order they ran.
    pub runs: Vec<SealRun>,
    /// Target rows/s of the latency runs.
    pub latency_rate: u64,
    /// The latency runs, in the order they ran.
    pub latency: Vec<SealLatencyRun>,
}

impl SealBenchReport {
    /// Median rows/s to queryable of the runs with or without seals.
    pub fn median_rate(&self, seals: bool) -> f64 {
        median(
            self.runs
                .iter()
                .filter(|r| r.seals == seals)
                .map(|r| r.report.queryable.rows_per_sec())
                .collect(),
        )
    }

    /// Median rate with seals / median rate without.
    pub fn rate_ratio(&self) -> f64 {
        self.median_rate(true) / self.median_rate(false).max(1e-9)
    }

    /// Median p99 latency (seconds) of the latency runs with or without seals.
    pub fn median_p99(&self, seals: bool) -> Option<f64> {
        let v: Vec<f64> = self
            .latency
            .iter()
            .filter(|r| r.seals == seals)
            .map(|r| r.report.p99.as_secs_f64())
            .collect();
        (!v.is_empty()).then(|| median(v))
    }

    /// Median p99 with seals / median p99 without, if both ran.
    pub fn p99_ratio(&self) -> Option<f64> {
        Some(self.median_p99(true)? / self.median_p99(false)?.max(1e-9))
    }
}

/// Runs the seal benchmark (see the module documentation) on the current tokio runtime.
pub async fn run_seal_bench(cfg: &LifecycleBenchConfig) -> Result<SealBenchReport, BenchError> {
    if cfg.seal_rows < cfg.partitions as u64 || cfg.partitions == 0 || cfg.threshold == 0 {
        return Err(err(
            "seal: rows must be at least the partitions, partitions and threshold at least 1",
        ));
    }
    if cfg.seal_rows >= NO_SEAL_ROWS {
        return Err(err(format!("seal: rows must be below {NO_SEAL_ROWS}")));
    }
    if cfg.rounds == 0 && cfg.latency_rate.is_none() {
        return Err(err(
            "seal: with 0 rounds (latency only) the latency rate must be given",
        ));
    }
    let machine = MachineFacts::read();
    let load_before = LoadAvg::read();
    let dir = cfg.work_dir.join("seal");
    let files = dir.join("files");
    std::fs::create_dir_all(&files).map_err(|e| io_err("create", &files, e))?;
    let bytes = write_events_async(&files, cfg.seal_rows, cfg.partitions).await?;
    let parts = cfg.partitions as u64;
    let expected_seals: u64 = (0..parts)
        .map(|p| rows_of_partition(cfg.seal_rows, p, parts) / cfg.threshold)
        .sum();
    let with = setup_with_threshold(cfg.threshold)?;
    let without = setup_with_threshold(NO_SEAL_ROWS)?;
    let icfg = cfg.ingest_cfg(cfg.seal_rows, cfg.partitions);
    let run = |name: String, seals: bool| {
        let run_dir = dir.join(name);
        let (setup, wait) = if seals {
            (&with, Some(expected_seals))
        } else {
            (&without, None)
        };
        let (files, icfg) = (&files, &icfg);
        async move {
            link_stream_files(files, &run_dir, cfg.partitions)?;
            let report = throughput_run(icfg, &run_dir, setup, bytes, wait).await;
            let _ = std::fs::remove_dir_all(&run_dir);
            report
        }
    };
    // A fresh process ingests slower until its heap has grown (fresh pages are faulted in
    // and zeroed; see docs/PERFORMANCE.md): the first run would be penalised.
    let warmup = if cfg.warmup {
        Some(run("warmup".into(), false).await?)
    } else {
        None
    };
    let mut runs = Vec::new();
    for round in 0..cfg.rounds {
        for seals in round_order(round) {
            let name = format!("run-{round}-{}", if seals { "seals" } else { "no-seal" });
            let report = run(name, seals).await?;
            if !seals && report.committed_at_queryable != 0 {
                return Err(err(format!(
                    "seal: the run without seals committed {} segments",
                    report.committed_at_queryable
                )));
            }
            runs.push(SealRun {
                round,
                seals,
                report,
            });
        }
    }
    let _ = std::fs::remove_dir_all(&files);

    let mut report = SealBenchReport {
        machine,
        load_before,
        load_after: None,
        rows: cfg.seal_rows,
        partitions: cfg.partitions,
        threshold: cfg.threshold,
        expected_seals,
        warmup,
        runs,
        latency_rate: 0,
        latency: Vec::new(),
    };
    let rate = cfg
        .latency_rate
        .unwrap_or_else(|| (report.median_rate(false) / 2.0 / 1000.0).floor() as u64 * 1000);
    report.latency_rate = rate;
    if cfg.latency_secs > 0.0 && rate > 0 {
        let mut lcfg = icfg.clone();
        lcfg.latency_rate = rate;
        for round in 0..cfg.rounds.max(1) {
            for seals in round_order(round) {
                let d = dir.join(format!(
                    "latency-{round}-{}",
                    if seals { "seals" } else { "no-seal" }
                ));
                std::fs::create_dir_all(&d).map_err(|e| io_err("create", &d, e))?;
                let setup = if seals { &with } else { &without };
                let l = latency_with(&lcfg, &d, setup).await;
                let _ = std::fs::remove_dir_all(&d);
                report.latency.push(SealLatencyRun {
                    round,
                    seals,
                    report: l?,
                });
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    report.load_after = LoadAvg::read();
    Ok(report)
}

/// Round 0 runs without seals first, round 1 with seals first, and so on.
pub fn round_order(round: usize) -> [bool; 2] {
    if round % 2 == 0 {
        [false, true]
    } else {
        [true, false]
    }
}

impl fmt::Display for SealBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        header(
            f,
            "Riffle seal benchmark: ingestion with and without seals (file stream, 146-byte JSON events)",
            &self.machine,
            self.load_before,
            self.load_after,
        )?;
        if !self.runs.is_empty() || self.warmup.is_some() {
            self.fmt_rate(f)?;
        }
        self.fmt_latency(f)?;
        writeln!(f)?;
        if !self.runs.is_empty() {
            let r = self.rate_ratio();
            write!(
                f,
                "goal (seals within 10% of no seal): rate ratio {r:.3}: {}   ",
                if r >= 0.9 { "MET" } else { "NOT MET" }
            )?;
        } else {
            write!(f, "goal (seals within 10% of no seal): rate: not run   ")?;
        }
        match self.p99_ratio() {
            Some(r) => writeln!(
                f,
                "p99 ratio {r:.3}: {}",
                if r <= 1.1 { "MET" } else { "NOT MET" }
            ),
            None => writeln!(f, "p99: not run"),
        }
    }
}

impl SealBenchReport {
    fn fmt_rate(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f)?;
        writeln!(
            f,
            "-- rate: {} rows in {} partition(s), max rate; seals: {SEGMENT_ROWS_KEY}={} ({} seals per run), no seal: {} --",
            thousands(self.rows as f64),
            self.partitions,
            thousands(self.threshold as f64),
            self.expected_seals,
            thousands(NO_SEAL_ROWS as f64),
        )?;
        writeln!(
            f,
            "   {:<7} {:<8} {:>12} {:>9} {:>8} {:>9} {:>10} {:>9} {:>17}",
            "round",
            "run",
            "rows/s",
            "seconds",
            "cores",
            "stall ms",
            "committed",
            "sealed s",
            "load before/after"
        )?;
        let runs = self
            .warmup
            .iter()
            .map(|w| ("warm-up".to_string(), "no seal", w))
            .chain(self.runs.iter().map(|r| {
                (
                    r.round.to_string(),
                    if r.seals { "seals" } else { "no seal" },
                    &r.report,
                )
            }));
        for (round, kind, t) in runs {
            writeln!(
                f,
                "   {:<7} {:<8} {:>12} {:>9.3} {:>8} {:>9.1} {:>10} {:>9} {:>8} / {:<8}",
                round,
                kind,
                thousands(t.queryable.rows_per_sec()),
                t.queryable.secs,
                t.cpu_secs.map_or_else(
                    || "n/a".to_string(),
                    |c| format!("{:.2}", c / t.queryable.secs.max(1e-9))
                ),
                t.max_stall_secs * 1e3,
                t.committed_at_queryable,
                t.all_committed_secs
                    .map_or_else(|| "-".to_string(), |s| format!("{s:.3}")),
                t.load_before
                    .map_or_else(|| "n/a".into(), |l| format!("{:.2}", l.one)),
                t.load_after
                    .map_or_else(|| "n/a".into(), |l| format!("{:.2}", l.one)),
            )?;
        }
        writeln!(
            f,
            "   (stall: longest time the published count stood still; committed: segments committed when the last row was queryable; sealed s: from start until all {} had committed; the warm-up is not counted)",
            self.expected_seals
        )?;
        if !self.runs.is_empty() {
            writeln!(
                f,
                "   median rows/s to queryable: no seal {}   seals {}   ratio seals/no seal {:.3}",
                thousands(self.median_rate(false)),
                thousands(self.median_rate(true)),
                self.rate_ratio()
            )?;
        }
        Ok(())
    }

    fn fmt_latency(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.latency {
            let l = &r.report;
            writeln!(f)?;
            writeln!(
                f,
                "-- publish-to-query latency, round {}, {}: {} rows/s target for {:.1} s, {} partition(s) --",
                r.round,
                if r.seals { "seals" } else { "no seal" },
                thousands(l.rate as f64),
                l.secs,
                self.partitions
            )?;
            writeln!(
                f,
                "   load before {}  after {}",
                load_text(l.load_before),
                load_text(l.load_after)
            )?;
            writeln!(
                f,
                "   rows {}  achieved {} rows/s  samples (ticks) {}  late ticks {}  segments committed {}",
                thousands(l.rows as f64),
                thousands(l.achieved_rate),
                l.samples,
                l.late_ticks,
                l.segments_committed
            )?;
            writeln!(
                f,
                "   p50 {:.1} ms   p90 {:.1} ms   p99 {:.1} ms   max {:.1} ms   mean {:.1} ms",
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.max),
                ms(l.mean)
            )?;
            let secs: Vec<String> = l
                .per_second
                .iter()
                .map(|(p90, max)| format!("{:.0}/{:.0}", ms(*p90), ms(*max)))
                .collect();
            writeln!(f, "   each second, p90/max ms: {}", secs.join(" "))?;
        }
        if let (Some(a), Some(b)) = (self.median_p99(false), self.median_p99(true)) {
            writeln!(f)?;
            writeln!(
                f,
                "   median p99: no seal {:.1} ms   seals {:.1} ms   ratio seals/no seal {:.3}",
                a * 1e3,
                b * 1e3,
                b / a.max(1e-9)
            )?;
        }
        Ok(())
    }
}
