/* Query parameters (query-svc/params.h): limit, cursor, required strings and
 * alternatives, each error naming the parameter. */
#include "params.h"
#include "unit.h"

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
