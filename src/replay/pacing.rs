//! Waiting before an answer (`--pace`, held P-GETs, injected delays) without holding anything
//! else up: every wait is a plain timer on the request's own task, cut short when the server
//! shuts down (a graceful stop never waits for a 180 s long poll) or, for a held P-GET, when
//! a newer one on the same feed replaces it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    Elapsed,
    Shutdown,
    /// A newer P-GET on the same feed arrived.
    Replaced,
}

/// Sleep for `delay`, or less if `shutdown` (or `replaced`) fires.
pub async fn wait(
    delay: Duration,
    shutdown: &CancellationToken,
    replaced: Option<&CancellationToken>,
) -> Waited {
    if delay.is_zero() {
        return Waited::Elapsed;
    }
    let replaced = async {
        match replaced {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::time::sleep(delay) => Waited::Elapsed,
        _ = shutdown.cancelled() => Waited::Shutdown,
        _ = replaced => Waited::Replaced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_or_a_newer_pget_cuts_a_wait_short() {
        let token = CancellationToken::new();
        token.cancel();
        let start = std::time::Instant::now();
        assert_eq!(
            wait(Duration::from_secs(30), &token, None).await,
            Waited::Shutdown
        );
        let replaced = CancellationToken::new();
        replaced.cancel();
        assert_eq!(
            wait(
                Duration::from_secs(30),
                &CancellationToken::new(),
                Some(&replaced)
            )
            .await,
            Waited::Replaced
        );
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(
            wait(Duration::ZERO, &CancellationToken::new(), None).await,
            Waited::Elapsed
        );
    }
}
