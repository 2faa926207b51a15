//! Validated param fields shared by the seed workers' methods (user ids, topics, ids, page
//! sizes) and the timestamps they answer with.
//!
//! Each type checks its value while params decode, so a bad value is answered -32602 with the
//! JSON Pointer of the field (by `decode_params`), the same rule the method's schema states for
//! the gateway. Workers check again because trusted internal callers reach them without the
//! gateway.

use serde::Deserialize;

/// The pattern of user ids, as the schemas state it.
pub const USER_ID_PATTERN: &str = "^[A-Za-z0-9_.@-]{1,64}$";

/// The pattern of topic names, as the schemas state it.
pub const TOPIC_PATTERN: &str = "^[a-z0-9][a-z0-9_.-]{0,127}$";

/// A user id: 1 to 64 characters of `A-Z a-z 0-9 _ . @ -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct UserId(String);

impl UserId {
    /// The id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id, owned.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let valid = (1..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'));
        if valid {
            Ok(Self(value))
        } else {
            Err("a user id is 1 to 64 characters of A-Z a-z 0-9 _ . @ -".to_owned())
        }
    }
}

/// A topic name: `[a-z0-9][a-z0-9_.-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Topic(String);

impl Topic {
    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, owned.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for Topic {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let bytes = value.as_bytes();
        let lower_or_digit = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let valid = (1..=128).contains(&bytes.len())
            && bytes.first().is_some_and(lower_or_digit)
            && bytes
                .iter()
                .all(|b| lower_or_digit(b) || matches!(b, b'_' | b'.' | b'-'));
        if valid {
            Ok(Self(value))
        } else {
            Err(
                "a topic is 1 to 128 characters of a-z 0-9 _ . -, starting with a letter or digit"
                    .to_owned(),
            )
        }
    }
}

/// A UUID in any of the usual spellings, kept in the canonical lower-case hyphenated form the
/// store uses (so `A1B2…` finds what was stored as `a1b2…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Id(String);

impl Id {
    /// The canonical form.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Id {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        uuid::Uuid::parse_str(&value)
            .map(|id| Self(id.hyphenated().to_string()))
            .map_err(|_| "not a UUID (e.g. 0190a0c2-7b1e-7c3a-9f00-5d2c8e1b4a77)".to_owned())
    }
}

/// A page size: 1 to [`Limit::MAX`], default [`Limit::DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct Limit(u32);

impl Limit {
    /// The largest page.
    pub const MAX: u32 = 100;
    /// The page size when none is asked for.
    pub const DEFAULT: u32 = 20;

    /// The size.
    #[must_use]
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

impl TryFrom<i64> for Limit {
    type Error = String;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        match u32::try_from(value) {
            Ok(size) if (1..=Self::MAX).contains(&size) => Ok(Self(size)),
            _ => Err(format!(
                "limit is between 1 and {} (default {})",
                Self::MAX,
                Self::DEFAULT
            )),
        }
    }
}

/// Milliseconds since the Unix epoch, now.
#[must_use]
pub fn now_ms() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

/// RFC 3339 in UTC with milliseconds, e.g. `2025-03-01T12:00:05.042Z`.
#[must_use]
pub fn rfc3339(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// User ids accept the documented alphabet and length and nothing else.
    #[test]
    fn user_ids_follow_the_pattern() {
        for good in ["u", "user_1", "ann.lee@example.com", "A-Z", &"x".repeat(64)] {
            assert!(UserId::try_from(good.to_owned()).is_ok(), "{good}");
        }
        for bad in ["", "has space", "ümlaut", "a/b", &"x".repeat(65)] {
            assert!(UserId::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    /// Topics accept `[a-z0-9][a-z0-9_.-]{0,127}` and nothing else.
    #[test]
    fn topics_follow_the_pattern() {
        for good in ["news", "0day", "a.b-c_d", &"t".repeat(128)] {
            assert!(Topic::try_from(good.to_owned()).is_ok(), "{good}");
        }
        for bad in ["", "News", ".hidden", "-x", "a b", "a/b", &"t".repeat(129)] {
            assert!(Topic::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    /// UUIDs are kept lower-case hyphenated, whatever spelling came in.
    #[test]
    fn ids_are_canonical() {
        let id = Id::try_from("0190A0C2-7B1E-7C3A-9F00-5D2C8E1B4A77".to_owned()).expect("a UUID");
        assert_eq!(id.as_str(), "0190a0c2-7b1e-7c3a-9f00-5d2c8e1b4a77");
        assert!(Id::try_from("X9J0UI76GBWQTF".to_owned()).is_err());
    }

    /// Limits are 1..=100.
    #[test]
    fn limits_are_bounded() {
        assert_eq!(Limit::default().get(), 20);
        assert_eq!(Limit::try_from(1).map(Limit::get), Ok(1));
        assert_eq!(Limit::try_from(100).map(Limit::get), Ok(100));
        for bad in [0, -1, 101, i64::MAX] {
            assert!(Limit::try_from(bad).is_err(), "{bad}");
        }
    }

    /// Timestamps are RFC 3339 UTC with exactly three fraction digits.
    #[test]
    fn timestamps_are_rfc3339_utc_millis() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_740_830_405_042), "2025-03-01T12:00:05.042Z");
        let now = rfc3339(now_ms());
        assert!(
            time::OffsetDateTime::parse(&now, &time::format_description::well_known::Rfc3339)
                .is_ok(),
            "{now}"
        );
    }
}
