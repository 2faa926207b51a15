//! The per-subject rate limit: a token bucket per authenticated subject (governor's keyed
//! GCRA), so one client cannot starve the others; over the limit is 429 with `Retry-After`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::ApiError;

/// Requests per second a subject may make by default.
pub const DEFAULT_PER_SECOND: u32 = 200;
/// Requests a subject may make in a burst by default.
pub const DEFAULT_BURST: u32 = 400;
/// Subjects tracked before idle ones are forgotten.
const PRUNE_ABOVE: usize = 10_000;

type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// Cheap to clone; `None` inside means no limit.
#[derive(Clone)]
pub struct SubjectLimiter(Option<Arc<Keyed>>);

impl std::fmt::Debug for SubjectLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "SubjectLimiter(on)"
        } else {
            "SubjectLimiter(off)"
        })
    }
}

impl SubjectLimiter {
    /// `per_second` sustained with bursts of `burst`; 0 turns the limit off.
    #[must_use]
    pub fn new(per_second: u32, burst: u32) -> Self {
        let Some(rate) = NonZeroU32::new(per_second) else {
            return Self(None);
        };
        let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
        Self(Some(Arc::new(RateLimiter::keyed(
            Quota::per_second(rate).allow_burst(burst),
        ))))
    }

    /// Count one request of `subject`.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`] with how long to wait.
    pub fn check(&self, subject: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        if limiter.len() > PRUNE_ABOVE {
            // Forget subjects whose bucket is full again: they cost memory and nothing else.
            limiter.retain_recent();
        }
        limiter.check_key(&subject.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited {
                retry_after_secs: wait.max(Duration::from_secs(1)).as_secs(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A subject over its burst is refused with a retry time; another subject is not affected.
    #[test]
    fn each_subject_has_its_own_bucket() {
        let limiter = SubjectLimiter::new(1, 3);
        for _ in 0..3 {
            limiter.check("alice").expect("within the burst");
        }
        let refused = limiter.check("alice").expect_err("over the burst");
        assert!(
            matches!(refused, ApiError::RateLimited { retry_after_secs } if retry_after_secs >= 1)
        );
        limiter.check("bob").expect("bob has his own bucket");
    }

    /// A rate of 0 turns the limit off.
    #[test]
    fn zero_means_unlimited() {
        let limiter = SubjectLimiter::new(0, 0);
        for _ in 0..10_000 {
            limiter.check("alice").expect("no limit");
        }
    }
}
