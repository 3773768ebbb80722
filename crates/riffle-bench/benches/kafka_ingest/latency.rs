//! Publish-to-query latency through Kafka at half the maximum rate.

use super::*;

pub(super) struct Latency {
    pub(super) rate: u64,
    pub(super) achieved: f64,
    pub(super) rows: u64,
    pub(super) samples: usize,
    pub(super) late_ticks: usize,
    /// Acknowledged by the broker -> queryable.
    pub(super) publish: [Duration; 4],
    /// Handed to the producer -> queryable.
    pub(super) send: [Duration; 4],
}

pub(super) fn percentiles(mut v: Vec<Duration>) -> [Duration; 4] {
    v.sort();
    let pct = |q: f64| {
        let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[i]
    };
    [pct(0.5), pct(0.9), pct(0.99), *v.last().unwrap()]
}

pub(super) async fn latency(cfg: &Cfg, dir: &Path, broker: &Tansu, rate: u64) -> Res<Latency> {
    let topic = "bench_latency";
    broker
        .create_topic(topic, cfg.partitions as i32)
        .await
        .map_err(|e| format!("create topic: {e:#}"))?;
    let bootstrap = broker.bootstrap();
    let core = Core::open(dir, "bench_latency").await?;
    core.create_table(topic, &bootstrap, cfg).await?;
    if let Err(e) =
        riffle_bench::core::wait_consuming(|| core.status(), cfg.partitions as usize).await
    {
        core.stop().await;
        return Err(format!("latency: {e}"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let total = (rate as f64 * cfg.latency_secs).round() as u64;
    let parts = u64::from(cfg.partitions);
    // Events prepared before the clock.
    let mut gen = EventGen::new(7);
    let mut lines = Vec::with_capacity(total as usize * LINE_BYTES);
    for _ in 0..total {
        gen.push_line(&mut lines);
    }
    let (p, delivered) = producer(&bootstrap, "5")?;
    let (tx, rx) = mpsc::channel::<(u64, Instant)>();
    let done = Arc::new(AtomicBool::new(false));
    let (secs, tick) = (cfg.latency_secs, cfg.tick);
    let writer_done = done.clone();
    let writer = std::thread::spawn(move || -> Res<(f64, usize, usize)> {
        let result = riffle_bench::paced_writes(
            rate as f64,
            secs,
            tick,
            total,
            |from, to| {
                for j in from..to {
                    let a = j as usize * LINE_BYTES;
                    send(&p, topic, (j % parts) as i32, &lines[a..a + EVENT_BYTES])?;
                }
                Ok(())
            },
            |written, sent_at| {
                tx.send((written, sent_at))
                    .map_err(|_| "watcher went away".to_string())
            },
        )
        .and_then(|stats| {
            p.flush(Duration::from_secs(60))
                .map_err(|e| format!("flush: {e}"))
                .map(|()| stats)
        });
        writer_done.store(true, Ordering::SeqCst);
        drop(tx);
        result
    });
    let segments = core.segments();
    let raw = core.raw().to_string();
    let poll = cfg.poll;
    let watcher = std::thread::spawn(move || -> Res<(Vec<Duration>, Vec<Duration>)> {
        // (cumulative count, sent at, acknowledged at)
        let mut pending: VecDeque<(u64, Instant, Option<Instant>)> = VecDeque::new();
        let (mut publish, mut send) = (Vec::new(), Vec::new());
        let mut last_change = (0u64, Instant::now());
        loop {
            let mut closed = false;
            loop {
                match rx.try_recv() {
                    Ok((c, at)) => pending.push_back((c, at, None)),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            let acked = delivered.ok.load(Ordering::SeqCst);
            let n = published(&segments, &raw);
            let now = Instant::now();
            for t in pending.iter_mut() {
                if t.2.is_none() && acked >= t.0 {
                    t.2 = Some(now);
                }
            }
            while let Some(&(cum, sent_at, acked_at)) = pending.front() {
                if cum > n {
                    break;
                }
                // Seen queryable at the same poll as acknowledged: 0 from the publish.
                let acked_at = acked_at.unwrap_or(now);
                publish.push(now.saturating_duration_since(acked_at));
                send.push(now.saturating_duration_since(sent_at));
                pending.pop_front();
            }
            if closed && pending.is_empty() && done.load(Ordering::SeqCst) {
                return Ok((publish, send));
            }
            if n != last_change.0 || pending.is_empty() {
                last_change = (n, now);
            } else if now - last_change.1 > Duration::from_secs(30) {
                return Err(format!(
                    "latency: stuck at {n} rows, {} ticks pending",
                    pending.len()
                ));
            }
            std::thread::sleep(poll);
        }
    });
    let joined = tokio::task::spawn_blocking(move || (writer.join(), watcher.join()))
        .await
        .map_err(|e| e.to_string())?;
    let failure = core.failure();
    let final_count = core.published();
    core.stop().await;
    let (ran, ticks, late) = joined.0.map_err(|_| "writer panicked".to_string())??;
    let (publish, send) = joined.1.map_err(|_| "watcher panicked".to_string())??;
    if let Some(f) = failure {
        return Err(f);
    }
    if final_count != total || publish.len() != ticks {
        return Err(format!(
            "latency: {final_count} of {total} rows queryable, {} of {ticks} ticks seen",
            publish.len()
        ));
    }
    Ok(Latency {
        rate,
        achieved: total as f64 / ran,
        rows: total,
        samples: publish.len(),
        late_ticks: late,
        publish: percentiles(publish),
        send: percentiles(send),
    })
}
