"""Constraints an OpenAPI document cannot state (each is said in words in the
document): the contract tester generates requests that keep them, so a 400 for
breaking one is not taken for a refusal of valid data.

- The order and customer lists take exactly one of two filters.
- A `cursor` is one the server issued (a page's `nextCursor`); any other string
  is refused (400), which the e2e tests check. Generated ones are dropped.
- No string or member name in a body holds U+0000 (refused with 400);
  run.sh keeps it out of strings, this out of member names.
- A command's id alias (`orderId`, `customerId`) must equal `aggregateId` when
  both are given.
- Time travel (`asOf`, `atVersion`) takes one of the two, and neither with a
  wait (`minVersion`, `waitMs`): a read of the past does not wait.
- Events by type: `to` is not before `from`.
- The schema registry: a `schema` is a JSON Schema text the registry
  implements; generated ones are replaced by a small valid one.
- `X-Tenant-Id` never selects a tenant: one naming another tenant than the
  credential's is refused (403). On POST /v1/commands, whose run does not
  count a 403 as accepting valid data, generated ones become the run's tenant
  (CONTRACT_TENANT). Not on query-svc: there a generated one keeps the 403
  (accepted by default) that also covers negative list queries which
  keep_query_constraints below turns valid (tried: mapping the header there
  made GET /v1/orders?status=Created a "negative" case answered 200).
- Replays: `from` is `beginning` or an RFC 3339 UTC time, `tenant` an existing
  tenant; the contract run asks only for dry runs (an applied replay would make
  every later one a 409).
"""
import json
import os
from datetime import datetime

import schemathesis

# path -> (filter kept when both are given, filter added when none is, its value)
EXACTLY_ONE = {
    "/v1/orders": ("userId", "status", "Created"),
    "/v1/customers": ("status", "emailPrefix", "ACTIVE"),
}
ID_ALIASES = ("orderId", "customerId")
TIME_TRAVEL = ("asOf", "atVersion")
WAITS = ("minVersion", "waitMs")


def _one_time_travel_no_wait(params):
    """Keeps at most one of asOf/atVersion, and no wait next to it (in place)."""
    if any(k in params for k in TIME_TRAVEL):
        for k in WAITS:
            params.pop(k, None)
        if all(k in params for k in TIME_TRAVEL):
            del params["atVersion"]


def _window_in_order(query):
    """Swaps from and to when to is before from (in place)."""
    try:
        if datetime.fromisoformat(query["to"]) < datetime.fromisoformat(query["from"]):
            query["from"], query["to"] = query["to"], query["from"]
    except (KeyError, TypeError, ValueError):
        pass


def _path(context):
    op = context.operation
    return (op.method.upper(), op.path) if op is not None else (None, None)


@schemathesis.hook("filter_query")
def no_made_up_admin_cursor(context, query):
    """admin-svc's list cursors: a made-up one is dropped whole (removing it
    from a negative case would leave a valid request labelled negative)."""
    method, path = _path(context)
    return not (method == "GET" and path and path.startswith("/v1/admin/") and query and "cursor" in query)


@schemathesis.hook("map_headers")
def own_tenant_only(context, headers):
    tenant = os.environ.get("CONTRACT_TENANT")
    if not tenant or not headers or "X-Tenant-Id" not in headers or _path(context) != ("POST", "/v1/commands"):
        return headers
    return {**headers, "X-Tenant-Id": tenant}


@schemathesis.hook("filter_body")
def only_dry_runs_of_real_times(context, body):
    """Replays: only dry runs (an applied replay would make every later one a
    409), from `beginning` or an RFC 3339 UTC time, of no named tenant (one the
    run did not create is refused). Filtered, not mapped: mapping would turn a
    negative case into a valid request still labelled negative."""
    method, path = _path(context)
    if method != "POST" or path != "/v1/admin/replays" or not isinstance(body, dict):
        return True
    frm = body.get("from")
    real_time = isinstance(frm, str) and (frm == "beginning" or _rfc3339_utc(frm))
    return body.get("dryRun") is not False and body.get("tenant") is None and (real_time or "from" not in body)


def _rfc3339_utc(s):
    try:
        return s.endswith("Z") and datetime.fromisoformat(s[:-1]) is not None
    except ValueError:
        return False


@schemathesis.hook("map_query")
def keep_query_constraints(context, query):
    method, path = _path(context)
    if method != "GET" or query is None:
        return query
    query = dict(query)
    query.pop("cursor", None)
    _one_time_travel_no_wait(query)
    if path == "/v1/events":
        _window_in_order(query)
    pair = EXACTLY_ONE.get(path)
    if pair is not None:
        first, second, default = pair
        if first in query and second in query:
            del query[second]
        elif first not in query and second not in query:
            query[first if first == "status" else second] = default
    return query


def _align_ids(obj):
    if not isinstance(obj, dict):
        return
    agg = obj.get("aggregateId")
    for alias in ID_ALIASES:
        if alias in obj and isinstance(agg, str) and agg:
            obj[alias] = agg


def _without_nul_names(value):
    if isinstance(value, dict):
        return {k: _without_nul_names(v) for k, v in value.items() if "\x00" not in k}
    if isinstance(value, list):
        return [_without_nul_names(v) for v in value]
    return value


VALID_SCHEMA = '{"type":"object","properties":{"id":{"type":"string"}},"additionalProperties":false}'


def _registry_body(body):
    body = dict(body)
    try:
        parsed = json.loads(body.get("schema"))
    except (TypeError, ValueError):
        parsed = None
    if not isinstance(parsed, dict):
        body["schema"] = VALID_SCHEMA
    return body


@schemathesis.hook("map_body")
def keep_body_constraints(context, body):
    method, path = _path(context)
    if method not in ("POST", "PUT") or not isinstance(body, dict):
        return body
    body = _without_nul_names(body)
    if path.startswith("/v1/schemas/") and "schema" in body:
        body = _registry_body(body)
    elif path == "/v1/query":
        body = dict(body)
        body.pop("cursor", None)
        _one_time_travel_no_wait(body)
    elif path == "/v1/commands":
        body = dict(body)
        _align_ids(body)
        payload = body.get("payload")
        if isinstance(payload, dict):
            payload = dict(payload)
            top = body.get("aggregateId")
            if isinstance(top, str) and top:
                payload["aggregateId"] = top
            _align_ids(payload)
            # an alias in one place and the id in the other must agree too
            for alias in ID_ALIASES:
                agg = body.get("aggregateId") or payload.get("aggregateId")
                if isinstance(agg, str) and agg:
                    for o in (body, payload):
                        if alias in o:
                            o[alias] = agg
            body["payload"] = payload
    return body
