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

/* Sets ev to an event of type at version with data_json as its data. */
static void event(const char *type, int64_t version, const char *data_json) {
  ev = (cqrs_event_t){.id = "e-1", .type = (char *)type, .source = "/command-svc",
                      .aggregate_type = HARNESS_AGGREGATE_TYPE, .aggregate_id = HARNESS_AGGREGATE_ID,
                      .time = "2026-03-01T10:00:00.000Z", .version = version};
  ev.data = u_parse(data_json);
}

/* Runs the projection on ev into w. */
static bool apply(bool *skip, cqrs_error_t *err) {
  written = true;
  return p->apply(&ev, &w, skip, err);
}

/* An event the projection must refuse, naming field (NULL: any field). */
static void assert_poison(const char *type, const char *data, const char *field) {
  event(type, 2, data);
  bool skip = true;
  cqrs_error_t err = {0};
  cr_assert_not(apply(&skip, &err), "applied %s %s", type, data);
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cr_assert_neq(err.message[0], '\0');
  if (field) cr_assert_str_eq(err.field, field, "%s", data);
  cr_assert_not(skip, "a poison event is not skipped");
  harness_teardown();
}

#endif
