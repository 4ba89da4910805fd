/* What every decider test needs: one command, decision, error and state per
 * test, reset after it, and helpers to validate commands given as JSON.
 * Include once per test file after defining HARNESS_DECIDER (a
 * cqrs_decider_t) and HARNESS_AGGREGATE_ID (the id a command gets when it
 * names none); then declare TestSuite(<name>, .fini = harness_teardown). */
#ifndef CQRS_DECIDER_HARNESS_H
#define CQRS_DECIDER_HARNESS_H

#include "decider.h"
#include "unit.h"

static const cqrs_decider_t *d = &HARNESS_DECIDER;
static cqrs_command_t cmd;
static cqrs_decision_t dec;
static cqrs_error_t err;
static bson_t *state;

static void harness_teardown(void) {
  cqrs_command_cleanup(&cmd);
  cqrs_decision_cleanup(&dec);
  if (state) bson_destroy(state);
  state = NULL;
}

/* Parses json into cmd (with the default aggregateId and commandId c-1
 * unless it names them). */
static void command(const char *json) {
  cqrs_command_cleanup(&cmd);
  cqrs_error_t e = {0};
  cr_assert(cqrs_command_parse(&cmd, json, strlen(json), &e), "%s: %s", json, e.message);
  if (!cmd.aggregate_id) cqrs_command_set_id(&cmd.aggregate_id, HARNESS_AGGREGATE_ID);
  if (!cmd.command_id) cqrs_command_set_id(&cmd.command_id, "c-1");
}

static bool validate(const char *json) {
  command(json);
  cqrs_error_clear(&err);
  return d->validate(&cmd, &err);
}

static void assert_invalid(const char *json, const char *field) {
  cr_assert_not(validate(json), "accepted %s", json);
  cr_assert_eq(err.code, CQRS_ERR_INVALID, "%s", json);
  cr_assert_str_eq(err.field, field, "%s", json);
  cr_assert_neq(err.message[0], '\0');
}

static void assert_valid(const char *json) { cr_assert(validate(json), "%s: %s", json, err.message); }

#endif
