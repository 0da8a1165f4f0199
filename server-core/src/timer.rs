//! hyper's header-read timeout, armed once per connection instead of once per request.
//!
//! hyper starts a new header-read deadline for every request head it waits for and drops it as
//! soon as the head has arrived. With hyper-util's `TokioTimer` each of those is a boxed tokio
//! sleep: a timer-wheel insert (under the wheel's lock) and a removal, per request, on every
//! keep-alive connection. A connection's deadlines only ever move later, so [`ConnectionTimer`]
//! keeps one tokio sleep per connection, registered at the earliest deadline it was asked for:
//! when that registration fires, the head being waited for checks its own deadline and, when
//! it is still ahead, moves the registration there. The timeout is as exact as tokio's, and the
//! timer wheel is touched about once per timeout period per connection (BENCHMARKS.md, issue 16).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};

/// The registration a connection's deadlines share.
type Registration = Arc<Mutex<Option<Pin<Box<tokio::time::Sleep>>>>>;

/// A [`Timer`] for one connection's hyper `http1` builder: hyper waits on one deadline at a
/// time (the current request head's), and every deadline it creates shares one tokio sleep.
#[derive(Debug, Clone, Default)]
pub struct ConnectionTimer {
    registration: Registration,
}

impl ConnectionTimer {
    /// A timer with nothing registered yet.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Timer for ConnectionTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(Deadline {
            deadline: tokio::time::Instant::from_std(deadline),
            registration: Arc::clone(&self.registration),
        })
    }

    /// tokio's clock, as `TokioTimer`'s, so that a runtime with paused time (tests) is obeyed.
    fn now(&self) -> Instant {
        crate::clock::runtime_instant()
    }
}

/// One deadline; ready once tokio's clock has reached it.
struct Deadline {
    deadline: tokio::time::Instant,
    registration: Registration,
}

impl Sleep for Deadline {}

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        // Only this connection's task takes the lock, so it is never contended; a poisoned lock
        // still holds a valid sleep.
        let mut slot = self
            .registration
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let sleep = match &mut *slot {
            Some(sleep) => {
                if sleep.deadline() > deadline {
                    sleep.as_mut().reset(deadline);
                }
                sleep
            }
            None => slot.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        // The registration is never later than this deadline here. Fired at this deadline: ready.
        // Fired at an earlier one (an earlier request's): move it here and wait again, which
        // registers the waker (or is ready at once when this deadline has passed too).
        loop {
            match sleep.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if sleep.deadline() >= deadline => return Poll::Ready(()),
                Poll::Ready(()) => sleep.as_mut().reset(deadline),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls `deadline` once without waiting.
    fn poll_now(deadline: &mut Pin<Box<dyn Sleep>>) -> Poll<()> {
        let waker = std::task::Waker::noop();
        deadline.as_mut().poll(&mut Context::from_waker(waker))
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_is_ready_at_its_time_and_not_before() {
        let timer = ConnectionTimer::new();
        let start = crate::clock::runtime_instant();
        timer.sleep(Duration::from_secs(5)).await;
        assert_eq!(
            crate::clock::runtime_instant() - start,
            Duration::from_secs(5)
        );

        let mut pending = timer.sleep(Duration::from_secs(5));
        tokio::time::advance(Duration::from_millis(4999)).await;
        assert!(poll_now(&mut pending).is_pending());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(poll_now(&mut pending).is_ready());
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_deadline_outlives_the_registration_an_earlier_one_left() {
        let timer = ConnectionTimer::new();
        let start = crate::clock::runtime_instant();
        // The first request's head arrives after 1 s; its deadline (5 s) stays registered.
        let mut first = timer.sleep(Duration::from_secs(5));
        assert!(poll_now(&mut first).is_pending());
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(first);
        // The second head's deadline is 6 s: the registration fires at 5 s and must not end it.
        timer.sleep(Duration::from_secs(5)).await;
        assert_eq!(
            crate::clock::runtime_instant() - start,
            Duration::from_secs(6)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_moves_the_registration_forward() {
        let timer = ConnectionTimer::new();
        let start = crate::clock::runtime_instant();
        let mut late = timer.sleep(Duration::from_secs(30));
        assert!(poll_now(&mut late).is_pending());
        drop(late);
        timer.sleep(Duration::from_secs(2)).await;
        assert_eq!(
            crate::clock::runtime_instant() - start,
            Duration::from_secs(2)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn many_deadlines_on_one_connection_each_end_at_their_own_time() {
        let timer = ConnectionTimer::new();
        for _ in 0..50 {
            let mut head = timer.sleep(Duration::from_secs(5));
            assert!(poll_now(&mut head).is_pending());
            tokio::time::advance(Duration::from_millis(700)).await;
            assert!(poll_now(&mut head).is_pending());
        }
        let start = crate::clock::runtime_instant();
        timer.sleep(Duration::from_secs(5)).await;
        assert_eq!(
            crate::clock::runtime_instant() - start,
            Duration::from_secs(5)
        );
    }
}
