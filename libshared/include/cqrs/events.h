/* The event contract: every event type's name, aggregate, schema version and
 * data fields, with typed encode/decode between a C struct and the event data
 * (the record value; API.md "Events on the wire"). This header and
 * libshared/src/events/ are the only places that spell an event type or an
 * event field: deciders encode through it, evolve and projections decode
 * through it, and a consumer can list every type with its fields
 * (cqrs_event_types).
 *
 * Each event type is one field list, one line a field, in wire order:
 *
 *   X(member, "jsonKey", TYPE, PRESENCE)
 *
 *   TYPE      STRING         const char *, borrowed
 *             NUMBER         double, always written as a double (60.0, not 60)
 *             INTEGER        int64_t
 *             OBJECT(rec)    cqrs_<rec>_t inline: a JSON object with rec's fields
 *             ARRAY(rec)     bson_t, a borrowed view of a JSON array whose items
 *                            are objects with rec's fields
 *   PRESENCE  REQUIRED       always written; decode refuses data without it (and
 *                            an empty string)
 *             OPTIONAL       NULL = absent: encode leaves it out, decode gives
 *                            NULL for absent or null. Only STRING can be
 *                            optional (a number would need a presence flag).
 *
 * The aggregate id member (userId, orderId, customerId) repeats ce_subject,
 * which readers take the id from: it is always written but optional to read,
 * as is what no reader needs (previousStatus, oldEmail).
 *
 * For each event type <ev> in CQRS_EVENT_TYPES this header declares
 *
 *   typedef struct {...} cqrs_<ev>_t;          the members of its field list
 *   extern const cqrs_event_type_t cqrs_<ev>_event;   its descriptor
 *   void cqrs_<ev>_encode(const cqrs_<ev>_t *e, bson_t *data);
 *   bool cqrs_<ev>_decode(const bson_t *data, cqrs_<ev>_t *out, cqrs_error_t *err);
 *
 * encode appends the fields to data in list order and can't fail (a required
 * string left NULL is a caller bug: written as null, which decode refuses).
 * decode fills *out (every member; strings and arrays borrow from data, valid
 * while data lives) or fails with CQRS_ERR_INVALID naming the field ("email",
 * "changes.name", "items[1].quantity"); members it does not know are ignored.
 *
 * Adding a field: one line in the event's field list (plus the decider and
 * projection code that use it). Adding an event type: a field list and a row
 * in its aggregate's list below (ce_type, schema version); the aggregate's
 * source in src/events/ defines the descriptors from that list.
 *
 * Versions: an aggregate's list (CQRS_<AGG>_EVENTS) holds each type at its
 * current schema version, the one deciders write; its past list
 * (CQRS_<AGG>_EVENTS_PAST) keeps every earlier version with its own field list
 * and struct (cqrs_<ev>_v<n>_t), because events written then stay in the log
 * forever and readers must decode them. A new version of an event: copy its
 * current row and field list into the past list under a _v<n> name, change
 * the current ones, bump the version and add the vN -> vN+1 steps to the
 * upcaster table (src/events/upcasters.c, cqrs/upcast.h). Readers never
 * decode a past version themselves: cqrs_upcast brings the data to the
 * current one first. */
#ifndef CQRS_EVENTS_H
#define CQRS_EVENTS_H

#include "cqrs/error.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The JSON type of a field. */
typedef enum {
  CQRS_FIELD_STRING,
  CQRS_FIELD_NUMBER,
  CQRS_FIELD_INTEGER,
  CQRS_FIELD_OBJECT,
  CQRS_FIELD_ARRAY
} cqrs_field_type_t;

typedef struct cqrs_event_record cqrs_event_record_t;

typedef struct {
  const char *name;                  /* the JSON member, e.g. "userId" */
  cqrs_field_type_t type;
  const cqrs_event_record_t *record; /* OBJECT: its fields; ARRAY: each item's; else NULL */
  bool required;
} cqrs_event_field_t;

/* The fields of an event's data, or of an object inside it, in wire order. */
struct cqrs_event_record {
  const cqrs_event_field_t *fields;
  size_t n_fields;
};

/* One of each event struct (below): what a descriptor decodes into. */
typedef union cqrs_event_data cqrs_event_data_t;

/* An event type's descriptor. encode and decode are cqrs_<ev>_encode and
 * cqrs_<ev>_decode on the union member named <ev>, for code that handles
 * event types as rows of a table. */
typedef struct {
  const char *name;                /* ce_type, e.g. "UserCreated" */
  const char *aggregate_type;      /* ce_aggregatetype, e.g. "user" */
  int version;                     /* the schema version of this shape: 1, 2, ... */
  const cqrs_event_record_t *data; /* its fields */
  void (*encode)(const cqrs_event_data_t *e, bson_t *data);
  bool (*decode)(const bson_t *data, cqrs_event_data_t *out, cqrs_error_t *err);
} cqrs_event_type_t;

/* How a field list becomes a struct. */
#define CQRS_EVENT_CTYPE_STRING const char *
#define CQRS_EVENT_CTYPE_NUMBER double
#define CQRS_EVENT_CTYPE_INTEGER int64_t
#define CQRS_EVENT_CTYPE_OBJECT(rec) cqrs_##rec##_t
#define CQRS_EVENT_CTYPE_ARRAY(rec) bson_t
#define CQRS_EVENT_MEMBER_(member, key, type, presence) CQRS_EVENT_CTYPE_##type member;
#define CQRS_EVENT_STRUCT_(rec, FIELDS)                                                                        \
  typedef struct {                                                                                             \
    FIELDS(CQRS_EVENT_MEMBER_)                                                                                 \
  } cqrs_##rec##_t;                                                                                            \
  extern const cqrs_event_record_t cqrs_##rec##_record;                                                        \
  void cqrs_##rec##_encode(const cqrs_##rec##_t *e, bson_t *doc);                                              \
  bool cqrs_##rec##_decode(const bson_t *doc, cqrs_##rec##_t *out, cqrs_error_t *err);

/* A record nested in events (an OBJECT's or an ARRAY's items). Also declares
 * cqrs_<rec>_append(array, i, e): appends e as item i of an array being built. */
#define CQRS_EVENT_RECORD_DECLARE(rec, FIELDS)                                                                 \
  CQRS_EVENT_STRUCT_(rec, FIELDS)                                                                              \
  void cqrs_##rec##_append(bson_t *array, uint32_t i, const cqrs_##rec##_t *e);

#define CQRS_EVENT_DECLARE_(aggregate, ev, type_name, version, FIELDS)                                         \
  CQRS_EVENT_STRUCT_(ev, FIELDS)                                                                               \
  extern const cqrs_event_type_t cqrs_##ev##_event;

/* ---- user --------------------------------------------------------------- */

/* UserCreated: {"userId","email","name","createdAt"} */
#define CQRS_USER_CREATED_FIELDS(X)                                                                            \
  X(user_id, "userId", STRING, OPTIONAL)                                                                       \
  X(email, "email", STRING, REQUIRED)                                                                          \
  X(name, "name", STRING, REQUIRED)                                                                            \
  X(created_at, "createdAt", STRING, REQUIRED)

/* UserProfileUpdated: {"userId","changes":{"name"?,"email"?},"updatedAt"};
 * changes holds only what changed. */
#define CQRS_USER_PROFILE_CHANGES_FIELDS(X)                                                                    \
  X(name, "name", STRING, OPTIONAL)                                                                            \
  X(email, "email", STRING, OPTIONAL)
CQRS_EVENT_RECORD_DECLARE(user_profile_changes, CQRS_USER_PROFILE_CHANGES_FIELDS)

#define CQRS_USER_PROFILE_UPDATED_FIELDS(X)                                                                    \
  X(user_id, "userId", STRING, OPTIONAL)                                                                       \
  X(changes, "changes", OBJECT(user_profile_changes), REQUIRED)                                                \
  X(updated_at, "updatedAt", STRING, REQUIRED)

/* UserOrderRecorded: {"userId","orderId","recordedAt"}: the user owns an order
 * (the order placement saga's owner check; refused 404 for no such user). */
#define CQRS_USER_ORDER_RECORDED_FIELDS(X)                                                                     \
  X(user_id, "userId", STRING, OPTIONAL)                                                                       \
  X(order_id, "orderId", STRING, REQUIRED)                                                                     \
  X(recorded_at, "recordedAt", STRING, REQUIRED)

/* X(aggregate type, c name, ce_type, schema version, field list) */
#define CQRS_USER_EVENTS(X)                                                                                    \
  X("user", user_created, "UserCreated", 1, CQRS_USER_CREATED_FIELDS)                                          \
  X("user", user_profile_updated, "UserProfileUpdated", 1, CQRS_USER_PROFILE_UPDATED_FIELDS)                   \
  X("user", user_order_recorded, "UserOrderRecorded", 1, CQRS_USER_ORDER_RECORDED_FIELDS)
/* Earlier schema versions, same columns: none yet. */
#define CQRS_USER_EVENTS_PAST(X)

/* ---- order -------------------------------------------------------------- */

/* OrderCreated v2: {"orderId","userId","items":[{"product","quantity","price"}],
 * "totalAmount","currency","createdAt","customerId"?,"processBy"?}; currency is
 * an ISO 4217 code; customerId names the customer placing the order and
 * processBy its processing deadline (sagas). */
#define CQRS_ORDER_ITEM_FIELDS(X)                                                                              \
  X(product, "product", STRING, REQUIRED)                                                                      \
  X(quantity, "quantity", INTEGER, REQUIRED)                                                                   \
  X(price, "price", NUMBER, REQUIRED)
CQRS_EVENT_RECORD_DECLARE(order_item, CQRS_ORDER_ITEM_FIELDS)

#define CQRS_ORDER_CREATED_FIELDS(X)                                                                           \
  X(order_id, "orderId", STRING, OPTIONAL)                                                                     \
  X(user_id, "userId", STRING, REQUIRED)                                                                       \
  X(items, "items", ARRAY(order_item), REQUIRED)                                                               \
  X(total_amount, "totalAmount", NUMBER, REQUIRED)                                                             \
  X(currency, "currency", STRING, REQUIRED)                                                                    \
  X(created_at, "createdAt", STRING, REQUIRED)                                                                 \
  X(customer_id, "customerId", STRING, OPTIONAL)                                                               \
  X(process_by, "processBy", STRING, OPTIONAL)

/* The currency of an order that names none: CreateOrder's default, and what
 * an OrderCreated v1 (written before currencies) upcasts to. */
#define CQRS_ORDER_CURRENCY_DEFAULT "USD"

/* OrderCreated v1: v2 without currency (every order was in dollars), customerId
 * and processBy (every order had only a user, and no deadline). */
#define CQRS_ORDER_CREATED_V1_FIELDS(X)                                                                        \
  X(order_id, "orderId", STRING, OPTIONAL)                                                                     \
  X(user_id, "userId", STRING, REQUIRED)                                                                       \
  X(items, "items", ARRAY(order_item), REQUIRED)                                                               \
  X(total_amount, "totalAmount", NUMBER, REQUIRED)                                                             \
  X(created_at, "createdAt", STRING, REQUIRED)

/* OrderStatusUpdated: {"orderId","status","previousStatus","updatedAt","reason"?} */
#define CQRS_ORDER_STATUS_UPDATED_FIELDS(X)                                                                    \
  X(order_id, "orderId", STRING, OPTIONAL)                                                                     \
  X(status, "status", STRING, REQUIRED)                                                                        \
  X(previous_status, "previousStatus", STRING, OPTIONAL)                                                       \
  X(updated_at, "updatedAt", STRING, REQUIRED)                                                                 \
  X(reason, "reason", STRING, OPTIONAL)

/* The values an order's status takes (OrderStatusUpdated's status, the
 * order summary's status): cqrs_order_statuses lists them in this order, the
 * happy path's, then NULL; Cancelled is the side exit from any state that is
 * not final. */
#define CQRS_ORDER_CREATED "Created"
#define CQRS_ORDER_PROCESSING "Processing"
#define CQRS_ORDER_SHIPPED "Shipped"
#define CQRS_ORDER_DELIVERED "Delivered"
#define CQRS_ORDER_CANCELLED "Cancelled"
extern const char *const cqrs_order_statuses[];

#define CQRS_ORDER_EVENTS(X)                                                                                   \
  X("order", order_created, "OrderCreated", 2, CQRS_ORDER_CREATED_FIELDS)                                      \
  X("order", order_status_updated, "OrderStatusUpdated", 1, CQRS_ORDER_STATUS_UPDATED_FIELDS)
#define CQRS_ORDER_EVENTS_PAST(X)                                                                              \
  X("order", order_created_v1, "OrderCreated", 1, CQRS_ORDER_CREATED_V1_FIELDS)

/* ---- customer ----------------------------------------------------------- */

/* The values a customer's status takes (the customer document's status; a
 * registration makes it ACTIVE, a suspension SUSPENDED): cqrs_customer_statuses
 * lists them, then NULL. */
#define CQRS_CUSTOMER_ACTIVE "ACTIVE"
#define CQRS_CUSTOMER_SUSPENDED "SUSPENDED"
extern const char *const cqrs_customer_statuses[];

/* CustomerRegistered: {"customerId","email","name","registeredAt"} */
#define CQRS_CUSTOMER_REGISTERED_FIELDS(X)                                                                     \
  X(customer_id, "customerId", STRING, OPTIONAL)                                                               \
  X(email, "email", STRING, REQUIRED)                                                                          \
  X(name, "name", STRING, REQUIRED)                                                                            \
  X(registered_at, "registeredAt", STRING, REQUIRED)

/* CustomerEmailUpdated v2: {"customerId","oldEmail","email","updatedAt"} */
#define CQRS_CUSTOMER_EMAIL_UPDATED_FIELDS(X)                                                                  \
  X(customer_id, "customerId", STRING, OPTIONAL)                                                               \
  X(old_email, "oldEmail", STRING, OPTIONAL)                                                                   \
  X(email, "email", STRING, REQUIRED)                                                                          \
  X(updated_at, "updatedAt", STRING, REQUIRED)

/* CustomerEmailUpdated v1: the new address was called newEmail. */
#define CQRS_CUSTOMER_EMAIL_UPDATED_V1_FIELDS(X)                                                               \
  X(customer_id, "customerId", STRING, OPTIONAL)                                                               \
  X(old_email, "oldEmail", STRING, OPTIONAL)                                                                   \
  X(new_email, "newEmail", STRING, REQUIRED)                                                                   \
  X(updated_at, "updatedAt", STRING, REQUIRED)

/* CustomerSuspended: {"customerId","reason","suspendedAt"} */
#define CQRS_CUSTOMER_SUSPENDED_FIELDS(X)                                                                      \
  X(customer_id, "customerId", STRING, OPTIONAL)                                                               \
  X(reason, "reason", STRING, REQUIRED)                                                                        \
  X(suspended_at, "suspendedAt", STRING, REQUIRED)

/* CustomerOrderRecorded: {"customerId","orderId","recordedAt"}: an ACTIVE
 * customer placed an order (refused 422 when the customer is not ACTIVE). The
 * customer aggregate orders it with CustomerSuspended: that order decides
 * whether the suspension covers the order. */
#define CQRS_CUSTOMER_ORDER_RECORDED_FIELDS(X)                                                                 \
  X(customer_id, "customerId", STRING, OPTIONAL)                                                               \
  X(order_id, "orderId", STRING, REQUIRED)                                                                     \
  X(recorded_at, "recordedAt", STRING, REQUIRED)

#define CQRS_CUSTOMER_EVENTS(X)                                                                                \
  X("customer", customer_registered, "CustomerRegistered", 1, CQRS_CUSTOMER_REGISTERED_FIELDS)                 \
  X("customer", customer_email_updated, "CustomerEmailUpdated", 2, CQRS_CUSTOMER_EMAIL_UPDATED_FIELDS)         \
  X("customer", customer_suspended, "CustomerSuspended", 1, CQRS_CUSTOMER_SUSPENDED_FIELDS)                    \
  X("customer", customer_order_recorded, "CustomerOrderRecorded", 1, CQRS_CUSTOMER_ORDER_RECORDED_FIELDS)
#define CQRS_CUSTOMER_EVENTS_PAST(X)                                                                           \
  X("customer", customer_email_updated_v1, "CustomerEmailUpdated", 1, CQRS_CUSTOMER_EMAIL_UPDATED_V1_FIELDS)

/* ---- every event type --------------------------------------------------- */

/* Each type at its current version. */
#define CQRS_EVENT_TYPES(X) CQRS_USER_EVENTS(X) CQRS_ORDER_EVENTS(X) CQRS_CUSTOMER_EVENTS(X)
/* Every earlier version of a type, each type's in ascending order. */
#define CQRS_EVENT_PAST_VERSIONS(X) CQRS_USER_EVENTS_PAST(X) CQRS_ORDER_EVENTS_PAST(X) CQRS_CUSTOMER_EVENTS_PAST(X)

CQRS_EVENT_TYPES(CQRS_EVENT_DECLARE_)
CQRS_EVENT_PAST_VERSIONS(CQRS_EVENT_DECLARE_)

#define CQRS_EVENT_UNION_MEMBER_(aggregate, ev, type_name, version, FIELDS) cqrs_##ev##_t ev;
union cqrs_event_data {
  CQRS_EVENT_TYPES(CQRS_EVENT_UNION_MEMBER_)
  CQRS_EVENT_PAST_VERSIONS(CQRS_EVENT_UNION_MEMBER_)
};

/* Every event type at its current version, NULL-terminated, in the order of
 * CQRS_EVENT_TYPES. */
extern const cqrs_event_type_t *const cqrs_event_types[];

/* Every version of every event type, NULL-terminated: each type's versions
 * in ascending order (1, 2, ...), for code that lists schemas version by
 * version (the schema registry). */
extern const cqrs_event_type_t *const cqrs_event_versions[];

/* The descriptor of event type name (ce_type) at its current version, or
 * NULL when the contract does not know it. */
const cqrs_event_type_t *cqrs_event_type_find(const char *name);

/* The descriptor of event type name at schema version, or NULL when the
 * contract knows no such type or version. */
const cqrs_event_type_t *cqrs_event_type_find_version(const char *name, int version);

/* Checks that data is a valid event of type (at type's version): it decodes
 * through the contract, so every required field is there with its type.
 * False with the decode's CQRS_ERR_INVALID naming the field. Pure; can't fail
 * otherwise. command-svc runs it on every event before it is appended. */
bool cqrs_event_validate(const cqrs_event_type_t *type, const bson_t *data, cqrs_error_t *err);

/* The JSON Schema name of a field type: "string", "number", "integer",
 * "object" or "array". */
const char *cqrs_field_type_json(cqrs_field_type_t type);

#endif
