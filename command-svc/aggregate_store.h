/* The command side's in-memory aggregates: the state, version and recent
 * command outcomes of every aggregate in the partitions this instance owns,
 * keyed by aggregate key "<tenant>/<aggregateId>" (cqrs/tenant.h), so the same
 * aggregate id in two tenants is two aggregates.
 * Changes of a batch are staged and become visible to later batches only on
 * commit, so an aborted Kafka transaction leaves no trace. Not thread-safe:
 * the command loop is its only user. */
#ifndef CQRS_AGGREGATE_STORE_H
#define CQRS_AGGREGATE_STORE_H

#include "cqrs/error.h"
#include "cqrs/tenant.h"

#include <bson/bson.h>
#include <stdint.h>

/* Outcomes remembered per aggregate for commandId idempotency: the last
 * CQRS_RECENT_COMMANDS, and besides every one decided less than
 * CQRS_RECENT_MIN_MS before the newest, up to CQRS_RECENT_MAX. A repeat
 * forgotten is decided again. Why the time: a client's retry is decided, the
 * aggregate moves on, and then its first send arrives (an HTTP request read
 * by an instance that was frozen with it in its socket; the fault suite saw
 * one 12 s late, after 9 more commands on a user): with the last 8 alone it
 * was decided a second time. The cost: an aggregate updated more often than
 * 8 times a minute writes up to 64 outcomes (about 230 bytes each) with each
 * new state instead of 8. */
#define CQRS_RECENT_COMMANDS 8
#define CQRS_RECENT_MIN_MS 60000
#define CQRS_RECENT_MAX 64

typedef struct {
  char *command_id;  /* one allocation with result_json, owned by the aggregate */
  char *result_json; /* the first outcome, as sent on command-results */
  int64_t at_ms;     /* when it was decided, ms since the epoch; 0: unknown
                        (a record written before it was kept) */
} cqrs_recent_t;

typedef struct {
  /* The names share one allocation made by cqrs_aggregate_new and freed by
   * cqrs_aggregate_destroy: never free or replace one of them. */
  char *tenant;
  char *aggregate_id;
  char *key;         /* "<tenant>/<aggregateId>": the store key and the Kafka key */
  char *aggregate_type;
  int32_t partition;
  int64_t version;   /* 0: does not exist */
  bson_t *state;     /* NULL while version is 0 */
  cqrs_recent_t *recent; /* n_recent outcomes (at most CQRS_RECENT_MAX), oldest first; sized to
                          * n_recent, as most aggregates hold one or two */
  size_t n_recent;
  char *unreadable;  /* NULL, or why its state cannot be trusted: restored
                        from an event log holding an event this command-svc
                        cannot read (replay.h). Its commands are refused */
  bool replayed;     /* rebuilt from the event log and not yet written to
                        aggregate-state (the command loop snapshots it) */
} cqrs_aggregate_t;

typedef struct cqrs_aggregate_store cqrs_aggregate_store_t;

/* Aggregates ---------------------------------------------------------- */

/* A new aggregate of tenant that does not exist yet (version 0). */
cqrs_aggregate_t *cqrs_aggregate_new(const char *tenant, const char *id, const char *type, int32_t partition);
/* A deep copy. */
cqrs_aggregate_t *cqrs_aggregate_copy(const cqrs_aggregate_t *a);
void cqrs_aggregate_destroy(cqrs_aggregate_t *a);

/* The remembered outcome of command_id, or NULL. */
const char *cqrs_aggregate_recent(const cqrs_aggregate_t *a, const char *command_id);
/* Remembers an outcome decided at at_ms, then forgets the oldest while more
 * than CQRS_RECENT_COMMANDS are held and the oldest was decided
 * CQRS_RECENT_MIN_MS or more before at_ms, or more than CQRS_RECENT_MAX are. */
void cqrs_aggregate_remember(cqrs_aggregate_t *a, const char *command_id, const char *result_json, int64_t at_ms);

/* The value written to the aggregate-state topic under key a->key (string to
 * bson_free): {"tenant","aggregateId","aggregateType","version","state",{...},
 * "recent":[{"commandId","result","at"}], "unreadable"?: "why"} */
char *cqrs_aggregate_to_json(const cqrs_aggregate_t *a, size_t *len);
/* Reads such a value back (record_key: the record's key, NUL-terminated). The
 * tenant and aggregate id come from the value; a value with neither is a record
 * from before tenancy: tenant CQRS_TENANT_DEFAULT, aggregate id = record_key.
 * NULL with err (CQRS_ERR_INVALID) when it is malformed, has only one of the
 * two, or names an invalid tenant. */
cqrs_aggregate_t *cqrs_aggregate_from_json(const char *record_key, int32_t partition, const char *json,
                                           size_t len, cqrs_error_t *err);

/* The store ------------------------------------------------------------ */

cqrs_aggregate_store_t *cqrs_aggregate_store_new(void);
void cqrs_aggregate_store_destroy(cqrs_aggregate_store_t *s);

/* The aggregate with aggregate key key ("<tenant>/<aggregateId>"): the staged
 * one if the open batch changed it, else the committed one, else NULL.
 * Borrowed until the next stage/commit/abort/drop. */
const cqrs_aggregate_t *cqrs_aggregate_store_get(const cqrs_aggregate_store_t *s, const char *key);

/* Stages a after the open batch (takes ownership). */
void cqrs_aggregate_store_stage(cqrs_aggregate_store_t *s, cqrs_aggregate_t *a);

/* Puts a straight into the committed set (restore; takes ownership). */
void cqrs_aggregate_store_put(cqrs_aggregate_store_t *s, cqrs_aggregate_t *a);

/* Makes the staged aggregates committed, or throws them away. */
void cqrs_aggregate_store_commit(cqrs_aggregate_store_t *s);
void cqrs_aggregate_store_abort(cqrs_aggregate_store_t *s);

/* Forgets every aggregate of partition (on revoke). */
void cqrs_aggregate_store_drop_partition(cqrs_aggregate_store_t *s, int32_t partition);

/* Calls cb on every committed aggregate (which cb may change but not free or
 * rekey). */
void cqrs_aggregate_store_each(cqrs_aggregate_store_t *s, void (*cb)(cqrs_aggregate_t *a, void *ctx), void *ctx);

/* Committed aggregates held. */
size_t cqrs_aggregate_store_size(const cqrs_aggregate_store_t *s);

#endif
