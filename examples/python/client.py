#!/usr/bin/env python3
"""Call an intercomm method straight over AMQP with pika, and print the result as JSON.

    pip install -r examples/python/requirements.txt
    python3 examples/python/client.py echo '{"hello": {"nested": [1, 2]}}'
    python3 examples/python/client.py py_reverse '{"text": "merhaba"}' --timeout 5

It follows the contract (../../shared/CONTRACT.md §1-§2, docs/PROTOCOL.md §3, §8, §10, §11):

* a client-named callback queue `rpc_callback_<instance>` (never `amq.gen-*`): not exclusive,
  durable with `x-expires` (so it is accepted by RabbitMQ 4.3+ too, and vanishes a minute after a
  crashed client), deleted at the end;
* the job is published to `inter_comm` with routing key = method, `mandatory` and publisher
  confirms: a job no worker queue is bound for is reported as unroutable, never lost silently;
* properties `content_type=application/json`, `delivery_mode=2`, `correlation_id` = `message_id` =
  the request id, `reply_to`, `timestamp`, `expiration` (ms left) and the headers
  `x-intercomm-deadline` (RFC 3339, UTC) and `traceparent`; `x-intercomm-user` with `--user`;
* the first reply whose `correlation_id` matches wins; any other reply is dropped.

Exit codes, as `intercomm call`: 0 result printed, 1 broker or usage problem, 3 the worker answered
an error (the error object is printed), 4 unroutable, 5 no reply before the timeout.
"""

import argparse
import datetime
import json
import os
import re
import secrets
import sys
import time
import uuid

import pika
import pika.exceptions

JOB_EXCHANGE = "inter_comm"
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"
METHOD_NAME = re.compile(r"[a-z][a-z0-9_.]*\Z")
CALLBACK_EXPIRES_MS = 60_000

EXIT_OK, EXIT_FAILURE, EXIT_REMOTE_ERROR, EXIT_UNROUTABLE, EXIT_TIMEOUT = 0, 1, 3, 4, 5


def rfc3339(seconds):
    """UTC, `Z`, milliseconds with trailing zeros dropped (as intercomm writes it)."""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    millis = moment.microsecond // 1000
    fraction = f".{millis:03d}".rstrip("0") if millis else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def fail(code, message):
    print(f"error: {message}", file=sys.stderr)
    return code


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Call an intercomm method over AMQP (pika).")
    parser.add_argument("method", nargs="?", default="echo", help="the method (= routing key); default echo")
    parser.add_argument("params", nargs="?", default="{}",
                        help="params as JSON (object or array); - reads stdin")
    parser.add_argument("--url", default=os.environ.get("AMQP_URL") or os.environ.get("INTERCOMM_AMQP_URL")
                        or DEFAULT_URL, help="the broker (default AMQP_URL or the local one)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds until the deadline (default 30)")
    parser.add_argument("--user", help="send x-intercomm-user (act for this user, as a gateway would)")
    parser.add_argument("--instance", default=uuid.uuid4().hex,
                        help="callback queue rpc_callback_<instance> (default: random)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not METHOD_NAME.match(args.method):
        return fail(EXIT_FAILURE, f"invalid method name `{args.method}`: must match [a-z][a-z0-9_.]*")
    text = sys.stdin.read() if args.params == "-" else args.params
    try:
        params = json.loads(text)
    except ValueError as error:
        return fail(EXIT_FAILURE, f"params are not JSON: {error}")
    if not isinstance(params, (dict, list)):
        return fail(EXIT_FAILURE, "params must be a JSON object or array")
    if args.timeout <= 0:
        return fail(EXIT_FAILURE, "--timeout must be positive")

    parameters = pika.URLParameters(args.url)
    parameters.client_properties = {"connection_name": f"py-client-{os.getpid()}"}
    try:
        connection = pika.BlockingConnection(parameters)
    except pika.exceptions.AMQPConnectionError as error:
        return fail(EXIT_FAILURE, f"cannot reach RabbitMQ: {error!r}")
    try:
        return call(connection, args, params)
    except pika.exceptions.ChannelClosedByBroker as error:
        if error.reply_code == 404:
            # `inter_comm` does not exist: no worker has ever declared it, so none is bound.
            return fail(EXIT_UNROUTABLE, f"no worker serves `{args.method}` ({error.reply_text})")
        return fail(EXIT_FAILURE, f"the broker closed the channel: {error!r}")
    except pika.exceptions.AMQPError as error:
        return fail(EXIT_FAILURE, f"broker error: {error!r}")
    finally:
        try:
            if connection.is_open:
                connection.close()
        except pika.exceptions.AMQPError:
            pass


def call(connection, args, params):
    channel = connection.channel()
    channel.confirm_delivery()
    callback = f"rpc_callback_{args.instance}"
    channel.queue_declare(queue=callback, durable=True, arguments={"x-expires": CALLBACK_EXPIRES_MS})

    job_id = str(uuid.uuid4())  # intercomm uses UUIDv7; any unique string works
    replies = []

    def on_reply(_channel, _deliver, properties, body):
        if properties.correlation_id == job_id and not replies:
            replies.append(body)  # the first reply wins; duplicates and strangers are dropped

    channel.basic_consume(queue=callback, on_message_callback=on_reply, auto_ack=True)

    now = time.time()
    deadline = now + args.timeout
    headers = {
        "x-intercomm-deadline": rfc3339(deadline),
        "traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01",
    }
    if args.user:
        headers["x-intercomm-user"] = args.user
    properties = pika.BasicProperties(
        content_type="application/json",
        delivery_mode=2,
        correlation_id=job_id,
        message_id=job_id,
        reply_to=callback,
        timestamp=int(now),
        expiration=str(max(1, int(args.timeout * 1000))),
        app_id="intercomm-py-client",
        headers=headers,
    )
    request = {"jsonrpc": "2.0", "method": args.method, "params": params, "id": job_id}
    body = json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    try:
        channel.basic_publish(
            exchange=JOB_EXCHANGE, routing_key=args.method, body=body, properties=properties, mandatory=True
        )
    except pika.exceptions.UnroutableError:
        channel.queue_delete(queue=callback)
        return fail(EXIT_UNROUTABLE, f"no worker queue is bound for method `{args.method}` (unroutable)")
    except pika.exceptions.NackError:
        channel.queue_delete(queue=callback)
        return fail(EXIT_FAILURE, "the broker refused the job (publisher confirm nack)")

    while not replies:
        left = deadline - time.time()
        if left <= 0:
            break
        connection.process_data_events(time_limit=min(left, 0.25))
    channel.queue_delete(queue=callback)
    if not replies:
        return fail(EXIT_TIMEOUT, f"no reply within {args.timeout:g} s")

    try:
        response = json.loads(replies[0])
    except ValueError as error:
        return fail(EXIT_FAILURE, f"malformed reply: {error}")
    if not isinstance(response, dict):
        return fail(EXIT_FAILURE, "malformed reply: not a JSON-RPC response object")
    if "error" in response:
        error = response["error"]
        print(json.dumps(error, ensure_ascii=False))
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        return fail(EXIT_REMOTE_ERROR, f"the worker answered {code}: {message}")
    if "result" not in response:
        return fail(EXIT_FAILURE, "malformed reply: neither result nor error")
    print(json.dumps(response["result"], ensure_ascii=False))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
