/* Upcasting (cqrs/upcast.h): the contract's table is consistent with its field
 * lists, each evolution gives the current shape, the current version is not
 * copied, and an unknown type or version is refused naming both. */
#include "cqrs/upcast.h"
#include "cqrs/json.h"
#include "unit.h"

#include <stdio.h>

static bson_t *doc;
static cqrs_upcast_t up;
static cqrs_error_t err;

static void teardown(void) {
  cqrs_upcast_cleanup(&up);
  if (doc) bson_destroy(doc);
  doc = NULL;
}

TestSuite(upcast, .fini = teardown);

static const cqrs_event_field_t *field_of(const cqrs_event_type_t *t, const char *name) {
  for (size_t i = 0; i < t->data->n_fields; i++)
    if (strcmp(t->data->fields[i].name, name) == 0) return &t->data->fields[i];
  return NULL;
}

/* up.data as compact JSON (bson_free). */
static char *json_of(const bson_t *b) { return cqrs_json_write(b, NULL); }

/* Every step connects a version to the next of the same type, and its fields
 * are where the field lists say: an added or derived field is new in `to`, a
 * renamed one leaves `from` and arrives in `to`. */
Test(upcast, table_matches_the_field_lists) {
  cr_assert_gt(cqrs_upcasters_n, 0);
  for (size_t i = 0; i < cqrs_upcasters_n; i++) {
    const cqrs_upcast_step_t *s = &cqrs_upcasters[i];
    cr_assert_str_eq(s->from->name, s->to->name, "step %zu", i);
    cr_assert_eq(s->to->version, s->from->version + 1, "step %zu", i);
    cr_assert_eq(cqrs_event_type_find_version(s->from->name, s->from->version), s->from);
    cr_assert_eq(cqrs_event_type_find_version(s->to->name, s->to->version), s->to);
    cr_assert_not_null(field_of(s->to, s->field), "%s v%d has no %s", s->to->name, s->to->version, s->field);
    cr_assert_null(field_of(s->from, s->field), "%s v%d already has %s", s->from->name, s->from->version, s->field);
    switch (s->kind) {
    case CQRS_UPCAST_ADD:
      cr_assert_not_null(s->value);
      cr_assert_eq(field_of(s->to, s->field)->type, CQRS_FIELD_STRING, "ADD writes a string");
      break;
    case CQRS_UPCAST_RENAME:
      cr_assert_not_null(field_of(s->from, s->old_field), "%s", s->old_field);
      cr_assert_null(field_of(s->to, s->old_field), "%s is gone in v%d", s->old_field, s->to->version);
      cr_assert_eq(field_of(s->from, s->old_field)->type, field_of(s->to, s->field)->type);
      break;
    case CQRS_UPCAST_DERIVE: cr_assert_not_null(s->derive); break;
    }
  }
}

/* Every past version reaches the current one, and the result decodes as it:
 * the v1 fixtures upcast to valid current events. */
Test(upcast, order_created_v1_gets_currency_usd) {
  doc = u_parse("{\"orderId\":\"o-1\",\"userId\":\"u-1\",\"items\":[{\"product\":\"Pen\",\"quantity\":1,"
                "\"price\":2.0}],\"totalAmount\":2.0,\"createdAt\":\"t\"}");
  cr_assert(cqrs_upcast("OrderCreated", 1, doc, &up, &err), "%s", err.message);
  cr_assert_eq(up.type, &cqrs_order_created_event);
  cr_assert_neq(up.data, doc, "a new document");
  char *j = json_of(up.data);
  cr_assert_str_eq(j, "{\"orderId\":\"o-1\",\"userId\":\"u-1\",\"items\":[{\"product\":\"Pen\",\"quantity\":1,"
                      "\"price\":2.0}],\"totalAmount\":2.0,\"createdAt\":\"t\",\"currency\":\"USD\"}");
  bson_free(j);
  cqrs_order_created_t e;
  cr_assert(cqrs_order_created_decode(up.data, &e, &err), "%s", err.message);
  cr_assert_str_eq(e.currency, CQRS_ORDER_CURRENCY_DEFAULT);
  cr_assert_str_eq(u_str(doc, "userId"), "u-1", "the input is untouched");
  cr_assert_not(u_has(doc, "currency"));
}

Test(upcast, a_field_the_data_has_is_kept) {
  doc = u_parse("{\"userId\":\"u-1\",\"items\":[],\"totalAmount\":2.0,\"currency\":\"JPY\",\"createdAt\":\"t\"}");
  cr_assert(cqrs_upcast("OrderCreated", 1, doc, &up, &err), "%s", err.message);
  cr_assert_str_eq(u_str(up.data, "currency"), "JPY");
  cr_assert_eq(u_count(up.data), 5);
}

/* null reads as absent, as decode reads it: the step fills it in. */
Test(upcast, a_null_field_is_absent) {
  doc = u_parse("{\"userId\":\"u-1\",\"currency\":null,\"items\":[],\"totalAmount\":2.0,\"createdAt\":\"t\"}");
  cr_assert(cqrs_upcast("OrderCreated", 1, doc, &up, &err), "%s", err.message);
  char *j = json_of(up.data);
  cr_assert_str_eq(j, "{\"userId\":\"u-1\",\"items\":[],\"totalAmount\":2.0,\"createdAt\":\"t\",\"currency\":\"USD\"}");
  bson_free(j);
  teardown();
  doc = u_parse("{\"email\":null,\"newEmail\":\"c@d.io\",\"updatedAt\":\"t\"}");
  cr_assert(cqrs_upcast("CustomerEmailUpdated", 1, doc, &up, &err), "%s", err.message);
  j = json_of(up.data);
  cr_assert_str_eq(j, "{\"email\":\"c@d.io\",\"updatedAt\":\"t\"}");
  bson_free(j);
}

Test(upcast, customer_email_updated_v1_renames_new_email) {
  doc = u_parse("{\"customerId\":\"k-1\",\"oldEmail\":\"a@b.io\",\"newEmail\":\"c@d.io\",\"updatedAt\":\"t\"}");
  cr_assert(cqrs_upcast("CustomerEmailUpdated", 1, doc, &up, &err), "%s", err.message);
  cr_assert_eq(up.type, &cqrs_customer_email_updated_event);
  char *j = json_of(up.data);
  cr_assert_str_eq(j, "{\"customerId\":\"k-1\",\"oldEmail\":\"a@b.io\",\"email\":\"c@d.io\",\"updatedAt\":\"t\"}",
                   "renamed in place, the value kept");
  bson_free(j);
  cqrs_customer_email_updated_t e;
  cr_assert(cqrs_customer_email_updated_decode(up.data, &e, &err), "%s", err.message);
  cr_assert_str_eq(e.email, "c@d.io");
}

/* The common case costs nothing: the current version is the input itself. */
Test(upcast, the_current_version_is_not_copied) {
  for (size_t i = 0; cqrs_event_types[i]; i++) {
    doc = u_parse("{\"x\":1}");
    cr_assert(cqrs_upcast(cqrs_event_types[i]->name, cqrs_event_types[i]->version, doc, &up, &err), "%s",
              err.message);
    cr_assert_eq(up.data, doc);
    cr_assert_eq(up.type, cqrs_event_types[i]);
    cr_assert_not(up.has_owned);
    teardown();
  }
}

/* A type without a past version, read as v1, is its v1. */
Test(upcast, a_type_never_evolved_is_version_1) {
  doc = u_parse("{\"reason\":\"r\",\"suspendedAt\":\"t\"}");
  cr_assert(cqrs_upcast("CustomerSuspended", 1, doc, &up, &err), "%s", err.message);
  cr_assert_eq(up.data, doc);
}

static void assert_unknown(const char *type, int version, const char *field) {
  doc = u_parse("{\"x\":1}");
  cqrs_error_clear(&err);
  cr_assert_not(cqrs_upcast(type, version, doc, &up, &err), "%s v%d", type, version);
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cr_assert_str_eq(err.field, field);
  char v[16];
  snprintf(v, sizeof v, "%d", version);
  cr_assert(strstr(err.message, type) && strstr(err.message, v), "names the type and version: %s", err.message);
  cr_assert_null(up.data);
  teardown();
}

Test(upcast, unknown_type_or_version_is_refused_naming_both) {
  assert_unknown("OrderRefunded", 1, "ce_type");
  assert_unknown("", 1, "ce_type");
  assert_unknown("OrderCreated", 3, "ce_schemaversion");
  assert_unknown("OrderCreated", 0, "ce_schemaversion");
  assert_unknown("OrderCreated", -4, "ce_schemaversion");
  assert_unknown("UserCreated", 2, "ce_schemaversion");
  assert_unknown("CustomerEmailUpdated", 2147483647, "ce_schemaversion");
}

/* DERIVE through a table of the test's own: a field computed from the data. */
static bool item_count(const bson_t *data, const char *field, bson_t *out, cqrs_error_t *e) {
  bson_iter_t it, arr;
  int n = 0;
  if (!bson_iter_init_find(&it, data, "items") || !bson_iter_recurse(&it, &arr)) {
    cqrs_error_set(e, CQRS_ERR_INVALID, "items", "cannot derive %s without items", field);
    return false;
  }
  while (bson_iter_next(&arr)) n++;
  char code[16];
  snprintf(code, sizeof code, "N%02d", n);
  BSON_APPEND_UTF8(out, field, code);
  return true;
}

Test(upcast, derive_and_steps_in_table_order) {
  const cqrs_upcast_step_t steps[] = {
      {.from = &cqrs_order_created_v1_event, .to = &cqrs_order_created_event, .kind = CQRS_UPCAST_RENAME,
       .field = "buyer", .old_field = "userId"},
      {.from = &cqrs_order_created_v1_event, .to = &cqrs_order_created_event, .kind = CQRS_UPCAST_DERIVE,
       .field = "currency", .derive = item_count},
  };
  doc = u_parse("{\"userId\":\"u\",\"items\":[{},{}],\"totalAmount\":1.0}");
  cr_assert(cqrs_upcast_with(steps, 2, "OrderCreated", 1, doc, &up, &err), "%s", err.message);
  char *j = json_of(up.data);
  cr_assert_str_eq(j, "{\"buyer\":\"u\",\"items\":[{},{}],\"totalAmount\":1.0,\"currency\":\"N02\"}");
  bson_free(j);
  teardown();
  doc = u_parse("{\"userId\":\"u\"}");
  cr_assert_not(cqrs_upcast_with(steps, 2, "OrderCreated", 1, doc, &up, &err));
  cr_assert_str_eq(err.field, "items");
}

/* In place on a decoded event: the data and the version move, the record's
 * ce_dataschema stays; a failure leaves the event as it was. */
Test(upcast, event_in_place) {
  cqrs_event_t ev = {.type = "CustomerEmailUpdated", .schema_version = 0,
                     .data = u_parse("{\"newEmail\":\"c@d.io\",\"updatedAt\":\"t\"}")};
  cr_assert(cqrs_event_upcast(&ev, &err), "%s", err.message);
  cr_assert_eq(ev.schema_version, 2);
  cr_assert_str_eq(u_str(ev.data, "email"), "c@d.io");
  cr_assert(cqrs_event_upcast(&ev, &err), "idempotent at the current version");
  cr_assert_str_eq(u_str(ev.data, "email"), "c@d.io");
  ev.schema_version = 7;
  const bson_t *before = ev.data;
  cr_assert_not(cqrs_event_upcast(&ev, &err));
  cr_assert_eq(ev.data, before);
  cr_assert_eq(ev.schema_version, 7);
  bson_destroy(ev.data);
}
