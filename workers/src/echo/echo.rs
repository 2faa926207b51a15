//! `echo`: returns its params as they came (raw JSON, never re-shaped).

use intercomm_core::{Context, RpcError};
use serde_json::value::RawValue;

/// Answer the params unchanged.
///
/// # Errors
/// Never; the signature is that of every handler.
pub async fn echo(_context: Context, params: Box<RawValue>) -> Result<Box<RawValue>, RpcError> {
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Echo answers nested params unchanged.
    #[tokio::test]
    async fn echo_returns_its_params() {
        let params = RawValue::from_string(r#"{"a":{"b":[1,2]}}"#.to_owned()).expect("valid JSON");
        let result = echo(Context::for_test("echo", None), params)
            .await
            .expect("echo never fails");
        assert_eq!(result.get(), r#"{"a":{"b":[1,2]}}"#);
    }
}
