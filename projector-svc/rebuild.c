/* Rebuild driver: a rebuild-mode apply loop, progress, alias swap, cleanup. */
#include "rebuild.h"
#include "apply_loop.h"

#include "cqrs/mongo.h"
#include "cqrs/read_model.h"
#include "cqrs/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ALIAS_TTL_MS 1000
/* After the swap, keep applying for this long: longer than the live
 * projector's alias cache plus a batch, so events it wrote to the old
 * collection meanwhile reach the new one too (writes are idempotent). */
#define TAIL_MS (3 * ALIAS_TTL_MS)
#define LOG_EVERY_MS 5000

bool cqrs_rebuild_parse_time(const char *s, int64_t *ms) {
  char *end;
  long long n = strtoll(s, &end, 10);
  if (*s && !*end && n > 0) {
    *ms = n;
    return true;
  }
  struct tm tm = {0};
  const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return false;
  int frac_ms = 0;
  if (*rest == '.') {
    int digits = 0;
    for (rest++; *rest >= '0' && *rest <= '9'; rest++, digits++)
      if (digits < 3) frac_ms = frac_ms * 10 + (*rest - '0');
    for (; digits < 3; digits++) frac_ms *= 10;
  }
  if (strcmp(rest, "Z") != 0) return false;
  *ms = (int64_t)timegm(&tm) * 1000 + frac_ms;
  return true;
}

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

static bool drop_collection(mongoc_client_pool_t *pool, const char *db, const char *name, cqrs_error_t *err) {
  mongoc_client_t *client = mongoc_client_pool_pop(pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(client, db, name);
  bson_error_t e;
  bool ok = mongoc_collection_drop(coll, &e) || strstr(e.message, "not found") != NULL;
  if (!ok) cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "dropping %s: %s", name, e.message);
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(pool, client);
  return ok;
}

int cqrs_rebuild_run(const cqrs_config_t *cfg, const cqrs_log_t *log, const cqrs_projection_t *projection,
                     int64_t from_time_ms) {
  cqrs_error_t err = {0};
  int rc = 1;
  cqrs_apply_loop_t *loop = NULL;
  cqrs_metrics_t *metrics = cqrs_metrics_new();
  cqrs_read_models_t *rm = cqrs_read_models_new(cfg->mongo_db, 0);
  mongoc_client_pool_t *pool = cqrs_mongo_pool_new(cfg, "projector-svc-rebuild", &err);
  if (!pool) goto done;

  char target[CQRS_COLLECTION_NAME_MAX], previous[CQRS_COLLECTION_NAME_MAX], stamp[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
  snprintf(target, sizeof target, "%s__%s", projection->name, stamp);
  mongoc_client_t *client = mongoc_client_pool_pop(pool);
  cqrs_read_models_resolve(rm, client, projection->name, previous);
  mongoc_client_pool_push(pool, client);
  cqrs_log_info(log, "rebuild starting", "projection", projection->name, "into", target, "serving", previous,
                NULL);

  cqrs_apply_opts_t opts = {.target = target, .from_time_ms = from_time_ms};
  if (!(loop = cqrs_apply_loop_new(cfg, log, metrics, pool, rm, projection, &opts, &err)) ||
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
  client = mongoc_client_pool_pop(pool);
  bool swapped = cqrs_read_models_swap(client, cfg->mongo_db, projection->name, target, &err);
  mongoc_client_pool_push(pool, client);
  if (!swapped) goto done;
  cqrs_log_info(log, "rebuild caught up; queries now read the new collection", "projection", projection->name,
                "collection", target, NULL);
  usleep(TAIL_MS * 1000);
  cqrs_apply_loop_stop(loop);
  cqrs_apply_loop_progress(loop, &p);
  report(log, projection->name, &p, (double)p.applied * 1000.0 / (double)(cqrs_time_monotonic_ms() - t0), tty, true);
  if (tty) fputc('\n', stderr);
  if (strcmp(previous, target) != 0 && !drop_collection(pool, cfg->mongo_db, previous, &err)) {
    cqrs_log_warn(log, "the old collection could not be dropped; drop it by hand", "collection", previous, "error",
                  err.message, NULL);
  }
  rc = 0;
done:
  if (rc) cqrs_log_error(log, "rebuild failed", "projection", projection->name, "error", err.message, NULL);
  cqrs_apply_loop_destroy(loop);
  if (pool) mongoc_client_pool_destroy(pool);
  cqrs_read_models_destroy(rm);
  cqrs_metrics_destroy(metrics);
  return rc;
}
