//! `sleep {ms}`: waits, then answers how long it slept — a job that takes time, for trying
//! deadlines, scaling and faults by hand and in tests.

use std::time::Duration;

use intercomm_core::{Context, RpcError};
use serde::{Deserialize, Serialize};

/// The longest sleep accepted (one minute).
pub const MAX_MS: u64 = 60_000;

/// Params of `sleep`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleepParams {
    /// Milliseconds to sleep, at most [`MAX_MS`].
    pub ms: u64,
}

/// Result of `sleep`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Slept {
    /// Milliseconds slept.
    pub slept_ms: u64,
}

/// Sleep `ms` milliseconds (the runtime cancels it at the job's deadline).
///
/// # Errors
/// -32602 when `ms` is over [`MAX_MS`].
pub async fn sleep(_context: Context, params: SleepParams) -> Result<Slept, RpcError> {
    if params.ms > MAX_MS {
        return Err(RpcError::invalid_params("/ms", format!("at most {MAX_MS}")));
    }
    tokio::time::sleep(Duration::from_millis(params.ms)).await;
    Ok(Slept {
        slept_ms: params.ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sleep answers how long it slept and refuses more than a minute.
    #[tokio::test]
    async fn sleep_answers_and_is_bounded() {
        let context = Context::for_test("sleep", None);
        let slept = sleep(context.clone(), SleepParams { ms: 1 })
            .await
            .expect("sleeps");
        assert_eq!(slept, Slept { slept_ms: 1 });
        let error = sleep(context, SleepParams { ms: MAX_MS + 1 })
            .await
            .expect_err("too long");
        assert_eq!(error.code, -32602);
    }
}
