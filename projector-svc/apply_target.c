/* What differs between the live apply loop and a rebuild (apply_loop_private.h):
 * where writes go, what a poison event does, where offsets are kept, what is
 * reported. */
#include "apply_loop_private.h"

#include "cqrs/alloc.h"
#include "cqrs/freshness.h"
#include "cqrs/kafka.h"
#include "cqrs/read_model.h"
#include "cqrs/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- live: each tenant's alias, the group's committed offsets ---- */

static bool live_join(cqrs_apply_loop_t *loop, cqrs_error_t *err) {
  return cqrs_kafka_subscribe(loop->consumer, loop->t_events, err);
}

static cqrs_enter_t live_collection(cqrs_apply_loop_t *loop, const char *tenant, char out[CQRS_COLLECTION_NAME_MAX],
                                    cqrs_error_t *err) {
  cqrs_tenants_resolve(loop->tenants, tenant, loop->proj->name, out);
  const char *was = cqrs_map_get(loop->entered, tenant);
  if (was && strcmp(was, out) == 0) return CQRS_ENTER_WRITE;
  /* the first write of this loop into out: a swap's handoff? */
  char db[CQRS_TENANT_DB_MAX];
  cqrs_tenants_db(loop->tenants, tenant, db);
  int64_t *at = cqrs_xcalloc(loop->n_positions > 0 ? (size_t)loop->n_positions : 1, sizeof *at);
  mongoc_client_t *client = mongoc_client_pool_pop(loop->pool);
  int n = cqrs_read_models_handoff(client, db, loop->proj->name, out, at, loop->n_positions, err);
  mongoc_client_pool_push(loop->pool, client);
  if (n >= 0) cqrs_map_put(loop->entered, tenant, cqrs_xstrdup(out));
  for (int p = 0; p < n; p++)
    if (at[p] < loop->back[p]) loop->back[p] = at[p];
  free(at);
  if (n > 0)
    cqrs_log_info(loop->log, "first write into a swapped read model: going back to the swap's positions to apply "
                  "from there again, in order", "projection", loop->proj->name, "tenant", tenant, "collection", out,
                  NULL);
  return n < 0 ? CQRS_ENTER_UNKNOWN : n > 0 ? CQRS_ENTER_BACK : CQRS_ENTER_WRITE;
}

static bool live_poison(cqrs_apply_loop_t *loop, rd_kafka_message_t *m, const char *error, const char *part,
                        const char *off) {
  if (loop->opts.poison == CQRS_POISON_HALT) {
    cqrs_log_error(loop->log, "poison event: halting the projection before it (POISON_POLICY=halt)", "projection",
                   loop->proj->name, "error", error, "partition", part, "offset", off, NULL);
    atomic_store(&loop->halt_partition, m->partition);
    atomic_store(&loop->halt_offset, m->offset);
    atomic_store(&loop->halted, true);
    return false;
  }
  cqrs_dead_letters_send(loop->dead_letters, m, error);
  return true;
}

static void live_commit(cqrs_apply_loop_t *loop, rd_kafka_message_t **msgs, size_t upto) {
  rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(8);
  for (size_t i = 0; i < upto; i++) {
    int32_t pt = msgs[i]->partition;
    if (cqrs_apply_loop_below_floor(loop, msgs[i])) continue; /* committed already */
    rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(offsets, loop->t_events, pt);
    if (!tp) tp = rd_kafka_topic_partition_list_add(offsets, loop->t_events, pt);
    tp->offset = msgs[i]->offset + 1;
  }
  if (offsets->cnt == 0) {
    rd_kafka_topic_partition_list_destroy(offsets);
    return;
  }
  /* Stored, not committed: the consumer commits what is stored every
   * CQRS_APPLY_COMMIT_INTERVAL_MS, at a rebalance and when it closes
   * (apply_loop.c), off the loop's path; a partition revoked meanwhile is
   * refused here, its new owner applies that batch again (harmless). */
  rd_kafka_resp_err_t e = rd_kafka_offsets_store(loop->consumer, offsets);
  for (int i = 0; !e && i < offsets->cnt; i++)
    if (offsets->elems[i].err) e = offsets->elems[i].err;
  if (e)
    cqrs_log_debug(loop->log, "offsets not kept; the batch may be applied again (harmless)", "projection",
                   loop->proj->name, "error", rd_kafka_err2str(e), NULL);
  rd_kafka_topic_partition_list_destroy(offsets);
}

static void live_settle(cqrs_apply_loop_t *loop) {
  rd_kafka_resp_err_t e = rd_kafka_commit(loop->consumer, NULL, 0); /* what is stored, waiting for the broker */
  if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
    cqrs_log_warn(loop->log, "offset commit failed; what was applied since the last one may be applied again "
                  "(harmless)", "projection", loop->proj->name, "error", rd_kafka_err2str(e), NULL);
}

static void live_rewind_to(cqrs_apply_loop_t *loop, rd_kafka_topic_partition_list_t *parts) {
  rd_kafka_committed(loop->consumer, parts, 10000);
  for (int i = 0; i < parts->cnt; i++)
    if (parts->elems[i].offset < 0) parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING; /* nothing committed yet */
}

/* Caught up at this moment when every assigned partition is known and none
 * is behind. */
static void live_publish(cqrs_apply_loop_t *loop) {
  int64_t now = cqrs_time_now_ms();
  bool known = atomic_load(&loop->lag_known);
  int64_t lag = atomic_load(&loop->lag);
  cqrs_progress_t p = {known ? lag : -1, known && lag == 0 ? now : 0, now};
  mongoc_client_t *client = mongoc_client_pool_pop(loop->pool);
  cqrs_error_t err = {0};
  if (!cqrs_progress_publish(client, loop->cfg->mongo_db, loop->proj->name, &p, &err))
    cqrs_log_debug(loop->log, "cannot report progress", "projection", loop->proj->name, "error", err.message, NULL);
  mongoc_client_pool_push(loop->pool, client);
}

const cqrs_apply_target_t cqrs_apply_live = {.rebuild = false,
                                             .reports = true,
                                             .join = live_join,
                                             .collection = live_collection,
                                             .poison = live_poison,
                                             .commit = live_commit,
                                             .settle = live_settle,
                                             .rewind_to = live_rewind_to,
                                             .publish = live_publish};

/* ---- rebuild: a fresh collection, positions kept by its driver ---- */

/* Every partition of events, from the beginning or a checkpoint. */
static bool rebuild_join(cqrs_apply_loop_t *loop, cqrs_error_t *err) {
  int n = cqrs_kafka_partition_count(loop->consumer, loop->t_events, 10000, err);
  if (n <= 0) return false;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
  for (int p = 0; p < n; p++) {
    int64_t at = p < loop->opts.n_start_offsets && loop->opts.start_offsets[p] >= 0 ? loop->opts.start_offsets[p]
                                                                                  : RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_topic_partition_list_add(l, loop->t_events, p)->offset = at;
  }
  for (int i = 0; i < l->cnt; i++) /* where a held rebuild goes back to until it has written */
    if (l->elems[i].partition < loop->n_positions)
      atomic_store(&loop->positions[l->elems[i].partition], l->elems[i].offset);
  rd_kafka_assign(loop->consumer, l);
  rd_kafka_topic_partition_list_destroy(l);
  return true;
}

static cqrs_enter_t rebuild_collection(cqrs_apply_loop_t *loop, const char *tenant,
                                       char out[CQRS_COLLECTION_NAME_MAX], cqrs_error_t *err) {
  (void)tenant;
  (void)err;
  snprintf(out, CQRS_COLLECTION_NAME_MAX, "%s", loop->opts.target);
  return CQRS_ENTER_WRITE;
}

/* The live loop already dead-lettered it (or halted before it). */
static bool rebuild_poison(cqrs_apply_loop_t *loop, rd_kafka_message_t *m, const char *error, const char *part,
                           const char *off) {
  (void)m;
  cqrs_log_warn(loop->log, "rebuild skips a poison event", "projection", loop->proj->name, "error", error,
                "partition", part, "offset", off, NULL);
  return true;
}

/* A rebuild keeps no offsets: its positions are its driver's checkpoint. */
static void rebuild_commit(cqrs_apply_loop_t *loop, rd_kafka_message_t **msgs, size_t upto) {
  (void)loop;
  (void)msgs;
  (void)upto;
}

static void rebuild_settle(cqrs_apply_loop_t *loop) { (void)loop; }

static void rebuild_rewind_to(cqrs_apply_loop_t *loop, rd_kafka_topic_partition_list_t *parts) {
  for (int i = 0; i < parts->cnt; i++) {
    int32_t pt = parts->elems[i].partition;
    parts->elems[i].offset = pt < loop->n_positions ? atomic_load(&loop->positions[pt]) : RD_KAFKA_OFFSET_BEGINNING;
  }
}

/* Its collection serves no query yet. */
static void rebuild_publish(cqrs_apply_loop_t *loop) { (void)loop; }

const cqrs_apply_target_t cqrs_apply_rebuild = {.rebuild = true,
                                                .reports = false,
                                                .join = rebuild_join,
                                                .collection = rebuild_collection,
                                                .poison = rebuild_poison,
                                                .commit = rebuild_commit,
                                                .settle = rebuild_settle,
                                                .rewind_to = rebuild_rewind_to,
                                                .publish = rebuild_publish};
