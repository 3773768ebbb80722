//! The node's thread pools, decided here and nowhere else.
//!
//! - **query**: a tokio runtime of its own for SQL execution, so that a query computing
//!   without yielding can hold up neither the HTTP handlers nor the ingestion loops.
//! - **cpu**: decoding fetched batches and sealing segments (CPU-bound, milliseconds to
//!   seconds per job).
//! - **io**: blocking catalog transactions (redb fsyncs on commit).
//! - **main** ([`main_runtime`]): the process's async runtime (HTTP, partition loops, the
//!   controller), which only waits: it never runs a job of the pools above.
//!
//! Each pool has a fixed number of threads ([`RuntimeConfig`]), named `riffle-<pool>-<n>`.
//! Async code hands the engine's blocking work (decoding, sealing, catalog transactions) to
//! a pool with [`Pool::run`] and awaits the answer without blocking its own thread. The
//! short blocking calls of the storage crate and the stream plugins, which know nothing of
//! the node (a local file copy, a librdkafka metadata call), use the blocking threads of
//! the runtime they run on, which are bounded too ([`MAX_BLOCKING_THREADS`]). Nothing else
//! builds a runtime.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex};

use crate::error::{ClassifyError, ErrorKind};

/// The most blocking threads a runtime of the node starts (tokio's default is 512).
pub const MAX_BLOCKING_THREADS: usize = 64;

/// How many threads each pool has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Query execution threads (default: four per core, at least 8). More threads than
    /// cores let the kernel share the CPU among queries: a light query gets a thread and a
    /// time slice while heavy ones compute, instead of waiting for an operator to yield
    /// (`riffle bench queries`: COUNT(*) p99 beside two heavy queries 218 ms with one
    /// thread per core, 9 ms with four). A query's own parallelism stays one per core.
    pub query_threads: usize,
    /// Decode and seal threads (default: twice the cores, at least 4: a seal that takes
    /// seconds must not take a partition's decode thread).
    pub cpu_threads: usize,
    /// Catalog threads (default 4).
    pub io_threads: usize,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        RuntimeConfig {
            query_threads: (4 * cores).max(8),
            cpu_threads: (2 * cores).max(4),
            io_threads: 4,
        }
    }
}

/// Work handed to a pool did not finish.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The job panicked (a bug); the pool's thread survives.
    #[error("{pool} job panicked: {message}")]
    Panicked {
        /// The pool.
        pool: &'static str,
        /// The panic message.
        message: String,
    },
    /// The pool is shut down.
    #[error("the {0} pool is shut down")]
    Closed(&'static str),
}

impl ClassifyError for PoolError {
    fn error_kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

/// A job: computes, and returns how to hand its result over. The worker marks itself idle
/// before it hands the result over, so that the caller's next job finds it idle.
type Job = Box<dyn FnOnce() -> Deliver + Send + 'static>;
type Deliver = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of named threads running blocking jobs in the order they arrive.
///
/// A job goes to an idle thread (or waits in a queue when every thread is busy): the
/// thread that last ran a job of the same affinity key if that one is idle
/// ([`Pool::run_keyed`]), else the thread that became idle last. A loop that hands the pool
/// one job at a time (a partition decoding batch after batch) therefore keeps running on
/// one thread, with its caches and its allocator arena warm (the memory its previous
/// segments freed is reused), while a long job (a seal) takes another thread and holds up
/// no one.
#[derive(Clone)]
pub struct Pool {
    name: &'static str,
    inner: Arc<PoolInner>,
}

struct PoolInner {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<PoolState>,
    workers: Vec<Worker>,
    closed: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct PoolState {
    queue: VecDeque<(Option<u64>, Job)>,
    /// Idle workers, the one idle last on top.
    idle: Vec<usize>,
    /// The worker that last ran a job of each affinity key.
    last: std::collections::HashMap<u64, usize>,
}

/// A worker's hand-off slot: a job given to it while it was idle.
#[derive(Default)]
struct Worker {
    slot: Mutex<Option<Job>>,
    wake: Condvar,
}

impl Shared {
    /// Hands a job to an idle thread (the one that last ran its key, else the one idle
    /// last), or queues it.
    fn submit(&self, key: Option<u64>, job: Job) {
        let idle = {
            let mut st = lock(&self.state);
            let preferred = key
                .and_then(|k| st.last.get(&k).copied())
                .and_then(|w| st.idle.iter().position(|i| *i == w));
            let chosen = match preferred {
                Some(at) => Some(st.idle.remove(at)),
                None => st.idle.pop(),
            };
            match chosen {
                Some(w) => {
                    if let Some(k) = key {
                        st.last.insert(k, w);
                    }
                    w
                }
                None => {
                    st.queue.push_back((key, job));
                    return;
                }
            }
        };
        let w = &self.workers[idle];
        *lock(&w.slot) = Some(job);
        w.wake.notify_one();
    }

    /// The next job of worker `id`: a queued one, else one handed to it once idle; `None`
    /// when the pool is closed. `deliver` (the previous job's result) is handed over once
    /// the worker is idle or has its next job.
    fn next(&self, id: usize, deliver: Option<Deliver>) -> Option<Job> {
        {
            let mut st = lock(&self.state);
            if let Some((key, job)) = st.queue.pop_front() {
                if let Some(k) = key {
                    st.last.insert(k, id);
                }
                drop(st);
                if let Some(d) = deliver {
                    d();
                }
                return Some(job);
            }
            if !self.closed.load(std::sync::atomic::Ordering::SeqCst) {
                st.idle.push(id);
            }
        }
        if let Some(d) = deliver {
            d();
        }
        let w = &self.workers[id];
        let mut slot = lock(&w.slot);
        loop {
            if let Some(job) = slot.take() {
                return Some(job);
            }
            if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
                return None;
            }
            slot = match w.wake.wait(slot) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        self.shared
            .closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for w in &self.shared.workers {
            let _guard = lock(&w.slot);
            w.wake.notify_all();
        }
    }
}

/// Locks a mutex whose holder may have panicked (the pool's state stays consistent: jobs
/// run outside every lock).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({})", self.name)
    }
}

impl Pool {
    /// Starts `threads` threads (at least one). They end when the last handle is dropped.
    pub fn new(name: &'static str, threads: usize) -> std::io::Result<Pool> {
        let n = threads.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(PoolState::default()),
            workers: (0..n).map(|_| Worker::default()).collect(),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        for id in 0..n {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("riffle-{name}-{id}"))
                .spawn(move || {
                    let mut deliver = None;
                    while let Some(job) = shared.next(id, deliver.take()) {
                        deliver = Some(job());
                    }
                })?;
        }
        Ok(Pool {
            name,
            inner: Arc::new(PoolInner { shared }),
        })
    }

    /// The pool's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs `f` on one of the pool's threads and waits for its result without blocking the
    /// caller's thread. A panic in `f` is caught and returned as an error.
    pub async fn run<T, F>(&self, f: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.dispatch(None, f).await
    }

    /// [`Pool::run`], preferring the thread that last ran a job of `key` (a partition's
    /// decoding) when it is idle.
    pub async fn run_keyed<T, F>(&self, key: u64, f: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.dispatch(Some(key), f).await
    }

    async fn dispatch<T, F>(&self, key: Option<u64>, f: F) -> Result<T, PoolError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let name = self.name;
        let job: Job = Box::new(move || {
            let out = std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
                let message = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                PoolError::Panicked {
                    pool: name,
                    message,
                }
            });
            let deliver: Deliver = Box::new(move || {
                let _ = tx.send(out);
            });
            deliver
        });
        if self
            .inner
            .shared
            .closed
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(PoolError::Closed(name));
        }
        self.inner.shared.submit(key, job);
        rx.await.map_err(|_| PoolError::Closed(name))?
    }
}

/// A tokio runtime of its own (for query execution), shut down without blocking when the
/// last handle goes, even from inside another runtime.
#[derive(Clone)]
pub struct AsyncPool {
    name: &'static str,
    inner: Arc<RuntimeOwner>,
}

struct RuntimeOwner(Option<tokio::runtime::Runtime>);

impl Drop for RuntimeOwner {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for AsyncPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AsyncPool({})", self.name)
    }
}

/// Stack of each [`AsyncPool`] thread. Planning a query recurses once per level of its
/// expressions; the query crate bounds that depth, and this leaves it room (the memory is
/// reserved, and only touched as deep as a query goes).
pub const ASYNC_POOL_STACK: usize = 16 * 1024 * 1024;

impl AsyncPool {
    /// A multi-threaded runtime with `threads` workers named `riffle-<name>`, each with
    /// [`ASYNC_POOL_STACK`] of stack.
    pub fn new(name: &'static str, threads: usize) -> std::io::Result<AsyncPool> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_stack_size(ASYNC_POOL_STACK)
            .max_blocking_threads(MAX_BLOCKING_THREADS)
            .thread_name(format!("riffle-{name}"))
            .enable_all()
            .build()?;
        Ok(AsyncPool {
            name,
            inner: Arc::new(RuntimeOwner(Some(rt))),
        })
    }

    /// Spawns a future on the pool's threads.
    pub fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.inner.0 {
            Some(rt) => rt.spawn(f),
            None => tokio::spawn(f),
        }
    }

    /// The pool's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Tasks alive on the pool now: spawned and not yet finished (an aborted task counts
    /// until it has stopped).
    pub fn alive_tasks(&self) -> usize {
        match &self.inner.0 {
            Some(rt) => rt.metrics().num_alive_tasks(),
            None => 0,
        }
    }
}

/// The runtime the process's async code (HTTP, loops, the controller) runs on.
pub fn main_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_name("riffle-main")
        .enable_all()
        .build()
}

/// The node's pools.
#[derive(Clone, Debug)]
pub struct Runtimes {
    /// SQL execution.
    pub query: AsyncPool,
    /// Decoding and sealing.
    pub cpu: Pool,
    /// Catalog transactions.
    pub io: Pool,
}

impl Runtimes {
    /// Starts every pool.
    pub fn new(config: &RuntimeConfig) -> std::io::Result<Runtimes> {
        Ok(Runtimes {
            query: AsyncPool::new("query", config.query_threads)?,
            cpu: Pool::new("cpu", config.cpu_threads)?,
            io: Pool::new("io", config.io_threads)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_pool_runs_jobs_on_its_named_threads_and_survives_panics() {
        let pool = Pool::new("t", 2).unwrap();
        let name = pool
            .run(|| std::thread::current().name().map(str::to_string))
            .await
            .unwrap();
        assert!(name.is_some_and(|n| n.starts_with("riffle-t-")));
        let e = pool.run(|| -> u32 { panic!("boom") }).await.unwrap_err();
        assert!(e.to_string().contains("boom"), "{e}");
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn test_one_job_at_a_time_stays_on_one_thread() {
        let pool = Pool::new("l", 4).unwrap();
        // Every thread has started and is idle.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut names = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let n = pool
                .run(|| std::thread::current().name().map(str::to_string))
                .await
                .unwrap();
            names.insert(n);
        }
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[tokio::test]
    async fn test_a_key_returns_to_its_thread_after_other_work() {
        let pool = Pool::new("k", 3).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let name = || std::thread::current().name().map(str::to_string);
        let first = pool.run_keyed(7, name).await.unwrap();
        // Other jobs run in between (the last of them ends last, on top of the idle list).
        for _ in 0..5 {
            pool.run(|| ()).await.unwrap();
        }
        let long = {
            let p = pool.clone();
            tokio::spawn(async move {
                p.run(|| std::thread::sleep(std::time::Duration::from_millis(50)))
                    .await
            })
        };
        assert_eq!(pool.run_keyed(7, name).await.unwrap(), first);
        long.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn test_pool_bounds_concurrency() {
        let pool = Pool::new("b", 2).unwrap();
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut jobs = Vec::new();
        for _ in 0..8 {
            let (r, p, pool) = (running.clone(), peak.clone(), pool.clone());
            jobs.push(tokio::spawn(async move {
                pool.run(move || {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = r.fetch_add(1, SeqCst) + 1;
                    p.fetch_max(now, SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    r.fetch_sub(1, SeqCst);
                })
                .await
            }));
        }
        for j in jobs {
            j.await.unwrap().unwrap();
        }
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
