/* JSON helpers (cqrs/json.h): parsing and the typed getters, whose errors name
 * the field. */
#include "cqrs/json.h"
#include "unit.h"

static bson_t *doc;
static cqrs_error_t err;

static void cleanup(void) {
  if (doc) bson_destroy(doc);
  doc = NULL;
}

TestSuite(json, .fini = cleanup);

static void load(const char *json) {
  cqrs_error_t e = {0};
  doc = cqrs_json_parse(json, strlen(json), &e);
  cr_assert_not_null(doc, "%s: %s", json, e.message);
}

static void assert_err(const char *field) {
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cr_assert_str_eq(err.field, field);
  cr_assert(strstr(err.message, field) != NULL, "message names the field: %s", err.message);
}

Test(json, parse_object) {
  load("  \n{\"a\": 1, \"b\": \"x\"}");
  cr_assert_eq(u_i64(doc, "a"), 1);
}

Test(json, parse_refuses_non_objects) {
  const char *bad[] = {"", "   ", "[1,2]", "\"str\"", "42", "{\"a\":", "nope", "{'a':1}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cqrs_error_t e = {0};
    bson_t *d = cqrs_json_parse(bad[i], strlen(bad[i]), &e);
    cr_assert_null(d, "accepted \"%s\"", bad[i]);
    cr_assert_eq(e.code, CQRS_ERR_INVALID, "%s", bad[i]);
  }
  cr_assert_null(cqrs_json_parse("[]", 2, NULL), "err may be NULL");
}

Test(json, parse_refuses_duplicate_keys_at_any_depth) {
  static const struct {
    const char *json, *field;
  } cases[] = {
      {"{\"commandType\":\"CreateUser\",\"commandType\":\"SuspendCustomer\"}", "commandType"},
      {"{\"payload\":{\"email\":\"a@b.c\",\"name\":\"x\",\"email\":\"d@e.f\"}}", "payload.email"},
      {"{\"items\":[{\"price\":1,\"price\":2}]}", "items.0.price"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cqrs_error_t e = {0};
    bson_t *d = cqrs_json_parse(cases[i].json, strlen(cases[i].json), &e);
    cr_assert_null(d, "accepted %s", cases[i].json);
    cr_assert_eq(e.code, CQRS_ERR_INVALID);
    cr_assert_str_eq(e.field, cases[i].field);
    cr_assert(strstr(e.message, "duplicate key") && strstr(e.message, cases[i].field), "%s", e.message);
  }
  /* The same key in different objects is fine. */
  load("{\"a\":{\"x\":1},\"b\":{\"x\":2},\"c\":[{\"x\":1},{\"x\":2}]}");
}

Test(json, parse_uses_len) {
  const char buf[] = "{\"a\":1}garbage";
  cqrs_error_t e = {0};
  doc = cqrs_json_parse(buf, 7, &e);
  cr_assert_not_null(doc, "%s", e.message);
}

Test(json, write_plain_numbers) {
  load("{\"i\": 5, \"big\": 5000000000, \"d\": 1.5, \"s\": \"x\", \"n\": null}");
  size_t len = 0;
  char *out = cqrs_json_write(doc, &len);
  cr_assert_eq(len, strlen(out));
  cr_assert(strstr(out, "$numberLong") == NULL, "%s", out);
  cr_assert(strstr(out, "5000000000") != NULL, "%s", out);
  bson_t *back = u_parse(out);
  cr_assert_eq(u_i64(back, "big"), 5000000000LL);
  bson_destroy(back);
  bson_free(out);
}

Test(json, append_string_escapes) {
  bson_string_t *s = bson_string_new("{\"k\":");
  cqrs_json_append_string(s, "a\"b\\c\n\x01 é");
  bson_string_append(s, "}");
  bson_t *back = u_parse(s->str);
  cr_assert_str_eq(u_str(back, "k"), "a\"b\\c\n\x01 é");
  bson_destroy(back);
  bson_string_free(s, true);
}

/* Bytes that are not UTF-8 (a raw Kafka key in a log line) never make the
 * output invalid JSON: each bad byte becomes U+FFFD; good sequences stay. */
Test(json, append_string_replaces_bytes_that_are_not_utf8) {
  static const struct {
    const char *in, *want;
  } cases[] = {
      {"a\xff" "b", "\"a\\ufffdb\""},                 /* a byte that never starts a sequence */
      {"\xc3", "\"\\ufffd\""},                      /* a sequence cut short at the end */
      {"\xc3(x", "\"\\ufffd(x\""},                  /* a lead byte without its continuation */
      {"\xc0\xaf", "\"\\ufffd\\ufffd\""},          /* an overlong '/' */
      {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""}, /* a UTF-16 surrogate */
      {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""}, /* past U+10FFFF */
      {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""}, /* e-acute, euro, emoji */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bson_string_t *s = bson_string_new(NULL);
    cqrs_json_append_string(s, cases[i].in);
    cr_assert_str_eq(s->str, cases[i].want, "case %zu", i);
    bson_string_free(s, true);
  }
}

Test(json, string_ok_and_borrowed) {
  load("{\"name\": \"Ann\"}");
  const char *s = NULL;
  cr_assert(cqrs_json_get_string(doc, "name", NULL, true, 10, &s, &err));
  cr_assert_str_eq(s, "Ann");
}

Test(json, string_wrong_type) {
  load("{\"name\": 5}");
  const char *s = "sentinel";
  cr_assert_not(cqrs_json_get_string(doc, "name", NULL, false, 0, &s, &err));
  assert_err("name");
}

Test(json, string_field_name_overrides_key) {
  load("{\"name\": 5}");
  const char *s;
  cr_assert_not(cqrs_json_get_string(doc, "name", "changes.name", true, 0, &s, &err));
  assert_err("changes.name");
}

Test(json, string_missing_required) {
  load("{}");
  const char *s = "sentinel";
  cr_assert_not(cqrs_json_get_string(doc, "email", NULL, true, 0, &s, &err));
  assert_err("email");
}

Test(json, string_missing_optional) {
  load("{}");
  const char *s = "sentinel";
  cr_assert(cqrs_json_get_string(doc, "email", NULL, false, 0, &s, &err));
  cr_assert_null(s);
}

Test(json, string_null_is_absent) {
  load("{\"email\": null}");
  const char *s = "sentinel";
  cr_assert(cqrs_json_get_string(doc, "email", NULL, false, 0, &s, &err));
  cr_assert_null(s);
  cr_assert_not(cqrs_json_get_string(doc, "email", NULL, true, 0, &s, &err));
  assert_err("email");
}

Test(json, string_empty) {
  load("{\"name\": \"\"}");
  const char *s;
  cr_assert_not(cqrs_json_get_string(doc, "name", NULL, true, 0, &s, &err), "empty while required");
  assert_err("name");
  cr_assert(cqrs_json_get_string(doc, "name", NULL, false, 0, &s, &err), "empty is fine when optional");
  cr_assert_str_eq(s, "");
}

Test(json, string_too_long_counts_characters) {
  /* "ééé": 3 characters, 6 bytes */
  load("{\"name\": \"\xc3\xa9\xc3\xa9\xc3\xa9\"}");
  const char *s;
  cr_assert(cqrs_json_get_string(doc, "name", NULL, true, 3, &s, &err), "3 characters fit in 3: %s",
            err.message);
  cr_assert_not(cqrs_json_get_string(doc, "name", NULL, true, 2, &s, &err));
  assert_err("name");
}

Test(json, string_too_long_ascii) {
  load("{\"id\": \"abcdef\"}");
  const char *s;
  cr_assert(cqrs_json_get_string(doc, "id", NULL, true, 6, &s, &err));
  cr_assert_not(cqrs_json_get_string(doc, "id", NULL, true, 5, &s, &err));
  assert_err("id");
  cr_assert(cqrs_json_get_string(doc, "id", NULL, true, 0, &s, &err), "0: no limit");
}

Test(json, string_with_nul_refused) {
  load("{\"name\": \"a\\u0000b\"}");
  const char *s;
  cr_assert_not(cqrs_json_get_string(doc, "name", NULL, true, 0, &s, &err));
  assert_err("name");
}

Test(json, int64_values) {
  load("{\"i\": 7, \"big\": 9007199254740000, \"neg\": -3, \"whole\": 2.0}");
  int64_t v = 0;
  bool present = false;
  cr_assert(cqrs_json_get_int64(doc, "i", NULL, true, &v, &present, &err));
  cr_assert(present);
  cr_assert_eq(v, 7);
  cr_assert(cqrs_json_get_int64(doc, "big", NULL, true, &v, &present, &err));
  cr_assert_eq(v, 9007199254740000LL);
  cr_assert(cqrs_json_get_int64(doc, "neg", NULL, true, &v, &present, &err));
  cr_assert_eq(v, -3);
  cr_assert(cqrs_json_get_int64(doc, "whole", NULL, true, &v, &present, &err));
  cr_assert_eq(v, 2);
}

Test(json, int64_wrong_type) {
  load("{\"a\": 1.5, \"b\": \"1\", \"c\": true, \"d\": {}}");
  const char *keys[] = {"a", "b", "c", "d"};
  for (size_t i = 0; i < 4; i++) {
    int64_t v;
    bool present = true;
    cr_assert_not(cqrs_json_get_int64(doc, keys[i], NULL, false, &v, &present, &err), "%s", keys[i]);
    assert_err(keys[i]);
    cr_assert_not(present);
  }
}

Test(json, int64_absent_and_null) {
  load("{\"n\": null}");
  int64_t v;
  bool present = true;
  cr_assert(cqrs_json_get_int64(doc, "n", NULL, false, &v, &present, &err));
  cr_assert_not(present);
  cr_assert(cqrs_json_get_int64(doc, "x", NULL, false, &v, &present, &err));
  cr_assert_not(present);
  cr_assert_not(cqrs_json_get_int64(doc, "n", "version", true, &v, &present, &err));
  assert_err("version");
}

Test(json, number_values_and_errors) {
  load("{\"d\": 1.25, \"i\": 3, \"s\": \"1\"}");
  double v = 0;
  bool present;
  cr_assert(cqrs_json_get_number(doc, "d", NULL, true, &v, &present, &err));
  cr_assert_float_eq(v, 1.25, 1e-12);
  cr_assert(cqrs_json_get_number(doc, "i", NULL, true, &v, &present, &err));
  cr_assert_float_eq(v, 3.0, 1e-12);
  cr_assert_not(cqrs_json_get_number(doc, "s", "price", true, &v, &present, &err));
  assert_err("price");
  cr_assert_not(cqrs_json_get_number(doc, "missing", NULL, true, &v, &present, &err));
  assert_err("missing");
}

Test(json, object_and_array) {
  load("{\"o\": {\"k\": 1}, \"a\": [1, 2], \"n\": null}");
  bson_t sub;
  bool present = false;
  cr_assert(cqrs_json_get_object(doc, "o", NULL, true, &sub, &present, &err));
  cr_assert(present);
  cr_assert_eq(u_i64(&sub, "k"), 1);
  cr_assert(cqrs_json_get_array(doc, "a", NULL, true, &sub, &present, &err));
  cr_assert_eq(u_count(&sub), 2);
  cr_assert_not(cqrs_json_get_object(doc, "a", NULL, true, &sub, &present, &err), "an array is no object");
  assert_err("a");
  cr_assert_not(cqrs_json_get_array(doc, "o", "items", true, &sub, &present, &err));
  assert_err("items");
  cr_assert(cqrs_json_get_object(doc, "n", NULL, false, &sub, &present, &err), "null is absent");
  cr_assert_not(present);
  cr_assert_not(cqrs_json_get_object(doc, "n", "changes", true, &sub, &present, &err));
  assert_err("changes");
}

Test(json, null_err_is_fine) {
  load("{\"a\": 1}");
  const char *s;
  cr_assert_not(cqrs_json_get_string(doc, "a", NULL, true, 0, &s, NULL));
}

Test(json, write_is_compact_and_escapes_what_json_requires) {
  bson_t *doc = BCON_NEW("s", BCON_UTF8("q\"b\\n\nt\tc\x01 é"), "i", BCON_INT32(-5), "l", BCON_INT64(12345678901),
                         "b", BCON_BOOL(true), "z", BCON_NULL, "a", "[", BCON_INT32(1), "{", "k", BCON_UTF8("v"), "}",
                         "]");
  size_t len;
  char *json = cqrs_json_write(doc, &len);
  cr_expect_str_eq(json, "{\"s\":\"q\\\"b\\\\n\\nt\\tc\\u0001 é\",\"i\":-5,\"l\":12345678901,\"b\":true,\"z\":null,"
                         "\"a\":[1,{\"k\":\"v\"}]}");
  cr_expect_eq(len, strlen(json));
  bson_t *back = cqrs_json_parse(json, len, NULL);
  cr_assert_not_null(back);
  cr_expect(bson_equal(doc, back), "round trip changed the document");
  bson_destroy(back);
  bson_free(json);
  bson_destroy(doc);
}

Test(json, write_keeps_doubles_doubles) {
  bson_t *doc = BCON_NEW("whole", BCON_DOUBLE(21.0), "half", BCON_DOUBLE(0.5), "tiny", BCON_DOUBLE(0.1));
  char *json = cqrs_json_write(doc, NULL);
  cr_expect_str_eq(json, "{\"whole\":21.0,\"half\":0.5,\"tiny\":0.1}");
  bson_t *back = cqrs_json_parse(json, strlen(json), NULL);
  bson_iter_t it;
  cr_assert(bson_iter_init_find(&it, back, "whole") && BSON_ITER_HOLDS_DOUBLE(&it), "21.0 came back as another type");
  bson_destroy(back);
  bson_free(json);
  bson_destroy(doc);
}

Test(json, write_hands_other_types_to_libbson) {
  bson_t *doc = BCON_NEW("at", BCON_DATE_TIME(0));
  char *json = cqrs_json_write(doc, NULL);
  cr_expect(strstr(json, "$date") != NULL, "%s", json);
  bson_free(json);
  bson_destroy(doc);
}

Test(json, members_known_names_the_first_unknown_member) {
  static const char *const known[] = {"tenantId", NULL};
  doc = cqrs_json_parse("{\"tenantId\":\"a\"}", 16, &err);
  cr_assert_not_null(doc);
  cr_expect(cqrs_json_members_known(doc, known, &err));
  bson_destroy(doc);
  const char *extra = "{\"tenantId\":\"a\",\"extra\":1}";
  doc = cqrs_json_parse(extra, strlen(extra), &err);
  cr_assert_not_null(doc);
  cr_expect_not(cqrs_json_members_known(doc, known, &err));
  cr_expect_eq(err.code, CQRS_ERR_INVALID);
  cr_expect_str_eq(err.field, "extra");
  cr_expect(strstr(err.message, "unknown member") != NULL, "%s", err.message);
}

/* JSON has no 64-bit limit: an integer beyond it is read as a double (libbson
 * alone refuses the whole body), and a string that looks like one is kept. */
Test(json, an_integer_beyond_64_bits_is_a_double) {
  load("{\"big\":18355755529361487526,\"neg\":-92260450843253879597909869654955695736,\"ok\":9223372036854775807,"
       "\"s\":\"18355755529361487526 \\\" 99999999999999999999\",\"arr\":[1, 99999999999999999999, 2.5e10]}");
  bson_iter_t it;
  cr_assert(bson_iter_init_find(&it, doc, "big") && BSON_ITER_HOLDS_DOUBLE(&it));
  cr_assert_float_eq(bson_iter_double(&it), 18355755529361487526.0, 1e4);
  cr_assert(bson_iter_init_find(&it, doc, "neg") && BSON_ITER_HOLDS_DOUBLE(&it) && bson_iter_double(&it) < -9e37);
  cr_assert(bson_iter_init_find(&it, doc, "ok") && BSON_ITER_HOLDS_INT64(&it), "int64 range stays an integer");
  cr_assert_str_eq(u_str(doc, "s"), "18355755529361487526 \" 99999999999999999999", "strings are untouched");
  cr_assert(bson_iter_init_find(&it, doc, "arr"));
}
