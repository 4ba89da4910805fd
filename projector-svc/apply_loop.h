/* The apply loop of one projection: a consumer group of its own on `events`
 * (read_committed); batches become one MongoDB bulk write; offsets are
 * committed only after the store acknowledged. Each event's document goes to
 * its tenant's database (tenants.h), whose collection gets its indexes before
 * the first write into it; the events of a deleted tenant are skipped
 * (events_skipped_total{reason="tenant_deleted"}) and committed, so neither a
 * redelivery nor a rebuild brings its read models back. A poison event (undecodable, or
 * refused by the store after bounded retries) goes to events.dlq with the
 * error, projection and source offset in headers and the partition moves on,
 * or, by policy, the loop halts before it. Runs on its own thread.
 * The same loop, in rebuild mode, replays the log into a fresh collection. */
#ifndef CQRS_APPLY_LOOP_H
#define CQRS_APPLY_LOOP_H

#include "projection.h"
#include "tenants.h"

#include "cqrs/config.h"
#include "cqrs/log.h"
#include "cqrs/metrics.h"

#include <mongoc/mongoc.h>
#include <stdint.h>

typedef struct cqrs_apply_loop cqrs_apply_loop_t;

typedef enum { CQRS_POISON_DLQ, CQRS_POISON_HALT } cqrs_poison_policy_t;

typedef struct {
  cqrs_poison_policy_t poison; /* what a poison event does (live mode) */
  /* Rebuild mode: a throwaway consumer (no group offsets, no dead letters:
   * the live loop already sent them) that writes into the collection target
   * of each tenant's database from the start of the log, or from
   * from_time_ms (milliseconds since the epoch) when > 0. */
  const char *target;          /* NULL: live mode, writes where each tenant's alias points */
  int64_t from_time_ms;
  const char *tenant;          /* rebuild: only this tenant's events (NULL: every tenant's) */
} cqrs_apply_opts_t;

typedef struct {
  uint64_t applied;  /* events written */
  uint64_t poisoned; /* events dead-lettered or skipped as poison */
  int64_t lag;       /* events behind the end of the log, summed over partitions */
  bool lag_known;    /* every assigned partition reported its end */
  bool halted;       /* stopped before a poison event (CQRS_POISON_HALT) */
} cqrs_apply_progress_t;

/* Declares the metric families the apply loops write (HELP and TYPE lines), once per process. */
void cqrs_apply_loop_describe_metrics(cqrs_metrics_t *metrics);

/* Creates the consumer (live: group prefix + "projector-" + projection) and
 * the DLQ producer, makes sure the topics exist. Borrowed: cfg, log, metrics,
 * pool, tenants, projection, opts->target, opts->tenant. NULL with err. */
cqrs_apply_loop_t *cqrs_apply_loop_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_metrics_t *metrics,
                                       mongoc_client_pool_t *pool, cqrs_tenants_t *tenants,
                                       const cqrs_projection_t *projection, const cqrs_apply_opts_t *opts,
                                       cqrs_error_t *err);
bool cqrs_apply_loop_start(cqrs_apply_loop_t *loop, cqrs_error_t *err);
/* Finishes the batch in hand, commits, leaves the group. Safe twice. */
void cqrs_apply_loop_stop(cqrs_apply_loop_t *loop);
/* True while Kafka answers and the loop has not halted. */
bool cqrs_apply_loop_ready(cqrs_apply_loop_t *loop, cqrs_error_t *err);
/* A snapshot of the loop's progress. Any thread. */
void cqrs_apply_loop_progress(cqrs_apply_loop_t *loop, cqrs_apply_progress_t *out);
void cqrs_apply_loop_destroy(cqrs_apply_loop_t *loop);

#endif
