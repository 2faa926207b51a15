//! The gateway's settings: defaults, then `INTERCOMM_*` environment variables, then flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use intercomm_core::Settings;
use intercomm_core::config::parse_duration;

use crate::auth::AuthSettings;
use crate::jobs::{DEFAULT_MAX_JOBS, DEFAULT_RETENTION};

/// Where the gateway listens by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The largest request body by default (2 MiB: a 1 MiB buffer is 1.4 MiB as base64 JSON).
pub const DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// A job's deadline when its schema names none.
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `Prefer: wait` / `?wait=` honoured.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);
/// The longest any request may take.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Everything the gateway is configured with.
///
/// | setting | environment | default |
/// |---|---|---|
/// | `listen` | `INTERCOMM_LISTEN` | `127.0.0.1:8080` |
/// | `schemas_dir` | `INTERCOMM_SCHEMAS` | `schemas` |
/// | `body_limit` | `INTERCOMM_BODY_LIMIT` (bytes) | 2 MiB |
/// | `max_jobs` | `INTERCOMM_MAX_JOBS` | 100 000 |
/// | `retention` | `INTERCOMM_JOB_RETENTION` | `1h` |
/// | `job_timeout` | `INTERCOMM_JOB_TIMEOUT` | `30s` (a schema's `timeout_ms` wins) |
/// | `max_wait` | `INTERCOMM_MAX_WAIT` | `60s` |
/// | `request_timeout` | `INTERCOMM_REQUEST_TIMEOUT` | `120s` |
/// | `instance_id` | `INTERCOMM_INSTANCE_ID` | random (callback queue `rpc_callback_<id>`) |
/// | `job_store` | `INTERCOMM_JOB_STORE` | in memory (`redis://host:6379` to share jobs) |
/// | `job_store_prefix` | `INTERCOMM_JOB_STORE_PREFIX` | `intercomm` |
/// | `rate_per_second` | `INTERCOMM_RATE_LIMIT` | 200 requests/s per subject (0: off) |
/// | `rate_burst` | `INTERCOMM_RATE_BURST` | 400 |
/// | `dev_mode` | none (set by `intercomm up` when it made the secret) | `false` |
///
/// plus the broker settings of [`Settings`] and the token settings of [`AuthSettings`].
#[derive(Clone, Debug)]
pub struct GatewaySettings {
    /// Broker and runtime settings.
    pub core: Settings,
    /// Token verification.
    pub auth: AuthSettings,
    /// The listening address.
    pub listen: SocketAddr,
    /// The `schemas/` directory.
    pub schemas_dir: PathBuf,
    /// The largest request body, in bytes.
    pub body_limit: usize,
    /// Jobs kept in the in-memory store.
    pub max_jobs: usize,
    /// How long jobs stay readable.
    pub retention: Duration,
    /// A job's deadline when its schema names none.
    pub job_timeout: Duration,
    /// The longest wait honoured for `Prefer: wait` and `?wait=`.
    pub max_wait: Duration,
    /// The longest any request may take.
    pub request_timeout: Duration,
    /// A stable instance id (names the callback queue); random when `None`.
    pub instance_id: Option<String>,
    /// `redis://…` for a job store shared by several gateways; `None` keeps jobs in memory.
    pub job_store: Option<String>,
    /// The prefix of the shared store's keys (gateways sharing jobs use the same one).
    pub job_store_prefix: String,
    /// Requests per second per subject (0: no limit).
    pub rate_per_second: u32,
    /// Burst per subject.
    pub rate_burst: u32,
    /// Development mode: `POST /console/dev-token` mints HS256 tokens for any subject. Only
    /// `intercomm up` turns it on, and only when it generated the signing secret itself; there
    /// is deliberately no environment variable for it.
    pub dev_mode: bool,
}

impl GatewaySettings {
    /// Defaults with the given broker and token settings.
    #[must_use]
    pub fn new(core: Settings, auth: AuthSettings) -> Self {
        Self {
            core,
            auth,
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
            schemas_dir: PathBuf::from("schemas"),
            body_limit: DEFAULT_BODY_LIMIT,
            max_jobs: DEFAULT_MAX_JOBS,
            retention: DEFAULT_RETENTION,
            job_timeout: DEFAULT_JOB_TIMEOUT,
            max_wait: DEFAULT_MAX_WAIT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            instance_id: None,
            job_store: None,
            job_store_prefix: "intercomm".to_owned(),
            rate_per_second: crate::ratelimit::DEFAULT_PER_SECOND,
            rate_burst: crate::ratelimit::DEFAULT_BURST,
            dev_mode: false,
        }
    }

    /// Defaults overridden by the process environment.
    ///
    /// # Errors
    /// A variable whose value cannot be used, named in the message.
    pub fn from_env() -> anyhow::Result<Self> {
        let lookup = |name: &str| std::env::var(name).ok();
        let mut settings = Self::new(Settings::from_env()?, AuthSettings::from_env()?);
        if let Some(value) = lookup("INTERCOMM_LISTEN") {
            settings.listen = value
                .parse()
                .map_err(|e| anyhow::anyhow!("INTERCOMM_LISTEN=`{value}`: {e}"))?;
        }
        if let Some(value) = lookup("INTERCOMM_SCHEMAS") {
            settings.schemas_dir = PathBuf::from(value);
        }
        if let Some(value) = lookup("INTERCOMM_BODY_LIMIT") {
            settings.body_limit = value
                .parse()
                .map_err(|e| anyhow::anyhow!("INTERCOMM_BODY_LIMIT=`{value}`: {e}"))?;
        }
        if let Some(value) = lookup("INTERCOMM_MAX_JOBS") {
            settings.max_jobs = value
                .parse()
                .map_err(|e| anyhow::anyhow!("INTERCOMM_MAX_JOBS=`{value}`: {e}"))?;
        }
        if let Some(value) = lookup("INTERCOMM_JOB_RETENTION") {
            settings.retention = parse_duration("INTERCOMM_JOB_RETENTION", &value)?;
        }
        if let Some(value) = lookup("INTERCOMM_JOB_TIMEOUT") {
            settings.job_timeout = parse_duration("INTERCOMM_JOB_TIMEOUT", &value)?;
        }
        if let Some(value) = lookup("INTERCOMM_MAX_WAIT") {
            settings.max_wait = parse_duration("INTERCOMM_MAX_WAIT", &value)?;
        }
        if let Some(value) = lookup("INTERCOMM_REQUEST_TIMEOUT") {
            settings.request_timeout = parse_duration("INTERCOMM_REQUEST_TIMEOUT", &value)?;
        }
        settings.instance_id = lookup("INTERCOMM_INSTANCE_ID").filter(|id| !id.is_empty());
        settings.job_store =
            lookup("INTERCOMM_JOB_STORE").filter(|url| !url.is_empty() && url != "memory");
        if let Some(prefix) = lookup("INTERCOMM_JOB_STORE_PREFIX").filter(|p| !p.is_empty()) {
            settings.job_store_prefix = prefix;
        }
        if let Some(value) = lookup("INTERCOMM_RATE_LIMIT") {
            settings.rate_per_second = value
                .parse()
                .map_err(|e| anyhow::anyhow!("INTERCOMM_RATE_LIMIT=`{value}`: {e}"))?;
        }
        if let Some(value) = lookup("INTERCOMM_RATE_BURST") {
            settings.rate_burst = value
                .parse()
                .map_err(|e| anyhow::anyhow!("INTERCOMM_RATE_BURST=`{value}`: {e}"))?;
        }
        Ok(settings)
    }
}
