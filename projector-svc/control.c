/* The projector's control thread (control.h). */
#include "control.h"

#include "redrive.h"
#include "replay.h"

#include "cqrs/alloc.h"
#include "cqrs/json.h"
#include "cqrs/kafka.h"
#include "cqrs/map.h"
#include "cqrs/ops.h"
#include "cqrs/util.h"
#include "cqrs/worker.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TICK_MS 200
#define STATE_EVERY_MS 2000
#define PUT_TIMEOUT_MS 10000

struct projector_control {
  const cqrs_config_t *cfg;
  const cqrs_log_t *log;
  mongoc_client_pool_t *pool;
  cqrs_registry_t *reg;
  cqrs_apply_loop_t **loops;
  size_t n;
  int64_t *resumes_seen; /* per loop: the "resumes" count already acted on */
  char instance[128];
  cqrs_ops_t *ops;
  rd_kafka_t *jobs; /* member of the group that elects the job owner */
  char *t_ops;
  atomic_bool owner;
  cqrs_worker_t worker;
  cqrs_map_t *replays; /* replayId -> cqrs_replay_t * (this replica's, while owner) */
  cqrs_redrive_t *redrive;
};

/* @locality the control thread (in rd_kafka_consumer_poll) */
static void rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *ctx) {
  projector_control_t *c = ctx;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    rd_kafka_assign(rk, parts);
    rd_kafka_pause_partitions(rk, parts); /* the partition is a token: nothing is read through this member */
    if (parts->cnt > 0) {
      atomic_store(&c->owner, true);
      cqrs_log_info(c->log, "this replica owns the control jobs (replays, redrives)", "instance", c->instance, NULL);
    }
  } else {
    /* Stop this replica's replays before giving the partition up: the next
     * owner is chosen only after this callback returns, so two replicas never
     * run one replay at once. */
    if (atomic_load(&c->owner) && cqrs_map_size(c->replays))
      cqrs_log_info(c->log, "this replica no longer owns the control jobs; its replays are left to the next owner",
                    "instance", c->instance, NULL);
    cqrs_map_clear(c->replays); /* abandons each */
    atomic_store(&c->owner, false);
    rd_kafka_assign(rk, NULL);
  }
}

/* ---- projections: pause, resume, state ---- */

static char *key_of(const char *prefix, const char *name) {
  size_t n = strlen(prefix) + strlen(name) + 1;
  char *k = cqrs_xmalloc(n);
  snprintf(k, n, "%s%s", prefix, name);
  return k;
}

/* The "projection/<p>" record: want ("run" unless it says "pause") and resumes. */
static void projection_want(projector_control_t *c, const char *p, bool *pause, int64_t *resumes) {
  char *k = key_of(CQRS_OPS_PROJECTION, p);
  char *v = cqrs_ops_get(c->ops, k);
  free(k);
  *pause = false;
  *resumes = 0;
  cqrs_error_t err = {0};
  bson_t *doc = v ? cqrs_json_parse(v, strlen(v), &err) : NULL;
  free(v);
  if (!doc) return;
  const char *w = NULL;
  bool present;
  if (cqrs_json_get_string(doc, "want", NULL, false, 15, &w, &err) && w) *pause = strcmp(w, "pause") == 0;
  cqrs_json_get_int64(doc, "resumes", NULL, false, resumes, &present, &err);
  bson_destroy(doc);
}

static void follow_projections(projector_control_t *c) {
  for (size_t i = 0; i < c->n; i++) {
    bool pause;
    int64_t resumes;
    projection_want(c, cqrs_apply_loop_projection(c->loops[i])->name, &pause, &resumes);
    cqrs_apply_loop_pause(c->loops[i], pause);
    /* a resume asked for since the last look moves a halted loop past its poison event */
    if (!pause && resumes > c->resumes_seen[i]) cqrs_apply_loop_release(c->loops[i]);
    c->resumes_seen[i] = resumes;
  }
}

static void publish_states(projector_control_t *c) {
  char now[32];
  cqrs_time_now_rfc3339(now);
  for (size_t i = 0; i < c->n; i++) {
    cqrs_apply_progress_t p;
    cqrs_apply_loop_progress(c->loops[i], &p);
    bson_t doc = BSON_INITIALIZER, h;
    BSON_APPEND_UTF8(&doc, "state", p.halted ? "halted" : p.paused ? "paused" : "running");
    BSON_APPEND_INT64(&doc, "eventsApplied", (int64_t)p.applied);
    if (p.last_error[0])
      BSON_APPEND_UTF8(&doc, "lastError", p.last_error);
    else
      BSON_APPEND_NULL(&doc, "lastError");
    if (p.halted) {
      BSON_APPEND_DOCUMENT_BEGIN(&doc, "halt", &h);
      BSON_APPEND_INT32(&h, "partition", p.halt_partition);
      BSON_APPEND_INT64(&h, "offset", p.halt_offset);
      bson_append_document_end(&doc, &h);
    }
    BSON_APPEND_UTF8(&doc, "instance", c->instance);
    BSON_APPEND_UTF8(&doc, "updatedAt", now);
    char *json = cqrs_json_write(&doc, NULL);
    bson_destroy(&doc);
    char name[256];
    snprintf(name, sizeof name, "%s/%s", cqrs_apply_loop_projection(c->loops[i])->name, c->instance);
    char *k = key_of(CQRS_OPS_PROJECTION_STATE, name);
    cqrs_error_t err = {0};
    if (!cqrs_ops_put(c->ops, k, json, false, PUT_TIMEOUT_MS, &err))
      cqrs_log_debug(c->log, "cannot report a projection's state", "error", err.message, NULL);
    free(k);
    bson_free(json);
  }
}

/* ---- jobs (owner only) ---- */

/* True when replay id's recorded state says it still has work. */
static bool replay_open(projector_control_t *c, const char *id) {
  char *k = key_of(CQRS_OPS_REPLAY_STATE, id);
  char *v = cqrs_ops_get(c->ops, k);
  free(k);
  if (!v) return true; /* pending */
  cqrs_error_t err = {0};
  bson_t *doc = cqrs_json_parse(v, strlen(v), &err);
  free(v);
  const char *s = NULL;
  bool open = true;
  if (doc && cqrs_json_get_string(doc, "state", NULL, false, 15, &s, &err) && s)
    open = strcmp(s, CQRS_REPLAY_COMPLETED) != 0 && strcmp(s, CQRS_REPLAY_FAILED) != 0 &&
           strcmp(s, CQRS_REPLAY_CANCELLED) != 0;
  if (doc) bson_destroy(doc);
  return open;
}

typedef struct {
  const char *projection;
  bool busy;
} busy_t;

static bool reap(const char *key, void *value, void *ctx) {
  (void)key;
  (void)ctx;
  return cqrs_replay_finished(value);
}

static bool projection_busy(const char *key, void *value, void *ctx) {
  (void)key;
  busy_t *b = ctx;
  if (strcmp(cqrs_replay_projection(value), b->projection) == 0) b->busy = true;
  return false;
}

static void free_replay(void *r) { cqrs_replay_abandon(r); }

static void run_replays(projector_control_t *c) {
  cqrs_map_filter(c->replays, reap, NULL); /* finished ones are freed */
  char **keys, **values;
  size_t n = cqrs_ops_list(c->ops, CQRS_OPS_REPLAY, &keys, &values);
  size_t plen = strlen(CQRS_OPS_REPLAY);
  for (size_t i = 0; i < n; i++) {
    const char *id = keys[i] + plen;
    if (cqrs_map_get(c->replays, id) || !replay_open(c, id)) continue;
    /* admin-svc refuses a second replay of a projection while one is open; one at a time here too */
    cqrs_error_t err = {0};
    bson_t *req = cqrs_json_parse(values[i], strlen(values[i]), &err);
    busy_t b = {NULL, false};
    if (req && cqrs_json_get_string(req, "projection", NULL, true, 60, &b.projection, &err))
      cqrs_map_filter(c->replays, projection_busy, &b);
    bool busy = b.busy;
    if (req) bson_destroy(req);
    if (busy) continue;
    cqrs_replay_env_t env = {c->cfg, c->log, c->pool, c->reg, c->ops, c->instance};
    cqrs_replay_t *r = cqrs_replay_start(&env, id, &err);
    if (!r) {
      cqrs_log_warn(c->log, "cannot run a replay", "replayId", id, "error", err.message, NULL);
      continue;
    }
    cqrs_log_info(c->log, "running a replay", "replayId", id, "projection", cqrs_replay_projection(r), "instance",
                  c->instance, NULL);
    cqrs_map_put(c->replays, id, r);
  }
  cqrs_ops_free_list(keys, values, n);
}

static void *control_main(void *arg) {
  projector_control_t *c = arg;
  int64_t next_state = 0;
  while (!cqrs_worker_stopping(&c->worker)) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->jobs, TICK_MS);
    if (m) rd_kafka_message_destroy(m);
    if (!cqrs_ops_caught_up(c->ops)) continue;
    follow_projections(c);
    if (cqrs_time_monotonic_ms() >= next_state) {
      publish_states(c);
      next_state = cqrs_time_monotonic_ms() + STATE_EVERY_MS;
    }
    if (!atomic_load(&c->owner)) continue;
    run_replays(c);
    cqrs_redrive_run(c->redrive);
  }
  cqrs_map_clear(c->replays);
  return NULL;
}

projector_control_t *projector_control_start(const cqrs_config_t *cfg, const cqrs_log_t *log,
                                             mongoc_client_pool_t *pool, cqrs_registry_t *reg,
                                             cqrs_tenants_t *tenants, cqrs_apply_loop_t **loops, size_t n,
                                             cqrs_error_t *err) {
  projector_control_t *c = cqrs_xcalloc(1, sizeof *c);
  c->cfg = cfg;
  c->log = log;
  c->pool = pool;
  c->reg = reg;
  c->loops = loops;
  c->n = n;
  c->resumes_seen = cqrs_xcalloc(n ? n : 1, sizeof *c->resumes_seen);
  c->replays = cqrs_map_new(free_replay);
  char host[64] = "";
  gethostname(host, sizeof host - 1);
  snprintf(c->instance, sizeof c->instance, "%s-%d", host, (int)getpid());
  c->t_ops = cqrs_config_topic(cfg, CQRS_TOPIC_OPS);
  if (!(c->ops = cqrs_ops_open(cfg, log, NULL, NULL, err))) goto fail;
  if (!(c->redrive = cqrs_redrive_new(cfg, log, pool, tenants, c->ops, err))) goto fail;
  /* resumes asked for before this start are history: a loop halted from now on waits for the next */
  if (!cqrs_ops_sync(c->ops, 30000, err)) goto fail;
  for (size_t i = 0; i < n; i++) {
    bool pause;
    projection_want(c, cqrs_apply_loop_projection(loops[i])->name, &pause, &c->resumes_seen[i]);
  }
  if (!(c->jobs = cqrs_kafka_consumer_new(cfg, log, "projector-jobs", rebalance, c, err, "session.timeout.ms", "6000",
                                          "heartbeat.interval.ms", "1000", NULL)) ||
      !cqrs_kafka_subscribe(c->jobs, c->t_ops, err))
    goto fail;
  if (!cqrs_worker_start(&c->worker, "control", control_main, c, err)) goto fail;
  return c;
fail:
  projector_control_stop(c);
  return NULL;
}

bool projector_control_ready(projector_control_t *c, cqrs_error_t *err) {
  if (cqrs_ops_caught_up(c->ops)) return true;
  cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "the ops topic is not read to its end yet");
  return false;
}

void projector_control_stop(projector_control_t *c) {
  if (!c) return;
  cqrs_worker_stop(&c->worker);
  if (c->jobs) { /* its close revokes the partition: the callback abandons the replays, so the map lives on */
    rd_kafka_consumer_close(c->jobs);
    rd_kafka_destroy(c->jobs);
  }
  cqrs_map_destroy(c->replays);
  cqrs_redrive_destroy(c->redrive);
  cqrs_ops_close(c->ops);
  free(c->resumes_seen);
  free(c->t_ops);
  free(c);
}
