/* The event contract (cqrs/events.h): the descriptor table, each event type's
 * encode -> decode round trip against the wire format written out here by
 * hand, and decode refusals that name the field. */
#include "cqrs/events.h"
#include "cqrs/json.h"
#include "unit.h"

#include <stdio.h>

/* One event of each type at each schema version as the deciders write (or
 * wrote) it: compact, in field order, numbers as cqrs_json_write writes them. */
typedef struct {
  const char *type;
  int version;
  const char *json;
} fixture_t;

static const fixture_t fixtures[] = {
    {"UserCreated", 1, "{\"userId\":\"u-1\",\"email\":\"ann@example.com\",\"name\":\"Ann\","
                    "\"createdAt\":\"2026-03-01T10:00:00.000Z\"}"},
    {"UserProfileUpdated", 1, "{\"userId\":\"u-1\",\"changes\":{\"name\":\"Bo\",\"email\":\"bo@example.com\"},"
                           "\"updatedAt\":\"2026-03-02T11:00:00.000Z\"}"},
    {"OrderCreated", 2, "{\"orderId\":\"o-1\",\"userId\":\"u-1\",\"items\":[{\"product\":\"Pen\",\"quantity\":3,"
                        "\"price\":1.5},{\"product\":\"Book\",\"quantity\":1,\"price\":21.0}],\"totalAmount\":25.5,"
                        "\"currency\":\"EUR\",\"createdAt\":\"2026-03-01T10:00:00.000Z\",\"customerId\":\"k-1\","
                        "\"processBy\":\"2026-03-02T10:00:00.000Z\"}"},
    {"OrderCreated", 1, "{\"orderId\":\"o-1\",\"userId\":\"u-1\",\"items\":[{\"product\":\"Pen\",\"quantity\":3,"
                        "\"price\":1.5},{\"product\":\"Book\",\"quantity\":1,\"price\":21.0}],\"totalAmount\":25.5,"
                        "\"createdAt\":\"2026-03-01T10:00:00.000Z\"}"},
    {"OrderStatusUpdated", 1, "{\"orderId\":\"o-1\",\"status\":\"Cancelled\",\"previousStatus\":\"Processing\","
                              "\"updatedAt\":\"2026-03-02T11:00:00.000Z\",\"reason\":\"CUSTOMER_SUSPENDED\"}"},
    {"CustomerRegistered", 1, "{\"customerId\":\"k-1\",\"email\":\"ann@example.com\",\"name\":\"Ann\","
                           "\"registeredAt\":\"2026-03-01T10:00:00.000Z\"}"},
    {"CustomerEmailUpdated", 2, "{\"customerId\":\"k-1\",\"oldEmail\":\"ann@example.com\",\"email\":\"bo@example.com\","
                                "\"updatedAt\":\"2026-03-02T11:00:00.000Z\"}"},
    {"CustomerEmailUpdated", 1, "{\"customerId\":\"k-1\",\"oldEmail\":\"ann@example.com\",\"newEmail\":\"bo@example.com\","
                                "\"updatedAt\":\"2026-03-02T11:00:00.000Z\"}"},
    {"CustomerSuspended", 1, "{\"customerId\":\"k-1\",\"reason\":\"chargebacks\","
                          "\"suspendedAt\":\"2026-03-03T00:00:00.000Z\"}"},
    {"UserOrderRecorded", 1, "{\"userId\":\"u-1\",\"orderId\":\"o-1\",\"recordedAt\":\"2026-03-01T10:00:00.000Z\"}"},
    {"CustomerOrderRecorded", 1, "{\"customerId\":\"k-1\",\"orderId\":\"o-1\","
                              "\"recordedAt\":\"2026-03-01T10:00:00.000Z\"}"},
};
#define N_FIXTURES (sizeof fixtures / sizeof fixtures[0])

static bson_t *doc, *out;
static char *json;
static cqrs_error_t err;

static void teardown(void) {
  if (doc) bson_destroy(doc);
  if (out) bson_destroy(out);
  bson_free(json);
  doc = out = NULL;
  json = NULL;
}

TestSuite(events, .fini = teardown);

/* The fixture of type at version. */
static const fixture_t *fixture_v(const char *type, int version) {
  for (size_t i = 0; i < N_FIXTURES; i++)
    if (strcmp(fixtures[i].type, type) == 0 && fixtures[i].version == version) return &fixtures[i];
  return NULL;
}

/* The fixture of type at its current version. */
static const fixture_t *fixture(const char *type) {
  const cqrs_event_type_t *t = cqrs_event_type_find(type);
  return t ? fixture_v(type, t->version) : NULL;
}

/* The descriptor of fixture f's type and version. */
static const cqrs_event_type_t *type_of(const fixture_t *f) {
  const cqrs_event_type_t *t = cqrs_event_type_find_version(f->type, f->version);
  cr_assert_not_null(t, "%s v%d", f->type, f->version);
  return t;
}

/* Parses json into doc (replacing it). */
static void load(const char *text) {
  if (doc) bson_destroy(doc);
  doc = u_parse(text);
}

/* A fresh out document. */
static bson_t *fresh(void) {
  if (out) bson_destroy(out);
  return out = bson_new();
}

/* out as JSON, as the command loop writes it to Kafka. */
static const char *wire(void) {
  bson_free(json);
  return json = cqrs_json_write(out, NULL);
}

/* decode of data with type must fail, naming field. */
static void assert_refused(const cqrs_event_type_t *t, const bson_t *data, const char *field) {
  cqrs_event_data_t e;
  cqrs_error_clear(&err);
  char *text = bson_as_relaxed_extended_json(data, NULL);
  bool ok = t->decode(data, &e, &err);
  cr_assert_not(ok, "%s decoded %s", t->name, text);
  cr_assert_eq(err.code, CQRS_ERR_INVALID, "%s %s", t->name, text);
  cr_assert_str_eq(err.field, field, "%s %s: %s", t->name, text, err.message);
  cr_assert_not_null(strstr(err.message, field), "the message names the field: %s", err.message);
  bson_free(text);
}

static void assert_refused_json(const cqrs_event_type_t *t, const char *text, const char *field) {
  load(text);
  assert_refused(t, doc, field);
}

/* doc with member key's value replaced by true (a type no field has). */
static bson_t *with_bool(const bson_t *src, const char *key) {
  bson_t *copy = bson_new();
  bson_iter_t it;
  cr_assert(bson_iter_init(&it, src));
  while (bson_iter_next(&it)) {
    if (strcmp(bson_iter_key(&it), key) == 0)
      BSON_APPEND_BOOL(copy, key, true);
    else
      bson_append_iter(copy, NULL, 0, &it);
  }
  return copy;
}

/* doc with member key's value replaced by "". */
static bson_t *with_empty_string(const bson_t *src, const char *key) {
  bson_t *copy = bson_new();
  bson_copy_to_excluding_noinit(src, copy, key, NULL);
  BSON_APPEND_UTF8(copy, key, "");
  return copy;
}

/* The descriptor table --------------------------------------------------- */

/* Field names are unique and non-empty, nested records are where the type
 * says, and only strings are optional (encode/decode have no presence flag
 * for other types). */
static void check_record(const cqrs_event_record_t *r, const char *where) {
  cr_assert_not_null(r, "%s has no fields", where);
  cr_assert_gt(r->n_fields, 0, "%s", where);
  for (size_t i = 0; i < r->n_fields; i++) {
    const cqrs_event_field_t *f = &r->fields[i];
    cr_assert(f->name && *f->name, "%s field %zu", where, i);
    for (size_t j = 0; j < i; j++) cr_assert_str_neq(r->fields[j].name, f->name, "%s: %s twice", where, f->name);
    bool nested = f->type == CQRS_FIELD_OBJECT || f->type == CQRS_FIELD_ARRAY;
    cr_assert_eq(f->record != NULL, nested, "%s.%s", where, f->name);
    cr_assert(f->required || f->type == CQRS_FIELD_STRING, "%s.%s: only strings can be optional", where, f->name);
    if (nested) check_record(f->record, f->name);
  }
}

Test(events, registry_lists_every_type) {
  const char *want[] = {"UserCreated",        "UserProfileUpdated",   "UserOrderRecorded",
                        "OrderCreated",       "OrderStatusUpdated",   "CustomerRegistered",
                        "CustomerEmailUpdated", "CustomerSuspended", "CustomerOrderRecorded"};
  size_t n = 0;
  for (; cqrs_event_types[n]; n++) {
    const cqrs_event_type_t *t = cqrs_event_types[n];
    cr_assert_str_eq(t->name, want[n]);
    cr_assert_eq(cqrs_event_type_find(t->name), t);
    cr_assert_eq(t->version, strcmp(t->name, "OrderCreated") == 0 || strcmp(t->name, "CustomerEmailUpdated") == 0 ? 2 : 1,
                 "%s: at its current schema version", t->name);
    cr_assert(strcmp(t->aggregate_type, "user") == 0 || strcmp(t->aggregate_type, "order") == 0 ||
                  strcmp(t->aggregate_type, "customer") == 0,
              "%s: aggregate %s", t->name, t->aggregate_type);
    cr_assert_not_null(t->encode);
    cr_assert_not_null(t->decode);
    check_record(t->data, t->name);
  }
  cr_assert_eq(n, sizeof want / sizeof want[0]);
  cr_assert_str_eq(cqrs_user_created_event.aggregate_type, "user");
  cr_assert_str_eq(cqrs_order_status_updated_event.aggregate_type, "order");
  cr_assert_str_eq(cqrs_customer_suspended_event.aggregate_type, "customer");
}

Test(events, unknown_type_is_not_found) {
  cr_assert_null(cqrs_event_type_find("OrderRefunded"));
  cr_assert_null(cqrs_event_type_find(""));
  cr_assert_null(cqrs_event_type_find("usercreated"), "exact case");
}

/* Every version of every type is listed once, versions ascending within a
 * type, 1 up to the current one without a gap; find_version finds each. */
Test(events, versions_list_every_version) {
  size_t n = 0;
  for (; cqrs_event_versions[n]; n++) {
    const cqrs_event_type_t *t = cqrs_event_versions[n];
    cr_assert_eq(cqrs_event_type_find_version(t->name, t->version), t, "%s v%d", t->name, t->version);
    const cqrs_event_type_t *current = cqrs_event_type_find(t->name);
    cr_assert_not_null(current, "%s", t->name);
    cr_assert_leq(t->version, current->version);
    cr_assert_str_eq(t->aggregate_type, current->aggregate_type);
    check_record(t->data, t->name);
    for (int v = 1; v < t->version; v++) {
      const cqrs_event_type_t *older = cqrs_event_type_find_version(t->name, v);
      cr_assert_not_null(older, "%s has no v%d", t->name, v);
      bool listed_before = false;
      for (size_t j = 0; j < n; j++) listed_before |= cqrs_event_versions[j] == older;
      cr_assert(listed_before, "%s v%d is listed after v%d", t->name, v, t->version);
    }
  }
  cr_assert_eq(n, 11, "9 types, 2 of them with a v1 as well");
  cr_assert_eq(cqrs_event_type_find_version("OrderCreated", 1), &cqrs_order_created_v1_event);
  cr_assert_eq(cqrs_event_type_find_version("OrderCreated", 2), &cqrs_order_created_event);
  cr_assert_eq(cqrs_event_type_find_version("CustomerEmailUpdated", 1), &cqrs_customer_email_updated_v1_event);
  cr_assert_null(cqrs_event_type_find_version("OrderCreated", 3));
  cr_assert_null(cqrs_event_type_find_version("OrderCreated", 0));
  cr_assert_null(cqrs_event_type_find_version("UserCreated", 2));
  cr_assert_null(cqrs_event_type_find_version("OrderRefunded", 1));
}

/* A new event type or version needs its fixture here, so it gets the generic
 * tests below. */
Test(events, every_version_has_a_fixture) {
  for (size_t i = 0; cqrs_event_versions[i]; i++)
    cr_assert_not_null(fixture_v(cqrs_event_versions[i]->name, cqrs_event_versions[i]->version),
                       "no fixture for %s v%d", cqrs_event_versions[i]->name, cqrs_event_versions[i]->version);
}

/* Validation before append is the decode: a good event passes, one missing a
 * required field of its version fails naming it. */
Test(events, validate_is_the_decode) {
  for (size_t i = 0; i < N_FIXTURES; i++) {
    load(fixtures[i].json);
    cr_assert(cqrs_event_validate(type_of(&fixtures[i]), doc, &err), "%s v%d: %s", fixtures[i].type,
              fixtures[i].version, err.message);
  }
  load(fixture_v("OrderCreated", 1)->json);
  cr_assert_not(cqrs_event_validate(&cqrs_order_created_event, doc, &err), "a v1 order is not a valid v2");
  cr_assert_str_eq(err.field, "currency");
  load(fixture_v("CustomerEmailUpdated", 1)->json);
  cr_assert_not(cqrs_event_validate(&cqrs_customer_email_updated_event, doc, &err));
  cr_assert_str_eq(err.field, "email");
}

Test(events, fields_as_listed) {
  const cqrs_event_record_t *r = cqrs_order_created_event.data;
  const char *names[] = {"orderId", "userId", "items", "totalAmount", "currency", "createdAt", "customerId", "processBy"};
  const cqrs_field_type_t types[] = {CQRS_FIELD_STRING, CQRS_FIELD_STRING, CQRS_FIELD_ARRAY, CQRS_FIELD_NUMBER,
                                     CQRS_FIELD_STRING, CQRS_FIELD_STRING, CQRS_FIELD_STRING, CQRS_FIELD_STRING};
  const bool required[] = {false, true, true, true, true, true, false, false};
  cr_assert_eq(r->n_fields, 8);
  for (size_t i = 0; i < 8; i++) {
    cr_assert_str_eq(r->fields[i].name, names[i]);
    cr_assert_eq(r->fields[i].type, types[i], "%s", names[i]);
    cr_assert_eq(r->fields[i].required, required[i], "%s", names[i]);
  }
  const cqrs_event_record_t *item = r->fields[2].record;
  cr_assert_eq(item, &cqrs_order_item_record);
  cr_assert_eq(item->n_fields, 3);
  cr_assert_str_eq(item->fields[1].name, "quantity");
  cr_assert_eq(item->fields[1].type, CQRS_FIELD_INTEGER);
  const cqrs_event_field_t *changes = &cqrs_user_profile_updated_event.data->fields[1];
  cr_assert_str_eq(changes->name, "changes");
  cr_assert_eq(changes->type, CQRS_FIELD_OBJECT);
  cr_assert_eq(changes->record, &cqrs_user_profile_changes_record);
  cr_assert_not(changes->record->fields[0].required);
}

Test(events, field_type_json_names) {
  cr_assert_str_eq(cqrs_field_type_json(CQRS_FIELD_STRING), "string");
  cr_assert_str_eq(cqrs_field_type_json(CQRS_FIELD_NUMBER), "number");
  cr_assert_str_eq(cqrs_field_type_json(CQRS_FIELD_INTEGER), "integer");
  cr_assert_str_eq(cqrs_field_type_json(CQRS_FIELD_OBJECT), "object");
  cr_assert_str_eq(cqrs_field_type_json(CQRS_FIELD_ARRAY), "array");
}

/* Typed encode: the exact wire format ------------------------------------ */

Test(events, user_created_round_trip) {
  cqrs_user_created_t e = {.user_id = "u-1", .email = "ann@example.com", .name = "Ann",
                           .created_at = "2026-03-01T10:00:00.000Z"};
  cqrs_user_created_encode(&e, fresh());
  cr_assert_str_eq(wire(), fixture("UserCreated")->json);
  cqrs_user_created_t back;
  cr_assert(cqrs_user_created_decode(out, &back, &err), "%s", err.message);
  cr_assert_str_eq(back.user_id, "u-1");
  cr_assert_str_eq(back.email, "ann@example.com");
  cr_assert_str_eq(back.name, "Ann");
  cr_assert_str_eq(back.created_at, "2026-03-01T10:00:00.000Z");
}

Test(events, user_profile_updated_round_trip) {
  cqrs_user_profile_updated_t e = {.user_id = "u-1", .changes = {.name = "Bo", .email = "bo@example.com"},
                                   .updated_at = "2026-03-02T11:00:00.000Z"};
  cqrs_user_profile_updated_encode(&e, fresh());
  cr_assert_str_eq(wire(), fixture("UserProfileUpdated")->json);
  cqrs_user_profile_updated_t back;
  cr_assert(cqrs_user_profile_updated_decode(out, &back, &err), "%s", err.message);
  cr_assert_str_eq(back.user_id, "u-1");
  cr_assert_str_eq(back.changes.name, "Bo");
  cr_assert_str_eq(back.changes.email, "bo@example.com");
  cr_assert_str_eq(back.updated_at, "2026-03-02T11:00:00.000Z");
}

/* changes holds only what changed: an absent change is left out, not null. */
Test(events, user_profile_updated_one_change) {
  cqrs_user_profile_updated_t e = {.user_id = "u-1", .changes = {.email = "bo@x.io"}, .updated_at = "t"};
  cqrs_user_profile_updated_encode(&e, fresh());
  cr_assert_str_eq(wire(), "{\"userId\":\"u-1\",\"changes\":{\"email\":\"bo@x.io\"},\"updatedAt\":\"t\"}");
  cqrs_user_profile_updated_t back;
  cr_assert(cqrs_user_profile_updated_decode(out, &back, &err), "%s", err.message);
  cr_assert_null(back.changes.name);
  cr_assert_str_eq(back.changes.email, "bo@x.io");
  load("{\"changes\":{\"name\":null},\"updatedAt\":\"t\"}");
  cr_assert(cqrs_user_profile_updated_decode(doc, &back, &err), "%s", err.message);
  cr_assert_null(back.changes.name, "null reads as absent");
  cr_assert_null(back.user_id);
}

Test(events, order_created_round_trip) {
  cqrs_order_created_t e = {.order_id = "o-1", .user_id = "u-1", .total_amount = 25.5, .currency = "EUR",
                            .created_at = "2026-03-01T10:00:00.000Z", .customer_id = "k-1",
                            .process_by = "2026-03-02T10:00:00.000Z"};
  bson_init(&e.items);
  cqrs_order_item_append(&e.items, 0, &(cqrs_order_item_t){.product = "Pen", .quantity = 3, .price = 1.5});
  cqrs_order_item_append(&e.items, 1, &(cqrs_order_item_t){.product = "Book", .quantity = 1, .price = 21});
  cqrs_order_created_encode(&e, fresh());
  bson_destroy(&e.items);
  cr_assert_str_eq(wire(), fixture("OrderCreated")->json);
  cqrs_order_created_t back;
  cr_assert(cqrs_order_created_decode(out, &back, &err), "%s", err.message);
  cr_assert_str_eq(back.order_id, "o-1");
  cr_assert_str_eq(back.user_id, "u-1");
  cr_assert_float_eq(back.total_amount, 25.5, 1e-12);
  cr_assert_str_eq(back.currency, "EUR");
  cr_assert_str_eq(back.created_at, "2026-03-01T10:00:00.000Z");
  cr_assert_str_eq(back.customer_id, "k-1");
  cr_assert_str_eq(back.process_by, "2026-03-02T10:00:00.000Z");
  cr_assert_eq(u_count(&back.items), 2);
  cr_assert_str_eq(u_str(&back.items, "1.product"), "Book");
  cr_assert_eq(u_i64(&back.items, "0.quantity"), 3);
  cqrs_order_item_t item;
  bson_t first;
  bool present;
  cr_assert(cqrs_json_get_object(&back.items, "0", NULL, true, &first, &present, NULL));
  cr_assert(cqrs_order_item_decode(&first, &item, &err), "%s", err.message);
  cr_assert_str_eq(item.product, "Pen");
  cr_assert_eq(item.quantity, 3);
  cr_assert_float_eq(item.price, 1.5, 1e-12);
}

/* totalAmount is a double on the wire whatever the reader was given. */
Test(events, order_created_total_is_always_a_double) {
  load("{\"userId\":\"u\",\"items\":[],\"totalAmount\":60,\"currency\":\"USD\",\"createdAt\":\"t\"}");
  cqrs_order_created_t e;
  cr_assert(cqrs_order_created_decode(doc, &e, &err), "%s", err.message);
  cr_assert_null(e.order_id);
  cr_assert_float_eq(e.total_amount, 60.0, 1e-12);
  cqrs_order_created_encode(&e, fresh());
  cr_assert_str_eq(wire(),
                   "{\"userId\":\"u\",\"items\":[],\"totalAmount\":60.0,\"currency\":\"USD\",\"createdAt\":\"t\"}");
}

/* The past version keeps its own shape: v1 has no currency. */
Test(events, order_created_v1_round_trip) {
  cqrs_order_created_v1_t e = {.order_id = "o-1", .user_id = "u-1", .total_amount = 25.5,
                               .created_at = "2026-03-01T10:00:00.000Z"};
  bson_init(&e.items);
  cqrs_order_item_append(&e.items, 0, &(cqrs_order_item_t){.product = "Pen", .quantity = 3, .price = 1.5});
  cqrs_order_item_append(&e.items, 1, &(cqrs_order_item_t){.product = "Book", .quantity = 1, .price = 21});
  cqrs_order_created_v1_encode(&e, fresh());
  bson_destroy(&e.items);
  cr_assert_str_eq(wire(), fixture_v("OrderCreated", 1)->json);
  cqrs_order_created_v1_t back;
  cr_assert(cqrs_order_created_v1_decode(out, &back, &err), "%s", err.message);
  cr_assert_str_eq(back.user_id, "u-1");
  cr_assert_float_eq(back.total_amount, 25.5, 1e-12);
  cr_assert_eq(u_count(&back.items), 2);
}

Test(events, customer_email_updated_v1_round_trip) {
  cqrs_customer_email_updated_v1_t e = {.customer_id = "k-1", .old_email = "ann@example.com",
                                        .new_email = "bo@example.com", .updated_at = "2026-03-02T11:00:00.000Z"};
  cqrs_customer_email_updated_v1_encode(&e, fresh());
  cr_assert_str_eq(wire(), fixture_v("CustomerEmailUpdated", 1)->json);
  cqrs_customer_email_updated_v1_t back;
  cr_assert(cqrs_customer_email_updated_v1_decode(out, &back, &err), "%s", err.message);
  cr_assert_str_eq(back.new_email, "bo@example.com");
  cr_assert_str_eq(back.old_email, "ann@example.com");
}

Test(events, order_status_updated_round_trip) {
  cqrs_order_status_updated_t e = {.order_id = "o-1", .status = "Cancelled", .previous_status = "Processing",
                                   .updated_at = "2026-03-02T11:00:00.000Z", .reason = "CUSTOMER_SUSPENDED"};
  cqrs_order_status_updated_encode(&e, fresh());
  cr_assert_str_eq(wire(), fixture("OrderStatusUpdated")->json);
  cqrs_order_status_updated_t back;
  cr_assert(cqrs_order_status_updated_decode(out, &back, &err), "%s", err.message);
  cr_assert_str_eq(back.order_id, "o-1");
  cr_assert_str_eq(back.reason, "CUSTOMER_SUSPENDED");
  cr_assert_str_eq(back.status, "Cancelled");
  cr_assert_str_eq(back.previous_status, "Processing");
  cr_assert_str_eq(back.updated_at, "2026-03-02T11:00:00.000Z");
}

Test(events, customer_registered_round_trip) {
  cqrs_customer_registered_t e = {.customer_id = "k-1", .email = "ann@example.com", .name = "Ann",
                                  .registered_at = "2026-03-01T10:00:00.000Z"};
  cqrs_customer_registered_encode(&e, fresh());
  cr_assert_str_eq(wire(), fixture("CustomerRegistered")->json);
  cqrs_customer_registered_t back;
  cr_assert(cqrs_customer_registered_decode(out, &back, &err), "%s", err.message);
  cr_assert_str_eq(back.customer_id, "k-1");
  cr_assert_str_eq(back.email, "ann@example.com");
  cr_assert_str_eq(back.name, "Ann");
  cr_assert_str_eq(back.registered_at, "2026-03-01T10:00:00.000Z");
}

Test(events, customer_email_updated_round_trip) {
  cqrs_customer_email_updated_t e = {.customer_id = "k-1", .old_email = "ann@example.com",
                                     .email = "bo@example.com", .updated_at = "2026-03-02T11:00:00.000Z"};
  cqrs_customer_email_updated_encode(&e, fresh());
  cr_assert_str_eq(wire(), fixture("CustomerEmailUpdated")->json);
  cqrs_customer_email_updated_t back;
  cr_assert(cqrs_customer_email_updated_decode(out, &back, &err), "%s", err.message);
  cr_assert_str_eq(back.customer_id, "k-1");
  cr_assert_str_eq(back.old_email, "ann@example.com");
  cr_assert_str_eq(back.email, "bo@example.com");
  cr_assert_str_eq(back.updated_at, "2026-03-02T11:00:00.000Z");
}

Test(events, customer_suspended_round_trip) {
  cqrs_customer_suspended_t e = {.customer_id = "k-1", .reason = "chargebacks",
                                 .suspended_at = "2026-03-03T00:00:00.000Z"};
  cqrs_customer_suspended_encode(&e, fresh());
  cr_assert_str_eq(wire(), fixture("CustomerSuspended")->json);
  cqrs_customer_suspended_t back;
  cr_assert(cqrs_customer_suspended_decode(out, &back, &err), "%s", err.message);
  cr_assert_str_eq(back.customer_id, "k-1");
  cr_assert_str_eq(back.reason, "chargebacks");
  cr_assert_str_eq(back.suspended_at, "2026-03-03T00:00:00.000Z");
}

/* An optional string that is NULL is left out; one that is "" is written. */
Test(events, optional_absent_is_left_out) {
  cqrs_order_status_updated_t e = {.status = "Cancelled", .previous_status = "", .updated_at = "t"};
  cqrs_order_status_updated_encode(&e, fresh());
  cr_assert_str_eq(wire(), "{\"status\":\"Cancelled\",\"previousStatus\":\"\",\"updatedAt\":\"t\"}");
  cqrs_order_status_updated_t back;
  cr_assert(cqrs_order_status_updated_decode(out, &back, &err), "%s", err.message);
  cr_assert_null(back.order_id);
  cr_assert_str_eq(back.previous_status, "");
}

/* Through the descriptors, every type ------------------------------------ */

/* decode then encode through the descriptor gives the wire format back, byte
 * for byte; decoded strings borrow from the data. */
Test(events, every_type_reencodes_identically) {
  for (size_t i = 0; i < N_FIXTURES; i++) {
    const cqrs_event_type_t *t = type_of(&fixtures[i]);
    load(fixtures[i].json);
    cqrs_event_data_t e;
    cr_assert(t->decode(doc, &e, &err), "%s: %s", t->name, err.message);
    t->encode(&e, fresh());
    cr_assert_str_eq(wire(), fixtures[i].json, "%s", t->name);
  }
}

/* Members the contract does not know are ignored (a newer writer's field). */
Test(events, unknown_members_are_ignored) {
  for (size_t i = 0; i < N_FIXTURES; i++) {
    const cqrs_event_type_t *t = type_of(&fixtures[i]);
    load(fixtures[i].json);
    BSON_APPEND_UTF8(doc, "addedLater", "x");
    cqrs_event_data_t e;
    cr_assert(t->decode(doc, &e, &err), "%s: %s", t->name, err.message);
  }
}

/* Every required field: absent, null and (for strings) empty are refused,
 * naming it; every field, required or not, of the wrong type is refused. */
Test(events, every_field_refusal_names_it) {
  size_t refusals = 0;
  for (size_t i = 0; i < N_FIXTURES; i++) {
    const cqrs_event_type_t *t = type_of(&fixtures[i]);
    load(fixtures[i].json);
    for (size_t f = 0; f < t->data->n_fields; f++) {
      const cqrs_event_field_t *field = &t->data->fields[f];
      bson_t *bad = with_bool(doc, field->name);
      assert_refused(t, bad, field->name);
      bson_destroy(bad);
      refusals++;
      if (!field->required) continue;
      bad = bson_new();
      bson_copy_to_excluding_noinit(doc, bad, field->name, NULL);
      assert_refused(t, bad, field->name);
      BSON_APPEND_NULL(bad, field->name);
      assert_refused(t, bad, field->name);
      bson_destroy(bad);
      refusals += 2;
      if (field->type != CQRS_FIELD_STRING) continue;
      bad = with_empty_string(doc, field->name);
      assert_refused(t, bad, field->name);
      bson_destroy(bad);
      refusals++;
    }
  }
  cr_assert_geq(refusals, 60);
}

/* The first bad field in wire order is the one named. */
Test(events, first_bad_field_is_named) {
  assert_refused_json(&cqrs_customer_registered_event, "{\"customerId\":\"k-1\",\"registeredAt\":1}", "email");
  assert_refused_json(&cqrs_order_created_event, "{\"items\":{},\"totalAmount\":\"9\"}", "userId");
}

Test(events, nested_refusals_name_the_path) {
  const cqrs_event_type_t *upd = &cqrs_user_profile_updated_event, *order = &cqrs_order_created_event;
  assert_refused_json(upd, "{\"changes\":{\"name\":5},\"updatedAt\":\"t\"}", "changes.name");
  assert_refused_json(upd, "{\"changes\":{\"name\":\"Bo\",\"email\":[]},\"updatedAt\":\"t\"}", "changes.email");
  assert_refused_json(upd, "{\"changes\":[],\"updatedAt\":\"t\"}", "changes");
  const char *head = "{\"userId\":\"u\",\"totalAmount\":1,\"createdAt\":\"t\",\"items\":";
  const char *ok = "{\"product\":\"Pen\",\"quantity\":1,\"price\":1}";
  const struct {
    const char *items, *field;
  } cases[] = {
      {"[%s,\"Pen\"]", "items[1]"},
      {"[%s,null]", "items[1]"},
      {"[{\"quantity\":1,\"price\":1}]", "items[0].product"},
      {"[%s,{\"product\":\"\",\"quantity\":1,\"price\":1}]", "items[1].product"},
      {"[{\"product\":\"Pen\",\"quantity\":1.5,\"price\":1}]", "items[0].quantity"},
      {"[{\"product\":\"Pen\",\"quantity\":\"2\",\"price\":1}]", "items[0].quantity"},
      {"[%s,%s,{\"product\":\"Pen\",\"quantity\":1}]", "items[2].price"},
      {"[{\"product\":\"Pen\",\"quantity\":1,\"price\":{\"$numberDouble\":\"NaN\"}}]", "items[0].price"},
  };
  char items[512], text[1024];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(items, sizeof items, cases[i].items, ok, ok);
    snprintf(text, sizeof text, "%s%s}", head, items);
    assert_refused_json(order, text, cases[i].field);
  }
}

/* The decoded struct borrows from the data: nothing to free, valid while
 * the data lives. */
Test(events, decoded_strings_borrow_from_data) {
  load(fixture("CustomerSuspended")->json);
  cqrs_customer_suspended_t e;
  cr_assert(cqrs_customer_suspended_decode(doc, &e, &err));
  const char *start = (const char *)bson_get_data(doc);
  cr_assert(e.reason > start && e.reason < start + doc->len);
}
