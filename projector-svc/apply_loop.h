/* The apply loop of one projection: a consumer group of its own on `events`
 * (read_committed); batches become one MongoDB bulk write; offsets are
 * committed only after the store acknowledged (every
 * CQRS_APPLY_COMMIT_INTERVAL_MS, not waited for by the next batch). Each
 * event's document goes to its tenant's database (tenants.h), whose collection gets its indexes before
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

/* How often the live loop's consumer commits the offsets of what the store
 * acknowledged. Committing after every batch, waiting for the broker, cost
 * each of the five loops a round trip per batch and the broker about 300
 * OffsetCommit requests a second at 500 events/s (BENCHMARKS.md, "The
 * projector's offset commits"). A crash now applies up to this much again,
 * which changes nothing (writes are guarded by version); admin-svc's lag,
 * read from these offsets, is up to this much late, and so is what a
 * rebuild's swap reads of them (rebuild.c, await_live_left). */
#define CQRS_APPLY_COMMIT_INTERVAL_MS 250

typedef enum { CQRS_POISON_DLQ, CQRS_POISON_HALT } cqrs_poison_policy_t;

typedef struct {
  cqrs_poison_policy_t poison; /* what a poison event does (live mode) */
  /* Rebuild mode: a throwaway consumer (no group offsets, no dead letters:
   * the live loop already sent them) that writes into the collection target
   * of each tenant's database from the start of the log. */
  const char *target;          /* NULL: live mode, writes where each tenant's alias points */
  const char *tenant;          /* rebuild: only this tenant's events (NULL: every tenant's) */
  /* Rebuild: start each partition p at start_offsets[p] (a replay's
   * checkpoint; n_start_offsets of them) instead of the beginning. */
  const int64_t *start_offsets;
  int n_start_offsets;
  /* Rebuild: applies only the events include accepts (NULL: all ours), e.g. a
   * replay from a time that re-derives the aggregates touched since. */
  bool (*include)(void *ctx, const cqrs_event_t *ev);
  void *include_ctx;
} cqrs_apply_opts_t;

typedef struct {
  uint64_t applied;  /* events written */
  uint64_t poisoned; /* events dead-lettered or skipped as poison */
  int64_t lag;       /* events behind the end of the log, summed over partitions */
  bool lag_known;    /* every assigned partition reported its end */
  bool halted;       /* stopped before a poison event (CQRS_POISON_HALT) */
  bool paused;       /* held by cqrs_apply_loop_pause, at a batch boundary (nothing in hand) */
  int32_t halt_partition; /* where it halted (halted only) */
  int64_t halt_offset;
  char last_error[256]; /* the last poison event's error, "" when none */
} cqrs_apply_progress_t;

/* Declares the metric families the apply loops write (HELP and TYPE lines), once per process. */
void cqrs_apply_loop_describe_metrics(cqrs_metrics_t *metrics);

/* Creates the consumer (group: cqrs_config_projector_group) and
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

/* Holds (paused true) or lets go of the loop at a batch boundary: a held
 * loop applies nothing and commits nothing; it keeps its group membership
 * (its partitions paused) and, after a rebalance, starts again from the
 * committed offsets (a rebuild: from its positions). A halted loop stays
 * halted. Any thread. */
void cqrs_apply_loop_pause(cqrs_apply_loop_t *loop, bool paused);

/* Moves a loop halted at a poison event past it: that event is
 * dead-lettered (whatever POISON_POLICY says) and the loop goes on (unless
 * paused). False when it was not halted. Any thread. */
bool cqrs_apply_loop_release(cqrs_apply_loop_t *loop);

/* Rebuild mode: the next offset of each partition after everything written
 * so far (the replay's checkpoint), into out[0..n); negative (a logical
 * offset: the beginning) for a partition not yet read. Returns the partition
 * count (may exceed n). */
int cqrs_apply_loop_positions(cqrs_apply_loop_t *loop, int64_t *out, int n);

/* The projection this loop applies. */
const cqrs_projection_t *cqrs_apply_loop_projection(const cqrs_apply_loop_t *loop);

#endif
