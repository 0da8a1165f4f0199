//! Graceful shutdown as a future: every listener waits on a clone of one [`Shutdown`], which
//! completes on SIGTERM or SIGINT, or when its [`ShutdownTrigger`] fires.

use std::future::Future;

use tokio::sync::watch;

use crate::ServeError;

/// Completes (for every clone) once shutdown has begun.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// Begins the shutdown of a [`Shutdown`] made by [`Shutdown::manual`].
#[derive(Debug, Clone)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    /// Begin shutting down.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    /// A shutdown that begins on SIGTERM or SIGINT, or when the returned trigger fires. The
    /// handlers are registered before this returns, so a signal sent right after the caller
    /// reports ready stops the server gracefully instead of killing it with the default action.
    /// Must be called inside a Tokio runtime.
    pub fn on_signals() -> Result<(ShutdownTrigger, Self), ServeError> {
        let (trigger, shutdown) = Self::manual();
        let handle = trigger.clone();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
            let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
            tokio::spawn(async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                tracing::info!("shutting down");
                trigger.trigger();
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            trigger.trigger();
        });
        Ok((handle, shutdown))
    }

    /// A shutdown that begins when the returned trigger fires (tests, embedding).
    pub fn manual() -> (ShutdownTrigger, Self) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Self(rx))
    }

    /// True once shutdown has begun.
    pub fn is_signalled(&self) -> bool {
        *self.0.borrow()
    }

    /// A future that completes once shutdown has begun (at once if it already has). Dropping every
    /// trigger without firing also completes it: nothing could stop the server otherwise.
    pub fn signalled(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|begun| *begun).await;
        }
    }
}

impl From<watch::Receiver<bool>> for Shutdown {
    fn from(rx: watch::Receiver<bool>) -> Self {
        Self(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn every_clone_completes_once_triggered() {
        let (trigger, shutdown) = Shutdown::manual();
        let a = shutdown.signalled();
        let b = shutdown.clone().signalled();
        assert!(!shutdown.is_signalled());
        let pending = tokio::time::timeout(Duration::from_millis(20), shutdown.signalled()).await;
        assert!(pending.is_err(), "not triggered yet");
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(1), async { tokio::join!(a, b) })
            .await
            .unwrap();
        assert!(shutdown.is_signalled());
        tokio::time::timeout(Duration::from_secs(1), shutdown.signalled())
            .await
            .expect("completes at once after the fact");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn sigterm_begins_shutdown() {
        let (_trigger, shutdown) = Shutdown::on_signals().unwrap();
        // Only this process receives it; the handler registered above turns it into a shutdown.
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(5), shutdown.signalled())
            .await
            .expect("SIGTERM triggers the shutdown");
    }
}
