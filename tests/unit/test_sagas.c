/* The sagas (saga-svc/sagas/) through the pure framework (saga.h): every
 * branch of the three sagas, duplicate and out-of-order inputs, deterministic
 * commandIds that route results to the saga's partition, and the instance
 * store's staging. No Kafka. */
#include "saga.h"
#include "saga_store.h"

#include "cqrs/json.h"
#include "cqrs/util.h"
#include "unit.h"

#include <librdkafka/rdkafka.h>

#define NOW "2026-12-02T03:00:00.000Z"
#define TENANT "acme"
#define PARTS 6

/* One saga instance under test and what its last run produced. */
typedef struct {
  const cqrs_saga_t *saga;
  const char *tenant, *key;
  int32_t partition;
  bson_t *instance;
  cqrs_saga_outcome_t out;
} run_t;

static run_t r;

static void teardown(void) {
  cqrs_saga_outcome_cleanup(&r.out);
  if (r.instance) bson_destroy(r.instance);
  memset(&r, 0, sizeof r);
}

TestSuite(sagas, .fini = teardown);

static void begin(const cqrs_saga_t *s, const char *key) {
  teardown();
  r = (run_t){.saga = s, .tenant = TENANT, .key = key, .partition = 2};
}

/* Keeps the new instance, as the loop commits it. */
static void settle(void) {
  if (r.out.instance) {
    if (r.instance) bson_destroy(r.instance);
    r.instance = r.out.instance;
    r.out.instance = NULL;
  }
}

static void run(cqrs_saga_input_t *in, const char *command_id, int64_t due_ms) {
  cqrs_saga_outcome_cleanup(&r.out);
  cqrs_saga_ctx_t ctx = {r.tenant, r.key, NOW, r.partition, PARTS};
  cqrs_saga_run(r.saga, r.instance, &ctx, in, command_id, due_ms, &r.out);
  settle();
}

/* Feeds an event of type (a contract descriptor) with data json. */
static void event(const cqrs_event_type_t *type, const char *json) {
  bson_t *data = u_parse(json);
  cqrs_event_data_t decoded;
  cqrs_error_t err = {0};
  cr_assert(type->decode(data, &decoded, &err), "%s: %s", type->name, err.message);
  cqrs_saga_input_t in = {.kind = CQRS_SAGA_EVENT, .event = type, .decoded = &decoded, .aggregate_id = r.key};
  run(&in, NULL, 0);
  bson_destroy(data);
}

static void result(const char *command_id, int status) {
  cqrs_saga_input_t in = {.kind = CQRS_SAGA_RESULT, .status = status};
  run(&in, command_id, 0);
}

static void deadline(int64_t due_ms, const char *what) {
  cqrs_saga_input_t in = {.kind = CQRS_SAGA_DEADLINE, .what = what};
  run(&in, NULL, due_ms);
}

static const char *state(void) { return cqrs_saga_str(r.instance, "state"); }

/* Command i of the last run, parsed (caller destroys). */
static bson_t *command(size_t i) {
  cr_assert_lt(i, r.out.n_commands);
  return u_parse(r.out.commands[i].json);
}

static char *id_of(size_t i) { return strdup(r.out.commands[i].command_id); }

static void assert_command(size_t i, const char *type, const char *aggregate, const char *status,
                           const char *reason) {
  bson_t *c = command(i);
  cr_assert_str_eq(u_str(c, "commandType"), type);
  cr_assert_str_eq(u_str(c, "aggregateId"), aggregate);
  if (status) cr_assert_str_eq(u_str(c, "status"), status);
  if (reason) cr_assert_str_eq(u_str(c, "reason"), reason);
  char sid[37];
  cqrs_saga_id(TENANT, r.saga->type, r.key, sid);
  cr_assert_str_eq(u_str(c, "correlationId"), sid, "correlationId = saga id");
  bson_destroy(c);
}

#define ORDER_CREATED(customer)                                                                                \
  "{\"orderId\":\"o-1\",\"userId\":\"u-1\",\"items\":[{\"product\":\"Pen\",\"quantity\":1,\"price\":1.0}],"   \
  "\"totalAmount\":1.0,\"currency\":\"USD\",\"createdAt\":\"2026-12-02T02:00:00.000Z\"" customer                                    \
  ",\"processBy\":\"2026-12-02T04:00:00.000Z\"}"

/* ---- order placement ---- */

Test(sagas, placement_checks_the_user_and_completes_when_it_exists) {
  begin(&cqrs_order_placement_saga, "o-1");
  event(&cqrs_order_created_event, ORDER_CREATED(""));
  cr_assert_eq(r.out.n_commands, 1);
  assert_command(0, "RecordUserOrder", "u-1", NULL, NULL);
  cr_assert_str_eq(state(), CQRS_SAGA_RUNNING);
  char *id = id_of(0);
  result(id, 201);
  cr_assert_eq(r.out.n_commands, 0);
  cr_assert_str_eq(state(), CQRS_SAGA_COMPLETED);
  cr_assert_str_eq(u_str(r.instance, "steps.0.outcome"), "201");
  free(id);
}

Test(sagas, placement_cancels_an_order_of_an_unknown_user_once) {
  begin(&cqrs_order_placement_saga, "o-1");
  event(&cqrs_order_created_event, ORDER_CREATED(""));
  char *user = id_of(0);
  result(user, 404);
  cr_assert_eq(r.out.n_commands, 1);
  assert_command(0, "UpdateOrderStatus", "o-1", "Cancelled", "USER_NOT_FOUND");
  char *cancel = id_of(0);
  result(user, 404); /* a duplicate result */
  cr_assert_null(r.out.instance);
  cr_assert_eq(r.out.n_commands, 0);
  result(cancel, 201);
  cr_assert_str_eq(state(), CQRS_SAGA_COMPENSATED);
  free(user);
  free(cancel);
}

Test(sagas, placement_cancels_for_a_customer_that_is_not_active) {
  begin(&cqrs_order_placement_saga, "o-1");
  event(&cqrs_order_created_event, ORDER_CREATED(",\"customerId\":\"k-1\""));
  cr_assert_eq(r.out.n_commands, 2);
  assert_command(1, "RecordCustomerOrder", "k-1", NULL, NULL);
  char *user = id_of(0), *customer = id_of(1);
  result(user, 201);
  cr_assert_str_eq(state(), CQRS_SAGA_RUNNING, "the customer is not checked yet");
  result(customer, 422);
  assert_command(0, "UpdateOrderStatus", "o-1", "Cancelled", "CUSTOMER_NOT_ACTIVE");
  char *cancel = id_of(0);
  result(cancel, 422); /* cancelled already by someone else: nothing more to do */
  cr_assert_str_eq(state(), CQRS_SAGA_COMPENSATED);
  free(user);
  free(customer);
  free(cancel);
}

Test(sagas, placement_sends_one_cancel_when_both_checks_fail) {
  begin(&cqrs_order_placement_saga, "o-1");
  event(&cqrs_order_created_event, ORDER_CREATED(",\"customerId\":\"k-1\""));
  char *user = id_of(0), *customer = id_of(1);
  result(customer, 404);
  cr_assert_eq(r.out.n_commands, 1);
  result(user, 404);
  cr_assert_eq(r.out.n_commands, 0, "the order is being cancelled already");
  free(user);
  free(customer);
}

Test(sagas, placement_with_a_customer_completes_when_both_are_fine) {
  begin(&cqrs_order_placement_saga, "o-1");
  event(&cqrs_order_created_event, ORDER_CREATED(",\"customerId\":\"k-1\""));
  char *user = id_of(0), *customer = id_of(1);
  result(customer, 201);
  result(user, 200); /* a repeat of the record answers 200 */
  cr_assert_str_eq(state(), CQRS_SAGA_COMPLETED);
  free(user);
  free(customer);
}

Test(sagas, placement_fails_on_an_answer_that_is_not_about_the_owner) {
  begin(&cqrs_order_placement_saga, "o-1");
  event(&cqrs_order_created_event, ORDER_CREATED(""));
  char *user = id_of(0);
  result(user, 401);
  cr_assert_eq(r.out.n_commands, 0);
  cr_assert_str_eq(state(), CQRS_SAGA_FAILED);
  free(user);
}

Test(sagas, a_redelivered_event_emits_nothing_new) {
  begin(&cqrs_order_placement_saga, "o-1");
  event(&cqrs_order_created_event, ORDER_CREATED(""));
  event(&cqrs_order_created_event, ORDER_CREATED(""));
  cr_assert_null(r.out.instance, "nothing to write");
  cr_assert_eq(r.out.n_commands, 0);
}

Test(sagas, a_result_for_a_command_never_emitted_changes_nothing) {
  begin(&cqrs_order_placement_saga, "o-1");
  result("c-unknown", 201); /* before the saga exists (out of order) */
  cr_assert_null(r.out.instance);
  event(&cqrs_order_created_event, ORDER_CREATED(""));
  result("c-unknown", 404);
  cr_assert_null(r.out.instance);
  cr_assert_str_eq(state(), CQRS_SAGA_RUNNING);
}

Test(sagas, command_ids_are_deterministic_and_route_results_to_the_sagas_partition) {
  char first[37];
  for (int32_t p = 0; p < PARTS; p++) {
    begin(&cqrs_order_placement_saga, "o-1");
    r.partition = p;
    event(&cqrs_order_created_event, ORDER_CREATED(""));
    const char *id = r.out.commands[0].command_id;
    char key[128];
    snprintf(key, sizeof key, "%s/%s", TENANT, id);
    cr_assert_eq(rd_kafka_msg_partitioner_murmur2(NULL, key, strlen(key), PARTS, NULL, NULL), p);
    if (p == 0) snprintf(first, sizeof first, "%s", id);
  }
  begin(&cqrs_order_placement_saga, "o-1");
  r.partition = 0;
  event(&cqrs_order_created_event, ORDER_CREATED(""));
  cr_assert_str_eq(r.out.commands[0].command_id, first, "the same saga and step: the same commandId");
}

Test(sagas, a_saga_never_crosses_tenants) {
  char a[37], b[37];
  cqrs_saga_id("acme", "order_placement", "o-1", a);
  cqrs_saga_id("umbrella", "order_placement", "o-1", b);
  cr_assert_str_neq(a, b);
}

/* ---- customer suspension ---- */

#define RECORDED(order) "{\"customerId\":\"k-1\",\"orderId\":\"" order "\",\"recordedAt\":\"" NOW "\"}"
#define SUSPENDED "{\"customerId\":\"k-1\",\"reason\":\"fraud\",\"suspendedAt\":\"" NOW "\"}"

Test(sagas, suspension_cancels_every_recorded_order_once) {
  begin(&cqrs_customer_suspension_saga, "k-1");
  event(&cqrs_customer_order_recorded_event, RECORDED("o-1"));
  cr_assert_eq(r.out.n_commands, 0);
  event(&cqrs_customer_order_recorded_event, RECORDED("o-2"));
  event(&cqrs_customer_order_recorded_event, RECORDED("o-2")); /* a repeat */
  cr_assert_null(r.out.instance);
  event(&cqrs_customer_suspended_event, SUSPENDED);
  cr_assert_eq(r.out.n_commands, 2);
  assert_command(0, "UpdateOrderStatus", "o-1", "Cancelled", "CUSTOMER_SUSPENDED");
  assert_command(1, "UpdateOrderStatus", "o-2", "Cancelled", "CUSTOMER_SUSPENDED");
  char *c1 = id_of(0), *c2 = id_of(1);
  event(&cqrs_customer_suspended_event, SUSPENDED); /* redelivered */
  cr_assert_eq(r.out.n_commands, 0);
  result(c1, 201);
  cr_assert_str_eq(state(), CQRS_SAGA_RUNNING, "one cancel still unanswered");
  result(c2, 422); /* o-2 was Delivered: not open, left as it is */
  cr_assert_str_eq(state(), CQRS_SAGA_COMPLETED);
  free(c1);
  free(c2);
}

Test(sagas, suspension_without_orders_completes) {
  begin(&cqrs_customer_suspension_saga, "k-1");
  event(&cqrs_customer_suspended_event, SUSPENDED);
  cr_assert_eq(r.out.n_commands, 0);
  cr_assert_str_eq(state(), CQRS_SAGA_COMPLETED);
}

/* Out of order (the aggregate never records after a suspension, but a
 * saga must not lose one that arrives while its cancels are in flight). */
Test(sagas, an_order_recorded_after_the_suspension_is_cancelled_too) {
  begin(&cqrs_customer_suspension_saga, "k-1");
  event(&cqrs_customer_order_recorded_event, RECORDED("o-1"));
  event(&cqrs_customer_suspended_event, SUSPENDED);
  event(&cqrs_customer_order_recorded_event, RECORDED("o-3"));
  cr_assert_eq(r.out.n_commands, 1);
  assert_command(0, "UpdateOrderStatus", "o-3", "Cancelled", "CUSTOMER_SUSPENDED");
}

/* ---- processing deadline ---- */

#define DUE "2026-12-02T04:00:00.000Z"
#define STATUS(s) "{\"orderId\":\"o-1\",\"status\":\"" s "\",\"updatedAt\":\"" NOW "\"}"

static int64_t due_ms(void) {
  int64_t ms;
  cr_assert(cqrs_time_parse_rfc3339(DUE, &ms));
  return ms;
}

Test(sagas, deadline_is_set_from_process_by_and_fires_once) {
  begin(&cqrs_order_deadline_saga, "o-1");
  event(&cqrs_order_created_event, ORDER_CREATED(""));
  int64_t due;
  const char *what;
  cr_assert(cqrs_saga_next_deadline(r.instance, &due, &what));
  cr_assert_eq(due, due_ms());
  char *w = strdup(what);
  deadline(due, w);
  cr_assert_eq(r.out.n_commands, 1);
  assert_command(0, "UpdateOrderStatus", "o-1", "Cancelled", "PROCESSING_TIMEOUT");
  bson_t *c = command(0);
  cr_assert_eq(u_i64(c, "expectedVersion"), 1, "only an order still at version 1 (Created)");
  bson_destroy(c);
  cr_assert_not(cqrs_saga_next_deadline(r.instance, &due, &what), "fired: gone");
  char *cancel = id_of(0);
  deadline(due_ms(), w); /* fired again (a restart before the commit was seen) */
  cr_assert_null(r.out.instance);
  cr_assert_eq(r.out.n_commands, 0);
  event(&cqrs_order_status_updated_event, STATUS("Cancelled")); /* our own cancel's event, before its result */
  cr_assert_null(r.out.instance, "the result decides");
  result(cancel, 201);
  cr_assert_str_eq(state(), CQRS_SAGA_COMPENSATED);
  free(cancel);
  free(w);
}

Test(sagas, an_order_that_moved_on_is_left_alone) {
  begin(&cqrs_order_deadline_saga, "o-1");
  event(&cqrs_order_created_event, ORDER_CREATED(""));
  event(&cqrs_order_status_updated_event, STATUS("Processing"));
  cr_assert_str_eq(state(), CQRS_SAGA_COMPLETED);
  int64_t due;
  const char *what;
  cr_assert_not(cqrs_saga_next_deadline(r.instance, &due, &what), "the deadline is dropped");
  deadline(due_ms(), "cancel-unprocessed");
  cr_assert_eq(r.out.n_commands, 0);
}

Test(sagas, an_order_that_moved_on_after_the_deadline_fell_due_is_refused_and_left_alone) {
  begin(&cqrs_order_deadline_saga, "o-1");
  event(&cqrs_order_created_event, ORDER_CREATED(""));
  deadline(due_ms(), "cancel-unprocessed");
  char *cancel = id_of(0);
  result(cancel, 409); /* expectedVersion 1, but the order is at 2 */
  cr_assert_str_eq(state(), CQRS_SAGA_COMPLETED);
  free(cancel);
}

Test(sagas, a_status_update_before_the_creation_ends_the_deadline_saga) {
  begin(&cqrs_order_deadline_saga, "o-1");
  event(&cqrs_order_status_updated_event, STATUS("Processing"));
  cr_assert_str_eq(state(), CQRS_SAGA_COMPLETED);
  event(&cqrs_order_created_event, ORDER_CREATED(""));
  cr_assert_null(r.out.instance, "a finished saga ignores events");
}

Test(sagas, an_order_without_process_by_gets_no_deadline) {
  begin(&cqrs_order_deadline_saga, "o-1");
  event(&cqrs_order_created_event, "{\"orderId\":\"o-1\",\"userId\":\"u-1\",\"items\":[{\"product\":\"Pen\","
                                    "\"quantity\":1,\"price\":1.0}],\"totalAmount\":1.0,\"currency\":\"USD\",\"createdAt\":\"" NOW "\"}");
  cr_assert_str_eq(state(), CQRS_SAGA_COMPLETED);
}

/* ---- the store ---- */

Test(sagas, the_store_stages_until_commit_and_indexes_pending_steps) {
  begin(&cqrs_order_placement_saga, "o-1");
  event(&cqrs_order_created_event, ORDER_CREATED(""));
  char *id = id_of(0), sid[37], key[128];
  snprintf(sid, sizeof sid, "%s", cqrs_saga_str(r.instance, "sagaId"));
  snprintf(key, sizeof key, "%s/%s", TENANT, id);
  cqrs_saga_store_t *s = cqrs_saga_store_new();
  cqrs_saga_store_stage(s, bson_copy(r.instance));
  cr_assert_not_null(cqrs_saga_store_get(s, sid));
  cqrs_saga_store_abort(s);
  cr_assert_null(cqrs_saga_store_get(s, sid), "aborted: gone");
  cqrs_saga_store_stage(s, bson_copy(r.instance));
  cr_assert_null(cqrs_saga_store_awaiting(s, key), "not before commit");
  cqrs_saga_store_commit(s);
  cr_assert_str_eq(cqrs_saga_store_awaiting(s, key), sid);
  result(id, 201);
  cqrs_saga_store_stage(s, bson_copy(r.instance));
  cqrs_saga_store_commit(s);
  cr_assert_null(cqrs_saga_store_awaiting(s, key), "answered: no longer awaited");
  const bson_t *kept = cqrs_saga_store_get(s, sid);
  cr_assert_str_eq(cqrs_saga_str(kept, "state"), CQRS_SAGA_COMPLETED);
  cr_assert_not(u_has(kept, "steps"), "a finished saga is kept slim in memory");
  event(&cqrs_order_created_event, ORDER_CREATED("")); /* redelivered after it finished */
  cqrs_saga_ctx_t ctx = {TENANT, "o-1", NOW, 2, PARTS};
  cqrs_saga_outcome_t again;
  bson_t *data = u_parse(ORDER_CREATED(""));
  cqrs_event_data_t decoded;
  cr_assert(cqrs_order_created_event.decode(data, &decoded, NULL));
  cqrs_saga_input_t in = {.kind = CQRS_SAGA_EVENT, .event = &cqrs_order_created_event, .decoded = &decoded,
                          .aggregate_id = "o-1"};
  cqrs_saga_run(&cqrs_order_placement_saga, kept, &ctx, &in, NULL, 0, &again);
  cr_assert_null(again.instance, "the slim instance still ignores a redelivered event");
  cr_assert_eq(again.n_commands, 0);
  cqrs_saga_outcome_cleanup(&again);
  bson_destroy(data);
  cqrs_saga_store_drop_partition(s, 2);
  cr_assert_eq(cqrs_saga_store_size(s), 0);
  cqrs_saga_store_destroy(s);
  free(id);
}

Test(sagas, the_store_lists_due_deadlines) {
  begin(&cqrs_order_deadline_saga, "o-1");
  event(&cqrs_order_created_event, ORDER_CREATED(""));
  cqrs_saga_store_t *s = cqrs_saga_store_new();
  cqrs_saga_store_put(s, bson_copy(r.instance));
  cqrs_saga_due_t due[4];
  int64_t earliest;
  cr_assert_eq(cqrs_saga_store_due(s, due_ms() - 1, due, 4, &earliest), 0);
  cr_assert_eq(earliest, due_ms());
  cr_assert_eq(cqrs_saga_store_due(s, due_ms(), due, 4, &earliest), 1);
  cr_assert_eq(due[0].due_ms, due_ms());
  cr_assert_str_eq(due[0].saga_id, cqrs_saga_str(r.instance, "sagaId"));
  cqrs_saga_store_destroy(s);
}

Test(sagas, the_store_gives_the_earliest_due_deadlines_first_when_more_are_due_than_asked) {
  cqrs_saga_store_t *s = cqrs_saga_store_new();
  /* six orders due at 04:00:05, 04:00:04, ... 04:00:00, put in that order */
  for (int i = 0; i < 6; i++) {
    char key[16], json[512];
    snprintf(key, sizeof key, "o-%d", i);
    snprintf(json, sizeof json,
             "{\"orderId\":\"%s\",\"userId\":\"u-1\",\"items\":[{\"product\":\"Pen\",\"quantity\":1,\"price\":1.0}],"
             "\"totalAmount\":1.0,\"currency\":\"USD\",\"createdAt\":\"2026-12-02T02:00:00.000Z\","
             "\"processBy\":\"2026-12-02T04:00:0%d.000Z\"}",
             key, 5 - i);
    begin(&cqrs_order_deadline_saga, key);
    event(&cqrs_order_created_event, json);
    cqrs_saga_store_put(s, bson_copy(r.instance));
  }
  int64_t first, far;
  cr_assert(cqrs_time_parse_rfc3339("2026-12-02T04:00:00.000Z", &first));
  cr_assert(cqrs_time_parse_rfc3339("2026-12-03T00:00:00.000Z", &far));
  cqrs_saga_due_t due[3];
  int64_t earliest;
  cr_assert_eq(cqrs_saga_store_due(s, far, due, 3, &earliest), 3);
  cr_expect_eq(earliest, first);
  for (int i = 0; i < 3; i++) /* 04:00:00, :01, :02: the three earliest, earliest first */
    cr_expect_eq(due[i].due_ms, first + 1000 * i, "due[%d] is %lld", i, (long long)due[i].due_ms);
  cqrs_saga_store_destroy(s);
}
