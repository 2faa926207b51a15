//! Bearer tokens verified recently, so a client that sends the same token with every request
//! pays for its signature check and claim parsing once, not per request.
//!
//! Why: in `bench rpc` the JWT check (base64, two JSON parses, HMAC) was the largest single item
//! of the gateway's own CPU per request. What keeps it safe: the key is the *whole* token, so a
//! hit is a byte-identical token that already passed every check; the only check whose answer
//! changes with time, expiry, is made again on every hit (with the same leeway). Nothing a token
//! can say lets it into the cache without a full verification first.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::auth::Claims;

/// Tokens remembered at most; when full the cache starts over (hot tokens come back after one
/// more full check each), which bounds memory without bookkeeping per hit.
pub const CAPACITY: usize = 4096;
/// Longer tokens are not remembered, so the cache stays under about 10 MiB at worst.
pub const MAX_CACHED_TOKEN_BYTES: usize = 2048;

/// Verified tokens and their claims.
#[derive(Default)]
pub struct TokenCache {
    verified: Mutex<HashMap<Box<str>, Verified>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens themselves: they are credentials.
        let remembered = self.verified.lock().map_or(0, |verified| verified.len());
        f.debug_struct("TokenCache")
            .field("remembered", &remembered)
            .finish()
    }
}

struct Verified {
    claims: Claims,
    /// The last second (Unix time) at which the token still passes the expiry check:
    /// `exp + leeway`.
    valid_through: u64,
}

impl TokenCache {
    /// The claims of `token` if it was verified before and is not expired at `now` (Unix
    /// seconds); an expired entry is dropped, so the full check reports the expiry.
    pub fn get(&self, token: &str, now: u64) -> Option<Claims> {
        let mut verified = self.verified.lock().ok()?;
        let entry = verified.get(token)?;
        if now <= entry.valid_through {
            return Some(entry.claims.clone());
        }
        verified.remove(token);
        None
    }

    /// Remember that `token` passed every check with `claims`, valid through `exp + leeway`.
    pub fn insert(&self, token: &str, claims: &Claims, leeway_secs: u64) {
        if token.len() > MAX_CACHED_TOKEN_BYTES {
            return;
        }
        let Ok(mut verified) = self.verified.lock() else {
            return;
        };
        if verified.len() >= CAPACITY {
            verified.clear();
        }
        verified.insert(
            token.into(),
            Verified {
                claims: claims.clone(),
                valid_through: claims.exp.saturating_add(leeway_secs),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "user_1".to_owned(),
            exp,
            iat: None,
            nbf: None,
            iss: None,
            aud: None,
        }
    }

    #[test]
    fn a_hit_is_checked_for_expiry_with_the_leeway() {
        let cache = TokenCache::default();
        cache.insert("t", &claims(1_000), 30);
        assert_eq!(cache.get("t", 1_000).map(|c| c.sub), Some("user_1".into()));
        assert!(cache.get("t", 1_030).is_some(), "within the leeway");
        assert!(cache.get("t", 1_031).is_none(), "past exp + leeway");
        assert!(
            format!("{cache:?}").contains("remembered: 0"),
            "the expired entry is gone"
        );
    }

    #[test]
    fn only_the_identical_token_hits() {
        let cache = TokenCache::default();
        cache.insert("header.payload.signature", &claims(1_000), 0);
        assert!(cache.get("header.payload.signaturf", 10).is_none());
        assert!(cache.get("header.payload.signature", 10).is_some());
    }

    #[test]
    fn memory_stays_bounded() {
        let cache = TokenCache::default();
        for i in 0..CAPACITY + 10 {
            cache.insert(&format!("token-{i}"), &claims(1_000), 0);
        }
        let remembered = cache.verified.lock().map_or(usize::MAX, |v| v.len());
        assert!(remembered <= CAPACITY, "{remembered}");
        cache.insert(&"x".repeat(MAX_CACHED_TOKEN_BYTES + 1), &claims(1_000), 0);
        assert!(
            cache
                .get(&"x".repeat(MAX_CACHED_TOKEN_BYTES + 1), 10)
                .is_none()
        );
    }
}
