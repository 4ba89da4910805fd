/* The command side's in-memory aggregates: the state, version and recent
 * command outcomes of every aggregate in the partitions this instance owns.
 * Changes of a batch are staged and become visible to later batches only on
 * commit, so an aborted Kafka transaction leaves no trace. Not thread-safe:
 * the command loop is its only user. */
#ifndef CQRS_AGGREGATE_STORE_H
#define CQRS_AGGREGATE_STORE_H

#include "cqrs/error.h"

#include <bson/bson.h>
#include <stdint.h>

/* Outcomes remembered per aggregate for commandId idempotency. A repeat older
 * than this many commands on the same aggregate is decided again. */
#define CQRS_RECENT_COMMANDS 8

typedef struct {
  char *command_id;
  char *result_json; /* the first outcome, as sent on command-results */
} cqrs_recent_t;

typedef struct {
  char *aggregate_id;
  char *aggregate_type;
  int32_t partition;
  int64_t version;   /* 0: does not exist */
  bson_t *state;     /* NULL while version is 0 */
  cqrs_recent_t recent[CQRS_RECENT_COMMANDS]; /* oldest first */
  size_t n_recent;
} cqrs_aggregate_t;

typedef struct cqrs_aggregate_store cqrs_aggregate_store_t;

/* Aggregates ---------------------------------------------------------- */

/* A new aggregate that does not exist yet (version 0). */
cqrs_aggregate_t *cqrs_aggregate_new(const char *id, const char *type, int32_t partition);
/* A deep copy. */
cqrs_aggregate_t *cqrs_aggregate_copy(const cqrs_aggregate_t *a);
void cqrs_aggregate_destroy(cqrs_aggregate_t *a);

/* The remembered outcome of command_id, or NULL. */
const char *cqrs_aggregate_recent(const cqrs_aggregate_t *a, const char *command_id);
/* Remembers an outcome, forgetting the oldest beyond CQRS_RECENT_COMMANDS. */
void cqrs_aggregate_remember(cqrs_aggregate_t *a, const char *command_id, const char *result_json);

/* The value written to the aggregate-state topic (string to bson_free):
 * {"aggregateType","version","state",{...},"recent":[{"commandId","result"}]} */
char *cqrs_aggregate_to_json(const cqrs_aggregate_t *a, size_t *len);
/* Reads such a value back. NULL with err when it is malformed. */
cqrs_aggregate_t *cqrs_aggregate_from_json(const char *id, int32_t partition, const char *json,
                                           size_t len, cqrs_error_t *err);

/* The store ------------------------------------------------------------ */

cqrs_aggregate_store_t *cqrs_aggregate_store_new(void);
void cqrs_aggregate_store_destroy(cqrs_aggregate_store_t *s);

/* The staged aggregate if the open batch changed it, else the committed one,
 * else NULL. Borrowed until the next stage/commit/abort/drop. */
const cqrs_aggregate_t *cqrs_aggregate_store_get(const cqrs_aggregate_store_t *s, const char *id);

/* Stages a after the open batch (takes ownership). */
void cqrs_aggregate_store_stage(cqrs_aggregate_store_t *s, cqrs_aggregate_t *a);

/* Puts a straight into the committed set (restore; takes ownership). */
void cqrs_aggregate_store_put(cqrs_aggregate_store_t *s, cqrs_aggregate_t *a);

/* Makes the staged aggregates committed, or throws them away. */
void cqrs_aggregate_store_commit(cqrs_aggregate_store_t *s);
void cqrs_aggregate_store_abort(cqrs_aggregate_store_t *s);

/* Forgets every aggregate of partition (on revoke). */
void cqrs_aggregate_store_drop_partition(cqrs_aggregate_store_t *s, int32_t partition);

/* Committed aggregates held. */
size_t cqrs_aggregate_store_size(const cqrs_aggregate_store_t *s);

#endif
