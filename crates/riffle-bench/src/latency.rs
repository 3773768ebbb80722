//! Publish-to-query latency: a paced writer appends rows at a fixed rate while a watcher
//! records when each tick's rows became queryable.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::core::wait_consuming;

use crate::*;

/// Writes `total` rows at `rate` rows/s in ticks of `tick`, then (after `secs`) whatever is
/// left: at each tick `write(from, to)` writes the rows that are due and `published(count,
/// instant)` is told the cumulative count and when its write returned. Returns the elapsed
/// seconds, the ticks that wrote rows and the ticks that woke more than a tick late. Shared
/// by the file-stream and Kafka latency benchmarks.
pub fn paced_writes<E>(
    rate: f64,
    secs: f64,
    tick: Duration,
    total: u64,
    mut write: impl FnMut(u64, u64) -> Result<(), E>,
    mut published: impl FnMut(u64, Instant) -> Result<(), E>,
) -> Result<(f64, usize, usize), E> {
    let start = Instant::now();
    let (mut written, mut ticks, mut late, mut k) = (0u64, 0usize, 0usize, 1u32);
    while written < total {
        let target = start + tick * k;
        k += 1;
        let now = Instant::now();
        if target > now {
            std::thread::sleep(target - now);
        }
        let woke = Instant::now();
        if woke > target + tick {
            late += 1;
        }
        let elapsed = (woke - start).as_secs_f64();
        let due = if elapsed >= secs {
            total
        } else {
            ((rate * elapsed) as u64).min(total)
        };
        if due <= written {
            continue;
        }
        write(written, due)?;
        let at = Instant::now();
        written = due;
        ticks += 1;
        published(written, at)?;
    }
    Ok((start.elapsed().as_secs_f64(), ticks, late))
}

/// Number of rows `j < a` with `j % parts == p`.
pub fn rows_before(a: u64, p: u64, parts: u64) -> u64 {
    (a + parts - 1 - p) / parts
}

pub async fn latency(
    cfg: &IngestBenchConfig,
    data_dir: &Path,
) -> Result<LatencyReport, BenchError> {
    latency_with(cfg, data_dir, &TableSetup::bench_default()?).await
}

/// The latency phase (see the module documentation) on `setup`'s table.
pub async fn latency_with(
    cfg: &IngestBenchConfig,
    data_dir: &Path,
    setup: &TableSetup,
) -> Result<LatencyReport, BenchError> {
    let schema = schema()?;
    let parts = cfg.partitions as u64;
    let total = (cfg.latency_rate as f64 * cfg.latency_secs).round() as u64;
    if total == 0 {
        return Err(err("latency phase: rate x seconds is 0 rows"));
    }
    // Events, prepared before the clock: partition p holds rows j with j % parts == p.
    let mut buffers: Vec<Vec<u8>> = (0..parts)
        .map(|_| Vec::with_capacity((total / parts + 1) as usize * LINE_BYTES))
        .collect();
    let mut gen = EventGen::new(7);
    for j in 0..total {
        gen.push_line(&mut buffers[(j % parts) as usize]);
    }
    // An empty topic: the partition files exist, with nothing in them.
    let topic = data_dir.join("streams").join(TABLE);
    std::fs::create_dir_all(&topic).map_err(|e| io_err("create", &topic, e))?;
    let mut files = Vec::new();
    for p in 0..cfg.partitions {
        let path = partition_file(data_dir, p);
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_err("create", &path, e))?;
        files.push(f);
    }
    let core = Core::create(data_dir, setup, &schema).await?;
    // Wait until every partition is consuming, then let it settle into its poll loop.
    if let Err(e) = wait_consuming(|| core.status(), cfg.partitions as usize).await {
        core.stop().await;
        return Err(err(format!("latency phase: {e}")));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let load_before = LoadAvg::read();
    let (tx, rx) = mpsc::channel::<(u64, Instant)>();
    let done = Arc::new(AtomicBool::new(false));
    let (rate, secs, tick) = (cfg.latency_rate as f64, cfg.latency_secs, cfg.tick);
    let writer_done = done.clone();
    let writer = std::thread::spawn(move || -> Result<(f64, usize, usize), BenchError> {
        let result = paced_writes(
            rate,
            secs,
            tick,
            total,
            |from, to| {
                for (p, f) in files.iter_mut().enumerate() {
                    let a = rows_before(from, p as u64, parts) as usize * LINE_BYTES;
                    let b = rows_before(to, p as u64, parts) as usize * LINE_BYTES;
                    if b > a {
                        f.write_all(&buffers[p][a..b])
                            .and_then(|()| f.flush())
                            .map_err(|e| err(format!("latency writer: {e}")))?;
                    }
                }
                Ok(())
            },
            |written, published_at| {
                tx.send((written, published_at))
                    .map_err(|_| err("latency watcher went away"))
            },
        );
        writer_done.store(true, Ordering::SeqCst);
        drop(tx);
        result
    });

    let segments = core.segments();
    let poll = cfg.poll;
    let watcher = std::thread::spawn(move || -> Result<(Vec<Duration>, u64), BenchError> {
        let mut pending: VecDeque<(u64, Instant)> = VecDeque::new();
        let mut samples = Vec::new();
        let mut last_change = (0u64, Instant::now());
        loop {
            // Ticks first, then the count, then the clock: `seen` is never before a
            // tick's publish instant.
            let mut closed = false;
            loop {
                match rx.try_recv() {
                    Ok(t) => pending.push_back(t),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            let n = published(&segments);
            let now = Instant::now();
            while let Some(&(cum, at)) = pending.front() {
                if cum > n {
                    break;
                }
                samples.push(now.saturating_duration_since(at));
                pending.pop_front();
            }
            if closed && pending.is_empty() && done.load(Ordering::SeqCst) {
                return Ok((samples, n));
            }
            if n != last_change.0 || pending.is_empty() {
                last_change = (n, now);
            } else if now - last_change.1 > Duration::from_secs(30) {
                return Err(err(format!(
                    "latency phase: published count stuck at {n} for 30 s, {} ticks pending",
                    pending.len()
                )));
            }
            std::thread::sleep(poll);
        }
    });
    let joined = tokio::task::spawn_blocking(move || (writer.join(), watcher.join()))
        .await
        .map_err(|e| err(format!("latency join: {e}")));
    let load_after = LoadAvg::read();
    let failure = core.failure();
    let final_count = published(&core.segments());
    let segments_committed = core.segments_committed();
    core.stop().await;
    let (w, wa) = joined?;
    let (ran_secs, ticks, late) = w.map_err(|_| err("latency writer panicked"))??;
    let (mut samples, _) = wa.map_err(|_| err("latency watcher panicked"))??;
    if let Some(f) = failure {
        return Err(err(f));
    }
    if final_count != total || samples.len() != ticks {
        return Err(err(format!(
            "latency phase: {final_count} rows queryable of {total} written, {} of {ticks} ticks seen",
            samples.len()
        )));
    }
    // Samples are in tick order: each second of the run, its p90 and max.
    let per_second: Vec<(Duration, Duration)> = samples
        .chunks(((1.0 / cfg.tick.as_secs_f64().max(1e-6)).round() as usize).max(1))
        .map(|c| {
            let mut c = c.to_vec();
            c.sort();
            let i = ((0.9 * c.len() as f64).ceil() as usize).clamp(1, c.len()) - 1;
            (c[i], c.last().copied().unwrap_or_default())
        })
        .collect();
    samples.sort();
    let pct = |q: f64| -> Duration {
        let i = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i]
    };
    let sum: Duration = samples.iter().sum();
    Ok(LatencyReport {
        rate: cfg.latency_rate,
        secs: ran_secs,
        rows: total,
        achieved_rate: total as f64 / ran_secs.max(1e-9),
        samples: samples.len(),
        late_ticks: late,
        p50: pct(0.50),
        p90: pct(0.90),
        p99: pct(0.99),
        max: samples.last().copied().unwrap_or_default(),
        mean: sum / samples.len().max(1) as u32,
        load_before,
        load_after,
        segments_committed,
        per_second,
    })
}
