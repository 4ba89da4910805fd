/* The command envelope (cqrs/command.h): parsing, payload merging, envelope
 * checks and the canonical JSON round trip. */
#include "cqrs/command.h"
#include "unit.h"

#include <stdlib.h>

static cqrs_command_t cmd;
static cqrs_error_t err;

static void cleanup(void) { cqrs_command_cleanup(&cmd); }

static bool parse(const char *json) {
  cqrs_error_clear(&err);
  return cqrs_command_parse(&cmd, json, strlen(json), &err);
}

static void assert_invalid(const char *json, const char *field) {
  cr_assert_not(parse(json), "accepted %s", json);
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cr_assert_str_eq(err.field, field, "field for %s", json);
  cr_assert_neq(err.message[0], '\0');
}

TestSuite(command, .fini = cleanup);

Test(command, parses_envelope_and_fields) {
  cr_assert(parse("{\"commandType\":\"CreateUser\",\"commandId\":\"cmd-001\","
                  "\"correlationId\":\"corr-001\",\"aggregateId\":\"agg-1\",\"expectedVersion\":3,"
                  "\"email\":\"john.doe@example.com\",\"name\":\"John Doe\"}"),
            "%s", err.message);
  cr_assert_str_eq(cmd.type, "CreateUser");
  cr_assert_str_eq(cmd.command_id, "cmd-001");
  cr_assert_str_eq(cmd.correlation_id, "corr-001");
  cr_assert_str_eq(cmd.aggregate_id, "agg-1");
  cr_assert(cmd.has_expected_version);
  cr_assert_eq(cmd.expected_version, 3);
  cr_assert_eq(u_count(&cmd.fields), 2, "only the command's own fields");
  cr_assert_str_eq(u_str(&cmd.fields, "email"), "john.doe@example.com");
  cr_assert_str_eq(u_str(&cmd.fields, "name"), "John Doe");
}

Test(command, optional_ids_absent) {
  cr_assert(parse("{\"commandType\":\"CreateUser\"}"));
  cr_assert_null(cmd.command_id);
  cr_assert_null(cmd.correlation_id);
  cr_assert_null(cmd.aggregate_id);
  cr_assert_not(cmd.has_expected_version);
  cr_assert_eq(u_count(&cmd.fields), 0);
}

Test(command, to_json_round_trip) {
  cr_assert(parse("{\"commandType\":\"UpdateUserProfile\",\"commandId\":\"c-1\",\"correlationId\":\"k\","
                  "\"aggregateId\":\"a-1\",\"expectedVersion\":7,"
                  "\"payload\":{\"changes\":{\"Name\":\"Ann\"},\"n\":2}}"));
  size_t len = 0;
  char *json = cqrs_command_to_json(&cmd, &len);
  cr_assert_not_null(json);
  cr_assert_eq(len, strlen(json));
  bson_t *flat = u_parse(json);
  cr_assert_not(u_has(flat, "payload"), "canonical JSON is flat: %s", json);
  bson_destroy(flat);

  cqrs_command_t back;
  cqrs_error_t e2 = {0};
  cr_assert(cqrs_command_parse(&back, json, len, &e2), "%s", e2.message);
  cr_assert_str_eq(back.type, cmd.type);
  cr_assert_str_eq(back.command_id, cmd.command_id);
  cr_assert_str_eq(back.correlation_id, cmd.correlation_id);
  cr_assert_str_eq(back.aggregate_id, cmd.aggregate_id);
  cr_assert_eq(back.has_expected_version, true);
  cr_assert_eq(back.expected_version, 7);
  cr_assert(bson_equal(&back.fields, &cmd.fields), "fields differ after the round trip: %s", json);
  cqrs_command_cleanup(&back);
  bson_free(json);
}

Test(command, to_json_after_set_id) {
  cr_assert(parse("{\"commandType\":\"CreateUser\",\"name\":\"A\"}"));
  cqrs_command_set_id(&cmd.command_id, "cid");
  cqrs_command_set_id(&cmd.aggregate_id, "aid");
  cqrs_command_set_id(&cmd.aggregate_id, "aid-2"); /* replaces, no leak */
  char *json = cqrs_command_to_json(&cmd, NULL);
  bson_t *doc = u_parse(json);
  cr_assert_str_eq(u_str(doc, "commandId"), "cid");
  cr_assert_str_eq(u_str(doc, "aggregateId"), "aid-2");
  cr_assert_str_eq(u_str(doc, "name"), "A");
  cr_assert_not(u_has(doc, "expectedVersion"));
  bson_destroy(doc);
  bson_free(json);
}

Test(command, payload_fields_merged) {
  cr_assert(parse("{\"commandType\":\"CreateUser\",\"commandId\":\"c\","
                  "\"payload\":{\"email\":\"a@b.io\",\"name\":\"Bo\"}}"));
  cr_assert_eq(u_count(&cmd.fields), 2);
  cr_assert_str_eq(u_str(&cmd.fields, "email"), "a@b.io");
  cr_assert_str_eq(u_str(&cmd.fields, "name"), "Bo");
  cr_assert_not(u_has(&cmd.fields, "payload"));
}

Test(command, top_level_wins_over_payload) {
  cr_assert(parse("{\"commandType\":\"CreateUser\",\"name\":\"Top\","
                  "\"payload\":{\"name\":\"Nested\",\"email\":\"a@b.io\"}}"));
  cr_assert_str_eq(u_str(&cmd.fields, "name"), "Top");
  cr_assert_str_eq(u_str(&cmd.fields, "email"), "a@b.io");
  cr_assert_eq(u_count(&cmd.fields), 2);
}

Test(command, aggregate_id_from_payload) {
  cr_assert(parse("{\"commandType\":\"UpdateUserProfile\",\"payload\":{\"aggregateId\":\"p-1\"}}"));
  cr_assert_str_eq(cmd.aggregate_id, "p-1");
  cr_assert_not(u_has(&cmd.fields, "aggregateId"), "envelope members are not fields");
  cqrs_command_cleanup(&cmd);
  cr_assert(parse("{\"commandType\":\"UpdateUserProfile\",\"aggregateId\":\"top\","
                  "\"payload\":{\"aggregateId\":\"p-1\"}}"));
  cr_assert_str_eq(cmd.aggregate_id, "top");
}

Test(command, expected_version_must_be_integer) {
  assert_invalid("{\"commandType\":\"X\",\"expectedVersion\":\"1\"}", "expectedVersion");
  cqrs_command_cleanup(&cmd);
  assert_invalid("{\"commandType\":\"X\",\"expectedVersion\":1.5}", "expectedVersion");
  cqrs_command_cleanup(&cmd);
  assert_invalid("{\"commandType\":\"X\",\"expectedVersion\":true}", "expectedVersion");
}

Test(command, expected_version_negative) {
  assert_invalid("{\"commandType\":\"X\",\"expectedVersion\":-1}", "expectedVersion");
}

Test(command, expected_version_zero_and_null) {
  cr_assert(parse("{\"commandType\":\"X\",\"expectedVersion\":0}"));
  cr_assert(cmd.has_expected_version);
  cr_assert_eq(cmd.expected_version, 0);
  cqrs_command_cleanup(&cmd);
  cr_assert(parse("{\"commandType\":\"X\",\"expectedVersion\":null}"));
  cr_assert_not(cmd.has_expected_version, "null is absent");
}

Test(command, command_type_missing) {
  assert_invalid("{\"commandId\":\"c-9\",\"name\":\"x\"}", "commandType");
  /* commandId is read first so the refusal can still name it */
  cr_assert_str_eq(cmd.command_id, "c-9");
}

Test(command, command_type_mistyped_or_empty) {
  assert_invalid("{\"commandType\":5}", "commandType");
  cqrs_command_cleanup(&cmd);
  assert_invalid("{\"commandType\":\"\"}", "commandType");
  cqrs_command_cleanup(&cmd);
  assert_invalid("{\"commandType\":null}", "commandType");
}

Test(command, array_body) {
  cr_assert_not(parse("[{\"commandType\":\"CreateUser\"}]"));
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
}

Test(command, not_json) {
  cr_assert_not(parse("commandType=CreateUser"));
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cqrs_command_cleanup(&cmd);
  cr_assert_not(parse("{\"commandType\":"));
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
  cqrs_command_cleanup(&cmd);
  cr_assert_not(parse(""));
  cr_assert_eq(err.code, CQRS_ERR_INVALID);
}

static char *json_with_id(const char *member, size_t n) {
  char *id = malloc(n + 1);
  memset(id, 'x', n);
  id[n] = '\0';
  size_t cap = n + 128;
  char *json = malloc(cap);
  snprintf(json, cap, "{\"commandType\":\"CreateUser\",\"%s\":\"%s\"}", member, id);
  free(id);
  return json;
}

Test(command, command_id_too_long) {
  char *ok = json_with_id("commandId", CQRS_ID_MAX);
  cr_assert(parse(ok), "%d characters are allowed", CQRS_ID_MAX);
  cr_assert_eq(strlen(cmd.command_id), CQRS_ID_MAX);
  cqrs_command_cleanup(&cmd);
  free(ok);
  char *long_id = json_with_id("commandId", CQRS_ID_MAX + 1);
  assert_invalid(long_id, "commandId");
  free(long_id);
}

Test(command, other_ids_too_long_or_mistyped) {
  char *json = json_with_id("aggregateId", CQRS_ID_MAX + 1);
  assert_invalid(json, "aggregateId");
  free(json);
  cqrs_command_cleanup(&cmd);
  json = json_with_id("correlationId", CQRS_ID_MAX + 1);
  assert_invalid(json, "correlationId");
  free(json);
  cqrs_command_cleanup(&cmd);
  assert_invalid("{\"commandType\":\"X\",\"commandId\":42}", "commandId");
}

Test(command, payload_must_be_object) {
  assert_invalid("{\"commandType\":\"X\",\"payload\":[1]}", "payload");
}

Test(command, cleanup_is_idempotent) {
  cqrs_command_t zero = {0};
  cqrs_command_cleanup(&zero);
  cr_assert(parse("{\"commandType\":\"X\"}"));
  cqrs_command_cleanup(&cmd);
  cqrs_command_cleanup(&cmd);
  cr_assert_null(cmd.type);
}
