//! Job handlers: the [`Context`] a job runs with, and the adapter that turns a typed
//! `async fn(Context, Params) -> Result<T, RpcError>` into something the worker can dispatch.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::protocol::{Outcome, RpcError};

/// What a handler knows about the job it runs.
#[derive(Clone, Debug)]
pub struct Context {
    pub(crate) worker: Arc<str>,
    pub(crate) method: String,
    pub(crate) job_id: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) deadline: Option<SystemTime>,
    pub(crate) traceparent: Option<String>,
    pub(crate) delivery_count: u32,
}

impl Context {
    /// A context for calling a handler directly (unit tests of handlers).
    #[must_use]
    pub fn for_test(method: &str, user: Option<&str>) -> Self {
        Self {
            worker: Arc::from("test"),
            method: method.to_owned(),
            job_id: Some("test-job".to_owned()),
            user: user.map(str::to_owned),
            deadline: None,
            traceparent: None,
            delivery_count: 0,
        }
    }

    /// The worker running the job.
    #[must_use]
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// The method called.
    #[must_use]
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request id (`None` for a notification).
    #[must_use]
    pub fn job_id(&self) -> Option<&str> {
        self.job_id.as_deref()
    }

    /// The subject the gateway verified (`x-intercomm-user`); `None` for trusted internal callers.
    #[must_use]
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// When the job must be finished; the runtime cancels the handler then.
    #[must_use]
    pub fn deadline(&self) -> Option<SystemTime> {
        self.deadline
    }

    /// The W3C `traceparent` the job came with.
    #[must_use]
    pub fn traceparent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }

    /// How often this job was delivered before (quorum queues), e.g. after a worker crash.
    #[must_use]
    pub fn delivery_count(&self) -> u32 {
        self.delivery_count
    }
}

/// A boxed future of a handler's outcome.
pub type BoxOutcome = Pin<Box<dyn Future<Output = Outcome> + Send + 'static>>;

/// A method implementation the worker can dispatch to, params still raw.
pub trait Handler: Send + Sync + 'static {
    /// Decode `params` and start the job. Decoding happens before the future is returned, so the
    /// raw params may borrow from the delivery.
    fn call(&self, context: Context, params: Option<&RawValue>) -> BoxOutcome;
}

/// Adapts a typed async function into a [`Handler`].
pub(crate) struct TypedHandler<F, P, T> {
    function: F,
    _types: std::marker::PhantomData<fn(P) -> T>,
}

impl<F, P, T> TypedHandler<F, P, T> {
    pub(crate) fn new(function: F) -> Self {
        Self {
            function,
            _types: std::marker::PhantomData,
        }
    }
}

impl<F, Fut, P, T> Handler for TypedHandler<F, P, T>
where
    F: Fn(Context, P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, RpcError>> + Send + 'static,
    P: DeserializeOwned + 'static,
    T: Serialize + 'static,
{
    fn call(&self, context: Context, params: Option<&RawValue>) -> BoxOutcome {
        let params = match decode_params::<P>(params) {
            Ok(params) => params,
            Err(error) => return Box::pin(std::future::ready(Err(error))),
        };
        let future = (self.function)(context, params);
        Box::pin(async move {
            let value = future.await?;
            serde_json::value::to_raw_value(&value).map_err(|error| {
                RpcError::internal(format!("result could not be encoded: {error}"))
            })
        })
    }
}

/// Decode params into `P`; absent params decode as `{}`. Errors are -32602 with a JSON Pointer
/// to where decoding failed.
///
/// # Errors
/// [`RpcError`] -32602 saying where and why.
pub fn decode_params<P: DeserializeOwned>(params: Option<&RawValue>) -> Result<P, RpcError> {
    let text = params.map_or("{}", RawValue::get);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let pointer = json_pointer(error.path());
        RpcError::invalid_params(pointer, error.inner().to_string())
    })
}

/// Turn serde_path_to_error's path (`a.b[0].c`) into a JSON Pointer (`/a/b/0/c`).
fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        pointer.push('/');
        match segment {
            Segment::Seq { index } => pointer.push_str(&index.to_string()),
            Segment::Map { key } => pointer.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Segment::Enum { variant } => pointer.push_str(variant),
            Segment::Unknown => pointer.push('?'),
        }
    }
    pointer
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Send {
        sender: String,
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        count: u32,
    }

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).expect("valid JSON")
    }

    #[test]
    fn decoding_failure_names_where_it_failed() {
        let params = raw(r#"{"sender": "a", "items": [{"count": 1}, {"count": "two"}]}"#);
        let error = decode_params::<Send>(Some(&params)).expect_err("count is not a number");
        assert_eq!(error.code, -32602);
        let data = error.data.expect("data says where");
        assert_eq!(data["pointer"], "/items/1/count");
        assert!(
            data["message"]
                .as_str()
                .is_some_and(|m| m.contains("invalid type")),
            "{data}"
        );
    }

    #[test]
    fn missing_field_is_invalid_params() {
        let params = raw(r#"{"items": []}"#);
        let error = decode_params::<Send>(Some(&params)).expect_err("sender missing");
        assert_eq!(error.code, -32602);
        assert!(
            error.data.expect("data")["message"]
                .as_str()
                .is_some_and(|m| m.contains("sender"))
        );
    }

    #[test]
    fn absent_params_decode_as_an_empty_object() {
        #[derive(Deserialize)]
        struct Optional {
            #[allow(dead_code)]
            limit: Option<u32>,
        }
        assert!(decode_params::<Optional>(None).is_ok());
    }
}
