//! The registry and `schemas/` stay in step: every method a registered worker serves has a
//! job definition naming that worker, every definition names a served method, and the
//! definitions' schemas agree with what the handlers accept and answer.

use std::collections::BTreeSet;
use std::path::PathBuf;

use intercomm_core::schema::{JobDefinition, SchemaSet};
use intercomm_workers::store::Backend;
use serde_json::{Value, json};

use crate::helpers::{TestDb, internal, params};

fn schemas() -> SchemaSet {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    SchemaSet::load_dir(&dir).unwrap_or_else(|error| panic!("schemas/ must load: {error}"))
}

/// Every (worker, method) the registry builds has a definition naming that worker, and every
/// definition is served by the worker it names.
#[tokio::test]
async fn every_method_has_a_definition_and_every_definition_a_worker() {
    let schemas = schemas();
    let db = TestDb::create(Backend::Sqlite).await;
    let mut served = BTreeSet::new();
    for name in intercomm_workers::WORKERS {
        let worker = intercomm_workers::build(name, &db.services)
            .unwrap_or_else(|| panic!("WORKERS lists `{name}` but build does not know it"));
        assert_eq!(worker.name(), *name);
        assert_eq!(
            intercomm_workers::build_without_services(name).is_none(),
            intercomm_workers::needs_services(name),
            "{name}"
        );
        for method in worker.methods() {
            served.insert((name.to_string(), method.to_owned()));
        }
    }
    let defined: BTreeSet<(String, String)> = schemas
        .iter()
        .map(|definition| (definition.worker.clone(), definition.method.clone()))
        .collect();
    let undefined: Vec<_> = served.difference(&defined).collect();
    assert!(
        undefined.is_empty(),
        "served without a schemas/<method>.json naming the worker: {undefined:?}"
    );
    let unserved: Vec<_> = defined.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "defined in schemas/ but no registered worker serves it: {unserved:?}"
    );
    assert!(intercomm_workers::build("nobody", &db.services).is_none());
}

/// Compile a definition's result schema the way the gateway compiles params schemas.
fn result_validator(definition: &JobDefinition) -> jsonschema::Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&definition.result_schema)
        .unwrap_or_else(|error| panic!("{}: result schema: {error}", definition.method))
}

/// Check `params` against the method's params schema and `result` against its result schema.
fn assert_conforms(
    schemas: &SchemaSet,
    method: &str,
    params: &Value,
    result: &impl serde::Serialize,
) {
    let definition = schemas
        .get(method)
        .unwrap_or_else(|| panic!("no definition of {method}"));
    if let Err(errors) = definition.validate(params) {
        panic!("{method}: params {params} break the schema: {errors:?}");
    }
    let result = serde_json::to_value(result).expect("results serialize");
    let validator = result_validator(definition);
    let errors: Vec<String> = validator
        .iter_errors(&result)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{method}: result {result} breaks the schema: {errors:?}"
    );
}

/// Real params pass each params schema and each handler's real result passes its result
/// schema (run on SQLite; the shapes do not depend on the backend).
#[tokio::test]
async fn handlers_answer_what_their_result_schemas_promise() {
    use intercomm_workers::{messages as m, subscriptions as s, users as u};
    let schemas = schemas();
    let db = TestDb::create(Backend::Sqlite).await;
    let services = &db.services;
    let ctx = internal;

    let p = json!({"sender": "ann", "receiver": "bob", "body": "hi"});
    let sent = m::send_message(services.clone(), ctx("send_message"), params(p.clone()))
        .await
        .expect("send");
    assert_conforms(&schemas, "send_message", &p, &sent);
    let p = json!({"message_id": sent.message_id});
    let got = m::get_message(services.clone(), ctx("get_message"), params(p.clone()))
        .await
        .expect("get");
    assert_conforms(&schemas, "get_message", &p, &got);
    m::send_message(
        services.clone(),
        ctx("send_message"),
        params(json!({"sender": "ann", "receiver": "bob", "body": "2"})),
    )
    .await
    .expect("send");
    let p = json!({"user_id": "ann", "limit": 1});
    let first = m::list_messages(services.clone(), ctx("list_messages"), params(p.clone()))
        .await
        .expect("list");
    assert!(first.next_before.is_some());
    assert_conforms(&schemas, "list_messages", &p, &first);
    let p = json!({"user_id": "ann", "limit": 1, "before": first.next_before});
    let last = m::list_messages(services.clone(), ctx("list_messages"), params(p.clone()))
        .await
        .expect("list");
    assert!(last.next_before.is_none());
    assert_conforms(&schemas, "list_messages", &p, &last);

    let p = json!({"user_id": "ann", "topic": "news"});
    let on = s::subscribe_user(services.clone(), ctx("subscribe_user"), params(p.clone()))
        .await
        .expect("subscribe");
    assert_conforms(&schemas, "subscribe_user", &p, &on);
    let p = json!({"user_id": "ann"});
    let listed = s::list_subscriptions(
        services.clone(),
        ctx("list_subscriptions"),
        params(p.clone()),
    )
    .await
    .expect("list");
    assert_conforms(&schemas, "list_subscriptions", &p, &listed);
    let p = json!({"topic": "news", "payload": {"any": ["json"]}});
    let delivered = s::publish_event(services.clone(), ctx("publish_event"), params(p.clone()))
        .await
        .expect("publish");
    assert_conforms(&schemas, "publish_event", &p, &delivered);
    let p = json!({"user_id": "ann", "topic": "news"});
    let off = s::unsubscribe_user(services.clone(), ctx("unsubscribe_user"), params(p.clone()))
        .await
        .expect("unsubscribe");
    assert_conforms(&schemas, "unsubscribe_user", &p, &off);

    let p = json!({"user_id": "ann", "buffer_msg": "AP+A/w=="});
    let added = u::add_buffer_msg(services.clone(), ctx("add_buffer_msg"), params(p.clone()))
        .await
        .expect("add");
    assert_conforms(&schemas, "add_buffer_msg", &p, &added);
    let p = json!({"buffer_uuid": added.buffer_uuid});
    let buffer = u::get_buffer_msg(services.clone(), ctx("get_buffer_msg"), params(p.clone()))
        .await
        .expect("get");
    assert_conforms(&schemas, "get_buffer_msg", &p, &buffer);
    let p = json!({"user_id": "ann", "type": "FRAME_RENDERED", "data": {"frame": 1}});
    let recorded = u::user_message(services.clone(), ctx("user_message"), params(p.clone()))
        .await
        .expect("record");
    assert_conforms(&schemas, "user_message", &p, &recorded);
}

/// The schemas refuse what the handlers refuse (so the gateway answers 422 where a worker
/// would answer -32602), on a sample of bad params per method.
#[test]
fn schemas_refuse_what_decoding_refuses() {
    let schemas = schemas();
    let uuid = "0190a0c2-7b1e-7c3a-9f00-5d2c8e1b4a77";
    let cases: &[(&str, Value, &str)] = &[
        (
            "send_message",
            json!({"sender": "a b", "receiver": "bob", "body": "x"}),
            "/sender",
        ),
        (
            "send_message",
            json!({"sender": "ann", "receiver": "bob", "body": ""}),
            "/body",
        ),
        (
            "send_message",
            json!({"sender": "ann", "receiver": "bob", "body": "x".repeat(10_001)}),
            "/body",
        ),
        (
            "send_message",
            json!({"sender": "ann", "receiver": "bob", "body": "x", "cc": "eve"}),
            "",
        ),
        (
            "get_message",
            json!({"message_id": "X9J0UI76GBWQTF"}),
            "/message_id",
        ),
        (
            "list_messages",
            json!({"user_id": "ann", "limit": 0}),
            "/limit",
        ),
        (
            "list_messages",
            json!({"user_id": "ann", "limit": 101}),
            "/limit",
        ),
        (
            "list_messages",
            json!({"user_id": "ann", "before": "yesterday"}),
            "/before",
        ),
        (
            "subscribe_user",
            json!({"user_id": "ann", "topic": "News"}),
            "/topic",
        ),
        (
            "unsubscribe_user",
            json!({"user_id": "ann", "topic": "-x"}),
            "/topic",
        ),
        (
            "list_subscriptions",
            json!({"user_id": "x".repeat(65)}),
            "/user_id",
        ),
        ("publish_event", json!({"topic": "news"}), ""),
        (
            "add_buffer_msg",
            json!({"user_id": "ann", "buffer_msg": "not base64!"}),
            "/buffer_msg",
        ),
        (
            "get_buffer_msg",
            json!({"buffer_uuid": "nope"}),
            "/buffer_uuid",
        ),
        (
            "user_message",
            json!({"user_id": "ann", "type": "PING", "data": 1}),
            "/type",
        ),
        (
            "user_message",
            json!({"user_id": "ann", "type": "TEST"}),
            "",
        ),
    ];
    for (method, params, pointer) in cases {
        let definition = schemas.get(method).expect("defined");
        let errors = definition
            .validate(params)
            .expect_err(&format!("{method}: the schema must refuse {params}"));
        assert!(
            errors.iter().any(|error| error.pointer == *pointer),
            "{method}: expected an error at `{pointer}`, got {errors:?}"
        );
    }
    // And accepts the optional fields' absence and null cursors.
    for (method, params) in [
        ("list_messages", json!({"user_id": "ann"})),
        (
            "list_messages",
            json!({"user_id": "ann", "before": null, "limit": 100}),
        ),
        (
            "list_messages",
            json!({"user_id": "ann@example.com", "before": uuid}),
        ),
        (
            "publish_event",
            json!({"topic": "a.b-c_d", "payload": null}),
        ),
        (
            "user_message",
            json!({"user_id": "ann", "type": "RENDER_COMPLETED", "data": [1]}),
        ),
    ] {
        let definition = schemas.get(method).expect("defined");
        if let Err(errors) = definition.validate(&params) {
            panic!("{method}: {params} should pass: {errors:?}");
        }
    }
}

/// The routes are the documented ones, and a claimer is set exactly where a user acts.
#[test]
fn routes_and_claimers_are_the_documented_ones() {
    let schemas = schemas();
    let expected = [
        ("send_message", "POST", "/v1/messages", Some("/sender")),
        ("get_message", "GET", "/v1/messages/{message_id}", None),
        (
            "list_messages",
            "GET",
            "/v1/users/{user_id}/messages",
            Some("/user_id"),
        ),
        (
            "subscribe_user",
            "POST",
            "/v1/users/{user_id}/subscriptions",
            Some("/user_id"),
        ),
        (
            "unsubscribe_user",
            "DELETE",
            "/v1/users/{user_id}/subscriptions/{topic}",
            Some("/user_id"),
        ),
        (
            "list_subscriptions",
            "GET",
            "/v1/users/{user_id}/subscriptions",
            Some("/user_id"),
        ),
        ("publish_event", "POST", "/v1/topics/{topic}/events", None),
        (
            "add_buffer_msg",
            "POST",
            "/v1/users/{user_id}/buffers",
            Some("/user_id"),
        ),
        ("get_buffer_msg", "GET", "/v1/buffers/{buffer_uuid}", None),
        (
            "user_message",
            "POST",
            "/v1/users/{user_id}/messages/typed",
            Some("/user_id"),
        ),
    ];
    for (method, verb, path, claimer) in expected {
        let definition = schemas.get(method).expect("defined");
        let route = definition.http.as_ref().expect("a REST route");
        assert_eq!(
            (route.verb.as_str(), route.path.as_str()),
            (verb, path),
            "{method}"
        );
        assert_eq!(definition.claimer.as_deref(), claimer, "{method}");
        assert!(definition.timeout.is_some(), "{method} has a deadline");
    }
}
