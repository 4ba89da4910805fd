/* JSON Schema (cqrs/jsonschema.h): compile refusals, validation with the
 * first failing path, and the compatibility levels incl. the transitive ones. */
#include "cqrs/jsonschema.h"
#include "unit.h"

static cqrs_jsonschema_t *compile(const char *json) {
  cqrs_error_t err = {0};
  cqrs_jsonschema_t *s = cqrs_jsonschema_compile(json, strlen(json), &err);
  cr_assert_not_null(s, "%s does not compile: %s", json, err.message);
  return s;
}

/* Validates doc against schema; returns whether it did, err filled. */
static bool validate(const char *schema, const char *doc, cqrs_error_t *err) {
  cqrs_jsonschema_t *s = compile(schema);
  bson_t *d = u_parse(doc);
  cqrs_error_clear(err);
  bool ok = cqrs_jsonschema_validate(s, d, err);
  bson_destroy(d);
  cqrs_jsonschema_destroy(s);
  return ok;
}

static const char *order =
    "{\"type\":\"object\",\"properties\":{"
    "\"orderId\":{\"type\":[\"string\",\"null\"]},"
    "\"status\":{\"type\":\"string\",\"enum\":[\"Pending\",\"Shipped\"]},"
    "\"note\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":4},"
    "\"at\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"mail\":{\"type\":\"string\",\"format\":\"email\"},"
    "\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
    "\"product\":{\"type\":\"string\"},\"quantity\":{\"type\":\"integer\"},\"price\":{\"type\":\"number\"}},"
    "\"required\":[\"product\",\"quantity\"],\"additionalProperties\":false}}},"
    "\"required\":[\"items\"],\"additionalProperties\":false}";

Test(jsonschema, valid_documents_pass) {
  cqrs_error_t err;
  const char *good[] = {
      "{\"items\":[]}",
      "{\"orderId\":null,\"items\":[{\"product\":\"Pen\",\"quantity\":3,\"price\":1}]}",
      "{\"orderId\":\"o-1\",\"status\":\"Shipped\",\"items\":[{\"product\":\"Pen\",\"quantity\":3.0,\"price\":1.5}]}",
      "{\"note\":\"\xc3\xa9t\xc3\xa9\",\"items\":[]}", /* 3 characters, 5 bytes */
      "{\"at\":\"2026-12-02T03:00:00.000Z\",\"mail\":\"a@b.c\",\"items\":[]}",
      "{\"at\":\"2026-12-02T03:00:00+01:00\",\"items\":[]}",
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    cr_assert(validate(order, good[i], &err), "%s: %s", good[i], err.message);
}

Test(jsonschema, the_first_failing_path_is_named) {
  static const struct {
    const char *doc, *field, *says;
  } bad[] = {
      {"{}", "items", "is required"},
      {"{\"items\":[{\"product\":\"Pen\",\"quantity\":1},{\"product\":\"Ink\",\"quantity\":\"2\"}]}",
       "items[1].quantity", "must be integer, not string"},
      {"{\"items\":[{\"product\":\"Pen\",\"quantity\":1.5}]}", "items[0].quantity", "must be integer, not number"},
      {"{\"items\":[{\"quantity\":1}]}", "items[0].product", "is required"},
      {"{\"items\":[{\"product\":\"Pen\",\"quantity\":1,\"colour\":\"red\"}]}", "items[0].colour", "not allowed"},
      {"{\"items\":[],\"extra\":1}", "extra", "not allowed"},
      {"{\"items\":{}}", "items", "must be array, not object"},
      {"{\"orderId\":7,\"items\":[]}", "orderId", "must be null or string, not integer"},
      {"{\"status\":\"Lost\",\"items\":[]}", "status", "enum"},
      {"{\"note\":\"x\",\"items\":[]}", "note", "at least 2 characters"},
      {"{\"note\":\"xxxxx\",\"items\":[]}", "note", "at most 4 characters"},
      {"{\"at\":\"yesterday\",\"items\":[]}", "at", "date-time"},
      {"{\"mail\":\"a b@c\",\"items\":[]}", "mail", "email"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cqrs_error_t err;
    cr_assert_not(validate(order, bad[i].doc, &err), "%s validated", bad[i].doc);
    cr_assert_eq(err.code, CQRS_ERR_INVALID);
    cr_assert_str_eq(err.field, bad[i].field, "%s: field %s, not %s", bad[i].doc, err.field, bad[i].field);
    cr_assert_not_null(strstr(err.message, bad[i].says), "%s: %s", bad[i].doc, err.message);
    cr_assert_not_null(strstr(err.message, bad[i].field), "the message names the path: %s", err.message);
  }
}

Test(jsonschema, boolean_and_open_schemas) {
  cqrs_error_t err;
  cr_assert(validate("true", "{\"anything\":[1,{}]}", &err));
  cr_assert_not(validate("false", "{}", &err));
  cr_assert(validate("{\"properties\":{\"a\":{\"type\":\"string\"}}}", "{\"a\":\"x\",\"b\":1}", &err));
  cr_assert(validate("{\"additionalProperties\":{\"type\":\"integer\"}}", "{\"a\":1,\"b\":2}", &err));
  cr_assert_not(validate("{\"additionalProperties\":{\"type\":\"integer\"}}", "{\"a\":1,\"b\":\"2\"}", &err));
  cr_assert_str_eq(err.field, "b");
  cr_assert_not(validate("{\"type\":\"array\"}", "{}", &err));
  cr_assert_str_eq(err.field, "");
}

Test(jsonschema, compile_refuses_what_it_cannot_enforce) {
  static const struct {
    const char *schema, *says;
  } bad[] = {
      {"{\"type\":\"text\"}", "unknown type 'text'"},
      {"{\"type\":[]}", "at least one type"},
      {"{\"type\":5}", "type must be"},
      {"{\"properties\":{\"a\":{\"oneOf\":[]}}}", "properties.a.oneOf: keyword 'oneOf' is not supported"},
      {"{\"$ref\":\"#/x\"}", "'$ref' is not supported"},
      {"{\"required\":\"a\"}", "required must be an array"},
      {"{\"items\":[{}]}", "tuples"},
      {"{\"minLength\":-1}", "non-negative"},
      {"{\"properties\":{\"a\":3}}", "properties.a: a schema must be"},
      {"[1]", "JSON object"},
      {"not json", ""},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cqrs_error_t err = {0};
    cqrs_jsonschema_t *s = cqrs_jsonschema_compile(bad[i].schema, strlen(bad[i].schema), &err);
    cr_assert_null(s, "%s compiled", bad[i].schema);
    cr_assert_eq(err.code, CQRS_ERR_INVALID);
    cr_assert_not_null(strstr(err.message, bad[i].says), "%s: %s", bad[i].schema, err.message);
  }
  /* Annotations and unknown keywords are ignored. */
  cqrs_jsonschema_destroy(compile("{\"$schema\":\"x\",\"title\":\"t\",\"default\":1,\"x-vendor\":{}}"));
}

Test(jsonschema, deep_nesting_is_refused_not_recursed) {
  char buf[4096] = "";
  for (int i = 0; i < 80; i++) strcat(buf, "{\"items\":");
  strcat(buf, "true");
  for (int i = 0; i < 80; i++) strcat(buf, "}");
  cqrs_error_t err = {0};
  cr_assert_null(cqrs_jsonschema_compile(buf, strlen(buf), &err));
  cr_assert_not_null(strstr(err.message, "deeper"), "%s", err.message);
}

/* ---- compatibility ---- */

#define V1                                                                                                     \
  "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"amount\":{\"type\":\"integer\"}},"       \
  "\"required\":[\"id\"],\"additionalProperties\":false}"
/* v1 + optional note */
#define V2                                                                                                     \
  "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"amount\":{\"type\":\"integer\"},"        \
  "\"note\":{\"type\":\"string\"}},\"required\":[\"id\"],\"additionalProperties\":false}"
/* v2 with note required */
#define V3_REQUIRES_NOTE                                                                                       \
  "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"amount\":{\"type\":\"integer\"},"        \
  "\"note\":{\"type\":\"string\"}},\"required\":[\"id\",\"note\"],\"additionalProperties\":false}"

typedef struct {
  cqrs_jsonschema_t *s[4];
  cqrs_compat_version_t prev[4];
  size_t n;
} history_t;

static void history_add(history_t *h, const char *json) {
  h->s[h->n] = compile(json);
  h->prev[h->n] = (cqrs_compat_version_t){.schema = h->s[h->n], .version = (int)h->n + 1};
  h->n++;
}

static void history_free(history_t *h) {
  for (size_t i = 0; i < h->n; i++) cqrs_jsonschema_destroy(h->s[i]);
}

static bool check(cqrs_compat_level_t level, const char *candidate, history_t *h, cqrs_compat_messages_t *m) {
  cqrs_jsonschema_t *c = compile(candidate);
  cqrs_compat_messages_cleanup(m);
  bool ok = cqrs_compat_check(level, c, h->prev, h->n, m);
  cqrs_jsonschema_destroy(c);
  return ok;
}

static bool has_message(const cqrs_compat_messages_t *m, const char *text) {
  for (size_t i = 0; i < m->n; i++)
    if (strstr(m->items[i], text)) return true;
  return false;
}

static void dump(const cqrs_compat_messages_t *m, char *out, size_t size) {
  out[0] = '\0';
  for (size_t i = 0; i < m->n; i++) {
    strncat(out, m->items[i], size - strlen(out) - 2);
    strncat(out, "|", size - strlen(out) - 1);
  }
}

Test(compat, adding_an_optional_field_to_a_closed_schema_is_backward_not_forward) {
  history_t h = {0};
  cqrs_compat_messages_t m = {0};
  char all[2048];
  history_add(&h, V1);
  cr_assert(check(CQRS_COMPAT_BACKWARD, V2, &h, &m));
  cr_assert_eq(m.n, 0);
  cr_assert_not(check(CQRS_COMPAT_FORWARD, V2, &h, &m));
  dump(&m, all, sizeof all);
  cr_assert(has_message(&m, "FORWARD: field 'note' is written by the new schema but not allowed by version 1"), "%s",
            all);
  cr_assert_not(check(CQRS_COMPAT_FULL, V2, &h, &m));
  cr_assert(check(CQRS_COMPAT_NONE, V2, &h, &m));
  cqrs_compat_messages_cleanup(&m);
  history_free(&h);
}

Test(compat, a_new_required_field_breaks_backward_and_names_field_and_version) {
  history_t h = {0};
  cqrs_compat_messages_t m = {0};
  char all[2048];
  history_add(&h, V1);
  cr_assert_not(check(CQRS_COMPAT_BACKWARD, V3_REQUIRES_NOTE, &h, &m));
  dump(&m, all, sizeof all);
  cr_assert(has_message(&m, "BACKWARD: field 'note' is required by the new schema but absent from version 1"), "%s",
            all);
  cqrs_compat_messages_cleanup(&m);
  history_free(&h);
}

Test(compat, transitive_checks_every_version_not_only_the_latest) {
  /* v1 has no note; v2 requires it (as if registered under NONE); the
   * candidate requires it too: it reads v2's data but not v1's. */
  history_t h = {0};
  cqrs_compat_messages_t m = {0};
  char all[2048];
  history_add(&h, V1);
  history_add(&h, V3_REQUIRES_NOTE);
  /* Compatible with the latest (version 2)... */
  cr_assert(check(CQRS_COMPAT_BACKWARD, V3_REQUIRES_NOTE, &h, &m));
  cr_assert(check(CQRS_COMPAT_FULL, V3_REQUIRES_NOTE, &h, &m));
  /* ...not with version 1: refused under the transitive levels only. */
  cr_assert_not(check(CQRS_COMPAT_BACKWARD_TRANSITIVE, V3_REQUIRES_NOTE, &h, &m));
  dump(&m, all, sizeof all);
  cr_assert(has_message(&m, "BACKWARD_TRANSITIVE: field 'note' is required by the new schema but absent from "
                            "version 1"),
            "%s", all);
  cr_assert_not(has_message(&m, "version 2"), "%s", all);
  cr_assert_not(check(CQRS_COMPAT_FULL_TRANSITIVE, V3_REQUIRES_NOTE, &h, &m));
  /* FORWARD_TRANSITIVE: version 1 (closed) cannot read a note. */
  cr_assert_not(check(CQRS_COMPAT_FORWARD_TRANSITIVE, V3_REQUIRES_NOTE, &h, &m));
  cr_assert(check(CQRS_COMPAT_FORWARD, V3_REQUIRES_NOTE, &h, &m));
  cqrs_compat_messages_cleanup(&m);
  history_free(&h);
}

Test(compat, type_changes_widen_or_narrow) {
  history_t h = {0};
  cqrs_compat_messages_t m = {0};
  char all[2048];
  history_add(&h, V1);
  const char *widened = "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"amount\":{\"type\":"
                        "\"number\"}},\"required\":[\"id\"],\"additionalProperties\":false}";
  cr_assert(check(CQRS_COMPAT_BACKWARD, widened, &h, &m));
  cr_assert_not(check(CQRS_COMPAT_FORWARD, widened, &h, &m));
  dump(&m, all, sizeof all);
  cr_assert(has_message(&m, "FORWARD: field 'amount' may be number in the new schema but is integer in version 1"),
            "%s", all);
  const char *nullable = "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":[\"string\",\"null\"]},\"amount\":"
                         "{\"type\":\"integer\"}},\"required\":[\"id\"],\"additionalProperties\":false}";
  cr_assert(check(CQRS_COMPAT_BACKWARD, nullable, &h, &m));
  cr_assert_not(check(CQRS_COMPAT_FORWARD, nullable, &h, &m));
  cqrs_compat_messages_cleanup(&m);
  history_free(&h);
}

Test(compat, removing_a_field_and_open_content) {
  history_t h = {0};
  cqrs_compat_messages_t m = {0};
  char all[2048];
  history_add(&h, V2);
  /* v2 without note, closed: old data with a note is refused. */
  cr_assert_not(check(CQRS_COMPAT_BACKWARD, V1, &h, &m));
  dump(&m, all, sizeof all);
  cr_assert(has_message(&m, "field 'note' is written by version 1 but not allowed by the new schema"), "%s", all);
  /* An open writer may hold anything in a field the reader adds. */
  history_t open = {0};
  history_add(&open, "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"}}}");
  cr_assert_not(check(CQRS_COMPAT_BACKWARD, "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},"
                                            "\"n\":{\"type\":\"integer\"}}}",
                      &open, &m));
  dump(&m, all, sizeof all);
  cr_assert(has_message(&m, "field 'n' is new in the new schema"), "%s", all);
  /* Closing an open schema breaks backward. */
  cr_assert_not(check(CQRS_COMPAT_BACKWARD,
                      "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"}},\"additionalProperties\":false}",
                      &open, &m));
  cqrs_compat_messages_cleanup(&m);
  history_free(&h);
  history_free(&open);
}

Test(compat, nested_items_enum_and_lengths) {
  history_t h = {0};
  cqrs_compat_messages_t m = {0};
  char all[2048];
  history_add(&h, "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
                  "\"properties\":{\"q\":{\"type\":\"integer\"},\"s\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]}}}}},"
                  "\"additionalProperties\":false}");
  cr_assert_not(check(CQRS_COMPAT_BACKWARD,
                      "{\"type\":\"object\",\"properties\":{\"items\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
                      "\"properties\":{\"q\":{\"type\":\"string\"},\"s\":{\"type\":\"string\",\"enum\":[\"a\"],"
                      "\"maxLength\":3}}}}},\"additionalProperties\":false}",
                      &h, &m));
  dump(&m, all, sizeof all);
  cr_assert(has_message(&m, "field 'items[].q' may be integer in version 1 but is string in the new schema"), "%s",
            all);
  cr_assert(has_message(&m, "field 'items[].s' has a value in the enum of version 1"), "%s", all);
  cr_assert(has_message(&m, "field 'items[].s' must be at most 3 characters"), "%s", all);
  cqrs_compat_messages_cleanup(&m);
  history_free(&h);
}

Test(compat, level_names) {
  cqrs_compat_level_t l;
  cr_assert(cqrs_compat_level_parse("FULL_TRANSITIVE", &l));
  cr_assert_eq(l, CQRS_COMPAT_FULL_TRANSITIVE);
  cr_assert_str_eq(cqrs_compat_level_name(CQRS_COMPAT_BACKWARD_TRANSITIVE), "BACKWARD_TRANSITIVE");
  cr_assert_not(cqrs_compat_level_parse("backward", &l));
  cr_assert_not(cqrs_compat_level_parse(NULL, &l));
}
