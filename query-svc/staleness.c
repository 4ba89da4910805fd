/* Read-model freshness as query-svc sees it (see staleness.h). */
#include "staleness.h"

#include "cqrs/alloc.h"
#include "cqrs/freshness.h"
#include "cqrs/json.h"
#include "cqrs/util.h"
#include "cqrs/worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  const char *name;
  int objective_ms;
  cqrs_progress_t progress; /* the last report; caught_up_ms 0: none yet */
  bool stale;               /* in breach at the last round */
  char labels[96];
} model_t;

struct cqrs_staleness {
  const cqrs_config_t *cfg;
  const cqrs_log_t *log;
  cqrs_metrics_t *metrics;
  mongoc_client_pool_t *pool;
  model_t *models;
  size_t n;
  pthread_mutex_t lock;
  cqrs_worker_t worker;
};

cqrs_staleness_t *cqrs_staleness_new(const cqrs_config_t *cfg, const cqrs_log_t *log, cqrs_metrics_t *metrics,
                                     mongoc_client_pool_t *pool, const char *const *read_models) {
  cqrs_staleness_t *s = cqrs_xcalloc(1, sizeof *s);
  *s = (cqrs_staleness_t){.cfg = cfg, .log = log, .metrics = metrics, .pool = pool};
  while (read_models[s->n]) s->n++;
  s->models = cqrs_xcalloc(s->n ? s->n : 1, sizeof *s->models);
  for (size_t i = 0; i < s->n; i++) {
    model_t *m = &s->models[i];
    m->name = read_models[i];
    m->objective_ms = cqrs_config_staleness_objective(cfg, m->name);
    m->progress.lag_events = -1;
    snprintf(m->labels, sizeof m->labels, "read_model=\"%s\"", m->name);
  }
  pthread_mutex_init(&s->lock, NULL);
  cqrs_metrics_describe(metrics, "read_model_lag_ms", CQRS_METRIC_GAUGE,
                        "Milliseconds since the read model's projector last had applied the whole log (-1: never).");
  cqrs_metrics_describe(metrics, "read_model_stale", CQRS_METRIC_GAUGE,
                        "1 while the read model's lag exceeds its staleness objective (or is unknown).");
  cqrs_metrics_describe(metrics, "read_model_staleness_breaches_total", CQRS_METRIC_COUNTER,
                        "Times a read model's lag went past its staleness objective.");
  return s;
}

static model_t *find(cqrs_staleness_t *s, const char *name) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->models[i].name, name) == 0) return &s->models[i];
  return NULL;
}

typedef struct {
  cqrs_staleness_t *s;
  cqrs_progress_t *reports; /* one per model; caught_up_ms -1: no report this round */
} round_t;

static void take_report(void *ctx, const char *read_model, const cqrs_progress_t *p) {
  round_t *r = ctx;
  model_t *m = find(r->s, read_model);
  if (m) r->reports[m - r->s->models] = *p;
}

/* One round: re-read the reports (without the lock: answers must not wait on
 * the store), then judge each read model. */
static void round_once(cqrs_staleness_t *s) {
  round_t r = {s, cqrs_xcalloc(s->n ? s->n : 1, sizeof *r.reports)};
  for (size_t i = 0; i < s->n; i++) r.reports[i].caught_up_ms = -1;
  mongoc_client_t *client = mongoc_client_pool_pop(s->pool);
  cqrs_error_t err = {0};
  /* a report that cannot be read leaves the last ones: their lag keeps growing */
  if (!cqrs_progress_read_all(client, s->cfg->mongo_db, take_report, &r, &err))
    cqrs_log_debug(s->log, "cannot read the read models' progress", "error", err.message, NULL);
  mongoc_client_pool_push(s->pool, client);
  pthread_mutex_lock(&s->lock);
  int64_t now = cqrs_time_now_ms();
  for (size_t i = 0; i < s->n; i++) {
    model_t *m = &s->models[i];
    if (r.reports[i].caught_up_ms >= 0) m->progress = r.reports[i];
    int64_t lag = cqrs_progress_lag_ms(&m->progress, now);
    bool stale = lag < 0 || lag > m->objective_ms;
    cqrs_metrics_set(s->metrics, "read_model_lag_ms", m->labels, (double)lag);
    cqrs_metrics_set(s->metrics, "read_model_stale", m->labels, stale ? 1 : 0);
    if (stale != m->stale) {
      char lag_s[24], obj_s[24];
      snprintf(lag_s, sizeof lag_s, "%lld", (long long)lag);
      snprintf(obj_s, sizeof obj_s, "%d", m->objective_ms);
      if (stale) {
        cqrs_metrics_add(s->metrics, "read_model_staleness_breaches_total", m->labels, 1);
        cqrs_log_warn(s->log, "read model staler than its objective", "readModel", m->name, "lagMs", lag_s,
                      "objectiveMs", obj_s, NULL);
      } else {
        cqrs_log_info(s->log, "read model within its staleness objective again", "readModel", m->name, "lagMs",
                      lag_s, "objectiveMs", obj_s, NULL);
      }
      m->stale = stale;
    }
  }
  pthread_mutex_unlock(&s->lock);
  free(r.reports);
}

static void *run(void *arg) {
  cqrs_staleness_t *s = arg;
  while (!cqrs_worker_stopping(&s->worker)) {
    round_once(s);
    for (int slept = 0; slept < CQRS_PROGRESS_PERIOD_MS && !cqrs_worker_stopping(&s->worker); slept += 50)
      usleep(50 * 1000);
  }
  return NULL;
}

bool cqrs_staleness_start(cqrs_staleness_t *s, cqrs_error_t *err) {
  return cqrs_worker_start(&s->worker, "staleness", run, s, err);
}

void cqrs_staleness_destroy(cqrs_staleness_t *s) {
  if (!s) return;
  cqrs_worker_stop(&s->worker);
  pthread_mutex_destroy(&s->lock);
  free(s->models);
  free(s);
}

bool cqrs_staleness_get(cqrs_staleness_t *s, const char *read_model, int64_t *lag_ms, int64_t *lag_events) {
  pthread_mutex_lock(&s->lock);
  model_t *m = find(s, read_model);
  if (m) {
    *lag_ms = cqrs_progress_lag_ms(&m->progress, cqrs_time_now_ms());
    *lag_events = m->progress.lag_events;
  }
  pthread_mutex_unlock(&s->lock);
  return m != NULL;
}

void cqrs_staleness_describe(cqrs_staleness_t *s, bson_string_t *out) {
  bson_string_append(out, ",\"staleReadModels\":[");
  pthread_mutex_lock(&s->lock);
  bool first = true;
  for (size_t i = 0; i < s->n; i++) {
    if (!s->models[i].stale) continue;
    if (!first) bson_string_append_c(out, ',');
    cqrs_json_append_string(out, s->models[i].name);
    first = false;
  }
  pthread_mutex_unlock(&s->lock);
  bson_string_append_c(out, ']');
}
