/* customers: {_id, customerId, email, name, status, registrationDate,
 * lastUpdated, suspensionReason, version} from CustomerRegistered,
 * CustomerEmailUpdated and CustomerSuspended. */
#include "../projection.h"

#include "cqrs/json.h"

#include <string.h>

static bool str(const bson_t *data, const char *key, const char **out, cqrs_error_t *err) {
  return cqrs_json_get_string(data, key, key, true, 0, out, err);
}

/* filter {_id: id, version: {$lt: version}}: only a document older than the
 * event moves, so a redelivered or late event matches nothing. */
static bool customer_registered(const cqrs_event_t *ev, cqrs_write_t *w, cqrs_error_t *err) {
  const char *email, *name, *at;
  bson_t set;
  if (!str(ev->data, "email", &email, err) || !str(ev->data, "name", &name, err) ||
      !str(ev->data, "registeredAt", &at, err))
    return false;
  /* Insert once; a redelivered CustomerRegistered finds the document and changes nothing. */
  BSON_APPEND_UTF8(&w->filter, "_id", ev->aggregate_id);
  BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$setOnInsert", &set);
  BSON_APPEND_UTF8(&set, "customerId", ev->aggregate_id);
  BSON_APPEND_UTF8(&set, "email", email);
  BSON_APPEND_UTF8(&set, "name", name);
  BSON_APPEND_UTF8(&set, "status", "ACTIVE");
  BSON_APPEND_UTF8(&set, "registrationDate", at);
  BSON_APPEND_UTF8(&set, "lastUpdated", at);
  BSON_APPEND_NULL(&set, "suspensionReason");
  BSON_APPEND_INT64(&set, "version", ev->version);
  bson_append_document_end(&w->update, &set);
  w->upsert = true;
  return true;
}

static bool customer_email_updated(const cqrs_event_t *ev, cqrs_write_t *w, cqrs_error_t *err) {
  const char *email, *at;
  bson_t set;
  if (!str(ev->data, "newEmail", &email, err) || !str(ev->data, "updatedAt", &at, err)) return false;
  cqrs_projection_match_older(&w->filter, ev);
  BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$set", &set);
  BSON_APPEND_UTF8(&set, "email", email);
  BSON_APPEND_UTF8(&set, "lastUpdated", at);
  BSON_APPEND_INT64(&set, "version", ev->version);
  bson_append_document_end(&w->update, &set);
  w->upsert = false; /* an update never creates the document */
  return true;
}

static bool customer_suspended(const cqrs_event_t *ev, cqrs_write_t *w, cqrs_error_t *err) {
  const char *reason, *at;
  bson_t set;
  if (!str(ev->data, "reason", &reason, err) || !str(ev->data, "suspendedAt", &at, err)) return false;
  cqrs_projection_match_older(&w->filter, ev);
  BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$set", &set);
  BSON_APPEND_UTF8(&set, "status", "SUSPENDED");
  BSON_APPEND_UTF8(&set, "suspensionReason", reason);
  BSON_APPEND_UTF8(&set, "lastUpdated", at);
  BSON_APPEND_INT64(&set, "version", ev->version);
  bson_append_document_end(&w->update, &set);
  w->upsert = false;
  return true;
}

static bool apply(const cqrs_event_t *ev, cqrs_write_t *w, bool *skip, cqrs_error_t *err) {
  *skip = false;
  w->upsert = false;
  bson_init(&w->filter);
  bson_init(&w->update);
  if (strcmp(ev->type, "CustomerRegistered") == 0) return customer_registered(ev, w, err);
  if (strcmp(ev->type, "CustomerEmailUpdated") == 0) return customer_email_updated(ev, w, err);
  if (strcmp(ev->type, "CustomerSuspended") == 0) return customer_suspended(ev, w, err);
  *skip = true;
  return true;
}

/* GetActiveCustomers pages by (registrationDate, _id) within a status;
 * SearchCustomersByEmail is a prefix range on email, paged by (email, _id). */
static void indexes(bson_t *array) {
  cqrs_projection_index(array, 0, "status_registrationDate", "status", "registrationDate", "_id", NULL);
  cqrs_projection_index(array, 1, "email_id", "email", "_id", NULL);
}

const cqrs_projection_t cqrs_customers_projection = {
    .name = "customers",
    .aggregate_type = "customer",
    .apply = apply,
    .indexes = indexes,
};
