/* order_deadline: an order still Created at its processBy is cancelled with
 * reason PROCESSING_TIMEOUT, once. The deadline is part of the saga instance
 * (durable in saga-state), set on OrderCreated and dropped when the order
 * moves on (any OrderStatusUpdated). The cancel carries expectedVersion 1 (an
 * order is at version 1 exactly while it is Created), so an order that moved
 * on after the deadline fell due but before the saga saw it is refused (409)
 * and left alone. data: {orderId, processBy, cancel: none|sent}. */
#include "../saga.h"
#include "order_commands.h"

#include "cqrs/util.h"

#include <string.h>

#define STEP_CANCEL "cancel"
#define DEADLINE "cancel-unprocessed"

static void write_data(bson_t *out, const char *order_id, const char *process_by, const char *cancel) {
  BSON_APPEND_UTF8(out, "orderId", order_id);
  BSON_APPEND_UTF8(out, "processBy", process_by);
  BSON_APPEND_UTF8(out, "cancel", cancel);
}

static void on_event(const bson_t *data, const char *status, const cqrs_saga_input_t *in, cqrs_saga_reaction_t *out) {
  bool cancel_sent = strcmp(cqrs_saga_str(data, "cancel"), "sent") == 0;
  if (in->event == &cqrs_order_created_event) {
    if (status) return; /* started already, or the order moved on first (out of order) */
    const char *process_by = in->decoded->order_created.process_by;
    int64_t due;
    out->changed = true;
    write_data(&out->data, in->aggregate_id, process_by ? process_by : "", "none");
    if (!process_by || !cqrs_time_parse_rfc3339(process_by, &due)) {
      out->status = CQRS_SAGA_COMPLETED; /* an order from before processBy existed */
      return;
    }
    cqrs_saga_set_deadline(out, due, DEADLINE);
    out->status = CQRS_SAGA_RUNNING;
    out->note = "deadline set";
    return;
  }
  /* OrderStatusUpdated: the order moved on. While our own cancel is in
   * flight its result decides (its event may come first). */
  if (cancel_sent) return;
  out->changed = true;
  write_data(&out->data, in->aggregate_id, cqrs_saga_str(data, "processBy"), "none");
  out->clear_deadlines = true;
  out->status = CQRS_SAGA_COMPLETED;
  out->note = "order moved on";
}

static void react(const bson_t *data, const char *status, const cqrs_saga_input_t *in, const char *now,
                  cqrs_saga_reaction_t *out) {
  (void)now;
  const char *order_id = cqrs_saga_str(data, "orderId"), *process_by = cqrs_saga_str(data, "processBy");
  switch (in->kind) {
  case CQRS_SAGA_EVENT:
    on_event(data, status, in, out);
    return;
  case CQRS_SAGA_DEADLINE: {
    bson_t *f = cqrs_saga_emit(out, STEP_CANCEL, CQRS_CMD_UPDATE_ORDER_STATUS, order_id, 1);
    BSON_APPEND_UTF8(f, "status", CQRS_ORDER_CANCELLED);
    BSON_APPEND_UTF8(f, "reason", CQRS_REASON_PROCESSING_TIMEOUT);
    out->changed = true;
    write_data(&out->data, order_id, process_by, "sent");
    return;
  }
  case CQRS_SAGA_RESULT:
    out->changed = true;
    write_data(&out->data, order_id, process_by, "sent");
    if (in->status == 200 || in->status == 201)
      out->status = CQRS_SAGA_COMPENSATED;
    else if (in->status == 409 || in->status == 422)
      out->status = CQRS_SAGA_COMPLETED; /* it moved on meanwhile: left alone */
    else
      out->status = CQRS_SAGA_FAILED;
    return;
  }
}

static const cqrs_event_type_t *const triggers[] = {&cqrs_order_created_event, &cqrs_order_status_updated_event,
                                                    NULL};

const cqrs_saga_t cqrs_order_deadline_saga = {
    .type = "order_deadline",
    .triggers = triggers,
    .react = react,
};
