/* Rebuild driver: a rebuild-mode apply loop, progress, alias swaps in each
 * tenant's database, cleanup. */
#include "rebuild.h"
#include "apply_loop.h"
#include "tenants.h"

#include "cqrs/alloc.h"
#include "cqrs/kafka.h"
#include "cqrs/mongo.h"
#include "cqrs/read_model.h"
#include "cqrs/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_EVERY_MS 5000
#define CONTROL_WAIT_MS 30000 /* reading the control topic to its end at start */

static void report(const cqrs_log_t *log, const char *name, const cqrs_apply_progress_t *p, double rate, bool tty,
                   bool to_log) {
  char eta[32] = "unknown";
  if (p->lag_known && rate > 0) snprintf(eta, sizeof eta, "%.0f s", (double)p->lag / rate);
  if (tty)
    fprintf(stderr, "\rrebuild %s: %llu events applied, %.0f events/s, %lld behind, about %s left   ", name,
            (unsigned long long)p->applied, rate, (long long)(p->lag_known ? p->lag : -1), eta);
  if (to_log) {
    char applied[24], r[24], lag[24];
    snprintf(applied, sizeof applied, "%llu", (unsigned long long)p->applied);
    snprintf(r, sizeof r, "%.0f", rate);
    snprintf(lag, sizeof lag, "%lld", (long long)(p->lag_known ? p->lag : -1));
    cqrs_log_info(log, "rebuild progress", "projection", name, "eventsApplied", applied, "eventsPerSecond", r,
                  "eventsBehind", lag, "timeLeft", eta, NULL);
  }
}

bool cqrs_rebuild_drop_collection(mongoc_client_pool_t *pool, const char *db, const char *name, cqrs_error_t *err) {
  mongoc_client_t *client = mongoc_client_pool_pop(pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, name);
  bson_error_t e;
  bool ok = mongoc_collection_drop(coll, &e) || strstr(e.message, "not found") != NULL;
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "dropping %s: %s", name, e.message);
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(pool, client);
  return ok;
}

bool cqrs_rebuild_swap_all(cqrs_tenants_t *tenants, mongoc_client_pool_t *pool, const cqrs_log_t *log,
                           const cqrs_projection_t *projection, const char *target, cqrs_apply_loop_t *loop,
                           cqrs_rebuild_swap_t **swaps, size_t *n, cqrs_error_t *err) {
  /* the handoff (cqrs/read_model.h): target holds every event before these,
   * read before any swap (they only grow) */
  int64_t positions[CQRS_REBUILD_PARTITIONS_MAX];
  int n_positions = cqrs_apply_loop_positions(loop, positions, CQRS_REBUILD_PARTITIONS_MAX);
  if (n_positions > CQRS_REBUILD_PARTITIONS_MAX) {
    cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "events has %d partitions; a rebuild swaps at most %d", n_positions,
                   CQRS_REBUILD_PARTITIONS_MAX);
    *swaps = NULL;
    *n = 0;
    return false;
  }
  bool ok = true;
  cqrs_tenants_enter(tenants); /* no drop between the deletion check and the swap */
  char(*met)[CQRS_TENANT_MAX + 1] = cqrs_tenants_met(tenants, target, n);
  *swaps = cqrs_xcalloc(*n ? *n : 1, sizeof **swaps);
  for (size_t i = 0; ok && i < *n; i++) {
    cqrs_rebuild_swap_t *s = &(*swaps)[i];
    snprintf(s->tenant, sizeof s->tenant, "%s", met[i]);
    if (cqrs_tenants_deleted(tenants, s->tenant)) continue; /* its database is gone, and stays gone */
    char db[CQRS_TENANT_DB_MAX];
    cqrs_tenants_db(tenants, s->tenant, db);
    cqrs_tenants_resolve(tenants, s->tenant, projection->name, s->previous);
    mongoc_client_t *client = mongoc_client_pool_pop(pool);
    ok = s->swapped = cqrs_read_models_swap(client, db, projection->name, target, positions, n_positions, err);
    mongoc_client_pool_push(pool, client);
    if (ok)
      cqrs_log_info(log, "rebuild caught up; queries now read the new collection", "projection", projection->name,
                    "tenant", s->tenant, "database", db, "collection", target, "previous", s->previous, NULL);
  }
  cqrs_tenants_leave(tenants);
  free(met);
  return ok;
}

void cqrs_rebuild_drop_unused(cqrs_tenants_t *tenants, mongoc_client_pool_t *pool, const cqrs_log_t *log,
                        const char *target, const cqrs_rebuild_swap_t *swaps, size_t n_swaps) {
  size_t n;
  cqrs_tenants_enter(tenants);
  char(*met)[CQRS_TENANT_MAX + 1] = cqrs_tenants_met(tenants, target, &n);
  for (size_t i = 0; i < n; i++) {
    const cqrs_rebuild_swap_t *s = NULL;
    for (size_t j = 0; j < n_swaps && !s; j++)
      if (strcmp(swaps[j].tenant, met[i]) == 0) s = &swaps[j];
    const char *unused = !s ? target : s->swapped && strcmp(s->previous, target) != 0 ? s->previous : NULL;
    if (!unused || cqrs_tenants_deleted(tenants, met[i])) continue;
    char db[CQRS_TENANT_DB_MAX];
    cqrs_error_t err = {0};
    cqrs_tenants_db(tenants, met[i], db);
    if (!cqrs_rebuild_drop_collection(pool, db, unused, &err))
      cqrs_log_warn(log, "an unused collection could not be dropped; drop it by hand", "database", db, "collection",
                    unused, "error", err.message, NULL);
  }
  cqrs_tenants_leave(tenants);
  free(met);
}

/* ---- after the swaps: the live projector leaves the previous collections ---- */

#define TAIL_TICK_MS 100

typedef struct {
  rd_kafka_t *rk; /* a consumer of the live group that never joins it: committed offsets, and a probe */
  char *topic;
  int n;
  cqrs_worker_t *worker;
  int64_t deadline;
} tail_t;

static bool tail_going(tail_t *t) {
  return !(t->worker && cqrs_worker_stopping(t->worker)) && cqrs_time_monotonic_ms() < t->deadline;
}

static void tail_sleep(tail_t *t, int64_t until) {
  while (tail_going(t) && cqrs_time_monotonic_ms() < until) usleep(TAIL_TICK_MS * 1000);
}

/* The live group's committed offsets into out[0..n) (-1: none). */
static bool committed(tail_t *t, int64_t *out) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(t->n);
  for (int p = 0; p < t->n; p++) rd_kafka_topic_partition_list_add(l, t->topic, p);
  bool ok = rd_kafka_committed(t->rk, l, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR;
  for (int p = 0; ok && p < t->n; p++) out[p] = l->elems[p].err ? -1 : l->elems[p].offset;
  rd_kafka_topic_partition_list_destroy(l);
  return ok;
}

/* True when the live group has no member: nobody writes a previous
 * collection (the live projector is not running). False when unknown. */
static bool group_empty(tail_t *t, const char *group) {
  const struct rd_kafka_group_list *gl = NULL;
  if (rd_kafka_list_groups(t->rk, group, &gl, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR || !gl) return false;
  bool empty = true;
  for (int i = 0; i < gl->group_cnt; i++)
    if (gl->groups[i].err || gl->groups[i].member_cnt > 0) empty = false;
  rd_kafka_group_list_destroy(gl);
  return empty;
}

void cqrs_rebuild_nothing_past(rd_kafka_t *probe, const char *topic, int n, const bool *want, const int64_t *from,
                               bool *empty) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
  int asked = 0;
  for (int p = 0; p < n; p++) {
    empty[p] = false;
    if (want && !want[p]) continue;
    rd_kafka_topic_partition_list_add(l, topic, p)->offset = from[p] >= 0 ? from[p] : RD_KAFKA_OFFSET_BEGINNING;
    empty[p] = true;
    asked++;
  }
  if (asked) rd_kafka_assign(probe, l);
  rd_kafka_topic_partition_list_destroy(l);
  for (int64_t end = cqrs_time_monotonic_ms() + 5000; asked > 0 && cqrs_time_monotonic_ms() < end;) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(probe, TAIL_TICK_MS);
    if (!m) continue;
    if (m->partition >= 0 && m->partition < n && empty[m->partition] && (!want || want[m->partition])) {
      if (!m->err) empty[m->partition] = false; /* a record past it */
      if (!m->err || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) asked--;
    }
    rd_kafka_message_destroy(m);
  }
  if (asked > 0)
    for (int p = 0; p < n; p++) empty[p] = false; /* no answer: not known to be empty */
  rd_kafka_assign(probe, NULL);
}

/* Waits until every partition is done with the previous collections (see
 * rebuild.h) and the rebuild has applied up to where the live loop had
 * committed by then. */
static bool await_live_left(tail_t *t, const char *group, cqrs_apply_loop_t *loop, int64_t swapped_ms) {
  int64_t before[CQRS_REBUILD_PARTITIONS_MAX], now[CQRS_REBUILD_PARTITIONS_MAX], upto[CQRS_REBUILD_PARTITIONS_MAX],
      pos[CQRS_REBUILD_PARTITIONS_MAX];
  bool done[CQRS_REBUILD_PARTITIONS_MAX] = {0}, want[CQRS_REBUILD_PARTITIONS_MAX], empty[CQRS_REBUILD_PARTITIONS_MAX];
  /* past the live loops' alias TTL: a batch begun from here writes the new
   * collection; and past one more commit of the live loops' offsets, so that
   * before[] holds every batch done by then, and a move past it is the batch
   * that was in flight (or a later one), not one that ended before */
  tail_sleep(t, swapped_ms + CQRS_ALIAS_TTL_MS + TAIL_TICK_MS + CQRS_APPLY_COMMIT_INTERVAL_MS + TAIL_TICK_MS);
  while (tail_going(t) && !committed(t, before)) usleep(TAIL_TICK_MS * 1000);
  for (int left = t->n; left > 0 && tail_going(t);) {
    if (!committed(t, now)) {
      usleep(TAIL_TICK_MS * 1000);
      continue;
    }
    bool idle = group_empty(t, group); /* what it committed is all it wrote */
    for (int p = 0; p < t->n; p++) want[p] = !done[p] && now[p] == before[p] && !idle;
    cqrs_rebuild_nothing_past(t->rk, t->topic, t->n, want, now, empty);
    for (int p = 0; p < t->n; p++) {
      if (done[p] || !(idle || now[p] != before[p] || empty[p])) continue;
      done[p] = true;
      upto[p] = now[p];
      left--;
    }
    if (left > 0) usleep(TAIL_TICK_MS * 1000);
  }
  for (bool behind = true; behind && tail_going(t);) {
    cqrs_apply_loop_positions(loop, pos, t->n);
    behind = false;
    for (int p = 0; p < t->n; p++) behind |= !done[p] || (upto[p] > 0 && pos[p] < upto[p]);
    if (behind) usleep(TAIL_TICK_MS * 1000);
  }
  return tail_going(t);
}

bool cqrs_rebuild_finish_swaps(const cqrs_config_t *cfg, const cqrs_log_t *log, const cqrs_projection_t *projection,
                               cqrs_apply_loop_t *loop, cqrs_tenants_t *tenants, mongoc_client_pool_t *pool,
                               const char *target, const cqrs_rebuild_swap_t *swaps, size_t n_swaps,
                               int64_t swapped_ms, cqrs_worker_t *worker) {
  cqrs_error_t err = {0};
  char group[160];
  cqrs_config_projector_group(projection->name, false, group, sizeof group);
  char *full_group = cqrs_config_topic(cfg, group); /* the prefix consumer groups get too */
  tail_t t = {.topic = cqrs_config_topic(cfg, CQRS_TOPIC_EVENTS), .worker = worker,
              .deadline = swapped_ms + CQRS_REBUILD_TAIL_MAX_MS};
  bool ok = n_swaps > 0 &&
            (t.rk = cqrs_kafka_consumer_new(cfg, log, group, NULL, NULL, &err, "enable.partition.eof", "true", NULL)) &&
            (t.n = cqrs_kafka_partition_count(t.rk, t.topic, 10000, &err)) > 0 && t.n <= CQRS_REBUILD_PARTITIONS_MAX &&
            await_live_left(&t, full_group, loop, swapped_ms);
  if (n_swaps > 0 && !ok && !(worker && cqrs_worker_stopping(worker)))
    cqrs_log_warn(log, "the live projector did not show it left the previous collection; readers follow the swap anyway",
                  "projection", projection->name, "error", err.message[0] ? err.message : "no commit past the swap",
                  NULL);
  /* The rebuild stops writing at once: while it and the live loop both write
   * the new collection, FerretDB v1 may let an older version overwrite a
   * newer one (its guarded updates are not atomic; RELIABILITY.md). */
  cqrs_apply_loop_stop(loop);
  if (t.rk) {
    rd_kafka_consumer_close(t.rk);
    rd_kafka_destroy(t.rk);
  }
  free(t.topic);
  free(full_group);
  if (ok) {
    char waited[24];
    snprintf(waited, sizeof waited, "%lld", (long long)(cqrs_time_monotonic_ms() - swapped_ms));
    cqrs_log_info(log, "the live projector left the previous collection and the new one has what it wrote there: "
                  "readers follow the swap", "projection", projection->name, "msSinceSwap", waited, NULL);
  }
  for (size_t i = 0; i < n_swaps; i++) {
    if (!swaps[i].swapped) continue;
    char db[CQRS_TENANT_DB_MAX];
    cqrs_tenants_db(tenants, swaps[i].tenant, db);
    mongoc_client_t *client = mongoc_client_pool_pop(pool);
    cqrs_error_t rerr = {0};
    if (!cqrs_read_models_release_readers(client, db, projection->name, target, &rerr))
      cqrs_log_warn(log, "readers not released; they follow the swap after the hold", "database", db, "error",
                    rerr.message, NULL);
    mongoc_client_pool_push(pool, client);
  }
  /* the readers re-read a held alias every CQRS_ALIAS_TTL_MS: then none reads the previous collection */
  t.deadline = cqrs_time_monotonic_ms() + CQRS_ALIAS_TTL_MS + 500;
  tail_sleep(&t, t.deadline);
  return ok;
}

int cqrs_rebuild_run(const cqrs_config_t *cfg, const cqrs_log_t *log, const cqrs_projection_t *projection,
                     const char *tenant) {
  cqrs_error_t err = {0};
  int rc = 1;
  cqrs_apply_loop_t *loop = NULL;
  cqrs_control_reader_t *reader = NULL;
  cqrs_tenants_t *tenants = NULL;
  cqrs_rebuild_swap_t *swaps = NULL;
  size_t n_swaps = 0;
  cqrs_metrics_t *metrics = cqrs_metrics_new();
  cqrs_registry_t *reg = cqrs_registry_new();
  mongoc_client_pool_t *pool = cqrs_mongo_pool_new(cfg, "projector-svc-rebuild", &err);
  if (!pool) goto done;
  /* aliases read afresh each time (TTL 0): the swap must see the current one */
  tenants = cqrs_tenants_new(cfg, log, pool, reg, 0);
  /* a tenant deleted before or during the rebuild is not brought back */
  if (!(reader = cqrs_tenants_follow(tenants, CONTROL_WAIT_MS, &err))) goto done;

  char target[CQRS_COLLECTION_NAME_MAX], stamp[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
  snprintf(target, sizeof target, "%s__%s", projection->name, stamp);
  cqrs_log_info(log, "rebuild starting", "projection", projection->name, "into", target, "tenant",
                tenant ? tenant : "every tenant met", NULL);
  if (tenant) {
    /* the tenant's collection exists (with its indexes) even when the log
     * holds no event of it: a rebuild of nothing is an empty read model */
    cqrs_tenants_enter(tenants);
    bool deleted = cqrs_tenants_deleted(tenants, tenant);
    bool prepared = !deleted && cqrs_tenants_prepare(tenants, tenant, target, projection, &err);
    cqrs_tenants_leave(tenants);
    if (deleted) cqrs_error_set(&err, CQRS_ERR_INVALID, "tenant", "tenant %s is deleted", tenant);
    if (!prepared) goto done;
  }

  cqrs_apply_opts_t opts = {.target = target, .tenant = tenant};
  if (!(loop = cqrs_apply_loop_new(cfg, log, metrics, pool, tenants, projection, &opts, &err)) ||
      !cqrs_apply_loop_start(loop, &err))
    goto done;

  bool tty = isatty(STDERR_FILENO);
  cqrs_apply_progress_t p;
  int64_t t0 = cqrs_time_monotonic_ms(), last_log = t0, last_t = t0;
  uint64_t last_applied = 0;
  double rate = 0;
  for (;;) {
    usleep(250 * 1000); /* progress ticks; the loop itself runs on its own thread */
    cqrs_apply_loop_progress(loop, &p);
    int64_t t = cqrs_time_monotonic_ms();
    if (t - last_t >= 1000) {
      rate = (double)(p.applied - last_applied) * 1000.0 / (double)(t - last_t);
      last_applied = p.applied;
      last_t = t;
      bool to_log = t - last_log >= LOG_EVERY_MS;
      if (to_log) last_log = t;
      report(log, projection->name, &p, rate, tty, to_log);
    }
    if (p.lag_known && p.lag == 0) break;
  }
  int64_t swapped_ms = cqrs_time_monotonic_ms();
  if (!cqrs_rebuild_swap_all(tenants, pool, log, projection, target, loop, &swaps, &n_swaps, &err)) goto done;
  if (n_swaps == 0)
    cqrs_log_info(log, "the log holds no event of this read model: nothing to swap", "projection", projection->name,
                  NULL);
  cqrs_rebuild_finish_swaps(cfg, log, projection, loop, tenants, pool, target, swaps, n_swaps, swapped_ms, NULL);
  cqrs_apply_loop_stop(loop);
  cqrs_apply_loop_progress(loop, &p);
  report(log, projection->name, &p, (double)p.applied * 1000.0 / (double)(cqrs_time_monotonic_ms() - t0), tty, true);
  if (tty) fputc('\n', stderr);
  cqrs_rebuild_drop_unused(tenants, pool, log, target, swaps, n_swaps);
  rc = 0;
done:
  if (rc) cqrs_log_error(log, "rebuild failed", "projection", projection->name, "error", err.message, NULL);
  cqrs_apply_loop_destroy(loop);
  cqrs_control_reader_stop(reader);
  cqrs_tenants_destroy(tenants);
  if (pool) mongoc_client_pool_destroy(pool);
  cqrs_registry_destroy(reg);
  cqrs_metrics_destroy(metrics);
  free(swaps);
  return rc;
}
