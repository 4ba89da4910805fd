/* Zero-downtime rebuild of one read model: replay the log into a fresh
 * collection, swap the read model's alias to it once caught up, keep applying
 * a little longer so nothing the live projector wrote to the old collection
 * during the swap is missed, then drop the old collection. Queries answer from
 * the old collection until the swap.
 *
 * Per tenant: each tenant's read model is its own (tenants.h). A rebuild of
 * one tenant reads the whole log, applies only that tenant's events into a
 * fresh collection of its database and swaps the alias there: no other
 * tenant's database is read or written. A rebuild of every tenant does the
 * same for each tenant it meets in the log, each in its own database. A
 * deleted tenant is never rebuilt. */
#ifndef CQRS_REBUILD_H
#define CQRS_REBUILD_H

#include "projection.h"
#include "tenants.h"

#include "cqrs/config.h"
#include "cqrs/log.h"

#include <stdint.h>

/* Runs a rebuild of the whole log to the end. tenant (a valid tenant id)
 * rebuilds only that tenant's read model; NULL every tenant's met in the log.
 * (From a time, a read model is replayed in place, not rebuilt: replay.h.)
 * Prints progress
 * (events applied, rate, estimated time left) to stderr when it is a terminal
 * and to the log. Returns 0 on success, 1 on failure (logged). */
int cqrs_rebuild_run(const cqrs_config_t *cfg, const cqrs_log_t *log, const cqrs_projection_t *projection,
                     const char *tenant);

/* The parts a replay (replay.h) shares. */

/* After a swap, keep applying for this long: longer than the live
 * projector's alias cache (1 s) plus a batch, so events it wrote to the old
 * collection meanwhile reach the new one too (writes are idempotent). */
#define CQRS_REBUILD_TAIL_MS 3000

/* One tenant's read model, swapped or to swap. */
typedef struct {
  char tenant[CQRS_TENANT_MAX + 1];
  char previous[CQRS_COLLECTION_NAME_MAX]; /* the collection that served it before */
  bool swapped;
} cqrs_rebuild_swap_t;

/* Points the alias of every tenant met (but not deleted) at target in its
 * database; *swaps gets them (free it), *n their count. False with err at the
 * first swap the store refuses (those before it stay swapped: each is a
 * complete read model). tenants must resolve aliases afresh (TTL 0). */
bool cqrs_rebuild_swap_all(cqrs_tenants_t *tenants, mongoc_client_pool_t *pool, const cqrs_log_t *log,
                           const cqrs_projection_t *projection, const char *target, cqrs_rebuild_swap_t **swaps,
                           size_t *n, cqrs_error_t *err);

/* After the tail: drops the collections no query reads any more: each swapped
 * tenant's previous one, and target in the databases of tenants first met
 * after the swap (their live collection has all their events). Failures are
 * logged: a collection left behind is only a waste of space. */
void cqrs_rebuild_drop_unused(cqrs_tenants_t *tenants, mongoc_client_pool_t *pool, const cqrs_log_t *log,
                              const char *target, const cqrs_rebuild_swap_t *swaps, size_t n_swaps);

/* Drops collection name of database db ("not found" is success). */
bool cqrs_rebuild_drop_collection(mongoc_client_pool_t *pool, const char *db, const char *name, cqrs_error_t *err);

#endif
