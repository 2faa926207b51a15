//! JSON-RPC 2.0 messages as they travel in AMQP bodies: the error codes of CONTRACT §3, parsing
//! requests (single, notification, batch) and responses, and encoding both.
//!
//! Parsing borrows from the delivery bytes (params stay raw JSON until a handler decodes them), so
//! the hot path neither copies nor re-parses a body.

use std::borrow::Cow;
use std::fmt;

use jsonrpsee_types::Request;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use jsonrpsee_types::Id;

/// The JSON-RPC version every message carries.
pub const JSONRPC_VERSION: &str = "2.0";

/// The error codes of CONTRACT §3, plus any other code a handler chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// -32700: the body is not JSON.
    ParseError,
    /// -32600: JSON, but not a JSON-RPC 2.0 request.
    InvalidRequest,
    /// -32601: the worker does not serve this method.
    MethodNotFound,
    /// -32602: params fail the schema or typed decoding.
    InvalidParams,
    /// -32603: the handler failed or panicked.
    InternalError,
    /// -32000: the job's deadline passed before or while it ran.
    DeadlineExceeded,
    /// -32001: no worker queue is bound for the method.
    Unroutable,
    /// -32002: the thing the params name does not exist.
    NotFound,
    /// -32003: the job was delivered too often and was dead-lettered.
    DeliveryLimit,
    /// -32005: the verified user may not act for the user the params name (gateway and workers).
    Forbidden,
    /// Any other code (handlers' own errors live in -32004..=-32099 or outside the reserved range).
    Other(i32),
}

impl ErrorCode {
    /// The numeric code on the wire.
    #[must_use]
    pub const fn code(self) -> i32 {
        match self {
            Self::ParseError => -32700,
            Self::InvalidRequest => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::InternalError => -32603,
            Self::DeadlineExceeded => -32000,
            Self::Unroutable => -32001,
            Self::NotFound => -32002,
            Self::DeliveryLimit => -32003,
            Self::Forbidden => -32005,
            Self::Other(code) => code,
        }
    }

    /// The code for a number read off the wire.
    #[must_use]
    pub const fn from_code(code: i32) -> Self {
        match code {
            -32700 => Self::ParseError,
            -32600 => Self::InvalidRequest,
            -32601 => Self::MethodNotFound,
            -32602 => Self::InvalidParams,
            -32603 => Self::InternalError,
            -32000 => Self::DeadlineExceeded,
            -32001 => Self::Unroutable,
            -32002 => Self::NotFound,
            -32003 => Self::DeliveryLimit,
            -32005 => Self::Forbidden,
            other => Self::Other(other),
        }
    }

    /// The standard message for the code.
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::ParseError => "Parse error",
            Self::InvalidRequest => "Invalid Request",
            Self::MethodNotFound => "Method not found",
            Self::InvalidParams => "Invalid params",
            Self::InternalError => "Internal error",
            Self::DeadlineExceeded => "Deadline exceeded",
            Self::Unroutable => "Unroutable",
            Self::NotFound => "Not found",
            Self::DeliveryLimit => "Delivery limit",
            Self::Forbidden => "Forbidden",
            Self::Other(_) => "Server error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.code())
    }
}

/// A JSON-RPC error object: what a handler returns on failure and what a caller receives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({code})")]
pub struct RpcError {
    /// The numeric code (see [`ErrorCode`]).
    pub code: i32,
    /// A short description.
    pub message: String,
    /// Details, e.g. where params failed to decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl RpcError {
    /// An error with `code` and `message` and no data.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.code(),
            message: message.into(),
            data: None,
        }
    }

    /// An error with the code's standard message.
    #[must_use]
    pub fn from_code(code: ErrorCode) -> Self {
        Self::new(code, code.message())
    }

    /// Attach `data` to the error.
    #[must_use]
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The code as an [`ErrorCode`].
    #[must_use]
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::from_code(self.code)
    }

    /// -32602 with `data: {"pointer", "message"}` saying where decoding failed.
    pub fn invalid_params(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::from_code(ErrorCode::InvalidParams).with_data(serde_json::json!({
            "pointer": pointer.into(),
            "message": message.into(),
        }))
    }

    /// -32002: the thing named does not exist (or the caller may not know it exists).
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, what)
    }

    /// -32603 with a message safe to show the caller.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }

    /// -32601 naming the method.
    #[must_use]
    pub fn method_not_found(method: &str) -> Self {
        Self::from_code(ErrorCode::MethodNotFound)
            .with_data(serde_json::json!({ "method": method }))
    }

    /// -32600 saying what is wrong.
    pub fn invalid_request(reason: impl Into<String>) -> Self {
        Self::from_code(ErrorCode::InvalidRequest)
            .with_data(serde_json::Value::String(reason.into()))
    }

    /// -32005: the verified user may not act for the user at `pointer` in the params.
    pub fn forbidden(pointer: &str, message: impl Into<String>) -> Self {
        Self::from_code(ErrorCode::Forbidden).with_data(serde_json::json!({
            "pointer": pointer,
            "message": message.into(),
        }))
    }

    /// -32000.
    #[must_use]
    pub fn deadline_exceeded() -> Self {
        Self::from_code(ErrorCode::DeadlineExceeded)
    }
}

/// One element of an incoming body: a request, a notification, or something invalid.
#[derive(Debug)]
pub enum Call<'a> {
    /// A request: it has an `id` and expects a response.
    Request {
        /// The request id, echoed in the response.
        id: Id<'a>,
        /// The method (= routing key).
        method: Cow<'a, str>,
        /// The params, still raw JSON.
        params: Option<Cow<'a, RawValue>>,
    },
    /// A notification: no `id`, no response.
    Notification {
        /// The method.
        method: Cow<'a, str>,
        /// The params, still raw JSON.
        params: Option<&'a RawValue>,
    },
    /// JSON, but not a valid request; answered with -32600 and the id if one could be read.
    Invalid {
        /// The id, or `Id::Null` when it could not be read.
        id: Id<'a>,
        /// What is wrong, for the error's `data`.
        reason: String,
    },
}

impl Call<'_> {
    /// The method, if the element has one.
    #[must_use]
    pub fn method(&self) -> Option<&str> {
        match self {
            Self::Request { method, .. } | Self::Notification { method, .. } => Some(method),
            Self::Invalid { .. } => None,
        }
    }
}

/// A parsed incoming body.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// One request object.
    Single(Call<'a>),
    /// A non-empty batch; answered as a batch with notifications omitted.
    Batch(Vec<Call<'a>>),
}

/// The body is not JSON at all (-32700).
#[derive(Debug, thiserror::Error)]
#[error("body is not JSON: {0}")]
pub struct ParseError(#[from] serde_json::Error);

/// Parse a body into a request, notification or batch.
///
/// # Errors
/// [`ParseError`] when the body is not JSON. JSON that is not a valid request parses as
/// [`Call::Invalid`]; an empty batch parses as a single invalid call, as the specification asks.
pub fn parse_incoming(body: &[u8]) -> Result<Incoming<'_>, ParseError> {
    let raw: &RawValue = serde_json::from_slice(body)?;
    let text = raw.get();
    if text.starts_with('[') {
        let elements: Vec<&RawValue> = serde_json::from_str(text)?;
        if elements.is_empty() {
            return Ok(Incoming::Single(Call::Invalid {
                id: Id::Null,
                reason: "empty batch".into(),
            }));
        }
        Ok(Incoming::Batch(
            elements.into_iter().map(parse_call).collect(),
        ))
    } else {
        Ok(Incoming::Single(parse_call(raw)))
    }
}

/// The members of a request object, each still raw. Every member is optional and raw so that
/// one bad member never hides the others (the id survives a bad method, for example).
#[derive(Deserialize)]
struct RawMembers<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    params: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
}

/// `Some(raw)` for a member that is present, even when it is `null`.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

/// Read an id: a string, a non-negative integer, or null (what [`Id`] can hold).
///
/// Parsed by hand rather than through `Id`'s untagged deserializer, which formats an error
/// message for every variant it rejects: a measurable cost on every job.
fn parse_id(raw: &RawValue) -> Option<Id<'_>> {
    let text = raw.get();
    match text.as_bytes().first()? {
        b'"' => serde_json::from_str::<Cow<'_, str>>(text).ok().map(Id::Str),
        b'n' if text == "null" => Some(Id::Null),
        b'0'..=b'9' => text.parse::<u64>().ok().map(Id::Number),
        _ => None,
    }
}

/// Parse one element of a body (an object, or anything else, which is invalid).
#[must_use]
pub fn parse_call(raw: &RawValue) -> Call<'_> {
    let text = raw.get();
    if !text.starts_with('{') {
        return Call::Invalid {
            id: Id::Null,
            reason: "a request must be a JSON object".into(),
        };
    }
    let members = match serde_json::from_str::<RawMembers<'_>>(text) {
        Ok(members) => members,
        Err(error) => {
            return Call::Invalid {
                id: Id::Null,
                reason: error.to_string(),
            };
        }
    };
    let id = match members.id.map(parse_id) {
        None => None,
        Some(Some(id)) => Some(id),
        Some(None) => {
            return Call::Invalid {
                id: Id::Null,
                reason: "id must be a string, a non-negative integer or null".into(),
            };
        }
    };
    let invalid = |reason: &str| Call::Invalid {
        id: id.clone().unwrap_or(Id::Null),
        reason: reason.to_owned(),
    };
    if members.jsonrpc.map(RawValue::get) != Some(r#""2.0""#) {
        return invalid(r#"jsonrpc must be "2.0""#);
    }
    let Some(method) = members
        .method
        .and_then(|raw| serde_json::from_str::<Cow<'_, str>>(raw.get()).ok())
    else {
        return invalid("method must be a string");
    };
    // `"params": null` is read as no params, as most implementations do.
    let params = members.params.filter(|raw| raw.get() != "null");
    if let Some(reason) = check_params(params) {
        return invalid(&reason);
    }
    match id {
        Some(id) => Call::Request {
            id,
            method,
            params: params.map(Cow::Borrowed),
        },
        None => Call::Notification { method, params },
    }
}

/// The specification allows params only as an object or an array.
fn check_params(params: Option<&RawValue>) -> Option<String> {
    let text = params?.get();
    if text.starts_with('{') || text.starts_with('[') {
        None
    } else {
        Some("params must be an object or an array".into())
    }
}

/// The outcome of one call: the raw result JSON or an error.
pub type Outcome = Result<Box<RawValue>, RpcError>;

#[derive(Serialize)]
struct ResponseOut<'a> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a RpcError>,
    id: &'a Id<'a>,
}

/// Append the JSON of one response to `out`.
pub fn write_response(out: &mut Vec<u8>, id: &Id<'_>, outcome: &Outcome) {
    let (result, error) = match outcome {
        Ok(result) => (Some(&**result), None),
        Err(error) => (None, Some(error)),
    };
    let response = ResponseOut {
        jsonrpc: JSONRPC_VERSION,
        result,
        error,
        id,
    };
    // Serialising borrowed strings, raw JSON and integers into a Vec cannot fail.
    if serde_json::to_writer(&mut *out, &response).is_err() {
        out.extend_from_slice(
            br#"{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error"},"id":null}"#,
        );
    }
}

/// The JSON of one response.
#[must_use]
pub fn encode_response(id: &Id<'_>, outcome: &Outcome) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    write_response(&mut out, id, outcome);
    out
}

/// The JSON of a request (`id: Some`) or a notification (`id: None`).
///
/// # Errors
/// Only if `params` cannot be serialised, which raw JSON always can.
pub fn encode_request(
    id: Option<&str>,
    method: &str,
    params: Option<&RawValue>,
) -> Result<Vec<u8>, serde_json::Error> {
    /// jsonrpsee's `Notification` always writes `params`, even as `null`, which the
    /// specification does not allow; this one leaves it out.
    #[derive(Serialize)]
    struct NotificationOut<'a> {
        jsonrpc: &'static str,
        method: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        params: Option<&'a RawValue>,
    }
    match id {
        Some(id) => serde_json::to_vec(&Request::borrowed(
            method,
            params,
            Id::Str(Cow::Borrowed(id)),
        )),
        None => serde_json::to_vec(&NotificationOut {
            jsonrpc: JSONRPC_VERSION,
            method,
            params,
        }),
    }
}

/// A response read off the wire.
#[derive(Debug, Clone)]
pub struct Response {
    /// The id it answers.
    pub id: Id<'static>,
    /// The result or the error.
    pub outcome: Result<Box<RawValue>, RpcError>,
}

/// A response body: one response or a batch of them.
#[derive(Debug, Clone)]
pub enum ResponseBody {
    /// One response.
    Single(Response),
    /// A batch of responses, in the worker's order.
    Batch(Vec<Response>),
}

/// Parse a response body.
///
/// # Errors
/// When the body is not a JSON-RPC response or batch of responses.
pub fn parse_response(body: &[u8]) -> Result<ResponseBody, serde_json::Error> {
    let raw: &RawValue = serde_json::from_slice(body)?;
    if raw.get().starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(raw.get())?;
        items
            .into_iter()
            .map(|item| parse_one_response(item.get()))
            .collect::<Result<_, _>>()
            .map(ResponseBody::Batch)
    } else {
        parse_one_response(raw.get()).map(ResponseBody::Single)
    }
}

fn parse_one_response(text: &str) -> Result<Response, serde_json::Error> {
    #[derive(Deserialize)]
    struct Members<'a> {
        #[serde(borrow, default, deserialize_with = "present")]
        result: Option<&'a RawValue>,
        #[serde(default)]
        error: Option<RpcError>,
        #[serde(borrow, default, deserialize_with = "present")]
        id: Option<&'a RawValue>,
    }
    let members: Members<'_> = serde_json::from_str(text)?;
    let id = match members.id {
        Some(raw) => parse_id(raw)
            .ok_or_else(|| <serde_json::Error as serde::de::Error>::custom("invalid response id"))?
            .into_owned(),
        None => return Err(serde::de::Error::missing_field("id")),
    };
    let outcome = match (members.result, members.error) {
        (Some(result), None) => Ok(result.to_owned()),
        (None, Some(error)) => Err(error),
        _ => {
            return Err(serde::de::Error::custom(
                "a response holds exactly one of result and error",
            ));
        }
    };
    Ok(Response { id, outcome })
}

/// The id as the string the contract puts in `correlation_id`.
#[must_use]
pub fn id_to_correlation(id: &Id<'_>) -> String {
    match id {
        Id::Null => "null".to_owned(),
        Id::Number(number) => number.to_string(),
        Id::Str(text) => text.to_string(),
    }
}

#[cfg(test)]
mod tests;
