//! How the ingestion benchmark's report prints.

use std::fmt;
use std::time::Duration;

use crate::*;

impl fmt::Display for IngestBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.throughput;
        header(
            f,
            &format!("Riffle ingestion benchmark (file stream, {EVENT_BYTES}-byte JSON events)"),
            &self.machine,
            self.load_before,
            self.load_after,
        )?;
        writeln!(f, "event: {}", sample_event())?;
        writeln!(f)?;
        writeln!(
            f,
            "-- throughput: {} rows ({:.1} MB) in {} partition(s), file written before the table --",
            thousands(self.rows as f64),
            t.queryable.bytes as f64 / 1e6,
            t.partitions
        )?;
        writeln!(
            f,
            "   load before {}  after {}   (write {:.2} s, create table {:.3} s; not timed)",
            load_text(t.load_before),
            load_text(t.load_after),
            t.write_secs,
            t.create_secs
        )?;
        writeln!(
            f,
            "   {:<38} {:>12} {:>9} {:>10} {:>12}",
            "run", "rows/s", "MB/s", "seconds", "riffle ratio"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, r: &Rate, ratio: Option<f64>| {
            writeln!(
                f,
                "   {:<38} {:>12} {:>9.1} {:>10.3} {:>12}",
                name,
                thousands(r.rows_per_sec()),
                r.mb_per_sec(),
                r.secs,
                ratio.map_or_else(|| "-".to_string(), |x| format!("{x:.2}x"))
            )
        };
        row(f, "riffle: rows/s to queryable", &t.queryable, None)?;
        let rr = t.queryable.rows_per_sec();
        if let Some(r) = &self.read_only {
            row(
                f,
                "compare: read only (fetch, best of 3)",
                r,
                Some(rr / r.rows_per_sec()),
            )?;
        }
        if let Some(r) = &self.naive_decode {
            row(
                f,
                "compare: naive serde_json::Value",
                r,
                Some(rr / r.rows_per_sec()),
            )?;
        }
        writeln!(
            f,
            "   first rows queryable after {:.1} ms; process CPU while ingesting: {}",
            t.first_rows_secs * 1e3,
            t.cpu_secs.map_or_else(
                || "n/a".to_string(),
                |c| format!(
                    "{c:.2} s ({:.2} cores avg, {} rows per CPU-second)",
                    c / t.queryable.secs.max(1e-9),
                    thousands(t.queryable.rows as f64 / c.max(1e-9))
                )
            )
        )?;
        if let Some(s) = &self.split {
            let total = s.total();
            writeln!(f)?;
            writeln!(
                f,
                "-- stage split: the partition loop's stages one after the other, one thread ({} fetches) --",
                s.fetches
            )?;
            writeln!(
                f,
                "   {:<34} {:>10} {:>10} {:>8}",
                "stage", "seconds", "ns/row", "share"
            )?;
            for (name, secs) in [
                ("fetch (read + split lines)", s.fetch_secs),
                ("decode_batch (JSON -> builders)", s.decode_secs),
                ("BlockBuilder::finish", s.finish_secs),
                ("ConsumingSegment::append", s.publish_secs),
            ] {
                writeln!(
                    f,
                    "   {:<34} {:>10.3} {:>10.1} {:>7.1}%",
                    name,
                    secs,
                    secs * 1e9 / s.rows.max(1) as f64,
                    100.0 * secs / total.max(1e-9)
                )?;
            }
            writeln!(
                f,
                "   {:<34} {:>10.3} {:>10.1}   => {} rows/s serial",
                "total",
                total,
                total * 1e9 / s.rows.max(1) as f64,
                thousands(s.rows as f64 / total.max(1e-9))
            )?;
        }
        if let Some(l) = &self.latency {
            writeln!(f)?;
            writeln!(
                f,
                "-- publish-to-query latency: {} rows/s target for {:.1} s, {} partition(s) --",
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
                "   rows {}  achieved {} rows/s  samples (ticks) {}  late ticks {}",
                thousands(l.rows as f64),
                thousands(l.achieved_rate),
                l.samples,
                l.late_ticks
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
        }
        writeln!(f)?;
        let tp_ok = t.queryable.rows_per_sec() >= 500_000.0;
        writeln!(
            f,
            "targets: >= 500,000 rows/s ({} partition(s)): {}   p99 <= 500 ms: {}",
            t.partitions,
            if tp_ok { "MET" } else { "NOT MET" },
            match &self.latency {
                Some(l) if l.p99 <= Duration::from_millis(500) => "MET",
                Some(_) => "NOT MET",
                None => "not run",
            }
        )
    }
}
