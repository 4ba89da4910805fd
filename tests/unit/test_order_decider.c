/* The Order aggregate (command-svc/deciders/order.c through decider.h):
 * validation, the status machine, decide and evolve, and a few commands
 * through the processor. Commands come from JSON as on the wire. */
#include "decider.h"
#include "cqrs/json.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

static const char NOW[] = "2026-03-01T10:00:00.000Z";
static const char LATER[] = "2026-03-02T11:00:00.000Z";

static const char *const STATUSES[] = {"Created", "Processing", "Shipped", "Delivered", "Cancelled"};
#define N_STATUSES 5

#define HARNESS_DECIDER cqrs_order_decider
#define HARNESS_AGGREGATE_ID "o-1"
#include "decider_harness.h"

TestSuite(order_decider, .fini = harness_teardown);

/* A CreateOrder with the given items (JSON array text) and the rest valid. */
static void assert_items_invalid(const char *items, const char *field) {
  char json[1024];
  snprintf(json, sizeof json,
           "{\"commandType\":\"CreateOrder\",\"userId\":\"u-1\",\"totalAmount\":1,\"items\":%s}", items);
  assert_invalid(json, field);
}

static void assert_items_valid(const char *items) {
  char json[1024];
  snprintf(json, sizeof json,
           "{\"commandType\":\"CreateOrder\",\"userId\":\"u-1\",\"totalAmount\":1,\"items\":%s}", items);
  assert_valid(json);
}

/* The state of o-1 created at NOW, then moved to status (directly, as a
 * stored state would say). */
static bson_t *state_with_status(const char *status) {
  bson_t *data = BCON_NEW("orderId", BCON_UTF8("o-1"), "userId", BCON_UTF8("u-1"), "items", "[", "{",
                          "product", BCON_UTF8("Pen"), "quantity", BCON_INT64(2), "price", BCON_DOUBLE(1.5),
                          "}", "]", "totalAmount", BCON_DOUBLE(3.0), "currency", BCON_UTF8("EUR"),
                          "createdAt", BCON_UTF8(NOW));
  bson_t *s = bson_new();
  d->evolve(NULL, "OrderCreated", data, s);
  bson_destroy(data);
  if (strcmp(status, "Created") != 0) {
    data = BCON_NEW("orderId", BCON_UTF8("o-1"), "status", BCON_UTF8(status), "previousStatus",
                    BCON_UTF8("Created"), "updatedAt", BCON_UTF8(NOW));
    bson_t *next = bson_new();
    d->evolve(s, "OrderStatusUpdated", data, next);
    bson_destroy(data);
    bson_destroy(s);
    s = next;
  }
  return s;
}

/* n copies of c in a static buffer (no heap: a failed assertion leaks nothing). */
static char *repeat(char c, size_t n) {
  static char buf[512];
  cr_assert_lt(n, sizeof buf);
  memset(buf, c, n);
  buf[n] = '\0';
  return buf;
}

static void status_command(const char *status) {
  char json[256];
  snprintf(json, sizeof json, "{\"commandType\":\"UpdateOrderStatus\",\"status\":\"%s\"}", status);
  assert_valid(json);
}

Test(order_decider, registered_commands) {
  const cqrs_command_spec_t *spec = NULL;
  cr_assert_eq(cqrs_decider_for_command("CreateOrder", &spec), d);
  cr_assert(spec->creates);
  cr_assert_eq(cqrs_decider_for_command("UpdateOrderStatus", &spec), d);
  cr_assert_not(spec->creates);
  cr_assert_null(cqrs_decider_for_command("CancelOrder", &spec));
  cr_assert_eq(cqrs_decider_for_aggregate("order"), d);
  cr_assert_str_eq(d->aggregate_type, "order");
  cr_assert_str_eq(d->id_alias, "orderId");
}

Test(order_decider, create_valid) {
  assert_valid("{\"commandType\":\"CreateOrder\",\"userId\":\"u-1\",\"totalAmount\":25.5,"
               "\"items\":[{\"product\":\"Pen\",\"quantity\":3,\"price\":1.5},"
               "{\"product\":\"Book\",\"quantity\":1,\"price\":21}]}");
  assert_valid("{\"commandType\":\"CreateOrder\",\"payload\":{\"userId\":\"u-1\",\"totalAmount\":0,"
               "\"items\":[{\"product\":\"Free sample\",\"quantity\":1,\"price\":0}]}}");
  assert_valid("{\"commandType\":\"CreateOrder\",\"userId\":\"u-1\",\"totalAmount\":2,"
               "\"items\":[{\"product\":\"Pen\",\"quantity\":2.0,\"price\":1,\"note\":\"gift\"}]}");
}

Test(order_decider, create_requires_user_id) {
  const char *items = "\"items\":[{\"product\":\"Pen\",\"quantity\":1,\"price\":1}],\"totalAmount\":1";
  char json[512];
  snprintf(json, sizeof json, "{\"commandType\":\"CreateOrder\",%s}", items);
  assert_invalid(json, "userId");
  snprintf(json, sizeof json, "{\"commandType\":\"CreateOrder\",\"userId\":\"\",%s}", items);
  assert_invalid(json, "userId");
  snprintf(json, sizeof json, "{\"commandType\":\"CreateOrder\",\"userId\":null,%s}", items);
  assert_invalid(json, "userId");
  snprintf(json, sizeof json, "{\"commandType\":\"CreateOrder\",\"userId\":7,%s}", items);
  assert_invalid(json, "userId");
}

Test(order_decider, create_user_id_too_long) {
  char json[512];
  snprintf(json, sizeof json,
           "{\"commandType\":\"CreateOrder\",\"userId\":\"%s\",\"totalAmount\":1,"
           "\"items\":[{\"product\":\"Pen\",\"quantity\":1,\"price\":1}]}",
           repeat('u', 128));
  assert_valid(json);
  snprintf(json, sizeof json,
           "{\"commandType\":\"CreateOrder\",\"userId\":\"%s\",\"totalAmount\":1,"
           "\"items\":[{\"product\":\"Pen\",\"quantity\":1,\"price\":1}]}",
           repeat('u', 129));
  assert_invalid(json, "userId");
}

Test(order_decider, create_requires_items_array) {
  assert_invalid("{\"commandType\":\"CreateOrder\",\"userId\":\"u-1\",\"totalAmount\":1}", "items");
  assert_items_invalid("null", "items");
  assert_items_invalid("[]", "items");
  assert_items_invalid("{\"product\":\"Pen\",\"quantity\":1,\"price\":1}", "items");
  assert_items_invalid("\"Pen\"", "items");
}

Test(order_decider, create_item_must_be_object) {
  assert_items_invalid("[\"Pen\"]", "items[0]");
  assert_items_invalid("[{\"product\":\"Pen\",\"quantity\":1,\"price\":1},null]", "items[1]");
  assert_items_invalid("[[1]]", "items[0]");
}

Test(order_decider, create_item_product) {
  assert_items_invalid("[{\"quantity\":1,\"price\":1}]", "items[0].product");
  assert_items_invalid("[{\"product\":\"\",\"quantity\":1,\"price\":1}]", "items[0].product");
  assert_items_invalid("[{\"product\":3,\"quantity\":1,\"price\":1}]", "items[0].product");
  char items[512];
  snprintf(items, sizeof items, "[{\"product\":\"%s\",\"quantity\":1,\"price\":1}]", repeat('p', 200));
  assert_items_valid(items);
  snprintf(items, sizeof items, "[{\"product\":\"%s\",\"quantity\":1,\"price\":1}]", repeat('p', 201));
  assert_items_invalid(items, "items[0].product");
}

Test(order_decider, create_item_quantity) {
  const char *ok = "{\"product\":\"Pen\",\"quantity\":1,\"price\":1}";
  char items[512];
  const char *bad[] = {"0", "-1", "1.5", "\"2\"", "null", "true"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(items, sizeof items, "[%s,%s,{\"product\":\"Cup\",\"quantity\":%s,\"price\":1}]", ok, ok, bad[i]);
    assert_items_invalid(items, "items[2].quantity");
  }
  assert_items_invalid("[{\"product\":\"Pen\",\"price\":1}]", "items[0].quantity");
}

Test(order_decider, create_item_price) {
  assert_items_invalid("[{\"product\":\"Pen\",\"quantity\":1}]", "items[0].price");
  assert_items_invalid("[{\"product\":\"Pen\",\"quantity\":1,\"price\":-0.01}]", "items[0].price");
  assert_items_invalid("[{\"product\":\"Pen\",\"quantity\":1,\"price\":\"1\"}]", "items[0].price");
  assert_items_invalid("[{\"product\":\"Pen\",\"quantity\":1,\"price\":{\"$numberDouble\":\"NaN\"}}]",
                       "items[0].price");
  assert_items_invalid("[{\"product\":\"Pen\",\"quantity\":1,\"price\":{\"$numberDouble\":\"Infinity\"}}]",
                       "items[0].price");
  assert_items_valid("[{\"product\":\"Pen\",\"quantity\":1,\"price\":0}]");
  assert_items_valid("[{\"product\":\"Pen\",\"quantity\":1,\"price\":0.99}]");
}

/* The first bad item is the one named. */
Test(order_decider, create_first_bad_item_named) {
  assert_items_invalid("[{\"product\":\"Pen\",\"quantity\":0,\"price\":1},"
                       "{\"product\":\"\",\"quantity\":1,\"price\":1}]",
                       "items[0].quantity");
}

static char *items_json(size_t n) {
  const char *one = "{\"product\":\"P\",\"quantity\":1,\"price\":1},";
  size_t len = strlen(one);
  char *s = malloc(n * len + 64);
  char *p = s;
  *p++ = '[';
  for (size_t i = 0; i < n; i++, p += len) memcpy(p, one, len);
  p[-1] = ']';
  *p = '\0';
  return s;
}

Test(order_decider, create_items_limit) {
  char *items = items_json(1000);
  size_t cap = strlen(items) + 128;
  char *json = malloc(cap);
  snprintf(json, cap, "{\"commandType\":\"CreateOrder\",\"userId\":\"u\",\"totalAmount\":1,\"items\":%s}", items);
  bool ok = validate(json);
  free(items);
  items = items_json(1001);
  free(json);
  cap = strlen(items) + 128;
  json = malloc(cap);
  snprintf(json, cap, "{\"commandType\":\"CreateOrder\",\"userId\":\"u\",\"totalAmount\":1,\"items\":%s}", items);
  bool over = validate(json);
  free(items);
  free(json);
  cr_assert(ok, "1000 items are allowed");
  cr_assert_not(over, "1001 items are not");
  cr_assert_str_eq(err.field, "items");
}

Test(order_decider, create_total_amount) {
  const char *base = "{\"commandType\":\"CreateOrder\",\"userId\":\"u-1\","
                     "\"items\":[{\"product\":\"Pen\",\"quantity\":1,\"price\":1}]";
  char json[512];
  const char *bad[] = {"-1", "\"10\"", "null", "[1]", "{\"$numberDouble\":\"-Infinity\"}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(json, sizeof json, "%s,\"totalAmount\":%s}", base, bad[i]);
    assert_invalid(json, "totalAmount");
  }
  snprintf(json, sizeof json, "%s}", base);
  assert_invalid(json, "totalAmount");
  snprintf(json, sizeof json, "%s,\"totalAmount\":0}", base);
  assert_valid(json);
}

Test(order_decider, alias_must_match_aggregate_id) {
  assert_valid("{\"commandType\":\"UpdateOrderStatus\",\"orderId\":\"o-1\",\"status\":\"Shipped\"}");
  assert_valid("{\"commandType\":\"UpdateOrderStatus\",\"orderId\":\"\",\"status\":\"Shipped\"}");
  assert_invalid("{\"commandType\":\"UpdateOrderStatus\",\"orderId\":\"o-2\",\"status\":\"Shipped\"}", "orderId");
  assert_invalid("{\"commandType\":\"UpdateOrderStatus\",\"orderId\":5,\"status\":\"Shipped\"}", "orderId");
}

Test(order_decider, update_status_values) {
  for (size_t i = 0; i < N_STATUSES; i++) status_command(STATUSES[i]);
  assert_invalid("{\"commandType\":\"UpdateOrderStatus\"}", "status");
  assert_invalid("{\"commandType\":\"UpdateOrderStatus\",\"status\":\"\"}", "status");
  assert_invalid("{\"commandType\":\"UpdateOrderStatus\",\"status\":null}", "status");
  assert_invalid("{\"commandType\":\"UpdateOrderStatus\",\"status\":1}", "status");
  assert_invalid("{\"commandType\":\"UpdateOrderStatus\",\"status\":\"Returned\"}", "status");
  assert_invalid("{\"commandType\":\"UpdateOrderStatus\",\"status\":\"shipped\"}", "status");
  assert_invalid("{\"commandType\":\"UpdateOrderStatus\",\"status\":\"SHIPPED\"}", "status");
}

Test(order_decider, decide_create) {
  assert_valid("{\"commandType\":\"CreateOrder\",\"userId\":\"u-1\",\"totalAmount\":25.5,"
               "\"items\":[{\"product\":\"Pen\",\"quantity\":3,\"price\":1.5,\"note\":\"x\"},"
               "{\"product\":\"Book\",\"quantity\":1,\"price\":21}]}");
  cr_assert(d->decide(NULL, &cmd, NOW, &dec, &err), "%s", err.message);
  cr_assert_eq(dec.n_events, 1);
  cr_assert_str_eq(dec.events[0].type, "OrderCreated");
  const bson_t *data = &dec.events[0].data;
  cr_assert_eq(u_count(data), 6, "orderId, userId, items, totalAmount, currency, createdAt");
  cr_assert_str_eq(u_str(data, "currency"), "USD", "no currency: the default");
  cr_assert_str_eq(u_str(data, "orderId"), "o-1");
  cr_assert_str_eq(u_str(data, "userId"), "u-1");
  cr_assert_str_eq(u_str(data, "createdAt"), NOW);
  bson_t items, item;
  bool present;
  cr_assert(cqrs_json_get_array(data, "items", NULL, true, &items, &present, NULL));
  cr_assert_eq(u_count(&items), 2);
  cr_assert(cqrs_json_get_object(&items, "0", NULL, true, &item, &present, NULL));
  cr_assert_eq(u_count(&item), 3, "product, quantity, price only");
  cr_assert_str_eq(u_str(data, "items.0.product"), "Pen");
  cr_assert_eq(u_i64(data, "items.0.quantity"), 3);
  cr_assert_str_eq(u_str(data, "items.1.product"), "Book");
  cr_assert_eq(u_i64(data, "items.1.quantity"), 1);
  double price, total;
  cr_assert(cqrs_json_get_number(&item, "price", NULL, true, &price, &present, NULL));
  cr_assert_float_eq(price, 1.5, 1e-9);
  cr_assert(cqrs_json_get_number(data, "totalAmount", NULL, true, &total, &present, NULL));
  cr_assert_float_eq(total, 25.5, 1e-9);
}

/* currency: optional, an ISO 4217 code (three capital letters), else a 400
 * naming it; the event carries the one given. */
Test(order_decider, create_currency) {
  const char *head = "{\"commandType\":\"CreateOrder\",\"userId\":\"u-1\",\"totalAmount\":3,"
                     "\"items\":[{\"product\":\"Pen\",\"quantity\":3,\"price\":1}]";
  char json[512];
  static const char *const bad[] = {"\"eur\"", "\"EU\"", "\"EURO\"", "\"\"", "\"E1R\"", "7", "[\"EUR\"]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(json, sizeof json, "%s,\"currency\":%s}", head, bad[i]);
    assert_invalid(json, "currency");
  }
  snprintf(json, sizeof json, "%s,\"currency\":\"EUR\"}", head);
  assert_valid(json);
  cr_assert(d->decide(NULL, &cmd, NOW, &dec, &err), "%s", err.message);
  cr_assert_str_eq(u_str(&dec.events[0].data, "currency"), "EUR");
  cr_assert(cqrs_event_validate(&cqrs_order_created_event, &dec.events[0].data, &err), "%s", err.message);
  bson_t *next = bson_new();
  d->evolve(NULL, "OrderCreated", &dec.events[0].data, next);
  cr_assert_str_eq(u_str(next, "currency"), "EUR", "the state keeps it");
  bson_destroy(next);
}

Test(order_decider, decide_create_writes_valid_json) {
  assert_valid("{\"commandType\":\"CreateOrder\",\"userId\":\"u-1\",\"totalAmount\":3,"
               "\"items\":[{\"product\":\"Pen\",\"quantity\":3,\"price\":1}]}");
  cr_assert(d->decide(NULL, &cmd, NOW, &dec, &err));
  char *json = cqrs_json_write(&dec.events[0].data, NULL);
  bson_t *back = u_parse(json);
  bson_free(json);
  cr_assert_eq(u_i64(back, "items.0.quantity"), 3, "quantity stays an integer on the wire");
  bson_destroy(back);
}

/* Every from -> to pair of the five statuses: exactly the six transitions of
 * the contract are accepted, every other one is a 422 naming both. */
Test(order_decider, status_machine_table) {
  static const bool allowed[N_STATUSES][N_STATUSES] = {
      /*              Created Processing Shipped Delivered Cancelled */
      /* Created    */ {false, true, false, false, true},
      /* Processing */ {false, false, true, false, true},
      /* Shipped    */ {false, false, false, true, true},
      /* Delivered  */ {false, false, false, false, false},
      /* Cancelled  */ {false, false, false, false, false},
  };
  size_t accepted = 0;
  for (size_t from = 0; from < N_STATUSES; from++) {
    for (size_t to = 0; to < N_STATUSES; to++) {
      bson_t *s = state_with_status(STATUSES[from]);
      cr_assert_str_eq(u_str(s, "status"), STATUSES[from]);
      status_command(STATUSES[to]);
      cqrs_decision_cleanup(&dec);
      cqrs_error_clear(&err);
      bool ok = d->decide(s, &cmd, LATER, &dec, &err);
      bson_destroy(s);
      if (allowed[from][to]) {
        accepted++;
        cr_assert(ok, "%s -> %s refused: %s", STATUSES[from], STATUSES[to], err.message);
        cr_assert_eq(dec.n_events, 1);
        cr_assert_str_eq(dec.events[0].type, "OrderStatusUpdated");
        const bson_t *data = &dec.events[0].data;
        cr_assert_eq(u_count(data), 4, "orderId, status, previousStatus, updatedAt");
        cr_assert_str_eq(u_str(data, "orderId"), "o-1");
        cr_assert_str_eq(u_str(data, "status"), STATUSES[to]);
        cr_assert_str_eq(u_str(data, "previousStatus"), STATUSES[from]);
        cr_assert_str_eq(u_str(data, "updatedAt"), LATER);
      } else {
        cr_assert_not(ok, "%s -> %s accepted", STATUSES[from], STATUSES[to]);
        cr_assert_eq(err.code, CQRS_ERR_REFUSED, "%s -> %s", STATUSES[from], STATUSES[to]);
        cr_assert_eq(cqrs_error_http_status(err.code), 422);
        cr_assert_eq(dec.n_events, 0, "a refusal decides no event");
        cr_assert_not_null(strstr(err.message, STATUSES[from]), "names the current status: %s", err.message);
        cr_assert_not_null(strstr(err.message, STATUSES[to]), "names the requested status: %s", err.message);
      }
    }
  }
  cr_assert_eq(accepted, 6);
}

Test(order_decider, evolve_created) {
  state = state_with_status("Created");
  cr_assert_eq(u_count(state), 8, "orderId, userId, items, totalAmount, currency, status, createdAt, updatedAt");
  cr_assert_str_eq(u_str(state, "currency"), "EUR");
  cr_assert_str_eq(u_str(state, "orderId"), "o-1");
  cr_assert_str_eq(u_str(state, "userId"), "u-1");
  cr_assert_str_eq(u_str(state, "status"), "Created");
  cr_assert_str_eq(u_str(state, "items.0.product"), "Pen");
  cr_assert_eq(u_i64(state, "items.0.quantity"), 2);
  cr_assert(u_has(state, "totalAmount"));
  cr_assert_str_eq(u_str(state, "createdAt"), NOW);
  cr_assert_str_eq(u_str(state, "updatedAt"), NOW);
}

Test(order_decider, evolve_status_updated) {
  state = state_with_status("Created");
  bson_t *data = BCON_NEW("orderId", BCON_UTF8("o-1"), "status", BCON_UTF8("Processing"), "previousStatus",
                          BCON_UTF8("Created"), "updatedAt", BCON_UTF8(LATER));
  bson_t *next = bson_new();
  d->evolve(state, "OrderStatusUpdated", data, next);
  bson_destroy(data);
  cr_assert_eq(u_count(next), 8);
  cr_assert_str_eq(u_str(next, "currency"), "EUR", "currency is kept");
  cr_assert_str_eq(u_str(next, "status"), "Processing");
  cr_assert_str_eq(u_str(next, "updatedAt"), LATER);
  cr_assert_str_eq(u_str(next, "createdAt"), NOW, "createdAt is kept");
  cr_assert_str_eq(u_str(next, "orderId"), "o-1");
  cr_assert_str_eq(u_str(next, "userId"), "u-1");
  cr_assert_str_eq(u_str(next, "items.0.product"), "Pen");
  double total;
  bool present;
  cr_assert(cqrs_json_get_number(next, "totalAmount", NULL, true, &total, &present, NULL));
  cr_assert_float_eq(total, 3.0, 1e-9);
  bson_destroy(next);
}

Test(order_decider, evolve_unknown_event_keeps_state) {
  state = state_with_status("Shipped");
  bson_t *data = BCON_NEW("x", BCON_INT32(1));
  bson_t *next = bson_new();
  d->evolve(state, "OrderRefunded", data, next);
  cr_assert(bson_equal(state, next));
  bson_destroy(data);
  bson_destroy(next);
}

/* decide then evolve through the whole happy path. */
Test(order_decider, decide_then_evolve_lifecycle) {
  assert_valid("{\"commandType\":\"CreateOrder\",\"userId\":\"u-1\",\"totalAmount\":3,"
               "\"items\":[{\"product\":\"Pen\",\"quantity\":2,\"price\":1.5}]}");
  cr_assert(d->decide(NULL, &cmd, NOW, &dec, &err));
  state = bson_new();
  d->evolve(NULL, dec.events[0].type, &dec.events[0].data, state);
  cr_assert_str_eq(u_str(state, "status"), "Created");
  const char *path[] = {"Processing", "Shipped", "Delivered"};
  for (size_t i = 0; i < 3; i++) {
    cqrs_decision_cleanup(&dec);
    status_command(path[i]);
    cr_assert(d->decide(state, &cmd, LATER, &dec, &err), "%s: %s", path[i], err.message);
    bson_t *next = bson_new();
    d->evolve(state, dec.events[0].type, &dec.events[0].data, next);
    bson_destroy(state);
    state = next;
    cr_assert_str_eq(u_str(state, "status"), path[i]);
  }
  cqrs_decision_cleanup(&dec);
  status_command("Cancelled");
  cr_assert_not(d->decide(state, &cmd, LATER, &dec, &err), "a delivered order cannot be cancelled");
  cr_assert_eq(err.code, CQRS_ERR_REFUSED);
}

/* Through the processor ------------------------------------------------ */

#include "processor_harness.h"

TestSuite(order_processor, .init = p_setup, .fini = p_teardown);

Test(order_processor, create_with_order_id_and_walk_the_machine) {
  process("{\"commandType\":\"CreateOrder\",\"commandId\":\"c-1\",\"orderId\":\"o-42\",\"userId\":\"u-1\","
          "\"totalAmount\":3,\"items\":[{\"product\":\"Pen\",\"quantity\":2,\"price\":1.5}]}");
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_str_eq(u_str(result, "aggregateId"), "o-42", "orderId is the aggregateId");
  cr_assert_str_eq(out.events[0].aggregate_type, "order");
  cr_assert_str_eq(u_str(out.events[0].data, "orderId"), "o-42");

  process("{\"commandType\":\"UpdateOrderStatus\",\"commandId\":\"c-2\",\"aggregateId\":\"o-42\","
          "\"expectedVersion\":1,\"status\":\"Shipped\"}");
  cr_assert_eq(out.status, 422, "skipping Processing: %s", out.result_json);
  cr_assert_eq(out.n_events, 0);

  process("{\"commandType\":\"UpdateOrderStatus\",\"commandId\":\"c-3\",\"orderId\":\"o-42\","
          "\"status\":\"Processing\"}");
  cr_assert_eq(out.status, 201, "%s", out.result_json);
  cr_assert_eq(u_i64(result, "version"), 2);
  cr_assert_str_eq(u_str(result, "eventType"), "OrderStatusUpdated");
  cr_assert_str_eq(u_str(cqrs_aggregate_store_get(store, "default/o-42")->state, "status"), "Processing");

  process("{\"commandType\":\"UpdateOrderStatus\",\"commandId\":\"c-4\",\"aggregateId\":\"o-42\","
          "\"status\":\"Processing\"}");
  cr_assert_eq(out.status, 422, "same status: %s", out.result_json);
}

Test(order_processor, field_errors_are_400) {
  process("{\"commandType\":\"CreateOrder\",\"commandId\":\"c-1\",\"userId\":\"u-1\",\"totalAmount\":3,"
          "\"items\":[{\"product\":\"Pen\",\"quantity\":1,\"price\":1},{\"product\":\"Ink\",\"quantity\":-2,"
          "\"price\":1}]}");
  cr_assert_eq(out.status, 400, "%s", out.result_json);
  cr_assert_str_eq(u_str(result, "field"), "items[1].quantity");
  process("{\"commandType\":\"UpdateOrderStatus\",\"commandId\":\"c-2\",\"aggregateId\":\"o-1\","
          "\"status\":\"Lost\"}");
  cr_assert_eq(out.status, 400, "%s", out.result_json);
  cr_assert_str_eq(u_str(result, "field"), "status");
}

Test(order_processor, update_of_missing_order_is_404) {
  process("{\"commandType\":\"UpdateOrderStatus\",\"commandId\":\"c-1\",\"aggregateId\":\"ghost\","
          "\"status\":\"Processing\"}");
  cr_assert_eq(out.status, 404, "%s", out.result_json);
}

/* ---- customerId, processBy and reason (the sagas' additions) ---- */

#define CREATE "{\"commandType\":\"CreateOrder\",\"userId\":\"u-1\",\"totalAmount\":1," \
               "\"items\":[{\"product\":\"Pen\",\"quantity\":1,\"price\":1}]"

Test(order_decider, create_takes_optional_customer_and_process_by) {
  assert_valid(CREATE ",\"customerId\":\"k-1\",\"processBy\":\"2026-12-03T00:00:00Z\"}");
  assert_valid(CREATE ",\"processBy\":\"2026-12-03T01:00:00.5+01:00\"}");
  assert_invalid(CREATE ",\"processBy\":\"tomorrow\"}", "processBy");
  assert_invalid(CREATE ",\"processBy\":42}", "processBy");
  assert_invalid(CREATE ",\"customerId\":7}", "customerId");
}

Test(order_decider, process_by_defaults_to_now_plus_the_timeout) {
  cqrs_decider_settings_t settings = {.order_processing_timeout_s = 3600};
  assert_valid(CREATE ",\"customerId\":\"k-1\"}");
  d->complete(&cmd, "2026-12-02T03:00:00.000Z", &settings);
  cqrs_error_clear(&err);
  cr_assert(d->decide(NULL, &cmd, "2026-12-02T03:00:00.000Z", &dec, &err), "%s", err.message);
  cr_assert_str_eq(u_str(&dec.events[0].data, "processBy"), "2026-12-02T04:00:00.000Z");
  cr_assert_str_eq(u_str(&dec.events[0].data, "customerId"), "k-1");
  cqrs_decision_cleanup(&dec);
  assert_valid(CREATE ",\"processBy\":\"2026-12-05T00:00:00.000Z\"}");
  d->complete(&cmd, "2026-12-02T03:00:00.000Z", &settings);
  cr_assert(d->decide(NULL, &cmd, "2026-12-02T03:00:00.000Z", &dec, &err), "%s", err.message);
  cr_assert_str_eq(u_str(&dec.events[0].data, "processBy"), "2026-12-05T00:00:00.000Z", "a given one is kept");
  cr_assert_not(u_has(&dec.events[0].data, "customerId"), "absent when not given");
}

Test(order_decider, a_cancel_carries_its_reason) {
  state = state_with_status("Created");
  assert_valid("{\"commandType\":\"UpdateOrderStatus\",\"status\":\"Cancelled\",\"reason\":\"USER_NOT_FOUND\"}");
  cqrs_error_clear(&err);
  cr_assert(d->decide(state, &cmd, NOW, &dec, &err), "%s", err.message);
  cr_assert_str_eq(u_str(&dec.events[0].data, "reason"), "USER_NOT_FOUND");
  assert_invalid("{\"commandType\":\"UpdateOrderStatus\",\"status\":\"Cancelled\",\"reason\":5}", "reason");
}
