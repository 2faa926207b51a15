#!/usr/bin/env python3
"""An intercomm worker written in Python with pika, from the contract alone.

It serves one method, defined by a job definition file in the `schemas/` format
(`examples/python/schemas/py_reverse.json` by default): it validates params against the
definition's `params` schema and answers the way every intercomm worker does, so the gateway, the
Rust `RpcClient`, `intercomm call` and any other client can call it.

What it does, in contract order (../../shared/CONTRACT.md §1-§3, docs/PROTOCOL.md §2-§9):

* declares `inter_comm` (direct), `inter_comm.dlx` (direct), `inter_comm.events` (topic), all
  durable; then `rpc_queue_<worker>` (durable, quorum by default, dead-lettering to
  `inter_comm.dlx` with key `rpc_queue_<worker>.dlq`, `x-delivery-limit` on quorum), its
  `.dlq` and the DLQ binding, then one binding per method, on every (re)connect;
* consumes with manual acks and a prefetch;
* answers -32700 / -32600 / -32601 / -32602 / -32603 / -32000 / -32003 as intercomm's own workers do;
* publishes each reply to the default exchange with routing key `reply_to`, `correlation_id`
  copied, `content_type=application/json`, `delivery_mode=2`, `mandatory`, in confirm mode, and
  acks the job only after the broker confirmed the reply (a nacked reply requeues the job);
* honours the deadline (`x-intercomm-deadline`, else `timestamp + expiration`): a job past it is
  answered -32000 without running;
* prints `ready` on standard output once it consumes; logs go to standard error;
* stops on SIGTERM or Ctrl-C after the job it is running; unacked jobs go back to the queue.

Jobs run one at a time (pika's BlockingConnection is single-threaded); start more processes with
the same `--worker` to scale: they share the queue.

    pip install -r examples/python/requirements.txt
    python3 examples/python/worker.py                      # worker py_strings, method py_reverse
    intercomm call py_reverse '{"text": "merhaba"}'        # from another terminal

Options: --worker, --method (defaults from the definition file), --definition, --url (default
AMQP_URL or amqp://guest:guest@127.0.0.1:5672/%2f), --queue-type quorum|classic (default
INTERCOMM_QUEUE_TYPE or quorum), --delivery-limit (INTERCOMM_DELIVERY_LIMIT or 5), --prefetch.
"""

import argparse
import datetime
import json
import logging
import os
import random
import re
import signal
import sys
import time
import urllib.parse

import pika
import pika.exceptions

JOB_EXCHANGE = "inter_comm"
DEAD_LETTER_EXCHANGE = "inter_comm.dlx"
EVENTS_EXCHANGE = "inter_comm.events"
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DEFINITION = os.path.join(HERE, "schemas", "py_reverse.json")

WORKER_NAME = re.compile(r"[a-z0-9_]+\Z")
METHOD_NAME = re.compile(r"[a-z][a-z0-9_.]*\Z")

# CONTRACT.md §3.
PARSE_ERROR = (-32700, "Parse error")
INVALID_REQUEST = (-32600, "Invalid Request")
METHOD_NOT_FOUND = (-32601, "Method not found")
INVALID_PARAMS = (-32602, "Invalid params")
INTERNAL_ERROR = (-32603, "Internal error")
DEADLINE_EXCEEDED = (-32000, "Deadline exceeded")
DELIVERY_LIMIT = (-32003, "Delivery limit")

ACK, DEAD_LETTER = "ack", "dead-letter"

log = logging.getLogger("py-worker")


class RpcError(Exception):
    """Raised by a handler to answer a JSON-RPC error (code, message, optional data)."""

    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


class TopologyMismatch(Exception):
    """A queue or exchange exists with other arguments: an operator must decide."""


# --------------------------------------------------------------------------------------------
# The method this example serves.


def py_reverse(params, context):
    """Reverse `text`; upper-case it too when `upper` is true."""
    text = params["text"]
    reversed_text = text[::-1]
    if params.get("upper"):
        reversed_text = reversed_text.upper()
    return {"reversed": reversed_text, "length": len(text)}


# --------------------------------------------------------------------------------------------
# A small JSON Schema validator: only the keywords listed below. A definition that uses any other
# keyword is refused at start, so params are never validated less strictly than the file says.
# (A real worker would use the `jsonschema` package, draft 2020-12.)

SCHEMA_KEYWORDS = {
    "type", "properties", "required", "additionalProperties", "items", "enum",
    "minLength", "maxLength", "minimum", "maximum",
    "$schema", "$comment", "title", "description", "default", "examples",
}


def check_schema(schema, where="params"):
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise ValueError(f"{where}: a schema must be an object or a boolean")
    unknown = sorted(set(schema) - SCHEMA_KEYWORDS)
    if unknown:
        raise ValueError(
            f"{where}: keyword(s) {', '.join(unknown)} not supported by this example's validator"
        )
    for name, sub in schema.get("properties", {}).items():
        check_schema(sub, f"{where}/properties/{name}")
    for key in ("additionalProperties", "items"):
        if key in schema:
            check_schema(schema[key], f"{where}/{key}")


def _pointer(parent, token):
    return parent + "/" + str(token).replace("~", "~0").replace("/", "~1")


def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _has_type(value, wanted):
    actual = _type_name(value)
    if wanted == "number":
        return actual in ("integer", "number")
    if wanted == "integer" and actual == "number":
        return float(value).is_integer()
    return actual == wanted


def validate(schema, value, pointer=""):
    """The first violation as (JSON Pointer into params, message), or None."""
    if schema is True:
        return None
    if schema is False:
        return pointer, "no value is allowed here"
    wanted = schema.get("type")
    if wanted is not None:
        kinds = wanted if isinstance(wanted, list) else [wanted]
        if not any(_has_type(value, kind) for kind in kinds):
            return pointer, f"expected {' or '.join(kinds)}, got {_type_name(value)}"
    if "enum" in schema and value not in schema["enum"]:
        return pointer, f"must be one of {json.dumps(schema['enum'])}"
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            return pointer, f"shorter than {schema['minLength']} characters"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return pointer, f"longer than {schema['maxLength']} characters"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return pointer, f"less than {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return pointer, f"greater than {schema['maximum']}"
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                return pointer, f"missing property `{name}`"
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                problem = validate(properties[name], item, _pointer(pointer, name))
            elif extra is False:
                return _pointer(pointer, name), f"unknown property `{name}`"
            else:
                problem = validate(extra, item, _pointer(pointer, name))
            if problem:
                return problem
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problem = validate(schema["items"], item, _pointer(pointer, index))
            if problem:
                return problem
    return None


# --------------------------------------------------------------------------------------------
# Reading a job.

RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z"
)


def parse_rfc3339(text):
    """Seconds since the epoch for an RFC 3339 timestamp, or None."""
    match = RFC3339.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    offset = match.group(8)
    if offset in ("Z", "z"):
        tz = datetime.timezone.utc
    else:
        sign = 1 if offset[0] == "+" else -1
        tz = datetime.timezone(sign * datetime.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    try:
        moment = datetime.datetime(year, month, day, hour, minute, min(second, 59), tzinfo=tz)
    except ValueError:
        return None
    return moment.timestamp() + (float(match.group(7)) if match.group(7) else 0.0)


def header_text(headers, name):
    """A text header: AMQP long/short strings arrive as str, byte arrays as bytes."""
    value = headers.get(name)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def job_deadline(properties, headers):
    """From `x-intercomm-deadline`, else `timestamp + expiration` (1 s accurate); None if neither."""
    text = header_text(headers, "x-intercomm-deadline")
    if text is not None:
        deadline = parse_rfc3339(text)
        if deadline is not None:
            return deadline
    if properties.timestamp is not None and properties.expiration:
        try:
            return properties.timestamp + int(properties.expiration) / 1000.0
        except ValueError:
            return None
    return None


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


class Call:
    """One element of a body: kind is "request", "notification" or "invalid"."""

    def __init__(self, kind, id_=None, method=None, params=None, reason=None):
        self.kind, self.id, self.method, self.params, self.reason = kind, id_, method, params, reason


def parse_call(element):
    if not isinstance(element, dict):
        return Call("invalid", reason="a request must be a JSON object")
    has_id = "id" in element
    id_ = element.get("id")
    id_ok = id_ is None or isinstance(id_, str) or (isinstance(id_, int) and not isinstance(id_, bool))
    if has_id and not id_ok:
        return Call("invalid", reason="id must be a string, an integer or null")
    if element.get("jsonrpc") != "2.0":
        return Call("invalid", id_, reason='jsonrpc must be "2.0"')
    method = element.get("method")
    if not isinstance(method, str):
        return Call("invalid", id_, reason="method must be a string")
    params = element.get("params")
    if params is not None and not isinstance(params, (dict, list)):
        return Call("invalid", id_, reason="params must be an object or an array")
    return Call("request" if has_id else "notification", id_, method, params)


def error_response(id_, code_message, data=None):
    code, message = code_message
    error = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": id_}


def encode(document):
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


# --------------------------------------------------------------------------------------------
# The worker.


class Worker:
    def __init__(self, name, methods, queue_type, delivery_limit):
        self.name = name
        self.methods = methods  # method -> (handler, params schema)
        self.queue_type = queue_type
        self.delivery_limit = delivery_limit
        self.queue = f"rpc_queue_{name}"
        self.dlq = f"rpc_queue_{name}.dlq"

    def declare(self, channel):
        """The whole topology, idempotently (CONTRACT §1, PROTOCOL §2)."""
        for exchange, kind in (
            (JOB_EXCHANGE, "direct"),
            (DEAD_LETTER_EXCHANGE, "direct"),
            (EVENTS_EXCHANGE, "topic"),
        ):
            channel.exchange_declare(exchange=exchange, exchange_type=kind, durable=True)
        arguments = {
            "x-queue-type": self.queue_type,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": self.dlq,
        }
        if self.queue_type == "quorum":
            arguments["x-delivery-limit"] = self.delivery_limit
        channel.queue_declare(queue=self.queue, durable=True, arguments=arguments)
        channel.queue_declare(queue=self.dlq, durable=True, arguments={"x-queue-type": self.queue_type})
        channel.queue_bind(queue=self.dlq, exchange=DEAD_LETTER_EXCHANGE, routing_key=self.dlq)
        for method in self.methods:
            channel.queue_bind(queue=self.queue, exchange=JOB_EXCHANGE, routing_key=method)

    def on_job(self, channel, deliver, properties, body):
        """Answer, publish the reply with a confirm, then settle (PROTOCOL §6)."""
        try:
            reply, settle = self.answer(properties, body)
        except Exception:  # a bug here must not stop the worker or loop the job forever
            log.exception("cannot answer the job; dead-lettering it")
            channel.basic_nack(delivery_tag=deliver.delivery_tag, requeue=False)
            return
        if reply is not None:
            try:
                channel.basic_publish(
                    exchange="",
                    routing_key=properties.reply_to,
                    body=reply,
                    properties=pika.BasicProperties(
                        content_type="application/json",
                        delivery_mode=2,
                        correlation_id=properties.correlation_id,
                    ),
                    mandatory=True,
                )
            except pika.exceptions.UnroutableError:
                # The callback queue is gone, so is the caller: settle as planned.
                log.warning("reply to %s was unroutable (the caller is gone)", properties.reply_to)
            except pika.exceptions.NackError:
                log.warning("the broker refused the reply; requeueing the job")
                channel.basic_nack(delivery_tag=deliver.delivery_tag, requeue=True)
                return
        if settle == ACK:
            channel.basic_ack(delivery_tag=deliver.delivery_tag)
        else:
            channel.basic_nack(delivery_tag=deliver.delivery_tag, requeue=False)

    def answer(self, properties, body):
        """(reply body or None, ACK or DEAD_LETTER), checked in intercomm's order."""
        can_reply = bool(properties.reply_to) and properties.correlation_id is not None
        headers = properties.headers or {}
        try:
            document = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError) as error:  # 1: not JSON
            log.warning("job body is not JSON; dead-lettering")
            reply = encode(error_response(None, PARSE_ERROR, str(error))) if can_reply else None
            return reply, DEAD_LETTER
        batch = isinstance(document, list) and len(document) > 0
        if batch:
            calls = [parse_call(element) for element in document]
        elif isinstance(document, list):
            calls = [Call("invalid", reason="empty batch")]
        else:
            calls = [parse_call(document)]
        expects_reply = any(call.kind != "notification" for call in calls)
        if expects_reply and not can_reply:  # 2
            log.warning("request without reply_to or correlation_id; dead-lettering")
            return None, DEAD_LETTER

        deadline = job_deadline(properties, headers)
        delivery_count = headers.get("x-delivery-count", 0)
        if not isinstance(delivery_count, int) or isinstance(delivery_count, bool):
            delivery_count = 0
        content_type = properties.content_type
        refusal = None
        if content_type is not None and content_type.split(";")[0].strip().lower() != "application/json":  # 3
            reason = f"content_type must be application/json, not {content_type}"
            refusal = (INVALID_REQUEST, reason, DEAD_LETTER)
        elif self.queue_type == "quorum" and delivery_count >= self.delivery_limit:  # 4
            log.warning("job delivered %d times; dead-lettering", delivery_count)
            data = {"deliveries": delivery_count, "limit": self.delivery_limit}
            refusal = (DELIVERY_LIMIT, data, DEAD_LETTER)
        elif deadline is not None and deadline <= time.time():  # 5
            refusal = (DEADLINE_EXCEEDED, None, ACK)
        if refusal is not None:
            code_message, data, settle = refusal
            replies = [error_response(c.id, code_message, data) for c in calls if c.kind != "notification"]
            if not replies or not can_reply:
                return None, settle
            return encode(replies if batch else replies[0]), settle

        context = {
            "user": header_text(headers, "x-intercomm-user"),
            "traceparent": header_text(headers, "traceparent"),
            "job_id": properties.correlation_id or properties.message_id,
            "deadline": deadline,
            "delivery_count": delivery_count,
        }
        if not batch:  # 6, 7
            call = calls[0]
            response = self.run(call, context)
            settle = DEAD_LETTER if call.kind == "invalid" else ACK
            return (encode(response) if response is not None else None), settle
        responses = [r for r in (self.run(call, context) for call in calls) if r is not None]  # 8
        return (encode(responses) if responses else None), ACK

    def run(self, call, context):
        """The response to one call, or None for a notification."""
        if call.kind == "invalid":
            return error_response(call.id, INVALID_REQUEST, call.reason)
        entry = self.methods.get(call.method)
        if entry is None:
            response = error_response(call.id, METHOD_NOT_FOUND, {"method": call.method})
        else:
            handler, schema = entry
            params = {} if call.params is None else call.params
            problem = validate(schema, params)
            if problem is not None:
                pointer, message = problem
                response = error_response(call.id, INVALID_PARAMS, {"pointer": pointer, "message": message})
            else:
                response = self.run_handler(handler, call, params, context)
        return None if call.kind == "notification" else response

    def run_handler(self, handler, call, params, context):
        try:
            result = handler(params, context)
        except RpcError as error:
            return error_response(call.id, (error.code, error.message), error.data)
        except Exception:  # the worker keeps running; the text stays in the log
            log.exception("handler for %s failed", call.method)
            return error_response(call.id, INTERNAL_ERROR)
        try:
            encode(result)
        except (TypeError, ValueError) as error:
            return error_response(call.id, (INTERNAL_ERROR[0], f"result could not be encoded: {error}"))
        deadline = context["deadline"]
        if deadline is not None and time.time() >= deadline:
            # The caller has stopped waiting; say so, as intercomm's workers do.
            return error_response(call.id, DEADLINE_EXCEEDED)
        return {"jsonrpc": "2.0", "result": result, "id": call.id}


# --------------------------------------------------------------------------------------------
# Running: connect, declare, consume; reconnect with backoff; stop on a signal.

INEQUIVALENT = re.compile(
    r"inequivalent arg '([^']+)' for (queue|exchange) '([^']+)'.*?received (?:the value )?'([^']*)'"
    r".*?current (?:value )?is '([^']*)'"
)


def explain_mismatch(text, queue_type):
    match = INEQUIVALENT.search(text)
    if not match:
        return f"the broker refused a declaration: {text}"
    argument, kind, name, wanted, existing = match.groups()
    hints = {
        "x-queue-type": f"--queue-type {existing}",
        "x-delivery-limit": f"--delivery-limit {existing}",
    }
    hint = hints.get(argument, f"the {queue_type} settings this {kind} was created with")
    return (
        f"{kind} `{name}` exists with {argument} = {existing}, but {wanted} was wanted; "
        f"delete it (after draining it) or set the matching option, e.g. {hint}"
    )


def redacted(url):
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def load_definition(path):
    with open(path, encoding="utf-8") as file:
        definition = json.load(file)
    for key in ("method", "worker", "summary", "params"):
        if key not in definition:
            raise ValueError(f"{path}: a job definition needs `{key}` (CONTRACT.md §4)")
    check_schema(definition["params"])
    return definition


def parse_args(argv):
    parser = argparse.ArgumentParser(description="An intercomm worker in Python (pika).")
    parser.add_argument("--definition", default=DEFAULT_DEFINITION,
                        help="job definition file (schemas/ format); default %(default)s")
    parser.add_argument("--worker", help="worker name (queue rpc_queue_<worker>); default: the definition's")
    parser.add_argument("--method", help="method to serve (= routing key); default: the definition's")
    parser.add_argument("--url", default=os.environ.get("AMQP_URL") or os.environ.get("INTERCOMM_AMQP_URL")
                        or DEFAULT_URL, help="the broker (default AMQP_URL or the local one)")
    parser.add_argument("--queue-type", choices=("quorum", "classic"),
                        default=(os.environ.get("INTERCOMM_QUEUE_TYPE") or "quorum").strip().lower())
    parser.add_argument("--delivery-limit", type=int,
                        default=int(os.environ.get("INTERCOMM_DELIVERY_LIMIT") or 5))
    parser.add_argument("--prefetch", type=int, default=int(os.environ.get("INTERCOMM_PREFETCH") or 16))
    return parser.parse_args(argv)


def main(argv=None):
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    args = parse_args(argv)
    try:
        definition = load_definition(args.definition)
    except (OSError, ValueError) as error:
        log.error("cannot use the job definition: %s", error)
        return 1
    name = args.worker or definition["worker"]
    method = args.method or definition["method"]
    if not WORKER_NAME.match(name):
        log.error("invalid worker name `%s`: must match [a-z0-9_]+", name)
        return 1
    if not METHOD_NAME.match(method):
        log.error("invalid method name `%s`: must match [a-z][a-z0-9_.]*", method)
        return 1
    if args.queue_type not in ("quorum", "classic"):
        log.error("queue type `%s` is not quorum or classic", args.queue_type)
        return 1
    handlers = {"py_reverse": py_reverse}
    handler = handlers.get(definition["method"])
    if handler is None:
        log.error("this example has no handler for `%s` (it knows %s)",
                  definition["method"], ", ".join(handlers))
        return 1
    worker = Worker(name, {method: (handler, definition["params"])}, args.queue_type, args.delivery_limit)

    stopping = []

    def stop(signum, _frame):
        log.info("signal %d: stopping after the running job", signum)
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    parameters = pika.URLParameters(args.url)
    parameters.client_properties = {"connection_name": f"py-worker-{name}-{os.getpid()}"}
    first, backoff = True, 0.1
    while not stopping:
        try:
            connection = pika.BlockingConnection(parameters)
        except pika.exceptions.AMQPConnectionError as error:
            if first:  # fail fast at start, so a wrong URL is seen at once
                log.error("cannot reach RabbitMQ at %s: %r", redacted(args.url), error)
                return 1
            log.warning("reconnecting in %.1f s: %r", backoff, error)
            time.sleep(backoff * (1 + random.random() / 4))
            backoff = min(backoff * 2, 5.0)
            continue
        try:
            channel = connection.channel()
            try:
                worker.declare(channel)
            except pika.exceptions.ChannelClosedByBroker as error:
                if error.reply_code == 406:  # PRECONDITION_FAILED: needs an operator, not a retry
                    raise TopologyMismatch(explain_mismatch(error.reply_text, args.queue_type)) from error
                raise
            channel.confirm_delivery()
            channel.basic_qos(prefetch_count=max(1, args.prefetch))
            consumer = channel.basic_consume(queue=worker.queue, on_message_callback=worker.on_job)
            backoff = 0.1
            log.info("worker %s consuming %s (%s), method %s", name, worker.queue, args.queue_type, method)
            if first:
                first = False
                print("ready", flush=True)
            while not stopping:
                connection.process_data_events(time_limit=0.5)
            channel.basic_cancel(consumer)
            connection.close()  # jobs taken but not acked return to the queue
        except TopologyMismatch as error:
            log.error("worker `%s`: %s", name, error)
            _close_quietly(connection)
            return 2
        except pika.exceptions.AMQPError as error:
            _close_quietly(connection)
            if stopping:
                break
            if first:
                log.error("worker `%s` could not start: %r", name, error)
                return 1
            log.warning("connection lost (%r); reconnecting", error)
            time.sleep(backoff * (1 + random.random() / 4))
            backoff = min(backoff * 2, 5.0)
    log.info("worker %s stopped", name)
    return 0


def _close_quietly(connection):
    try:
        if connection.is_open:
            connection.close()
    except Exception:  # already closing or closed
        pass


if __name__ == "__main__":
    sys.exit(main())
