/* The customers read model (projector-svc/projection.h): the conditional
 * write each customer event becomes. */

#define HARNESS_PROJECTION cqrs_customers_projection
#define HARNESS_AGGREGATE_TYPE "customer"
#define HARNESS_AGGREGATE_ID "c-1"
#include "projection_harness.h"

TestSuite(customers, .fini = harness_teardown);

/* Number of members of the sub-document at key of doc. */
static uint32_t sub_count(const bson_t *doc, const char *key) {
  bson_iter_t it;
  const uint8_t *data;
  uint32_t len;
  bson_t sub;
  cr_assert(bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_DOCUMENT(&it), "%s is not a document", key);
  bson_iter_document(&it, &len, &data);
  cr_assert(bson_init_static(&sub, data, len));
  return u_count(&sub);
}

/* The filter of every event after the first: {_id, version: {$lt: v}}. */
static void assert_guarded(int64_t v) {
  cr_assert_not(w.upsert, "an update never creates the document");
  cr_assert_eq(u_count(&w.filter), 2);
  cr_assert_str_eq(u_str(&w.filter, "_id"), "c-1");
  cr_assert_eq(sub_count(&w.filter, "version"), 1);
  bson_iter_t it, child;
  cr_assert(bson_iter_init(&it, &w.filter) && bson_iter_find_descendant(&it, "version.$lt", &child));
  cr_assert(BSON_ITER_HOLDS_INT64(&child));
  cr_assert_eq(bson_iter_int64(&child), v);
  cr_assert_eq(u_count(&w.update), 1, "only $set");
  cr_assert_eq(u_i64(&w.update, "$set.version"), v);
}

Test(customers, registered) {
  cr_assert_str_eq(p->name, "customers");
  cr_assert_str_eq(p->aggregate_type, "customer");
  cr_assert_eq(cqrs_projection_find("customers"), p);
  bool found = false;
  for (size_t i = 0; cqrs_projections[i]; i++) found |= cqrs_projections[i] == p;
  cr_assert(found);
}

Test(customers, customer_registered_upserts_once) {
  event("CustomerRegistered", 1, "{\"customerId\":\"c-1\",\"email\":\"ann@example.com\",\"name\":\"Ann\","
                                 "\"registeredAt\":\"2026-03-01T10:00:00.000Z\"}");
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_not(skip);
  cr_assert(w.upsert);
  cr_assert_eq(u_count(&w.filter), 1, "filter is {_id}");
  cr_assert_str_eq(u_str(&w.filter, "_id"), "c-1");
  cr_assert_eq(u_count(&w.update), 1, "only $setOnInsert: a redelivery changes nothing");
  cr_assert_eq(sub_count(&w.update, "$setOnInsert"), 8);
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.customerId"), "c-1");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.email"), "ann@example.com");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.name"), "Ann");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.status"), "ACTIVE");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.registrationDate"), "2026-03-01T10:00:00.000Z");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.lastUpdated"), "2026-03-01T10:00:00.000Z");
  cr_assert(u_is_null(&w.update, "$setOnInsert.suspensionReason"));
  cr_assert_eq(u_i64(&w.update, "$setOnInsert.version"), 1);
}

Test(customers, customer_email_updated_guarded_by_version) {
  event("CustomerEmailUpdated", 2, "{\"customerId\":\"c-1\",\"oldEmail\":\"ann@example.com\","
                                   "\"email\":\"ann@new.io\",\"updatedAt\":\"2026-03-02T00:00:00.000Z\"}");
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_not(skip);
  assert_guarded(2);
  cr_assert_eq(sub_count(&w.update, "$set"), 3, "email lastUpdated version");
  cr_assert_str_eq(u_str(&w.update, "$set.email"), "ann@new.io");
  cr_assert_str_eq(u_str(&w.update, "$set.lastUpdated"), "2026-03-02T00:00:00.000Z");
}

/* A CustomerEmailUpdated v1 (newEmail) and its v2 upcast (email) give the
 * same write. */
Test(customers, a_v1_email_update_and_its_v2_upcast_give_the_same_document) {
  event_at_schema("CustomerEmailUpdated", 2, 1, "{\"customerId\":\"c-1\",\"oldEmail\":\"ann@example.com\","
                                               "\"newEmail\":\"ann@new.io\",\"updatedAt\":\"2026-03-02T00:00:00.000Z\"}");
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert(apply(&skip, &err), "%s", err.message);
  cqrs_write_t from_v1; /* a bson_t is not to be copied by value */
  bson_copy_to(&w.filter, &from_v1.filter);
  bson_copy_to(&w.update, &from_v1.update);
  from_v1.upsert = w.upsert;
  harness_teardown();
  event("CustomerEmailUpdated", 2, "{\"customerId\":\"c-1\",\"oldEmail\":\"ann@example.com\","
                                   "\"email\":\"ann@new.io\",\"updatedAt\":\"2026-03-02T00:00:00.000Z\"}");
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_str_eq(u_str(&from_v1.update, "$set.email"), "ann@new.io");
  cr_assert(bson_equal(&from_v1.filter, &w.filter));
  cr_assert(bson_equal(&from_v1.update, &w.update), "v1 and v2 give one document");
  cqrs_write_cleanup(&from_v1);
}

Test(customers, customer_suspended_guarded_by_version) {
  event("CustomerSuspended", 3, "{\"customerId\":\"c-1\",\"reason\":\"chargeback\","
                                "\"suspendedAt\":\"2026-03-03T00:00:00.000Z\"}");
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_not(skip);
  assert_guarded(3);
  cr_assert_eq(sub_count(&w.update, "$set"), 4, "status suspensionReason lastUpdated version");
  cr_assert_str_eq(u_str(&w.update, "$set.status"), "SUSPENDED");
  cr_assert_str_eq(u_str(&w.update, "$set.suspensionReason"), "chargeback");
  cr_assert_str_eq(u_str(&w.update, "$set.lastUpdated"), "2026-03-03T00:00:00.000Z");
}

Test(customers, unknown_type_or_version_is_poison) {
  assert_unknown_is_poison("CustomerReactivated", 1, "{\"customerId\":\"c-1\"}");
  assert_unknown_is_poison("CustomerEmailUpdated", 3, "{\"email\":\"a@b.io\",\"updatedAt\":\"t\"}");
}

Test(customers, malformed_customer_registered) {
  assert_poison("CustomerRegistered", "{\"name\":\"A\",\"registeredAt\":\"t\"}", "email");
  assert_poison("CustomerRegistered", "{\"email\":5,\"name\":\"A\",\"registeredAt\":\"t\"}", "email");
  assert_poison("CustomerRegistered", "{\"email\":\"a@b.io\",\"registeredAt\":\"t\"}", "name");
  assert_poison("CustomerRegistered", "{\"email\":\"a@b.io\",\"name\":\"\",\"registeredAt\":\"t\"}", "name");
  assert_poison("CustomerRegistered", "{\"email\":\"a@b.io\",\"name\":\"A\"}", "registeredAt");
  assert_poison("CustomerRegistered", "{\"email\":\"a@b.io\",\"name\":\"A\",\"registeredAt\":1}", "registeredAt");
}

Test(customers, malformed_customer_email_updated) {
  assert_poison("CustomerEmailUpdated", "{\"oldEmail\":\"a@b.io\",\"updatedAt\":\"t\"}", "email");
  assert_poison("CustomerEmailUpdated", "{\"email\":null,\"updatedAt\":\"t\"}", "email");
  assert_poison("CustomerEmailUpdated", "{\"email\":{},\"updatedAt\":\"t\"}", "email");
  assert_poison("CustomerEmailUpdated", "{\"email\":\"a@b.io\"}", "updatedAt");
  /* v2 renamed newEmail: a v2 with the old name lacks email */
  assert_poison("CustomerEmailUpdated", "{\"newEmail\":\"a@b.io\",\"updatedAt\":\"t\"}", "email");
  /* a v1 is checked after its upcast, under the v2 name */
  assert_poison_at_schema("CustomerEmailUpdated", 1, "{\"newEmail\":7,\"updatedAt\":\"t\"}", "email");
}

Test(customers, malformed_customer_suspended) {
  assert_poison("CustomerSuspended", "{\"suspendedAt\":\"t\"}", "reason");
  assert_poison("CustomerSuspended", "{\"reason\":true,\"suspendedAt\":\"t\"}", "reason");
  assert_poison("CustomerSuspended", "{\"reason\":\"fraud\"}", "suspendedAt");
  assert_poison("CustomerSuspended", "{\"reason\":\"fraud\",\"suspendedAt\":7}", "suspendedAt");
}

Test(customers, indexes_for_active_and_email_prefix) {
  bson_t arr = BSON_INITIALIZER;
  p->indexes(&arr);
  cr_assert_eq(u_count(&arr), 2);
  cr_assert_str_eq(u_str(&arr, "0.name"), "status_registrationDate");
  cr_assert_eq(u_i64(&arr, "0.key.status"), 1);
  cr_assert_eq(u_i64(&arr, "0.key.registrationDate"), 1);
  cr_assert_eq(u_i64(&arr, "0.key._id"), 1);
  cr_assert_str_eq(u_str(&arr, "1.name"), "email_id");
  cr_assert_eq(u_i64(&arr, "1.key.email"), 1);
  cr_assert_eq(u_i64(&arr, "1.key._id"), 1);
  cr_assert_not(u_has(&arr, "0.unique"), "not unique: a redelivery can never hit a duplicate key");
  cr_assert_not(u_has(&arr, "1.unique"));

  /* Key order matters in a compound index. */
  const char *want[2][3] = {{"status", "registrationDate", "_id"}, {"email", "_id", NULL}};
  bson_iter_t it, idx, key;
  cr_assert(bson_iter_init(&it, &arr));
  for (int i = 0; i < 2; i++) {
    cr_assert(bson_iter_next(&it) && BSON_ITER_HOLDS_DOCUMENT(&it));
    cr_assert(bson_iter_recurse(&it, &idx) && bson_iter_find(&idx, "key") && bson_iter_recurse(&idx, &key));
    for (int k = 0; k < 3 && want[i][k]; k++) {
      cr_assert(bson_iter_next(&key));
      cr_assert_str_eq(bson_iter_key(&key), want[i][k]);
    }
    cr_assert_not(bson_iter_next(&key));
  }
  bson_destroy(&arr);
}
