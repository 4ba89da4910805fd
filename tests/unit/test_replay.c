/* Aggregates from the event log (command-svc/replay.h): events written at any
 * schema version rebuild the state the deciders would have, an event that
 * cannot be read marks its aggregate unreadable (and its commands are refused
 * with a 500 saying why), and the mark survives aggregate-state. */
#include "processor.h"
#include "replay.h"

#include "unit.h"

static cqrs_aggregate_store_t *store;
static cqrs_error_t err;

static void setup(void) { store = cqrs_aggregate_store_new(); }
static void teardown(void) { cqrs_aggregate_store_destroy(store); }

TestSuite(replay, .init = setup, .fini = teardown);

/* Replays one event (schema: its ce_schemaversion, 0 = none) into store. */
static bool replay(const char *type, const char *aggregate_type, const char *id, int64_t version, int schema,
                   const char *data) {
  cqrs_event_t ev = {.id = "e", .type = (char *)type, .aggregate_type = (char *)aggregate_type,
                     .aggregate_id = (char *)id, .tenant = "acme", .version = version, .schema_version = schema,
                     .data = u_parse(data)};
  cqrs_error_clear(&err);
  bool ok = cqrs_replay_event(store, 2, &ev, &err);
  bson_destroy(ev.data);
  return ok;
}

static const cqrs_aggregate_t *get(const char *id) {
  char key[128];
  snprintf(key, sizeof key, "acme/%s", id);
  return cqrs_aggregate_store_get(store, key);
}

#define ORDER_V1 "{\"userId\":\"u-1\",\"items\":[{\"product\":\"Pen\",\"quantity\":1,\"price\":2.0}],\"totalAmount\":2.0,\"createdAt\":\"t0\"}"

Test(replay, v1_events_give_the_v2_state) {
  cr_assert(replay("OrderCreated", "order", "o-1", 1, 0, ORDER_V1), "%s", err.message);
  cr_assert(replay("OrderStatusUpdated", "order", "o-1", 2, 1, "{\"status\":\"Processing\",\"updatedAt\":\"t1\"}"),
            "%s", err.message);
  const cqrs_aggregate_t *a = get("o-1");
  cr_assert_not_null(a);
  cr_assert_eq(a->version, 2);
  cr_assert_eq(a->partition, 2);
  cr_assert(a->replayed, "to be written to aggregate-state");
  cr_assert_null(a->unreadable);
  cr_assert_str_eq(a->aggregate_type, "order");
  cr_assert_str_eq(u_str(a->state, "currency"), "USD");
  cr_assert_str_eq(u_str(a->state, "status"), "Processing");
  cr_assert_str_eq(u_str(a->state, "createdAt"), "t0");

  cr_assert(replay("CustomerRegistered", "customer", "k-1", 1, 1,
                   "{\"email\":\"a@b.io\",\"name\":\"Ann\",\"registeredAt\":\"t0\"}"), "%s", err.message);
  cr_assert(replay("CustomerEmailUpdated", "customer", "k-1", 2, 1,
                   "{\"oldEmail\":\"a@b.io\",\"newEmail\":\"c@d.io\",\"updatedAt\":\"t1\"}"), "%s", err.message);
  cr_assert_str_eq(u_str(get("k-1")->state, "email"), "c@d.io");
}

Test(replay, an_event_seen_before_is_skipped) {
  cr_assert(replay("OrderCreated", "order", "o-1", 1, 0, ORDER_V1));
  cr_assert(replay("OrderCreated", "order", "o-1", 1, 0, "{\"garbage\":1}"), "a redelivery changes nothing");
  cr_assert_eq(get("o-1")->version, 1);
  cr_assert_null(get("o-1")->unreadable);
}

static void assert_unreadable(const char *id, const char *needle) {
  const cqrs_aggregate_t *a = get(id);
  cr_assert_not_null(a);
  cr_assert_not_null(a->unreadable);
  cr_assert(strstr(a->unreadable, needle), "%s", a->unreadable);
  cr_assert(strstr(err.message, needle), "%s", err.message);
}

Test(replay, an_unknown_type_or_version_marks_the_aggregate_unreadable) {
  cr_assert(replay("OrderCreated", "order", "o-1", 1, 0, ORDER_V1));
  cr_assert_not(replay("OrderRefunded", "order", "o-1", 2, 1, "{}"));
  assert_unreadable("o-1", "OrderRefunded");
  cr_assert_eq(get("o-1")->version, 1, "the state stops before the event");
  cr_assert_not(replay("OrderStatusUpdated", "order", "o-1", 3, 1, "{\"status\":\"Shipped\",\"updatedAt\":\"t\"}"),
                "later events are not applied over a hole");
  cr_assert_eq(get("o-1")->version, 1);

  cr_assert_not(replay("OrderCreated", "order", "o-2", 1, 7, ORDER_V1));
  assert_unreadable("o-2", "version 7");
  cr_assert_eq(get("o-2")->version, 0);
  cr_assert_not(replay("OrderCreated", "order", "o-3", 1, 2, ORDER_V1), "a v2 without currency");
  assert_unreadable("o-3", "currency");
  cr_assert_not(replay("OrderStatusUpdated", "order", "o-4", 2, 1, "{\"status\":\"Shipped\",\"updatedAt\":\"t\"}"));
  assert_unreadable("o-4", "follows version 0");
}

Test(replay, an_unknown_aggregate_type_is_refused_and_stored_nowhere) {
  cr_assert_not(replay("InvoiceIssued", "invoice", "i-1", 1, 1, "{}"));
  cr_assert_str_eq(err.field, "ce_aggregatetype");
  cr_assert_null(get("i-1"));
}

static int32_t partition_two(const char *key, void *c) {
  (void)key, (void)c;
  return 2;
}

/* The mark travels through aggregate-state, and commands are refused with a
 * 500 that says why. */
Test(replay, an_unreadable_aggregate_refuses_commands_across_restarts) {
  cr_assert(replay("OrderCreated", "order", "o-1", 1, 0, ORDER_V1));
  cr_assert_not(replay("OrderRefunded", "order", "o-1", 2, 1, "{}"));
  size_t len;
  char *json = cqrs_aggregate_to_json(get("o-1"), &len);
  cqrs_aggregate_t *back = cqrs_aggregate_from_json("acme/o-1", 2, json, len, &err);
  bson_free(json);
  cr_assert_not_null(back, "%s", err.message);
  cr_assert_not_null(back->unreadable);
  cr_assert(strstr(back->unreadable, "OrderRefunded"));
  cr_assert_not(back->replayed);
  cqrs_aggregate_t *copy = cqrs_aggregate_copy(back);
  cr_assert_str_eq(copy->unreadable, back->unreadable);
  cqrs_aggregate_destroy(copy);
  cqrs_aggregate_destroy(back);

  cqrs_process_ctx_t ctx = {.tenant = "acme", .partition = 2, .partition_of = partition_two, .now = "t9",
                            .source = "/command-svc"};
  cqrs_outcome_t out;
  const char *cmd = "{\"commandType\":\"UpdateOrderStatus\",\"aggregateId\":\"o-1\",\"status\":\"Processing\"}";
  cqrs_process_command(store, &ctx, cmd, strlen(cmd), &out);
  cr_assert_eq(out.status, 500, "%s", out.result_json);
  cr_assert(strstr(out.result_json, "OrderRefunded"), "%s", out.result_json);
  cr_assert_eq(out.n_events, 0);
  cr_assert_null(out.staged);
  cqrs_outcome_cleanup(&out);
}
