//! Limits failed authentication attempts per account and per peer address.
//!
//! After `max_failures` failures within `window`, further attempts for that
//! key are refused without checking the secret (so a correct guess after the
//! limit does not help), until old failures leave the window.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::Duration,
};

use tokio::time::Instant;

/// Keys kept at most; beyond this the oldest-looking entries are pruned so a
/// flood of distinct usernames cannot exhaust memory.
const MAX_KEYS: usize = 100_000;

/// A sliding-window failure counter.
pub struct FailureLimiter {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl FailureLimiter {
    /// At most `max_failures` within `window` per key.
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` when `key` is over its limit.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(key) {
            Some(times) => self.within(times, now),
            None => Ok(()),
        }
    }

    /// Drops the failures that left the window; `Err(retry_after)` when the
    /// rest fill the limit.
    fn within(&self, times: &mut VecDeque<Instant>, now: Instant) -> Result<(), Duration> {
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() >= self.max_failures {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(self.window.saturating_sub(now.duration_since(oldest)));
        }
        Ok(())
    }

    /// Records a failure for `key`.
    pub fn record_failure(&self, key: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        self.push(&mut map, key, now);
    }

    fn push(&self, map: &mut HashMap<String, VecDeque<Instant>>, key: &str, now: Instant) {
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            let window = self.window;
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        let times = map.entry(key.to_owned()).or_default();
        times.push_back(now);
        while times.len() > self.max_failures {
            times.pop_front();
        }
    }

    /// Counts an attempt for `key` before its secret is checked, so that
    /// concurrent guesses cannot all pass the limit: `Err(retry_after)` (and
    /// nothing counted) when it is over. One lock for the check and the count.
    pub fn attempt(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(times) = map.get_mut(key) {
            self.within(times, now)?;
        }
        self.push(&mut map, key, now);
        Ok(())
    }

    /// Takes back the latest attempt counted for `key` (it succeeded).
    pub fn forgive(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(times) = map.get_mut(key) {
            times.pop_back();
        }
    }

    /// Forgets the failures of `key` (after a successful login).
    pub fn reset(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// Refused logins, summarised for the audit log: one entry per key (grant,
/// reason and peer) per window, carrying how many refusals it stands for, so
/// that a flood of refused logins adds a bounded number of entries.
pub struct RefusalDigest {
    window: Duration,
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl RefusalDigest {
    /// One entry per key per `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// A refusal for `key`: `Some(n)` when an entry is written now, standing
    /// for this refusal and the `n - 1` counted since the key's last entry;
    /// `None` when it is counted into the key's next entry.
    pub fn note(&self, key: &str) -> Option<u64> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_KEYS && !seen.contains_key(key) {
            let window = self.window;
            seen.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        match seen.get_mut(key) {
            Some((start, unlogged)) if now.duration_since(*start) < self.window => {
                *unlogged += 1;
                None
            }
            Some((start, unlogged)) => {
                let n = *unlogged + 1;
                (*start, *unlogged) = (now, 0);
                Some(n)
            }
            None => {
                seen.insert(key.to_owned(), (now, 0));
                Some(1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn refusals_are_summarised_once_per_key_and_window() {
        let digest = RefusalDigest::new(Duration::from_secs(60));
        assert_eq!(digest.note("peer:a"), Some(1));
        for _ in 0..999 {
            assert_eq!(digest.note("peer:a"), None);
        }
        assert_eq!(digest.note("peer:b"), Some(1), "other keys are unaffected");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(
            digest.note("peer:a"),
            Some(1000),
            "the window's count, with this one"
        );
        assert_eq!(digest.note("peer:a"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_is_counted_before_it_is_checked() {
        let limiter = FailureLimiter::new(2, Duration::from_secs(60));
        assert!(limiter.attempt("alice").is_ok());
        assert!(limiter.attempt("alice").is_ok());
        assert!(
            limiter.attempt("alice").is_err(),
            "two attempts in flight fill the limit"
        );
        limiter.forgive("alice");
        assert!(limiter.attempt("alice").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn locks_after_the_limit_and_recovers_after_the_window() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.check("alice").is_ok());
            limiter.record_failure("alice");
        }
        let retry = limiter.check("alice").expect_err("locked");
        assert_eq!(retry, Duration::from_secs(60));
        assert!(limiter.check("bob").is_ok(), "other keys are unaffected");

        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(
            limiter.check("alice").expect_err("still locked"),
            Duration::from_secs(30)
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(limiter.check("alice").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn reset_clears() {
        let limiter = FailureLimiter::new(1, Duration::from_secs(60));
        limiter.record_failure("k");
        assert!(limiter.check("k").is_err());
        limiter.reset("k");
        assert!(limiter.check("k").is_ok());
    }
}
