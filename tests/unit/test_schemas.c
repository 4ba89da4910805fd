/* The schema registry's store (cqrs/schemas.h): canonical text and ids,
 * records applied first-wins, levels, and checks against chosen versions. */
#include "cqrs/schemas.h"
#include "unit.h"

#define A "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"}},\"additionalProperties\":false}"
#define B                                                                                                      \
  "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"n\":{\"type\":\"integer\"}},"             \
  "\"required\":[\"n\"],\"additionalProperties\":false}"

static char *canonical(const char *json) {
  cqrs_error_t err = {0};
  char *c = cqrs_schema_canonical(json, strlen(json), NULL, &err);
  cr_assert_not_null(c, "%s: %s", json, err.message);
  return c;
}

/* Applies the record of schema as subject's version; returns whether it took effect. */
static bool put_version(cqrs_schemas_t *s, const char *subject, int version, const char *schema) {
  char *c = canonical(schema);
  int32_t id = cqrs_schema_id(c);
  size_t len;
  char *key = cqrs_schemas_version_key(subject, version, id), *value = cqrs_schemas_version_json(subject, version, id,
                                                                                                 c, &len);
  bool applied = false;
  cqrs_error_t err = {0};
  cr_assert(cqrs_schemas_apply(s, key, strlen(key), value, len, &applied, &err), "%s", err.message);
  free(key);
  free(value);
  bson_free(c);
  return applied;
}

Test(schemas, canonical_text_and_ids_are_stable) {
  char *a = canonical(A), *spaced = canonical("{ \"type\" : \"object\",\n \"properties\": {\"id\": {\"type\": "
                                              "\"string\"}}, \"additionalProperties\": false }");
  cr_assert_str_eq(a, spaced, "whitespace does not make a schema new");
  cr_assert_eq(cqrs_schema_id(a), cqrs_schema_id(spaced));
  char *b = canonical(B);
  cr_assert_neq(cqrs_schema_id(a), cqrs_schema_id(b));
  cr_assert_gt(cqrs_schema_id(a), 0);
  bson_free(a);
  bson_free(spaced);
  bson_free(b);
  cqrs_error_t err = {0};
  cr_assert_null(cqrs_schema_canonical("{\"type\":\"nope\"}", 15, NULL, &err));
  cr_assert_null(cqrs_schema_canonical("{\"a\":1,\"a\":2}", 13, NULL, &err), "duplicate keys are refused");
}

Test(schemas, subject_names) {
  cr_assert(cqrs_schema_subject_valid("OrderCreated"));
  cr_assert(cqrs_schema_subject_valid("orders-value"));
  cr_assert_not(cqrs_schema_subject_valid(""));
  cr_assert_not(cqrs_schema_subject_valid("a/b"));
  cr_assert_not(cqrs_schema_subject_valid("a b"));
  cr_assert_not(cqrs_schema_subject_valid(NULL));
  char longer[CQRS_SUBJECT_MAX + 2];
  memset(longer, 'x', sizeof longer - 1);
  longer[sizeof longer - 1] = '\0';
  cr_assert_not(cqrs_schema_subject_valid(longer));
}

Test(schemas, first_record_for_a_version_wins) {
  cqrs_schemas_t *s = cqrs_schemas_new();
  cr_assert(put_version(s, "S", 1, A));
  /* Another schema racing for version 1 loses; the same schema again changes nothing. */
  cr_assert_not(put_version(s, "S", 1, B));
  cr_assert_not(put_version(s, "S", 1, A));
  /* A version that skips one, or a schema the subject already has, is ignored. */
  cr_assert_not(put_version(s, "S", 3, B));
  cr_assert_not(put_version(s, "S", 2, A));
  cr_assert(put_version(s, "S", 2, B));
  cr_assert_eq(cqrs_schemas_latest(s, "S"), 2);
  cqrs_schema_version_t v = {0};
  cr_assert(cqrs_schemas_get(s, "S", 1, &v));
  char *a = canonical(A);
  cr_assert_str_eq(v.schema, a);
  cr_assert_eq(v.id, cqrs_schema_id(a));
  cqrs_schema_version_cleanup(&v);
  cr_assert(cqrs_schemas_get(s, "S", 0, &v), "0: the latest");
  cr_assert_eq(v.version, 2);
  cqrs_schema_version_cleanup(&v);
  cr_assert_not(cqrs_schemas_get(s, "S", 3, &v));
  cr_assert_not(cqrs_schemas_get(s, "T", 1, &v));
  cr_assert(cqrs_schemas_find(s, "S", a, &v));
  cr_assert_eq(v.version, 1);
  cqrs_schema_version_cleanup(&v);
  char *by_id = NULL;
  cr_assert(cqrs_schemas_by_id(s, cqrs_schema_id(a), &by_id));
  cr_assert_str_eq(by_id, a);
  free(by_id);
  cr_assert_not(cqrs_schemas_id_taken(s, cqrs_schema_id(a), a));
  cr_assert(cqrs_schemas_id_taken(s, cqrs_schema_id(a), "{}"));
  /* The same schema under another subject keeps its id. */
  cr_assert(put_version(s, "R", 1, A));
  size_t n;
  char **names = cqrs_schemas_subjects(s, &n);
  cr_assert_eq(n, 2);
  cr_assert_str_eq(names[0], "R");
  cr_assert_str_eq(names[1], "S");
  cqrs_schemas_strings_free(names, n);
  bson_free(a);
  cqrs_schemas_destroy(s);
}

Test(schemas, records_that_do_not_parse_are_refused) {
  cqrs_schemas_t *s = cqrs_schemas_new();
  char *c = canonical(A);
  size_t len;
  char *wrong_id = cqrs_schemas_version_json("S", 1, cqrs_schema_id(c) ^ 1, c, &len);
  static const char *const values[] = {"not json", "{\"subject\":\"S\"}",
                                       "{\"subject\":\"S\",\"version\":1,\"id\":5,\"schemaType\":\"AVRO\",\"schema\":\"{}\"}",
                                       "{\"subject\":\"S\",\"version\":1,\"id\":1,\"schemaType\":\"JSON\",\"schema\":\"{ }\"}"};
  cqrs_error_t err = {0};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
    cr_assert_not(cqrs_schemas_apply(s, "schema/S/1/5", 12, values[i], strlen(values[i]), NULL, &err), "%s",
                  values[i]);
  cr_assert_not(cqrs_schemas_apply(s, "schema/S/1/5", 12, wrong_id, len, NULL, &err), "an id not its own");
  cr_assert_not(cqrs_schemas_apply(s, "other", 5, "{}", 2, NULL, &err));
  cr_assert_not(cqrs_schemas_apply(s, "config", 6, "{\"compatibilityLevel\":\"SIDEWAYS\"}", 33, NULL, &err));
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cr_assert_eq(cqrs_schemas_latest(s, "S"), 0);
  free(wrong_id);
  bson_free(c);
  cqrs_schemas_destroy(s);
}

Test(schemas, levels_global_and_per_subject) {
  cqrs_schemas_t *s = cqrs_schemas_new();
  cqrs_compat_level_t level;
  cr_assert(cqrs_schemas_level(s, NULL, &level));
  cr_assert_eq(level, CQRS_COMPAT_BACKWARD_TRANSITIVE, "the default");
  cr_assert_not(cqrs_schemas_level(s, "S", &level));
  size_t len;
  char *key = cqrs_schemas_config_key("S"), *value = cqrs_schemas_config_json(CQRS_COMPAT_FULL, &len);
  cqrs_error_t err = {0};
  cr_assert(cqrs_schemas_apply(s, key, strlen(key), value, len, NULL, &err), "%s", err.message);
  cr_assert(cqrs_schemas_level(s, "S", &level));
  cr_assert_eq(level, CQRS_COMPAT_FULL);
  cr_assert_eq(cqrs_schemas_effective_level(s, "S"), CQRS_COMPAT_FULL);
  cr_assert_eq(cqrs_schemas_effective_level(s, "T"), CQRS_COMPAT_BACKWARD_TRANSITIVE);
  size_t n;
  char **names = cqrs_schemas_subjects(s, &n);
  cr_assert_eq(n, 0, "a level alone does not list a subject");
  cqrs_schemas_strings_free(names, n);
  /* A tombstone unsets it. */
  cr_assert(cqrs_schemas_apply(s, key, strlen(key), NULL, 0, NULL, &err));
  cr_assert_not(cqrs_schemas_level(s, "S", &level));
  free(key);
  free(value);
  key = cqrs_schemas_config_key(NULL);
  value = cqrs_schemas_config_json(CQRS_COMPAT_NONE, &len);
  cr_assert(cqrs_schemas_apply(s, key, strlen(key), value, len, NULL, &err));
  cr_assert_eq(cqrs_schemas_effective_level(s, "T"), CQRS_COMPAT_NONE);
  free(key);
  free(value);
  cqrs_schemas_destroy(s);
}

Test(schemas, checks_against_the_level_or_one_version) {
  cqrs_schemas_t *s = cqrs_schemas_new();
  cr_assert(put_version(s, "S", 1, A));
  cr_assert(put_version(s, "S", 2, B));
  cqrs_error_t err = {0};
  cqrs_jsonschema_t *cand = cqrs_jsonschema_compile(B, strlen(B), &err);
  cqrs_compat_messages_t m = {0};
  cr_assert(cqrs_schemas_check(s, "S", cand, CQRS_COMPAT_BACKWARD, 0, &m), "B reads B");
  cr_assert_not(cqrs_schemas_check(s, "S", cand, CQRS_COMPAT_BACKWARD_TRANSITIVE, 0, &m));
  cr_assert_not(cqrs_schemas_check(s, "S", cand, CQRS_COMPAT_BACKWARD, 1, &m), "against version 1 alone");
  cr_assert_not_null(strstr(m.items[m.n - 1], "version 1"), "%s", m.items[m.n - 1]);
  cr_assert(cqrs_schemas_check(s, "none", cand, CQRS_COMPAT_FULL_TRANSITIVE, 0, &m), "no versions: compatible");
  cqrs_compat_messages_cleanup(&m);
  cqrs_jsonschema_destroy(cand);
  cqrs_schemas_destroy(s);
}
