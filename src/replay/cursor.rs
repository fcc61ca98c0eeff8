//! Per-key FIFO cursors: repeated identical requests get the recorded answers in recorded
//! order (a client polling a resource sees it change as it did), then the exhaustion policy.
//!
//! The cursors live behind the replayer's one mutex, which is never held across an await:
//! a pick is a few integer operations, so many clients at once stay consistent and fast.

use super::index::GroupId;
use super::options::Exhausted;

/// What the cursor of a group yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Serve this entry.
    Serve(usize),
    /// Every recorded answer was used and the policy is [`Exhausted::Error`].
    Exhausted { recorded: usize },
}

/// The position of every group's cursor.
#[derive(Debug, Clone, Default)]
pub struct Cursors {
    next: Vec<usize>,
}

impl Cursors {
    /// Cursors at the start of `groups` groups.
    pub fn new(groups: usize) -> Self {
        Cursors {
            next: vec![0; groups],
        }
    }

    /// Advance the cursor of `group`, whose entries are `entries` in recorded order.
    pub fn pick(&mut self, group: GroupId, entries: &[usize], policy: Exhausted) -> Pick {
        let Some(&last) = entries.last() else {
            return Pick::Exhausted { recorded: 0 };
        };
        let Some(pos) = self.next.get_mut(group) else {
            return Pick::Exhausted { recorded: 0 };
        };
        if let Some(&entry) = entries.get(*pos) {
            *pos += 1;
            return Pick::Serve(entry);
        }
        match policy {
            Exhausted::RepeatLast => Pick::Serve(last),
            Exhausted::Error => Pick::Exhausted {
                recorded: entries.len(),
            },
        }
    }

    /// What [`Cursors::pick`] would yield, without moving the cursor.
    pub fn peek(&self, group: GroupId, entries: &[usize], policy: Exhausted) -> Pick {
        let mut copy = Cursors {
            next: vec![self.next.get(group).copied().unwrap_or(0)],
        };
        copy.pick(0, entries, policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_then_policy() {
        let mut c = Cursors::new(2);
        let entries = [4, 7];
        assert_eq!(c.pick(0, &entries, Exhausted::RepeatLast), Pick::Serve(4));
        assert_eq!(c.pick(0, &entries, Exhausted::RepeatLast), Pick::Serve(7));
        assert_eq!(c.pick(0, &entries, Exhausted::RepeatLast), Pick::Serve(7));
        assert_eq!(
            c.pick(0, &entries, Exhausted::Error),
            Pick::Exhausted { recorded: 2 }
        );
        // Peeking does not move the cursor.
        let mut p = Cursors::new(1);
        assert_eq!(p.peek(0, &entries, Exhausted::Error), Pick::Serve(4));
        assert_eq!(p.pick(0, &entries, Exhausted::Error), Pick::Serve(4));
        // Groups are independent.
        assert_eq!(c.pick(1, &[9], Exhausted::Error), Pick::Serve(9));
    }
}
