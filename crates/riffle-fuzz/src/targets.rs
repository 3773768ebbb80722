//! The fuzz targets: what each one feeds its input to, and the seeds they start from.

use super::*;

pub(crate) fn columns() -> Result<Arc<TableColumns>> {
    let schema = Schema::from_json(SCHEMA.as_bytes()).map_err(|e| anyhow!("{e}"))?;
    Ok(TableColumns::new(
        schema.columns().map_err(|e| anyhow!("{e}"))?,
    ))
}

pub(crate) fn message(value: Vec<u8>, n: i64) -> StreamMessage {
    StreamMessage {
        key: None,
        value: Bytes::from(value),
        headers: Vec::new(),
        offset: StreamOffset::Long(n),
        next_offset: StreamOffset::Long(n + 1),
        timestamp_ms: Some(n),
    }
}

pub(crate) fn stream_config() -> Result<StreamConfig> {
    let table = TableConfig::from_json(TABLE.as_bytes()).map_err(|e| anyhow!("{e}"))?;
    table
        .streams()
        .first()
        .cloned()
        .ok_or_else(|| anyhow!("no stream config"))
}

/// Decodes the input as a batch of messages (split at newlines); true if a row came out.
pub(crate) fn run_json(input: &[u8], cols: &Arc<TableColumns>, sc: &StreamConfig) -> bool {
    let Ok(mut decoder) = decoder_for(sc, cols, &Default::default()) else {
        return false;
    };
    let special = SpecialColumns::new(cols, true);
    let messages: Vec<StreamMessage> = input
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, m)| message(m.to_vec(), i as i64))
        .collect();
    let mut out = BlockBuilder::new(cols.clone(), 16);
    let stats = decode_batch(decoder.as_mut(), &special, 0, &messages, &mut out, false);
    let _ = out.finish();
    stats.rows > 0
}

/// A valid segment file of the fuzz schema (the segment seeds).
pub(crate) fn segment_seed(
    dir: &Path,
    cols: &Arc<TableColumns>,
    sc: &StreamConfig,
) -> Result<Vec<u8>> {
    let mut decoder = decoder_for(sc, cols, &Default::default()).map_err(|e| anyhow!("{e}"))?;
    let special = SpecialColumns::new(cols, false);
    let msgs: Vec<StreamMessage> = (0..64)
        .map(|i| message(MESSAGES[i % 4].as_bytes().to_vec(), i as i64))
        .collect();
    let mut out = BlockBuilder::new(cols.clone(), 64);
    decode_batch(decoder.as_mut(), &special, 0, &msgs, &mut out, false);
    let batch = out.finish().map_err(|e| anyhow!("{e}"))?;
    let table = TableConfig::from_json(TABLE.as_bytes()).map_err(|e| anyhow!("{e}"))?;
    let path = dir.join("seed.seg");
    riffle_segment::write_segment(
        &path,
        "fuzz__0__0__20240101T0000Z",
        cols,
        &[batch],
        &SealOptions::from_table(&table),
    )
    .map_err(|e| anyhow!("{e}"))?;
    std::fs::read(&path).context("read the seed segment")
}

/// Opens and reads the input as a segment file; true if it opened.
pub(crate) fn run_segment(input: &[u8], path: &Path, cols: &Arc<TableColumns>) -> bool {
    if std::fs::write(path, input).is_err() {
        return false;
    }
    let mut opened = false;
    for mode in [LoadMode::Heap, LoadMode::Mmap] {
        if let Ok(seg) = SealedSegment::open(path, "fuzz", cols.clone(), mode) {
            opened = true;
            let _ = seg.read(None, None, 7);
        }
    }
    opened
}

/// The input with every checksum made right again: each section's CRC32 in the footer
/// recomputed from the (mutated) bytes, and the footer's own in the trailer, so that a
/// mutation reaches the decoding behind the checksums. Inputs whose trailer or footer no
/// longer parse are left as they are.
pub(crate) fn reseal(input: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    let len = b.len();
    if len < 96 {
        return b;
    }
    let t = len - 32;
    let u64_at = |b: &[u8], at: usize| -> u64 {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(x)
    };
    let (fo, fl) = (u64_at(&b, t), u64_at(&b, t + 8));
    let Some(fo) = usize::try_from(fo).ok().filter(|o| *o <= t) else {
        return b;
    };
    if usize::try_from(fl).ok() != Some(t - fo) {
        return b;
    }
    let Ok(mut footer) = serde_json::from_slice::<serde_json::Value>(&b[fo..t]) else {
        return b;
    };
    if let Some(sections) = footer
        .get_mut("sections")
        .and_then(serde_json::Value::as_array_mut)
    {
        for s in sections {
            let off = s.get("offset").and_then(serde_json::Value::as_u64);
            let n = s.get("length").and_then(serde_json::Value::as_u64);
            let (Some(off), Some(n)) = (off, n) else {
                continue;
            };
            let range = usize::try_from(off)
                .ok()
                .zip(usize::try_from(n).ok())
                .and_then(|(o, n)| Some(o..o.checked_add(n)?))
                .filter(|r| r.end <= fo);
            if let Some(r) = range {
                s["crc32"] = serde_json::json!(crc32fast::hash(&b[r]));
            }
        }
    }
    let Ok(fbytes) = serde_json::to_vec(&footer) else {
        return b;
    };
    let tail: Vec<u8> = b[t + 20..].to_vec(); // format version and magic
    b.truncate(fo);
    b.extend_from_slice(&fbytes);
    b.extend_from_slice(&(fo as u64).to_le_bytes());
    b.extend_from_slice(&(fbytes.len() as u64).to_le_bytes());
    b.extend_from_slice(&crc32fast::hash(&fbytes).to_le_bytes());
    b.extend_from_slice(&tail);
    b
}

/// Parses the input as a schema and as a table config (validated against the schema);
/// true if either parsed.
pub(crate) fn run_config(input: &[u8], schema: &Schema) -> bool {
    let mut ok = false;
    if let Ok(s) = Schema::from_json(input) {
        ok = true;
        let _ = s.validate();
        let _ = s.columns();
        let _ = s.to_json();
    }
    if let Ok(t) = TableConfig::from_json(input) {
        ok = true;
        let _ = t.validate(schema);
        let _ = t.to_json();
        let _ = t.streams();
    }
    ok
}

pub(crate) fn sql_engine(cols: &Arc<TableColumns>, sc: &StreamConfig) -> Result<QueryEngine> {
    let data = Arc::new(TableData::new("fuzz", cols.clone(), Some("ts".into())));
    let seg = Arc::new(ConsumingSegment::new(
        "fuzz__0__0__20240101T0000Z".into(),
        PartitionId(0),
        0,
        "0".into(),
        0,
        cols.clone(),
    ));
    let mut decoder = decoder_for(sc, cols, &Default::default()).map_err(|e| anyhow!("{e}"))?;
    let special = SpecialColumns::new(cols, false);
    let msgs: Vec<StreamMessage> = (0..200)
        .map(|i| message(MESSAGES[i % 4].as_bytes().to_vec(), i as i64))
        .collect();
    let mut out = BlockBuilder::new(cols.clone(), 200);
    decode_batch(decoder.as_mut(), &special, 0, &msgs, &mut out, false);
    let batch = out.finish().map_err(|e| anyhow!("{e}"))?;
    seg.append(Some(batch), StreamOffset::Long(200), 200, None, 5)
        .map_err(|e| anyhow!("{e}"))?;
    data.put_segment(SegmentRef::Consuming(seg));
    let reg = Arc::new(SegmentRegistry::new());
    reg.add_table(data);
    Ok(QueryEngine::new(
        reg,
        "Broker_fuzz".into(),
        riffle_common::AsyncPool::new("fuzzq", 2).context("query pool")?,
    ))
}

/// Runs the input as SQL (1 s timeout); true if it answered without exceptions.
pub(crate) fn run_sql(input: &[u8], engine: &QueryEngine, rt: &tokio::runtime::Runtime) -> bool {
    let sql = String::from_utf8_lossy(input).into_owned();
    let r = rt.block_on(engine.execute(QueryRequest {
        sql,
        options: BTreeMap::from([("timeoutMs".to_string(), "1000".to_string())]),
        ..Default::default()
    }));
    let _ = r.to_json();
    r.exceptions.is_empty()
}
