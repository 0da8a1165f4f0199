//! Joining the two halves of an upgraded (WebSocket) connection.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::{ProxyError, Upstream};

/// Spawns the task that waits for both connections to be handed over (the client's once the
/// `101` response has been written to it) and then copies bytes both ways until either side
/// closes.
///
/// # Errors
///
/// [`ProxyError::Upgrade`] when called outside a Tokio runtime.
pub(crate) fn join(
    client: OnUpgrade,
    upstream: OnUpgrade,
    label: Upstream,
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
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((to_upstream, to_client)) => {
                tracing::debug!(upstream = %label, to_upstream, to_client, "upgraded connection closed");
            }
            Err(error) => {
                tracing::debug!(upstream = %label, %error, "upgraded connection failed");
            }
        }
    });
    Ok(())
}
