/* Apply loop: events -> writes (projection) -> each tenant's database
 * (tenants, store_writer) -> commit; poison events to dead_letters; lag from
 * lag. What differs in a rebuild is its target's row (apply_target.c). */
#include "apply_loop_private.h"

#include "lag.h"
#include "loop_reader.h"
#include "store_writer.h"

#include "cqrs/alloc.h"
#include "cqrs/freshness.h"
#include "cqrs/kafka.h"
#include "cqrs/map.h"
#include "cqrs/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH_MAX 1000

/* ---- poison events ---- */

/* An event that cannot be applied. Returns false when the loop must halt
 * before it (nothing from it on is applied or committed). */
static bool poison(cqrs_apply_loop_t *loop, rd_kafka_message_t *m, const char *error) {
  if (cqrs_apply_loop_below_floor(loop, m)) /* met before going back (the handoff): dead-lettered or released then */
    return true;
  char part[16], off[24];
  snprintf(part, sizeof part, "%d", m->partition);
  snprintf(off, sizeof off, "%lld", (long long)m->offset);
  pthread_mutex_lock(&loop->error_mu);
  snprintf(loop->last_error, sizeof loop->last_error, "%s", error);
  pthread_mutex_unlock(&loop->error_mu);
  bool released = atomic_load(&loop->skip_offset) == m->offset && atomic_load(&loop->skip_partition) == m->partition;
  if (released) { /* the event a halted loop was released past: to the dead letters, once */
    atomic_store(&loop->skip_offset, -1);
    cqrs_dead_letters_send(loop->dead_letters, m, error);
  } else if (!loop->target->poison(loop, m, error, part, off)) {
    return false;
  }
  atomic_fetch_add(&loop->poisoned, 1);
  return true;
}

/* ---- writing ---- */

/* A batch's writes and, for each, the record it came from (for dead
 * letters) and its tenant; the places they go to. Arrays of BATCH_MAX,
 * allocated once per loop. */
typedef struct {
  cqrs_write_t *writes;
  rd_kafka_message_t **sources;
  char (*tenants)[CQRS_TENANT_MAX + 1];
  char (*collection_of)[CQRS_COLLECTION_NAME_MAX]; /* each write's, as its tenant entered it */
  size_t *target_of;
  cqrs_store_target_t *targets;
  size_t n_targets;
  size_t *first_of; /* a write of each target (its tenant is tenants[first_of[t]]) */
  char (*dbs)[CQRS_TENANT_DB_MAX];
  char (*collections)[CQRS_COLLECTION_NAME_MAX];
} pending_t;

static void pending_init(pending_t *p) {
  p->writes = cqrs_writes_new(BATCH_MAX); /* aligned for its bson_t members */
  p->sources = cqrs_xcalloc(BATCH_MAX, sizeof *p->sources);
  p->tenants = cqrs_xcalloc(BATCH_MAX, sizeof *p->tenants);
  p->collection_of = cqrs_xcalloc(BATCH_MAX, sizeof *p->collection_of);
  p->target_of = cqrs_xcalloc(BATCH_MAX, sizeof *p->target_of);
  p->targets = cqrs_xcalloc(BATCH_MAX, sizeof *p->targets);
  p->first_of = cqrs_xcalloc(BATCH_MAX, sizeof *p->first_of);
  p->dbs = cqrs_xcalloc(BATCH_MAX, sizeof *p->dbs);
  p->collections = cqrs_xcalloc(BATCH_MAX, sizeof *p->collections);
}

static void pending_cleanup(pending_t *p) {
  free(p->writes);
  free(p->sources);
  free(p->tenants);
  free(p->collection_of);
  free(p->target_of);
  free(p->targets);
  free(p->first_of);
  free(p->dbs);
  free(p->collections);
}

/* Sleeps ms in short naps; false when the loop is stopping. */
static bool nap(cqrs_apply_loop_t *loop, int ms) {
  for (int slept = 0; slept < ms; slept += 50) {
    if (cqrs_worker_stopping(&loop->worker)) return false;
    usleep(50 * 1000);
  }
  return !cqrs_worker_stopping(&loop->worker);
}

/* Makes sure collection of tenant's database has its indexes before anything
 * is written into it (tenants.h: once per process), retrying with backoff
 * while the store refuses or does not answer. False when the loop is
 * stopping first. */
static bool prepare_target(cqrs_apply_loop_t *loop, const char *tenant, const char *collection) {
  for (int backoff = 100;; backoff = backoff < 5000 ? backoff * 2 : 5000) {
    cqrs_error_t err = {0};
    if (cqrs_tenants_prepare(loop->tenants, tenant, collection, loop->proj, &err)) return true;
    if (loop->reported) cqrs_metrics_add(loop->reported, "store_write_retries_total", loop->labels, 1);
    char ms[16];
    snprintf(ms, sizeof ms, "%d", backoff);
    cqrs_log_warn(loop->log, "cannot create a read model's indexes; retrying before writing into it", "projection",
                  loop->proj->name, "tenant", tenant, "collection", collection, "error", err.message, "retryInMs",
                  ms, NULL);
    if (!nap(loop, backoff)) return false;
  }
}

/* Gives each distinct tenant of p's writes a target (its database and the
 * collection its writes entered, with its indexes) and each write its
 * target's index. Returns how many targets, or
 * SIZE_MAX when the loop is stopping. */
static size_t targets(cqrs_apply_loop_t *loop, pending_t *p, size_t n) {
  cqrs_map_t *seen = cqrs_map_new(NULL); /* tenant -> target index + 1 */
  size_t nt = 0;
  for (size_t i = 0; i < n; i++) {
    size_t t = (size_t)(uintptr_t)cqrs_map_get(seen, p->tenants[i]);
    if (t == 0) {
      t = nt++;
      cqrs_map_put(seen, p->tenants[i], (void *)(uintptr_t)(t + 1));
      p->first_of[t] = i;
      cqrs_tenants_db(loop->tenants, p->tenants[i], p->dbs[t]);
      snprintf(p->collections[t], sizeof p->collections[t], "%s", p->collection_of[i]);
      p->targets[t] = (cqrs_store_target_t){p->dbs[t], p->collections[t]};
      if (!prepare_target(loop, p->tenants[i], p->collections[t])) {
        nt = SIZE_MAX;
        break;
      }
    } else {
      t--;
    }
    p->target_of[i] = t;
  }
  cqrs_map_destroy(seen);
  p->n_targets = nt == SIZE_MAX ? 0 : nt;
  return nt;
}

typedef struct {
  cqrs_apply_loop_t *loop;
  const pending_t *p;
} refused_ctx_t;

static bool refused(void *ctx, size_t i, const char *error) {
  refused_ctx_t *r = ctx;
  return poison(r->loop, r->p->sources[i], error);
}

/* Writes the batch's writes, each into its tenant's database (see
 * store_writer.h). Call holding the tenants' gate. */
static cqrs_write_outcome_t write_batch(cqrs_apply_loop_t *loop, pending_t *p, size_t n) {
  p->n_targets = 0;
  if (n == 0) return CQRS_WRITE_DONE;
  if (targets(loop, p, n) == SIZE_MAX) return CQRS_WRITE_STOPPING;
  refused_ctx_t rc = {loop, p};
  cqrs_store_writer_t sw = {.pool = loop->pool, .bulk_max = loop->cfg->mongo_bulk_max,
                            .concurrency = loop->cfg->mongo_write_concurrency, .log = loop->log,
                            .metrics = loop->reported, .labels = loop->labels,
                            .name = loop->proj->name, .owner = &loop->worker, .refused = refused, .ctx = &rc};
  return cqrs_store_write(&sw, p->targets, p->target_of, p->writes, n);
}

/* events_applied_by_tenant_total: the batch's writes per tenant (the first
 * CQRS_METRICS_TENANTS tenants by name, then one series for the others). */
static void count_by_tenant(cqrs_apply_loop_t *loop, const pending_t *p, size_t n) {
  size_t *k = cqrs_xcalloc(p->n_targets ? p->n_targets : 1, sizeof *k);
  for (size_t i = 0; i < n; i++) k[p->target_of[i]]++;
  for (size_t t = 0; t < p->n_targets; t++) {
    char labels[192];
    snprintf(labels, sizeof labels, "%s,tenant=\"%s\"", loop->labels,
             cqrs_metrics_tenant(loop->metrics, p->tenants[p->first_of[t]]));
    cqrs_metrics_add(loop->metrics, "events_applied_by_tenant_total", labels, (double)k[t]);
  }
  free(k);
}

/* ---- the loop ---- */

static void update_lag(cqrs_apply_loop_t *loop) {
  int64_t total, written[256];
  int n = cqrs_apply_loop_positions(loop, written, 256);
  bool known = cqrs_consumer_lag(loop->consumer, written, n < 256 ? n : 256, loop->reported, loop->labels,
                                 &total);
  atomic_store(&loop->lag, total);
  atomic_store(&loop->lag_known, known);
}

/* Whether ev is this loop's business: its projection's aggregate, and, in a
 * rebuild of one tenant, that tenant's. */
static bool ours(const cqrs_apply_loop_t *loop, const cqrs_event_t *ev) {
  return (!loop->proj->aggregate_type || strcmp(ev->aggregate_type, loop->proj->aggregate_type) == 0) &&
         (!loop->opts.tenant || strcmp(ev->tenant, loop->opts.tenant) == 0) &&
         (!loop->opts.include || loop->opts.include(loop->opts.include_ctx, ev));
}

/* ev's write into p->writes[np], by the projection's apply, or by its
 * apply_reading with a reader of the store bound to ev's tenant and the
 * batch's writes so far (loop_reader.h). */
static bool apply(cqrs_apply_loop_t *loop, const cqrs_event_t *ev, pending_t *p, size_t np, bool *skip,
                  cqrs_error_t *err) {
  cqrs_projection_reader_t reader;
  cqrs_loop_reader_t ctx = {.pool = loop->pool, .tenants = loop->tenants, .owner = &loop->worker,
                            .projection = loop->proj->name, .target = loop->opts.target, .tenant = ev->tenant,
                            .writes = p->writes, .write_tenants = (const char(*)[CQRS_TENANT_MAX + 1])p->tenants,
                            .n_writes = np};
  cqrs_loop_reader_bind(&reader, &ctx, loop->cfg->snapshot_every);
  return cqrs_projection_apply(loop->proj, &reader, ev, &p->writes[np], skip, err);
}

/* Decodes msgs into writes; poison events are handled on the spot; a deleted
 * tenant's events are skipped (counted in *skipped). *upto is the number of
 * msgs covered: n, unless the loop halts at a poison event, or a reading
 * projection could not read for msgs[*upto] now, or the store could not say
 * where its tenant's writes go (*again set, the reason in again_why), or
 * they go to a collection swapped in whose handoff takes the loop back (*back
 * set, loop->back lowered): the batch is applied up to it, and read again
 * from it (or the handoff's positions) later. Call holding the tenants'
 * gate, so no tenant is dropped between the check and the write. */
static size_t prepare(cqrs_apply_loop_t *loop, rd_kafka_message_t **msgs, size_t n, pending_t *p, size_t *upto,
                      size_t *skipped, bool *again, bool *back, char again_why[256]) {
  size_t np = 0;
  *upto = n;
  *skipped = 0;
  *again = *back = false;
  for (size_t i = 0; i < n; i++) {
    cqrs_header_t hdrs[32];
    size_t nh = cqrs_kafka_headers(msgs[i], hdrs, 32);
    cqrs_event_t ev;
    cqrs_error_t err = {0};
    bool skip = false, ok = true;
    if (!cqrs_event_from_record(&ev, hdrs, nh, msgs[i]->payload, msgs[i]->len, &err)) {
      ok = poison(loop, msgs[i], err.message);
    } else if (!ours(loop, &ev)) {
      /* another read model's event */
    } else if (cqrs_tenants_deleted(loop->tenants, ev.tenant)) {
      (*skipped)++;
    } else {
      /* where the tenant's writes go: asked once per run of its events in the batch */
      cqrs_enter_t entered = CQRS_ENTER_WRITE;
      if (np > 0 && strcmp(p->tenants[np - 1], ev.tenant) == 0)
        memcpy(p->collection_of[np], p->collection_of[np - 1], sizeof p->collection_of[np]);
      else
        entered = loop->target->collection(loop, ev.tenant, p->collection_of[np], &err);
      if (entered == CQRS_ENTER_BACK) {
        *back = true;
        ok = false;
      } else if (entered == CQRS_ENTER_UNKNOWN) {
        snprintf(again_why, 256, "%s", err.message);
        *again = true;
        ok = false;
      } else if (!apply(loop, &ev, p, np, &skip, &err)) {
        cqrs_write_cleanup(&p->writes[np]);
        if (loop->proj->apply_reading && err.code == CQRS_ERR_UNAVAILABLE) { /* not the event's fault */
          snprintf(again_why, 256, "%s", err.message);
          *again = true;
          ok = false;
        } else {
          ok = poison(loop, msgs[i], err.message);
        }
      } else if (skip) {
        if (err.message[0])
          cqrs_log_warn(loop->log, "a write due is not made", "projection", loop->proj->name, "reason", err.message,
                        NULL);
        cqrs_write_cleanup(&p->writes[np]);
      } else {
        snprintf(p->tenants[np], sizeof p->tenants[np], "%s", ev.tenant);
        p->sources[np++] = msgs[i];
      }
    }
    cqrs_event_cleanup(&ev);
    if (!ok) {
      *upto = i;
      break;
    }
  }
  return np;
}

/* Keeps msgs[0..upto) as written: the positions, then the target's commit. */
static void commit(cqrs_apply_loop_t *loop, rd_kafka_message_t **msgs, size_t upto) {
  for (size_t i = 0; i < upto; i++) /* what is written (a rebuild's checkpoint; the lag after a seek) */
    if (msgs[i]->partition >= 0 && msgs[i]->partition < loop->n_positions &&
        !cqrs_apply_loop_below_floor(loop, msgs[i]))
      atomic_store(&loop->positions[msgs[i]->partition], msgs[i]->offset + 1);
  if (upto) loop->target->commit(loop, msgs, upto);
}

/* When going back fails: rest[0..n) (the batch from where it stopped) is
 * read again (each partition put back at its first record there), and every
 * tenant's handoff is looked up again at its next write. */
static void read_rest_again(cqrs_apply_loop_t *loop, rd_kafka_message_t **rest, size_t n) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
  for (size_t i = 0; i < n; i++) {
    rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(l, loop->t_events, rest[i]->partition);
    if (!tp) (tp = rd_kafka_topic_partition_list_add(l, loop->t_events, rest[i]->partition))->offset = rest[i]->offset;
    if (rest[i]->offset < tp->offset) tp->offset = rest[i]->offset;
  }
  rd_kafka_error_t *e = l->cnt ? rd_kafka_seek_partitions(loop->consumer, l, 10000) : NULL;
  if (e) {
    cqrs_log_error(loop->log, "cannot read a batch's rest again", "projection", loop->proj->name, "error",
                   rd_kafka_error_string(e), NULL);
    rd_kafka_error_destroy(e);
  }
  rd_kafka_topic_partition_list_destroy(l);
  cqrs_map_clear(loop->entered);
}

/* The handoff (cqrs/read_model.h): puts every assigned partition back at
 * the lower of its committed offset and the swap's position in loop->back,
 * remembering the committed one as its floor (what is applied again up to it
 * is not committed again: a restart meanwhile goes back again). rest[0..n)
 * is the batch from where it stopped, read again should this fail. */
static void go_back(cqrs_apply_loop_t *loop, rd_kafka_message_t **rest, size_t n) {
  rd_kafka_topic_partition_list_t *parts = NULL;
  if (rd_kafka_assignment(loop->consumer, &parts) || !parts) {
    read_rest_again(loop, rest, n);
    return;
  }
  loop->target->settle(loop);
  rd_kafka_resp_err_t e = rd_kafka_committed(loop->consumer, parts, 10000);
  for (int i = 0; !e && i < parts->cnt; i++) {
    int32_t pt = parts->elems[i].partition;
    int64_t committed = parts->elems[i].offset, to = committed >= 0 ? committed : RD_KAFKA_OFFSET_BEGINNING;
    if (pt < 0 || pt >= loop->n_positions) continue;
    if (loop->back[pt] != INT64_MAX && (loop->back[pt] < 0 || loop->back[pt] < to))
      to = loop->back[pt] < 0 ? RD_KAFKA_OFFSET_BEGINNING : loop->back[pt];
    if (committed > loop->floor[pt]) loop->floor[pt] = committed;
    parts->elems[i].offset = to;
  }
  rd_kafka_error_t *se = e ? NULL : rd_kafka_seek_partitions(loop->consumer, parts, 10000);
  if (e || se) {
    cqrs_log_warn(loop->log, "cannot go back to a swap's positions yet; trying again", "projection",
                  loop->proj->name, "error", e ? rd_kafka_err2str(e) : rd_kafka_error_string(se), NULL);
    read_rest_again(loop, rest, n);
  }
  if (se) rd_kafka_error_destroy(se);
  rd_kafka_topic_partition_list_destroy(parts);
  for (int p = 0; p < loop->n_positions; p++) loop->back[p] = INT64_MAX;
}

/* How long each written event took from its append (the record's timestamp:
 * when command-svc produced it, inside its transaction) to its document
 * acknowledged by the store: the projector's share of command-to-visible. */
static void observe_delays(cqrs_apply_loop_t *loop, const pending_t *p, size_t np) {
  int64_t now = cqrs_time_now_ms();
  for (size_t i = 0; i < np; i++) {
    int64_t appended = rd_kafka_message_timestamp(p->sources[i], NULL);
    if (appended > 0 && now >= appended)
      cqrs_metrics_observe(loop->reported, "projector_event_delay_seconds", loop->labels,
                           (double)(now - appended) / 1000.0);
  }
}

/* Applies and commits msgs[0..n). Returns true when it stopped before the
 * end to read the rest again later (prepare's *again, why in again_why). */
static bool run_batch(cqrs_apply_loop_t *loop, rd_kafka_message_t **msgs, size_t n, pending_t *p,
                      char again_why[256]) {
  size_t upto, skipped;
  bool again, back;
  /* From the deletion check to the store's acknowledgement (tenants.h) */
  cqrs_tenants_enter(loop->tenants);
  uint64_t poisoned = atomic_load(&loop->poisoned);
  size_t np = prepare(loop, msgs, n, p, &upto, &skipped, &again, &back, again_why);
  int64_t t0 = cqrs_time_monotonic_ms();
  cqrs_write_outcome_t o = write_batch(loop, p, np);
  if (np && o == CQRS_WRITE_DONE && loop->reported)
    cqrs_metrics_observe(loop->reported, "projector_write_seconds", loop->labels,
                         (double)(cqrs_time_monotonic_ms() - t0) / 1000.0);
  cqrs_tenants_leave(loop->tenants);
  for (size_t i = 0; i < np; i++) cqrs_write_cleanup(&p->writes[i]);
  if (back && (o == CQRS_WRITE_STOPPING || o == CQRS_WRITE_HALTED)) /* not gone back: look again next time */
    cqrs_map_clear(loop->entered);
  if (o == CQRS_WRITE_STOPPING) return false; /* the uncommitted batch is read again next time */
  if (o == CQRS_WRITE_HALTED) return false;   /* halted at a poison write: keep the whole batch for later */
  cqrs_dead_letters_flush(loop->dead_letters, 10000); /* durable before we move past them */
  commit(loop, msgs, upto);
  if (atomic_load(&loop->poisoned) != poisoned) loop->target->settle(loop); /* not dead-lettered twice */
  atomic_fetch_add(&loop->applied, (uint64_t)np);
  if (loop->reported) {
    cqrs_metrics_add(loop->reported, "events_applied_total", loop->labels, (double)np);
    count_by_tenant(loop, p, np);
    observe_delays(loop, p, np);
  }
  if (skipped) cqrs_metrics_add(loop->metrics, "events_skipped_total", loop->skipped_labels, (double)skipped);
  if (back) go_back(loop, msgs + upto, n - upto); /* the rest of the batch is read again from there */
  return again;
}

/* Puts the assigned partitions back at their committed offsets (rebuild: at
 * its positions), pausing them when pause: what was fetched and not
 * committed is dropped and read again (a held loop: once it is released). */
static void rewind_to_committed(cqrs_apply_loop_t *loop, bool pause) {
  rd_kafka_topic_partition_list_t *parts = NULL;
  if (rd_kafka_assignment(loop->consumer, &parts) || !parts) return;
  loop->target->settle(loop);
  loop->target->rewind_to(loop, parts);
  if (pause) rd_kafka_pause_partitions(loop->consumer, parts);
  rd_kafka_error_t *e = rd_kafka_seek_partitions(loop->consumer, parts, 10000);
  if (e) {
    cqrs_log_warn(loop->log, "cannot rewind a projection", "projection", loop->proj->name, "error",
                  rd_kafka_error_string(e), NULL);
    rd_kafka_error_destroy(e);
  }
  rd_kafka_topic_partition_list_destroy(parts);
}

/* One turn of a held (paused or halted) loop: keeps the group membership;
 * a record that arrives anyway (after a rebalance) is put back. */
static void hold_turn(cqrs_apply_loop_t *loop, bool *held) {
  if (!*held) {
    rewind_to_committed(loop, true);
    *held = true;
    atomic_store(&loop->held, true);
  }
  rd_kafka_message_t *m = rd_kafka_consumer_poll(loop->consumer, 200);
  if (m) {
    if (!m->err) rewind_to_committed(loop, true);
    rd_kafka_message_destroy(m);
  }
}

static void release_held(cqrs_apply_loop_t *loop) {
  rd_kafka_topic_partition_list_t *parts = NULL;
  if (rd_kafka_assignment(loop->consumer, &parts) || !parts) return;
  rd_kafka_resume_partitions(loop->consumer, parts);
  rd_kafka_topic_partition_list_destroy(parts);
}

static void *loop_main(void *arg) {
  cqrs_apply_loop_t *loop = arg;
  rd_kafka_message_t **msgs = cqrs_xcalloc(BATCH_MAX, sizeof *msgs);
  pending_t p;
  pending_init(&p);
  int64_t next_lag = 0, next_progress = 0;
  bool held = false;
  int again_ms = 0; /* the backoff while a reading projection cannot read */
  char again_why[256];
  while (!cqrs_worker_stopping(&loop->worker)) {
    size_t n = 0;
    if (atomic_load(&loop->halted) || atomic_load(&loop->paused)) {
      hold_turn(loop, &held);
    } else {
      if (held) release_held(loop);
      held = false;
      atomic_store(&loop->held, false);
      n = cqrs_kafka_poll_batch(loop->consumer, msgs, BATCH_MAX, 200, loop->log);
    }
    bool again = n && run_batch(loop, msgs, n, &p, again_why);
    for (size_t i = 0; i < n; i++) rd_kafka_message_destroy(msgs[i]);
    if (again) { /* what it could not apply yet is read again after a backoff, outside the gate */
      again_ms = again_ms ? (again_ms < 5000 ? 2 * again_ms : 5000) : 100;
      char ms[16];
      snprintf(ms, sizeof ms, "%d", again_ms);
      cqrs_log(loop->log, again_ms >= 5000 ? CQRS_LOG_WARN : CQRS_LOG_DEBUG,
               "cannot read what the projection needs yet; later", "projection", loop->proj->name, "reason",
               again_why, "retryInMs", ms, NULL);
      rewind_to_committed(loop, false);
      nap(loop, again_ms);
    } else if (n) {
      again_ms = 0;
    }
    if (cqrs_time_monotonic_ms() >= next_lag) {
      update_lag(loop);
      next_lag = cqrs_time_monotonic_ms() + 250;
    }
    if (cqrs_time_monotonic_ms() >= next_progress) {
      loop->target->publish(loop);
      next_progress = cqrs_time_monotonic_ms() + CQRS_PROGRESS_PERIOD_MS;
    }
  }
  loop->target->settle(loop); /* before the consumer closes, whatever KAFKA_* says about committing */
  free(msgs);
  pending_cleanup(&p);
  return NULL;
}

cqrs_apply_loop_t *cqrs_apply_loop_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_metrics_t *metrics,
                                       mongoc_client_pool_t *pool, cqrs_tenants_t *tenants,
                                       const cqrs_projection_t *projection, const cqrs_apply_opts_t *opts,
                                       cqrs_error_t *err) {
  cqrs_apply_loop_t *loop = cqrs_xcalloc(1, sizeof *loop);
  loop->cfg = cfg;
  loop->log = log;
  loop->metrics = metrics;
  loop->pool = pool;
  loop->tenants = tenants;
  loop->proj = projection;
  loop->opts = *opts;
  loop->target = opts->target ? &cqrs_apply_rebuild : &cqrs_apply_live;
  loop->reported = loop->target->reports ? metrics : NULL;
  atomic_init(&loop->skip_offset, -1);
  loop->entered = cqrs_map_new(free);
  pthread_mutex_init(&loop->error_mu, NULL);
  loop->t_events = cqrs_config_topic(cfg, CQRS_TOPIC_EVENTS);
  snprintf(loop->labels, sizeof loop->labels, "projection=\"%s\"", projection->name);
  snprintf(loop->skipped_labels, sizeof loop->skipped_labels, "%s,reason=\"tenant_deleted\"", loop->labels);
  char group[CQRS_GROUP_MAX], commit_every[16];
  cqrs_config_projector_group(projection->name, loop->target->rebuild, group, sizeof group);
  snprintf(commit_every, sizeof commit_every, "%d", CQRS_APPLY_COMMIT_INTERVAL_MS);
  if (!(loop->dead_letters = cqrs_dead_letters_new(cfg, log, metrics, projection->name, loop->t_events, err)) ||
      !(loop->consumer = cqrs_kafka_consumer_new(cfg, log, group, NULL, NULL, err, "auto.offset.reset", "earliest",
                                                 /* a dead member's partitions move after 10 s, not 45 */
                                                 "session.timeout.ms", "10000",
                                                 /* target->commit stores, the consumer commits (and a
                                                  * rebuild, which stores nothing, commits nothing) */
                                                 "enable.auto.commit", "true", "enable.auto.offset.store", "false",
                                                 "auto.commit.interval.ms", commit_every, NULL)))
    goto fail;
  rd_kafka_poll_set_consumer(loop->consumer);
  /* Subscribing to a topic that does not exist yet would wait for the next
   * metadata refresh (minutes): make sure it is there. */
  int partitions;
  if (!cqrs_kafka_topics_ensure(loop->consumer, cfg, 15000, &partitions, err) ) goto fail;
  loop->n_positions = partitions;
  loop->positions = cqrs_xcalloc(partitions > 0 ? (size_t)partitions : 1, sizeof *loop->positions);
  loop->floor = cqrs_xcalloc(partitions > 0 ? (size_t)partitions : 1, sizeof *loop->floor);
  loop->back = cqrs_xcalloc(partitions > 0 ? (size_t)partitions : 1, sizeof *loop->back);
  for (int i = 0; i < partitions; i++) loop->back[i] = INT64_MAX;
  /* a rebuild resumed from a checkpoint is there from the start: its driver
   * never reports (nor records as its checkpoint) the beginning meanwhile */
  for (int i = 0; i < partitions; i++)
    atomic_init(&loop->positions[i], opts->start_offsets && i < opts->n_start_offsets && opts->start_offsets[i] >= 0
                                         ? opts->start_offsets[i]
                                         : RD_KAFKA_OFFSET_BEGINNING);
  return loop;
fail:
  cqrs_apply_loop_destroy(loop);
  return NULL;
}

bool cqrs_apply_loop_start(cqrs_apply_loop_t *loop, cqrs_error_t *err) {
  return loop->target->join(loop, err) && cqrs_worker_start(&loop->worker, "apply-loop", loop_main, loop, err);
}

void cqrs_apply_loop_stop(cqrs_apply_loop_t *loop) {
  if (loop && cqrs_worker_stop(&loop->worker)) rd_kafka_consumer_close(loop->consumer);
}

void cqrs_apply_loop_progress(cqrs_apply_loop_t *loop, cqrs_apply_progress_t *out) {
  out->applied = atomic_load(&loop->applied);
  out->poisoned = atomic_load(&loop->poisoned);
  out->lag = atomic_load(&loop->lag);
  out->lag_known = atomic_load(&loop->lag_known);
  out->halted = atomic_load(&loop->halted);
  out->paused = atomic_load(&loop->paused) && atomic_load(&loop->held);
  out->halt_partition = atomic_load(&loop->halt_partition);
  out->halt_offset = atomic_load(&loop->halt_offset);
  pthread_mutex_lock(&loop->error_mu);
  snprintf(out->last_error, sizeof out->last_error, "%s", loop->last_error);
  pthread_mutex_unlock(&loop->error_mu);
}

void cqrs_apply_loop_pause(cqrs_apply_loop_t *loop, bool paused) { atomic_store(&loop->paused, paused); }

bool cqrs_apply_loop_release(cqrs_apply_loop_t *loop) {
  if (!atomic_load(&loop->halted)) return false;
  atomic_store(&loop->skip_partition, atomic_load(&loop->halt_partition));
  atomic_store(&loop->skip_offset, atomic_load(&loop->halt_offset));
  cqrs_log_info(loop->log, "a halted projection is released past its poison event", "projection", loop->proj->name,
                NULL);
  atomic_store(&loop->halted, false);
  return true;
}

int cqrs_apply_loop_positions(cqrs_apply_loop_t *loop, int64_t *out, int n) {
  for (int i = 0; i < n && i < loop->n_positions; i++) out[i] = atomic_load(&loop->positions[i]);
  return loop->n_positions;
}

const cqrs_projection_t *cqrs_apply_loop_projection(const cqrs_apply_loop_t *loop) { return loop->proj; }

bool cqrs_apply_loop_ready(cqrs_apply_loop_t *loop, cqrs_error_t *err) {
  if (atomic_load(&loop->halted)) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "projection %s halted at a poison event (see the log)",
                   loop->proj->name);
    return false;
  }
  if (cqrs_kafka_ping(loop->consumer, 2000)) return true;
  cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "Kafka does not answer");
  return false;
}

void cqrs_apply_loop_destroy(cqrs_apply_loop_t *loop) {
  if (!loop) return;
  cqrs_apply_loop_stop(loop);
  if (loop->consumer) rd_kafka_destroy(loop->consumer);
  cqrs_dead_letters_destroy(loop->dead_letters);
  pthread_mutex_destroy(&loop->error_mu);
  free(loop->positions);
  free(loop->floor);
  free(loop->back);
  cqrs_map_destroy(loop->entered);
  free(loop->t_events);
  free(loop);
}

void cqrs_apply_loop_describe_metrics(cqrs_metrics_t *metrics) {
  cqrs_metrics_describe(metrics, "events_applied_total", CQRS_METRIC_COUNTER, "Events written to a read model.");
  cqrs_metrics_describe(metrics, "projector_write_seconds", CQRS_METRIC_HISTOGRAM,
                        "Time to write one batch's documents to the store (all its bulk commands), by projection.");
  cqrs_metrics_describe(metrics, "projector_event_delay_seconds", CQRS_METRIC_HISTOGRAM,
                        "From an event's append (its record's timestamp) to its document written, by projection.");
  cqrs_metrics_describe(metrics, "dlq_events_total", CQRS_METRIC_COUNTER, "Events sent to the dead letter topic.");
  cqrs_metrics_describe(metrics, "projection_lag_events", CQRS_METRIC_GAUGE, "Events behind, per partition.");
  cqrs_metrics_describe(metrics, "store_documents_written_total", CQRS_METRIC_COUNTER,
                        "Document writes sent to the store (after folding each batch's events per document).");
  cqrs_metrics_describe(metrics, "store_write_retries_total", CQRS_METRIC_COUNTER,
                        "Write commands retried because the store did not answer.");
  cqrs_metrics_describe(metrics, "events_applied_by_tenant_total", CQRS_METRIC_COUNTER,
                        "Events written to a read model, per tenant (the first 50 tenants, then _other).");
  cqrs_metrics_describe(metrics, "events_skipped_total", CQRS_METRIC_COUNTER,
                        "Events not written, by reason (tenant_deleted: their tenant is deleted).");
}
