//! Per-client rate limits: a token bucket per key, in a bounded map. Pure: time is an argument.

use std::collections::HashMap;
use std::hash::Hash;

/// A token-bucket limit: up to `burst` events at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size: the largest burst allowed after a quiet period.
    pub burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated_ms: u64,
}

/// Token buckets keyed by client. When the map is full, buckets that have refilled completely
/// (idle clients) are dropped first; if none has, the new client is refused until one does,
/// so a flood of fresh identities cannot grow memory or starve known clients.
#[derive(Debug)]
pub struct RateLimiter<K> {
    limit: RateLimit,
    buckets: HashMap<K, Bucket>,
    max_clients: usize,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// A limiter tracking at most `max_clients` keys.
    pub fn new(limit: RateLimit, max_clients: usize) -> RateLimiter<K> {
        RateLimiter {
            limit,
            buckets: HashMap::new(),
            max_clients,
        }
    }

    /// Whether `key` may do one more thing at `now_ms`; takes a token if so.
    pub fn allow(&mut self, key: &K, now_ms: u64) -> bool {
        let limit = self.limit;
        let refill = |bucket: &Bucket| {
            let elapsed = now_ms.saturating_sub(bucket.updated_ms) as f64 / 1_000.0;
            (bucket.tokens + elapsed * limit.per_second).min(limit.burst)
        };
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.max_clients {
            self.buckets
                .retain(|_, bucket| refill(bucket) < limit.burst);
            if self.buckets.len() >= self.max_clients {
                return false;
            }
        }
        let bucket = self.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: limit.burst,
            updated_ms: now_ms,
        });
        bucket.tokens = refill(bucket);
        bucket.updated_ms = now_ms;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Keys currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_rate_holds() {
        let mut limiter = RateLimiter::new(
            RateLimit {
                per_second: 10.0,
                burst: 5.0,
            },
            10,
        );
        let allowed = (0..20).filter(|_| limiter.allow(&1u8, 0)).count();
        assert_eq!(allowed, 5);
        assert!(!limiter.allow(&1, 50));
        assert!(limiter.allow(&1, 100));
        // Another client is unaffected.
        assert!(limiter.allow(&2, 100));
    }

    #[test]
    fn the_map_stays_bounded_and_idle_clients_make_room() {
        let limit = RateLimit {
            per_second: 1.0,
            burst: 2.0,
        };
        let mut limiter = RateLimiter::new(limit, 3);
        for key in 0..3u32 {
            assert!(limiter.allow(&key, 0));
        }
        assert!(!limiter.allow(&99, 0));
        assert_eq!(limiter.tracked(), 3);
        assert!(limiter.allow(&99, 10_000));
        assert!(limiter.tracked() <= 3);
    }
}
