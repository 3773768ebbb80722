//! Crash points for tests: make the process die at a named place, deterministically.
//!
//! `RIFFLE_FAILPOINTS` holds a comma-separated list of `name` or `name@n` (die on the n-th
//! time the point is reached, the first by default). When a listed point is reached for the
//! chosen time, the process aborts at once (no destructors, no flushing: as close to a
//! `SIGKILL` as a process can do to itself). Without the variable, [`failpoint`] is one
//! atomic load.
//!
//! Compiled in only with the `failpoints` feature (the test builds turn it on); without it
//! [`failpoint`] is an empty inline function and `RIFFLE_FAILPOINTS` is ignored, with a
//! warning from [`warn_if_requested`].
//!
//! Points: `seal.after_write`, `seal.after_upload`, `catalog.inside_commit` (inside the
//! commit transaction, before it is durable), `seal.after_commit`, `registry.during_swap`
//! (while queries are blocked on the swap), `push.after_upload` (a pushed segment is in the
//! deep store, not in the catalog), `catalog.inside_push`, `push.after_record` (recorded, not
//! yet served).

#[cfg(feature = "failpoints")]
use std::collections::HashMap;
#[cfg(feature = "failpoints")]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "failpoints")]
use std::sync::OnceLock;

#[cfg(feature = "failpoints")]
struct Point {
    at: u64,
    hits: AtomicU64,
}

#[cfg(feature = "failpoints")]
fn points() -> &'static HashMap<String, Point> {
    static POINTS: OnceLock<HashMap<String, Point>> = OnceLock::new();
    POINTS.get_or_init(|| {
        let mut m = HashMap::new();
        let spec = std::env::var("RIFFLE_FAILPOINTS").unwrap_or_default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, at) = match item.split_once('@') {
                Some((n, a)) => (n, a.parse::<u64>().unwrap_or(1).max(1)),
                None => (item, 1),
            };
            m.insert(
                name.to_string(),
                Point {
                    at,
                    hits: AtomicU64::new(0),
                },
            );
        }
        m
    })
}

/// Aborts the process if `name` is armed and reached for the chosen time.
#[cfg(feature = "failpoints")]
pub fn failpoint(name: &str) {
    let points = points();
    if points.is_empty() {
        return;
    }
    if let Some(p) = points.get(name) {
        let n = p.hits.fetch_add(1, Ordering::SeqCst) + 1;
        if n == p.at {
            eprintln!("failpoint {name} reached (hit {n}): aborting");
            std::process::abort();
        }
    }
}

/// Without the `failpoints` feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn failpoint(_name: &str) {}

/// Whether crash points are compiled into this build.
pub const ENABLED: bool = cfg!(feature = "failpoints");

/// Warns when `RIFFLE_FAILPOINTS` is set in a build without crash points (it would be
/// silently ignored otherwise).
pub fn warn_if_requested() {
    if !ENABLED && std::env::var_os("RIFFLE_FAILPOINTS").is_some() {
        tracing::warn!(
            "RIFFLE_FAILPOINTS is set but this build has no crash points (feature failpoints)"
        );
    }
}
