/* Query parameters (query-svc/params.h): limit, cursor, required strings and
 * alternatives, read-your-writes' pair, a POST /v1/query body's members, each
 * error naming the parameter. */
#include "params.h"
#include "unit.h"

#include "cqrs/json.h"

static cqrs_params_t *p;
static cqrs_error_t err;

static void setup(void) {
  p = cqrs_params_new();
  memset(&err, 0, sizeof err);
}
static void cleanup(void) { cqrs_params_destroy(p); }

TestSuite(query_params, .init = setup, .fini = cleanup);

static void add(const char *name, const char *value) {
  cr_assert(cqrs_params_add(p, name, value, &err), "%s", err.message);
}

static void assert_err(const char *field) {
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cr_assert_str_eq(err.field, field);
  cr_assert(strstr(err.message, field) != NULL, "message names %s: %s", field, err.message);
  memset(&err, 0, sizeof err);
}

static void assert_limit_refused(const char *v) {
  cqrs_params_t *q = cqrs_params_new();
  int limit = -1;
  cr_assert(cqrs_params_add(q, "limit", v, NULL));
  cr_assert_not(cqrs_params_limit(q, &limit, &err), "limit=%s accepted", v);
  assert_err("limit");
  cqrs_params_destroy(q);
}

static int limit_of(const char *v) {
  cqrs_params_t *q = cqrs_params_new();
  int limit = -1;
  cr_assert(cqrs_params_add(q, "limit", v, NULL));
  cr_assert(cqrs_params_limit(q, &limit, &err), "limit=%s: %s", v, err.message);
  cqrs_params_destroy(q);
  return limit;
}

Test(query_params, limit_defaults_to_50) {
  int limit = -1;
  cr_assert(cqrs_params_limit(p, &limit, &err));
  cr_assert_eq(limit, 50);
}

Test(query_params, limit_takes_1_to_500) {
  cr_assert_eq(limit_of("1"), 1);
  cr_assert_eq(limit_of("3"), 3);
  cr_assert_eq(limit_of("500"), 500);
}

Test(query_params, limit_outside_1_to_500_is_refused) {
  assert_limit_refused("0");
  assert_limit_refused("501");
  assert_limit_refused("1000000000000000000000");
  assert_limit_refused("-1");
}

Test(query_params, limit_that_is_not_a_number_is_refused) {
  assert_limit_refused("");
  assert_limit_refused("ten");
  assert_limit_refused("5abc");
  assert_limit_refused(" 5");
  assert_limit_refused("+5");
  assert_limit_refused("2.5");
  assert_limit_refused("1e2");
}

Test(query_params, required_string_missing_or_empty_is_refused) {
  const char *v = "unset";
  cr_assert_not(cqrs_params_string(p, "userId", true, 10, &v, &err));
  cr_assert_null(v);
  assert_err("userId");
  add("userId", "");
  cr_assert_not(cqrs_params_string(p, "userId", true, 10, &v, &err));
  assert_err("userId");
}

Test(query_params, optional_string_may_be_absent) {
  const char *v = "unset";
  cr_assert(cqrs_params_string(p, "userId", false, 10, &v, &err));
  cr_assert_null(v);
}

Test(query_params, string_length_counts_characters) {
  const char *v;
  add("a", "0123456789");
  add("b", "ééééééééé\xf4\x8f\xbf\xbf"); /* 10 characters, 22 bytes */
  add("c", "01234567890");
  cr_assert(cqrs_params_string(p, "a", true, 10, &v, &err));
  cr_assert_str_eq(v, "0123456789");
  cr_assert(cqrs_params_string(p, "b", true, 10, &v, &err), "%s", err.message);
  cr_assert_not(cqrs_params_string(p, "c", true, 10, &v, &err));
  assert_err("c");
  cr_assert(cqrs_params_string(p, "c", true, 0, &v, &err), "0 means no limit");
}

Test(query_params, string_that_is_not_utf8_is_refused) {
  const char *v;
  add("email", "a\xff@example.com");
  cr_assert_not(cqrs_params_string(p, "email", true, 0, &v, &err));
  assert_err("email");
}

Test(query_params, duplicate_parameter_is_refused) {
  add("userId", "u1");
  cr_assert_not(cqrs_params_add(p, "userId", "u2", &err));
  assert_err("userId");
  cr_assert_str_eq(cqrs_params_get(p, "userId"), "u1");
}

Test(query_params, cursor_is_optional_but_not_empty_or_huge) {
  const char *c = "unset";
  cr_assert(cqrs_params_cursor(p, &c, &err));
  cr_assert_null(c);
  add("cursor", "");
  cr_assert_not(cqrs_params_cursor(p, &c, &err));
  assert_err("cursor");

  cqrs_params_t *q = cqrs_params_new();
  char big[2000];
  memset(big, 'A', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  cqrs_params_add(q, "cursor", big, NULL);
  cr_assert_not(cqrs_params_cursor(q, &c, &err));
  assert_err("cursor");
  cqrs_params_destroy(q);
}

Test(query_params, exactly_one_of_two) {
  const char *which;
  cr_assert_not(cqrs_params_one_of(p, "userId", "status", &which, &err));
  assert_err("userId");
  add("status", "Created");
  cr_assert(cqrs_params_one_of(p, "userId", "status", &which, &err));
  cr_assert_str_eq(which, "status");
  add("userId", "u1");
  cr_assert_not(cqrs_params_one_of(p, "userId", "status", &which, &err));
  assert_err("status");
}

Test(query_params, enum_takes_only_listed_values) {
  static const char *const statuses[] = {"Created", "Shipped", NULL};
  const char *v;
  cr_assert_not(cqrs_params_enum(p, "status", statuses, &v, &err));
  assert_err("status");
  add("status", "Shipped");
  cr_assert(cqrs_params_enum(p, "status", statuses, &v, &err));
  cr_assert_str_eq(v, "Shipped");

  cqrs_params_t *q = cqrs_params_new();
  cqrs_params_add(q, "status", "shipped", NULL);
  cr_assert_not(cqrs_params_enum(q, "status", statuses, &v, &err));
  cr_assert(strstr(err.message, "Created, Shipped"), "lists the values: %s", err.message);
  assert_err("status");
  cqrs_params_destroy(q);
}

/* Times come as any RFC 3339 and leave in the events' own form. */
static void assert_time(const char *given, const char *want) {
  cqrs_params_t *q = cqrs_params_new();
  cqrs_params_add(q, "asOf", given, NULL);
  char out[32];
  const char *raw;
  cqrs_error_t e = {0};
  cr_assert(cqrs_params_time(q, "asOf", &raw, out, &e), "%s: %s", given, e.message);
  cr_assert_str_eq(raw, given);
  cr_assert_str_eq(out, want, "%s", given);
  cqrs_params_destroy(q);
}

static void assert_time_refused(const char *given) {
  cqrs_params_t *q = cqrs_params_new();
  cqrs_params_add(q, "from", given, NULL);
  char out[32];
  const char *raw;
  cr_assert_not(cqrs_params_time(q, "from", &raw, out, &err), "%s was taken", given);
  assert_err("from");
  cqrs_params_destroy(q);
}

Test(query_params, times_are_normalised_to_utc_milliseconds) {
  assert_time("2026-03-01T10:00:00Z", "2026-03-01T10:00:00.000Z");
  assert_time("2026-03-01T10:00:00.123Z", "2026-03-01T10:00:00.123Z");
  assert_time("2026-03-01T10:00:00.1234567Z", "2026-03-01T10:00:00.123Z");
  assert_time("2026-03-01T10:00:00.5z", "2026-03-01T10:00:00.500Z");
  assert_time("2026-03-01t11:30:00+01:30", "2026-03-01T10:00:00.000Z");
  assert_time("2026-03-01T11:30:00 01:30", "2026-03-01T10:00:00.000Z"); /* '+' unescaped in a URL */
  assert_time("2026-02-28T23:00:00-02:00", "2026-03-01T01:00:00.000Z");
  assert_time("2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z");
  assert_time("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z");
}

Test(query_params, an_absent_time_is_no_bound) {
  char out[32] = "x";
  const char *raw = "x";
  cr_assert(cqrs_params_time(p, "to", &raw, out, &err));
  cr_assert_null(raw);
  cr_assert_str_eq(out, "");
}

Test(query_params, what_is_not_an_rfc3339_time_is_refused) {
  static const char *const bad[] = {"",
                                    "yesterday",
                                    "2026-03-01",
                                    "2026-03-01T10:00:00",
                                    "2026-03-01T10:00Z",
                                    "2026-13-01T10:00:00Z",
                                    "2026-02-30T10:00:00Z",
                                    "2025-02-29T10:00:00Z",
                                    "2026-03-01T24:00:00Z",
                                    "2026-03-01T10:00:00.Z",
                                    "2026-03-01T10:00:00+0100",
                                    "2026-03-01T10:00:00Zjunk",
                                    "1969-12-31T23:59:59Z",
                                    NULL};
  for (const char *const *b = bad; *b; b++) assert_time_refused(*b);
}

Test(query_params, integers_within_bounds) {
  add("atVersion", "7");
  int64_t v;
  const char *raw;
  cr_assert(cqrs_params_int(p, "atVersion", 1, 100, &raw, &v, &err));
  cr_assert_eq(v, 7);
  cr_assert(cqrs_params_int(p, "other", 1, 100, &raw, &v, &err));
  cr_assert_null(raw);
  static const char *const bad[] = {"0", "101", "-1", "1.5", "x", "", "99999999999999999999", NULL};
  for (const char *const *b = bad; *b; b++) {
    cqrs_params_t *q = cqrs_params_new();
    cqrs_params_add(q, "atVersion", *b, NULL);
    cr_assert_not(cqrs_params_int(q, "atVersion", 1, 100, &raw, &v, &err), "%s was taken", *b);
    assert_err("atVersion");
    cqrs_params_destroy(q);
  }
}

Test(query_params, wait_pair_absent_is_zero) {
  int64_t mv = -1, ms = -1;
  cr_assert(cqrs_params_wait(p, &mv, &ms, &err), "%s", err.message);
  cr_assert(mv == 0 && ms == 0);
  mv = ms = -1;
  cr_assert(cqrs_params_wait(NULL, &mv, &ms, &err), "no parameters at all");
  cr_assert(mv == 0 && ms == 0);
}

Test(query_params, wait_pair_read_within_bounds) {
  add("minVersion", "9223372036854775807");
  add("waitMs", "10000");
  int64_t mv, ms;
  cr_assert(cqrs_params_wait(p, &mv, &ms, &err), "%s", err.message);
  cr_assert_eq(mv, INT64_MAX);
  cr_assert_eq(ms, CQRS_PARAMS_WAIT_MS_MAX);
}

Test(query_params, wait_pair_refusals_name_the_parameter) {
  static const struct {
    const char *name, *value;
  } bad[] = {{"minVersion", "-1"},     {"minVersion", "9223372036854775808"}, {"minVersion", ""},
             {"minVersion", "1x"},     {"waitMs", "10001"},                   {"waitMs", "-5"},
             {"waitMs", "0.5"},        {"waitMs", "99999999999999999999"},    {"waitMs", " "}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cqrs_params_t *q = cqrs_params_new();
    cr_assert(cqrs_params_add(q, bad[i].name, bad[i].value, NULL));
    int64_t mv, ms;
    cr_assert_not(cqrs_params_wait(q, &mv, &ms, &err), "%s=%s was taken", bad[i].name, bad[i].value);
    cr_assert(strstr(err.message, "must be an integer in [0, ") != NULL, "%s", err.message);
    assert_err(bad[i].name);
    cqrs_params_destroy(q);
  }
}

/* POST /v1/query bodies (cqrs_params_body): the members as the parameters a
 * query string would bring. */
static const char *const BODY_ALLOWED[] = {"orderId", "minVersion", "waitMs", "asOf", "atVersion", NULL};

static bool body_of(const char *json) {
  cqrs_error_t perr = {0};
  bson_t *doc = cqrs_json_parse(json, strlen(json), &perr);
  cr_assert(doc, "%s: %s", json, perr.message);
  bool ok = cqrs_params_body(doc, "GetOrder", BODY_ALLOWED, p, &err);
  bson_destroy(doc);
  return ok;
}

Test(query_params, body_members_become_parameters) {
  cr_assert(body_of("{\"queryType\":\"GetOrder\",\"orderId\":\"o1\",\"minVersion\":3,\"waitMs\":300,\"asOf\":null}"),
            "%s", err.message);
  cr_assert_str_eq(cqrs_params_get(p, "orderId"), "o1");
  cr_assert_str_eq(cqrs_params_get(p, "minVersion"), "3");
  cr_assert_str_eq(cqrs_params_get(p, "waitMs"), "300");
  cr_assert_null(cqrs_params_get(p, "asOf"), "null is absent");
  cr_assert_null(cqrs_params_get(p, "queryType"), "queryType is no parameter");
  int64_t mv, ms;
  cr_assert(cqrs_params_wait(p, &mv, &ms, &err), "%s", err.message);
  cr_assert(mv == 3 && ms == 300);
}

Test(query_params, body_integers_in_decimal_strings_as_they_are) {
  cr_assert(body_of("{\"orderId\":\"a b/%20\\u00e9\",\"queryType\":\"GetOrder\",\"minVersion\":9223372036854775807,"
                    "\"waitMs\":-5,\"atVersion\":\"07\"}"),
            "%s", err.message);
  cr_assert_str_eq(cqrs_params_get(p, "orderId"), "a b/%20\xc3\xa9", "no decoding beyond JSON's");
  cr_assert_str_eq(cqrs_params_get(p, "minVersion"), "9223372036854775807");
  cr_assert_str_eq(cqrs_params_get(p, "atVersion"), "07", "a string stays as written");
  int64_t mv, ms;
  cr_assert_not(cqrs_params_wait(p, &mv, &ms, &err), "waitMs -5 taken");
  cr_assert_str_eq(err.field, "waitMs", "the readers refuse it as from a query string");
}

Test(query_params, body_refusals_name_the_member) {
  static const struct {
    const char *json, *field, *says;
  } bad[] = {
      {"{\"queryType\":\"GetOrder\",\"email\":\"x\"}", "email", "GetOrder takes no parameter \"email\""},
      {"{\"queryType\":\"GetOrder\",\"waitMs\":1.5}", "waitMs", "must be a string or an integer"},
      {"{\"queryType\":\"GetOrder\",\"waitMs\":1e3}", "waitMs", "must be a string or an integer"},
      {"{\"queryType\":\"GetOrder\",\"orderId\":true}", "orderId", "must be a string or an integer"},
      {"{\"queryType\":\"GetOrder\",\"orderId\":[\"o1\"]}", "orderId", "must be a string or an integer"},
      {"{\"queryType\":\"GetOrder\",\"orderId\":{\"id\":\"o1\"}}", "orderId", "must be a string or an integer"},
      {"{\"queryType\":\"GetOrder\",\"orderId\":\"o\\u00001\"}", "orderId", "must not contain NUL characters"},
      {"{\"queryType\":\"GetOrder\",\"\":\"o1\"}", "", "takes no parameter \"\""},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cqrs_params_destroy(p);
    p = cqrs_params_new();
    memset(&err, 0, sizeof err);
    cr_assert_not(body_of(bad[i].json), "%s was taken", bad[i].json);
    cr_expect_eq(err.code, CQRS_ERR_INVALID, "%s", bad[i].json);
    cr_expect_str_eq(err.field, bad[i].field, "%s", bad[i].json);
    cr_expect(strstr(err.message, bad[i].says) != NULL, "%s: %s", bad[i].json, err.message);
  }
}

/* Keys twice never come from cqrs_json_parse (it refuses them), but the
 * function refuses them too. */
Test(query_params, body_with_a_member_twice_is_refused) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "queryType", "GetOrder");
  BSON_APPEND_UTF8(&doc, "orderId", "o1");
  BSON_APPEND_UTF8(&doc, "orderId", "o2");
  cr_assert_not(cqrs_params_body(&doc, "GetOrder", BODY_ALLOWED, p, &err));
  assert_err("orderId");
  cr_assert_str_eq(cqrs_params_get(p, "orderId"), "o1", "the first is kept");
  cqrs_params_destroy(p);
  p = cqrs_params_new();
  BSON_APPEND_UTF8(&doc, "queryType", "GetOrder");
  cr_assert_not(cqrs_params_body(&doc, "GetOrder", BODY_ALLOWED, p, &err));
  cr_assert_str_eq(err.field, "orderId", "the first duplicate first");
  bson_destroy(&doc);
  bson_t twice = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&twice, "queryType", "GetOrder");
  BSON_APPEND_UTF8(&twice, "queryType", "GetOrder");
  cqrs_params_destroy(p);
  p = cqrs_params_new();
  cr_assert_not(cqrs_params_body(&twice, "GetOrder", BODY_ALLOWED, p, &err));
  assert_err("queryType");
  bson_destroy(&twice);
}
