/* The User aggregate (command-svc/deciders/user.c through decider.h):
 * validation, decide and evolve. Commands come from JSON as on the wire. */
#include "decider.h"
#include "cqrs/json.h"
#include "unit.h"

#include <stdio.h>

static const char *NOW = "2026-03-01T10:00:00.000Z";
static const char *LATER = "2026-03-02T11:00:00.000Z";

#define HARNESS_DECIDER cqrs_user_decider
#define HARNESS_AGGREGATE_ID "u-1"
#include "decider_harness.h"

TestSuite(user_decider, .fini = harness_teardown);

/* The state after UserCreated(u-1, ann@example.com, Ann). */
static void created_state(void) {
  bson_t *data = BCON_NEW("userId", BCON_UTF8("u-1"), "email", BCON_UTF8("ann@example.com"),
                          "name", BCON_UTF8("Ann"), "createdAt", BCON_UTF8(NOW));
  state = bson_new();
  d->evolve(NULL, "UserCreated", data, state);
  bson_destroy(data);
}

/* n copies of c in a static buffer (no heap: a failed assertion leaks nothing). */
static char *repeat(char c, size_t n) {
  static char buf[512];
  cr_assert_lt(n, sizeof buf);
  memset(buf, c, n);
  buf[n] = '\0';
  return buf;
}

Test(user_decider, registered_commands) {
  const cqrs_command_spec_t *spec = NULL;
  cr_assert_eq(cqrs_decider_for_command("CreateUser", &spec), d);
  cr_assert(spec->creates);
  cr_assert_eq(cqrs_decider_for_command("UpdateUserProfile", &spec), d);
  cr_assert_not(spec->creates);
  cr_assert_null(cqrs_decider_for_command("DeleteUser", &spec));
  cr_assert_eq(cqrs_decider_for_aggregate("user"), d);
  cr_assert_null(cqrs_decider_for_aggregate("nope"));
  cr_assert_str_eq(d->aggregate_type, "user");
}

Test(user_decider, create_valid) {
  assert_valid("{\"commandType\":\"CreateUser\",\"email\":\"john.doe@example.com\",\"name\":\"John Doe\"}");
  assert_valid("{\"commandType\":\"CreateUser\",\"payload\":{\"email\":\"a@b.io\",\"name\":\"\xc3\x89mile\"}}");
}

Test(user_decider, create_requires_email) {
  assert_invalid("{\"commandType\":\"CreateUser\",\"name\":\"John\"}", "email");
  assert_invalid("{\"commandType\":\"CreateUser\",\"name\":\"John\",\"email\":\"\"}", "email");
  assert_invalid("{\"commandType\":\"CreateUser\",\"name\":\"John\",\"email\":null}", "email");
  assert_invalid("{\"commandType\":\"CreateUser\",\"name\":\"John\",\"email\":42}", "email");
}

Test(user_decider, create_email_shape) {
  const char *bad[] = {"john", "john@", "@example.com", "john@example", "john@.com", "john@example.",
                       "jo hn@example.com", "a@b@c.com"};
  char json[256];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(json, sizeof json, "{\"commandType\":\"CreateUser\",\"name\":\"J\",\"email\":\"%s\"}", bad[i]);
    assert_invalid(json, "email");
  }
}

Test(user_decider, create_email_too_long) {
  char *local = repeat('a', 250);
  char json[512];
  snprintf(json, sizeof json, "{\"commandType\":\"CreateUser\",\"name\":\"J\",\"email\":\"%s@b.io\"}", local);
  assert_invalid(json, "email");
}

Test(user_decider, create_requires_name) {
  assert_invalid("{\"commandType\":\"CreateUser\",\"email\":\"a@b.io\"}", "name");
  assert_invalid("{\"commandType\":\"CreateUser\",\"email\":\"a@b.io\",\"name\":\"\"}", "name");
  assert_invalid("{\"commandType\":\"CreateUser\",\"email\":\"a@b.io\",\"name\":\"   \"}", "name");
}

Test(user_decider, create_name_mistyped) {
  assert_invalid("{\"commandType\":\"CreateUser\",\"email\":\"a@b.io\",\"name\":5}", "name");
  assert_invalid("{\"commandType\":\"CreateUser\",\"email\":\"a@b.io\",\"name\":[\"A\"]}", "name");
}

Test(user_decider, create_name_too_long) {
  char *name = repeat('n', 200);
  char json[512];
  snprintf(json, sizeof json, "{\"commandType\":\"CreateUser\",\"email\":\"a@b.io\",\"name\":\"%s\"}", name);
  assert_valid(json);
  name = repeat('n', 201);
  snprintf(json, sizeof json, "{\"commandType\":\"CreateUser\",\"email\":\"a@b.io\",\"name\":\"%s\"}", name);
  assert_invalid(json, "name");
}

Test(user_decider, update_valid_any_case) {
  assert_valid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"name\":\"Bo\"}}");
  assert_valid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"Name\":\"Bo\"}}");
  assert_valid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"EMAIL\":\"bo@example.com\"}}");
  assert_valid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"name\":\"Bo\",\"Email\":\"bo@x.io\"}}");
  assert_valid("{\"commandType\":\"UpdateUserProfile\",\"payload\":{\"changes\":{\"name\":\"Bo\"}}}");
}

Test(user_decider, update_requires_changes_object) {
  assert_invalid("{\"commandType\":\"UpdateUserProfile\"}", "changes");
  assert_invalid("{\"commandType\":\"UpdateUserProfile\",\"changes\":null}", "changes");
  assert_invalid("{\"commandType\":\"UpdateUserProfile\",\"changes\":\"name=Bo\"}", "changes");
  assert_invalid("{\"commandType\":\"UpdateUserProfile\",\"changes\":[{\"name\":\"Bo\"}]}", "changes");
}

Test(user_decider, update_empty_changes) {
  assert_invalid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{}}", "changes");
  assert_invalid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"name\":null}}", "changes");
}

Test(user_decider, update_unknown_key) {
  assert_invalid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"name\":\"Bo\",\"age\":3}}", "changes.age");
  assert_invalid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"Phone\":\"1\"}}", "changes.Phone");
}

Test(user_decider, update_mistyped_or_bad_values) {
  assert_invalid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"name\":5}}", "changes.name");
  assert_invalid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"NAME\":\"  \"}}", "changes.name");
  assert_invalid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"name\":\"\"}}", "changes.name");
  assert_invalid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"email\":\"nope\"}}", "changes.email");
  assert_invalid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"Email\":true}}", "changes.email");
}

Test(user_decider, update_email_too_long) {
  char *local = repeat('a', 250);
  char json[512];
  snprintf(json, sizeof json, "{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"email\":\"%s@b.io\"}}", local);
  assert_invalid(json, "changes.email");
}

/* The same 200-character limit as CreateUser's name (NAME_MAX_CHARS). */
Test(user_decider, update_name_too_long) {
  char *name = repeat('n', 200);
  char json[1024];
  snprintf(json, sizeof json, "{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"name\":\"%s\"}}", name);
  assert_valid(json);
  name = repeat('n', 201);
  snprintf(json, sizeof json, "{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"name\":\"%s\"}}", name);
  assert_invalid(json, "changes.name");
}

Test(user_decider, decide_create) {
  assert_valid("{\"commandType\":\"CreateUser\",\"email\":\"ann@example.com\",\"name\":\"Ann\"}");
  cr_assert(d->decide(NULL, &cmd, NOW, &dec, &err), "%s", err.message);
  cr_assert_eq(dec.n_events, 1);
  cr_assert_str_eq(dec.events[0].type, "UserCreated");
  const bson_t *data = &dec.events[0].data;
  cr_assert_eq(u_count(data), 4, "userId, email, name, createdAt");
  cr_assert_str_eq(u_str(data, "userId"), "u-1");
  cr_assert_str_eq(u_str(data, "email"), "ann@example.com");
  cr_assert_str_eq(u_str(data, "name"), "Ann");
  cr_assert_str_eq(u_str(data, "createdAt"), NOW);
}

Test(user_decider, decide_update_changed_name_only) {
  created_state();
  assert_valid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"Name\":\"Bo\",\"EMAIL\":\"ann@example.com\"}}");
  cr_assert(d->decide(state, &cmd, LATER, &dec, &err), "%s", err.message);
  cr_assert_eq(dec.n_events, 1);
  cr_assert_str_eq(dec.events[0].type, "UserProfileUpdated");
  const bson_t *data = &dec.events[0].data;
  cr_assert_str_eq(u_str(data, "userId"), "u-1");
  cr_assert_str_eq(u_str(data, "updatedAt"), LATER);
  cr_assert_str_eq(u_str(data, "changes.name"), "Bo", "keys are written in lower case");
  cr_assert_not(u_has(data, "changes.email"), "unchanged email is left out");
  bson_t changes;
  bool present;
  cr_assert(cqrs_json_get_object(data, "changes", NULL, true, &changes, &present, NULL));
  cr_assert_eq(u_count(&changes), 1);
}

Test(user_decider, decide_update_both) {
  created_state();
  assert_valid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"name\":\"Bo\",\"email\":\"bo@example.com\"}}");
  cr_assert(d->decide(state, &cmd, LATER, &dec, &err));
  cr_assert_eq(dec.n_events, 1);
  cr_assert_str_eq(u_str(&dec.events[0].data, "changes.name"), "Bo");
  cr_assert_str_eq(u_str(&dec.events[0].data, "changes.email"), "bo@example.com");
}

Test(user_decider, decide_update_unchanged_is_no_op) {
  created_state();
  assert_valid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"name\":\"Ann\",\"Email\":\"ann@example.com\"}}");
  cr_assert(d->decide(state, &cmd, LATER, &dec, &err), "valid and accepted");
  cr_assert_eq(dec.n_events, 0, "changes nothing: zero events");
}

Test(user_decider, evolve_created_then_updated) {
  created_state();
  cr_assert_str_eq(u_str(state, "userId"), "u-1");
  cr_assert_str_eq(u_str(state, "email"), "ann@example.com");
  cr_assert_str_eq(u_str(state, "name"), "Ann");
  cr_assert_str_eq(u_str(state, "createdAt"), NOW);
  cr_assert_str_eq(u_str(state, "updatedAt"), NOW);

  bson_t *data = BCON_NEW("userId", BCON_UTF8("u-1"), "changes", "{", "name", BCON_UTF8("Bo"), "}",
                          "updatedAt", BCON_UTF8(LATER));
  bson_t *next = bson_new();
  d->evolve(state, "UserProfileUpdated", data, next);
  cr_assert_str_eq(u_str(next, "userId"), "u-1");
  cr_assert_str_eq(u_str(next, "name"), "Bo");
  cr_assert_str_eq(u_str(next, "email"), "ann@example.com", "an absent change keeps the value");
  cr_assert_str_eq(u_str(next, "createdAt"), NOW);
  cr_assert_str_eq(u_str(next, "updatedAt"), LATER);
  bson_destroy(data);

  data = BCON_NEW("userId", BCON_UTF8("u-1"), "changes", "{", "email", BCON_UTF8("bo@x.io"), "}",
                  "updatedAt", BCON_UTF8("2026-03-03T00:00:00.000Z"));
  bson_t *third = bson_new();
  d->evolve(next, "UserProfileUpdated", data, third);
  cr_assert_str_eq(u_str(third, "name"), "Bo");
  cr_assert_str_eq(u_str(third, "email"), "bo@x.io");
  cr_assert_str_eq(u_str(third, "updatedAt"), "2026-03-03T00:00:00.000Z");
  bson_destroy(data);
  bson_destroy(next);
  bson_destroy(third);
}

Test(user_decider, decide_then_evolve_agree) {
  assert_valid("{\"commandType\":\"CreateUser\",\"email\":\"ann@example.com\",\"name\":\"Ann\"}");
  cr_assert(d->decide(NULL, &cmd, NOW, &dec, &err));
  state = bson_new();
  d->evolve(NULL, dec.events[0].type, &dec.events[0].data, state);
  cqrs_decision_cleanup(&dec);
  assert_valid("{\"commandType\":\"UpdateUserProfile\",\"changes\":{\"NAME\":\"Bo\"}}");
  cr_assert(d->decide(state, &cmd, LATER, &dec, &err));
  cr_assert_eq(dec.n_events, 1);
  bson_t *next = bson_new();
  d->evolve(state, dec.events[0].type, &dec.events[0].data, next);
  cr_assert_str_eq(u_str(next, "name"), "Bo");
  cr_assert_str_eq(u_str(next, "email"), "ann@example.com");
  cr_assert_str_eq(u_str(next, "userId"), "u-1");
  bson_destroy(next);
}

Test(user_decider, check_email_helper) {
  cr_assert(cqrs_decider_check_email("a@b.io", "email", &err));
  cr_assert_not(cqrs_decider_check_email("a.b.io", "newEmail", &err));
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cr_assert_str_eq(err.field, "newEmail");
  cr_assert_not(cqrs_decider_check_email("a@b.io ", "email", NULL), "err may be NULL");
}

Test(user_decider, decision_add_and_cleanup) {
  bson_t *data = cqrs_decision_add(&dec, &cqrs_user_created_event);
  BSON_APPEND_UTF8(data, "k", "v");
  cr_assert_eq(dec.n_events, 1);
  cr_assert_str_eq(dec.events[0].type, "UserCreated", "the contract's name of the type");
  cqrs_decision_cleanup(&dec);
  cr_assert_eq(dec.n_events, 0);
  cqrs_decision_cleanup(&dec);
}

/* ---- RecordUserOrder: the order placement saga's owner check (the
 * processor refuses it with 404 when the user does not exist) ---- */

Test(user_decider, record_order) {
  const cqrs_command_spec_t *spec = NULL;
  cr_assert_eq(cqrs_decider_for_command("RecordUserOrder", &spec), d);
  cr_assert_not(spec->creates);
  assert_invalid("{\"commandType\":\"RecordUserOrder\"}", "orderId");
  created_state();
  assert_valid("{\"commandType\":\"RecordUserOrder\",\"orderId\":\"o-1\"}");
  cqrs_error_clear(&err);
  cr_assert(d->decide(state, &cmd, NOW, &dec, &err), "%s", err.message);
  cr_assert_eq(dec.n_events, 1);
  cr_assert_str_eq(dec.events[0].type, "UserOrderRecorded");
  cr_assert_str_eq(u_str(&dec.events[0].data, "orderId"), "o-1");
  cr_assert_str_eq(u_str(&dec.events[0].data, "userId"), "u-1");
}
