//! A token bucket: the per-connection byte rate limit of tunnels. Pure: the caller passes the
//! time.

use std::time::Duration;

use tokio::time::Instant;

/// Bytes flow at `rate` per second on average, with bursts up to `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`. `rate` must be positive (0 means "no limit": don't build one).
    pub fn new(bytes_per_second: u64, burst_bytes: u64, now: Instant) -> TokenBucket {
        let burst = burst_bytes.max(1) as f64;
        TokenBucket {
            rate: bytes_per_second.max(1) as f64,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes `bytes` from the bucket and returns how long the caller must wait before
    /// sending them (zero while the bucket covers them).
    pub fn take(&mut self, bytes: usize, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst) - bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_passes_then_rate_applies() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1000, 500, start);
        assert_eq!(bucket.take(500, start), Duration::ZERO);
        assert_eq!(bucket.take(100, start), Duration::from_millis(100));
        // After the wait the debt is paid; one more second refills 500 (the burst cap).
        let later = start + Duration::from_millis(1100);
        assert_eq!(bucket.take(500, later), Duration::ZERO);
    }

    #[test]
    fn long_run_average_is_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1_000_000, 1000, start);
        let mut now = start;
        for _ in 0..1000 {
            now += bucket.take(10_000, now);
        }
        let seconds = now.duration_since(start).as_secs_f64();
        assert!((9.9..10.1).contains(&seconds), "{seconds}");
    }
}
