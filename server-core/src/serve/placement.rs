//! Which connection worker serves a new connection.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;

/// The open connections of each worker (one slot when serving on the caller's runtime), so
/// that a new connection is served by the worker with the fewest. Whichever worker wins the
/// accept keeps the connection unless another has fewer open: a few keep-alive connections from
/// one reverse proxy then spread over the cores instead of landing on the one that happened to
/// be awake, and a connection-per-check client, whose connections are mostly accepted by the
/// idle worker, is rarely moved.
#[derive(Debug)]
pub(super) struct Placement {
    workers: Vec<Handle>,
    open: Box<[AtomicUsize]>,
}

impl Placement {
    pub(super) fn new(workers: Vec<Handle>) -> Self {
        let slots = workers.len().max(1);
        Self {
            workers,
            open: (0..slots).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// The worker to serve a connection accepted by worker `accepted_by`: the first with the
    /// fewest open connections, or `accepted_by` itself when none has fewer than it.
    pub(super) fn choose(&self, accepted_by: usize) -> usize {
        let count = |worker: usize| self.open[worker].load(Ordering::Relaxed);
        let mut chosen = accepted_by;
        let mut fewest = count(accepted_by);
        for worker in 0..self.open.len() {
            let open = count(worker);
            if open < fewest {
                chosen = worker;
                fewest = open;
            }
        }
        chosen
    }

    /// Worker `worker` has one more open connection.
    pub(super) fn opened(&self, worker: usize) {
        self.open[worker].fetch_add(1, Ordering::Relaxed);
    }

    /// One of worker `worker`'s connections has ended.
    pub(super) fn closed(&self, worker: usize) {
        self.open[worker].fetch_sub(1, Ordering::Relaxed);
    }

    /// Worker `worker`'s runtime; none when serving on the caller's runtime.
    pub(super) fn worker(&self, worker: usize) -> Option<&Handle> {
        self.workers.get(worker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three slots (the runtime handles are not needed to count).
    fn counting(open: [usize; 3]) -> Placement {
        let placement = Placement::new(Vec::new());
        let placement = Placement {
            open: (0..3).map(|_| AtomicUsize::new(0)).collect(),
            ..placement
        };
        for (worker, n) in open.into_iter().enumerate() {
            for _ in 0..n {
                placement.opened(worker);
            }
        }
        placement
    }

    #[test]
    fn the_accepting_worker_keeps_a_connection_unless_another_has_fewer() {
        assert_eq!(counting([0, 0, 0]).choose(1), 1);
        assert_eq!(counting([2, 2, 2]).choose(2), 2);
        assert_eq!(counting([1, 0, 0]).choose(0), 1, "the first of the fewest");
        assert_eq!(counting([3, 2, 1]).choose(0), 2);
        assert_eq!(counting([1, 2, 1]).choose(1), 0);
        assert_eq!(counting([0, 5, 0]).choose(2), 2, "a tie keeps it");
    }

    #[test]
    fn closed_connections_are_counted_out() {
        let placement = counting([1, 1, 0]);
        assert_eq!(placement.choose(0), 2);
        placement.opened(2);
        placement.opened(2);
        assert_eq!(placement.choose(2), 0);
        placement.closed(0);
        placement.closed(1);
        assert_eq!(placement.choose(2), 0);
        assert_eq!(placement.choose(1), 1);
    }

    #[test]
    fn on_the_callers_runtime_there_is_one_slot_and_no_worker() {
        let placement = Placement::new(Vec::new());
        placement.opened(0);
        assert_eq!(placement.choose(0), 0);
        assert!(placement.worker(0).is_none());
    }
}
