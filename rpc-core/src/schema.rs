//! Job definitions: loading and checking `schemas/<method>.json` (CONTRACT.md §4), and validating
//! params against them.
//!
//! A definition is checked completely when it is loaded — names, summary, JSON Schemas (against the
//! draft 2020-12 meta-schema, then compiled once), the optional REST route, the claimer pointer and
//! the timeout — so that a bad file stops the gateway or worker at start-up with a message naming
//! the file, instead of failing requests later.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::topology::{validate_method_name, validate_worker_name};

/// First path segments after `/v1/` that the gateway serves itself; a definition's own route may
/// not start with them.
const RESERVED_SEGMENTS: [&str; 4] = ["jobs", "rpc", "events", "ws"];

/// The keys a job definition file may have, for error messages.
const KEYS_HINT: &str = "a job definition has the keys `method`, `worker`, `summary`, `params` \
                         and optionally `result`, `http`, `claimer`, `timeout_ms` (CONTRACT.md §4)";

/// One job definition, read from `schemas/<method>.json`.
#[derive(Debug)]
pub struct JobDefinition {
    /// The method, which is also the routing key; matches `[a-z][a-z0-9_.]*`.
    pub method: String,
    /// The worker whose queue (`rpc_queue_<worker>`) serves the method; matches `[a-z0-9_]+`.
    pub worker: String,
    /// One line saying what the job does (non-empty).
    pub summary: String,
    /// The JSON Schema (draft 2020-12) that params must satisfy.
    pub params_schema: Value,
    /// The JSON Schema of the result; `true` (anything) when the file has none.
    pub result_schema: Value,
    /// The job's own REST route, besides the generic `POST /v1/jobs/{method}`.
    pub http: Option<HttpRoute>,
    /// A JSON Pointer into params naming the user the request acts for (e.g. `/sender`).
    pub claimer: Option<String>,
    /// The job's deadline (`timeout_ms`).
    pub timeout: Option<Duration>,
    /// The file the definition was read from.
    pub file: PathBuf,
    /// `params_schema`, compiled once at load (draft 2020-12, formats asserted).
    validator: jsonschema::Validator,
}

/// A definition's own REST route, e.g. `GET /v1/messages/{message_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// The HTTP method.
    pub verb: HttpVerb,
    /// The path in axum 0.8 / matchit syntax: starts with `/v1/`, parameters are whole segments
    /// `{name}`.
    pub path: String,
    /// The names of the path's `{name}` segments, in order; each is a property of the params
    /// schema.
    pub path_params: Vec<String>,
}

/// The HTTP methods a definition's route may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HttpVerb {
    /// `GET`: params come from the path and the query string.
    Get,
    /// `POST`: params come from the path and the JSON body.
    Post,
    /// `PUT`: params come from the path and the JSON body.
    Put,
    /// `PATCH`: params come from the path and the JSON body.
    Patch,
    /// `DELETE`: params come from the path and the query string.
    Delete,
}

impl HttpVerb {
    /// The upper-case name, e.g. `"GET"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }

    /// Parse a verb, ignoring case (`"get"`, `"Get"` and `"GET"` are all [`HttpVerb::Get`]);
    /// `None` for anything else.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Get, Self::Post, Self::Put, Self::Patch, Self::Delete]
            .into_iter()
            .find(|verb| verb.as_str().eq_ignore_ascii_case(text))
    }

    /// Whether params travel in a JSON body (`POST`, `PUT`, `PATCH`) rather than in the query
    /// string (`GET`, `DELETE`).
    #[must_use]
    pub fn takes_body(self) -> bool {
        !matches!(self, Self::Get | Self::Delete)
    }
}

impl fmt::Display for HttpVerb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One way params break their schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ValidationError {
    /// JSON Pointer of the failing location in params (`""` for params themselves).
    pub pointer: String,
    /// What is wrong. It never repeats the submitted value (which may be large or secret); the
    /// pointer says where it is.
    pub message: String,
}

/// What can be wrong with the job definitions. Every message names the file (both files for a
/// conflict), says what is wrong and how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The schemas directory does not exist.
    #[error(
        "the schemas directory {} does not exist; create it with one <method>.json per job \
         (CONTRACT.md §4) or point the setting at the right directory",
        .dir.display()
    )]
    MissingDir {
        /// The directory that was looked for.
        dir: PathBuf,
    },
    /// The schemas directory holds no `*.json` file.
    #[error(
        "the schemas directory {} holds no *.json job definitions; add one <method>.json per job \
         (CONTRACT.md §4), e.g. echo.json",
        .dir.display()
    )]
    EmptyDir {
        /// The empty directory.
        dir: PathBuf,
    },
    /// A directory or file could not be read.
    #[error("cannot read {}: {source}; check that it exists and is readable", .path.display())]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error(
        "{}: not valid JSON (line {line}, column {column}): {message}; fix the syntax",
        .file.display()
    )]
    Json {
        /// The definition file.
        file: PathBuf,
        /// Where the syntax breaks (1-based).
        line: usize,
        /// Where the syntax breaks (1-based).
        column: usize,
        /// What the parser found.
        message: String,
    },
    /// The JSON does not have the shape of a job definition: a key is missing, unknown or of the
    /// wrong type.
    #[error("{}: {message}", .file.display())]
    Shape {
        /// The definition file.
        file: PathBuf,
        /// What is wrong, with the key's path.
        message: String,
    },
    /// A key has a value that breaks the contract's rules.
    #[error("{}: `{key}` {reason}", .file.display())]
    Invalid {
        /// The definition file.
        file: PathBuf,
        /// The key, e.g. `method` or `http.path`.
        key: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The file name is not `<method>.json`.
    #[error(
        "{}: defines method `{method}`, so the file must be named `{method}.json`; rename the \
         file or fix `method`",
        .file.display()
    )]
    FileName {
        /// The definition file.
        file: PathBuf,
        /// The method the file defines.
        method: String,
    },
    /// `params` or `result` is not a usable JSON Schema (draft 2020-12).
    #[error(
        "{}: `{key}` is not a valid JSON Schema (draft 2020-12){}: {message}; fix the schema \
         (references must stay inside the file)",
        .file.display(),
        at_pointer(.pointer)
    )]
    Schema {
        /// The definition file.
        file: PathBuf,
        /// `params` or `result`.
        key: &'static str,
        /// Where in the schema the problem is (a JSON Pointer; `""` for the whole schema).
        pointer: String,
        /// What the meta-schema check or the compiler said.
        message: String,
    },
    /// A `{name}` segment of the route is not a property of the params schema.
    #[error(
        "{}: http path `{path}` has the segment `{{{name}}}`, but `{name}` is not a property of \
         the params schema; declare it in `params.properties` or rename the segment",
        .file.display()
    )]
    PathParam {
        /// The definition file.
        file: PathBuf,
        /// The route's path.
        path: String,
        /// The undeclared parameter.
        name: String,
    },
    /// Two definitions' routes cannot both be served.
    #[error("{} and {} conflict: {reason}", .first.display(), .second.display())]
    RouteConflict {
        /// The definition loaded first.
        first: PathBuf,
        /// The definition loaded second.
        second: PathBuf,
        /// What collides and how to fix it.
        reason: String,
    },
    /// Two definitions have the same method.
    #[error(
        "{} and {} both define method `{method}`; remove or rename one of them",
        .first.display(),
        .second.display()
    )]
    DuplicateMethod {
        /// The definition loaded first.
        first: PathBuf,
        /// The definition loaded second.
        second: PathBuf,
        /// The method both define.
        method: String,
    },
}

/// ` at <pointer>` for a non-empty pointer, nothing for the root.
fn at_pointer(pointer: &str) -> String {
    if pointer.is_empty() {
        String::new()
    } else {
        format!(" at `{pointer}`")
    }
}

/// The file's shape; every check beyond shape happens in [`JobDefinition::from_json`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefinition {
    method: String,
    worker: String,
    summary: String,
    params: Value,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    http: Option<RawHttp>,
    #[serde(default)]
    claimer: Option<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// The `http` key's shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    verb: String,
    path: String,
}

impl JobDefinition {
    /// Read and check one definition; `file` is where the text came from (for messages and
    /// [`JobDefinition::file`]).
    ///
    /// # Errors
    /// [`SchemaError::Json`] when the text is not JSON; [`SchemaError::Shape`] when a key is
    /// missing, unknown or of the wrong type; [`SchemaError::Invalid`] when a name, the summary,
    /// the route, the claimer or the timeout breaks the rules; [`SchemaError::Schema`] when
    /// `params` or `result` is not a valid draft 2020-12 schema; [`SchemaError::PathParam`] when a
    /// route parameter is not a property of the params schema.
    pub fn from_json(text: &str, file: &Path) -> Result<Self, SchemaError> {
        let raw = parse_raw(text, file)?;
        let invalid = |key: &'static str, reason: String| SchemaError::Invalid {
            file: file.to_owned(),
            key,
            reason,
        };

        validate_method_name(&raw.method).map_err(|e| {
            invalid(
                "method",
                format!("is not usable: {e} (it is the routing key, e.g. `send_message`)"),
            )
        })?;
        validate_worker_name(&raw.worker).map_err(|e| {
            invalid(
                "worker",
                format!("is not usable: {e} (it names the queue `rpc_queue_<worker>`)"),
            )
        })?;
        if raw.summary.trim().is_empty() {
            return Err(invalid(
                "summary",
                "is empty; say in one line what the job does".to_owned(),
            ));
        }

        check_schema(&raw.params, "params", file)?;
        let validator = compile(&raw.params, "params", file)?;
        let result_schema = raw.result.unwrap_or(Value::Bool(true));
        check_schema(&result_schema, "result", file)?;
        compile(&result_schema, "result", file)?;

        let http = match raw.http {
            None => None,
            Some(RawHttp { verb, path }) => {
                let verb = HttpVerb::parse(&verb).ok_or_else(|| {
                    invalid(
                        "http.verb",
                        format!("is `{verb}`; use one of GET, POST, PUT, PATCH, DELETE"),
                    )
                })?;
                let path_params = parse_route_path(&path)
                    .map_err(|reason| invalid("http.path", format!("`{path}` {reason}")))?;
                Some(HttpRoute {
                    verb,
                    path,
                    path_params,
                })
            }
        };

        if let Some(claimer) = &raw.claimer {
            check_claimer(claimer, &raw.params)
                .map_err(|reason| invalid("claimer", format!("`{claimer}` {reason}")))?;
        }

        let timeout = match raw.timeout_ms {
            None => None,
            Some(0) => {
                return Err(invalid(
                    "timeout_ms",
                    "is 0; give the job's deadline in milliseconds (a positive integer, e.g. \
                     30000) or leave the key out"
                        .to_owned(),
                ));
            }
            Some(ms) => Some(Duration::from_millis(ms)),
        };

        let definition = Self {
            method: raw.method,
            worker: raw.worker,
            summary: raw.summary,
            params_schema: raw.params,
            result_schema,
            http,
            claimer: raw.claimer,
            timeout,
            file: file.to_owned(),
            validator,
        };
        definition.check_path_params()?;
        Ok(definition)
    }

    /// Validate params against the params schema.
    ///
    /// # Errors
    /// Every violation (not just the first), each with the JSON Pointer of the failing location.
    pub fn validate(&self, params: &Value) -> Result<(), Vec<ValidationError>> {
        // The common case (valid params) takes the fast path that collects nothing.
        if self.validator.is_valid(params) {
            return Ok(());
        }
        let errors: Vec<ValidationError> = self
            .validator
            .iter_errors(params)
            .map(|error| ValidationError {
                pointer: error.instance_path().as_str().to_owned(),
                message: error.masked().to_string(),
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The user the request acts for: the string at the claimer pointer in params. `None` when
    /// the definition has no claimer, or params have no string there.
    #[must_use]
    pub fn claimed_user<'a>(&self, params: &'a Value) -> Option<&'a str> {
        params.pointer(self.claimer.as_deref()?)?.as_str()
    }

    /// Turn the text of a path or query parameter into the JSON value its property's `type`
    /// asks for: `integer` → an integer, `number` → a number, `boolean` → `true`/`false`,
    /// `array` → the `,`-separated pieces (each coerced by `items.type`). Anything else — an
    /// undeclared name, a `string` type, a type given only through `$ref`, or text that does not
    /// parse — stays a JSON string, so that validation reports what is wrong.
    #[must_use]
    pub fn coerce_text(&self, name: &str, raw: &str) -> Value {
        let property = self
            .params_schema
            .get("properties")
            .and_then(|properties| properties.get(name));
        coerce(property, raw, true)
    }

    /// The top-level property of the params schema marked as base64 binary
    /// (`contentEncoding: base64`): the gateway takes it as a raw `application/octet-stream`
    /// body.
    #[must_use]
    pub fn binary_param(&self) -> Option<&str> {
        binary_property(&self.params_schema)
    }

    /// The top-level property of the result schema marked as base64 binary: the gateway answers
    /// it as raw bytes on `Accept: application/octet-stream`.
    #[must_use]
    pub fn binary_result(&self) -> Option<&str> {
        binary_property(&self.result_schema)
    }

    /// Check that every `{name}` of the route is a property of the params schema.
    fn check_path_params(&self) -> Result<(), SchemaError> {
        let Some(route) = &self.http else {
            return Ok(());
        };
        let properties = self
            .params_schema
            .get("properties")
            .and_then(Value::as_object);
        for name in &route.path_params {
            if !properties.is_some_and(|properties| properties.contains_key(name)) {
                return Err(SchemaError::PathParam {
                    file: self.file.clone(),
                    path: route.path.clone(),
                    name: name.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Deserialize the file's shape, telling syntax errors from shape errors.
fn parse_raw(text: &str, file: &Path) -> Result<RawDefinition, SchemaError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let raw: RawDefinition =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            shape_error(inner, &path, file)
        })?;
    deserializer.end().map_err(|e| shape_error(e, ".", file))?;
    Ok(raw)
}

/// Classify a serde error as a syntax error ([`SchemaError::Json`]) or a shape error
/// ([`SchemaError::Shape`]).
fn shape_error(error: serde_json::Error, path: &str, file: &Path) -> SchemaError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => SchemaError::Json {
            file: file.to_owned(),
            line: error.line(),
            column: error.column(),
            message: error.to_string(),
        },
        Category::Data => {
            // serde_json appends " at line L column C"; the key path says more.
            let text = error.to_string();
            let text = text
                .rfind(" at line ")
                .map_or(text.as_str(), |end| &text[..end]);
            let mut message = if path == "." || path.is_empty() {
                text.to_owned()
            } else {
                format!("{text} (at `{path}`)")
            };
            let hint = if path == "timeout_ms" {
                "`timeout_ms` is the job's deadline in milliseconds, a positive integer such as \
                 30000"
            } else if text.starts_with("unknown field") {
                "remove the key or fix its spelling"
            } else if text.starts_with("missing field") {
                KEYS_HINT
            } else {
                "see CONTRACT.md §4 for what each key holds"
            };
            message.push_str("; ");
            message.push_str(hint);
            SchemaError::Shape {
                file: file.to_owned(),
                message,
            }
        }
    }
}

/// Check a schema against the draft 2020-12 meta-schema.
fn check_schema(schema: &Value, key: &'static str, file: &Path) -> Result<(), SchemaError> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err(SchemaError::Schema {
            file: file.to_owned(),
            key,
            pointer: String::new(),
            message: "a schema is an object or a boolean".to_owned(),
        });
    }
    jsonschema::draft202012::meta::validate(schema).map_err(|error| SchemaError::Schema {
        file: file.to_owned(),
        key,
        pointer: error.instance_path().as_str().to_owned(),
        message: error.to_string(),
    })
}

/// Compile a schema (draft 2020-12, formats asserted).
fn compile(
    schema: &Value,
    key: &'static str,
    file: &Path,
) -> Result<jsonschema::Validator, SchemaError> {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|error| SchemaError::Schema {
            file: file.to_owned(),
            key,
            pointer: error.instance_path().as_str().to_owned(),
            message: error.to_string(),
        })
}

/// Check a route path; answer its parameter names, or why it is refused.
fn parse_route_path(path: &str) -> Result<Vec<String>, String> {
    let Some(rest) = path.strip_prefix("/v1/") else {
        return Err("must start with `/v1/`, e.g. `/v1/messages/{message_id}`".to_owned());
    };
    let mut params: Vec<String> = Vec::new();
    for (index, segment) in rest.split('/').enumerate() {
        if segment.is_empty() {
            return Err("has an empty segment (`//` or a trailing `/`); remove it".to_owned());
        }
        if let Some(inner) = segment.strip_prefix('{') {
            let Some(name) = inner.strip_suffix('}') else {
                return Err(format!(
                    "has the segment `{segment}`; a parameter is a whole segment `{{name}}`"
                ));
            };
            if name.starts_with('*') {
                return Err(format!(
                    "has the catch-all `{segment}`, which is not supported; use `{{name}}` \
                     segments"
                ));
            }
            if !is_parameter_name(name) {
                return Err(format!(
                    "has the parameter `{segment}`; a name matches [A-Za-z_][A-Za-z0-9_]*"
                ));
            }
            if index == 0 {
                return Err(
                    "starts with a parameter; the first segment after `/v1/` must be literal \
                     (e.g. `/v1/messages/{message_id}`) so that it cannot shadow other routes"
                        .to_owned(),
                );
            }
            if params.iter().any(|seen| seen == name) {
                return Err(format!(
                    "uses `{{{name}}}` twice; give each parameter its own name"
                ));
            }
            params.push(name.to_owned());
        } else {
            if index == 0 && RESERVED_SEGMENTS.contains(&segment) {
                return Err(format!(
                    "collides with the gateway's own `/v1/{segment}` routes; choose another \
                     first segment"
                ));
            }
            if let Some(bad) = segment
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')))
            {
                return Err(format!(
                    "has the character `{bad}` in `{segment}`; literal segments use letters, \
                     digits and `-._~`, parameters are whole segments `{{name}}`"
                ));
            }
        }
    }
    Ok(params)
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_parameter_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Check a claimer: a syntactically valid JSON Pointer whose first token, when the params
/// schema lists its properties, is one of them (a typo would otherwise refuse every request).
fn check_claimer(claimer: &str, params_schema: &Value) -> Result<(), String> {
    if !(claimer.is_empty() || claimer.starts_with('/')) {
        return Err(format!(
            "is not a JSON Pointer; it starts with `/`, e.g. `/{claimer}`"
        ));
    }
    let mut chars = claimer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(
                "is not a JSON Pointer: `~` must be followed by `0` (for `~`) or `1` (for `/`)"
                    .to_owned(),
            );
        }
    }
    let first = claimer
        .split('/')
        .nth(1)
        .map(|token| token.replace("~1", "/").replace("~0", "~"));
    let properties = params_schema.get("properties").and_then(Value::as_object);
    if let (Some(first), Some(properties)) = (first, properties)
        && !properties.contains_key(&first)
    {
        return Err(format!(
            "points at `{first}`, which is not a property of the params schema; fix the \
             pointer or declare the property"
        ));
    }
    Ok(())
}

/// Coerce `raw` by the `type` of `schema`; `split_arrays` is false for array items, so that
/// `,` splits only once.
fn coerce(schema: Option<&Value>, raw: &str, split_arrays: bool) -> Value {
    let types: Vec<&str> = match schema.and_then(|schema| schema.get("type")) {
        Some(Value::String(kind)) => vec![kind.as_str()],
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    // A string is always acceptable when the schema allows one.
    if types.contains(&"string") {
        return Value::String(raw.to_owned());
    }
    for kind in types {
        let coerced = match kind {
            "integer" => parse_integer(raw),
            "number" => parse_integer(raw).or_else(|| {
                raw.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
            }),
            "boolean" => match raw {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            "array" if split_arrays => {
                let items = schema.and_then(|schema| schema.get("items"));
                Some(if raw.is_empty() {
                    Value::Array(Vec::new())
                } else {
                    raw.split(',')
                        .map(|piece| coerce(items, piece, false))
                        .collect()
                })
            }
            _ => None,
        };
        if let Some(value) = coerced {
            return value;
        }
    }
    Value::String(raw.to_owned())
}

/// An `i64` or `u64`, if `raw` is one.
fn parse_integer(raw: &str) -> Option<Value> {
    raw.parse::<i64>()
        .map(Value::from)
        .or_else(|_| raw.parse::<u64>().map(Value::from))
        .ok()
}

/// All job definitions, by method.
#[derive(Debug, Clone, Default)]
pub struct SchemaSet {
    definitions: BTreeMap<String, Arc<JobDefinition>>,
}

impl SchemaSet {
    /// Load every `*.json` file of `dir` (not recursive, in name order) as a job definition.
    /// Other files are ignored.
    ///
    /// # Errors
    /// [`SchemaError::MissingDir`] or [`SchemaError::EmptyDir`] when there is nothing to load;
    /// [`SchemaError::Io`] when the directory or a file cannot be read;
    /// [`SchemaError::FileName`] when a file is not named `<method>.json`; any error of
    /// [`JobDefinition::from_json`] or [`SchemaSet::from_definitions`]. One bad file fails the
    /// whole load.
    pub fn load_dir(dir: &Path) -> Result<Self, SchemaError> {
        let entries = std::fs::read_dir(dir).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                SchemaError::MissingDir {
                    dir: dir.to_owned(),
                }
            } else {
                SchemaError::Io {
                    path: dir.to_owned(),
                    source,
                }
            }
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| SchemaError::Io {
                path: dir.to_owned(),
                source,
            })?;
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "json") && path.is_file() {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(SchemaError::EmptyDir {
                dir: dir.to_owned(),
            });
        }
        files.sort();

        let mut definitions = Vec::with_capacity(files.len());
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| SchemaError::Io {
                path: file.clone(),
                source,
            })?;
            let definition = JobDefinition::from_json(&text, &file)?;
            if file.file_stem().and_then(|stem| stem.to_str()) != Some(definition.method.as_str()) {
                return Err(SchemaError::FileName {
                    file,
                    method: definition.method,
                });
            }
            definitions.push(definition);
        }
        Self::from_definitions(definitions)
    }

    /// Gather definitions into a set, checking them against each other.
    ///
    /// # Errors
    /// [`SchemaError::DuplicateMethod`] when two define the same method;
    /// [`SchemaError::RouteConflict`] when two routes cannot both be served (the same verb and
    /// path, or parameters of different names at the same place — the router needs one name);
    /// [`SchemaError::PathParam`] when a route parameter is not a property of the params schema.
    pub fn from_definitions(definitions: Vec<JobDefinition>) -> Result<Self, SchemaError> {
        let mut set: BTreeMap<String, Arc<JobDefinition>> = BTreeMap::new();
        let mut routed: Vec<Arc<JobDefinition>> = Vec::new();
        for definition in definitions {
            definition.check_path_params()?;
            if let Some(first) = set.get(&definition.method) {
                return Err(SchemaError::DuplicateMethod {
                    first: first.file.clone(),
                    second: definition.file,
                    method: definition.method,
                });
            }
            let definition = Arc::new(definition);
            if let Some(route) = &definition.http {
                for other in &routed {
                    if let Some(other_route) = &other.http
                        && let Some(reason) = route_conflict(other_route, route)
                    {
                        return Err(SchemaError::RouteConflict {
                            first: other.file.clone(),
                            second: definition.file.clone(),
                            reason,
                        });
                    }
                }
                routed.push(Arc::clone(&definition));
            }
            set.insert(definition.method.clone(), definition);
        }
        Ok(Self { definitions: set })
    }

    /// The definition of `method`, if any.
    #[must_use]
    pub fn get(&self, method: &str) -> Option<&Arc<JobDefinition>> {
        self.definitions.get(method)
    }

    /// All definitions, sorted by method.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<JobDefinition>> {
        self.definitions.values()
    }

    /// How many definitions there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.definitions.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.definitions.is_empty()
    }
}

/// Why two routes cannot both be served, or `None` when they can. The router (matchit) serves
/// `/a/{x}` and `/a/b` side by side, but needs one spelling per place: `{x}` and `{y}` at the
/// same place after the same prefix collide whatever the verbs.
fn route_conflict(first: &HttpRoute, second: &HttpRoute) -> Option<String> {
    let mut a = first.path.split('/');
    let mut b = second.path.split('/');
    loop {
        match (a.next(), b.next()) {
            (None, None) => {
                return (first.verb == second.verb).then(|| {
                    format!(
                        "both define the route {} {}; change one path or verb",
                        first.verb, first.path
                    )
                });
            }
            (Some(x), Some(y)) => {
                let x_param = x.starts_with('{');
                let y_param = y.starts_with('{');
                match (x_param, y_param) {
                    (true, true) if x != y => {
                        return Some(format!(
                            "the routes `{}` and `{}` name the same path parameter differently \
                             (`{x}` and `{y}`); use the same name",
                            first.path, second.path
                        ));
                    }
                    (true, true) => {}
                    (false, false) if x == y => {}
                    // Different literals, or a literal beside a parameter: the router tells
                    // them apart.
                    _ => return None,
                }
            }
            // One is a prefix of the other: distinct routes.
            _ => return None,
        }
    }
}

/// The top-level property a schema marks as base64 binary (`contentEncoding: base64`).
fn binary_property(schema: &Value) -> Option<&str> {
    schema
        .get("properties")?
        .as_object()?
        .iter()
        .find(|(_, property)| {
            property.get("contentEncoding").and_then(Value::as_str) == Some("base64")
        })
        .map(|(name, _)| name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A uniquely named directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(label: &str) -> Self {
            let path = std::env::temp_dir()
                .join(format!("intercomm-schema-{}-{label}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).expect("creating a temporary directory");
            Self(path)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).expect("writing a definition file");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The repository's own `schemas/echo.json`.
    fn echo_text() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/echo.json");
        std::fs::read_to_string(&path).expect("reading schemas/echo.json")
    }

    /// A definition with a route, a claimer, required fields and a `date-time` format.
    fn send_message() -> Value {
        json!({
            "method": "send_message",
            "worker": "messages",
            "summary": "Send a message from one user to another.",
            "params": {
                "type": "object",
                "required": ["sender", "recipient", "text", "send_at"],
                "properties": {
                    "sender": {"type": "string", "minLength": 1},
                    "recipient": {"type": "string", "minLength": 1},
                    "text": {"type": "string", "maxLength": 1000},
                    "send_at": {"type": "string", "format": "date-time"},
                    "options": {
                        "type": "object",
                        "properties": {"priority": {"type": "integer"}}
                    }
                },
                "additionalProperties": false
            },
            "result": {
                "type": "object",
                "required": ["message_id"],
                "properties": {"message_id": {"type": "string"}}
            },
            "http": {"verb": "post", "path": "/v1/users/{sender}/messages"},
            "claimer": "/sender",
            "timeout_ms": 5000
        })
    }

    /// A definition with a GET route and typed query parameters.
    fn list_messages() -> Value {
        json!({
            "method": "list_messages",
            "worker": "messages",
            "summary": "List a user's messages.",
            "params": {
                "type": "object",
                "required": ["user"],
                "properties": {
                    "user": {"type": "string"},
                    "limit": {"type": "integer", "minimum": 1},
                    "min_score": {"type": "number"},
                    "unread": {"type": "boolean"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "ids": {"type": "array", "items": {"type": "integer"}},
                    "cursor": {"type": ["string", "null"]},
                    "page": {"type": ["integer", "null"]},
                    "anything": {}
                }
            },
            "http": {"verb": "GET", "path": "/v1/mailboxes/{user}/messages"},
            "claimer": "/user"
        })
    }

    fn definition(value: &Value) -> JobDefinition {
        JobDefinition::from_json(&value.to_string(), Path::new("inline.json"))
            .expect("a valid definition")
    }

    fn valid_params() -> Value {
        json!({
            "sender": "ann",
            "recipient": "bob",
            "text": "hello",
            "send_at": "2025-01-02T03:04:05Z"
        })
    }

    /// Load a directory holding `files` and answer the error message (the load must fail).
    fn load_error(label: &str, files: &[(&str, String)]) -> String {
        let dir = TempDir::new(label);
        for (name, text) in files {
            dir.write(name, text);
        }
        match SchemaSet::load_dir(&dir.0) {
            Ok(set) => panic!(
                "{label}: the load should fail, it loaded {} definitions",
                set.len()
            ),
            Err(error) => error.to_string(),
        }
    }

    /// `send_message` with `key` set to `value` (or removed when `value` is `None`).
    fn send_message_with(key: &str, value: Option<Value>) -> String {
        let mut definition = send_message();
        let object = definition.as_object_mut().expect("an object");
        match value {
            Some(value) => object.insert(key.to_owned(), value),
            None => object.remove(key),
        };
        definition.to_string()
    }

    /// Assert that loading `send_message.json` with `text` fails with a message naming the file
    /// and containing every one of `needles`.
    fn assert_send_message_refused(label: &str, text: String, needles: &[&str]) {
        let message = load_error(label, &[("send_message.json", text)]);
        assert!(message.contains("send_message.json"), "{label}: {message}");
        for needle in needles {
            assert!(
                message.contains(needle),
                "{label}: `{needle}` not in: {message}"
            );
        }
    }

    /// Definitions are shared between tasks.
    #[test]
    fn definitions_and_sets_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<JobDefinition>();
        assert_send_sync::<SchemaSet>();
    }

    /// The repository's `schemas/echo.json` loads: names, summary, schemas, timeout, no route.
    #[test]
    fn the_repositorys_echo_definition_loads() {
        let dir = TempDir::new("echo");
        dir.write("echo.json", &echo_text());
        let set = SchemaSet::load_dir(&dir.0).expect("echo.json loads");
        assert_eq!(set.len(), 1);
        assert!(!set.is_empty());
        let echo = set.get("echo").expect("echo is defined");
        assert_eq!(echo.method, "echo");
        assert_eq!(echo.worker, "echo");
        assert!(!echo.summary.is_empty());
        assert_eq!(echo.timeout, Some(Duration::from_secs(30)));
        assert_eq!(echo.http, None);
        assert_eq!(echo.claimer, None);
        assert_eq!(echo.file, dir.0.join("echo.json"));
        assert_eq!(echo.result_schema["type"], "object");
        assert_eq!(echo.validate(&json!({"anything": [1, 2]})), Ok(()));
        assert!(echo.validate(&json!([1, 2])).is_err());
        assert!(set.get("send_message").is_none());
    }

    /// A definition with a route, a claimer, required fields and formats loads with every key
    /// read; the verb is case-insensitive.
    #[test]
    fn a_rich_definition_loads_with_route_claimer_and_timeout() {
        let dir = TempDir::new("rich");
        dir.write("send_message.json", &send_message().to_string());
        dir.write("list_messages.json", &list_messages().to_string());
        dir.write("README.md", "not a definition, ignored");
        let set = SchemaSet::load_dir(&dir.0).expect("both definitions load");
        let send = set.get("send_message").expect("send_message is defined");
        assert_eq!(send.worker, "messages");
        assert_eq!(
            send.http,
            Some(HttpRoute {
                verb: HttpVerb::Post,
                path: "/v1/users/{sender}/messages".to_owned(),
                path_params: vec!["sender".to_owned()],
            })
        );
        assert_eq!(send.claimer.as_deref(), Some("/sender"));
        assert_eq!(send.timeout, Some(Duration::from_millis(5000)));
        assert_eq!(send.result_schema["required"], json!(["message_id"]));
        let list = set.get("list_messages").expect("list_messages is defined");
        assert_eq!(
            list.http.as_ref().map(|route| route.verb),
            Some(HttpVerb::Get)
        );
        assert_eq!(list.timeout, None);
    }

    /// Without a `result` key the result schema is `true` (anything).
    #[test]
    fn the_result_schema_defaults_to_true() {
        let text = send_message_with("result", None);
        let definition = JobDefinition::from_json(&text, Path::new("send_message.json"))
            .expect("a definition without result loads");
        assert_eq!(definition.result_schema, Value::Bool(true));
    }

    /// The set iterates its definitions sorted by method.
    #[test]
    fn the_set_iterates_sorted_by_method() {
        let echo =
            JobDefinition::from_json(&echo_text(), Path::new("echo.json")).expect("echo loads");
        let set = SchemaSet::from_definitions(vec![
            definition(&send_message()),
            echo,
            definition(&list_messages()),
        ])
        .expect("no conflicts");
        let methods: Vec<&str> = set.iter().map(|d| d.method.as_str()).collect();
        assert_eq!(methods, ["echo", "list_messages", "send_message"]);
    }

    /// Params that satisfy the schema validate.
    #[test]
    fn valid_params_pass() {
        let send = definition(&send_message());
        assert_eq!(send.validate(&valid_params()), Ok(()));
    }

    /// Validation reports every violation at once, each with the pointer of its location: a
    /// missing required field at the root (`""`) naming the field, a nested wrong type at
    /// `/options/priority`, an unexpected property at the root.
    #[test]
    fn validation_reports_every_error_with_pointers() {
        let send = definition(&send_message());
        let mut params = valid_params();
        let object = params.as_object_mut().expect("an object");
        object.remove("text");
        object.insert("options".to_owned(), json!({"priority": "high"}));
        object.insert("colour".to_owned(), json!("red"));
        let errors = send.validate(&params).expect_err("three violations");
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors
                .iter()
                .any(|e| e.pointer.is_empty() && e.message.contains("\"text\"")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.pointer == "/options/priority" && e.message.contains("integer")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.pointer.is_empty() && e.message.contains("colour")),
            "{errors:?}"
        );
    }

    /// Every missing required field is reported, not just the first.
    #[test]
    fn every_missing_required_field_is_reported() {
        let send = definition(&send_message());
        let errors = send.validate(&json!({})).expect_err("four fields missing");
        for field in ["sender", "recipient", "text", "send_at"] {
            assert!(
                errors.iter().any(|e| e.message.contains(field)),
                "{field} not reported: {errors:?}"
            );
        }
    }

    /// Formats are asserted: a malformed `date-time` fails at its pointer.
    #[test]
    fn formats_are_checked() {
        let send = definition(&send_message());
        let mut params = valid_params();
        params["send_at"] = json!("next tuesday");
        let errors = send.validate(&params).expect_err("a bad date-time");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].pointer, "/send_at");
        assert!(errors[0].message.contains("date-time"), "{errors:?}");
    }

    /// Messages say what is wrong without repeating the submitted value (it may be secret or
    /// large).
    #[test]
    fn messages_do_not_repeat_the_submitted_value() {
        let send = definition(&send_message());
        let mut params = valid_params();
        params["send_at"] = json!("s3cret-token-value");
        params["text"] = json!(42);
        let errors = send.validate(&params).expect_err("two violations");
        assert_eq!(errors.len(), 2, "{errors:?}");
        for error in &errors {
            assert!(!error.message.contains("s3cret"), "{error:?}");
            assert!(!error.message.contains("42"), "{error:?}");
        }
    }

    /// A validation error serialises as `{"pointer", "message"}` (the problem+json `errors`).
    #[test]
    fn validation_errors_serialise_as_pointer_and_message() {
        let error = ValidationError {
            pointer: "/a".to_owned(),
            message: "wrong".to_owned(),
        };
        assert_eq!(
            serde_json::to_value(&error).expect("serialises"),
            json!({"pointer": "/a", "message": "wrong"})
        );
    }

    /// `claimed_user` reads the string at the claimer pointer; absent, non-string or no claimer
    /// gives `None`.
    #[test]
    fn claimed_user_reads_the_claimer_pointer() {
        let send = definition(&send_message());
        assert_eq!(send.claimed_user(&valid_params()), Some("ann"));
        assert_eq!(send.claimed_user(&json!({"recipient": "bob"})), None);
        assert_eq!(send.claimed_user(&json!({"sender": 7})), None);
        assert_eq!(send.claimed_user(&json!("ann")), None);
        let echo =
            JobDefinition::from_json(&echo_text(), Path::new("echo.json")).expect("echo loads");
        assert_eq!(echo.claimed_user(&json!({"sender": "ann"})), None);
    }

    /// A claimer may point into nested params, with `~1` escaping `/`.
    #[test]
    fn a_claimer_may_point_into_nested_params() {
        let mut value = send_message();
        value["params"]["properties"]["on/behalf"] =
            json!({"type": "object", "properties": {"user": {"type": "string"}}});
        value["claimer"] = json!("/on~1behalf/user");
        let send = definition(&value);
        assert_eq!(
            send.claimed_user(&json!({"on/behalf": {"user": "carol"}})),
            Some("carol")
        );
    }

    /// `coerce_text` turns path/query text into the property's type, and leaves text that does
    /// not parse (or has no declared type) a string for validation to report.
    #[test]
    fn coerce_text_follows_the_property_type() {
        let list = definition(&list_messages());
        assert_eq!(list.coerce_text("limit", "20"), json!(20));
        assert_eq!(list.coerce_text("limit", "-3"), json!(-3));
        assert_eq!(list.coerce_text("limit", "twenty"), json!("twenty"));
        assert_eq!(list.coerce_text("limit", "2.5"), json!("2.5"));
        assert_eq!(list.coerce_text("min_score", "0.5"), json!(0.5));
        assert_eq!(list.coerce_text("min_score", "3"), json!(3));
        assert_eq!(list.coerce_text("min_score", "NaN"), json!("NaN"));
        assert_eq!(list.coerce_text("unread", "true"), json!(true));
        assert_eq!(list.coerce_text("unread", "false"), json!(false));
        assert_eq!(list.coerce_text("unread", "yes"), json!("yes"));
        assert_eq!(list.coerce_text("tags", "a,b,c"), json!(["a", "b", "c"]));
        assert_eq!(list.coerce_text("tags", ""), json!([]));
        assert_eq!(list.coerce_text("ids", "1,2,x"), json!([1, 2, "x"]));
        assert_eq!(list.coerce_text("user", "42"), json!("42"));
        assert_eq!(list.coerce_text("cursor", "7"), json!("7"));
        assert_eq!(list.coerce_text("page", "7"), json!(7));
        assert_eq!(list.coerce_text("anything", "7"), json!("7"));
        assert_eq!(list.coerce_text("undeclared", "7"), json!("7"));
    }

    /// Coerced text that does not parse is then reported by validation at its pointer.
    #[test]
    fn uncoercible_text_is_reported_by_validation() {
        let list = definition(&list_messages());
        let params = json!({"user": "ann", "limit": list.coerce_text("limit", "lots")});
        let errors = list.validate(&params).expect_err("limit is not an integer");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].pointer, "/limit");
    }

    /// Verbs parse whatever their case and print upper-case; only GET and DELETE go without a
    /// body.
    #[test]
    fn http_verbs_parse_case_insensitively() {
        assert_eq!(HttpVerb::parse("get"), Some(HttpVerb::Get));
        assert_eq!(HttpVerb::parse("Post"), Some(HttpVerb::Post));
        assert_eq!(HttpVerb::parse("PUT"), Some(HttpVerb::Put));
        assert_eq!(HttpVerb::parse("patch"), Some(HttpVerb::Patch));
        assert_eq!(HttpVerb::parse("delete"), Some(HttpVerb::Delete));
        assert_eq!(HttpVerb::parse("HEAD"), None);
        assert_eq!(HttpVerb::Patch.as_str(), "PATCH");
        assert_eq!(HttpVerb::Delete.to_string(), "DELETE");
        assert!(!HttpVerb::Get.takes_body());
        assert!(!HttpVerb::Delete.takes_body());
        assert!(HttpVerb::Post.takes_body());
    }

    /// Text that is not JSON is refused with the file and the line.
    #[test]
    fn bad_json_is_refused() {
        assert_send_message_refused(
            "bad-json",
            "{\"method\": \"send_message\",\n".to_owned(),
            &["not valid JSON", "line 2"],
        );
        assert_send_message_refused(
            "trailing",
            format!("{} {{}}", send_message()),
            &["not valid JSON"],
        );
    }

    /// A missing required key is refused, naming the key.
    #[test]
    fn a_missing_key_is_refused() {
        assert_send_message_refused(
            "missing-summary",
            send_message_with("summary", None),
            &["missing field `summary`"],
        );
        assert_send_message_refused(
            "missing-params",
            send_message_with("params", None),
            &["missing field `params`"],
        );
    }

    /// An unknown key (a typo) is refused, naming it and the known keys.
    #[test]
    fn an_unknown_key_is_refused() {
        assert_send_message_refused(
            "unknown-key",
            send_message_with("timeout", Some(json!(5000))),
            &["unknown field `timeout`", "timeout_ms"],
        );
        assert_send_message_refused(
            "unknown-http-key",
            send_message_with(
                "http",
                Some(json!({"verb": "GET", "path": "/v1/x", "pth": 1})),
            ),
            &["unknown field `pth`", "http"],
        );
    }

    /// A wrong type for a key is refused, naming the key.
    #[test]
    fn a_key_of_the_wrong_type_is_refused() {
        assert_send_message_refused(
            "wrong-type",
            send_message_with("worker", Some(json!(["messages"]))),
            &["worker"],
        );
    }

    /// Method and worker names must follow the contract's patterns; the summary is not empty.
    #[test]
    fn bad_names_and_an_empty_summary_are_refused() {
        assert_send_message_refused(
            "bad-method",
            send_message_with("method", Some(json!("Send-Message"))),
            &["`method`", "[a-z][a-z0-9_.]*"],
        );
        assert_send_message_refused(
            "bad-worker",
            send_message_with("worker", Some(json!("message workers"))),
            &["`worker`", "[a-z0-9_]+"],
        );
        assert_send_message_refused(
            "empty-summary",
            send_message_with("summary", Some(json!("  "))),
            &["`summary`", "empty"],
        );
    }

    /// The file name must be `<method>.json`.
    #[test]
    fn a_file_not_named_after_its_method_is_refused() {
        let message = load_error("file-name", &[("send.json", send_message().to_string())]);
        assert!(message.contains("send.json"), "{message}");
        assert!(message.contains("send_message.json"), "{message}");
    }

    /// The claimer must be a JSON Pointer, and point at a declared property.
    #[test]
    fn a_bad_claimer_is_refused() {
        assert_send_message_refused(
            "claimer-no-slash",
            send_message_with("claimer", Some(json!("sender"))),
            &["`claimer`", "JSON Pointer", "/sender"],
        );
        assert_send_message_refused(
            "claimer-bad-escape",
            send_message_with("claimer", Some(json!("/sen~der"))),
            &["`claimer`", "~"],
        );
        assert_send_message_refused(
            "claimer-typo",
            send_message_with("claimer", Some(json!("/sendr"))),
            &["`claimer`", "not a property"],
        );
    }

    /// `timeout_ms` must be a positive integer.
    #[test]
    fn a_bad_timeout_is_refused() {
        assert_send_message_refused(
            "timeout-zero",
            send_message_with("timeout_ms", Some(json!(0))),
            &["`timeout_ms`", "positive"],
        );
        assert_send_message_refused(
            "timeout-negative",
            send_message_with("timeout_ms", Some(json!(-5))),
            &["timeout_ms"],
        );
        assert_send_message_refused(
            "timeout-text",
            send_message_with("timeout_ms", Some(json!("30s"))),
            &["timeout_ms"],
        );
        assert_send_message_refused(
            "timeout-fraction",
            send_message_with("timeout_ms", Some(json!(1.5))),
            &["timeout_ms"],
        );
    }

    /// A params or result schema that is not valid draft 2020-12, or does not compile, is
    /// refused naming the key.
    #[test]
    fn an_uncompilable_schema_is_refused() {
        assert_send_message_refused(
            "schema-bad-type",
            send_message_with("params", Some(json!({"type": "strng"}))),
            &["`params`", "draft 2020-12"],
        );
        assert_send_message_refused(
            "schema-not-object",
            send_message_with("params", Some(json!("object"))),
            &["`params`"],
        );
        assert_send_message_refused(
            "schema-bad-ref",
            send_message_with(
                "params",
                Some(json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}})),
            ),
            &["`params`"],
        );
        assert_send_message_refused(
            "schema-bad-result",
            send_message_with("result", Some(json!({"minLength": -1}))),
            &["`result`"],
        );
    }

    /// A route's `{name}` must be a property of the params schema.
    #[test]
    fn a_path_parameter_missing_from_the_properties_is_refused() {
        assert_send_message_refused(
            "path-param",
            send_message_with(
                "http",
                Some(json!({"verb": "GET", "path": "/v1/messages/{message_id}"})),
            ),
            &["{message_id}", "not a property"],
        );
    }

    /// Route paths must start with `/v1/`, use whole `{name}` segments, start with a literal
    /// and stay clear of the gateway's own routes; verbs must be known.
    #[test]
    fn bad_routes_are_refused() {
        let cases = [
            (
                "route-prefix",
                json!({"verb": "GET", "path": "/messages/{sender}"}),
                "/v1/",
            ),
            (
                "route-jobs",
                json!({"verb": "POST", "path": "/v1/jobs/{sender}"}),
                "/v1/jobs",
            ),
            (
                "route-rpc",
                json!({"verb": "POST", "path": "/v1/rpc"}),
                "/v1/rpc",
            ),
            (
                "route-events",
                json!({"verb": "GET", "path": "/v1/events"}),
                "/v1/events",
            ),
            (
                "route-ws",
                json!({"verb": "GET", "path": "/v1/ws"}),
                "/v1/ws",
            ),
            (
                "route-first",
                json!({"verb": "GET", "path": "/v1/{sender}"}),
                "literal",
            ),
            (
                "route-partial",
                json!({"verb": "GET", "path": "/v1/m/x{sender}"}),
                "whole segment",
            ),
            (
                "route-catch-all",
                json!({"verb": "GET", "path": "/v1/m/{*sender}"}),
                "catch-all",
            ),
            (
                "route-colon",
                json!({"verb": "GET", "path": "/v1/m/:sender"}),
                "`:`",
            ),
            (
                "route-trailing",
                json!({"verb": "GET", "path": "/v1/m/"}),
                "empty segment",
            ),
            (
                "route-twice",
                json!({"verb": "GET", "path": "/v1/m/{sender}/{sender}"}),
                "twice",
            ),
            (
                "route-verb",
                json!({"verb": "FETCH", "path": "/v1/m"}),
                "`http.verb`",
            ),
        ];
        for (label, http, needle) in cases {
            assert_send_message_refused(label, send_message_with("http", Some(http)), &[needle]);
        }
    }

    /// Two files with the same verb and path conflict; the error names both files.
    #[test]
    fn a_route_conflict_names_both_files() {
        let mut other = send_message();
        other["method"] = json!("resend_message");
        let message = load_error(
            "conflict",
            &[
                ("send_message.json", send_message().to_string()),
                ("resend_message.json", other.to_string()),
            ],
        );
        assert!(message.contains("send_message.json"), "{message}");
        assert!(message.contains("resend_message.json"), "{message}");
        assert!(message.contains("POST"), "{message}");
    }

    /// The same path with another verb is fine, as are a literal beside a parameter and
    /// different literals.
    #[test]
    fn routes_that_the_router_can_tell_apart_coexist() {
        let mut get = send_message();
        get["method"] = json!("get_messages");
        get["http"] = json!({"verb": "GET", "path": "/v1/users/{sender}/messages"});
        let mut literal = send_message();
        literal["method"] = json!("mine");
        literal["http"] = json!({"verb": "POST", "path": "/v1/users/me/messages"});
        let mut other = send_message();
        other["method"] = json!("other");
        other["http"] = json!({"verb": "POST", "path": "/v1/users/{sender}/drafts"});
        SchemaSet::from_definitions(vec![
            definition(&send_message()),
            definition(&get),
            definition(&literal),
            definition(&other),
        ])
        .expect("the router tells these routes apart");
    }

    /// Parameters named differently at the same place conflict whatever the verbs (the router
    /// needs one name per place).
    #[test]
    fn differently_named_parameters_at_the_same_place_conflict() {
        let mut list = list_messages();
        list["http"] = json!({"verb": "GET", "path": "/v1/users/{user}/messages"});
        let error =
            SchemaSet::from_definitions(vec![definition(&send_message()), definition(&list)])
                .expect_err("{sender} and {user} at the same place");
        let message = error.to_string();
        assert!(
            matches!(error, SchemaError::RouteConflict { .. }),
            "{message}"
        );
        assert!(
            message.contains("{sender}") && message.contains("{user}"),
            "{message}"
        );
    }

    /// Two definitions of one method conflict.
    #[test]
    fn duplicate_methods_are_refused() {
        let echo = || {
            JobDefinition::from_json(&echo_text(), Path::new("a/echo.json")).expect("echo loads")
        };
        let message = SchemaSet::from_definitions(vec![echo(), echo()])
            .expect_err("echo twice")
            .to_string();
        assert!(message.contains("`echo`"), "{message}");
    }

    /// A directory without `*.json` files, or no directory at all, is refused saying so.
    #[test]
    fn an_empty_or_missing_directory_is_refused() {
        let dir = TempDir::new("empty");
        dir.write("notes.txt", "not a definition");
        let message = SchemaSet::load_dir(&dir.0)
            .expect_err("nothing to load")
            .to_string();
        assert!(message.contains("holds no *.json"), "{message}");
        assert!(message.contains(&dir.0.display().to_string()), "{message}");

        let missing = dir.0.join("nowhere");
        let message = SchemaSet::load_dir(&missing)
            .expect_err("no directory")
            .to_string();
        assert!(message.contains("does not exist"), "{message}");
        assert!(message.contains("nowhere"), "{message}");
    }

    /// One bad file fails the whole load, even when the others are fine.
    #[test]
    fn one_bad_file_fails_the_whole_load() {
        let message = load_error(
            "one-bad",
            &[
                ("echo.json", echo_text()),
                ("send_message.json", send_message_with("worker", None)),
            ],
        );
        assert!(message.contains("send_message.json"), "{message}");
    }
}
