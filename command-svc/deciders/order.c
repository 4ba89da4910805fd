/* The Order aggregate: CreateOrder, UpdateOrderStatus -> OrderCreated,
 * OrderStatusUpdated. State: {orderId, userId, items, totalAmount, currency,
 * status, createdAt, updatedAt, customerId?, processBy?} (currency absent in a
 * state written before currencies, restored from aggregate-state). */
#include "../decider.h"
#include "cqrs/json.h"
#include "cqrs/util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define USER_ID_MAX 128
#define PRODUCT_MAX_CHARS 200
#define ITEMS_MAX 1000
#define REASON_MAX_CHARS 200

static const cqrs_command_spec_t commands[] = {
    {"CreateOrder", true},
    {"UpdateOrderStatus", false},
};

/* The status machine, over the contract's cqrs_order_statuses: their order
 * is the happy path; Cancelled is the side exit. */
enum { CREATED, PROCESSING, SHIPPED, DELIVERED, CANCELLED, N_STATUSES };

/* The index of s in cqrs_order_statuses, or -1. Exact case: the contract names them so. */
static int status_index(const char *s) {
  for (int i = 0; i < N_STATUSES; i++)
    if (strcmp(cqrs_order_statuses[i], s) == 0) return i;
  return -1;
}

/* One step forward on the happy path, or Cancelled from any state that is not
 * final. A same-status request is not a transition. */
static bool transition_allowed(int from, int to) {
  if (from < 0 || from == DELIVERED || from == CANCELLED) return false;
  return to == CANCELLED || to == from + 1;
}

/* The alias, when given and not empty, must name the aggregate the command
 * goes to: a body saying aggregateId A and orderId B is ambiguous. */
static bool check_alias(const cqrs_command_t *cmd, cqrs_error_t *err) {
  const char *alias;
  if (!cqrs_json_get_string(&cmd->fields, "orderId", NULL, false, CQRS_ID_MAX, &alias, err)) return false;
  if (alias && *alias && strcmp(alias, cmd->aggregate_id) != 0) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "orderId", "orderId differs from aggregateId");
    return false;
  }
  return true;
}

/* A JSON number that is finite and >= 0 (extended JSON can carry NaN and
 * Infinity, which no amount is). */
static bool get_amount(const bson_t *doc, const char *key, const char *field, double *out,
                       cqrs_error_t *err) {
  bool present;
  if (!cqrs_json_get_number(doc, key, field, true, out, &present, err)) return false;
  if (!isfinite(*out) || *out < 0) {
    cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s must be a number >= 0", field);
    return false;
  }
  return true;
}

/* CreateOrder's currency, when given: an ISO 4217 code, three capital
 * letters. *out is the code, or the default when the command names none. */
static bool get_currency(const bson_t *fields, const char **out, cqrs_error_t *err) {
  const char *c;
  if (!cqrs_json_get_string(fields, "currency", NULL, false, 0, &c, err)) return false;
  if (!c) {
    *out = CQRS_ORDER_CURRENCY_DEFAULT;
    return true;
  }
  if (strlen(c) != 3 || strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "currency", "currency must be an ISO 4217 code: three capital letters");
    return false;
  }
  *out = c;
  return true;
}

/* Checks one item and, when out is not NULL, appends its normalised form
 * (the contract's order item). */
static bool check_item(const bson_iter_t *it, size_t i, bson_t *out, cqrs_error_t *err) {
  char field[64];
  snprintf(field, sizeof field, "items[%zu]", i);
  if (!BSON_ITER_HOLDS_DOCUMENT(it)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s must be an object", field);
    return false;
  }
  const uint8_t *raw;
  uint32_t len;
  bson_t item;
  bson_iter_document(it, &len, &raw);
  if (!bson_init_static(&item, raw, len)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s is malformed", field);
    return false;
  }
  const char *product;
  int64_t quantity;
  double price;
  bool present;
  snprintf(field, sizeof field, "items[%zu].product", i);
  if (!cqrs_json_get_string(&item, "product", field, true, PRODUCT_MAX_CHARS, &product, err)) return false;
  snprintf(field, sizeof field, "items[%zu].quantity", i);
  if (!cqrs_json_get_int64(&item, "quantity", field, true, &quantity, &present, err)) return false;
  if (quantity <= 0) {
    cqrs_error_set(err, CQRS_ERR_INVALID, field, "%s must be greater than 0", field);
    return false;
  }
  snprintf(field, sizeof field, "items[%zu].price", i);
  if (!get_amount(&item, "price", field, &price, err)) return false;
  if (out) {
    cqrs_order_item_t norm = {.product = product, .quantity = quantity, .price = price};
    cqrs_order_item_append(out, (uint32_t)i, &norm);
  }
  return true;
}

/* Checks the items array; when out is not NULL, also writes it there as an
 * array of {product, quantity, price} (extra item members are dropped). */
static bool check_items(const bson_t *fields, bson_t *out, cqrs_error_t *err) {
  bson_t items;
  bool present;
  if (!cqrs_json_get_array(fields, "items", NULL, true, &items, &present, err)) return false;
  bson_iter_t it;
  size_t n = 0;
  if (bson_iter_init(&it, &items)) {
    while (bson_iter_next(&it)) {
      if (n == ITEMS_MAX) {
        cqrs_error_set(err, CQRS_ERR_INVALID, "items", "items holds more than %d entries", ITEMS_MAX);
        return false;
      }
      if (!check_item(&it, n, out, err)) return false;
      n++;
    }
  }
  if (n == 0) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "items", "items must not be empty");
    return false;
  }
  return true;
}

/* processBy, when given, is an RFC 3339 time. */
static bool check_process_by(const cqrs_command_t *cmd, cqrs_error_t *err) {
  const char *s;
  int64_t ms;
  if (!cqrs_json_get_string(&cmd->fields, "processBy", NULL, false, 64, &s, err)) return false;
  if (s && !cqrs_time_parse_rfc3339(s, &ms)) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "processBy", "processBy must be an RFC 3339 time");
    return false;
  }
  return true;
}

static bool validate(const cqrs_command_t *cmd, cqrs_error_t *err) {
  if (!check_alias(cmd, err)) return false;
  if (strcmp(cmd->type, "CreateOrder") == 0) {
    const char *user_id, *customer_id, *currency;
    double total;
    return cqrs_json_get_string(&cmd->fields, "userId", NULL, true, USER_ID_MAX, &user_id, err) &&
           cqrs_json_get_string(&cmd->fields, "customerId", NULL, false, CQRS_ID_MAX, &customer_id, err) &&
           check_process_by(cmd, err) && check_items(&cmd->fields, NULL, err) &&
           get_amount(&cmd->fields, "totalAmount", "totalAmount", &total, err) &&
           get_currency(&cmd->fields, &currency, err);
  }
  const char *status, *reason;
  if (!cqrs_json_get_string(&cmd->fields, "reason", NULL, false, REASON_MAX_CHARS, &reason, err)) return false;
  if (!cqrs_json_get_string(&cmd->fields, "status", NULL, true, 0, &status, err)) return false;
  if (status_index(status) < 0) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "status",
                   "status must be one of Created, Processing, Shipped, Delivered, Cancelled");
    return false;
  }
  return true;
}

static bool decide(const bson_t *state, const cqrs_command_t *cmd, const char *now,
                   cqrs_decision_t *out, cqrs_error_t *err) {
  if (strcmp(cmd->type, "CreateOrder") == 0) {
    cqrs_order_created_t e = {.order_id = cmd->aggregate_id, .created_at = now};
    cqrs_json_get_string(&cmd->fields, "userId", NULL, true, 0, &e.user_id, NULL);
    cqrs_json_get_string(&cmd->fields, "customerId", NULL, false, 0, &e.customer_id, NULL);
    cqrs_json_get_string(&cmd->fields, "processBy", NULL, false, 0, &e.process_by, NULL);
    if (e.customer_id && !*e.customer_id) e.customer_id = NULL;
    get_amount(&cmd->fields, "totalAmount", "totalAmount", &e.total_amount, NULL);
    get_currency(&cmd->fields, &e.currency, NULL);
    bson_init(&e.items);
    check_items(&cmd->fields, &e.items, NULL);
    cqrs_order_created_encode(&e, cqrs_decision_add(out, &cqrs_order_created_event));
    bson_destroy(&e.items);
    return true;
  }
  const char *to, *from = cqrs_decider_str(state, "status");
  cqrs_json_get_string(&cmd->fields, "status", NULL, true, 0, &to, NULL);
  if (!transition_allowed(status_index(from), status_index(to))) {
    cqrs_error_set(err, CQRS_ERR_REFUSED, NULL, "order status cannot change from %s to %s", from, to);
    return false;
  }
  cqrs_order_status_updated_t e = {.order_id = cmd->aggregate_id, .status = to, .previous_status = from,
                                   .updated_at = now};
  cqrs_json_get_string(&cmd->fields, "reason", NULL, false, 0, &e.reason, NULL);
  if (e.reason && !*e.reason) e.reason = NULL;
  cqrs_order_status_updated_encode(&e, cqrs_decision_add(out, &cqrs_order_status_updated_event));
  return true;
}

/* Appends member key of src to out unchanged, when src has it. */
static void copy_member(const bson_t *src, const char *key, bson_t *out) {
  bson_iter_t it;
  if (src && bson_iter_init_find(&it, src, key)) bson_append_iter(out, key, -1, &it);
}

static void created(const bson_t *state, const cqrs_event_data_t *e, bson_t *out) {
  (void)state;
  const cqrs_order_created_t *ev = &e->order_created;
  BSON_APPEND_UTF8(out, "orderId", ev->order_id ? ev->order_id : "");
  BSON_APPEND_UTF8(out, "userId", ev->user_id);
  BSON_APPEND_ARRAY(out, "items", &ev->items);
  BSON_APPEND_DOUBLE(out, "totalAmount", ev->total_amount);
  BSON_APPEND_UTF8(out, "currency", ev->currency);
  BSON_APPEND_UTF8(out, "status", cqrs_order_statuses[CREATED]);
  BSON_APPEND_UTF8(out, "createdAt", ev->created_at);
  BSON_APPEND_UTF8(out, "updatedAt", ev->created_at);
  if (ev->customer_id) BSON_APPEND_UTF8(out, "customerId", ev->customer_id);
  if (ev->process_by) BSON_APPEND_UTF8(out, "processBy", ev->process_by);
}

static void status_updated(const bson_t *state, const cqrs_event_data_t *e, bson_t *out) {
  const cqrs_order_status_updated_t *ev = &e->order_status_updated;
  BSON_APPEND_UTF8(out, "orderId", cqrs_decider_str(state, "orderId"));
  BSON_APPEND_UTF8(out, "userId", cqrs_decider_str(state, "userId"));
  copy_member(state, "items", out);
  copy_member(state, "totalAmount", out);
  copy_member(state, "currency", out);
  BSON_APPEND_UTF8(out, "status", ev->status);
  BSON_APPEND_UTF8(out, "createdAt", cqrs_decider_str(state, "createdAt"));
  BSON_APPEND_UTF8(out, "updatedAt", ev->updated_at);
  copy_member(state, "customerId", out);
  copy_member(state, "processBy", out);
}

/* A CreateOrder without processBy gets now + ORDER_PROCESSING_TIMEOUT, so the
 * deadline is in the event and every reader agrees on it. */
static void complete(cqrs_command_t *cmd, const char *now, const cqrs_decider_settings_t *settings) {
  bson_iter_t it;
  int64_t ms;
  if (strcmp(cmd->type, "CreateOrder") != 0 || !cqrs_time_parse_rfc3339(now, &ms)) return;
  if (bson_iter_init_find(&it, &cmd->fields, "processBy") && BSON_ITER_HOLDS_UTF8(&it)) return;
  char due[32];
  cqrs_time_format_rfc3339(ms + (int64_t)settings->order_processing_timeout_s * 1000, due);
  bson_t copy;
  bson_init(&copy);
  bson_copy_to_excluding_noinit(&cmd->fields, &copy, "processBy", NULL);
  BSON_APPEND_UTF8(&copy, "processBy", due);
  bson_destroy(&cmd->fields);
  bson_init(&cmd->fields);
  bson_concat(&cmd->fields, &copy);
  bson_destroy(&copy);
}

static const cqrs_evolver_t evolvers[] = {
    {&cqrs_order_created_event, created},
    {&cqrs_order_status_updated_event, status_updated},
};

static void evolve(const bson_t *state, const char *event_type, const bson_t *data, bson_t *out) {
  cqrs_decider_evolve(evolvers, sizeof evolvers / sizeof evolvers[0], state, event_type, data, out);
}

const cqrs_decider_t cqrs_order_decider = {
    .aggregate_type = "order",
    .id_alias = "orderId",
    .commands = commands,
    .n_commands = sizeof commands / sizeof commands[0],
    .validate = validate,
    .decide = decide,
    .evolve = evolve,
    .complete = complete,
};
