//! What every benchmark report shares: the error type, the machine, the load average, CPU
//! time, rates, and the header each report prints.

use std::fmt;
use std::path::Path;
use std::time::Duration;

/// A benchmark failure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchError(pub String);

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

pub fn err(msg: impl Into<String>) -> BenchError {
    BenchError(msg.into())
}

pub fn io_err(what: &str, path: &Path, e: std::io::Error) -> BenchError {
    err(format!("{what} '{}': {e}", path.display()))
}

#[derive(Debug, Clone, PartialEq)]
pub struct MachineFacts {
    /// Logical CPUs available to the process.
    pub nproc: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// MemTotal from /proc/meminfo, in GiB.
    pub mem_gib: f64,
}

impl MachineFacts {
    /// Reads the facts of this machine (unknown parts are empty / 0).
    pub fn read() -> MachineFacts {
        let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default();
        let mem_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / (1024.0 * 1024.0));
        MachineFacts {
            nproc,
            cpu_model,
            mem_gib,
        }
    }
}

/// /proc/loadavg.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadAvg {
    /// 1-minute load.
    pub one: f64,
    /// 5-minute load.
    pub five: f64,
    /// 15-minute load.
    pub fifteen: f64,
}

impl LoadAvg {
    /// The load average now, if /proc/loadavg is readable.
    pub fn read() -> Option<LoadAvg> {
        let s = std::fs::read_to_string("/proc/loadavg").ok()?;
        let mut it = s.split_whitespace().map(|x| x.parse::<f64>().ok());
        Some(LoadAvg {
            one: it.next()??,
            five: it.next()??,
            fifteen: it.next()??,
        })
    }
}

impl fmt::Display for LoadAvg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2} {:.2} {:.2}", self.one, self.five, self.fifteen)
    }
}

pub fn load_text(l: Option<LoadAvg>) -> String {
    l.map_or_else(|| "n/a".to_string(), |l| l.to_string())
}

/// CPU seconds (user + system) this process has used, from /proc/self/stat (USER_HZ = 100).
pub fn process_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; fields start after its closing parenthesis.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Rows (and bytes) in a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Rows.
    pub rows: u64,
    /// File bytes (lines with their newlines).
    pub bytes: u64,
    /// Seconds.
    pub secs: f64,
}

impl Rate {
    /// Rows per second.
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.secs.max(1e-9)
    }

    /// Megabytes (10^6) of file per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.secs.max(1e-9)
    }

    /// Nanoseconds per row.
    pub fn ns_per_row(&self) -> f64 {
        self.secs * 1e9 / (self.rows.max(1) as f64)
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

pub fn warn_busy(f: &mut fmt::Formatter<'_>, before: Option<LoadAvg>) -> fmt::Result {
    if before.is_some_and(|l| l.one > 1.0) {
        writeln!(f, "WARNING: 1-min load was above 1.0 before the run: the machine was busy, do not report these figures")?;
    }
    Ok(())
}

/// The first lines of a benchmark report: its title, the machine, the load before and
/// after, and a warning when the machine was busy before the run.
pub fn header(
    f: &mut fmt::Formatter<'_>,
    title: &str,
    m: &MachineFacts,
    before: Option<LoadAvg>,
    after: Option<LoadAvg>,
) -> fmt::Result {
    writeln!(f, "== {title} ==")?;
    writeln!(
        f,
        "machine: nproc={}  cpu=\"{}\"  ram={:.1} GiB",
        m.nproc, m.cpu_model, m.mem_gib
    )?;
    writeln!(
        f,
        "load average (1/5/15 min): before run {}  after run {}",
        load_text(before),
        load_text(after)
    )?;
    warn_busy(f, before)
}
