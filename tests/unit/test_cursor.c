/* List cursors (query-svc/cursor.h): they round-trip, and anything else —
 * garbage, altered text, a cursor of another list or sort field — is refused
 * with an error naming "cursor". */
#include "cursor.h"
#include "unit.h"

static bson_value_t got_v, got_id;
static char *text;
static cqrs_error_t err;

static void cleanup(void) {
  bson_value_destroy(&got_v);
  bson_value_destroy(&got_id);
  memset(&got_v, 0, sizeof got_v);
  memset(&got_id, 0, sizeof got_id);
  bson_free(text);
  text = NULL;
}

TestSuite(cursor, .fini = cleanup);

static bson_value_t str(const char *s) {
  bson_value_t v = {.value_type = BSON_TYPE_UTF8};
  v.value.v_utf8.str = (char *)s;
  v.value.v_utf8.len = (uint32_t)strlen(s);
  return v;
}

static void encode(const char *list, const char *field, bson_value_t v, bson_value_t id) {
  text = cqrs_cursor_encode(list, field, &v, &id);
  cr_assert_not_null(text);
}

static void assert_refused(const char *cursor, const char *list, const char *field) {
  bson_value_t v, id;
  memset(&err, 0, sizeof err);
  cr_assert_not(cqrs_cursor_decode(cursor, list, field, &v, &id, &err), "accepted %s", cursor);
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cr_assert_str_eq(err.field, "cursor");
  cr_assert_eq(v.value_type, 0, "value left zeroed");
  cr_assert_eq(id.value_type, 0, "id left zeroed");
}

Test(cursor, round_trips_a_string_position) {
  encode("GetOrdersByUser", "createdAt", str("2024-01-02T03:04:05Z"), str("order-7"));
  for (const char *c = text; *c; c++)
    cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *c),
              "base64url only: %s", text);
  cr_assert(cqrs_cursor_decode(text, "GetOrdersByUser", "createdAt", &got_v, &got_id, &err), "%s",
            err.message);
  cr_assert_eq(got_v.value_type, BSON_TYPE_UTF8);
  cr_assert_str_eq(got_v.value.v_utf8.str, "2024-01-02T03:04:05Z");
  cr_assert_eq(got_id.value_type, BSON_TYPE_UTF8);
  cr_assert_str_eq(got_id.value.v_utf8.str, "order-7");
}

Test(cursor, keeps_the_bson_type_of_values) {
  bson_value_t v = {.value_type = BSON_TYPE_INT64, .value.v_int64 = 5000000000LL};
  bson_value_t id = {.value_type = BSON_TYPE_DATE_TIME, .value.v_datetime = 1700000000123LL};
  encode("L", "n", v, id);
  cr_assert(cqrs_cursor_decode(text, "L", "n", &got_v, &got_id, &err), "%s", err.message);
  cr_assert_eq(got_v.value_type, BSON_TYPE_INT64);
  cr_assert_eq(got_v.value.v_int64, 5000000000LL);
  cr_assert_eq(got_id.value_type, BSON_TYPE_DATE_TIME);
  cr_assert_eq(got_id.value.v_datetime, 1700000000123LL);
}

Test(cursor, carries_null_and_unicode) {
  bson_value_t null = {.value_type = BSON_TYPE_NULL};
  encode("L", "email", null, str("ü\"\\/\xf4\x8f\xbf\xbf"));
  cr_assert(cqrs_cursor_decode(text, "L", "email", &got_v, &got_id, &err), "%s", err.message);
  cr_assert_eq(got_v.value_type, BSON_TYPE_NULL);
  cr_assert_str_eq(got_id.value.v_utf8.str, "ü\"\\/\xf4\x8f\xbf\xbf");
}

Test(cursor, cannot_carry_a_document) {
  bson_t sub = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&sub, "$gt", "");
  bson_value_t v = {.value_type = BSON_TYPE_DOCUMENT};
  v.value.v_doc.data = (uint8_t *)bson_get_data(&sub);
  v.value.v_doc.data_len = sub.len;
  bson_value_t id = str("x");
  cr_assert_null(cqrs_cursor_encode("L", "f", &v, &id));
  bson_destroy(&sub);
}

Test(cursor, refuses_a_cursor_of_another_sort_field) {
  encode("GetActiveCustomers", "registrationDate", str("2024"), str("c1"));
  assert_refused(text, "GetActiveCustomers", "email");
}

Test(cursor, refuses_a_cursor_of_another_list) {
  encode("GetOrdersByUser", "createdAt", str("2024"), str("o1"));
  assert_refused(text, "GetOrdersByStatus", "createdAt");
}

Test(cursor, refuses_garbage) {
  assert_refused("", "L", "f");
  assert_refused("not a cursor!", "L", "f");
  assert_refused("eyJ", "L", "f");           /* "{"": cut short */
  assert_refused("eyJsIjoiTCJ9", "L", "f");  /* {"l":"L"}: fields missing */
  assert_refused("W10", "L", "f");           /* [] */
  assert_refused("aGVsbG8", "L", "f");       /* hello */
  assert_refused("eyJsIjoiTCJ9==", "L", "f"); /* padding is not base64url */
  char big[CQRS_CURSOR_MAX_LEN + 2];
  memset(big, 'A', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  assert_refused(big, "L", "f");
}

/* Base64url of s, to forge cursors the way a client could. */
static char *b64(const char *s) {
  static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t n = strlen(s), o = 0;
  char *out = bson_malloc(4 * (n / 3 + 1) + 1);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    acc = acc << 8 | (uint8_t)s[i];
    bits += 8;
    while (bits >= 6) out[o++] = A[acc >> (bits -= 6) & 63];
  }
  if (bits) out[o++] = A[acc << (6 - bits) & 63];
  out[o] = '\0';
  return out;
}

static void assert_forged_refused(const char *json) {
  char *t = b64(json);
  assert_refused(t, "L", "f");
  bson_free(t);
}

Test(cursor, refuses_altered_cursors) {
  encode("L", "f", str("2024-01-01"), str("id-1"));
  /* Every single-character change either breaks the text or the JSON, or still
   * decodes to a valid position of this list: two strings (the JSON kept its
   * shape, so only the characters inside them can have changed), another
   * position than the original; none crashes or leaks. */
  size_t refused = 0;
  for (size_t i = 0; text[i]; i++) {
    char saved = text[i];
    text[i] = saved == 'A' ? '*' : 'A';
    bson_value_t v, id;
    cqrs_error_t e = {0};
    if (cqrs_cursor_decode(text, "L", "f", &v, &id, &e)) {
      cr_assert_eq(v.value_type, BSON_TYPE_UTF8, "change at %zu: the value is of type %d", i, v.value_type);
      cr_assert_eq(id.value_type, BSON_TYPE_UTF8, "change at %zu: the id is of type %d", i, id.value_type);
      /* another text is another position: no slack in the encoding */
      cr_assert(strcmp(v.value.v_utf8.str, "2024-01-01") != 0 || strcmp(id.value.v_utf8.str, "id-1") != 0,
                "change at %zu decodes to the original position", i);
      bson_value_destroy(&v);
      bson_value_destroy(&id);
    } else {
      refused++;
      cr_assert_eq(e.code, CQRS_ERR_INVALID);
      cr_assert_str_eq(e.field, "cursor");
      cr_assert_eq(v.value_type, 0, "change at %zu: a refused decode left a value", i);
    }
    text[i] = saved;
  }
  cr_assert_gt(refused, 0, "no single-character change was refused");
  cr_assert(cqrs_cursor_decode(text, "L", "f", &got_v, &got_id, &err), "restored cursor decodes");
  /* Truncated or extended text is refused. */
  char *cut = bson_strndup(text, strlen(text) - 3);
  assert_refused(cut, "L", "f");
  bson_free(cut);
  char *longer = bson_strdup_printf("%sA", text);
  assert_refused(longer, "L", "f");
  bson_free(longer);
}

Test(cursor, refuses_forged_operators_and_extra_members) {
  assert_forged_refused("{\"l\":\"L\",\"f\":\"f\",\"v\":{\"$gt\":\"\"},\"i\":\"x\"}");
  assert_forged_refused("{\"l\":\"L\",\"f\":\"f\",\"v\":\"a\",\"i\":{\"$ne\":null}}");
  assert_forged_refused("{\"l\":\"L\",\"f\":\"f\",\"v\":[1],\"i\":\"x\"}");
  assert_forged_refused("{\"l\":\"L\",\"f\":\"f\",\"v\":\"a\",\"i\":\"x\",\"x\":1}");
  assert_forged_refused("{\"l\":\"L\",\"f\":\"f\",\"v\":\"a\",\"v\":\"b\",\"i\":\"x\"}");
  assert_forged_refused("{\"l\":\"L\",\"f\":\"f\",\"v\":{\"$regularExpression\":{\"pattern\":\".\",\"options\":\"\"}},\"i\":\"x\"}");
  assert_forged_refused("{\"l\":1,\"f\":\"f\",\"v\":\"a\",\"i\":\"x\"}");
  /* The same shape with plain values is a valid, if forged, position. */
  char *t = b64("{\"l\":\"L\",\"f\":\"f\",\"v\":\"a\",\"i\":\"x\"}");
  cr_assert(cqrs_cursor_decode(t, "L", "f", &got_v, &got_id, &err), "%s", err.message);
  bson_free(t);
}
