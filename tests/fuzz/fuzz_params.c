/* Query parameters (query-svc/params.c), whichever way they came, and the
 * cursor among them (query-svc/cursor.c): what every list and single-read
 * route reads.
 *
 * Input: a query string "name=value&name=value" (no percent-decoding: evhttp
 * does that before params.c sees anything), at most 16 pairs. Every reader the
 * routes use runs over the names they read. Property: a refusal names a
 * parameter (the 400's field). */
#include "fuzz.h"

#include "cursor.h"
#include "params.h"

#define MAX_PAIRS 16

static const char *const ORDER_STATUSES[] = {"Created", "Processing", "Shipped", "Delivered", "Cancelled", NULL};
static const char *const CUSTOMER_STATUSES[] = {"ACTIVE", "SUSPENDED", NULL};
static const char *const NAMES[] = {"userId", "email", "orderId", "customerId", "emailPrefix", "minVersion",
                                    "waitMs", NULL};

static void refused(bool ok, const cqrs_error_t *err) {
  FUZZ_CHECK(ok || err->field[0], "a refusal without a field: %s", err->message);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size), *end = text + size, *rest = text, *pair;
  cqrs_params_t *p = cqrs_params_new();
  cqrs_error_t err = {0};
  for (int n = 0; n < MAX_PAIRS && (pair = fuzz_next(&rest, end, '&', NULL)); n++) {
    char *eq = strchr(pair, '=');
    if (eq) *eq = '\0';
    if (!*pair) continue; /* the routes add only names they know (an empty one is an unknown one) */
    err = (cqrs_error_t){0};
    refused(cqrs_params_add(p, pair, eq ? eq + 1 : "", &err), &err);
  }
  const char *s;
  int limit;
  for (const char *const *name = NAMES; *name; name++) {
    for (int required = 0; required < 2; required++) {
      err = (cqrs_error_t){0};
      refused(cqrs_params_string(p, *name, required, 64, &s, &err), &err);
      err = (cqrs_error_t){0};
      refused(cqrs_params_string(p, *name, required, 0, &s, &err), &err);
    }
  }
  err = (cqrs_error_t){0};
  refused(cqrs_params_limit(p, &limit, &err), &err);
  if (!err.field[0]) FUZZ_CHECK(limit >= 1 && limit <= CQRS_PARAMS_LIMIT_MAX, "limit %d", limit);
  err = (cqrs_error_t){0};
  refused(cqrs_params_one_of(p, "userId", "status", &s, &err), &err);
  err = (cqrs_error_t){0};
  refused(cqrs_params_one_of(p, "status", "emailPrefix", &s, &err), &err);
  err = (cqrs_error_t){0};
  refused(cqrs_params_enum(p, "status", ORDER_STATUSES, &s, &err), &err);
  err = (cqrs_error_t){0};
  refused(cqrs_params_enum(p, "status", CUSTOMER_STATUSES, &s, &err), &err);
  err = (cqrs_error_t){0};
  const char *cursor = NULL;
  bool ok = cqrs_params_cursor(p, &cursor, &err);
  refused(ok, &err);
  if (ok && cursor) {
    bson_value_t v, id;
    err = (cqrs_error_t){0};
    if (cqrs_cursor_decode(cursor, "GetOrdersByUser", "createdAt", &v, &id, &err)) {
      bson_value_destroy(&v);
      bson_value_destroy(&id);
    } else {
      refused(false, &err);
    }
  }
  cqrs_params_destroy(p);
  free(text);
  return 0;
}
