//! Waiting before an answer (`--pace`, held P-GETs) without holding anything else up: every
//! wait is a plain timer on the request's own task, cut short when the server shuts down so
//! that a graceful stop never waits for a 180 s long poll.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Sleep for `delay`, or less if `shutdown` fires. Returns true when the full delay passed.
pub async fn wait(delay: Duration, shutdown: &CancellationToken) -> bool {
    if delay.is_zero() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = shutdown.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_cuts_a_wait_short() {
        let token = CancellationToken::new();
        token.cancel();
        let start = std::time::Instant::now();
        assert!(!wait(Duration::from_secs(30), &token).await);
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(wait(Duration::ZERO, &CancellationToken::new()).await);
    }
}
