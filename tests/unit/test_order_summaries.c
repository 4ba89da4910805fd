/* The order_summaries read model (projector-svc/projection.h): the conditional
 * write each order event becomes. */

#define HARNESS_PROJECTION cqrs_order_summaries_projection
#define HARNESS_AGGREGATE_TYPE "order"
#define HARNESS_AGGREGATE_ID "o-1"
#include "projection_harness.h"

TestSuite(order_summaries, .fini = harness_teardown);

/* OrderCreated v1, as written before currencies, and v2. */
#define CREATED_V1                                                                                               \
  "{\"orderId\":\"o-1\",\"userId\":\"u-7\",\"items\":[{\"product\":\"pen\",\"quantity\":3,\"price\":1.5},"     \
  "{\"product\":\"ink\",\"quantity\":1,\"price\":4}],\"totalAmount\":8.5,\"createdAt\":\"2026-03-01T10:00:00.000Z\"}"
#define CREATED_IN(currency)                                                                                     \
  "{\"orderId\":\"o-1\",\"userId\":\"u-7\",\"items\":[{\"product\":\"pen\",\"quantity\":3,\"price\":1.5},"     \
  "{\"product\":\"ink\",\"quantity\":1,\"price\":4}],\"totalAmount\":8.5,\"currency\":\"" currency "\","          \
  "\"createdAt\":\"2026-03-01T10:00:00.000Z\"}"
#define CREATED CREATED_IN("EUR")

/* The array at path, borrowed from doc; fails the test when it is not one. */
static void sub_array(const bson_t *doc, const char *path, bson_t *out) {
  bson_iter_t it, child;
  const uint8_t *data;
  uint32_t len;
  cr_assert(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, path, &child), "%s is absent", path);
  cr_assert(BSON_ITER_HOLDS_ARRAY(&child), "%s is not an array", path);
  bson_iter_array(&child, &len, &data);
  cr_assert(bson_init_static(out, data, len));
}

Test(order_summaries, registered) {
  cr_assert_str_eq(p->name, "order_summaries");
  cr_assert_str_eq(p->aggregate_type, "order");
  cr_assert_eq(cqrs_projection_find("order_summaries"), p);
  bool found = false;
  for (size_t i = 0; cqrs_projections[i]; i++) found |= cqrs_projections[i] == p;
  cr_assert(found);
}

Test(order_summaries, order_created_upserts_once) {
  event("OrderCreated", 1, CREATED);
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_not(skip);
  cr_assert(w.upsert);
  cr_assert_eq(u_count(&w.filter), 1, "filter is {_id}");
  cr_assert_str_eq(u_str(&w.filter, "_id"), "o-1");
  cr_assert_eq(u_count(&w.update), 1, "only $setOnInsert: a redelivery changes nothing");
  cr_assert(u_has(&w.update, "$setOnInsert"));
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.orderId"), "o-1");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.userId"), "u-7");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.status"), "Created");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.currency"), "EUR");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.createdAt"), "2026-03-01T10:00:00.000Z");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.updatedAt"), "2026-03-01T10:00:00.000Z");
  cr_assert_eq(u_i64(&w.update, "$setOnInsert.version"), 1);

  bson_iter_t it, child;
  cr_assert(bson_iter_init(&it, &w.update) && bson_iter_find_descendant(&it, "$setOnInsert.totalAmount", &child));
  cr_assert(BSON_ITER_HOLDS_DOUBLE(&child));
  cr_assert_float_eq(bson_iter_double(&child), 8.5, 1e-9);

  bson_t got, want;
  sub_array(&w.update, "$setOnInsert.items", &got);
  sub_array(ev.data, "items", &want);
  cr_assert(bson_equal(&got, &want), "items are copied as they are");
  cr_assert_eq(u_count(&got), 2);
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.items.1.product"), "ink");

  bson_t set;
  bson_iter_init_find(&it, &w.update, "$setOnInsert");
  const uint8_t *data;
  uint32_t len;
  bson_iter_document(&it, &len, &data);
  bson_init_static(&set, data, len);
  cr_assert_eq(u_count(&set), 12,
               "orderId userId items totalAmount currency status createdAt updatedAt version customerId processBy "
               "cancellationReason");
  cr_assert(u_is_null(&set, "customerId") && u_is_null(&set, "processBy") && u_is_null(&set, "cancellationReason"),
            "an order without them says null");
}

/* An OrderCreated v1 (before currencies) is read as its v2 upcast: the same
 * write, currency USD included. */
Test(order_summaries, a_v1_order_and_its_v2_upcast_give_the_same_document) {
  event_at_schema("OrderCreated", 1, 1, CREATED_V1);
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_not(skip);
  cqrs_write_t from_v1; /* a bson_t is not to be copied by value */
  bson_copy_to(&w.filter, &from_v1.filter);
  bson_copy_to(&w.update, &from_v1.update);
  from_v1.upsert = w.upsert;
  harness_teardown();
  event("OrderCreated", 1, CREATED_IN("USD"));
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_str_eq(u_str(&from_v1.update, "$setOnInsert.currency"), "USD");
  cr_assert(bson_equal(&from_v1.filter, &w.filter));
  char *a = bson_as_relaxed_extended_json(&from_v1.update, NULL), *b = bson_as_relaxed_extended_json(&w.update, NULL);
  cr_assert_str_eq(a, b, "v1 and v2 give one document");
  cr_assert_eq(from_v1.upsert, w.upsert);
  bson_free(a);
  bson_free(b);
  cqrs_write_cleanup(&from_v1);
}

/* Without ce_schemaversion (0 in code) an event is version 1. */
Test(order_summaries, an_event_without_a_schema_version_is_v1) {
  event_at_schema("OrderCreated", 1, 0, CREATED_V1);
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.currency"), "USD");
}

Test(order_summaries, a_v2_order_without_currency_is_poison) {
  assert_poison("OrderCreated", CREATED_V1, "currency");
}

Test(order_summaries, order_created_integer_total_is_a_double) {
  event("OrderCreated", 1, "{\"userId\":\"u-7\",\"items\":[],\"totalAmount\":60,\"currency\":\"USD\",\"createdAt\":\"t\"}");
  bool skip;
  cr_assert(apply(&skip, NULL));
  bson_iter_t it, child;
  cr_assert(bson_iter_init(&it, &w.update) && bson_iter_find_descendant(&it, "$setOnInsert.totalAmount", &child));
  cr_assert(BSON_ITER_HOLDS_DOUBLE(&child));
  cr_assert_float_eq(bson_iter_double(&child), 60.0, 1e-9);
}

Test(order_summaries, order_status_updated_guarded_by_version) {
  event("OrderStatusUpdated", 4, "{\"orderId\":\"o-1\",\"status\":\"Shipped\",\"previousStatus\":\"Processing\","
                                 "\"updatedAt\":\"2026-03-02T00:00:00.000Z\"}");
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_not(skip);
  cr_assert_not(w.upsert, "an update never creates the document");
  cr_assert_eq(u_count(&w.filter), 2);
  cr_assert_str_eq(u_str(&w.filter, "_id"), "o-1");
  cr_assert_eq(u_i64(&w.filter, "version.$lt"), 4);
  cr_assert_eq(u_count(&w.update), 1, "only $set");
  cr_assert_str_eq(u_str(&w.update, "$set.status"), "Shipped");
  cr_assert_str_eq(u_str(&w.update, "$set.updatedAt"), "2026-03-02T00:00:00.000Z");
  cr_assert_eq(u_i64(&w.update, "$set.version"), 4);
  cr_assert_not(u_has(&w.update, "$set.previousStatus"));
  cr_assert_not(u_has(&w.update, "$set.createdAt"));
  cr_assert_not(u_has(&w.update, "$setOnInsert"));
}

Test(order_summaries, version_guard_is_an_int64_lt) {
  event("OrderStatusUpdated", 5000000000LL, "{\"status\":\"Cancelled\",\"updatedAt\":\"t\"}");
  bool skip;
  cr_assert(apply(&skip, NULL));
  bson_iter_t it, child;
  cr_assert(bson_iter_init(&it, &w.filter) && bson_iter_find_descendant(&it, "version.$lt", &child));
  cr_assert(BSON_ITER_HOLDS_INT64(&child));
  cr_assert_eq(bson_iter_int64(&child), 5000000000LL);
  cr_assert(bson_iter_init(&it, &w.update) && bson_iter_find_descendant(&it, "$set.version", &child));
  cr_assert(BSON_ITER_HOLDS_INT64(&child));
}

/* Of its aggregate, an event type or a version the contract does not know is
 * poison (dead-lettered with the type and version), never skipped. */
Test(order_summaries, unknown_type_or_version_is_poison) {
  assert_unknown_is_poison("OrderRefunded", 1, "{\"orderId\":\"o-1\"}");
  assert_unknown_is_poison("OrderCreated", 3, CREATED);
  assert_unknown_is_poison("OrderStatusUpdated", 2, "{\"status\":\"Shipped\",\"updatedAt\":\"t\"}");
}

Test(order_summaries, malformed_order_created) {
  assert_poison("OrderCreated", "{\"items\":[],\"totalAmount\":1,\"createdAt\":\"t\"}", "userId");
  assert_poison("OrderCreated", "{\"userId\":7,\"items\":[],\"totalAmount\":1,\"createdAt\":\"t\"}", "userId");
  assert_poison("OrderCreated", "{\"userId\":\"u\",\"totalAmount\":1,\"createdAt\":\"t\"}", "items");
  assert_poison("OrderCreated", "{\"userId\":\"u\",\"items\":{},\"totalAmount\":1,\"createdAt\":\"t\"}", "items");
  assert_poison("OrderCreated", "{\"userId\":\"u\",\"items\":[],\"createdAt\":\"t\"}", "totalAmount");
  assert_poison("OrderCreated", "{\"userId\":\"u\",\"items\":[],\"totalAmount\":\"9\",\"createdAt\":\"t\"}",
                "totalAmount");
  assert_poison("OrderCreated",
                "{\"userId\":\"u\",\"items\":[],\"totalAmount\":{\"$numberDouble\":\"NaN\"},\"createdAt\":\"t\"}",
                "totalAmount");
  assert_poison("OrderCreated", "{\"userId\":\"u\",\"items\":[],\"totalAmount\":1,\"currency\":\"USD\"}", "createdAt");
  assert_poison("OrderCreated", "{\"userId\":\"u\",\"items\":[],\"totalAmount\":1,\"currency\":\"USD\",\"createdAt\":null}",
                "createdAt");
  assert_poison("OrderCreated", "{\"userId\":\"u\",\"items\":[],\"totalAmount\":1,\"currency\":7,\"createdAt\":\"t\"}",
                "currency");
  /* a v1 is checked after its upcast: what it lacks is named as v2 names it */
  assert_poison_at_schema("OrderCreated", 1, "{\"items\":[],\"totalAmount\":1,\"createdAt\":\"t\"}", "userId");
}

Test(order_summaries, malformed_order_status_updated) {
  assert_poison("OrderStatusUpdated", "{\"updatedAt\":\"t\"}", "status");
  assert_poison("OrderStatusUpdated", "{\"status\":\"\",\"updatedAt\":\"t\"}", "status");
  assert_poison("OrderStatusUpdated", "{\"status\":1,\"updatedAt\":\"t\"}", "status");
  assert_poison("OrderStatusUpdated", "{\"status\":\"Shipped\"}", "updatedAt");
  assert_poison("OrderStatusUpdated", "{\"status\":\"Shipped\",\"updatedAt\":[]}", "updatedAt");
}

Test(order_summaries, indexes_page_by_created_at_then_id) {
  bson_t arr = BSON_INITIALIZER;
  p->indexes(&arr);
  cr_assert_eq(u_count(&arr), 2);
  cr_assert_str_eq(u_str(&arr, "0.name"), "userId_createdAt");
  cr_assert_eq(u_i64(&arr, "0.key.userId"), 1);
  cr_assert_eq(u_i64(&arr, "0.key.createdAt"), 1);
  cr_assert_eq(u_i64(&arr, "0.key._id"), 1);
  cr_assert_str_eq(u_str(&arr, "1.name"), "status_createdAt");
  cr_assert_eq(u_i64(&arr, "1.key.status"), 1);
  cr_assert_eq(u_i64(&arr, "1.key.createdAt"), 1);
  cr_assert_eq(u_i64(&arr, "1.key._id"), 1);
  cr_assert_not(u_has(&arr, "0.unique"), "not unique: a redelivery can never hit a duplicate key");
  cr_assert_not(u_has(&arr, "1.unique"));

  /* Key order matters in a compound index: field, createdAt, _id. */
  const char *want[2][3] = {{"userId", "createdAt", "_id"}, {"status", "createdAt", "_id"}};
  bson_iter_t it, idx, key;
  cr_assert(bson_iter_init(&it, &arr));
  for (int i = 0; i < 2; i++) {
    cr_assert(bson_iter_next(&it) && BSON_ITER_HOLDS_DOCUMENT(&it));
    cr_assert(bson_iter_recurse(&it, &idx) && bson_iter_find(&idx, "key") && bson_iter_recurse(&idx, &key));
    for (int k = 0; k < 3; k++) {
      cr_assert(bson_iter_next(&key));
      cr_assert_str_eq(bson_iter_key(&key), want[i][k]);
    }
    cr_assert_not(bson_iter_next(&key));
  }
  bson_destroy(&arr);
}
