//! Joining the two halves of an upgraded (WebSocket) connection, with an idle limit
//! (docs/reference/security.md R9.3).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{ProxyError, Upstream};

/// A stream that counts the reads and writes that moved bytes, so a watcher can tell an idle
/// connection from a busy one without reading a clock.
struct Counted<T> {
    inner: T,
    activity: Arc<AtomicU64>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Resolves when `activity` has not moved during one whole `idle` period.
async fn idle_for(activity: &AtomicU64, idle: Duration) {
    let mut seen = activity.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(idle).await;
        let now = activity.load(Ordering::Relaxed);
        if now == seen {
            return;
        }
        seen = now;
    }
}

/// Spawns the task that waits for both connections to be handed over (the client's once the
/// `101` response has been written to it) and then copies bytes both ways until either side
/// closes, or until no byte has moved either way for an `idle` period (checked every `idle`, so a
/// connection ends between one and two periods after its last byte).
///
/// # Errors
///
/// [`ProxyError::Upgrade`] when called outside a Tokio runtime.
pub(crate) fn join(
    client: OnUpgrade,
    upstream: OnUpgrade,
    label: Upstream,
    idle: Duration,
) -> Result<(), ProxyError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| ProxyError::Upgrade {
        reason: "no Tokio runtime to carry the upgraded connection".to_owned(),
    })?;
    runtime.spawn(async move {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(both) => both,
            Err(error) => {
                tracing::debug!(upstream = %label, %error, "upgrade not completed");
                return;
            }
        };
        let activity = Arc::new(AtomicU64::new(0));
        let mut client = Counted {
            inner: TokioIo::new(client),
            activity: activity.clone(),
        };
        let mut upstream = Counted {
            inner: TokioIo::new(upstream),
            activity: activity.clone(),
        };
        tokio::select! {
            copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => match copied {
                Ok((to_upstream, to_client)) => {
                    tracing::debug!(upstream = %label, to_upstream, to_client, "upgraded connection closed");
                }
                Err(error) => {
                    tracing::debug!(upstream = %label, %error, "upgraded connection failed");
                }
            },
            () = idle_for(&activity, idle) => {
                tracing::debug!(upstream = %label, idle_seconds = idle.as_secs(), "upgraded connection idle: closed");
            }
        }
    });
    Ok(())
}
