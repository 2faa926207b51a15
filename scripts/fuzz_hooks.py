"""schemathesis hooks for scripts/fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

Idempotency-Key: the gateway remembers a key per subject, whatever the method (docs/HTTP.md), so
a key that schemathesis reuses on another operation would be answered with another method's
job, whose `result` does not match the operation's documented result schema. Prefixing each key
with its operation keeps every key to one operation. Replays within an operation still happen,
and so do malformed keys: an empty or blank key is left as it is, and an over-long key stays
over-long.

Claimers: a method with a claimer (`/sender`, `/user_id`) refuses params that name another user
than the token's subject with 403. schemathesis fills `user_id` with the token's `sub` now and
then, but never `sender`, so without help `send_message` would never get past the 403. Half of
the valid bodies and paths (chosen by a checksum, so that the run stays reproducible) get the
subject in those fields.
"""

import json
import os
import zlib

import schemathesis
from schemathesis.core.parameters import ParameterLocation

IDEMPOTENCY_KEY = "idempotency-key"
CLAIMER_FIELDS = ("sender", "user_id")
SUBJECT = os.environ.get("FUZZ_SUBJECT", "fuzzer")


def _prefix_idempotency_key(case):
    headers = case.headers
    if not headers:
        return
    for name in list(headers):
        if name.lower() != IDEMPOTENCY_KEY:
            continue
        value = headers[name]
        if not isinstance(value, str) or not value.strip():
            # Empty keys must reach the gateway as they are (it answers 400).
            continue
        headers[name] = f"{case.operation.method.upper()}:{case.operation.path}:{value}"


def _half(value):
    """True for about half of the values, the same every run."""
    text = json.dumps(value, sort_keys=True, default=repr)
    return zlib.crc32(text.encode("utf-8", "surrogatepass")) % 2 == 0


def _claim_as_subject(case):
    if case.meta is None:
        return
    body = case.body
    if (
        isinstance(body, dict)
        and any(isinstance(body.get(field), str) for field in CLAIMER_FIELDS)
        and not case.meta.is_negative_at(ParameterLocation.BODY)
        and _half(body)
    ):
        for field in CLAIMER_FIELDS:
            if isinstance(body.get(field), str):
                body[field] = SUBJECT
    path = case.path_parameters
    if (
        isinstance(path, dict)
        and isinstance(path.get("user_id"), str)
        and not case.meta.is_negative_at(ParameterLocation.PATH)
        and _half(path)
    ):
        path["user_id"] = SUBJECT


@schemathesis.hook
def before_call(context, case, **kwargs):
    _prefix_idempotency_key(case)
    _claim_as_subject(case)
