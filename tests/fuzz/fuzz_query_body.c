/* POST /v1/query bodies (query-svc/params.h cqrs_params_body), read as the
 * route reads them (routes/query.c): cqrs_json_parse, the queryType member
 * (required, at most CQRS_PARAMS_QUERY_TYPE_MAX characters), then the other
 * members as parameters of the query it names, for the same readers a GET's
 * query string goes to.
 *
 * Input: the body, in a buffer of its exact size (a read past it is an ASan
 * report); run.sh lets it reach 16 KiB (deep, long, odd JSON: the server's
 * own limit, MAX_BODY_BYTES, comes before and is the http target's). The
 * queries are the routes' seed queries with their parameter lists, read from
 * the routes themselves (cqrs_routes_resources); a queryType none of them has
 * (the route refuses it before) is read against all their parameters, so
 * the fuzzer need not find a name to get further.
 *
 * Properties, against a walk of the members of its own: accepted is exactly
 * a body whose members (but the first queryType) are each an allowed name
 * with a string without NUL, an integer or null; then each parameter is its
 * member as written (a string byte for byte, nothing cut; an integer in
 * plain decimal; null and queryType absent); refused names the first member
 * that is not (CQRS_ERR_INVALID, the field its name). And the parameters of
 * an accepted body are then taken by every reader the routes run, or
 * refused naming one of the query's parameters. */
#include "fuzz.h"

#include "cqrs/events.h"
#include "cqrs/json.h"
#include "params.h"
#include "routes.h"

#include <inttypes.h>

/* Every parameter any seed query takes, each once: what a queryType no
 * query has is read against. Filled at the first input. */
#define EVERY_MAX 64
static const char *every[EVERY_MAX + 1];

static bool listed(const char *const *names, const char *name);

static void collect_every(void) {
  size_t n = 0;
  for (const cqrs_routes_resource_t *const *r = cqrs_routes_resources; *r; r++)
    for (const cqrs_routes_query_t *q = (*r)->queries; q && q->name; q++)
      for (const char *const *name = q->params; *name; name++)
        if (!listed(every, *name)) {
          FUZZ_CHECK(n < EVERY_MAX, "more than %d parameters: raise EVERY_MAX", EVERY_MAX);
          every[n++] = *name;
        }
  every[n] = NULL;
}

/* The parameters of the seed query called type, or NULL. */
static const char *const *params_of(const char *type) {
  for (const cqrs_routes_resource_t *const *r = cqrs_routes_resources; *r; r++)
    for (const cqrs_routes_query_t *q = (*r)->queries; q && q->name; q++)
      if (strcmp(q->name, type) == 0) return q->params;
  return NULL;
}

static bool listed(const char *const *names, const char *name) {
  for (; *names; names++)
    if (strcmp(*names, name) == 0) return true;
  return false;
}

/* n in decimal, as a query string would write it (no sign for >= 0, no
 * leading zeros), without printf. */
static void decimal(int64_t n, char out[24]) {
  char rev[24];
  size_t k = 0, at = 0;
  uint64_t m = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
  do {
    rev[k++] = (char)('0' + m % 10);
    m /= 10;
  } while (m);
  if (n < 0) out[at++] = '-';
  while (k) out[at++] = rev[--k];
  out[at] = '\0';
}

/* A reader's answer: taken, or refused naming one of the query's parameters. */
static void read_as(bool ok, const cqrs_error_t *err, const char *const *allowed, const char *reader) {
  FUZZ_CHECK(ok || (err->code == CQRS_ERR_INVALID && listed(allowed, err->field)),
             "%s refused the body's parameters naming \"%s\" (code %d): %s", reader, err->field, (int)err->code,
             err->message);
}

static void run_readers(const cqrs_params_t *p, const char *const *allowed) {
  cqrs_error_t err = {0};
  int64_t a, b;
  const char *raw, *s;
  char as_of[32];
  int limit;
  read_as(cqrs_params_wait(p, &a, &b, &err), &err, allowed, "cqrs_params_wait");
  err = (cqrs_error_t){0};
  read_as(cqrs_params_time(p, "asOf", &raw, as_of, &err), &err, allowed, "cqrs_params_time");
  err = (cqrs_error_t){0};
  read_as(cqrs_params_int(p, "atVersion", 1, INT64_MAX, &raw, &a, &err), &err, allowed, "cqrs_params_int");
  err = (cqrs_error_t){0};
  bool ok = cqrs_params_limit(p, &limit, &err);
  read_as(ok, &err, allowed, "cqrs_params_limit");
  if (ok) FUZZ_CHECK(limit >= 1 && limit <= CQRS_PARAMS_LIMIT_MAX, "limit %d", limit);
  err = (cqrs_error_t){0};
  read_as(cqrs_params_cursor(p, &s, &err), &err, allowed, "cqrs_params_cursor");
  if (cqrs_params_get(p, "status")) {
    err = (cqrs_error_t){0};
    read_as(cqrs_params_enum(p, "status", cqrs_order_statuses, &s, &err), &err, allowed, "cqrs_params_enum");
    err = (cqrs_error_t){0};
    read_as(cqrs_params_enum(p, "status", cqrs_customer_statuses, &s, &err), &err, allowed, "cqrs_params_enum");
  }
  for (const char *const *name = allowed; *name; name++) {
    err = (cqrs_error_t){0};
    ok = cqrs_params_string(p, *name, false, 256, &s, &err);
    read_as(ok, &err, allowed, "cqrs_params_string");
    if (ok && s) FUZZ_CHECK(cqrs_json_check_length(s, 256, *name, NULL), "%s longer than 256 characters", *name);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = fuzz_exact(data, size);
  cqrs_error_t err = {0};
  const char *type;
  bson_t *body = cqrs_json_parse(buf, size, &err);
  if (!body || !cqrs_json_get_string(body, CQRS_PARAMS_QUERY_TYPE, NULL, true, CQRS_PARAMS_QUERY_TYPE_MAX, &type,
                                     &err))
    goto done;
  FUZZ_CHECK(*type && cqrs_json_check_length(type, CQRS_PARAMS_QUERY_TYPE_MAX, NULL, NULL), "queryType \"%.80s\"",
             type);
  const char *query = type;
  if (!every[0]) collect_every();
  const char *const *allowed = params_of(type);
  if (!allowed) allowed = every;

  /* What must come of it: the first member that cannot be a parameter. */
  const char *bad = NULL;
  bool seen_type = false;
  bson_iter_t it;
  bson_iter_init(&it, body);
  while (!bad && bson_iter_next(&it)) {
    const char *key = bson_iter_key(&it);
    bson_type_t t = bson_iter_type(&it);
    uint32_t len = 0;
    if (strcmp(key, CQRS_PARAMS_QUERY_TYPE) == 0 && !seen_type) {
      seen_type = true;
    } else if (strcmp(key, CQRS_PARAMS_QUERY_TYPE) == 0 || !listed(allowed, key)) {
      bad = key;
    } else if (t == BSON_TYPE_UTF8) {
      const char *v = bson_iter_utf8(&it, &len);
      if (memchr(v, '\0', len)) bad = key;
    } else if (t != BSON_TYPE_NULL && t != BSON_TYPE_INT32 && t != BSON_TYPE_INT64) {
      bad = key;
    }
  }

  cqrs_params_t *p = cqrs_params_new();
  err = (cqrs_error_t){0};
  bool ok = cqrs_params_body(body, query, allowed, p, &err);
  if (bad) {
    FUZZ_CHECK(!ok, "member \"%.80s\" taken", bad);
    FUZZ_CHECK(err.code == CQRS_ERR_INVALID && strncmp(err.field, bad, sizeof err.field - 1) == 0 &&
                   strlen(err.field) == strnlen(bad, sizeof err.field - 1),
               "member \"%.80s\" refused as %d naming \"%s\"", bad, (int)err.code, err.field);
    FUZZ_CHECK(err.message[0], "member \"%.80s\" refused without a message", bad);
  } else {
    FUZZ_CHECK(ok, "refused naming \"%s\": %s", err.field, err.message);
    /* Each parameter is its member as written. */
    bson_iter_init(&it, body);
    seen_type = false;
    while (bson_iter_next(&it)) {
      const char *key = bson_iter_key(&it), *got = cqrs_params_get(p, key);
      uint32_t len;
      char want[24];
      if (strcmp(key, CQRS_PARAMS_QUERY_TYPE) == 0 && !seen_type) {
        seen_type = true;
        FUZZ_CHECK(!got, "queryType as a parameter: \"%.80s\"", got);
      } else if (BSON_ITER_HOLDS_NULL(&it)) {
        FUZZ_CHECK(!got, "null %s as \"%.80s\"", key, got);
      } else if (BSON_ITER_HOLDS_UTF8(&it)) {
        const char *v = bson_iter_utf8(&it, &len);
        FUZZ_CHECK(got && strlen(got) == len && memcmp(got, v, len) == 0, "%s: \"%.80s\" as \"%.80s\"", key, v,
                   got ? got : "(absent)");
      } else {
        decimal(bson_iter_as_int64(&it), want);
        FUZZ_CHECK(got && strcmp(got, want) == 0, "%s: %s as \"%.80s\"", key, want, got ? got : "(absent)");
      }
    }
    for (const char *const *name = allowed; *name; name++)
      if (cqrs_params_get(p, *name)) {
        bson_iter_t member;
        FUZZ_CHECK(bson_iter_init_find(&member, body, *name), "%s given without a member", *name);
      }
    run_readers(p, allowed);
  }
  cqrs_params_destroy(p);
done:
  if (body) bson_destroy(body);
  free(buf);
  return 0;
}
