/* Writing one batch of a projection's writes to the store: folded per
 * document (fold.h), new documents inserted without a lookup, bulk commands
 * of at most bulk_max writes, several of them in flight at once.
 *
 * Targets: a batch holds several tenants' events, and each tenant's documents
 * go to its own database. Each write names its target (database, collection);
 * a document is one _id in one target, and a bulk command writes into one
 * target, so commands never mix tenants. The commands of all targets share
 * the concurrency: a batch of many small tenants costs about what a batch of
 * one tenant does.
 *
 * Order: after folding each document has one write, so commands may run in
 * any order and concurrently; two events of one aggregate are never
 * reordered (they are one write) and none is skipped (the fold keeps every
 * $set). A batch that cannot be folded is written in log order, one ordered
 * command at a time.
 *
 * Failures: while the store is unreachable, each command is retried with
 * backoff (100 ms doubling to 5 s; a log line and store_write_retries_total
 * per retry) until it answers or the owner is stopping. A command the store
 * refuses is retried write by write; a write it keeps refusing is poison:
 * refused() says whether to go on. Everything is idempotent (version guards), so a retry
 * after a partial command changes nothing that was already written. */
#ifndef CQRS_STORE_WRITER_H
#define CQRS_STORE_WRITER_H

#include "projection.h"

#include "cqrs/log.h"
#include "cqrs/metrics.h"

#include "cqrs/worker.h"

#include <mongoc/mongoc.h>

typedef enum {
  CQRS_WRITE_DONE,     /* every write is in the store (or was poison and refused() said go on) */
  CQRS_WRITE_HALTED,   /* refused() said halt; nothing of the batch may be committed */
  CQRS_WRITE_STOPPING, /* the owner stopped while retrying */
} cqrs_write_outcome_t;

typedef struct {
  mongoc_client_pool_t *pool; /* borrowed; each command in flight pops its own client */
  int bulk_max;               /* writes per command (MONGO_BULK_MAX) */
  int concurrency;            /* commands in flight at once (MONGO_WRITE_CONCURRENCY) */
  const cqrs_log_t *log;      /* borrowed */
  cqrs_metrics_t *metrics;    /* borrowed; NULL: no metrics (a rebuild) */
  const char *labels;         /* borrowed metric labels, e.g. projection="users" */
  const char *name;           /* borrowed: the projection, for log lines */
  cqrs_worker_t *owner;       /* borrowed: the thread writing; once it is stopping, retries give up */
  /* A write the store refused WRITE_RETRIES times: i indexes the batch's
   * writes. Returns false to halt. Called from writer threads. */
  bool (*refused)(void *ctx, size_t i, const char *error);
  void *ctx;
} cqrs_store_writer_t;

/* Where writes go: one collection of one tenant's database. */
typedef struct {
  const char *db;         /* borrowed */
  const char *collection; /* borrowed */
} cqrs_store_target_t;

/* Writes w[0..n) (log order), w[i] into targets[target_of[i]]. Blocks until
 * done, halted or stopping. */
cqrs_write_outcome_t cqrs_store_write(const cqrs_store_writer_t *sw, const cqrs_store_target_t *targets,
                                      const size_t *target_of, const cqrs_write_t *w, size_t n);

#endif
