/* Opaque list cursors (query-svc/cursor.c) as clients send them back, forged
 * or not.
 *
 * Input: the cursor text. It is decoded for each list query-svc pages
 * (list name and sort field as the routes use them). Property: a cursor
 * that decodes re-encodes to one that decodes to the same (value, _id). */
#include "fuzz.h"

#include "cursor.h"

static const char *const LISTS[][2] = {
    {"GetOrdersByUser", "createdAt"},
    {"GetActiveCustomers", "registrationDate"},
    {"SearchCustomersByEmail", "email"},
};

static bool equal(const bson_value_t *a, const bson_value_t *b) {
  bson_t da = BSON_INITIALIZER, db = BSON_INITIALIZER;
  BSON_APPEND_VALUE(&da, "v", a);
  BSON_APPEND_VALUE(&db, "v", b);
  bool eq = bson_equal(&da, &db);
  bson_destroy(&da);
  bson_destroy(&db);
  return eq;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = fuzz_text(data, size);
  for (size_t i = 0; i < sizeof LISTS / sizeof LISTS[0]; i++) {
    bson_value_t v, id;
    if (!cqrs_cursor_decode(text, LISTS[i][0], LISTS[i][1], &v, &id, NULL)) continue;
    char *again = cqrs_cursor_encode(LISTS[i][0], LISTS[i][1], &v, &id);
    if (again) {
      bson_value_t v2, id2;
      cqrs_error_t err = {0};
      FUZZ_CHECK(cqrs_cursor_decode(again, LISTS[i][0], LISTS[i][1], &v2, &id2, &err),
                 "a re-encoded cursor does not decode: %s", err.message);
      FUZZ_CHECK(equal(&v, &v2) && equal(&id, &id2), "a cursor changed through encode");
      bson_value_destroy(&v2);
      bson_value_destroy(&id2);
      bson_free(again);
    }
    bson_value_destroy(&v);
    bson_value_destroy(&id);
  }
  free(text);
  return 0;
}
