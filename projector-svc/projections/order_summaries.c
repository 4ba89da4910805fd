/* order_summaries: {_id, orderId, userId, items, totalAmount, currency,
 * status, createdAt, updatedAt, version, customerId, processBy,
 * cancellationReason} from OrderCreated and OrderStatusUpdated. customerId and
 * processBy are null when the order has none; cancellationReason is null
 * unless the order was cancelled with a reason. */
#include "../projection.h"

#include <string.h>

static void order_created(const cqrs_event_t *ev, const cqrs_event_data_t *e, cqrs_write_t *w) {
  const cqrs_order_created_t *c = &e->order_created;
  bson_t set;
  /* Insert once; a redelivered OrderCreated finds the document and changes nothing. */
  BSON_APPEND_UTF8(&w->filter, "_id", ev->aggregate_id);
  BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$setOnInsert", &set);
  BSON_APPEND_UTF8(&set, "orderId", ev->aggregate_id);
  BSON_APPEND_UTF8(&set, "userId", c->user_id);
  BSON_APPEND_ARRAY(&set, "items", &c->items);
  /* Always a double, whether the JSON said 60 or 60.0: one type to sort and sum. */
  BSON_APPEND_DOUBLE(&set, "totalAmount", c->total_amount);
  BSON_APPEND_UTF8(&set, "currency", c->currency);
  BSON_APPEND_UTF8(&set, "status", CQRS_ORDER_CREATED);
  BSON_APPEND_UTF8(&set, "createdAt", c->created_at);
  BSON_APPEND_UTF8(&set, "updatedAt", c->created_at);
  BSON_APPEND_INT64(&set, CQRS_PROJECTION_VERSION, ev->version);
  if (c->customer_id)
    BSON_APPEND_UTF8(&set, "customerId", c->customer_id);
  else
    BSON_APPEND_NULL(&set, "customerId");
  if (c->process_by)
    BSON_APPEND_UTF8(&set, "processBy", c->process_by);
  else
    BSON_APPEND_NULL(&set, "processBy");
  BSON_APPEND_NULL(&set, "cancellationReason");
  bson_append_document_end(&w->update, &set);
  w->upsert = true;
}

/* filter {_id: id, version: {$lt: version}}: only a document older than the
 * event moves, so a redelivered or late event matches nothing. Not an upsert:
 * an update never creates the document. */
static void order_status_updated(const cqrs_event_t *ev, const cqrs_event_data_t *e, cqrs_write_t *w) {
  const cqrs_order_status_updated_t *u = &e->order_status_updated;
  bson_t set;
  cqrs_projection_match_older(&w->filter, ev);
  BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$set", &set);
  BSON_APPEND_UTF8(&set, "status", u->status);
  BSON_APPEND_UTF8(&set, "updatedAt", u->updated_at);
  BSON_APPEND_INT64(&set, CQRS_PROJECTION_VERSION, ev->version);
  if (u->reason && strcmp(u->status, CQRS_ORDER_CANCELLED) == 0)
    BSON_APPEND_UTF8(&set, "cancellationReason", u->reason);
  bson_append_document_end(&w->update, &set);
}

static const cqrs_projection_handler_t handlers[] = {
    {&cqrs_order_created_event, order_created},
    {&cqrs_order_status_updated_event, order_status_updated},
};

static bool apply(const cqrs_event_t *ev, cqrs_write_t *w, bool *skip, cqrs_error_t *err) {
  return cqrs_projection_dispatch(handlers, sizeof handlers / sizeof handlers[0], ev, w, skip, err);
}

/* GetOrdersByUser and GetOrdersByStatus page in (createdAt, _id) order. */
static void indexes(bson_t *array) {
  cqrs_projection_index(array, 0, "userId_createdAt", "userId", "createdAt", "_id", NULL);
  cqrs_projection_index(array, 1, "status_createdAt", "status", "createdAt", "_id", NULL);
}

/* Orders by status is a keyset page over string keys (on FerretDB read
 * through PostgreSQL: a fifth of the orders match a status). Orders by user
 * is not: a user's orders are few, and FerretDB's own find of them (the
 * userId GIN index, then a sort of those) beat the keyset path's point finds,
 * 1,050 against 377 pages/s at 100,000 orders (BENCHMARKS.md). */
static const char *const keysets[] = {"status_createdAt", NULL};

const cqrs_projection_t cqrs_order_summaries_projection = {
    .name = "order_summaries",
    .aggregate_type = "order",
    .apply = apply,
    .indexes = indexes,
    .time_travel = true, /* what asOf / atVersion reads of an order compute */
    .keysets = keysets,
};
