/* order_placement: on OrderCreated, check the order's owners. The user must
 * exist (RecordUserOrder on the user aggregate: 404 for no such user) and a
 * customerId, when given, must name an ACTIVE customer (RecordCustomerOrder:
 * 404 or 422 otherwise). A failed check is compensated once: UpdateOrderStatus
 * -> Cancelled with reason USER_NOT_FOUND or CUSTOMER_NOT_ACTIVE.
 * data: {orderId, user: pending|ok|failed, customer: none|pending|ok|failed,
 * cancel: none|sent}. */
#include "../saga.h"
#include "order_commands.h"

#include <string.h>

#define STEP_USER "record-user"
#define STEP_CUSTOMER "record-customer"
#define STEP_CANCEL "cancel"

static void write_data(bson_t *out, const char *order_id, const char *user, const char *customer, const char *cancel) {
  BSON_APPEND_UTF8(out, "orderId", order_id);
  BSON_APPEND_UTF8(out, "user", user);
  BSON_APPEND_UTF8(out, "customer", customer);
  BSON_APPEND_UTF8(out, "cancel", cancel);
}

static void started(const cqrs_saga_input_t *in, cqrs_saga_reaction_t *out) {
  const cqrs_order_created_t *e = &in->decoded->order_created;
  bson_t *f = cqrs_saga_emit(out, STEP_USER, CQRS_CMD_RECORD_USER_ORDER, e->user_id, 0);
  BSON_APPEND_UTF8(f, "orderId", in->aggregate_id);
  if (e->customer_id) {
    f = cqrs_saga_emit(out, STEP_CUSTOMER, CQRS_CMD_RECORD_CUSTOMER_ORDER, e->customer_id, 0);
    BSON_APPEND_UTF8(f, "orderId", in->aggregate_id);
  }
  write_data(&out->data, in->aggregate_id, "pending", e->customer_id ? "pending" : "none", "none");
  out->status = CQRS_SAGA_RUNNING;
  out->changed = true;
}

static bool accepted(int status) { return status == 200 || status == 201; }

static void react(const bson_t *data, const char *status, const cqrs_saga_input_t *in, const char *now,
                  cqrs_saga_reaction_t *out) {
  (void)now;
  if (in->kind == CQRS_SAGA_EVENT) {
    if (!status) started(in, out); /* a repeated OrderCreated finds the saga started */
    return;
  }
  if (in->kind != CQRS_SAGA_RESULT) return;
  const char *order_id = cqrs_saga_str(data, "orderId");
  const char *user = cqrs_saga_str(data, "user"), *customer = cqrs_saga_str(data, "customer");
  const char *cancel = cqrs_saga_str(data, "cancel");
  const char *reason = NULL;
  out->changed = true;
  if (strcmp(in->step, STEP_CANCEL) == 0) {
    /* 422: the order was Cancelled (or Delivered) already; either way the
     * compensation has nothing more to do */
    out->status = accepted(in->status) || in->status == 422 ? CQRS_SAGA_COMPENSATED : CQRS_SAGA_FAILED;
    write_data(&out->data, order_id, user, customer, cancel);
    return;
  }
  bool is_user = strcmp(in->step, STEP_USER) == 0;
  const char *verdict;
  if (accepted(in->status)) {
    verdict = "ok";
  } else if (is_user ? in->status == 404 : in->status == 404 || in->status == 422) {
    verdict = "failed";
    reason = is_user ? CQRS_REASON_USER_NOT_FOUND : CQRS_REASON_CUSTOMER_NOT_ACTIVE;
  } else {
    verdict = "error"; /* 401/403/5xx: not an answer about the owner */
  }
  if (is_user)
    user = verdict;
  else
    customer = verdict;
  if (reason && strcmp(cancel, "none") == 0) {
    bson_t *f = cqrs_saga_emit(out, STEP_CANCEL, CQRS_CMD_UPDATE_ORDER_STATUS, order_id, 0);
    BSON_APPEND_UTF8(f, "status", CQRS_ORDER_CANCELLED);
    BSON_APPEND_UTF8(f, "reason", reason);
    cancel = "sent";
  } else if (strcmp(verdict, "error") == 0 && strcmp(cancel, "none") == 0) {
    out->status = CQRS_SAGA_FAILED;
  } else if (strcmp(user, "ok") == 0 && (strcmp(customer, "none") == 0 || strcmp(customer, "ok") == 0)) {
    out->status = CQRS_SAGA_COMPLETED;
  }
  write_data(&out->data, order_id, user, customer, cancel);
}

static const cqrs_event_type_t *const triggers[] = {&cqrs_order_created_event, NULL};

const cqrs_saga_t cqrs_order_placement_saga = {
    .type = "order_placement",
    .triggers = triggers,
    .react = react,
};
