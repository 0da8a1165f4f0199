//! Connection workers: one thread per core, each with its own single-threaded tokio runtime,
//! accepting and serving its own connections.
//!
//! A check is short and a connection's requests come one after another, so nothing is gained by
//! moving a connection between threads; the multi-threaded runtime's work stealing and wake-ups
//! cost about a tenth of a keep-alive check's throughput (BENCHMARKS.md, "Seventh round"). Every
//! worker polls a duplicate of the one listening socket, so a connection is accepted and served
//! on the same thread, with no hand-over: a connection-per-check client (nginx `auth_request`
//! without upstream keep-alive) pays nothing extra.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Threads with a single-threaded tokio runtime each. Cheap to clone: clones share the threads,
/// which end (and drop every task still on them) once the last clone is dropped.
#[derive(Clone)]
pub struct Workers {
    inner: Arc<Inner>,
}

struct Inner {
    handles: Vec<Handle>,
    /// Dropped with the last clone: each worker's runtime then returns from `block_on`.
    _running: Vec<oneshot::Sender<()>>,
}

impl fmt::Debug for Workers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workers")
            .field("count", &self.count())
            .finish()
    }
}

impl Workers {
    /// Start `count` worker threads (`portcullis-worker-N`), each with its I/O and time drivers.
    pub fn start(count: NonZeroUsize) -> std::io::Result<Self> {
        let mut handles = Vec::with_capacity(count.get());
        let mut running = Vec::with_capacity(count.get());
        for index in 0..count.get() {
            let (ready, started) = std::sync::mpsc::channel();
            let (keep_running, dropped) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("portcullis-worker-{index}"))
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    match runtime {
                        Ok(runtime) => {
                            let _ = ready.send(Ok(runtime.handle().clone()));
                            let _ = runtime.block_on(dropped);
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                        }
                    }
                })?;
            let handle = started.recv().map_err(|_| {
                std::io::Error::other("a connection worker thread ended before its runtime started")
            })??;
            handles.push(handle);
            running.push(keep_running);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                handles,
                _running: running,
            }),
        })
    }

    /// One worker per core this process may use (`std::thread::available_parallelism`, which
    /// honours a cgroup CPU quota), or one when that cannot be told.
    pub fn per_core() -> std::io::Result<Self> {
        Self::start(std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
    }

    /// How many workers there are.
    pub fn count(&self) -> usize {
        self.inner.handles.len()
    }

    pub(crate) fn handles(&self) -> &[Handle] {
        &self.inner.handles
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worker_runs_tasks_on_its_own_named_thread() {
        let workers = Workers::start(NonZeroUsize::new(2).unwrap()).unwrap();
        assert_eq!(workers.count(), 2);
        assert_eq!(format!("{workers:?}"), "Workers { count: 2 }");
        let names: Vec<String> = workers
            .handles()
            .iter()
            .map(|handle| {
                let (tx, rx) = std::sync::mpsc::channel();
                handle.spawn(async move {
                    // The worker's time driver is enabled: a sleep completes.
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    let _ = tx.send(std::thread::current().name().map(str::to_owned));
                });
                rx.recv_timeout(std::time::Duration::from_secs(5))
                    .unwrap()
                    .unwrap()
            })
            .collect();
        assert_eq!(names, ["portcullis-worker-0", "portcullis-worker-1"]);
    }

    #[test]
    fn dropping_the_last_clone_ends_the_workers_and_their_tasks() {
        let workers = Workers::start(NonZeroUsize::MIN).unwrap();
        let clone = workers.clone();
        let (held, released) = std::sync::mpsc::channel::<()>();
        // A task that never finishes by itself; dropping it drops `held`.
        clone.handles()[0].spawn(async move {
            let _held = held;
            std::future::pending::<()>().await;
        });
        drop(workers);
        assert_eq!(
            released.recv_timeout(std::time::Duration::from_millis(200)),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout),
            "a clone still holds the workers"
        );
        drop(clone);
        assert_eq!(
            released.recv_timeout(std::time::Duration::from_secs(5)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected),
            "the task outlived its worker"
        );
    }
}
