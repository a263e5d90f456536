//! Exponential backoff with jitter, for every client that reconnects (node → relay, node →
//! friend, node → index, index → index). Pure: the delay is a function of the attempt number
//! and a caller-supplied RNG, so it is tested without sleeping.
//!
//! Delay of attempt `n` (0-based): `d = min(max, initial · 2ⁿ)`, then drawn uniformly from
//! `[d/2, d]` ("equal jitter"): a herd of clients that lost the same server spreads out, and no
//! client waits less than half the nominal delay.

use std::time::Duration;

use rand_core::RngCore;

/// First retry delay by default: short, so a friend link comes back within a second after a
/// brief outage (the original used a fixed 8-tick wait).
pub const DEFAULT_INITIAL_DELAY: Duration = Duration::from_millis(100);

/// Longest delay by default: a server that is down for hours costs a client one attempt per
/// minute.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(60);

/// Exponent beyond which doubling cannot matter (2^32 × any sane initial delay exceeds any
/// max delay); keeps the arithmetic in range.
const MAX_EXPONENT: u32 = 32;

/// The shape of a backoff: initial and maximal delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Nominal delay before the first retry.
    pub initial: Duration,
    /// Cap of the nominal delay.
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial: DEFAULT_INITIAL_DELAY,
            max: DEFAULT_MAX_DELAY,
        }
    }
}

impl BackoffPolicy {
    /// The nominal (un-jittered) delay before retry number `attempt` (0-based).
    pub fn nominal_delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.min(MAX_EXPONENT - 1);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay before retry number `attempt`, jittered uniformly into `[d/2, d]` with `rng`.
    pub fn delay(&self, attempt: u32, rng: &mut dyn RngCore) -> Duration {
        let nominal = self.nominal_delay(attempt);
        let nanos = u64::try_from(nominal.as_nanos()).unwrap_or(u64::MAX);
        let half = nanos / 2;
        let jitter = match (nanos - half).checked_add(1) {
            Some(range) => rng.next_u64() % range,
            None => rng.next_u64(),
        };
        Duration::from_nanos(half.saturating_add(jitter))
    }
}

/// A backoff in progress: counts failed attempts since the last success.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    policy: BackoffPolicy,
    attempt: u32,
}

impl Backoff {
    /// A fresh backoff with `policy`.
    pub fn new(policy: BackoffPolicy) -> Backoff {
        Backoff { policy, attempt: 0 }
    }

    /// Records a failure and returns how long to wait before the next attempt.
    pub fn next_delay(&mut self, rng: &mut dyn RngCore) -> Duration {
        let delay = self.policy.delay(self.attempt, rng);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    /// Failures since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Records a success: the next failure waits the initial delay again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn nominal_delay_doubles_up_to_the_cap() {
        let policy = BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let delays: Vec<_> = (0..6).map(|n| policy.nominal_delay(n)).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1000, 1000].map(Duration::from_millis)
        );
        assert_eq!(policy.nominal_delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jittered_delay_stays_between_half_and_full_nominal() {
        let policy = BackoffPolicy::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for attempt in 0..40 {
            let nominal = policy.nominal_delay(attempt);
            for _ in 0..50 {
                let delay = policy.delay(attempt, &mut rng);
                assert!(
                    delay >= nominal / 2 && delay <= nominal,
                    "{delay:?} vs {nominal:?}"
                );
            }
        }
    }

    #[test]
    fn jitter_spreads_clients_apart() {
        let policy = BackoffPolicy::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let delays: std::collections::HashSet<_> =
            (0..20).map(|_| policy.delay(5, &mut rng)).collect();
        assert!(delays.len() > 15);
    }

    #[test]
    fn backoff_grows_with_failures_and_resets_on_success() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut backoff = Backoff::new(BackoffPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_secs(10),
        });
        let first = backoff.next_delay(&mut rng);
        assert!(first <= Duration::from_millis(10));
        for _ in 0..5 {
            backoff.next_delay(&mut rng);
        }
        assert_eq!(backoff.attempts(), 6);
        assert!(backoff.next_delay(&mut rng) >= Duration::from_millis(320));
        backoff.reset();
        assert!(backoff.next_delay(&mut rng) <= Duration::from_millis(10));
    }
}
