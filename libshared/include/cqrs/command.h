/* The command envelope: what arrives on POST /v1/commands or the commands topic.
 * Parsing checks the envelope only (commandType, ids, expectedVersion); each
 * aggregate's decider checks its own fields. */
#ifndef CQRS_COMMAND_H
#define CQRS_COMMAND_H

#include "cqrs/error.h"

#include <bson/bson.h>
#include <stdbool.h>

#define CQRS_ID_MAX 128 /* characters in commandId, correlationId, aggregateId */

typedef struct {
  char *type;           /* commandType */
  char *command_id;     /* NULL until assigned */
  char *correlation_id; /* may be NULL */
  char *aggregate_id;   /* NULL until assigned */
  bool has_expected_version;
  int64_t expected_version;
  bson_t fields;        /* the command's own fields: top level and "payload" merged */
} cqrs_command_t;

/* Parses a JSON command into cmd (caller storage; cqrs_command_cleanup releases
 * it, also after a failure). Fields nested under "payload" are merged with the
 * top-level ones (top level wins). Fails with CQRS_ERR_INVALID naming the field
 * for non-JSON, a missing commandType, or a mistyped envelope member. */
bool cqrs_command_parse(cqrs_command_t *cmd, const char *json, size_t len, cqrs_error_t *err);

/* Replaces *slot (one of cmd's id members) with a copy of value. */
void cqrs_command_set_id(char **slot, const char *value);

/* Writes the canonical JSON of cmd: the envelope members, then the fields,
 * flat. Parsing it gives back the same command. Returns a string to bson_free. */
char *cqrs_command_to_json(const cqrs_command_t *cmd, size_t *len);

/* Releases what cmd holds. Safe on a zeroed or already cleaned command. */
void cqrs_command_cleanup(cqrs_command_t *cmd);

#endif
