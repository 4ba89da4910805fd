/* order_summaries: {_id, orderId, userId, items, totalAmount, status,
 * createdAt, updatedAt, version} from OrderCreated and OrderStatusUpdated. */
#include "../projection.h"

#include "cqrs/json.h"

#include <string.h>

static bool str(const bson_t *data, const char *key, const char **out, cqrs_error_t *err) {
  return cqrs_json_get_string(data, key, key, true, 0, out, err);
}

/* filter {_id: id, version: {$lt: version}}: only a document older than the
 * event moves, so a redelivered or late event matches nothing. */
static bool order_created(const cqrs_event_t *ev, cqrs_write_t *w, cqrs_error_t *err) {
  const char *user_id, *at;
  bson_t items, set;
  bool present;
  double total;
  if (!str(ev->data, "userId", &user_id, err) ||
      !cqrs_json_get_array(ev->data, "items", NULL, true, &items, &present, err) ||
      !cqrs_json_get_number(ev->data, "totalAmount", NULL, true, &total, &present, err) ||
      !str(ev->data, "createdAt", &at, err))
    return false;
  /* Insert once; a redelivered OrderCreated finds the document and changes nothing. */
  BSON_APPEND_UTF8(&w->filter, "_id", ev->aggregate_id);
  BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$setOnInsert", &set);
  BSON_APPEND_UTF8(&set, "orderId", ev->aggregate_id);
  BSON_APPEND_UTF8(&set, "userId", user_id);
  BSON_APPEND_ARRAY(&set, "items", &items);
  /* Always a double, whether the JSON said 60 or 60.0: one type to sort and sum. */
  BSON_APPEND_DOUBLE(&set, "totalAmount", total);
  BSON_APPEND_UTF8(&set, "status", "Created");
  BSON_APPEND_UTF8(&set, "createdAt", at);
  BSON_APPEND_UTF8(&set, "updatedAt", at);
  BSON_APPEND_INT64(&set, "version", ev->version);
  bson_append_document_end(&w->update, &set);
  w->upsert = true;
  return true;
}

static bool order_status_updated(const cqrs_event_t *ev, cqrs_write_t *w, cqrs_error_t *err) {
  const char *status, *at;
  bson_t set;
  if (!str(ev->data, "status", &status, err) || !str(ev->data, "updatedAt", &at, err)) return false;
  cqrs_projection_match_older(&w->filter, ev);
  BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$set", &set);
  BSON_APPEND_UTF8(&set, "status", status);
  BSON_APPEND_UTF8(&set, "updatedAt", at);
  BSON_APPEND_INT64(&set, "version", ev->version);
  bson_append_document_end(&w->update, &set);
  w->upsert = false; /* an update never creates the document */
  return true;
}

static bool apply(const cqrs_event_t *ev, cqrs_write_t *w, bool *skip, cqrs_error_t *err) {
  *skip = false;
  w->upsert = false;
  bson_init(&w->filter);
  bson_init(&w->update);
  if (strcmp(ev->type, "OrderCreated") == 0) return order_created(ev, w, err);
  if (strcmp(ev->type, "OrderStatusUpdated") == 0) return order_status_updated(ev, w, err);
  *skip = true;
  return true;
}

/* Appends {key: {a: 1, b: 1, _id: 1}, name: name} as element i of array. */
/* GetOrdersByUser and GetOrdersByStatus page in (createdAt, _id) order. */
static void indexes(bson_t *array) {
  cqrs_projection_index(array, 0, "userId_createdAt", "userId", "createdAt", "_id", NULL);
  cqrs_projection_index(array, 1, "status_createdAt", "status", "createdAt", "_id", NULL);
}

const cqrs_projection_t cqrs_order_summaries_projection = {
    .name = "order_summaries",
    .aggregate_type = "order",
    .apply = apply,
    .indexes = indexes,
};
