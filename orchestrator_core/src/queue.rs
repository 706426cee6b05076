//! The reconcile work queue: one entry per key, earliest deadline wins, never
//! two reconciles of one key at once, bounded concurrency, and per-key
//! exponential back-off with jitter that resets on success.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::Hash;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// Back-off of failed reconciles.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Backoff {
    /// The delay after `failures` consecutive failures (≥ 1), with ±25 % jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        let raw = self.base.saturating_mul(1u32 << exp).min(self.max);
        let jitter = rand::thread_rng().gen_range(0.75..1.25);
        raw.mul_f64(jitter).min(self.max)
    }
}

/// A de-duplicating delay queue keyed by `K`.
#[derive(Debug)]
pub struct WorkQueue<K: Copy + Eq + Hash + Ord> {
    /// Authoritative deadline of each queued key.
    pending: HashMap<K, Instant>,
    /// Deadlines in order; entries whose deadline no longer matches `pending` are stale.
    heap: BinaryHeap<Reverse<(Instant, K)>>,
    /// Keys being reconciled now.
    in_flight: HashSet<K>,
    /// Requests that arrived while their key was in flight (earliest deadline).
    deferred: HashMap<K, Instant>,
    /// Consecutive failures per key.
    failures: HashMap<K, u32>,
    backoff: Backoff,
    max_in_flight: usize,
}

impl<K: Copy + Eq + Hash + Ord> WorkQueue<K> {
    /// An empty queue running at most `max_in_flight` keys at once.
    pub fn new(max_in_flight: usize, backoff: Backoff) -> Self {
        Self {
            pending: HashMap::new(),
            heap: BinaryHeap::new(),
            in_flight: HashSet::new(),
            deferred: HashMap::new(),
            failures: HashMap::new(),
            backoff,
            max_in_flight: max_in_flight.max(1),
        }
    }

    /// Asks for `key` to be reconciled at `at` (or earlier if already asked).
    pub fn schedule(&mut self, key: K, at: Instant) {
        if self.in_flight.contains(&key) {
            let e = self.deferred.entry(key).or_insert(at);
            *e = (*e).min(at);
            return;
        }
        match self.pending.get(&key) {
            Some(existing) if *existing <= at => {}
            _ => {
                self.pending.insert(key, at);
                self.heap.push(Reverse((at, key)));
            }
        }
    }

    /// Asks for `key` now.
    pub fn schedule_now(&mut self, key: K) {
        self.schedule(key, Instant::now());
    }

    fn drop_stale(&mut self) {
        while let Some(Reverse((at, key))) = self.heap.peek() {
            if self.pending.get(key) == Some(at) {
                break;
            }
            self.heap.pop();
        }
    }

    /// When the next queued key falls due, if any (ignores the concurrency bound).
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.drop_stale();
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes a key that is due at `now`, if the concurrency bound allows; marks it in flight.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        if self.in_flight.len() >= self.max_in_flight {
            return None;
        }
        self.drop_stale();
        let Reverse((at, key)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        self.pending.remove(&key);
        self.in_flight.insert(key);
        Some(key)
    }

    /// Whether more keys may start now.
    pub fn has_capacity(&self) -> bool {
        self.in_flight.len() < self.max_in_flight
    }

    /// Records the end of a reconcile of `key`: on success the back-off resets and
    /// `requeue` (if any) schedules the next run; on failure the key is retried
    /// after the back-off. A request deferred while it ran is honoured either way.
    pub fn complete(&mut self, key: K, outcome: Result<Option<Duration>, ()>) {
        self.in_flight.remove(&key);
        let now = Instant::now();
        match outcome {
            Ok(requeue) => {
                self.failures.remove(&key);
                if let Some(after) = requeue {
                    self.schedule(key, now + after);
                }
            }
            Err(()) => {
                let n = self.failures.entry(key).or_insert(0);
                *n = n.saturating_add(1);
                let delay = self.backoff.delay(*n);
                self.schedule(key, now + delay);
            }
        }
        if let Some(at) = self.deferred.remove(&key) {
            self.schedule(key, at);
        }
    }

    /// Records a failed reconcile of `key`: its failure count grows, and
    /// `policy` chooses from that count when to retry (`None`: only when
    /// asked again). A request deferred while it ran is honoured either way.
    pub fn fail_with(&mut self, key: K, policy: impl FnOnce(u32) -> Option<Duration>) {
        self.in_flight.remove(&key);
        let n = self.failures.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        if let Some(delay) = policy(*n) {
            self.schedule(key, Instant::now() + delay);
        }
        if let Some(at) = self.deferred.remove(&key) {
            self.schedule(key, at);
        }
    }

    /// Consecutive failures of `key`.
    pub fn failures(&self, key: &K) -> u32 {
        self.failures.get(key).copied().unwrap_or(0)
    }

    /// Keys queued (not in flight).
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no key is queued (some may be in flight).
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether nothing is queued or running.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.in_flight.is_empty() && self.deferred.is_empty()
    }

    /// Forgets a key's failure count (when its object is gone).
    pub fn forget(&mut self, key: &K) {
        self.failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(max: usize) -> WorkQueue<u32> {
        WorkQueue::new(
            max,
            Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(10),
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn duplicates_collapse_and_the_earliest_deadline_wins() {
        let mut w = q(4);
        let now = Instant::now();
        w.schedule(1, now + Duration::from_secs(5));
        w.schedule(1, now + Duration::from_secs(1));
        w.schedule(1, now + Duration::from_secs(3));
        assert_eq!(w.len(), 1);
        assert_eq!(w.next_deadline(), Some(now + Duration::from_secs(1)));
        assert_eq!(w.pop_due(now), None);
        assert_eq!(w.pop_due(now + Duration::from_secs(1)), Some(1));
        assert_eq!(
            w.pop_due(now + Duration::from_secs(9)),
            None,
            "stale entries are skipped"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_never_runs_twice_at_once_and_deferred_requests_run_after() {
        let mut w = q(4);
        let now = Instant::now();
        w.schedule(7, now);
        assert_eq!(w.pop_due(now), Some(7));
        w.schedule(7, now);
        assert_eq!(w.pop_due(now), None, "7 is in flight");
        w.complete(7, Ok(None));
        assert_eq!(w.pop_due(Instant::now()), Some(7));
        w.complete(7, Ok(None));
        assert!(w.is_idle());
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded() {
        let mut w = q(2);
        let now = Instant::now();
        for k in 0..5 {
            w.schedule(k, now);
        }
        assert!(w.pop_due(now).is_some());
        assert!(w.pop_due(now).is_some());
        assert_eq!(w.pop_due(now), None);
        assert!(!w.has_capacity());
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially_and_reset_on_success() {
        let mut w = q(1);
        let mut delays = Vec::new();
        for _ in 0..4 {
            let start = Instant::now();
            w.schedule(1, start);
            assert_eq!(w.pop_due(start), Some(1));
            w.complete(1, Err(()));
            delays.push(w.next_deadline().unwrap() - start);
            let due = w.next_deadline().unwrap();
            tokio::time::advance(due - Instant::now()).await;
            assert_eq!(w.pop_due(Instant::now()), Some(1));
            w.complete(1, Ok(None));
            // The success reset the count; fail again to keep growing it.
            w.failures.insert(1, delays.len() as u32);
        }
        for pair in delays.windows(2) {
            assert!(pair[1] > pair[0], "delays grow: {delays:?}");
        }
        assert!(delays[0] >= Duration::from_millis(75) && delays[0] <= Duration::from_millis(125));
        w.complete(1, Ok(None));
        assert_eq!(w.failures(&1), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_policy_chooses_the_retry_delay_from_the_failure_count_which_resets_on_success() {
        let mut w = q(1);
        let mut seen = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            w.schedule(1, start);
            assert_eq!(w.pop_due(start), Some(1));
            w.fail_with(1, |n| {
                seen.push(n);
                Some(Duration::from_secs(u64::from(n) * 7))
            });
            let due = w.next_deadline().unwrap();
            assert_eq!(due - start, Duration::from_secs(7 * seen.len() as u64));
            tokio::time::advance(due - start).await;
        }
        assert_eq!(seen, [1, 2, 3]);
        assert_eq!(w.pop_due(Instant::now()), Some(1));
        w.complete(1, Ok(None));
        assert_eq!(w.failures(&1), 0);
        assert!(w.is_idle());

        // A policy that waits for a change leaves nothing queued, but a
        // request that came in meanwhile still runs.
        w.schedule(2, Instant::now());
        assert_eq!(w.pop_due(Instant::now()), Some(2));
        w.fail_with(2, |_| None);
        assert!(w.is_idle());
        w.schedule(2, Instant::now());
        assert_eq!(w.pop_due(Instant::now()), Some(2));
        w.schedule(2, Instant::now());
        w.fail_with(2, |_| None);
        assert_eq!(w.failures(&2), 2);
        assert_eq!(w.pop_due(Instant::now()), Some(2), "the deferred request");
    }

    #[test]
    fn backoff_is_capped() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        assert!(b.delay(50) <= Duration::from_secs(2));
        assert!(b.delay(1) >= Duration::from_millis(75));
    }
}
