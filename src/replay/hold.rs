//! Held P-GETs, as a front-end holds them (docs/UCWA.md, "The events feed"): one per feed.
//! A newer P-GET on the same application's feed releases the one still held, which is then
//! answered `409 Conflict/PGetReplaced`, so a client that polls twice sees what a real server
//! would tell it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// The P-GETs being held, by feed (credential and events path).
#[derive(Debug, Default)]
pub(crate) struct Holds {
    held: Held,
    next: AtomicU64,
}

/// The held P-GETs' places, shared with each [`Hold`]: a hold outlives the borrow of the
/// replayer that made it (a request is decided when hyper hands it over, and waits later).
type Held = Arc<Mutex<HashMap<String, (u64, CancellationToken)>>>;

/// A P-GET's place on its feed; leaving it (drop) frees the feed.
#[derive(Debug)]
pub(crate) struct Hold {
    held: Held,
    feed: String,
    id: u64,
    /// Fires when a newer P-GET arrives on the same feed.
    pub replaced: CancellationToken,
}

impl Holds {
    /// A P-GET arrives on `feed`: the one held there (if any) is released, and this one
    /// takes its place.
    pub fn arrive(&self, feed: String) -> Hold {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let replaced = CancellationToken::new();
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, older)) = held.insert(feed.clone(), (id, replaced.clone())) {
            older.cancel();
        }
        drop(held);
        Hold {
            held: self.held.clone(),
            feed,
            id,
            replaced,
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.get(&self.feed).is_some_and(|(id, _)| *id == self.id) {
            held.remove(&self.feed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_pget_releases_the_older_and_only_on_its_own_feed() {
        let holds = Holds::default();
        let first = holds.arrive("app1".into());
        let other = holds.arrive("app2".into());
        let second = holds.arrive("app1".into());
        assert!(first.replaced.is_cancelled());
        assert!(!other.replaced.is_cancelled());
        drop(first); // leaving late does not free the newer one's place
        let third = holds.arrive("app1".into());
        assert!(second.replaced.is_cancelled());
        drop(third);
        assert!(holds.held.lock().unwrap().get("app1").is_none());
    }
}
