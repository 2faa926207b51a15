//! Unit tests of the protocol module: the JSON-RPC 2.0 specification's examples (section 7), the
//! contract's example and error codes (CONTRACT §2, §3), and the encoders and parsers round-tripping.

use super::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A string id borrowing `text`.
fn str_id(text: &str) -> Id<'_> {
    Id::Str(Cow::Borrowed(text))
}

/// Raw JSON from a literal.
fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).expect("test literal is valid JSON")
}

/// The value of raw JSON, for comparisons that ignore formatting.
fn value(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).expect("raw JSON parses as a value")
}

/// The value of an encoded body.
fn body_value(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("encoded body is JSON")
}

/// The keys of a JSON object, sorted.
fn keys(object: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = object
        .as_object()
        .expect("value is a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// Parse a body that must be a single call.
#[track_caller]
fn single(body: &[u8]) -> Call<'_> {
    match parse_incoming(body).expect("body is JSON") {
        Incoming::Single(call) => call,
        Incoming::Batch(calls) => panic!("expected a single call, got a batch: {calls:?}"),
    }
}

/// Parse a body that must be a batch.
#[track_caller]
fn batch(body: &[u8]) -> Vec<Call<'_>> {
    match parse_incoming(body).expect("body is JSON") {
        Incoming::Batch(calls) => calls,
        Incoming::Single(call) => panic!("expected a batch, got a single call: {call:?}"),
    }
}

/// Assert that `call` is a request with this id, method and params (compared as values).
#[track_caller]
fn assert_request(call: &Call<'_>, id: &Id<'_>, method: &str, params: Option<Value>) {
    match call {
        Call::Request {
            id: got_id,
            method: got_method,
            params: got_params,
        } => {
            assert_eq!(got_id, id, "request id");
            assert_eq!(got_method, method, "request method");
            assert_eq!(got_params.as_deref().map(value), params, "request params");
        }
        other => panic!("expected a request, got {other:?}"),
    }
}

/// Assert that `call` is a notification with this method and params (compared as values).
#[track_caller]
fn assert_notification(call: &Call<'_>, method: &str, params: Option<Value>) {
    match call {
        Call::Notification {
            method: got_method,
            params: got_params,
        } => {
            assert_eq!(got_method, method, "notification method");
            assert_eq!(got_params.map(value), params, "notification params");
        }
        other => panic!("expected a notification, got {other:?}"),
    }
}

/// Assert that `call` is invalid and carries this id.
#[track_caller]
fn assert_invalid(call: &Call<'_>, id: &Id<'_>) {
    match call {
        Call::Invalid { id: got_id, reason } => {
            assert_eq!(got_id, id, "invalid call id");
            assert!(!reason.is_empty(), "an invalid call says why");
        }
        other => panic!("expected an invalid call, got {other:?}"),
    }
}

/// Parse a response body that must be a single response.
#[track_caller]
fn single_response(body: &[u8]) -> Response {
    match parse_response(body).expect("body is a JSON-RPC response") {
        ResponseBody::Single(response) => response,
        ResponseBody::Batch(responses) => {
            panic!("expected a single response, got a batch: {responses:?}")
        }
    }
}

/// The result of a successful response, as a value.
#[track_caller]
fn result_value(response: &Response) -> Value {
    match &response.outcome {
        Ok(result) => value(result),
        Err(error) => panic!("expected a result, got the error {error:?}"),
    }
}

/// The error of a failed response.
#[track_caller]
fn error_of(response: &Response) -> &RpcError {
    match &response.outcome {
        Ok(result) => panic!("expected an error, got the result {result}"),
        Err(error) => error,
    }
}

// ---------------------------------------------------------------------------------------------
// 1. The specification's examples (https://www.jsonrpc.org/specification, section 7), worker side
// ---------------------------------------------------------------------------------------------

/// Spec §7 "rpc call with positional parameters": both examples parse as requests with numeric ids.
#[test]
fn spec_positional_params_requests_parse_as_requests() {
    let first = br#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#;
    assert_request(
        &single(first),
        &Id::Number(1),
        "subtract",
        Some(json!([42, 23])),
    );

    let second = br#"{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}"#;
    assert_request(
        &single(second),
        &Id::Number(2),
        "subtract",
        Some(json!([23, 42])),
    );
}

/// Spec §7 "rpc call with named parameters": both examples parse as requests with their objects.
#[test]
fn spec_named_params_requests_parse_as_requests() {
    let first = br#"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#;
    assert_request(
        &single(first),
        &Id::Number(3),
        "subtract",
        Some(json!({"subtrahend": 23, "minuend": 42})),
    );

    let second = br#"{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#;
    assert_request(
        &single(second),
        &Id::Number(4),
        "subtract",
        Some(json!({"minuend": 42, "subtrahend": 23})),
    );
}

/// Spec §7 "a Notification": `update` with params and `foobar` without parse as notifications.
#[test]
fn spec_notifications_parse_as_notifications() {
    let update = br#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#;
    assert_notification(&single(update), "update", Some(json!([1, 2, 3, 4, 5])));

    let foobar = br#"{"jsonrpc": "2.0", "method": "foobar"}"#;
    assert_notification(&single(foobar), "foobar", None);
}

/// Spec §7 "rpc call of non-existent method" parses as a request: method-not-found is decided later.
#[test]
fn spec_call_of_non_existent_method_parses_as_request() {
    let body = br#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#;
    let call = single(body);
    assert_request(&call, &str_id("1"), "foobar", None);
    assert_eq!(call.method(), Some("foobar"));
}

/// Spec §7 "rpc call with invalid JSON" is a parse error (-32700), not an invalid request.
#[test]
fn spec_invalid_json_is_parse_error() {
    let body = br#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#;
    assert!(
        parse_incoming(body).is_err(),
        "invalid JSON must be a ParseError"
    );
}

/// Spec §7 "rpc call with invalid Request object" (method is a number) is invalid with id null.
#[test]
fn spec_invalid_request_object_is_invalid_with_null_id() {
    let body = br#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#;
    let call = single(body);
    assert_invalid(&call, &Id::Null);
    assert_eq!(call.method(), None);
}

/// Spec §7 "rpc call Batch, invalid JSON" is a parse error for the whole body.
#[test]
fn spec_batch_with_invalid_json_is_parse_error() {
    let body = br#"[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method"
]"#;
    assert!(
        parse_incoming(body).is_err(),
        "a broken batch must be a ParseError"
    );
}

/// Spec §7 "rpc call with an empty Array" is one invalid request (a single response, not a batch).
#[test]
fn spec_empty_batch_is_single_invalid_request() {
    assert_invalid(&single(b"[]"), &Id::Null);
    assert_invalid(&single(b"[ \n ]"), &Id::Null);
}

/// Spec §7 "rpc call with an invalid Batch (but not empty)": `[1]` is a batch of one invalid call.
#[test]
fn spec_batch_of_one_non_object_is_batch_of_one_invalid() {
    let calls = batch(b"[1]");
    assert_eq!(calls.len(), 1);
    assert_invalid(&calls[0], &Id::Null);
}

/// Spec §7 "rpc call with invalid Batch": `[1,2,3]` is a batch of three invalid calls.
#[test]
fn spec_batch_of_three_non_objects_is_batch_of_three_invalid() {
    let calls = batch(b"[1,2,3]");
    assert_eq!(calls.len(), 3);
    for call in &calls {
        assert_invalid(call, &Id::Null);
    }
}

/// Spec §7 "rpc call Batch": requests, a notification and an invalid object, in order, with ids.
#[test]
fn spec_mixed_batch_parses_each_element_in_order() {
    let body = br#"[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"} 
    ]"#;
    let calls = batch(body);
    assert_eq!(calls.len(), 6);
    assert_request(&calls[0], &str_id("1"), "sum", Some(json!([1, 2, 4])));
    assert_notification(&calls[1], "notify_hello", Some(json!([7])));
    assert_request(&calls[2], &str_id("2"), "subtract", Some(json!([42, 23])));
    assert_invalid(&calls[3], &Id::Null);
    assert_request(
        &calls[4],
        &str_id("5"),
        "foo.get",
        Some(json!({"name": "myself"})),
    );
    assert_request(&calls[5], &str_id("9"), "get_data", None);
}

/// Spec §7 "rpc call Batch (all notifications)": every element is a notification.
#[test]
fn spec_batch_of_notifications_is_all_notifications() {
    let body = br#"[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
    ]"#;
    let calls = batch(body);
    assert_eq!(calls.len(), 2);
    assert_notification(&calls[0], "notify_sum", Some(json!([1, 2, 4])));
    assert_notification(&calls[1], "notify_hello", Some(json!([7])));
}

/// A body that is not JSON at all (empty, truncated, not UTF-8) is a parse error.
#[test]
fn non_json_bodies_are_parse_errors() {
    for body in [
        &b""[..],
        b"   ",
        b"{",
        b"[",
        b"not json",
        b"\xff\xfe{}",
        br#"{"jsonrpc": "2.0", "method": "a", "id": 1} trailing"#,
    ] {
        assert!(
            parse_incoming(body).is_err(),
            "{:?} must be a ParseError",
            String::from_utf8_lossy(body)
        );
    }
}

/// JSON that is not an object or array (a number, string, null, bool) is one invalid call.
#[test]
fn scalar_bodies_are_single_invalid_calls() {
    for body in [&b"5"[..], b"\"text\"", b"null", b"true"] {
        assert_invalid(&single(body), &Id::Null);
    }
}

/// Whitespace around a body or its batch elements does not change how it parses.
#[test]
fn surrounding_whitespace_is_ignored() {
    let request = b" \n\t{\"jsonrpc\": \"2.0\", \"method\": \"m\", \"id\": 7} \n";
    assert_request(&single(request), &Id::Number(7), "m", None);

    let calls = batch(b"\n  [ \n {\"jsonrpc\":\"2.0\",\"method\":\"m\"} , 1 ] \n");
    assert_eq!(calls.len(), 2);
    assert_notification(&calls[0], "m", None);
    assert_invalid(&calls[1], &Id::Null);
}

/// A request whose `jsonrpc` is missing or not "2.0" is invalid and keeps its id.
#[test]
fn wrong_or_missing_version_is_invalid_with_id_kept() {
    let missing = br#"{"method": "m", "params": [], "id": "a"}"#;
    assert_invalid(&single(missing), &str_id("a"));

    let old = br#"{"jsonrpc": "1.0", "method": "m", "params": [], "id": 3}"#;
    assert_invalid(&single(old), &Id::Number(3));

    let number = br#"{"jsonrpc": 2.0, "method": "m"}"#;
    assert_invalid(&single(number), &Id::Null);
}

/// A request without `method` is invalid and keeps its id (it is not a notification either).
#[test]
fn missing_method_is_invalid_with_id_kept() {
    let body = br#"{"jsonrpc": "2.0", "params": {"a": 1}, "id": "no-method"}"#;
    assert_invalid(&single(body), &str_id("no-method"));

    let no_id = br#"{"jsonrpc": "2.0", "params": {"a": 1}}"#;
    assert_invalid(&single(no_id), &Id::Null);
}

/// An object with a readable id but a bad member is invalid and answered with that id.
#[test]
fn invalid_request_with_readable_id_keeps_it() {
    let number_method = br#"{"jsonrpc": "2.0", "method": 1, "params": "bar", "id": "x"}"#;
    assert_invalid(&single(number_method), &str_id("x"));

    let batch_calls = batch(br#"[{"jsonrpc": "2.0", "method": ["m"], "id": 12}]"#);
    assert_eq!(batch_calls.len(), 1);
    assert_invalid(&batch_calls[0], &Id::Number(12));
}

/// A method written with JSON escapes parses to its unescaped name.
#[test]
fn escaped_method_names_are_unescaped() {
    let request = br#"{"jsonrpc": "2.0", "method": "get\u005fmessage", "id": 1}"#;
    assert_request(&single(request), &Id::Number(1), "get_message", None);

    let note = br#"{"jsonrpc": "2.0", "method": "notify\u005fhello"}"#;
    assert_notification(&single(note), "notify_hello", None);
}

/// Unknown members of a request object are ignored rather than making it invalid.
#[test]
fn unknown_request_members_are_ignored() {
    let body = br#"{"jsonrpc": "2.0", "method": "m", "params": [1], "id": 1, "extra": {"x": 1}}"#;
    assert_request(&single(body), &Id::Number(1), "m", Some(json!([1])));
}

/// Params stay the exact raw JSON text of the body (nothing is re-serialised or reordered).
#[test]
fn params_stay_raw_json_text() {
    let body =
        br#"{"jsonrpc":"2.0","method":"m","params":{"b": 2,  "a": [1, {"c": null}]},"id":1}"#;
    match single(body) {
        Call::Request { params, .. } => {
            let params = params.expect("params present");
            assert_eq!(params.get(), r#"{"b": 2,  "a": [1, {"c": null}]}"#);
        }
        other => panic!("expected a request, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Params and id shapes
// ---------------------------------------------------------------------------------------------

/// Params that are neither object nor array make a request invalid, keeping its id.
#[test]
fn scalar_params_make_a_request_invalid_with_id_kept() {
    for params in ["5", "\"bar\"", "true", "1.5"] {
        let body = format!(r#"{{"jsonrpc": "2.0", "method": "m", "params": {params}, "id": 9}}"#);
        assert_invalid(&single(body.as_bytes()), &Id::Number(9));
    }
}

/// Params that are neither object nor array make a notification invalid (with id null).
#[test]
fn scalar_params_make_a_notification_invalid() {
    for params in ["5", "\"bar\"", "false"] {
        let body = format!(r#"{{"jsonrpc": "2.0", "method": "m", "params": {params}}}"#);
        assert_invalid(&single(body.as_bytes()), &Id::Null);
    }
}

/// `"params": null` or absent params are accepted as "no params" for requests and notifications.
#[test]
fn null_or_absent_params_mean_no_params() {
    let null_request = br#"{"jsonrpc": "2.0", "method": "m", "params": null, "id": 1}"#;
    assert_request(&single(null_request), &Id::Number(1), "m", None);

    let absent_request = br#"{"jsonrpc": "2.0", "method": "m", "id": 1}"#;
    assert_request(&single(absent_request), &Id::Number(1), "m", None);

    let null_note = br#"{"jsonrpc": "2.0", "method": "m", "params": null}"#;
    assert_notification(&single(null_note), "m", None);

    let absent_note = br#"{"jsonrpc": "2.0", "method": "m"}"#;
    assert_notification(&single(absent_note), "m", None);
}

/// Empty object and empty array params are valid params, not "no params".
#[test]
fn empty_structured_params_are_kept() {
    let object = br#"{"jsonrpc": "2.0", "method": "m", "params": {}, "id": 1}"#;
    assert_request(&single(object), &Id::Number(1), "m", Some(json!({})));

    let array = br#"{"jsonrpc": "2.0", "method": "m", "params": []}"#;
    assert_notification(&single(array), "m", Some(json!([])));
}

/// A request whose id is an object, array or bool is invalid, never mistaken for a notification.
#[test]
fn structured_or_bool_id_is_invalid_not_a_notification() {
    for id in [r#"{"a": 1}"#, "[1]", "true", "false"] {
        let body = format!(r#"{{"jsonrpc": "2.0", "method": "m", "params": [], "id": {id}}}"#);
        let call = single(body.as_bytes());
        assert_invalid(&call, &Id::Null);
    }
}

/// A request with `"id": null` is a request (answered with id null), not a notification.
#[test]
fn null_id_is_a_request_not_a_notification() {
    let body = br#"{"jsonrpc": "2.0", "method": "m", "params": [1], "id": null}"#;
    assert_request(&single(body), &Id::Null, "m", Some(json!([1])));
}

/// String ids are kept verbatim, including escapes, and large numeric ids keep their value.
#[test]
fn ids_are_kept_exactly() {
    let escaped = br#"{"jsonrpc": "2.0", "method": "m", "id": "a\"b\\c\u00e9"}"#;
    assert_request(&single(escaped), &str_id("a\"b\\c\u{e9}"), "m", None);

    let big = br#"{"jsonrpc": "2.0", "method": "m", "id": 18446744073709551615}"#;
    assert_request(&single(big), &Id::Number(u64::MAX), "m", None);

    let empty = br#"{"jsonrpc": "2.0", "method": "m", "id": ""}"#;
    assert_request(&single(empty), &str_id(""), "m", None);
}

// ---------------------------------------------------------------------------------------------
// 5. The contract's own example (CONTRACT §2)
// ---------------------------------------------------------------------------------------------

const CONTRACT_ID: &str = "eyJhIjozLCJiIjo0fQ";

/// CONTRACT §2's example request parses with its id, method and by-name params.
#[test]
fn contract_example_request_parses() {
    let body = br#"{"jsonrpc": "2.0", "method": "get_message", "params": {"message_id": "X9J0UI76GBWQTF"}, "id": "eyJhIjozLCJiIjo0fQ"}"#;
    let call = single(body);
    assert_request(
        &call,
        &str_id(CONTRACT_ID),
        "get_message",
        Some(json!({"message_id": "X9J0UI76GBWQTF"})),
    );
    if let Call::Request { id, .. } = &call {
        assert_eq!(id_to_correlation(id), CONTRACT_ID);
    }
}

/// CONTRACT §2's example result parses with its id and nested result object.
#[test]
fn contract_example_result_parses() {
    let body = br#"{"jsonrpc": "2.0", "result": {"sender": "user_1", "receiver": "user_2", "body": "merhaba"}, "id": "eyJhIjozLCJiIjo0fQ"}"#;
    let response = single_response(body);
    assert_eq!(response.id, str_id(CONTRACT_ID));
    assert_eq!(
        result_value(&response),
        json!({"sender": "user_1", "receiver": "user_2", "body": "merhaba"})
    );
}

/// CONTRACT §2's example error parses as -32602 "Invalid params" without data.
#[test]
fn contract_example_error_parses() {
    let body = br#"{"jsonrpc": "2.0", "error": {"code": -32602, "message": "Invalid params"}, "id": "eyJhIjozLCJiIjo0fQ"}"#;
    let response = single_response(body);
    assert_eq!(response.id, str_id(CONTRACT_ID));
    let error = error_of(&response);
    assert_eq!(error.code, -32602);
    assert_eq!(error.error_code(), ErrorCode::InvalidParams);
    assert_eq!(error.message, "Invalid params");
    assert_eq!(error.data, None);
}

/// Our encoding of the contract's example error equals the contract's text as JSON.
#[test]
fn contract_example_error_is_what_we_encode() {
    let encoded = encode_response(
        &str_id(CONTRACT_ID),
        &Err(RpcError::from_code(ErrorCode::InvalidParams)),
    );
    let expected = br#"{"jsonrpc": "2.0", "error": {"code": -32602, "message": "Invalid params"}, "id": "eyJhIjozLCJiIjo0fQ"}"#;
    assert_eq!(body_value(&encoded), body_value(expected));
}

// ---------------------------------------------------------------------------------------------
// 2. Response encoding
// ---------------------------------------------------------------------------------------------

/// A success encodes as the spec's `{"jsonrpc":"2.0","result":19,"id":1}`.
#[test]
fn success_response_matches_spec_shape() {
    let encoded = encode_response(&Id::Number(1), &Ok(raw("19")));
    assert_eq!(
        body_value(&encoded),
        body_value(br#"{"jsonrpc": "2.0", "result": 19, "id": 1}"#)
    );

    let negative = encode_response(&Id::Number(2), &Ok(raw("-19")));
    assert_eq!(
        body_value(&negative),
        body_value(br#"{"jsonrpc": "2.0", "result": -19, "id": 2}"#)
    );
}

/// An error encodes as the spec's method-not-found shape, without `data` when none is set.
#[test]
fn error_response_matches_spec_shape_without_data() {
    let encoded = encode_response(
        &str_id("1"),
        &Err(RpcError::from_code(ErrorCode::MethodNotFound)),
    );
    let expected = br#"{"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "1"}"#;
    let encoded = body_value(&encoded);
    assert_eq!(encoded, body_value(expected));
    assert!(encoded["error"].get("data").is_none(), "no data key");
    assert!(encoded.get("result").is_none(), "no result key");
}

/// The spec's parse-error and invalid-request responses encode with `"id": null`.
#[test]
fn error_responses_with_null_id_match_spec_shape() {
    let parse = encode_response(&Id::Null, &Err(RpcError::from_code(ErrorCode::ParseError)));
    assert_eq!(
        body_value(&parse),
        body_value(
            br#"{"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": null}"#
        )
    );

    let invalid = encode_response(
        &Id::Null,
        &Err(RpcError::from_code(ErrorCode::InvalidRequest)),
    );
    assert_eq!(
        body_value(&invalid),
        body_value(
            br#"{"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null}"#
        )
    );
}

/// Error `data` is encoded when set.
#[test]
fn error_response_includes_data_when_set() {
    let error = RpcError::invalid_params("/message_id", "missing field `message_id`");
    let encoded = body_value(&encode_response(&str_id(CONTRACT_ID), &Err(error)));
    assert_eq!(
        encoded,
        json!({
            "jsonrpc": "2.0",
            "error": {
                "code": -32602,
                "message": "Invalid params",
                "data": {"pointer": "/message_id", "message": "missing field `message_id`"},
            },
            "id": CONTRACT_ID,
        })
    );
}

/// A response has exactly the keys jsonrpc, id and one of result/error.
#[test]
fn responses_have_no_extra_keys() {
    let success = body_value(&encode_response(&Id::Number(1), &Ok(raw("null"))));
    assert_eq!(keys(&success), ["id", "jsonrpc", "result"]);
    assert_eq!(success["result"], Value::Null, "a null result is kept");

    let failure = body_value(&encode_response(
        &Id::Number(1),
        &Err(RpcError::internal("boom")),
    ));
    assert_eq!(keys(&failure), ["error", "id", "jsonrpc"]);
}

/// The result's raw JSON is written verbatim into the response.
#[test]
fn response_result_is_written_verbatim() {
    let result = r#"{"b":[1,2,{"c":"d"}],"a":1.50}"#;
    let encoded = encode_response(&Id::Number(1), &Ok(raw(result)));
    let text = String::from_utf8(encoded).expect("response is UTF-8");
    assert!(text.contains(result), "{text} contains {result}");
}

/// `write_response` appends to what the buffer holds (so batches can be built in place).
#[test]
fn write_response_appends_to_the_buffer() {
    let mut out = b"[".to_vec();
    write_response(&mut out, &str_id("1"), &Ok(raw("7")));
    out.push(b',');
    write_response(
        &mut out,
        &str_id("5"),
        &Err(RpcError::from_code(ErrorCode::MethodNotFound)),
    );
    out.push(b']');
    assert_eq!(
        body_value(&out),
        json!([
            {"jsonrpc": "2.0", "result": 7, "id": "1"},
            {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Request encoding
// ---------------------------------------------------------------------------------------------

/// A request encodes with exactly jsonrpc, id, method and params.
#[test]
fn encode_request_has_exactly_the_request_members() {
    let params = raw(r#"{"message_id": "X9J0UI76GBWQTF"}"#);
    let encoded = encode_request(Some("abc"), "get_message", Some(&params))
        .expect("raw params always serialise");
    let encoded = body_value(&encoded);
    assert_eq!(
        encoded,
        json!({
            "jsonrpc": "2.0",
            "id": "abc",
            "method": "get_message",
            "params": {"message_id": "X9J0UI76GBWQTF"},
        })
    );
    assert_eq!(keys(&encoded), ["id", "jsonrpc", "method", "params"]);
}

/// A request without params omits the `params` member.
#[test]
fn encode_request_without_params_omits_params() {
    let encoded = encode_request(Some("abc"), "ping", None).expect("serialises");
    assert_eq!(
        body_value(&encoded),
        json!({"jsonrpc": "2.0", "id": "abc", "method": "ping"})
    );
}

/// `encode_request(None, ..)` is a notification: jsonrpc, method and params, no `id`.
#[test]
fn encode_request_without_id_is_a_notification() {
    let params = raw("[1,2,3,4,5]");
    let encoded = encode_request(None, "update", Some(&params)).expect("serialises");
    let value = body_value(&encoded);
    assert_eq!(
        value,
        json!({"jsonrpc": "2.0", "method": "update", "params": [1, 2, 3, 4, 5]})
    );
    assert!(value.get("id").is_none(), "a notification has no id");
    assert_notification(&single(&encoded), "update", Some(json!([1, 2, 3, 4, 5])));
}

/// A notification without params omits `params` (the spec allows it omitted, not null).
#[test]
fn encode_notification_without_params_omits_params() {
    let encoded = encode_request(None, "ping", None).expect("serialises");
    assert_eq!(
        body_value(&encoded),
        json!({"jsonrpc": "2.0", "method": "ping"})
    );
}

/// Nested params stay nested: objects inside params are never flattened into dotted keys.
#[test]
fn encode_request_keeps_nested_params_nested() {
    let nested = json!({
        "message": {"id": "X9J0UI76GBWQTF", "meta": {"tags": ["a", "b"], "size": 3}},
        "options": {"deep": {"deeper": {"deepest": true}}},
    });
    let params = raw(&nested.to_string());
    let encoded = encode_request(Some("n"), "get_message", Some(&params)).expect("serialises");
    let value = body_value(&encoded);
    assert_eq!(value["params"], nested);
    assert_eq!(keys(&value["params"]), ["message", "options"]);
    assert_eq!(
        value["params"]["message"]["meta"]["tags"],
        json!(["a", "b"])
    );
}

/// An encoded request parses back (worker side) to the same id, method and params.
#[test]
fn encode_request_round_trips_through_parse_incoming() {
    let params = raw(r#"{"message_id": "X9J0UI76GBWQTF", "nested": {"a": [1, 2]}}"#);
    let encoded =
        encode_request(Some(CONTRACT_ID), "get_message", Some(&params)).expect("serialises");
    assert_request(
        &single(&encoded),
        &str_id(CONTRACT_ID),
        "get_message",
        Some(json!({"message_id": "X9J0UI76GBWQTF", "nested": {"a": [1, 2]}})),
    );
}

/// Ids and methods needing JSON escapes are escaped on encoding and survive the round trip.
#[test]
fn encode_request_escapes_id_and_method() {
    let id = "quote\" backslash\\ newline\n";
    let method = "odd\"method";
    let encoded = encode_request(Some(id), method, None).expect("serialises");
    assert_request(&single(&encoded), &str_id(id), method, None);
}

// ---------------------------------------------------------------------------------------------
// 4. Response parsing
// ---------------------------------------------------------------------------------------------

/// A success encoded by `encode_response` parses back to the same id and result.
#[test]
fn parse_response_round_trips_success() {
    let result = json!({"sender": "user_1", "nested": {"list": [1, 2, 3]}, "none": null});
    let encoded = encode_response(&str_id("r1"), &Ok(raw(&result.to_string())));
    let response = single_response(&encoded);
    assert_eq!(response.id, str_id("r1"));
    assert_eq!(result_value(&response), result);

    let numeric = single_response(&encode_response(&Id::Number(42), &Ok(raw("19"))));
    assert_eq!(numeric.id, Id::Number(42));
    assert_eq!(result_value(&numeric), json!(19));
}

/// A null result parses as a success whose result is `null`, not as a missing result.
#[test]
fn parse_response_keeps_null_result() {
    let response = single_response(br#"{"jsonrpc": "2.0", "result": null, "id": 1}"#);
    assert_eq!(result_value(&response), Value::Null);
}

/// An error encoded by `encode_response` parses back with code, message and data preserved.
#[test]
fn parse_response_round_trips_error_with_data() {
    let errors = [
        RpcError::invalid_params("/message_id", "expected a string"),
        RpcError::method_not_found("get_mesage"),
        RpcError::invalid_request("params must be an object or an array"),
        RpcError::new(ErrorCode::Other(-32050), "custom").with_data(json!([1, {"a": "b"}])),
    ];
    for error in errors {
        let encoded = encode_response(&str_id(CONTRACT_ID), &Err(error.clone()));
        let response = single_response(&encoded);
        assert_eq!(response.id, str_id(CONTRACT_ID));
        assert_eq!(error_of(&response), &error);
    }
}

/// An error without data parses back with `data: None`.
#[test]
fn parse_response_round_trips_error_without_data() {
    let errors = [
        RpcError::from_code(ErrorCode::MethodNotFound),
        RpcError::not_found("message X9J0UI76GBWQTF"),
        RpcError::internal("handler panicked"),
        RpcError::deadline_exceeded(),
    ];
    for error in errors {
        let response = single_response(&encode_response(&Id::Null, &Err(error.clone())));
        assert_eq!(response.id, Id::Null);
        let parsed = error_of(&response);
        assert_eq!(parsed, &error);
        assert_eq!(parsed.data, None);
    }
}

/// The spec's batch response example parses as a batch, in order, with ids and outcomes.
#[test]
fn parse_response_parses_spec_batch() {
    let body = br#"[
        {"jsonrpc": "2.0", "result": 7, "id": "1"},
        {"jsonrpc": "2.0", "result": 19, "id": "2"},
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": null},
        {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
        {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"}
    ]"#;
    let ResponseBody::Batch(responses) = parse_response(body).expect("a batch of responses") else {
        panic!("expected a batch of responses");
    };
    assert_eq!(responses.len(), 5);

    assert_eq!(responses[0].id, str_id("1"));
    assert_eq!(result_value(&responses[0]), json!(7));
    assert_eq!(responses[1].id, str_id("2"));
    assert_eq!(result_value(&responses[1]), json!(19));
    assert_eq!(responses[2].id, Id::Null);
    assert_eq!(
        error_of(&responses[2]),
        &RpcError::from_code(ErrorCode::InvalidRequest)
    );
    assert_eq!(responses[3].id, str_id("5"));
    assert_eq!(
        error_of(&responses[3]),
        &RpcError::from_code(ErrorCode::MethodNotFound)
    );
    assert_eq!(responses[4].id, str_id("9"));
    assert_eq!(result_value(&responses[4]), json!(["hello", 5]));
}

/// A batch built with `write_response` parses back as the same batch.
#[test]
fn parse_response_round_trips_written_batch() {
    let mut out = b"[".to_vec();
    write_response(&mut out, &Id::Number(1), &Ok(raw(r#"{"ok":true}"#)));
    out.push(b',');
    write_response(&mut out, &str_id("2"), &Err(RpcError::not_found("thing")));
    out.push(b']');

    let ResponseBody::Batch(responses) = parse_response(&out).expect("a batch of responses") else {
        panic!("expected a batch of responses");
    };
    assert_eq!(responses.len(), 2);
    assert_eq!(responses[0].id, Id::Number(1));
    assert_eq!(result_value(&responses[0]), json!({"ok": true}));
    assert_eq!(responses[1].id, str_id("2"));
    assert_eq!(error_of(&responses[1]), &RpcError::not_found("thing"));
}

/// Bodies that are not responses (not JSON, no id, neither result nor error, both) are errors.
#[test]
fn parse_response_rejects_non_responses() {
    for body in [
        &b"not json"[..],
        br#"{"jsonrpc": "2.0", "result": 1}"#,
        br#"{"jsonrpc": "2.0", "id": 1}"#,
        br#"{"jsonrpc": "2.0", "result": 1, "error": {"code": 1, "message": "x"}, "id": 1}"#,
        br#"{"jsonrpc": "2.0", "method": "m", "id": 1}"#,
        br#"[{"jsonrpc": "2.0", "result": 1, "id": 1}, 5]"#,
    ] {
        assert!(
            parse_response(body).is_err(),
            "{} must not parse as a response",
            String::from_utf8_lossy(body)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Error codes (CONTRACT §3)
// ---------------------------------------------------------------------------------------------

/// Every contract code, its variant and its standard message (CONTRACT §3's "meaning" column).
const CONTRACT_CODES: [(i32, ErrorCode, &str); 9] = [
    (-32700, ErrorCode::ParseError, "Parse error"),
    (-32600, ErrorCode::InvalidRequest, "Invalid Request"),
    (-32601, ErrorCode::MethodNotFound, "Method not found"),
    (-32602, ErrorCode::InvalidParams, "Invalid params"),
    (-32603, ErrorCode::InternalError, "Internal error"),
    (-32000, ErrorCode::DeadlineExceeded, "Deadline exceeded"),
    (-32001, ErrorCode::Unroutable, "Unroutable"),
    (-32002, ErrorCode::NotFound, "Not found"),
    (-32003, ErrorCode::DeliveryLimit, "Delivery limit"),
];

/// Every contract code round-trips through `from_code`/`code` and has the contract's message.
#[test]
fn contract_error_codes_round_trip() {
    for (number, code, message) in CONTRACT_CODES {
        assert_eq!(ErrorCode::from_code(number), code, "from_code({number})");
        assert_eq!(code.code(), number, "{code:?}.code()");
        assert_eq!(code.message(), message, "{code:?}.message()");
        assert_eq!(RpcError::from_code(code).code, number);
        assert_eq!(RpcError::from_code(code).message, message);
        assert_eq!(RpcError::from_code(code).error_code(), code);
    }
}

/// Codes outside the contract's list become `Other(n)` and keep their number.
#[test]
fn other_error_codes_become_other() {
    for number in [
        0,
        1,
        -1,
        -32004,
        -32050,
        -32099,
        -32100,
        -32768,
        -31999,
        -32604,
        -32699,
        i32::MIN,
        i32::MAX,
    ] {
        let code = ErrorCode::from_code(number);
        assert_eq!(code, ErrorCode::Other(number), "from_code({number})");
        assert_eq!(code.code(), number);
        assert_eq!(code.message(), "Server error");
    }
}

/// `ErrorCode` displays as "message (code)", and `RpcError` likewise.
#[test]
fn error_codes_display_message_and_number() {
    assert_eq!(
        ErrorCode::MethodNotFound.to_string(),
        "Method not found (-32601)"
    );
    assert_eq!(
        RpcError::not_found("no such message").to_string(),
        "no such message (-32002)"
    );
}

/// The `RpcError` constructors carry the right code, message and data.
#[test]
fn rpc_error_constructors_set_code_message_and_data() {
    let invalid_params = RpcError::invalid_params("/a/0", "expected u32");
    assert_eq!(invalid_params.error_code(), ErrorCode::InvalidParams);
    assert_eq!(invalid_params.message, "Invalid params");
    assert_eq!(
        invalid_params.data,
        Some(json!({"pointer": "/a/0", "message": "expected u32"}))
    );

    let not_found = RpcError::not_found("message X");
    assert_eq!(not_found.error_code(), ErrorCode::NotFound);
    assert_eq!(not_found.message, "message X");
    assert_eq!(not_found.data, None);

    let internal = RpcError::internal("database unavailable");
    assert_eq!(internal.error_code(), ErrorCode::InternalError);
    assert_eq!(internal.message, "database unavailable");
    assert_eq!(internal.data, None);

    let method_not_found = RpcError::method_not_found("nope");
    assert_eq!(method_not_found.error_code(), ErrorCode::MethodNotFound);
    assert_eq!(method_not_found.message, "Method not found");
    assert_eq!(method_not_found.data, Some(json!({"method": "nope"})));

    let invalid_request = RpcError::invalid_request("empty batch");
    assert_eq!(invalid_request.error_code(), ErrorCode::InvalidRequest);
    assert_eq!(invalid_request.message, "Invalid Request");
    assert_eq!(invalid_request.data, Some(json!("empty batch")));

    let deadline = RpcError::deadline_exceeded();
    assert_eq!(deadline.code, -32000);
    assert_eq!(deadline.message, "Deadline exceeded");
    assert_eq!(deadline.data, None);

    let with_data = RpcError::internal("x").with_data(json!({"k": 1}));
    assert_eq!(with_data.data, Some(json!({"k": 1})));
}

// ---------------------------------------------------------------------------------------------
// 8. Correlation ids
// ---------------------------------------------------------------------------------------------

/// String ids become the correlation id as-is (not JSON-quoted or escaped).
#[test]
fn id_to_correlation_keeps_strings_as_is() {
    assert_eq!(id_to_correlation(&str_id(CONTRACT_ID)), CONTRACT_ID);
    assert_eq!(
        id_to_correlation(&str_id("a \"quoted\" id")),
        "a \"quoted\" id"
    );
    assert_eq!(id_to_correlation(&str_id("")), "");
    assert_eq!(
        id_to_correlation(&Id::Str(Cow::Owned("owned".to_owned()))),
        "owned"
    );
}

/// Numeric ids become their decimal text.
#[test]
fn id_to_correlation_writes_numbers_in_decimal() {
    assert_eq!(id_to_correlation(&Id::Number(0)), "0");
    assert_eq!(id_to_correlation(&Id::Number(1)), "1");
    assert_eq!(id_to_correlation(&Id::Number(42)), "42");
    assert_eq!(
        id_to_correlation(&Id::Number(u64::MAX)),
        "18446744073709551615"
    );
}

/// A null id becomes the text "null".
#[test]
fn id_to_correlation_writes_null_as_null() {
    assert_eq!(id_to_correlation(&Id::Null), "null");
}
