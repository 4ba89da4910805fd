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
#include "apply_loop.h"
#include "tenants.h"

#include "cqrs/config.h"
#include "cqrs/log.h"
#include "cqrs/worker.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
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

/* How long after a swap the rebuild waits at most for the live projector
 * to show it has left the previous collections (cqrs_rebuild_finish_swaps). */
#define CQRS_REBUILD_TAIL_MAX_MS 60000

/* One tenant's read model, swapped or to swap. */
typedef struct {
  char tenant[CQRS_TENANT_MAX + 1];
  char previous[CQRS_COLLECTION_NAME_MAX]; /* the collection that served it before */
  bool swapped;
} cqrs_rebuild_swap_t;

/* The most partitions of events a rebuild hands off and follows. */
#define CQRS_REBUILD_PARTITIONS_MAX 1024

/* Points the alias of every tenant met (but not deleted) at target in its
 * database, with loop's positions (the rebuild's, filling target) as the
 * swap's handoff (cqrs/read_model.h); *swaps gets them (free it), *n their
 * count. False with err at the first swap the store refuses (those before it
 * stay swapped: each is a complete read model). tenants must resolve aliases
 * afresh (TTL 0). */
bool cqrs_rebuild_swap_all(cqrs_tenants_t *tenants, mongoc_client_pool_t *pool, const cqrs_log_t *log,
                           const cqrs_projection_t *projection, const char *target, cqrs_apply_loop_t *loop,
                           cqrs_rebuild_swap_t **swaps, size_t *n, cqrs_error_t *err);

/* After the swaps (made at swapped_ms, cqrs_time_monotonic_ms) of
 * projection into target: keeps loop (the rebuild's, still applying) going
 * until every event the live projector may have written to a previous
 * collection is in target too, stops loop, then releases the readers
 * (cqrs_read_models_release_readers) and waits their TTL, so nothing reads
 * a previous collection any more. How it knows: the live loop re-reads the
 * alias every CQRS_ALIAS_TTL_MS and writes one batch at a time, committing
 * its offsets after the batch is written; so once that time has passed, a
 * partition is done with the previous collection when the live group's
 * committed offset has moved since (the batch in flight, the last that may
 * have used the old alias, is written) or nothing is left to read past it.
 * The rebuild then applies up to the offsets committed by then. Fixed
 * waits missed events written to the old collection under load (a 3 s tail;
 * e2e_read_side saw reads go back). False (logged) when the live projector
 * did not show it within CQRS_REBUILD_TAIL_MAX_MS (stopped, or failing); the
 * readers are released all the same. worker (may be NULL): its stop ends the
 * waits. */
bool cqrs_rebuild_finish_swaps(const cqrs_config_t *cfg, const cqrs_log_t *log, const cqrs_projection_t *projection,
                               cqrs_apply_loop_t *loop, cqrs_tenants_t *tenants, mongoc_client_pool_t *pool,
                               const char *target, const cqrs_rebuild_swap_t *swaps, size_t n_swaps,
                               int64_t swapped_ms, cqrs_worker_t *worker);

/* For each partition p of topic (n of them) with want[p] (want NULL: every
 * one): true in empty[p] when no committed record is at or after from[p]
 * (negative: the beginning). probe is a consumer with enable.partition.eof,
 * assigned for the look and unassigned after. Every empty[p] is false when
 * the broker did not answer within 5 s (not known to be empty). */
void cqrs_rebuild_nothing_past(rd_kafka_t *probe, const char *topic, int n, const bool *want, const int64_t *from,
                               bool *empty);

/* After the tail: drops the collections no query reads any more: each swapped
 * tenant's previous one, and target in the databases of tenants first met
 * after the swap (their live collection has all their events). Failures are
 * logged: a collection left behind is only a waste of space. */
void cqrs_rebuild_drop_unused(cqrs_tenants_t *tenants, mongoc_client_pool_t *pool, const cqrs_log_t *log,
                              const char *target, const cqrs_rebuild_swap_t *swaps, size_t n_swaps);

/* Drops collection name of database db ("not found" is success). */
bool cqrs_rebuild_drop_collection(mongoc_client_pool_t *pool, const char *db, const char *name, cqrs_error_t *err);

#endif
