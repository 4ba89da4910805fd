/* customer_suspension: on CustomerSuspended, every order the customer placed
 * (each CustomerOrderRecorded) is cancelled with reason CUSTOMER_SUSPENDED,
 * each exactly once (one step "cancel/<orderId>" per order). The order
 * aggregate refuses (422) to cancel an order that is Delivered or Cancelled
 * already, so only open orders change.
 *
 * "Concurrently" resolves on the customer aggregate, which decides
 * RecordCustomerOrder and SuspendCustomer one after the other: an order
 * recorded before the suspension is in this saga's list when the suspension
 * arrives (both are events of the customer, in one partition, in order); one
 * the placement saga tries to record after it is refused (422) and cancelled
 * by that saga as CUSTOMER_NOT_ACTIVE. Either way the order ends Cancelled
 * once. data: {customerId, suspended: bool, orders: [orderId]}. */
#include "../saga.h"
#include "order_commands.h"

#include <stdio.h>
#include <string.h>

static void cancel(cqrs_saga_reaction_t *out, const char *order_id) {
  char step[200];
  snprintf(step, sizeof step, "cancel/%s", order_id);
  bson_t *f = cqrs_saga_emit(out, step, CQRS_CMD_UPDATE_ORDER_STATUS, order_id, 0);
  BSON_APPEND_UTF8(f, "status", CQRS_ORDER_CANCELLED);
  BSON_APPEND_UTF8(f, "reason", CQRS_REASON_CUSTOMER_SUSPENDED);
}

static bool suspended_of(const bson_t *data) {
  bson_iter_t it;
  return bson_iter_init_find(&it, data, "suspended") && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
}

/* Writes data with orders (plus add, when not NULL) into out; emits a cancel
 * for each order when cancel_all, or for add alone when cancel_added. */
static void write_data(const bson_t *data, const char *customer_id, bool suspended, const char *add, bool cancel_all,
                       cqrs_saga_reaction_t *out) {
  bson_t orders;
  bson_iter_t it, ai;
  uint32_t n = 0;
  BSON_APPEND_UTF8(&out->data, "customerId", customer_id);
  BSON_APPEND_BOOL(&out->data, "suspended", suspended);
  bson_append_array_begin(&out->data, "orders", -1, &orders);
  if (bson_iter_init_find(&it, data, "orders") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &ai)) {
    while (bson_iter_next(&ai)) {
      if (!BSON_ITER_HOLDS_UTF8(&ai)) continue;
      char key[16];
      const char *k;
      bson_uint32_to_string(n++, &k, key, sizeof key);
      BSON_APPEND_UTF8(&orders, k, bson_iter_utf8(&ai, NULL));
      if (cancel_all) cancel(out, bson_iter_utf8(&ai, NULL));
    }
  }
  if (add) {
    char key[16];
    const char *k;
    bson_uint32_to_string(n++, &k, key, sizeof key);
    BSON_APPEND_UTF8(&orders, k, add);
    if (suspended) cancel(out, add);
  }
  bson_append_array_end(&out->data, &orders);
}

static bool has_order(const bson_t *data, const char *order_id) {
  bson_iter_t it, ai;
  if (!bson_iter_init_find(&it, data, "orders") || !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &ai))
    return false;
  while (bson_iter_next(&ai))
    if (BSON_ITER_HOLDS_UTF8(&ai) && strcmp(bson_iter_utf8(&ai, NULL), order_id) == 0) return true;
  return false;
}

static void react(const bson_t *data, const char *status, const cqrs_saga_input_t *in, const char *now,
                  cqrs_saga_reaction_t *out) {
  (void)now;
  (void)status;
  bool suspended = suspended_of(data);
  if (in->kind == CQRS_SAGA_RESULT) {
    out->changed = true;
    write_data(data, cqrs_saga_str(data, "customerId"), suspended, NULL, false, out);
    if (in->pending == 0) out->status = CQRS_SAGA_COMPLETED; /* every cancel answered (201, or 422: not open) */
    return;
  }
  if (in->kind != CQRS_SAGA_EVENT) return;
  if (in->event == &cqrs_customer_order_recorded_event) {
    const char *order_id = in->decoded->customer_order_recorded.order_id;
    if (has_order(data, order_id)) return; /* a repeat */
    out->changed = true;
    write_data(data, in->aggregate_id, suspended, order_id, false, out);
    out->status = CQRS_SAGA_RUNNING;
    return;
  }
  if (suspended) return; /* a repeated CustomerSuspended */
  out->changed = true;
  write_data(data, in->aggregate_id, true, NULL, true, out);
  out->status = out->n_emits ? CQRS_SAGA_RUNNING : CQRS_SAGA_COMPLETED;
  out->note = "customer suspended";
}

static const cqrs_event_type_t *const triggers[] = {&cqrs_customer_order_recorded_event,
                                                    &cqrs_customer_suspended_event, NULL};

const cqrs_saga_t cqrs_customer_suspension_saga = {
    .type = "customer_suspension",
    .triggers = triggers,
    .react = react,
};
