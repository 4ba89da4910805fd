/* The command envelope: parse, canonical JSON. */
#include "cqrs/alloc.h"
#include "cqrs/command.h"
#include "cqrs/json.h"

#include <stdlib.h>
#include <string.h>

static const char *envelope_keys[] = {"commandType", "commandId", "correlationId", "aggregateId",
                                      "expectedVersion", "payload", NULL};

static bool is_envelope_key(const char *key) {
  for (const char **k = envelope_keys; *k; k++)
    if (strcmp(*k, key) == 0) return true;
  return false;
}

/* Copies the non-envelope members of src into dst, skipping keys dst has. */
static void merge_fields(bson_t *dst, const bson_t *src) {
  bson_iter_t it;
  if (!bson_iter_init(&it, src)) return;
  while (bson_iter_next(&it)) {
    const char *key = bson_iter_key(&it);
    if (is_envelope_key(key) || bson_has_field(dst, key)) continue;
    bson_append_value(dst, key, -1, bson_iter_value(&it));
  }
}

static bool id_member(const bson_t *doc, const char *key, bool required, char **out,
                      cqrs_error_t *err) {
  const char *s;
  if (!cqrs_json_get_string(doc, key, NULL, required, CQRS_ID_MAX, &s, err)) return false;
  *out = s && *s ? cqrs_xstrdup(s) : NULL;
  return true;
}

bool cqrs_command_parse(cqrs_command_t *cmd, const char *json, size_t len, cqrs_error_t *err) {
  memset(cmd, 0, sizeof *cmd);
  bson_init(&cmd->fields);
  bson_t *doc = cqrs_json_parse(json, len, err);
  if (!doc) return false;
  bool ok = false;
  bson_t payload;
  bool has_payload;
  /* commandId first: a result for a malformed command can still name it. */
  if (!id_member(doc, "commandId", false, &cmd->command_id, err) ||
      !id_member(doc, "commandType", true, &cmd->type, err) ||
      !id_member(doc, "correlationId", false, &cmd->correlation_id, err) ||
      !id_member(doc, "aggregateId", false, &cmd->aggregate_id, err) ||
      !cqrs_json_get_int64(doc, "expectedVersion", NULL, false, &cmd->expected_version,
                           &cmd->has_expected_version, err) ||
      !cqrs_json_get_object(doc, "payload", NULL, false, &payload, &has_payload, err))
    goto done;
  if (cmd->has_expected_version && cmd->expected_version < 0) {
    cqrs_error_set(err, CQRS_ERR_INVALID, "expectedVersion", "expectedVersion must be >= 0");
    goto done;
  }
  merge_fields(&cmd->fields, doc);
  if (has_payload) {
    /* An id may also sit in the payload. */
    if (!cmd->aggregate_id && !id_member(&payload, "aggregateId", false, &cmd->aggregate_id, err))
      goto done;
    merge_fields(&cmd->fields, &payload);
  }
  ok = true;
done:
  bson_destroy(doc);
  return ok;
}

void cqrs_command_set_id(char **slot, const char *value) {
  free(*slot);
  *slot = value ? cqrs_xstrdup(value) : NULL;
}

char *cqrs_command_to_json(const cqrs_command_t *cmd, size_t *len) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&doc, "commandType", cmd->type);
  if (cmd->command_id) BSON_APPEND_UTF8(&doc, "commandId", cmd->command_id);
  if (cmd->correlation_id) BSON_APPEND_UTF8(&doc, "correlationId", cmd->correlation_id);
  if (cmd->aggregate_id) BSON_APPEND_UTF8(&doc, "aggregateId", cmd->aggregate_id);
  if (cmd->has_expected_version) BSON_APPEND_INT64(&doc, "expectedVersion", cmd->expected_version);
  merge_fields(&doc, &cmd->fields);
  char *json = cqrs_json_write(&doc, len);
  bson_destroy(&doc);
  return json;
}

void cqrs_command_cleanup(cqrs_command_t *cmd) {
  if (!cmd) return;
  free(cmd->type);
  free(cmd->command_id);
  free(cmd->correlation_id);
  free(cmd->aggregate_id);
  if (cmd->fields.len) bson_destroy(&cmd->fields); /* zero length: never initialised */
  memset(cmd, 0, sizeof *cmd);
}
