/* The event_history read model (projector-svc/projections/event_history.c):
 * one write-once document per event, and the way back to the event. */

#define HARNESS_PROJECTION cqrs_event_history_projection
#define HARNESS_AGGREGATE_TYPE "order"
#define HARNESS_AGGREGATE_ID "o-1"
#include "fold.h"
#include "projection_harness.h"

TestSuite(event_history, .fini = harness_teardown);

#define CREATED                                                                                                  \
  "{\"orderId\":\"o-1\",\"userId\":\"u-7\",\"items\":[],\"totalAmount\":8.5,\"createdAt\":\"2026-03-01T10:00:00.000Z\"}"

Test(event_history, registered_for_every_aggregate) {
  cr_assert_str_eq(p->name, "event_history");
  cr_assert_null(p->aggregate_type, "every aggregate's events");
  cr_assert_eq(cqrs_projection_find("event_history"), p);
  bool found = false;
  for (size_t i = 0; cqrs_projections[i]; i++) found |= cqrs_projections[i] == p;
  cr_assert(found);
}

Test(event_history, an_event_is_inserted_once_with_its_metadata) {
  event("OrderCreated", 1, CREATED);
  ev.correlation_id = "corr-1";
  ev.tenant = "acme";
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_not(skip);
  cr_assert(w.upsert);
  cr_assert_eq(u_count(&w.filter), 1, "filter is {_id}");
  cr_assert_str_eq(u_str(&w.filter, "_id"), "e-1", "the event id is the document's");
  cr_assert_eq(u_count(&w.update), 1, "only $setOnInsert: a redelivery writes nothing new");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.eventId"), "e-1");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.type"), "OrderCreated");
  cr_assert_eq(u_i64(&w.update, "$setOnInsert.schemaVersion"), cqrs_order_created_event.version);
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.aggregateType"), "order");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.aggregateId"), "o-1");
  cr_assert_eq(u_i64(&w.update, "$setOnInsert.version"), 1);
  cr_assert_eq(u_i64(&w.update, "$setOnInsert.versionBlock"), 0);
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.time"), "2026-03-01T10:00:00.000Z");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.timeHour"), "2026-03-01T10");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.correlationId"), "corr-1");
  cr_assert(u_is_null(&w.update, "$setOnInsert.causationId"), "absent ids are null");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.tenant"), "acme");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.data.userId"), "u-7", "the data as it is");
}

/* Who caused it, as the event says (ce_authtype, ce_authid); an event that
 * does not say gets no actor (the routes show null). */
Test(event_history, the_actor_is_recorded_when_the_event_names_one) {
  event("OrderCreated", 1, CREATED);
  ev.auth_type = CQRS_AUTHTYPE_APP_USER;
  ev.auth_id = "alice";
  bool skip = true;
  cr_assert(apply(&skip, NULL));
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.actor.type"), "app_user");
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.actor.id"), "alice");
  harness_teardown();
  event("OrderCreated", 1, CREATED);
  ev.auth_type = CQRS_AUTHTYPE_SERVICE_ACCOUNT;
  cr_assert(apply(&skip, NULL));
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.actor.type"), "service_account");
  cr_assert(u_is_null(&w.update, "$setOnInsert.actor.id"), "a type alone");
  harness_teardown();
  event("OrderCreated", 1, CREATED);
  cr_assert(apply(&skip, NULL));
  cr_assert_not(u_has(&w.update, "$setOnInsert.actor"), "no actor when the event does not say");
}

Test(event_history, no_event_is_poison_here) {
  /* The data is recorded as it is, not decoded: a shape the read models
   * refuse still belongs to the history. */
  (void)assert_poison;
  event("OrderCreated", 1, "{\"totalAmount\":\"lots\"}");
  bool skip = true;
  cr_assert(apply(&skip, NULL));
  cr_assert_not(skip);
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.data.totalAmount"), "lots");
}

Test(event_history, versions_go_in_blocks_of_consecutive_versions) {
  static const int64_t v[][2] = {{1, 0}, {CQRS_HISTORY_BLOCK, 0}, {CQRS_HISTORY_BLOCK + 1, 1}, {10 * CQRS_HISTORY_BLOCK + 5, 10}};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    event("OrderStatusUpdated", v[i][0], "{}");
    bool skip;
    cr_assert(apply(&skip, NULL));
    cr_assert_eq(u_i64(&w.update, "$setOnInsert.versionBlock"), v[i][1], "version %lld", (long long)v[i][0]);
    harness_teardown();
  }
}

/* The history records what was appended: the data as written and the schema
 * version it was written at, not its upcast. */
Test(event_history, a_past_version_is_recorded_as_written) {
  event_at_schema("CustomerEmailUpdated", 2, 1, "{\"newEmail\":\"a@b.io\",\"updatedAt\":\"t\"}");
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_eq(u_i64(&w.update, "$setOnInsert.schemaVersion"), 1);
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.data.newEmail"), "a@b.io");
  cr_assert_not(u_has(&w.update, "$setOnInsert.data.email"));
  harness_teardown();
  event_at_schema("OrderCreated", 1, 0, CREATED);
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_eq(u_i64(&w.update, "$setOnInsert.schemaVersion"), 1, "no ce_schemaversion: version 1");
}

Test(event_history, an_unknown_type_or_version_is_recorded_as_written) {
  event_at_schema("OrderCreated", 3, 9, "{\"x\":1}");
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_not(skip, "the history is the log's: every event");
  cr_assert_eq(u_i64(&w.update, "$setOnInsert.schemaVersion"), 9);
  harness_teardown();
  event("SomethingNew", 3, "{\"x\":1}");
  cr_assert(apply(&skip, &err), "%s", err.message);
  cr_assert_not(skip, "the history is the log's: every event");
  cr_assert_eq(u_i64(&w.update, "$setOnInsert.schemaVersion"), 1);
  cr_assert_str_eq(u_str(&w.update, "$setOnInsert.tenant"), "default", "no tenant: the default one");
  harness_teardown();
  event("OrderCreated", 1, CREATED);
  ev.time = "2026-03-01T11:00:00+01:00";
  cr_assert(apply(&skip, &err));
  cr_assert(u_is_null(&w.update, "$setOnInsert.timeHour"), "no hour for a time not in UTC");
}

Test(event_history, a_redelivered_event_folds_into_one_insert) {
  event("OrderCreated", 1, CREATED);
  cqrs_write_t two[2];
  bool skip;
  cr_assert(p->apply(&ev, &two[0], &skip, NULL));
  cr_assert(p->apply(&ev, &two[1], &skip, NULL));
  cqrs_fold_t f;
  cqrs_error_t err = {0};
  cr_assert(cqrs_fold(two, NULL, 2, &f, &err), "%s", err.message);
  cr_assert_eq(f.n, 1, "one write per document per batch");
  cr_assert(f.writes[0].w.upsert);
  cr_assert_str_eq(u_str(&f.writes[0].insert, "_id"), "e-1", "new documents are inserted without a lookup");
  cr_assert_str_eq(u_str(&f.writes[0].insert, "type"), "OrderCreated");
  cqrs_fold_cleanup(&f);
  cqrs_write_cleanup(&two[0]);
  cqrs_write_cleanup(&two[1]);
}

Test(event_history, a_document_gives_back_its_event) {
  event("OrderCreated", 4, CREATED);
  ev.causation_id = "cmd-9";
  ev.auth_type = CQRS_AUTHTYPE_API_KEY;
  ev.auth_id = "apikey:0123456789abcdef";
  bool skip;
  cr_assert(apply(&skip, NULL));
  cqrs_fold_t f;
  cr_assert(cqrs_fold(&w, NULL, 1, &f, NULL));
  cqrs_event_t back;
  cqrs_error_t err = {0};
  cr_assert(cqrs_event_history_to_event(&f.writes[0].insert, &back, &err), "%s", err.message);
  cr_assert_str_eq(back.id, "e-1");
  cr_assert_str_eq(back.type, "OrderCreated");
  cr_assert_str_eq(back.aggregate_type, "order");
  cr_assert_str_eq(back.aggregate_id, "o-1");
  cr_assert_eq(back.version, 4);
  cr_assert_str_eq(back.time, "2026-03-01T10:00:00.000Z");
  cr_assert_str_eq(back.causation_id, "cmd-9");
  cr_assert_null(back.correlation_id);
  cr_assert_str_eq(back.auth_type, "api_key");
  cr_assert_str_eq(back.auth_id, "apikey:0123456789abcdef");
  cr_assert(bson_equal(back.data, ev.data), "the data round-trips");
  cqrs_event_cleanup(&back);
  cqrs_fold_cleanup(&f);
}

Test(event_history, a_document_that_is_not_one_is_refused) {
  bson_t *doc = u_parse("{\"eventId\":\"e\",\"type\":\"T\",\"aggregateType\":\"order\",\"aggregateId\":\"o\","
                        "\"time\":\"t\",\"version\":\"one\",\"data\":{}}");
  cqrs_event_t back;
  cqrs_error_t err = {0};
  cr_assert_not(cqrs_event_history_to_event(doc, &back, &err));
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cr_assert_str_eq(err.field, "version");
  cqrs_event_cleanup(&back);
  bson_destroy(doc);
  doc = u_parse("{\"eventId\":\"e\",\"type\":\"T\",\"aggregateType\":\"order\",\"time\":\"t\",\"version\":1}");
  cr_assert_not(cqrs_event_history_to_event(doc, &back, &err));
  cr_assert_str_eq(err.field, "aggregateId");
  cqrs_event_cleanup(&back);
  bson_destroy(doc);
}

Test(event_history, indexes_serve_the_trail_and_the_type_time_range) {
  bson_t a = BSON_INITIALIZER;
  p->indexes(&a);
  cr_assert_eq(u_count(&a), 2);
  cr_assert_str_eq(u_str(&a, "0.name"), "aggregate_version");
  cr_assert(u_has(&a, "0.key.aggregateId") && u_has(&a, "0.key.aggregateType") && u_has(&a, "0.key.version"));
  cr_assert_str_eq(u_str(&a, "1.name"), "type_time");
  cr_assert(u_has(&a, "1.key.type") && u_has(&a, "1.key.time"));
  bson_destroy(&a);
}

/* The audit trail shows the data upcast to the current version, read time:
 * the stored document (as written) gives the current shape, schemaVersion the
 * data's and writtenSchemaVersion the stored one. */
Test(event_history, a_stored_past_version_reads_upcast_with_both_versions) {
  bson_t *doc = u_parse("{\"_id\":\"e\",\"eventId\":\"e\",\"type\":\"CustomerEmailUpdated\",\"schemaVersion\":1,"
                        "\"aggregateType\":\"customer\",\"data\":{\"newEmail\":\"a@b.io\",\"updatedAt\":\"t\"},"
                        "\"version\":2}");
  bson_t out;
  cqrs_error_t err = {0};
  cr_assert(cqrs_event_history_upcast(doc, &out, &err), "%s", err.message);
  cr_assert_eq(u_i64(&out, "schemaVersion"), cqrs_customer_email_updated_event.version);
  cr_assert_eq(u_i64(&out, "writtenSchemaVersion"), 1);
  cr_assert_str_eq(u_str(&out, "data.email"), "a@b.io");
  cr_assert_not(u_has(&out, "data.newEmail"));
  cr_assert_str_eq(u_str(&out, "eventId"), "e", "the rest as stored");
  cr_assert_eq(u_i64(&out, "version"), 2);
  cr_assert_eq(u_count(&out), u_count(doc) + 1, "one field more: writtenSchemaVersion");
  bson_destroy(&out);
  bson_destroy(doc);
  /* recorded before schema versions: version 1, OrderCreated gains its currency */
  doc = u_parse("{\"type\":\"OrderCreated\",\"data\":" CREATED "}");
  cr_assert(cqrs_event_history_upcast(doc, &out, &err), "%s", err.message);
  cr_assert_eq(u_i64(&out, "schemaVersion"), cqrs_order_created_event.version);
  cr_assert_eq(u_i64(&out, "writtenSchemaVersion"), 1);
  cr_assert_str_eq(u_str(&out, "data.currency"), CQRS_ORDER_CURRENCY_DEFAULT);
  bson_destroy(&out);
  bson_destroy(doc);
}

Test(event_history, a_stored_current_version_reads_as_stored) {
  bson_t *doc = u_parse("{\"type\":\"OrderCreated\",\"schemaVersion\":2,\"data\":{\"currency\":\"EUR\"}}");
  bson_t out;
  cqrs_error_t err = {0};
  cr_assert(cqrs_event_history_upcast(doc, &out, &err), "%s", err.message);
  cr_assert_eq(u_i64(&out, "schemaVersion"), 2);
  cr_assert_eq(u_i64(&out, "writtenSchemaVersion"), 2);
  cr_assert_str_eq(u_str(&out, "data.currency"), "EUR");
  bson_destroy(&out);
  bson_destroy(doc);
}

/* An event the contract cannot read is shown, as written, with the reason. */
Test(event_history, an_unknown_type_or_version_reads_as_written_with_a_reason) {
  bson_t *doc = u_parse("{\"type\":\"OrderCreated\",\"schemaVersion\":9,\"data\":{\"x\":1}}");
  bson_t out;
  cqrs_error_t err = {0};
  cr_assert_not(cqrs_event_history_upcast(doc, &out, &err));
  cr_assert(strstr(err.message, "OrderCreated") && strstr(err.message, "9"), "%s", err.message);
  cr_assert_eq(u_i64(&out, "schemaVersion"), 9);
  cr_assert_eq(u_i64(&out, "writtenSchemaVersion"), 9);
  cr_assert_eq(u_i64(&out, "data.x"), 1);
  bson_destroy(&out);
  bson_destroy(doc);
  doc = u_parse("{\"type\":\"SomethingNew\",\"data\":{\"x\":1}}");
  cr_assert_not(cqrs_event_history_upcast(doc, &out, &err));
  cr_assert(strstr(err.message, "SomethingNew"), "%s", err.message);
  cr_assert_eq(u_i64(&out, "schemaVersion"), 1);
  cr_assert_eq(u_i64(&out, "data.x"), 1);
  bson_destroy(&out);
  bson_destroy(doc);
}
