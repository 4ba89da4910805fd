/* The user_profiles read model (projector-svc/projection.h): the conditional
 * write each user event becomes. */

#define HARNESS_PROJECTION cqrs_user_profiles_projection
#define HARNESS_AGGREGATE_TYPE "user"
#define HARNESS_AGGREGATE_ID "u-1"
#include "projection_harness.h"

TestSuite(user_profiles, .fini = harness_teardown);

Test(user_profiles, registered) {
  cr_assert_str_eq(p->name, "user_profiles");
  cr_assert_str_eq(p->aggregate_type, "user");
  cr_assert_eq(cqrs_projection_find("user_profiles"), p);
  cr_assert_null(cqrs_projection_find("nope"));
  bool found = false;
  for (size_t i = 0; cqrs_projections[i]; i++) found |= cqrs_projections[i] == p;
  cr_assert(found);
}

Test(user_profiles, user_created_upserts_once) {
  event("UserCreated", 1, "{\"userId\":\"u-1\",\"email\":\"ann@example.com\",\"name\":\"Ann\","
                         "\"createdAt\":\"2026-03-01T10:00:00.000Z\"}");
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_not(skip);
  cr_assert(w.upsert);
  cr_assert_eq(u_count(&w.filter), 1, "filter is {_id}");
  cr_assert_str_eq(u_str(&w.filter, "_id"), "u-1");
  cr_assert_eq(u_count(&w.update), 1, "only $setOnInsert: a redelivery changes nothing");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.userId"), "u-1");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.email"), "ann@example.com");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.name"), "Ann");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.createdAt"), "2026-03-01T10:00:00.000Z");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.updatedAt"), "2026-03-01T10:00:00.000Z");
  cr_assert_eq(u_i64(&w.update, "$setOnInsert.version"), 1);
}

Test(user_profiles, user_profile_updated_guarded_by_version) {
  event("UserProfileUpdated", 3, "{\"userId\":\"u-1\",\"changes\":{\"name\":\"Bo\"},"
                                 "\"updatedAt\":\"2026-03-02T00:00:00.000Z\"}");
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_not(skip);
  cr_assert_not(w.upsert, "an update never creates the document");
  cr_assert_str_eq(u_str(&w.filter, "_id"), "u-1");
  cr_assert_eq(u_i64(&w.filter, "version.$lt"), 3);
  cr_assert_eq(u_count(&w.filter), 2);
  cr_assert_str_eq(u_str(&w.update, "$set.name"), "Bo");
  cr_assert_not(u_has(&w.update, "$set.email"), "only changed fields");
  cr_assert_str_eq(u_str(&w.update, "$set.updatedAt"), "2026-03-02T00:00:00.000Z");
  cr_assert_eq(u_i64(&w.update, "$set.version"), 3);
  cr_assert_eq(u_count(&w.update), 1);
}

Test(user_profiles, user_profile_updated_email) {
  event("UserProfileUpdated", 2, "{\"userId\":\"u-1\",\"changes\":{\"email\":\"bo@x.io\"},"
                                 "\"updatedAt\":\"2026-03-02T00:00:00.000Z\"}");
  bool skip;
  cr_assert(apply(&skip, NULL));
  cr_assert_str_eq(u_str(&w.update, "$set.email"), "bo@x.io");
  cr_assert_not(u_has(&w.update, "$set.name"));
}

Test(user_profiles, unrelated_event_is_skipped) {
  event("OrderCreated", 1, "{\"orderId\":\"o-1\"}");
  bool skip = false;
  cqrs_error_t err = {0};
  cr_assert(apply(&skip, &err));
  cr_assert(skip);
}

Test(user_profiles, malformed_user_created) {
  assert_poison("UserCreated", "{\"userId\":\"u-1\",\"name\":\"Ann\",\"createdAt\":\"t\"}", "email");
  assert_poison("UserCreated", "{\"userId\":\"u-1\",\"email\":\"a@b.io\",\"createdAt\":\"t\"}", "name");
  assert_poison("UserCreated", "{\"userId\":\"u-1\",\"email\":\"a@b.io\",\"name\":\"A\"}", "createdAt");
  assert_poison("UserCreated", "{\"email\":7,\"name\":\"A\",\"createdAt\":\"t\"}", "email");
}

Test(user_profiles, malformed_user_profile_updated) {
  assert_poison("UserProfileUpdated", "{\"userId\":\"u-1\",\"updatedAt\":\"t\"}", "changes");
  assert_poison("UserProfileUpdated", "{\"changes\":\"x\",\"updatedAt\":\"t\"}", "changes");
  assert_poison("UserProfileUpdated", "{\"changes\":{\"name\":\"A\"}}", "updatedAt");
  assert_poison("UserProfileUpdated", "{\"changes\":{\"name\":5},\"updatedAt\":\"t\"}", NULL);
}

Test(user_profiles, indexes_email) {
  bson_t arr = BSON_INITIALIZER;
  p->indexes(&arr);
  cr_assert_geq(u_count(&arr), 1);
  cr_assert_eq(u_i64(&arr, "0.key.email"), 1);
  bson_destroy(&arr);
}

/* The placement saga's owner check moves only the version. */
Test(user_profiles, user_order_recorded_moves_only_the_version) {
  event("UserOrderRecorded", 2, "{\"userId\":\"u-1\",\"orderId\":\"o-1\",\"recordedAt\":\"2026-03-02T00:00:00.000Z\"}");
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_not(skip);
  cr_assert_not(w.upsert);
  cr_assert_eq(u_i64(&w.filter, "version.$lt"), 2);
  cr_assert_eq(u_i64(&w.update, "$set.version"), 2);
  bson_iter_t it;
  bson_t set;
  const uint8_t *data;
  uint32_t len;
  cr_assert(bson_iter_init_find(&it, &w.update, "$set"));
  bson_iter_document(&it, &len, &data);
  bson_init_static(&set, data, len);
  cr_assert_eq(u_count(&set), 1, "nothing but the version");
}
