//! Riffle's run: a node with the Kafka plugin consuming the topic to queryable rows.

use super::*;

pub(super) fn table_json(name: &str, topic: &str, bootstrap: &str, cfg: &Cfg) -> String {
    let mut t = serde_json::json!({
        "tableName": name,
        "tableType": "REALTIME",
        "segmentsConfig": {"timeColumnName": "ts", "schemaName": name, "replicasPerPartition": "1"},
        "tenants": {},
        "tableIndexConfig": {
            "loadMode": "MMAP",
            "streamConfigs": {
                "streamType": "kafka",
                "stream.kafka.topic.name": topic,
                "stream.kafka.broker.list": bootstrap,
                "stream.kafka.decoder.class.name":
                    "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
                "stream.kafka.consumer.factory.class.name":
                    "org.apache.pinot.plugin.stream.kafka30.KafkaConsumerFactory",
                "stream.kafka.consumer.prop.auto.offset.reset": "smallest",
                "fetch.max.wait.ms": cfg.fetch_wait_ms.to_string(),
                "realtime.segment.flush.threshold.rows": "0",
                "realtime.segment.flush.threshold.time": "24h",
                "realtime.segment.flush.threshold.segment.size": "100M"
            }
        },
        "metadata": {}
    });
    for (k, v) in &cfg.table_props {
        let sc = &mut t["tableIndexConfig"]["streamConfigs"];
        if v.is_empty() {
            // `--table-prop KEY=` removes the key.
            if let Some(m) = sc.as_object_mut() {
                m.remove(k);
            }
        } else {
            sc[k] = serde_json::json!(v);
        }
    }
    t.to_string()
}

/// A node with the Kafka plugin, built as `riffle serve` builds it, and the table it
/// measures.
pub(super) struct Core {
    pub(super) node: Node,
    pub(super) name: TableNameWithType,
    pub(super) raw: String,
}

impl Core {
    /// Opens a node in `dir/<name>` (its own data directory).
    pub(super) async fn open(dir: &Path, name: &str) -> Res<Core> {
        let mut config = NodeConfig::loopback(dir.join(name));
        config.discovery_interval = Duration::from_secs(3600);
        let node = Node::open(config, riffle_node::default_streams())
            .await
            .map_err(|e| format!("open node: {}", riffle_common::chain(&e)))?;
        let name_with_type =
            TableNameWithType::parse(&format!("{name}_REALTIME")).map_err(|e| e.to_string())?;
        Ok(Core {
            node,
            name: name_with_type,
            raw: name.to_string(),
        })
    }

    /// Creates the table of `topic` (consumption starts with it).
    pub(super) async fn create_table(&self, topic: &str, bootstrap: &str, cfg: &Cfg) -> Res<()> {
        let schema_json = SCHEMA_JSON.replace("\"bench_events\"", &format!("\"{}\"", self.raw));
        let schema =
            Schema::from_json(schema_json.as_bytes()).map_err(|e| format!("schema: {e}"))?;
        let table = TableConfig::from_json(table_json(&self.raw, topic, bootstrap, cfg).as_bytes())
            .map_err(|e| format!("table config: {e}"))?;
        let warnings = self
            .node
            .tables()
            .create_table(table, schema, true)
            .await
            .map_err(|e| format!("create table: {e}"))?;
        if !warnings.is_empty() {
            return Err(format!("table warnings: {warnings:?}"));
        }
        Ok(())
    }

    pub(super) fn published(&self) -> u64 {
        published(self.node.segments(), &self.raw)
    }

    pub(super) fn segments(&self) -> Arc<SegmentRegistry> {
        self.node.segments().clone()
    }

    pub(super) fn raw(&self) -> &str {
        &self.raw
    }

    pub(super) fn status(&self) -> Vec<PartitionStatus> {
        self.node
            .tables()
            .server()
            .status(&self.name)
            .unwrap_or_default()
    }

    pub(super) fn failure(&self) -> Option<String> {
        riffle_bench::core::failure_of(&self.status())
    }

    pub(super) async fn stop(self) {
        self.node.shutdown().await;
    }
}

pub(super) fn published(segments: &SegmentRegistry, raw: &str) -> u64 {
    segments.table(raw).map_or(0, |t| {
        t.segments().iter().map(|s| s.num_rows() as u64).sum()
    })
}

pub(super) struct RiffleRun {
    pub(super) rate: Rate,
    pub(super) first_rows_secs: f64,
    pub(super) cpu_secs: Option<f64>,
}

pub(super) async fn riffle(
    cfg: &Cfg,
    dir: &Path,
    bootstrap: &str,
    topic: &str,
    bytes: u64,
) -> Res<RiffleRun> {
    let core = Core::open(dir, "bench_events").await?;
    let cpu0 = process_cpu_secs();
    let start = Instant::now();
    core.create_table(topic, bootstrap, cfg).await?;
    let want = cfg.rows;
    let mut first = None;
    let mut last = (0u64, Instant::now());
    let mut checked = Instant::now();
    let elapsed = loop {
        let n = core.published();
        let now = Instant::now();
        if n > 0 && first.is_none() {
            first = Some(now - start);
        }
        if n >= want {
            if n != want {
                core.stop().await;
                return Err(format!("published {n} rows, expected exactly {want}"));
            }
            break now - start;
        }
        if n != last.0 {
            last = (n, now);
        } else if now - last.1 > Duration::from_secs(60) {
            core.stop().await;
            return Err(format!("no progress for 60 s at {n} of {want} rows"));
        }
        if now - checked > Duration::from_millis(100) {
            checked = now;
            if let Some(f) = core.failure() {
                core.stop().await;
                return Err(f);
            }
        }
        std::thread::sleep(cfg.poll);
    };
    let cpu1 = process_cpu_secs();
    let t = Instant::now();
    let read = loop {
        let read: u64 = core.status().iter().map(|s| s.messages_read).sum();
        if read >= want || t.elapsed() > Duration::from_secs(5) {
            break read;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let errors: u64 = core.status().iter().map(|s| s.decode_errors).sum();
    core.stop().await;
    if read != want || errors != 0 {
        return Err(format!(
            "partitions read {read} messages with {errors} decode errors, expected {want} and 0"
        ));
    }
    Ok(RiffleRun {
        rate: Rate {
            rows: want,
            bytes,
            secs: elapsed.as_secs_f64(),
        },
        first_rows_secs: first.unwrap_or_default().as_secs_f64(),
        cpu_secs: cpu0.zip(cpu1).map(|(a, b)| b - a),
    })
}
