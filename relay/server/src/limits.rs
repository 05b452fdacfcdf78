//! Rate limits that the ELT terms make real: at most one call per second per
//! vendor (a token bucket; excess is refused at once with a retry-after hint,
//! never queued) and at most five retries of the same report within a window.
//!
//! Pure bookkeeping on `tokio::time::Instant`, so tests run on paused time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket per key: `burst` tokens, refilled at `per_second`.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`; when none is left, how long until one is.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.per_second;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - *tokens) / self.per_second;
            Err(Duration::from_secs_f64(wait))
        }
    }
}

/// Counts attempts of the same item (e.g. a report id or content digest) within a
/// sliding window; the first attempt is not a retry, so `max_retries = 5` allows
/// six attempts and refuses the seventh.
pub struct RetryTracker {
    max_retries: u32,
    window: Duration,
    seen: Mutex<HashMap<String, Vec<Instant>>>,
}

impl RetryTracker {
    pub fn new(max_retries: u32, window: Duration) -> Self {
        Self {
            max_retries,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records an attempt for every key (any of which identifies the same item);
    /// refuses when one of them has had more than `max_retries` retries already.
    pub fn attempt(&self, keys: &[&str]) -> Result<u32, u32> {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, times| {
            times.retain(|t| now.saturating_duration_since(*t) < self.window);
            !times.is_empty()
        });
        let previous = keys
            .iter()
            .map(|k| seen.get(*k).map_or(0, Vec::len))
            .max()
            .unwrap_or(0) as u32;
        if previous > self.max_retries {
            return Err(previous - 1);
        }
        for k in keys {
            seen.entry((*k).to_owned()).or_default().push(now);
        }
        Ok(previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_call_per_second_is_allowed_and_the_excess_refused_with_a_hint() {
        let limiter = RateLimiter::new(1.0, 1);
        assert!(limiter.check("vendor").is_ok());
        let wait = limiter.check("vendor").unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
        assert!(limiter.check("other vendor").is_ok(), "buckets are per key");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(limiter.check("vendor").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_sixth_retry_is_refused_within_the_window() {
        let tracker = RetryTracker::new(5, Duration::from_secs(3600));
        for retry in 0..=5 {
            assert_eq!(tracker.attempt(&["report-1", "digest-1"]), Ok(retry));
        }
        assert!(tracker.attempt(&["report-1"]).is_err(), "6th retry");
        assert!(
            tracker.attempt(&["digest-1"]).is_err(),
            "same content, other id"
        );
        assert_eq!(tracker.attempt(&["report-2"]), Ok(0));
        tokio::time::advance(Duration::from_secs(3601)).await;
        assert_eq!(tracker.attempt(&["report-1"]), Ok(0), "window passed");
    }
}
