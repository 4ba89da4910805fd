/* saga-svc's in-memory saga instances: every instance of the partitions this
 * process owns, keyed by saga id, with an index from "<tenant>/<commandId>"
 * of each pending step to its saga. Changes of a batch are staged and become
 * visible to later batches only on commit (an aborted Kafka transaction
 * leaves no trace). Not thread-safe: the saga loop is its only user. */
#ifndef CQRS_SAGA_STORE_H
#define CQRS_SAGA_STORE_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct cqrs_saga_store cqrs_saga_store_t;

cqrs_saga_store_t *cqrs_saga_store_new(void);
void cqrs_saga_store_destroy(cqrs_saga_store_t *s);

/* The instance with saga_id (staged, else committed), or NULL. Borrowed until
 * the next stage/commit/abort/drop. */
const bson_t *cqrs_saga_store_get(const cqrs_saga_store_t *s, const char *saga_id);

/* The saga id waiting for the result of "<tenant>/<commandId>", or NULL. */
const char *cqrs_saga_store_awaiting(const cqrs_saga_store_t *s, const char *result_key);

/* Stages instance (taken over) after the open batch. */
void cqrs_saga_store_stage(cqrs_saga_store_t *s, bson_t *instance);
/* Puts instance (taken over) straight into the committed set (restore). A
 * finished instance with nothing pending is kept slim (its ids and state:
 * all a finished saga needs to ignore what comes); its history stays on
 * saga-state. */
void cqrs_saga_store_put(cqrs_saga_store_t *s, bson_t *instance);
void cqrs_saga_store_commit(cqrs_saga_store_t *s);
void cqrs_saga_store_abort(cqrs_saga_store_t *s);

/* Forgets every instance of partition (on revoke). */
void cqrs_saga_store_drop_partition(cqrs_saga_store_t *s, int32_t partition);

/* A due deadline: the saga and the deadline (what is borrowed from the store
 * until the next change). */
typedef struct {
  char saga_id[37];
  int64_t due_ms;
  const char *what;
} cqrs_saga_due_t;

/* Fills due[0..max) with the committed instances' deadlines at or before
 * now_ms, the earliest first: with more than max due, the max earliest (under
 * a backlog a deadline never waits behind later ones; a map-order pick made
 * the p99 of fired - due as long as the whole backlog, 45 s at 100,000 due in
 * 30 s). Returns the count. *earliest_ms gets the earliest deadline of any
 * instance (INT64_MAX: none), for lag. One pass over the instances. */
size_t cqrs_saga_store_due(const cqrs_saga_store_t *s, int64_t now_ms, cqrs_saga_due_t *due, size_t max,
                           int64_t *earliest_ms);

/* Counts committed instances by type and state: cb once per (type, state). */
void cqrs_saga_store_count(const cqrs_saga_store_t *s, void (*cb)(const char *type, const char *state, size_t n, void *ctx),
                           void *ctx);

size_t cqrs_saga_store_size(const cqrs_saga_store_t *s);

#endif
