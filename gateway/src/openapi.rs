//! The OpenAPI 3.1 document served at `GET /openapi.json`, generated from the loaded job
//! definitions (CONTRACT.md §4, §5).
//!
//! Each definition's params and result schemas become components (`<method>.params`,
//! `<method>.result`) referenced by its operations: `POST /v1/jobs/<method>` and, when the
//! definition has one, its own route. A schema's local references (`#/$defs/...`) are rebased
//! onto its component (`#/components/schemas/<method>.params/$defs/...`) so that they resolve
//! from the document root, for every tool.

use std::collections::{BTreeMap, BTreeSet};

use intercomm_core::schema::{HttpRoute, JobDefinition, SchemaSet};
use serde_json::{Map, Value, json};

/// The JSON Schema dialect of every schema in the document.
const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// What the document says about the API itself (its `info` object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiInfo {
    /// The API's name.
    pub title: String,
    /// The API's version (not the OpenAPI version).
    pub version: String,
    /// A longer description (CommonMark), if any.
    pub description: Option<String>,
}

/// The OpenAPI 3.1.0 document for the gateway serving `schemas`: the submit path of every
/// definition, every definition's own route, the gateway's fixed paths and the shared
/// components.
#[must_use]
pub fn document(schemas: &SchemaSet, info: &ApiInfo) -> Value {
    let mut operation_ids = OperationIds::default();
    let mut paths = static_paths(&mut operation_ids);
    let mut component_schemas = shared_schemas();
    let mut workers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();

    for definition in schemas.iter() {
        let method = definition.method.as_str();
        workers
            .entry(definition.worker.as_str())
            .or_default()
            .push(method);
        let params = embeddable(&definition.params_schema, &params_component(method));
        component_schemas.insert(
            result_component(method),
            embeddable(&definition.result_schema, &result_component(method)),
        );

        let submit = submit_operation(definition, &mut operation_ids);
        paths.insert(format!("/v1/jobs/{method}"), json!({ "post": submit }));

        if let Some(route) = &definition.http {
            let body = route_body_schema(&params, route);
            let operation = route_operation(
                definition,
                &params,
                route,
                body.is_some(),
                &mut operation_ids,
            );
            if let Some(body) = body {
                component_schemas.insert(body_component(method), body);
            }
            let item = paths
                .entry(route.path.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(item) = item.as_object_mut() {
                item.insert(route.verb.as_str().to_ascii_lowercase(), operation);
            }
        }
        component_schemas.insert(params_component(method), params);
    }

    let mut info_object = json!({ "title": info.title, "version": info.version });
    if let Some(description) = &info.description {
        info_object["description"] = json!(description);
    }

    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": DIALECT,
        "info": info_object,
        "security": [{ "bearer": [] }],
        "tags": tags(&workers),
        "paths": paths,
        "components": {
            "schemas": component_schemas,
            "responses": shared_responses(),
            "parameters": shared_parameters(),
            "headers": shared_headers(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A JWT whose `sub` is the user the requests act for."
                }
            }
        }
    })
}

/// Hands out operation ids, making each unique (`x`, then `x_2`, `x_3`...) in the order asked.
#[derive(Debug, Default)]
struct OperationIds(BTreeSet<String>);

impl OperationIds {
    fn unique(&mut self, base: &str) -> String {
        let mut candidate = base.to_owned();
        let mut n = 1;
        while self.0.contains(&candidate) {
            n += 1;
            candidate = format!("{base}_{n}");
        }
        self.0.insert(candidate.clone());
        candidate
    }
}

/// `#/components/<kind>/<name>`.
fn reference(kind: &str, name: &str) -> Value {
    json!({ "$ref": format!("#/components/{kind}/{name}") })
}

fn params_component(method: &str) -> String {
    format!("{method}.params")
}

fn result_component(method: &str) -> String {
    format!("{method}.result")
}

fn body_component(method: &str) -> String {
    format!("{method}.body")
}

/// A definition's schema ready to embed as the component `name`: boolean schemas become
/// objects, and local references (`#`, `#/...`) are rebased onto the component, unless the schema
/// has its own `$id` (it is then a resource of its own, whose references resolve inside it).
fn embeddable(schema: &Value, name: &str) -> Value {
    match schema {
        Value::Bool(true) => json!({}),
        Value::Bool(false) => json!({ "not": {} }),
        Value::Object(object) if object.contains_key("$id") => schema.clone(),
        other => {
            let mut schema = other.clone();
            rebase_references(&mut schema, &format!("#/components/schemas/{name}"));
            schema
        }
    }
}

/// Keywords whose values are data, not schemas: references inside them are left alone.
const DATA_KEYWORDS: [&str; 5] = ["const", "enum", "default", "examples", "example"];

/// Keywords whose values map names to schemas (the names are not keywords).
const SCHEMA_MAPS: [&str; 5] = [
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

/// Rewrite every local `$ref` (`#` or `#/...`) in `schema` to start with `base`.
fn rebase_references(schema: &mut Value, base: &str) {
    match schema {
        Value::Object(object) => {
            for (key, value) in object.iter_mut() {
                match value {
                    Value::String(target)
                        if key == "$ref" && (target == "#" || target.starts_with("#/")) =>
                    {
                        *target = format!("{base}{}", &target[1..]);
                    }
                    _ if DATA_KEYWORDS.contains(&key.as_str()) => {}
                    Value::Object(map) if SCHEMA_MAPS.contains(&key.as_str()) => {
                        for subschema in map.values_mut() {
                            rebase_references(subschema, base);
                        }
                    }
                    _ => rebase_references(value, base),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                rebase_references(item, base);
            }
        }
        _ => {}
    }
}

/// The params schema's `properties`, if it lists any.
fn properties(definition: &JobDefinition) -> Option<&Map<String, Value>> {
    definition
        .params_schema
        .get("properties")
        .and_then(Value::as_object)
}

/// The params schema's `required` names.
fn required(definition: &JobDefinition) -> BTreeSet<&str> {
    definition
        .params_schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The schema of one property of the (embedded) params schema, for a path or query parameter;
/// a string when the property is not declared.
fn property_schema(params: &Value, name: &str) -> Value {
    match params
        .get("properties")
        .and_then(|properties| properties.get(name))
    {
        Some(Value::Bool(true)) => json!({}),
        Some(Value::Bool(false)) => json!({ "not": {} }),
        Some(schema) => schema.clone(),
        None => json!({ "type": "string" }),
    }
}

/// Whether a property schema says `type: array` (alone or among others).
fn is_array(schema: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(kind)) => kind == "array",
        Some(Value::Array(kinds)) => kinds.iter().any(|kind| kind == "array"),
        _ => false,
    }
}

/// `x.y` → `x_y`, for operation ids.
fn operation_name(method: &str) -> String {
    method.replace('.', "_")
}

/// What a definition's operations say beyond its summary.
fn operation_description(definition: &JobDefinition) -> String {
    let mut text = format!(
        "Queues a `{}` job for worker `{}` (queue `rpc_queue_{}`). Answers `202 Accepted` once \
         the broker confirmed the job; poll `Location` for the outcome. With `Prefer: wait=<s>` \
         it answers `200` with the finished job if it finishes in time.",
        definition.method, definition.worker, definition.worker
    );
    if let Some(claimer) = &definition.claimer {
        text.push_str(&format!(
            "\n\nThe token's subject must equal the params' `{claimer}` (JSON Pointer), or the \
             answer is `403`."
        ));
    }
    if let Some(timeout) = definition.timeout {
        text.push_str(&format!(
            "\n\nThe job expires if no reply comes within {} ms.",
            timeout.as_millis()
        ));
    }
    text
}

/// `POST /v1/jobs/<method>`.
fn submit_operation(definition: &JobDefinition, ids: &mut OperationIds) -> Value {
    let method = definition.method.as_str();
    json!({
        "operationId": ids.unique(&format!("submit_{}", operation_name(method))),
        "summary": definition.summary,
        "description": operation_description(definition),
        "tags": [definition.worker],
        "parameters": [
            reference("parameters", "IdempotencyKey"),
            reference("parameters", "Prefer"),
        ],
        "requestBody": {
            "required": true,
            "content": {
                "application/json": {
                    "schema": reference("schemas", &params_component(method))
                }
            }
        },
        "responses": submit_responses(definition, true),
    })
}

/// The body schema of a route that takes a body and has path parameters: the params schema
/// without the path parameters (they come from the path). `None` when the route takes no body
/// or has no path parameters (the body is then the params component itself, or absent).
fn route_body_schema(params: &Value, route: &HttpRoute) -> Option<Value> {
    if !route.verb.takes_body() || route.path_params.is_empty() {
        return None;
    }
    // A copy of the embedded params: its references still point into the params component.
    let Value::Object(mut schema) = params.clone() else {
        return None;
    };
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        for name in &route.path_params {
            properties.remove(name);
        }
    }
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|name| {
            name.as_str()
                .is_none_or(|name| !route.path_params.iter().any(|param| param == name))
        });
    }
    Some(Value::Object(schema))
}

/// A definition's own route: path parameters, query parameters (`GET`, `DELETE`) or a JSON
/// body (`POST`, `PUT`, `PATCH`).
fn route_operation(
    definition: &JobDefinition,
    params: &Value,
    route: &HttpRoute,
    has_body_component: bool,
    ids: &mut OperationIds,
) -> Value {
    let method = definition.method.as_str();
    let required = required(definition);
    let mut parameters: Vec<Value> = route
        .path_params
        .iter()
        .map(|name| {
            parameter(
                definition,
                name,
                json!({
                    "name": name,
                    "in": "path",
                    "required": true,
                    "schema": property_schema(params, name),
                }),
            )
        })
        .collect();
    if !route.verb.takes_body() {
        let in_path = |name: &str| route.path_params.iter().any(|param| param == name);
        for name in properties(definition)
            .into_iter()
            .flat_map(|properties| properties.keys())
            .filter(|name| !in_path(name))
        {
            let schema = property_schema(params, name);
            let mut query = json!({
                "name": name,
                "in": "query",
                "required": required.contains(name.as_str()),
                "schema": schema,
            });
            let declared = properties(definition).and_then(|properties| properties.get(name));
            if declared.is_some_and(is_array) {
                // `coerce_text` splits on `,`: `?tags=a,b`.
                query["style"] = json!("form");
                query["explode"] = json!(false);
            }
            parameters.push(parameter(definition, name, query));
        }
    }
    parameters.push(reference("parameters", "IdempotencyKey"));
    parameters.push(reference("parameters", "Prefer"));

    let mut operation = json!({
        "operationId": ids.unique(&operation_name(method)),
        "summary": definition.summary,
        "description": format!(
            "{}\n\nThe path{} parameters are merged into the params, which are then handled as by \
             `POST /v1/jobs/{method}`.",
            operation_description(definition),
            if route.verb.takes_body() { "" } else { " and query" },
        ),
        "tags": [definition.worker],
        "parameters": parameters,
        "responses": submit_responses(definition, route.verb.takes_body()),
    });
    if route.verb.takes_body() {
        let component = if has_body_component {
            body_component(method)
        } else {
            params_component(method)
        };
        // The gateway reads an empty body as `{}`: it may be left out when the path carries
        // every required field.
        let body_required = required
            .iter()
            .any(|name| !route.path_params.iter().any(|param| param == name));
        let mut content = json!({
            "application/json": { "schema": reference("schemas", &component) }
        });
        if let Some(property) = definition.binary_param() {
            content["application/octet-stream"] = json!({
                "schema": {
                    "description": format!(
                        "Raw bytes: the gateway base64-encodes them into `{property}`; the other \
                         params come from the path."
                    ),
                    "type": "string",
                    "format": "binary"
                }
            });
        }
        operation["requestBody"] = json!({
            "required": body_required,
            "content": content
        });
    }
    operation
}

/// A parameter object with the property's `description`, if it has one.
fn parameter(definition: &JobDefinition, name: &str, mut object: Value) -> Value {
    let description = properties(definition)
        .and_then(|properties| properties.get(name))
        .and_then(|property| property.get("description"))
        .and_then(Value::as_str);
    if let Some(description) = description {
        object["description"] = json!(description);
    }
    object
}

/// The answers of a submit (generic or own route).
fn submit_responses(definition: &JobDefinition, takes_body: bool) -> Value {
    let mut done_content = json!({
        "application/json": {
            "schema": {
                "allOf": [
                    reference("schemas", "Job"),
                    {
                        "properties": {
                            "result": reference(
                                "schemas",
                                &result_component(&definition.method)
                            )
                        }
                    }
                ]
            }
        }
    });
    let bytes_out = definition.binary_result();
    let mut done_description = "`Prefer: wait=<s>` was sent and the job reached a final state in \
                                time: the job, with `result` as the method defines it (an \
                                `Idempotency-Key` replay answers the job first submitted with \
                                that key)."
        .to_owned();
    if let Some(property) = bytes_out {
        done_content["application/octet-stream"] = json!({
            "schema": { "type": "string", "format": "binary" }
        });
        done_description.push_str(&format!(
            " With `Accept: application/octet-stream`, the gateway waits for the job (up to its \
             longest wait) and answers the result's `{property}` decoded, as raw bytes."
        ));
    }
    let mut responses = json!({
        "202": {
            "description": "Accepted: the broker confirmed the job. Poll `Location` (after \
                            `Retry-After` seconds) for the outcome.",
            "headers": {
                "Location": reference("headers", "Location"),
                "Retry-After": reference("headers", "RetryAfter"),
            },
            "content": {
                "application/json": { "schema": reference("schemas", "JobAccepted") }
            }
        },
        "200": {
            "description": done_description,
            "headers": { "Preference-Applied": reference("headers", "PreferenceApplied") },
            "content": done_content
        },
        "400": reference("responses", "BadRequest"),
        "401": reference("responses", "Unauthorized"),
        "403": reference("responses", "Forbidden"),
        "404": reference("responses", "NotFound"),
        "422": reference("responses", "ValidationFailed"),
        "429": reference("responses", "TooManyRequests"),
        "500": reference("responses", "InternalError"),
        "503": reference("responses", "Unavailable"),
        "504": reference("responses", "GatewayTimeout"),
    });
    if takes_body {
        responses["413"] = reference("responses", "PayloadTooLarge");
        responses["415"] = reference("responses", "UnsupportedMediaType");
    }
    if bytes_out.is_some() {
        responses["502"] = reference("responses", "JobFailed");
    }
    responses
}

/// The gateway's fixed paths.
fn static_paths(ids: &mut OperationIds) -> Map<String, Value> {
    let unauthenticated: Value = json!([]);
    let mut paths = Map::new();
    paths.insert(
        "/v1/jobs/{job_id}".to_owned(),
        json!({
            "get": {
                "operationId": ids.unique("get_job"),
                "summary": "Read a job's state.",
                "description": "`queued`, `succeeded` (with `result`), `failed` (with the \
                                JSON-RPC `error`) or `expired`. Only the subject that submitted \
                                the job may read it. `Retry-After` is set while it is not final.",
                "tags": ["jobs"],
                "parameters": [
                    {
                        "name": "job_id",
                        "in": "path",
                        "required": true,
                        "schema": { "type": "string" }
                    },
                    {
                        "name": "wait",
                        "in": "query",
                        "required": false,
                        "description": "Seconds to wait for a final state before answering \
                                        (capped by the gateway).",
                        "schema": { "type": "integer", "minimum": 0, "maximum": u64::MAX }
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The job.",
                        "headers": {
                            "Retry-After": {
                                "description": "Seconds to wait before asking again; sent \
                                                while the job is `queued`.",
                                "schema": { "type": "integer", "minimum": 0 }
                            }
                        },
                        "content": {
                            "application/json": { "schema": reference("schemas", "Job") }
                        }
                    },
                    "400": reference("responses", "BadRequest"),
                    "401": reference("responses", "Unauthorized"),
                    "404": reference("responses", "NotFound"),
                    "429": reference("responses", "TooManyRequests"),
                    "503": reference("responses", "Unavailable"),
                    "504": reference("responses", "GatewayTimeout"),
                }
            }
        }),
    );
    paths.insert(
        "/v1/rpc".to_owned(),
        json!({
            "post": {
                "operationId": ids.unique("rpc"),
                "summary": "Call methods synchronously with JSON-RPC 2.0.",
                "description": "Each request is validated against its method's params schema, \
                                published, and answered when the reply comes or the deadline \
                                passes. A batch is answered with an array; notifications get no \
                                response (`204` when the request held only notifications).",
                "tags": ["rpc"],
                "requestBody": {
                    "required": true,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    reference("schemas", "JsonRpcRequest"),
                                    {
                                        "type": "array",
                                        "minItems": 1,
                                        "items": reference("schemas", "JsonRpcRequest")
                                    }
                                ]
                            }
                        }
                    }
                },
                "responses": {
                    "200": {
                        "description": "The JSON-RPC response, or an array of them for a batch.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        reference("schemas", "JsonRpcResponse"),
                                        {
                                            "type": "array",
                                            "items": reference("schemas", "JsonRpcResponse")
                                        }
                                    ]
                                }
                            }
                        }
                    },
                    "204": { "description": "The request held only notifications." },
                    "401": reference("responses", "Unauthorized"),
                    "413": reference("responses", "PayloadTooLarge"),
                    "415": reference("responses", "UnsupportedMediaType"),
                    "429": reference("responses", "TooManyRequests"),
                    "503": reference("responses", "Unavailable"),
                    "504": reference("responses", "GatewayTimeout"),
                }
            }
        }),
    );
    paths.insert(
        "/v1/events".to_owned(),
        json!({
            "get": {
                "operationId": ids.unique("events"),
                "summary": "Follow the subject's job completions and user events.",
                "description": "Server-Sent Events: each job of the token's subject reaching a \
                                final state is sent as `event: job`, `id:` the job id, `data:` \
                                the job (see the `Job` schema); each user event for the subject \
                                as `event: user`, `data:` the event's JSON object. A comment \
                                line keeps the connection alive every 15 s.",
                "tags": ["events"],
                "responses": {
                    "200": {
                        "description": "An endless event stream. The schema describes one \
                                        event, as the fields an SSE parser reads from it.",
                        "content": {
                            "text/event-stream": { "schema": reference("schemas", "Event") }
                        }
                    },
                    "401": reference("responses", "Unauthorized"),
                    "429": reference("responses", "TooManyRequests"),
                }
            }
        }),
    );
    paths.insert(
        "/healthz".to_owned(),
        json!({
            "get": {
                "operationId": ids.unique("healthz"),
                "summary": "Liveness: the process is up.",
                "tags": ["operations"],
                "security": unauthenticated,
                "responses": {
                    "200": {
                        "description": "Alive.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": { "status": { "const": "ok" } }
                                }
                            }
                        }
                    }
                }
            }
        }),
    );
    paths.insert(
        "/readyz".to_owned(),
        json!({
            "get": {
                "operationId": ids.unique("readyz"),
                "summary": "Readiness: connected to the broker, topology declared, schemas \
                            loaded, not shutting down.",
                "tags": ["operations"],
                "security": unauthenticated,
                "responses": {
                    "200": {
                        "description": "Ready.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "status": { "const": "ready" },
                                        "broker_connected": { "type": "boolean" },
                                        "schemas_loaded": { "type": "integer", "minimum": 0 }
                                    }
                                }
                            }
                        }
                    },
                    "503": {
                        "description": "Not ready; `detail` says why.",
                        "content": {
                            "application/problem+json": {
                                "schema": reference("schemas", "Problem")
                            }
                        }
                    }
                }
            }
        }),
    );
    paths.insert(
        "/metrics".to_owned(),
        json!({
            "get": {
                "operationId": ids.unique("metrics"),
                "summary": "Prometheus metrics.",
                "tags": ["operations"],
                "security": unauthenticated,
                "responses": {
                    "200": {
                        "description": "The metrics in the Prometheus / OpenMetrics text format.",
                        "content": {
                            "text/plain": { "schema": { "type": "string" } },
                            "application/openmetrics-text": { "schema": { "type": "string" } }
                        }
                    }
                }
            }
        }),
    );
    paths.insert(
        "/openapi.json".to_owned(),
        json!({
            "get": {
                "operationId": ids.unique("openapi"),
                "summary": "This document.",
                "tags": ["operations"],
                "security": unauthenticated,
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.1 document generated from the loaded \
                                        job definitions.",
                        "content": {
                            "application/json": { "schema": { "type": "object" } }
                        }
                    }
                }
            }
        }),
    );
    paths
}

/// One tag per worker, then the fixed ones.
fn tags(workers: &BTreeMap<&str, Vec<&str>>) -> Value {
    let mut tags: Vec<Value> = workers
        .iter()
        .map(|(worker, methods)| {
            json!({
                "name": worker,
                "description": format!(
                    "Jobs served by worker `{worker}` (queue `rpc_queue_{worker}`): {}.",
                    methods
                        .iter()
                        .map(|method| format!("`{method}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
        })
        .collect();
    for (name, description) in [
        ("jobs", "Job state."),
        ("rpc", "Synchronous JSON-RPC 2.0 over HTTP."),
        ("events", "Server-Sent Events."),
        (
            "operations",
            "Health, readiness, metrics and this document.",
        ),
    ] {
        if !workers.contains_key(name) {
            tags.push(json!({ "name": name, "description": description }));
        }
    }
    Value::Array(tags)
}

/// The schemas every document has.
fn shared_schemas() -> Map<String, Value> {
    let schemas = json!({
        "Problem": {
            "description": "RFC 9457 problem details.",
            "type": "object",
            "required": ["type", "title", "status"],
            "properties": {
                "type": { "type": "string", "format": "uri-reference" },
                "title": { "type": "string" },
                "status": { "type": "integer", "minimum": 100, "maximum": 599 },
                "detail": { "type": "string" },
                "errors": {
                    "description": "For validation failures (`422`): every violation.",
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["pointer", "message"],
                        "properties": {
                            "pointer": {
                                "description": "JSON Pointer of the failing location in the \
                                                params (`\"\"` for the params themselves).",
                                "type": "string"
                            },
                            "message": { "type": "string" }
                        }
                    }
                }
            }
        },
        "JobLinks": {
            "type": "object",
            "required": ["self"],
            "properties": {
                "self": { "type": "string", "format": "uri-reference" }
            }
        },
        "JobAccepted": {
            "description": "A queued job.",
            "type": "object",
            "required": ["job_id", "method", "status", "links"],
            "properties": {
                "job_id": { "type": "string" },
                "method": { "type": "string" },
                "status": { "const": "queued" },
                "links": reference("schemas", "JobLinks")
            }
        },
        "Job": {
            "description": "A job and, once final, its outcome.",
            "type": "object",
            "required": ["job_id", "method", "status", "created_at", "links"],
            "properties": {
                "job_id": { "type": "string" },
                "method": { "type": "string" },
                "status": {
                    "type": "string",
                    "enum": ["queued", "succeeded", "failed", "expired"]
                },
                "result": { "description": "When `succeeded`: the method's result." },
                "error": reference("schemas", "JsonRpcError"),
                "created_at": { "type": "string", "format": "date-time" },
                "completed_at": { "type": "string", "format": "date-time" },
                "links": reference("schemas", "JobLinks")
            }
        },
        "Event": {
            "description": "One Server-Sent Event of `GET /v1/events`: a job of the subject \
                            that became final (`job`), or a user event for it (`user`).",
            "oneOf": [
                {
                    "type": "object",
                    "required": ["event", "id", "data"],
                    "properties": {
                        "event": { "const": "job" },
                        "id": { "description": "The job id.", "type": "string" },
                        "data": {
                            "description": "The job, as JSON.",
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": reference("schemas", "Job")
                        }
                    }
                },
                {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": { "const": "user" },
                        "data": {
                            "description": "The user event, a JSON object with its `type`.",
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": { "type": "object" }
                        }
                    }
                }
            ]
        },
        "JsonRpcError": {
            "description": "A JSON-RPC 2.0 error object.",
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": { "type": "integer" },
                "message": { "type": "string" },
                "data": {}
            }
        },
        "JsonRpcId": {
            "description": "A string, a non-negative integer or null.",
            "type": ["string", "integer", "null"],
            "minimum": 0,
            "maximum": u64::MAX
        },
        "JsonRpcRequest": {
            "description": "A JSON-RPC 2.0 request; without `id` it is a notification.",
            "type": "object",
            "required": ["jsonrpc", "method"],
            "properties": {
                "jsonrpc": { "const": "2.0" },
                "method": { "type": "string" },
                "params": { "type": ["object", "array"] },
                "id": reference("schemas", "JsonRpcId")
            }
        },
        "JsonRpcResponse": {
            "description": "A JSON-RPC 2.0 response: `result` or `error`.",
            "type": "object",
            "required": ["jsonrpc", "id"],
            "properties": {
                "jsonrpc": { "const": "2.0" },
                "result": {},
                "error": reference("schemas", "JsonRpcError"),
                "id": reference("schemas", "JsonRpcId")
            },
            "oneOf": [
                { "required": ["result"] },
                { "required": ["error"] }
            ]
        }
    });
    match schemas {
        Value::Object(schemas) => schemas,
        _ => Map::new(),
    }
}

/// A `problem+json` response with `description`, and the `Retry-After` header if `retry`.
fn problem_response(description: &str, retry: bool) -> Value {
    let mut response = json!({
        "description": description,
        "content": {
            "application/problem+json": { "schema": reference("schemas", "Problem") }
        }
    });
    if retry {
        response["headers"] = json!({ "Retry-After": reference("headers", "RetryAfter") });
    }
    response
}

/// The error answers operations share.
fn shared_responses() -> Value {
    let mut unauthorized = problem_response(
        "The bearer token is missing or invalid; `WWW-Authenticate` says why (RFC 6750).",
        false,
    );
    unauthorized["headers"] = json!({
        "WWW-Authenticate": reference("headers", "WWWAuthenticate")
    });
    json!({
        "BadRequest": problem_response(
            "The body is not JSON (or not an object), or a header or query parameter is \
             malformed.",
            false
        ),
        "Unauthorized": unauthorized,
        "Forbidden": problem_response(
            "The params name another user than the token's subject.",
            false
        ),
        "NotFound": problem_response(
            "No such method, route or job; or, for a raw-bytes answer, the job failed with \
             -32002 (not found).",
            false
        ),
        "PayloadTooLarge": problem_response("The body is over the gateway's limit.", false),
        "UnsupportedMediaType": problem_response(
            "The body is not `application/json` (or `application/octet-stream` where the \
             operation takes raw bytes).",
            false
        ),
        "ValidationFailed": problem_response(
            "The params break the method's schema; `errors` lists every violation.",
            false
        ),
        "TooManyRequests": problem_response("Over the rate limit; retry later.", true),
        "InternalError": problem_response("A bug in the gateway; the details are in its log.", false),
        "JobFailed": problem_response(
            "A raw-bytes answer was asked for (`Accept: application/octet-stream`) and the job \
             failed; `detail` has its JSON-RPC error code and message.",
            false
        ),
        "Unavailable": problem_response(
            "The broker is unreachable or refused the job, no worker queue is bound for the \
             method, or the gateway is shutting down; retry later.",
            true
        ),
        "GatewayTimeout": problem_response(
            "The request took longer than the gateway's request timeout.",
            false
        ),
    })
}

/// The request headers submits accept.
fn shared_parameters() -> Value {
    json!({
        "IdempotencyKey": {
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": "The same key from the same subject returns the same job instead \
                            of queueing another. Reusing a key for another method is 400; the \
                            params of a replay are not compared.",
            "schema": { "type": "string", "minLength": 1, "maxLength": 255 }
        },
        "Prefer": {
            "name": "Prefer",
            "in": "header",
            "required": false,
            "description": "`wait=<seconds>` (RFC 7240): wait up to that long (capped by the \
                            gateway) for the job to finish and answer `200` with it.",
            "schema": { "type": "string" },
            "example": "wait=10"
        }
    })
}

/// The response headers operations share.
fn shared_headers() -> Value {
    json!({
        "Location": {
            "description": "The job's URL, `/v1/jobs/{job_id}`.",
            "required": true,
            "schema": { "type": "string", "format": "uri-reference" }
        },
        "RetryAfter": {
            "description": "Seconds to wait before asking again.",
            "required": true,
            "schema": { "type": "integer", "minimum": 0 }
        },
        "WWWAuthenticate": {
            "description": "The RFC 6750 challenge: `Bearer`, with `error` and \
                            `error_description` when a token came and was refused.",
            "required": true,
            "schema": { "type": "string", "pattern": "^Bearer" }
        },
        "PreferenceApplied": {
            "description": "The `wait` preference that was honoured.",
            "schema": { "type": "string" }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A definition from JSON text (must be valid).
    fn definition(value: &Value) -> JobDefinition {
        let file = format!("{}.json", value["method"].as_str().unwrap_or("x"));
        JobDefinition::from_json(&value.to_string(), Path::new(&file)).expect("a valid definition")
    }

    /// echo (no route), send_message (POST route with a path parameter and a claimer),
    /// get_message (GET route with query parameters), user.lookup (a dotted method whose schema
    /// uses `$ref`), and get_job (a route op whose id would collide with the static one).
    fn schemas() -> SchemaSet {
        let echo = json!({
            "method": "echo", "worker": "echo", "summary": "Echo.",
            "params": {"type": "object"}, "timeout_ms": 30000
        });
        let send_message = json!({
            "method": "send_message", "worker": "messages", "summary": "Send a message.",
            "params": {
                "type": "object",
                "required": ["sender", "text"],
                "properties": {
                    "sender": {"type": "string", "description": "Who sends."},
                    "text": {"type": "string"},
                    "send_at": {"type": "string", "format": "date-time"}
                }
            },
            "result": {"type": "object", "properties": {"message_id": {"type": "string"}}},
            "http": {"verb": "POST", "path": "/v1/users/{sender}/messages"},
            "claimer": "/sender"
        });
        let get_message = json!({
            "method": "get_message", "worker": "messages", "summary": "Read a message.",
            "params": {
                "type": "object",
                "required": ["message_id"],
                "properties": {
                    "message_id": {"type": "string"},
                    "fields": {"type": "array", "items": {"type": "string"}},
                    "limit": {"type": "integer"}
                }
            },
            "http": {"verb": "GET", "path": "/v1/messages/{message_id}"}
        });
        let lookup = json!({
            "method": "user.lookup", "worker": "users", "summary": "Find a user.",
            "params": {
                "type": "object",
                "$defs": {"id": {"type": "string", "minLength": 1}},
                "required": ["id"],
                "properties": {"id": {"$ref": "#/$defs/id"}}
            },
            "http": {"verb": "DELETE", "path": "/v1/lookups/{id}"}
        });
        let get_job = json!({
            "method": "get_job", "worker": "users", "summary": "Collides on purpose.",
            "params": {"type": "object", "properties": {"id": {"type": "string"}}},
            "http": {"verb": "GET", "path": "/v1/legacy/{id}"}
        });
        SchemaSet::from_definitions(
            [echo, send_message, get_message, lookup, get_job]
                .iter()
                .map(definition)
                .collect(),
        )
        .expect("no conflicts")
    }

    fn info() -> ApiInfo {
        ApiInfo {
            title: "intercomm".to_owned(),
            version: "0.1.0".to_owned(),
            description: Some("Tests.".to_owned()),
        }
    }

    fn doc() -> Value {
        document(&schemas(), &info())
    }

    /// Every operation of the document, as (path, verb, operation).
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (verb, operation) in item.as_object().expect("a path item") {
                out.push((path.clone(), verb.clone(), operation.clone()));
            }
        }
        out
    }

    /// Follow a local `$ref` (`#/...`) in the document.
    fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(target) => doc
                .pointer(target.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling reference {target}")),
            None => value,
        }
    }

    /// The document is OpenAPI 3.1.0 with the draft 2020-12 dialect and the given info.
    #[test]
    fn the_document_is_openapi_3_1_with_the_2020_12_dialect() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["jsonSchemaDialect"], DIALECT);
        assert_eq!(doc["info"]["title"], "intercomm");
        assert_eq!(doc["info"]["version"], "0.1.0");
        assert_eq!(doc["info"]["description"], "Tests.");
        let no_description = document(
            &schemas(),
            &ApiInfo {
                description: None,
                ..info()
            },
        );
        assert!(no_description["info"].get("description").is_none());
    }

    /// Every method has `POST /v1/jobs/<method>` with the literal method in the path, the
    /// params schema as its body, and headers Idempotency-Key and Prefer.
    #[test]
    fn every_method_has_its_submit_path() {
        let doc = doc();
        for (method, id) in [
            ("echo", "submit_echo"),
            ("send_message", "submit_send_message"),
            ("get_message", "submit_get_message"),
            ("user.lookup", "submit_user_lookup"),
        ] {
            let operation = &doc["paths"][format!("/v1/jobs/{method}")]["post"];
            assert_eq!(operation["operationId"], id, "{method}");
            let body = &operation["requestBody"]["content"]["application/json"]["schema"];
            assert_eq!(
                body["$ref"],
                format!("#/components/schemas/{method}.params"),
                "{method}"
            );
            let headers: Vec<&str> = operation["parameters"]
                .as_array()
                .expect("parameters")
                .iter()
                .map(|p| resolve(&doc, p)["name"].as_str().expect("a name"))
                .collect();
            assert_eq!(headers, ["Idempotency-Key", "Prefer"], "{method}");
            for status in [
                "202", "200", "400", "401", "403", "404", "413", "415", "422", "429", "503",
            ] {
                assert!(
                    operation["responses"].get(status).is_some(),
                    "{method} lacks {status}"
                );
            }
        }
    }

    /// The 202 has Location and Retry-After and the JobAccepted body; the 200 is the job with
    /// the method's result schema.
    #[test]
    fn submit_responses_describe_the_202_and_the_waited_200() {
        let doc = doc();
        let responses = &doc["paths"]["/v1/jobs/send_message"]["post"]["responses"];
        let accepted = &responses["202"];
        assert!(accepted["headers"].get("Location").is_some());
        assert!(accepted["headers"].get("Retry-After").is_some());
        assert_eq!(
            accepted["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/JobAccepted"
        );
        let done = &responses["200"]["content"]["application/json"]["schema"]["allOf"];
        assert_eq!(done[0]["$ref"], "#/components/schemas/Job");
        assert_eq!(
            done[1]["properties"]["result"]["$ref"],
            "#/components/schemas/send_message.result"
        );
        let result = &doc["components"]["schemas"]["send_message.result"];
        assert_eq!(result["properties"]["message_id"]["type"], "string");
        let problem = resolve(&doc, &responses["422"]);
        assert_eq!(
            problem["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
    }

    /// A POST route declares its path parameter with the property's schema and description,
    /// and takes the params minus the path parameter as its body.
    #[test]
    fn a_body_route_declares_path_parameters_and_a_body() {
        let doc = doc();
        let operation = &doc["paths"]["/v1/users/{sender}/messages"]["post"];
        assert_eq!(operation["operationId"], "send_message");
        let sender = &operation["parameters"][0];
        assert_eq!(sender["name"], "sender");
        assert_eq!(sender["in"], "path");
        assert_eq!(sender["required"], true);
        assert_eq!(sender["schema"]["type"], "string");
        assert_eq!(sender["description"], "Who sends.");
        assert!(
            !operation["parameters"]
                .as_array()
                .expect("parameters")
                .iter()
                .any(|p| p["in"] == "query"),
            "a body route has no query parameters"
        );
        let body = &operation["requestBody"];
        assert_eq!(body["required"], true);
        let schema = resolve(&doc, &body["content"]["application/json"]["schema"]);
        assert_eq!(schema["required"], json!(["text"]));
        assert!(schema["properties"].get("sender").is_none());
        assert!(schema["properties"].get("text").is_some());
        assert!(operation["responses"].get("415").is_some());
    }

    /// A GET route declares its path parameter and the other properties as query parameters
    /// (arrays comma-separated), and has no body.
    #[test]
    fn a_get_route_declares_path_and_query_parameters() {
        let doc = doc();
        let operation = &doc["paths"]["/v1/messages/{message_id}"]["get"];
        assert_eq!(operation["operationId"], "get_message");
        assert!(operation.get("requestBody").is_none());
        assert!(operation["responses"].get("415").is_none());
        let parameters = operation["parameters"].as_array().expect("parameters");
        let find = |name: &str| {
            parameters
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("no parameter {name}"))
        };
        assert_eq!(find("message_id")["in"], "path");
        assert_eq!(find("message_id")["required"], true);
        assert_eq!(find("limit")["in"], "query");
        assert_eq!(find("limit")["required"], false);
        assert_eq!(find("limit")["schema"]["type"], "integer");
        assert_eq!(find("fields")["in"], "query");
        assert_eq!(find("fields")["explode"], false);
    }

    /// Every `{name}` in every path is declared as a path parameter of each of its operations.
    #[test]
    fn every_path_template_parameter_is_declared() {
        let doc = doc();
        for (path, verb, operation) in operations(&doc) {
            let names: Vec<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            for name in names {
                let declared = operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| resolve(&doc, p))
                    .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true);
                assert!(declared, "{verb} {path} does not declare {{{name}}}");
            }
        }
    }

    /// Local references are rebased onto the schema's component, so that they resolve from
    /// the document root; a path parameter whose property is a `$ref` keeps it.
    #[test]
    fn schemas_with_references_stay_resolvable() {
        let doc = doc();
        let target = "#/components/schemas/user.lookup.params/$defs/id";
        let params = &doc["components"]["schemas"]["user.lookup.params"];
        assert!(params.get("$id").is_none());
        assert_eq!(params["properties"]["id"]["$ref"], target);
        assert_eq!(params["$defs"]["id"]["minLength"], 1);
        let operation = &doc["paths"]["/v1/lookups/{id}"]["delete"];
        assert_eq!(operation["operationId"], "user_lookup");
        assert_eq!(operation["parameters"][0]["schema"]["$ref"], target);
        assert_eq!(
            resolve(&doc, &operation["parameters"][0]["schema"])["minLength"],
            1
        );
        // `true` (no result schema) becomes `{}`.
        assert_eq!(doc["components"]["schemas"]["echo.result"], json!({}));
    }

    /// References inside data keywords (`const`, `enum`, `default`, `examples`) are data and
    /// stay as they are; a schema with its own `$id` is embedded unchanged.
    #[test]
    fn rebasing_leaves_data_and_identified_schemas_alone() {
        let schema = json!({
            "properties": {
                "a": {"$ref": "#/$defs/a"},
                "b": {"const": {"$ref": "#/x"}, "default": {"$ref": "#"}},
                "default": {"$ref": "#/$defs/d"}
            },
            "items": [{"$ref": "#"}]
        });
        let embedded = embeddable(&schema, "m.params");
        assert_eq!(
            embedded["properties"]["a"]["$ref"],
            "#/components/schemas/m.params/$defs/a"
        );
        assert_eq!(embedded["properties"]["b"]["const"]["$ref"], "#/x");
        assert_eq!(embedded["properties"]["b"]["default"]["$ref"], "#");
        // A property named like a data keyword is still a schema.
        assert_eq!(
            embedded["properties"]["default"]["$ref"],
            "#/components/schemas/m.params/$defs/d"
        );
        assert_eq!(
            embedded["items"][0]["$ref"],
            "#/components/schemas/m.params"
        );
        let identified = json!({"$id": "urn:x", "$ref": "#/$defs/a"});
        assert_eq!(embeddable(&identified, "m.params"), identified);
        assert_eq!(embeddable(&json!(false), "m.params"), json!({"not": {}}));
    }

    /// The fixed paths are there with their verbs.
    #[test]
    fn the_static_paths_are_there() {
        let doc = doc();
        for (path, verb) in [
            ("/v1/jobs/{job_id}", "get"),
            ("/v1/rpc", "post"),
            ("/v1/events", "get"),
            ("/healthz", "get"),
            ("/readyz", "get"),
            ("/metrics", "get"),
            ("/openapi.json", "get"),
        ] {
            assert!(doc["paths"][path].get(verb).is_some(), "{verb} {path}");
        }
        let get_job = &doc["paths"]["/v1/jobs/{job_id}"]["get"];
        assert_eq!(get_job["parameters"][1]["name"], "wait");
        assert_eq!(get_job["parameters"][1]["in"], "query");
        assert!(
            get_job["responses"]["200"]["headers"]
                .get("Retry-After")
                .is_some()
        );
        let rpc = &doc["paths"]["/v1/rpc"]["post"]["responses"];
        assert!(rpc.get("200").is_some() && rpc.get("204").is_some());
        assert!(
            doc["paths"]["/v1/events"]["get"]["responses"]["200"]["content"]
                .get("text/event-stream")
                .is_some()
        );
        assert!(
            doc["paths"]["/readyz"]["get"]["responses"]
                .get("503")
                .is_some()
        );
    }

    /// Bearer JWT is required everywhere except the operations endpoints.
    #[test]
    fn bearer_security_is_global_with_public_operations_endpoints() {
        let doc = doc();
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"],
            json!({
                "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "A JWT whose `sub` is the user the requests act for."
            })
        );
        assert_eq!(doc["security"], json!([{ "bearer": [] }]));
        for (path, verb, operation) in operations(&doc) {
            let public =
                ["/healthz", "/readyz", "/metrics", "/openapi.json"].contains(&path.as_str());
            if public {
                assert_eq!(operation["security"], json!([]), "{verb} {path}");
            } else {
                assert!(operation.get("security").is_none(), "{verb} {path}");
            }
        }
    }

    /// The shared components are there: Problem, JobAccepted, Job (with its status enum),
    /// JsonRpcRequest, JsonRpcResponse.
    #[test]
    fn the_shared_components_are_there() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        for name in [
            "Problem",
            "JobAccepted",
            "Job",
            "JsonRpcRequest",
            "JsonRpcResponse",
        ] {
            assert!(schemas.get(name).is_some(), "{name}");
        }
        assert_eq!(
            schemas["Job"]["properties"]["status"]["enum"],
            json!(["queued", "succeeded", "failed", "expired"])
        );
        assert_eq!(
            schemas["Problem"]["properties"]["errors"]["items"]["required"],
            json!(["pointer", "message"])
        );
    }

    /// Operation ids are unique, even when a method's name collides with a fixed operation.
    #[test]
    fn operation_ids_are_unique() {
        let doc = doc();
        let ids: Vec<String> = operations(&doc)
            .iter()
            .map(|(path, verb, op)| {
                op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{verb} {path} has no operationId"))
                    .to_owned()
            })
            .collect();
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
        assert_eq!(
            doc["paths"]["/v1/jobs/{job_id}"]["get"]["operationId"],
            "get_job"
        );
        assert_eq!(
            doc["paths"]["/v1/legacy/{id}"]["get"]["operationId"],
            "get_job_2"
        );
    }

    /// Every local `$ref` in the document points at something.
    #[test]
    fn every_reference_resolves() {
        fn walk(doc: &Value, value: &Value) {
            match value {
                Value::Object(object) => {
                    if let Some(Value::String(target)) = object.get("$ref")
                        && let Some(pointer) = target.strip_prefix("#/components")
                    {
                        assert!(
                            doc.pointer(&format!("/components{pointer}")).is_some(),
                            "dangling {target}"
                        );
                    }
                    object.values().for_each(|v| walk(doc, v));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(doc, v)),
                _ => {}
            }
        }
        let doc = doc();
        walk(&doc, &doc);
    }

    /// The document is valid JSON that survives a serde round trip unchanged, and is the same
    /// every time it is generated.
    #[test]
    fn the_document_round_trips_through_serde() {
        let doc = doc();
        let text = serde_json::to_string_pretty(&doc).expect("serialises");
        let back: Value = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, doc);
        assert_eq!(doc, document(&schemas(), &info()));
    }

    /// With only the repository's echo definition, the document still has every fixed path.
    #[test]
    fn a_single_definition_gives_a_complete_document() {
        let echo = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/echo.json"),
        )
        .expect("reading schemas/echo.json");
        let echo = JobDefinition::from_json(&echo, Path::new("echo.json")).expect("echo loads");
        let set = SchemaSet::from_definitions(vec![echo]).expect("one definition");
        let doc = document(&set, &info());
        assert!(doc["paths"]["/v1/jobs/echo"].get("post").is_some());
        assert_eq!(doc["paths"].as_object().map(Map::len), Some(8));
        assert_eq!(doc["tags"][0]["name"], "echo");
    }
}
