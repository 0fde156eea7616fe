"""Schemathesis hooks for inquiryd.

An Idempotency-Key reused with a different body is a 422 by contract, and the
generator reuses short keys ("0") across different bodies: each *valid* key is
made unique per request. Invalid keys (negative tests) are sent as generated.
"""
import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"^[!-~]{1,128}$")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key" and VALID_KEY.match(str(headers[name]).strip()):
            headers[name] = uuid.uuid4().hex
    return None
