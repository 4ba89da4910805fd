/* The waiter hub: deferred single reads, one thread polling the store for all
 * of them every tick (waitset.c decides; this file does the I/O). */
#include "waiters.h"

#include "version_probe.h"
#include "waitset.h"

#include "cqrs/alloc.h"
#include "cqrs/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Values per find: a $in of 1,000 strings is a small command for any store. */
#define BATCH_MAX 1000

/* A waiter handed over by a route handler, not yet in the hub's waitset. */
typedef struct {
  const cqrs_single_read_t *read;
  char tenant[CQRS_TENANT_MAX + 1];
  char *value;
  int64_t min_version, since_ms, deadline_ms;
  cqrs_http_deferred_t *d;
} pending_t;

struct cqrs_waiters {
  cqrs_waiters_config_t cfg;
  pthread_t thread;
  bool started;
  pthread_mutex_t lock;
  pthread_cond_t cond; /* CLOCK_MONOTONIC: a new waiter on an idle hub, or stop */
  /* Under lock: */
  bool stopping;
  pending_t *inbox;
  size_t n_inbox, cap_inbox;
  size_t n_held; /* waiters in ws, as of the last round */
  /* The hub thread's own (the stopping thread's once joined): */
  cqrs_waitset_t *ws;
  cqrs_version_probe_t *probe; /* NULL without FERRETDB_PG_URI */
  bool store_ok; /* the last find worked: log only changes, not every tick */
};

static const char *const STALE_HEADERS[] = {"X-Stale", "true", NULL};

/* read_waits_total's outcome label for each final outcome. */
static const char *const OUTCOME_LABELS[] = {
    [CQRS_READ_FRESH] = "outcome=\"fresh\"",    [CQRS_READ_STALE] = "outcome=\"stale\"",
    [CQRS_READ_ABSENT] = "outcome=\"stale\"",   [CQRS_READ_NO_STORE] = "outcome=\"error\"",
    [CQRS_READ_STOPPING] = "outcome=\"error\"",
};

static void set_gauge(cqrs_waiters_t *w) {
  cqrs_metrics_set(w->cfg.metrics, "read_waiters", NULL, (double)(w->n_inbox + w->n_held));
}

/* Sends a waiter's answer. When the HTTP loop's own timer answered first
 * (the hub was held up by a hung store), that 503 is what the client got. */
static void settle_cb(void *token, cqrs_read_outcome_t o, const cqrs_read_answer_t *a, void *ctx) {
  cqrs_waiters_t *w = ctx;
  bool sent = cqrs_http_deferred_complete_headers(token, a->status, a->stale ? STALE_HEADERS : NULL, a->body, a->len);
  cqrs_metrics_add(w->cfg.metrics, "read_waits_total", sent ? OUTCOME_LABELS[o] : OUTCOME_LABELS[CQRS_READ_NO_STORE],
                   1);
}

/* Logs when the store stops or starts answering the hub, not on every tick. */
static void note_store(cqrs_waiters_t *w, bool ok, const bson_error_t *error) {
  if (ok == w->store_ok) return;
  w->store_ok = ok;
  if (ok)
    cqrs_log_info(w->cfg.log, "the read store answers waiting reads again", NULL);
  else
    cqrs_log_error(w->cfg.log, "the read store did not answer; waiting reads wait on until their deadline", "error",
                   error->message, NULL);
}

/* One find for batch b; offers what it returns. False when the store failed. */
static bool find_batch(cqrs_waiters_t *w, mongoc_client_t *client, cqrs_wait_batch_t *b, bson_error_t *error) {
  cqrs_tenant_place_t at;
  cqrs_error_t err = {0};
  if (!cqrs_tenant_store_locate(w->cfg.store, client, cqrs_wait_batch_tenant(b), cqrs_wait_batch_read(b)->read_model,
                                &at, &err)) {
    bson_set_error(error, 0, 0, "%s", err.message);
    return false;
  }
  if (w->probe) {
    cqrs_probe_result_t r = cqrs_version_probe_run(w->probe, client, at.db, at.collection, b, error);
    if (r != CQRS_PROBE_NOT_HERE) return r == CQRS_PROBE_DONE;
  }
  mongoc_collection_t *coll = mongoc_client_get_collection(client, at.db, at.collection);
  mongoc_cursor_t *cur =
      mongoc_collection_find_with_opts(coll, cqrs_wait_batch_filter(b), cqrs_wait_batch_opts(b), NULL);
  const bson_t *doc;
  while (mongoc_cursor_next(cur, &doc)) cqrs_wait_batch_offer(b, doc);
  bool ok = !mongoc_cursor_error(cur, error);
  mongoc_cursor_destroy(cur);
  mongoc_collection_destroy(coll);
  return ok;
}

/* One tick: a find per batch of the round, each settling its waiters. */
static void poll_round(cqrs_waiters_t *w) {
  size_t n = cqrs_waitset_begin_round(w->ws);
  if (n == 0) return;
  mongoc_client_t *client = mongoc_client_pool_pop(w->cfg.pool);
  for (size_t i = 0; i < n; i++) {
    cqrs_wait_batch_t *b = cqrs_waitset_batch(w->ws, i);
    bson_error_t error = {0};
    bool ok = find_batch(w, client, b, &error);
    cqrs_metrics_add(w->cfg.metrics, "read_wait_polls_total", NULL, 1);
    note_store(w, ok, &error);
    cqrs_wait_batch_settle(w->ws, b, ok, cqrs_time_monotonic_ms(), settle_cb, w); /* b is gone after */
  }
  mongoc_client_pool_push(w->cfg.pool, client);
}

static void timespec_at(int64_t mono_ms, struct timespec *ts) {
  ts->tv_sec = mono_ms / 1000;
  ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

/* Takes the inbox (under lock) into the waitset (outside it). */
static void admit(cqrs_waiters_t *w, pending_t *batch, size_t n) {
  for (size_t i = 0; i < n; i++) {
    pending_t *p = &batch[i];
    cqrs_waitset_add(w->ws, p->read, p->tenant, p->value, p->min_version, p->since_ms, p->deadline_ms, p->d);
    free(p->value);
  }
}

static void *hub_main(void *arg) {
  cqrs_waiters_t *w = arg;
  int64_t next_tick = 0;
  pending_t *taken = NULL;
  size_t cap_taken = 0;
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (!w->stopping && w->n_inbox == 0 && w->n_held == 0) {
      pthread_cond_wait(&w->cond, &w->lock);
      /* The first poll comes a tick after the first waiter: its own read
       * just looked. */
      next_tick = cqrs_time_monotonic_ms() + w->cfg.tick_ms;
    }
    if (w->stopping) break;
    int64_t now = cqrs_time_monotonic_ms();
    if (now < next_tick) {
      struct timespec ts;
      timespec_at(next_tick, &ts);
      pthread_cond_timedwait(&w->cond, &w->lock, &ts);
      continue;
    }
    /* Swap the inbox out so handlers are held up only for a pointer swap. */
    pending_t *in = w->inbox;
    size_t n_in = w->n_inbox, cap_in = w->cap_inbox;
    w->inbox = taken;
    w->cap_inbox = cap_taken;
    w->n_inbox = 0;
    taken = in;
    cap_taken = cap_in;
    pthread_mutex_unlock(&w->lock);

    admit(w, taken, n_in);
    poll_round(w);
    /* Rounds start at least a tick apart, however many waiters there are. */
    next_tick = now + w->cfg.tick_ms;

    pthread_mutex_lock(&w->lock);
    w->n_held = cqrs_waitset_size(w->ws);
    set_gauge(w);
  }
  pthread_mutex_unlock(&w->lock);
  free(taken);
  return NULL;
}

cqrs_waiters_t *cqrs_waiters_new(const cqrs_waiters_config_t *cfg, cqrs_error_t *err) {
  cqrs_waiters_t *w = cqrs_xcalloc(1, sizeof *w);
  w->cfg = *cfg;
  if (w->cfg.tick_ms < 1) w->cfg.tick_ms = 1;
  w->ws = cqrs_waitset_new(BATCH_MAX);
  if (w->cfg.ferretdb_pg_uri)
    w->probe = cqrs_version_probe_new(w->cfg.ferretdb_pg_uri, w->cfg.store_timeout_ms, w->cfg.pool, w->cfg.log,
                                      w->cfg.metrics);
  w->store_ok = true;
  pthread_mutex_init(&w->lock, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cond, &attr);
  pthread_condattr_destroy(&attr);
  cqrs_metrics_describe(w->cfg.metrics, "read_waiters", CQRS_METRIC_GAUGE,
                        "Single reads waiting for a version (minVersion + waitMs).");
  cqrs_metrics_describe(w->cfg.metrics, "read_wait_polls_total", CQRS_METRIC_COUNTER,
                        "Finds the waiter hub sent to the store (one per tick per read and batch of values).");
  cqrs_metrics_describe(w->cfg.metrics, "read_waits_total", CQRS_METRIC_COUNTER,
                        "Waiting reads answered: fresh, stale (X-Stale or 404 at the deadline) or error (503).");
  for (const char *const *l = (const char *const[]){"outcome=\"fresh\"", "outcome=\"stale\"", "outcome=\"error\"", NULL};
       *l; l++)
    cqrs_metrics_add(w->cfg.metrics, "read_waits_total", *l, 0);
  if (pthread_create(&w->thread, NULL, hub_main, w) != 0) {
    cqrs_error_set(err, CQRS_ERR_FATAL, NULL, "cannot start the waiter hub thread");
    cqrs_waiters_destroy(w);
    return NULL;
  }
  w->started = true;
  return w;
}

/* Answers req now with outcome o (from its loop thread). */
static void reply_now(cqrs_waiters_t *w, cqrs_http_req_t *req, const cqrs_single_read_t *read, cqrs_read_outcome_t o,
                      int64_t min_version) {
  cqrs_read_answer_t a;
  cqrs_single_read_answer(read, o, NULL, min_version, &a);
  cqrs_http_reply_json(req, a.status, a.body, a.len);
  cqrs_read_answer_cleanup(&a);
  cqrs_metrics_add(w->cfg.metrics, "read_waits_total", OUTCOME_LABELS[o], 1);
}

void cqrs_waiters_wait(cqrs_waiters_t *w, cqrs_http_req_t *req, const char *tenant, const cqrs_single_read_t *read,
                       const char *value, int64_t min_version, int64_t wait_ms) {
  pthread_mutex_lock(&w->lock);
  if (w->stopping) {
    pthread_mutex_unlock(&w->lock);
    reply_now(w, req, read, CQRS_READ_STOPPING, min_version);
    return;
  }
  /* The loop's own timer is the last resort: it fires only when the hub is
   * held up well past the deadline (finds bounded by the store timeout). */
  int64_t backstop = wait_ms + 2 * (int64_t)w->cfg.store_timeout_ms + 2 * (int64_t)w->cfg.tick_ms + 1000;
  cqrs_read_answer_t a;
  cqrs_single_read_answer(read, CQRS_READ_NO_STORE, NULL, min_version, &a);
  cqrs_http_deferred_t *d = cqrs_http_req_defer(req, (int)backstop, a.status, a.body, NULL, NULL);
  cqrs_read_answer_cleanup(&a);
  if (w->n_inbox == w->cap_inbox) {
    w->cap_inbox = w->cap_inbox ? w->cap_inbox * 2 : 64;
    w->inbox = cqrs_xrealloc(w->inbox, w->cap_inbox * sizeof *w->inbox);
  }
  int64_t now = cqrs_time_monotonic_ms();
  pending_t *p = &w->inbox[w->n_inbox++];
  *p = (pending_t){.read = read, .value = cqrs_xstrdup(value), .min_version = min_version, .since_ms = now,
                   .deadline_ms = now + wait_ms, .d = d};
  snprintf(p->tenant, sizeof p->tenant, "%s", tenant);
  set_gauge(w);
  if (w->n_inbox == 1 && w->n_held == 0) pthread_cond_signal(&w->cond); /* wake an idle hub */
  pthread_mutex_unlock(&w->lock);
}

void cqrs_waiters_stop(cqrs_waiters_t *w) {
  if (!w) return;
  pthread_mutex_lock(&w->lock);
  bool first = !w->stopping;
  w->stopping = true;
  pthread_cond_signal(&w->cond);
  pthread_mutex_unlock(&w->lock);
  if (!first) return;
  if (w->started) pthread_join(w->thread, NULL);
  /* The hub is gone: this thread owns ws now; handlers see stopping. */
  pthread_mutex_lock(&w->lock);
  admit(w, w->inbox, w->n_inbox);
  w->n_inbox = 0;
  pthread_mutex_unlock(&w->lock);
  cqrs_waitset_drain(w->ws, CQRS_READ_STOPPING, settle_cb, w);
  pthread_mutex_lock(&w->lock);
  w->n_held = 0;
  set_gauge(w);
  pthread_mutex_unlock(&w->lock);
}

void cqrs_waiters_destroy(cqrs_waiters_t *w) {
  if (!w) return;
  cqrs_waiters_stop(w);
  cqrs_waitset_destroy(w->ws);
  cqrs_version_probe_destroy(w->probe);
  free(w->inbox);
  pthread_cond_destroy(&w->cond);
  pthread_mutex_destroy(&w->lock);
  free(w);
}
