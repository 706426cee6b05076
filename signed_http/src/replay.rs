//! The replay cache: signatures seen within the skew window, bounded.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Signatures seen within the skew window (bounded; oldest forgotten first).
#[derive(Debug)]
pub struct ReplayCache {
    inner: Mutex<ReplayInner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct ReplayInner {
    seen: HashMap<u128, i64>,
    order: VecDeque<(u128, i64)>,
}

impl ReplayCache {
    /// A cache remembering at most `capacity` signatures.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(ReplayInner::default()),
            capacity: capacity.max(1),
        }
    }

    /// Records `signature`, valid until `expires` (unix seconds); false if it was seen already.
    pub fn check_and_insert(&self, signature: &[u8; 64], expires: i64, now: i64) -> bool {
        let mut id = [0u8; 16];
        id.copy_from_slice(&signature[..16]);
        let id = u128::from_le_bytes(id);
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(&(old, exp)) = inner.order.front() {
            if exp >= now && inner.order.len() < self.capacity {
                break;
            }
            inner.order.pop_front();
            if inner.seen.get(&old) == Some(&exp) {
                inner.seen.remove(&old);
            }
        }
        if inner.seen.contains_key(&id) {
            return false;
        }
        inner.seen.insert(id, expires);
        inner.order.push_back((id, expires));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_cache_refuses_repeats_and_stays_bounded() {
        let c = ReplayCache::new(3);
        let sig = |b: u8| [b; 64];
        assert!(c.check_and_insert(&sig(1), 100, 10));
        assert!(!c.check_and_insert(&sig(1), 100, 10));
        for b in 2..10 {
            assert!(c.check_and_insert(&sig(b), 100, 10));
        }
        let inner = c.inner.lock().unwrap();
        assert!(inner.seen.len() <= 3 && inner.order.len() <= 3);
    }

    #[test]
    fn expired_entries_are_dropped() {
        let c = ReplayCache::new(10);
        assert!(c.check_and_insert(&[1; 64], 5, 0));
        assert!(c.check_and_insert(&[2; 64], 50, 10));
        assert_eq!(c.inner.lock().unwrap().seen.len(), 1);
    }
}
