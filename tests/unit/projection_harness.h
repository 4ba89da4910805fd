/* What every projection test needs: one event and one write per test, reset
 * after it, and a check for poison events. Include once per test file after
 * defining HARNESS_PROJECTION (a cqrs_projection_t), HARNESS_AGGREGATE_TYPE
 * and HARNESS_AGGREGATE_ID; then declare
 * TestSuite(<name>, .fini = harness_teardown). */
#ifndef CQRS_PROJECTION_HARNESS_H
#define CQRS_PROJECTION_HARNESS_H

#include "projection.h"
#include "unit.h"

static const cqrs_projection_t *p = &HARNESS_PROJECTION;
static cqrs_event_t ev;
static cqrs_write_t w;
static bool written;

static void harness_teardown(void) {
  if (ev.data) bson_destroy(ev.data);
  ev.data = NULL;
  if (written) cqrs_write_cleanup(&w);
  written = false;
}

/* Sets ev to an event of type at (aggregate) version with data_json as its
 * data, written at schema version schema. */
static void event_at_schema(const char *type, int64_t version, int schema, const char *data_json) {
  ev = (cqrs_event_t){.id = "e-1", .type = (char *)type, .source = "/command-svc",
                      .aggregate_type = HARNESS_AGGREGATE_TYPE, .aggregate_id = HARNESS_AGGREGATE_ID,
                      .time = "2026-03-01T10:00:00.000Z", .version = version, .schema_version = schema};
  ev.data = u_parse(data_json);
}

/* ... at the current schema version of type (1 for a type the contract does
 * not know): what the deciders write today. */
static void event(const char *type, int64_t version, const char *data_json) {
  const cqrs_event_type_t *t = cqrs_event_type_find(type);
  event_at_schema(type, version, t ? t->version : 1, data_json);
}

/* Runs the projection on ev into w. */
static bool apply(bool *skip, cqrs_error_t *err) {
  written = true;
  return p->apply(&ev, &w, skip, err);
}

/* An event at schema version schema the projection must refuse, naming field
 * (NULL: any field). */
__attribute__((unused)) static void assert_poison_at_schema(const char *type, int schema, const char *data, const char *field) {
  event_at_schema(type, 2, schema, data);
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert_not(apply(&skip, &err), "applied %s %s", type, data);
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cr_assert_neq(err.message[0], '\0');
  if (field) cr_assert_str_eq(err.field, field, "%s", data);
  cr_assert_not(skip, "a poison event is not skipped");
  harness_teardown();
}

/* ... at the type's current schema version. */
static void assert_poison(const char *type, const char *data, const char *field) {
  const cqrs_event_type_t *t = cqrs_event_type_find(type);
  assert_poison_at_schema(type, t ? t->version : 1, data, field);
}

/* The event the contract does not know (an unknown type, or an unknown schema
 * version of a known one) is poison too, with an error naming the type and
 * the version: it goes to the dead letters, never silently skipped. */
__attribute__((unused)) static void assert_unknown_is_poison(const char *type, int schema, const char *data) {
  event_at_schema(type, 2, schema, data);
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert_not(apply(&skip, &err), "applied %s v%d", type, schema);
  cr_assert_not(skip, "an unknown event is not skipped");
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  char v[16];
  snprintf(v, sizeof v, "%d", schema);
  cr_assert(strstr(err.message, type) && strstr(err.message, v), "the error names the type and the version: %s",
            err.message);
  harness_teardown();
}

#endif
