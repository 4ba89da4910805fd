/* The apply loop's state, shared by apply_loop.c (the loop) and
 * apply_target.c (what differs between the live loop and a rebuild) only,
 * as mongo-c-driver's *-private.h headers are. Nothing else includes it. */
#ifndef CQRS_APPLY_LOOP_PRIVATE_H
#define CQRS_APPLY_LOOP_PRIVATE_H

#include "apply_loop.h"
#include "dead_letters.h"

#include "cqrs/map.h"
#include "cqrs/tenant.h"
#include "cqrs/worker.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>

typedef enum {
  CQRS_ENTER_WRITE,  /* write it */
  CQRS_ENTER_BACK,   /* go back to loop->back first, then write it */
  CQRS_ENTER_UNKNOWN /* the store cannot say: later */
} cqrs_enter_t;

/* Where a loop writes and what it keeps: one const row per mode, chosen once
 * when the loop is made (opts.target NULL: live), so the loop itself never
 * asks which mode it is in. Each function runs on the loop's thread unless
 * it says otherwise. */
typedef struct {
  /* Its consumer group is the rebuild's (cqrs_config_projector_group). */
  bool rebuild;
  /* Writes the projection's metrics and freshness: the live loop does; a
   * rebuild would count the log's events a second time. */
  bool reports;
  /* Joins the events topic (owner's thread, before the worker starts). */
  bool (*join)(cqrs_apply_loop_t *loop, cqrs_error_t *err);
  /* The collection of tenant's database that its writes go to, into out.
   * The live loop's first write of a collection (after a swap, or at its
   * start) may have to go back to the swap's positions first (the handoff,
   * cqrs/read_model.h): CQRS_ENTER_BACK, with loop->back lowered to them;
   * CQRS_ENTER_UNKNOWN with err when the store cannot say. */
  cqrs_enter_t (*collection)(cqrs_apply_loop_t *loop, const char *tenant, char out[CQRS_COLLECTION_NAME_MAX],
                             cqrs_error_t *err);
  /* A poison event m (not the one a release lets past: that one the loop
   * dead-letters itself), at partition part, offset off (as text). Returns
   * false to halt before it. */
  bool (*poison)(cqrs_apply_loop_t *loop, rd_kafka_message_t *m, const char *error, const char *part,
                 const char *off);
  /* Keeps msgs[0..upto) (upto > 0) as done, after the store acknowledged them.
   * Need not wait for the broker: settle does. */
  void (*commit)(cqrs_apply_loop_t *loop, rd_kafka_message_t **msgs, size_t upto);
  /* Returns once what commit kept is where rewind_to and a restart read it:
   * before the loop reads its committed offsets, and after a batch that sent
   * a dead letter (so that a crash does not send it again). */
  void (*settle)(cqrs_apply_loop_t *loop);
  /* Sets the offsets of parts (the assignment) to where a rewind puts them. */
  void (*rewind_to)(cqrs_apply_loop_t *loop, rd_kafka_topic_partition_list_t *parts);
  /* Reports what the loop has applied (cqrs/freshness.h), every CQRS_PROGRESS_PERIOD_MS. */
  void (*publish)(cqrs_apply_loop_t *loop);
} cqrs_apply_target_t;

extern const cqrs_apply_target_t cqrs_apply_live;    /* each tenant's alias; the group's offsets */
extern const cqrs_apply_target_t cqrs_apply_rebuild; /* opts.target in each tenant's database; positions only */

struct cqrs_apply_loop {
  const cqrs_config_t *cfg;
  const cqrs_log_t *log;
  cqrs_metrics_t *metrics;
  cqrs_metrics_t *reported; /* metrics when target->reports, else NULL */
  mongoc_client_pool_t *pool;
  const cqrs_projection_t *proj;
  cqrs_tenants_t *tenants;
  cqrs_apply_opts_t opts;
  const cqrs_apply_target_t *target;
  rd_kafka_t *consumer;
  cqrs_dead_letters_t *dead_letters;
  char *t_events;
  char labels[96];          /* projection="..." */
  char skipped_labels[160]; /* projection="...",reason="tenant_deleted" */
  cqrs_worker_t worker;
  atomic_bool halted;
  atomic_uint_least64_t applied, poisoned;
  atomic_int_least64_t lag;
  atomic_bool lag_known;
  /* pause and halt (cqrs_apply_loop_pause) */
  atomic_bool paused, held; /* held: paused and at a batch boundary, nothing in hand */
  atomic_int_least32_t halt_partition, skip_partition;
  atomic_int_least64_t halt_offset, skip_offset; /* skip: the halted event to dead-letter on release; -1 none */
  pthread_mutex_t error_mu;
  char last_error[256];
  /* the next offset of each partition after what is written (a rebuild's
   * checkpoint; the lag after a seek) */
  atomic_int_least64_t *positions;
  int n_positions;
  /* The handoff (loop thread only): the collection each tenant's writes went
   * to so far (tenant -> name), the positions to go back to (INT64_MAX: none)
   * and, per partition, the offset up to which what is applied again after
   * going back was applied (and committed) already: not committed again, a
   * poison event there not dead-lettered again (0: none). */
  cqrs_map_t *entered;
  int64_t *back;
  int64_t *floor;
};

/* Whether m was applied and committed before the loop went back (the
 * handoff): below its partition's floor. */
static inline bool cqrs_apply_loop_below_floor(const cqrs_apply_loop_t *loop, const rd_kafka_message_t *m) {
  return m->partition >= 0 && m->partition < loop->n_positions && m->offset < loop->floor[m->partition];
}

#endif
