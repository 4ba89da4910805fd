"""Constraints between request parameters that an OpenAPI document cannot state
(each is said in words in the document): the contract tester generates only
requests that keep them, so a 400 for breaking one is not taken for a refusal
of valid data."""
import schemathesis

# Lists that take exactly one of two filters.
EXACTLY_ONE = {
    ("GET", "/v1/orders"): ("userId", "status"),
    ("GET", "/v1/customers"): ("status", "emailPrefix"),
}


@schemathesis.hook("filter_query")
def exactly_one_filter(context, query):
    op = context.operation
    pair = EXACTLY_ONE.get((op.method.upper(), op.path)) if op is not None else None
    if pair is None:
        return True
    given = query or {}
    return sum(1 for name in pair if name in given) == 1
