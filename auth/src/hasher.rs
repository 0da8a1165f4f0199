//! The bounded hashing pool: password verifications run on blocking threads, a bounded number at
//! once, so a login flood cannot stall cookie checks or exhaust memory (argon2 takes 64 MiB each).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::AuthError;
use crate::users::Digest;

/// Runs password verifications on blocking threads, at most `slots` at once.
#[derive(Debug)]
pub struct Hasher {
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    started: AtomicU64,
}

impl Hasher {
    /// A pool of `slots` (at least one) that refuses a verification that waited `queue_timeout`.
    pub fn new(slots: usize, queue_timeout: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            queue_timeout,
            started: AtomicU64::new(0),
        }
    }

    /// Check `password` against `digest`. A verification thread that dies counts as a mismatch.
    pub async fn verify(&self, digest: Digest, password: String) -> Result<bool, AuthError> {
        let permit = tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| AuthError::Overloaded)?
            .map_err(|_| AuthError::Overloaded)?;
        self.started.fetch_add(1, Ordering::Relaxed);
        let result = tokio::task::spawn_blocking(move || {
            let ok = digest.verify(&password);
            drop(permit);
            ok
        })
        .await;
        Ok(result.unwrap_or(false))
    }

    /// Verifications that got a slot since the pool was made.
    pub fn verifications(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::tests::ARGON2ID;

    #[tokio::test]
    async fn verifies_and_refuses_when_every_slot_stays_busy() {
        let hasher = Hasher::new(1, Duration::from_millis(1));
        let digest = Digest::parse(ARGON2ID).unwrap();
        let (a, b) = tokio::join!(
            hasher.verify(digest.clone(), "password".into()),
            hasher.verify(digest.clone(), "password".into())
        );
        // One verification holds the only slot far longer than the 1 ms queue timeout.
        let results = [a, b];
        assert!(results.iter().any(|r| matches!(r, Ok(true))), "{results:?}");
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(AuthError::Overloaded))),
            "{results:?}"
        );
        let roomy = Hasher::new(2, Duration::from_secs(30));
        assert!(!roomy.verify(digest, "wrong".into()).await.unwrap());
    }
}
