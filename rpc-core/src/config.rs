//! Settings shared by clients and workers, with documented defaults and `INTERCOMM_*` overrides.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::topology::QueueType;

/// The broker URL used when `AMQP_URL` is not set.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Jobs a worker process takes from the broker (and runs) at once.
pub const DEFAULT_PREFETCH: u16 = 64;
/// Deliveries after which a job is dead-lettered with -32003.
pub const DEFAULT_DELIVERY_LIMIT: u32 = 5;
/// How long a stopping worker lets in-flight jobs finish.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(30);
/// The deadline of a call when the caller names none.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings for the broker connection and the worker runtime.
///
/// | setting | environment | default |
/// |---|---|---|
/// | `amqp_url` | `AMQP_URL` (or `INTERCOMM_AMQP_URL`) | `amqp://guest:guest@127.0.0.1:5672/%2f` |
/// | `prefetch` | `INTERCOMM_PREFETCH` | 64 |
/// | `queue_type` | `INTERCOMM_QUEUE_TYPE` (`quorum`/`classic`) | `quorum` |
/// | `delivery_limit` | `INTERCOMM_DELIVERY_LIMIT` | 5 |
/// | `grace_period` | `INTERCOMM_GRACE_PERIOD` (e.g. `30s`) | 30 s |
/// | `call_timeout` | `INTERCOMM_CALL_TIMEOUT` (e.g. `30s`) | 30 s |
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The broker URL; the password in it is never logged (see [`Settings::redacted_url`]).
    pub amqp_url: String,
    /// Jobs a worker process takes at once, which is also how many run concurrently.
    pub prefetch: u16,
    /// The type of worker queues this process declares.
    pub queue_type: QueueType,
    /// Deliveries after which a job is dead-lettered with -32003 (quorum queues count them).
    pub delivery_limit: u32,
    /// How long a stopping worker lets in-flight jobs finish before giving them back.
    pub grace_period: Duration,
    /// The default deadline of a call.
    pub call_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            amqp_url: DEFAULT_AMQP_URL.to_owned(),
            prefetch: DEFAULT_PREFETCH,
            queue_type: QueueType::Quorum,
            delivery_limit: DEFAULT_DELIVERY_LIMIT,
            grace_period: DEFAULT_GRACE_PERIOD,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }
}

impl Settings {
    /// Defaults overridden by the process environment.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] naming the variable whose value cannot be used.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Defaults overridden by whatever `lookup` returns for each variable name (testable).
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] naming the variable whose value cannot be used.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut settings = Self::default();
        if let Some(url) = lookup("INTERCOMM_AMQP_URL").or_else(|| lookup("AMQP_URL")) {
            settings.amqp_url = url;
        }
        if let Some(value) = lookup("INTERCOMM_PREFETCH") {
            settings.prefetch = parse_number("INTERCOMM_PREFETCH", &value)?;
            if settings.prefetch == 0 {
                return Err(invalid("INTERCOMM_PREFETCH", "must be at least 1"));
            }
        }
        if let Some(value) = lookup("INTERCOMM_QUEUE_TYPE") {
            settings.queue_type = value
                .parse()
                .map_err(|reason| invalid("INTERCOMM_QUEUE_TYPE", reason))?;
        }
        if let Some(value) = lookup("INTERCOMM_DELIVERY_LIMIT") {
            settings.delivery_limit = parse_number("INTERCOMM_DELIVERY_LIMIT", &value)?;
            if settings.delivery_limit == 0 {
                return Err(invalid("INTERCOMM_DELIVERY_LIMIT", "must be at least 1"));
            }
        }
        if let Some(value) = lookup("INTERCOMM_GRACE_PERIOD") {
            settings.grace_period = parse_duration("INTERCOMM_GRACE_PERIOD", &value)?;
        }
        if let Some(value) = lookup("INTERCOMM_CALL_TIMEOUT") {
            settings.call_timeout = parse_duration("INTERCOMM_CALL_TIMEOUT", &value)?;
        }
        Ok(settings)
    }

    /// The broker URL with any password replaced by `***`, for logs.
    #[must_use]
    pub fn redacted_url(&self) -> String {
        redact_url(&self.amqp_url)
    }
}

/// `url` with the password (if any) replaced by `***`.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Parse a duration such as `5s`, `250ms` or `1m 30s`.
///
/// # Errors
/// [`Error::InvalidSetting`] naming `name`.
pub fn parse_duration(name: &'static str, value: &str) -> Result<Duration> {
    humantime::parse_duration(value.trim()).map_err(|error| invalid(name, error.to_string()))
}

fn parse_number<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|error: T::Err| invalid(name, format!("`{value}`: {error}")))
}

fn invalid(name: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidSetting {
        name,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let settings = Settings::from_lookup(|_| None).expect("defaults are valid");
        assert_eq!(settings, Settings::default());
        assert_eq!(settings.prefetch, 64);
        assert_eq!(settings.queue_type, QueueType::Quorum);
    }

    #[test]
    fn environment_overrides_each_setting() {
        let settings = Settings::from_lookup(|name| {
            Some(
                match name {
                    "AMQP_URL" => "amqp://a:b@host:5672/%2f",
                    "INTERCOMM_PREFETCH" => "8",
                    "INTERCOMM_QUEUE_TYPE" => "classic",
                    "INTERCOMM_DELIVERY_LIMIT" => "3",
                    "INTERCOMM_GRACE_PERIOD" => "2s",
                    "INTERCOMM_CALL_TIMEOUT" => "250ms",
                    _ => return None,
                }
                .to_owned(),
            )
        })
        .expect("valid overrides");
        assert_eq!(settings.amqp_url, "amqp://a:b@host:5672/%2f");
        assert_eq!(settings.prefetch, 8);
        assert_eq!(settings.queue_type, QueueType::Classic);
        assert_eq!(settings.delivery_limit, 3);
        assert_eq!(settings.grace_period, Duration::from_secs(2));
        assert_eq!(settings.call_timeout, Duration::from_millis(250));
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let error =
            Settings::from_lookup(|name| (name == "INTERCOMM_PREFETCH").then(|| "many".to_owned()))
                .expect_err("`many` is not a number");
        assert!(error.to_string().contains("INTERCOMM_PREFETCH"), "{error}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact_url("amqp://127.0.0.1"), "amqp://127.0.0.1");
    }
}
