/* customers: {_id, customerId, email, name, status, registrationDate,
 * lastUpdated, suspensionReason, version} from CustomerRegistered,
 * CustomerEmailUpdated and CustomerSuspended. */
#include "../projection.h"

static void customer_registered(const cqrs_event_t *ev, const cqrs_event_data_t *e, cqrs_write_t *w) {
  const cqrs_customer_registered_t *r = &e->customer_registered;
  bson_t set;
  /* Insert once; a redelivered CustomerRegistered finds the document and changes nothing. */
  BSON_APPEND_UTF8(&w->filter, "_id", ev->aggregate_id);
  BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$setOnInsert", &set);
  BSON_APPEND_UTF8(&set, "customerId", ev->aggregate_id);
  BSON_APPEND_UTF8(&set, "email", r->email);
  BSON_APPEND_UTF8(&set, "name", r->name);
  BSON_APPEND_UTF8(&set, "status", CQRS_CUSTOMER_ACTIVE);
  BSON_APPEND_UTF8(&set, "registrationDate", r->registered_at);
  BSON_APPEND_UTF8(&set, "lastUpdated", r->registered_at);
  BSON_APPEND_NULL(&set, "suspensionReason");
  BSON_APPEND_INT64(&set, CQRS_PROJECTION_VERSION, ev->version);
  bson_append_document_end(&w->update, &set);
  w->upsert = true;
}

/* The updates: filter {_id: id, version: {$lt: version}}, so only a document
 * older than the event moves and a redelivered or late event matches nothing;
 * never an upsert: an update never creates the document. */
static void customer_email_updated(const cqrs_event_t *ev, const cqrs_event_data_t *e, cqrs_write_t *w) {
  const cqrs_customer_email_updated_t *u = &e->customer_email_updated;
  bson_t set;
  cqrs_projection_match_older(&w->filter, ev);
  BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$set", &set);
  BSON_APPEND_UTF8(&set, "email", u->email);
  BSON_APPEND_UTF8(&set, "lastUpdated", u->updated_at);
  BSON_APPEND_INT64(&set, CQRS_PROJECTION_VERSION, ev->version);
  bson_append_document_end(&w->update, &set);
}

static void customer_suspended(const cqrs_event_t *ev, const cqrs_event_data_t *e, cqrs_write_t *w) {
  const cqrs_customer_suspended_t *s = &e->customer_suspended;
  bson_t set;
  cqrs_projection_match_older(&w->filter, ev);
  BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$set", &set);
  BSON_APPEND_UTF8(&set, "status", CQRS_CUSTOMER_SUSPENDED);
  BSON_APPEND_UTF8(&set, "suspensionReason", s->reason);
  BSON_APPEND_UTF8(&set, "lastUpdated", s->suspended_at);
  BSON_APPEND_INT64(&set, CQRS_PROJECTION_VERSION, ev->version);
  bson_append_document_end(&w->update, &set);
}

/* An order recorded on the aggregate (the order placement saga's owner
 * check) changes nothing shown but the version: the document stays at the
 * aggregate's version, so a read waiting for a later one is answered. */
static void customer_order_recorded(const cqrs_event_t *ev, const cqrs_event_data_t *e, cqrs_write_t *w) {
  (void)e;
  bson_t set;
  cqrs_projection_match_older(&w->filter, ev);
  BSON_APPEND_DOCUMENT_BEGIN(&w->update, "$set", &set);
  BSON_APPEND_INT64(&set, CQRS_PROJECTION_VERSION, ev->version);
  bson_append_document_end(&w->update, &set);
}

static const cqrs_projection_handler_t handlers[] = {
    {&cqrs_customer_registered_event, customer_registered},
    {&cqrs_customer_email_updated_event, customer_email_updated},
    {&cqrs_customer_suspended_event, customer_suspended},
    {&cqrs_customer_order_recorded_event, customer_order_recorded},
};

static bool apply(const cqrs_event_t *ev, cqrs_write_t *w, bool *skip, cqrs_error_t *err) {
  return cqrs_projection_dispatch(handlers, sizeof handlers / sizeof handlers[0], ev, w, skip, err);
}

/* GetActiveCustomers pages by (registrationDate, _id) within a status;
 * SearchCustomersByEmail is a prefix range on email, paged by (email, _id). */
static void indexes(bson_t *array) {
  cqrs_projection_index(array, 0, "status_registrationDate", "status", "registrationDate", "_id", NULL);
  cqrs_projection_index(array, 1, "email_id", "email", "_id", NULL);
}

/* Both lists are keyset pages over string keys. */
static const char *const keysets[] = {"status_registrationDate", "email_id", NULL};

const cqrs_projection_t cqrs_customers_projection = {
    .name = "customers",
    .aggregate_type = "customer",
    .apply = apply,
    .indexes = indexes,
    .time_travel = true, /* what asOf / atVersion reads of a customer compute */
    .keysets = keysets,
};
