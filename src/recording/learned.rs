//! What the classifier learned from a session's links: which rel points at which path, in
//! memory that stays bounded however long the session.
//!
//! A long session never runs out of new paths (each message, each conversation has hrefs of
//! its own), and an entry costs about 220 bytes: a flat cap of 200 000 let record grow by
//! 44 MB, and once reached it stopped learning, so the newest links, the ones a client
//! follows next, were the ones left out. So entries live in two generations: new ones go
//! into the newer, and when it is full it becomes the older and the older is forgotten. A
//! path looked up or linked again in the older generation moves to the newer, so the
//! resources a session keeps using stay known; one forgotten is classified by its path
//! shape, as one never linked is.

use hashbrown::HashMap;

/// Entries per generation: at most twice this many are held (about 7 MB).
const GENERATION: usize = 16_384;

/// Normalised path → (rel, learned only from the resource's own `rel`).
#[derive(Debug)]
pub(super) struct Learned {
    newer: HashMap<String, (String, bool)>,
    older: HashMap<String, (String, bool)>,
    generation: usize,
}

impl Default for Learned {
    fn default() -> Self {
        Learned::with_generation(GENERATION)
    }
}

impl Learned {
    fn with_generation(generation: usize) -> Self {
        Learned {
            newer: HashMap::new(),
            older: HashMap::new(),
            generation,
        }
    }

    /// The rel learned for `path`, if it is still known.
    pub(super) fn get(&mut self, path: &str) -> Option<&str> {
        if !self.newer.contains_key(path) {
            // A path never learned costs two lookups here, not three (the client's path).
            let (path, entry) = self.older.remove_entry(path)?;
            self.insert(path, entry);
        }
        self.newer.get(path).map(|(rel, _)| rel.as_str())
    }

    /// A link (or, `weak`, a resource's own rel) names `path`. The first rel that pointed at
    /// a path wins; a resource's own rel only fills gaps until a link names the path.
    pub(super) fn learn(&mut self, path: String, rel: String, weak: bool) {
        self.promote(&path);
        match self.newer.get_mut(&path) {
            Some(known) if known.1 && !weak => *known = (rel, false),
            Some(_) => {}
            None => self.insert(path, (rel, weak)),
        }
    }

    /// Move `path` from the older generation to the newer, if it is there.
    fn promote(&mut self, path: &str) {
        if !self.newer.contains_key(path)
            && let Some((path, entry)) = self.older.remove_entry(path)
        {
            self.insert(path, entry);
        }
    }

    fn insert(&mut self, path: String, entry: (String, bool)) {
        if self.newer.len() >= self.generation {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(path, entry);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.newer.len() + self.older.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(n: usize) -> String {
        format!(
            "/ucwa/oauth/v1/applications/1/communication/conversations/c/messaging/messages/{n}"
        )
    }

    #[test]
    fn at_most_two_generations_are_held_and_the_latest_is_whole() {
        let mut learned = Learned::with_generation(100);
        for n in 0..1_000 {
            learned.learn(path(n), "message".into(), false);
            assert!(learned.len() <= 200, "{}", learned.len());
        }
        assert!((900..1_000).all(|n| learned.get(&path(n)) == Some("message")));
        assert_eq!(learned.get(&path(0)), None, "the oldest is forgotten");
    }

    #[test]
    fn a_path_in_use_outlives_the_generations() {
        let mut learned = Learned::with_generation(10);
        learned.learn("/me".into(), "me".into(), false);
        for n in 0..1_000 {
            learned.learn(path(n), "message".into(), false);
            if n % 9 == 0 {
                assert_eq!(learned.get("/me"), Some("me"), "after {n}");
            }
        }
        // Linked again rather than looked up: kept the same way, with its first rel.
        let mut learned = Learned::with_generation(10);
        learned.learn("/c".into(), "conversation".into(), false);
        for n in 0..1_000 {
            learned.learn(path(n), "message".into(), false);
            if n % 9 == 0 {
                learned.learn("/c".into(), "other".into(), false);
            }
        }
        assert_eq!(learned.get("/c"), Some("conversation"));
    }

    #[test]
    fn a_link_replaces_a_resources_own_rel_in_either_generation() {
        let mut learned = Learned::with_generation(2);
        learned.learn("/a".into(), "weak".into(), true);
        learned.learn("/b".into(), "strong".into(), false);
        learned.learn("/x".into(), "x".into(), false); // /a and /b are now older
        learned.learn("/a".into(), "link".into(), false);
        learned.learn("/b".into(), "own".into(), true);
        assert_eq!(learned.get("/a"), Some("link"));
        assert_eq!(learned.get("/b"), Some("strong"));
        // A weak rel stays weak across a promotion: a link still replaces it.
        learned.learn("/w".into(), "weak".into(), true);
        learned.learn("/y".into(), "y".into(), false);
        learned.learn("/z".into(), "z".into(), false);
        assert_eq!(learned.get("/w"), Some("weak"));
        learned.learn("/w".into(), "link".into(), false);
        assert_eq!(learned.get("/w"), Some("link"));
        // Once a link named it, the first link wins.
        learned.learn("/w".into(), "later".into(), false);
        assert_eq!(learned.get("/w"), Some("link"));
    }
}
