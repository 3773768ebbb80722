//! Producing the events, and the plain librdkafka consumers that set the ceiling.

use super::*;

/// Counts delivery reports.
#[derive(Default)]
pub(super) struct Deliveries {
    pub(super) ok: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) first_error: parking_lot::Mutex<Option<String>>,
}

pub(super) struct CountingContext(Arc<Deliveries>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => {
                self.0.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                self.0
                    .first_error
                    .lock()
                    .get_or_insert_with(|| e.to_string());
            }
        }
    }
}

pub(super) fn producer(
    bootstrap: &str,
    linger_ms: &str,
) -> Res<(ThreadedProducer<CountingContext>, Arc<Deliveries>)> {
    let d = Arc::new(Deliveries::default());
    let p = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", linger_ms)
        .set("batch.size", "1000000")
        .set("batch.num.messages", "100000")
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "2097151")
        .set("message.timeout.ms", "300000")
        .set("acks", "1")
        .create_with_context(CountingContext(d.clone()))
        .map_err(|e| format!("producer: {e}"))?;
    Ok((p, d))
}

/// Sends one record, waiting while librdkafka's queue is full.
pub(super) fn send(
    p: &ThreadedProducer<CountingContext>,
    topic: &str,
    partition: i32,
    line: &[u8],
) -> Res<()> {
    let mut rec = BaseRecord::<(), [u8]>::to(topic)
        .partition(partition)
        .payload(line);
    loop {
        match p.send(rec) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                rec = r;
                std::thread::sleep(Duration::from_micros(500));
            }
            Err((e, _)) => return Err(format!("produce to {topic}: {e}")),
        }
    }
}

/// Produces `rows` events round-robin into the partitions; returns the seconds it took
/// until every one was acknowledged.
pub(super) fn fill(bootstrap: &str, topic: &str, rows: u64, partitions: u32) -> Res<f64> {
    let (p, d) = producer(bootstrap, "20")?;
    let mut gen = EventGen::new(42);
    let mut buf = Vec::with_capacity(LINE_BYTES);
    let start = Instant::now();
    let mut last_report = Instant::now();
    for i in 0..rows {
        buf.clear();
        gen.push_line(&mut buf);
        send(
            &p,
            topic,
            (i % u64::from(partitions)) as i32,
            &buf[..EVENT_BYTES],
        )?;
        if last_report.elapsed() > Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!(
                "  fill: {} sent, {} acknowledged after {:.0} s",
                thousands((i + 1) as f64),
                thousands(d.ok.load(Ordering::Relaxed) as f64),
                start.elapsed().as_secs_f64()
            );
        }
    }
    p.flush(Duration::from_secs(600))
        .map_err(|e| format!("flush: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    let (ok, failed) = (d.ok.load(Ordering::SeqCst), d.failed.load(Ordering::SeqCst));
    if ok != rows || failed != 0 {
        return Err(format!(
            "fill: {ok} of {rows} acknowledged, {failed} failed: {:?}",
            d.first_error.lock()
        ));
    }
    Ok(secs)
}

pub(super) fn plain_config(bootstrap: &str, fetch_wait_ms: u64) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("group.id", "kafka-ingest-bench")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        // As Riffle's clients: librdkafka's 1 s default pause after a full queue would make
        // the ceiling a matter of queue sizes.
        .set("fetch.queue.backoff.ms", "10");
    c
}

/// A bench event as a typed decoder reads it: every field, text borrowed where it can be.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Event<'a> {
    ts: i64,
    #[serde(borrow)]
    uuid: std::borrow::Cow<'a, str>,
    count: i64,
    #[serde(borrow)]
    country: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    device: std::borrow::Cow<'a, str>,
    price: f64,
}

/// Drains `partitions` from offset 0 with one consumer; returns (messages, payload bytes).
/// With `decode`, every payload is also parsed as a bench event (serde_json into a typed
/// struct: the least a consumer that uses the JSON must do).
pub(super) fn drain(
    bootstrap: &str,
    topic: &str,
    partitions: &[i32],
    want: u64,
    fetch_wait_ms: u64,
    decode: bool,
) -> Res<(u64, u64)> {
    let c: BaseConsumer = plain_config(bootstrap, fetch_wait_ms)
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(|e| e.to_string())?;
    }
    c.assign(&tpl).map_err(|e| e.to_string())?;
    let (mut n, mut bytes) = (0u64, 0u64);
    let mut last = Instant::now();
    while n < want {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let v = m.payload().unwrap_or_default();
                // Touch the payload, as a consumer that uses it would.
                bytes += v.len() as u64 + u64::from(v.last().copied().unwrap_or(0) == 0);
                if decode {
                    let e: Event<'_> = serde_json::from_slice(v)
                        .map_err(|e| format!("plain consumer: not a bench event: {e}"))?;
                    bytes += u64::from(e.count < 0);
                }
                n += 1;
                last = Instant::now();
            }
            Some(Err(e)) => return Err(format!("plain consumer: {e}")),
            None if last.elapsed() > Duration::from_secs(60) => {
                return Err(format!("plain consumer: stuck at {n} of {want}"))
            }
            None => {}
        }
    }
    Ok((n, bytes))
}

pub(super) fn plain_one(cfg: &Cfg, bootstrap: &str, topic: &str) -> Res<Rate> {
    let parts: Vec<i32> = (0..cfg.partitions as i32).collect();
    let start = Instant::now();
    let (n, bytes) = drain(bootstrap, topic, &parts, cfg.rows, cfg.fetch_wait_ms, false)?;
    Ok(Rate {
        rows: n,
        bytes,
        secs: start.elapsed().as_secs_f64(),
    })
}

pub(super) fn plain_per_partition(
    cfg: &Cfg,
    bootstrap: &str,
    topic: &str,
    decode: bool,
) -> Res<Rate> {
    let start = Instant::now();
    let per = cfg.rows / u64::from(cfg.partitions);
    let rest = cfg.rows % u64::from(cfg.partitions);
    let handles: Vec<_> = (0..cfg.partitions)
        .map(|p| {
            let (b, t, w) = (bootstrap.to_string(), topic.to_string(), cfg.fetch_wait_ms);
            let want = per + u64::from(u64::from(p) < rest);
            std::thread::spawn(move || drain(&b, &t, &[p as i32], want, w, decode))
        })
        .collect();
    let (mut rows, mut bytes) = (0, 0);
    for h in handles {
        let (n, b) = h
            .join()
            .map_err(|_| "consumer thread panicked".to_string())??;
        rows += n;
        bytes += b;
    }
    Ok(Rate {
        rows,
        bytes,
        secs: start.elapsed().as_secs_f64(),
    })
}
