/* A replay's runner (replay.h): request and checkpoint in, apply loop in
 * rebuild mode, state records out. */
#include "replay.h"

#include "apply_loop.h"
#include "rebuild.h"
#include "tenants.h"

#include "cqrs/alloc.h"
#include "cqrs/json.h"
#include "cqrs/kafka.h"
#include "cqrs/map.h"
#include "cqrs/metrics.h"
#include "cqrs/util.h"
#include "cqrs/worker.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TICK_MS 250
#define STATE_EVERY_MS 1000
#define MAX_PARTITIONS 256
#define PUT_TIMEOUT_MS 10000

typedef struct {
  char id[32]; /* admin-svc makes 16 hex digits */
  char projection[64];
  int64_t from_ms; /* 0: the beginning */
  char tenant[CQRS_TENANT_MAX + 1];
} request_t;

struct cqrs_replay {
  cqrs_replay_env_t env;
  request_t req;
  const cqrs_projection_t *proj;
  cqrs_worker_t worker; /* stopping: abandoned */
  atomic_bool finished;
  /* the thread's own */
  cqrs_tenants_t *tenants;
  rd_kafka_t *probe;
  char *t_events;
  int partitions;
  int64_t lo[MAX_PARTITIONS], hi[MAX_PARTITIONS], from_off[MAX_PARTITIONS];
  char started_at[32];
  char phase[16];
  uint64_t applied_before; /* events counted by earlier phases */
  uint64_t total_before;
  double rate;
  int64_t rate_t;
  uint64_t rate_applied;
  cqrs_map_t *aggregates; /* from a time: "tenant/aggregateId" -> (void *)1 */
};

/* ---- records ---- */

static bool parse_request(const char *json, request_t *r) {
  cqrs_error_t err = {0};
  bson_t *doc = json ? cqrs_json_parse(json, strlen(json), &err) : NULL;
  if (!doc) return false;
  const char *p = NULL, *t = NULL;
  bool present;
  bool ok = cqrs_json_get_string(doc, "projection", NULL, true, 60, &p, &err) &&
            cqrs_json_get_int64(doc, "fromMs", NULL, false, &r->from_ms, &present, &err) &&
            cqrs_json_get_string(doc, "tenant", NULL, false, CQRS_TENANT_MAX, &t, &err);
  if (ok) {
    snprintf(r->projection, sizeof r->projection, "%s", p);
    snprintf(r->tenant, sizeof r->tenant, "%s", t ? t : "");
  }
  bson_destroy(doc);
  return ok;
}

static char *key_of(const char *prefix, const char *id) {
  size_t n = strlen(prefix) + strlen(id) + 1;
  char *k = cqrs_xmalloc(n);
  snprintf(k, n, "%s%s", prefix, id);
  return k;
}

/* What the control plane wants of this replay now: "run", "pause" or "cancel". */
static void want(cqrs_replay_t *r, char out[16]) {
  char *k = key_of(CQRS_OPS_REPLAY_WANT, r->req.id);
  char *v = cqrs_ops_get(r->env.ops, k);
  free(k);
  snprintf(out, 16, "run");
  cqrs_error_t err = {0};
  bson_t *doc = v ? cqrs_json_parse(v, strlen(v), &err) : NULL;
  const char *w = NULL;
  if (doc && cqrs_json_get_string(doc, "want", NULL, false, 15, &w, &err) && w) snprintf(out, 16, "%s", w);
  if (doc) bson_destroy(doc);
  free(v);
}

typedef struct {
  const char *state;
  uint64_t applied, total;
  const int64_t *checkpoint; /* partitions of them; NULL: none */
  const char *error;
  bool finished;
} state_t;

/* Writes the replay's state record. */
static void put_state(cqrs_replay_t *r, const state_t *s) {
  bson_t doc = BSON_INITIALIZER, arr;
  char now[32];
  cqrs_time_now_rfc3339(now);
  BSON_APPEND_UTF8(&doc, "state", s->state);
  BSON_APPEND_UTF8(&doc, "phase", r->phase);
  BSON_APPEND_INT64(&doc, "applied", (int64_t)s->applied);
  BSON_APPEND_INT64(&doc, "total", (int64_t)(s->total < s->applied ? s->applied : s->total));
  BSON_APPEND_DOUBLE(&doc, "rate", r->rate);
  if (r->rate > 0 && !s->finished && s->total > s->applied)
    BSON_APPEND_DOUBLE(&doc, "etaSeconds", (double)(s->total - s->applied) / r->rate);
  else if (s->finished)
    BSON_APPEND_DOUBLE(&doc, "etaSeconds", 0);
  else
    BSON_APPEND_NULL(&doc, "etaSeconds");
  if (r->started_at[0])
    BSON_APPEND_UTF8(&doc, "startedAt", r->started_at);
  else
    BSON_APPEND_NULL(&doc, "startedAt");
  if (s->finished)
    BSON_APPEND_UTF8(&doc, "finishedAt", now);
  else
    BSON_APPEND_NULL(&doc, "finishedAt");
  if (s->error)
    BSON_APPEND_UTF8(&doc, "error", s->error);
  else
    BSON_APPEND_NULL(&doc, "error");
  BSON_APPEND_UTF8(&doc, "owner", r->env.instance);
  BSON_APPEND_UTF8(&doc, "updatedAt", now);
  if (s->checkpoint) {
    BSON_APPEND_ARRAY_BEGIN(&doc, "checkpoint", &arr);
    for (int i = 0; i < r->partitions; i++) {
      char idx[16];
      const char *k;
      bson_uint32_to_string((uint32_t)i, &k, idx, sizeof idx);
      bson_append_int64(&arr, k, -1, s->checkpoint[i]);
    }
    bson_append_array_end(&doc, &arr);
    /* the tenants met so far: a replica resuming must swap them too */
    size_t n;
    char target[CQRS_COLLECTION_NAME_MAX];
    snprintf(target, sizeof target, "%s__replay_%s", r->req.projection, r->req.id);
    char(*met)[CQRS_TENANT_MAX + 1] = cqrs_tenants_met(r->tenants, target, &n);
    BSON_APPEND_ARRAY_BEGIN(&doc, "tenants", &arr);
    for (size_t i = 0; i < n; i++) {
      char idx[16];
      const char *k;
      bson_uint32_to_string((uint32_t)i, &k, idx, sizeof idx);
      bson_append_utf8(&arr, k, -1, met[i], -1);
    }
    bson_append_array_end(&doc, &arr);
    free(met);
  }
  char *json = cqrs_json_write(&doc, NULL);
  bson_destroy(&doc);
  char *k = key_of(CQRS_OPS_REPLAY_STATE, r->req.id);
  cqrs_error_t err = {0};
  if (!cqrs_ops_put(r->env.ops, k, json, false, PUT_TIMEOUT_MS, &err))
    cqrs_log_warn(r->env.log, "cannot record a replay's state", "replayId", r->req.id, "error", err.message, NULL);
  free(k);
  bson_free(json);
}

/* The checkpoint of an earlier owner: offsets into out (count returned, 0:
 * none), and its tenants prepared (so this process knows them as met). */
static int load_checkpoint(cqrs_replay_t *r, const char *target, int64_t *out) {
  char *k = key_of(CQRS_OPS_REPLAY_STATE, r->req.id);
  char *v = cqrs_ops_get(r->env.ops, k);
  free(k);
  cqrs_error_t err = {0};
  bson_t *doc = v ? cqrs_json_parse(v, strlen(v), &err) : NULL;
  free(v);
  if (!doc) return 0;
  int n = 0;
  bson_iter_t it, a;
  if (bson_iter_init_find(&it, doc, "checkpoint") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &a))
    while (bson_iter_next(&a) && n < MAX_PARTITIONS) out[n++] = bson_iter_as_int64(&a);
  if (n && bson_iter_init_find(&it, doc, "tenants") && BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &a))
    while (bson_iter_next(&a)) {
      const char *t = BSON_ITER_HOLDS_UTF8(&a) ? bson_iter_utf8(&a, NULL) : NULL;
      if (t && cqrs_tenant_valid(t, NULL) && !cqrs_tenants_prepare(r->tenants, t, target, r->proj, &err)) n = 0;
    }
  bson_destroy(doc);
  return n;
}

/* ---- progress ---- */

static bool read_ends(cqrs_replay_t *r, cqrs_error_t *err) {
  for (int p = 0; p < r->partitions; p++)
    if (!cqrs_kafka_watermarks(r->probe, r->t_events, p, &r->lo[p], &r->hi[p], 10000, err)) return false;
  return true;
}

/* Events read by the loop since start[] (negative: the partition's low watermark). */
static uint64_t consumed(cqrs_replay_t *r, const int64_t *pos, const int64_t *start) {
  uint64_t n = 0;
  for (int p = 0; p < r->partitions; p++) {
    int64_t s = start[p] >= 0 ? start[p] : r->lo[p];
    int64_t at = pos[p] >= 0 ? pos[p] : s;
    if (at > s) n += (uint64_t)(at - s);
  }
  return n;
}

static uint64_t span(cqrs_replay_t *r, const int64_t *start) {
  uint64_t n = 0;
  for (int p = 0; p < r->partitions; p++) {
    int64_t s = start[p] >= 0 ? start[p] : r->lo[p];
    if (r->hi[p] > s) n += (uint64_t)(r->hi[p] - s);
  }
  return n;
}

static void update_rate(cqrs_replay_t *r, uint64_t applied) {
  int64_t t = cqrs_time_monotonic_ms();
  if (r->rate_t == 0) {
    r->rate_t = t;
    r->rate_applied = applied;
    return;
  }
  if (t - r->rate_t < 1000) return;
  double now = (double)(applied - r->rate_applied) * 1000.0 / (double)(t - r->rate_t);
  r->rate = r->rate > 0 ? 0.5 * r->rate + 0.5 * now : now;
  r->rate_t = t;
  r->rate_applied = applied;
}

/* True when no record is left at or after pos[] (negative: the beginning) in
 * any partition: the loop's own lag can stay above 0 when the last offset
 * before the end is a transaction's commit marker it never sees. */
static bool tail_empty(cqrs_replay_t *r, const int64_t *pos) {
  bool empty[MAX_PARTITIONS];
  cqrs_rebuild_nothing_past(r->probe, r->t_events, r->partitions, NULL, pos, empty);
  for (int p = 0; p < r->partitions; p++)
    if (!empty[p]) return false;
  return true;
}

/* ---- running a loop to the end of the log ---- */

typedef enum { RUN_CAUGHT_UP, RUN_CANCELLED, RUN_ABANDONED, RUN_FAILED } run_outcome_t;

/* Runs loop (started) until caught up, honouring pause and cancel and
 * recording progress with the checkpoint. start: where each partition began. */
static run_outcome_t drive(cqrs_replay_t *r, cqrs_apply_loop_t *loop, const int64_t *start, bool checkpointed) {
  int64_t pos[MAX_PARTITIONS], before[MAX_PARTITIONS];
  int64_t next_state = 0;
  bool paused = false;
  for (int i = 0; i < r->partitions; i++) before[i] = INT64_MIN;
  for (;;) {
    if (cqrs_worker_stopping(&r->worker)) return RUN_ABANDONED;
    usleep(TICK_MS * 1000);
    char w[16];
    want(r, w);
    if (strcmp(w, "cancel") == 0) return RUN_CANCELLED;
    bool pause = strcmp(w, "pause") == 0;
    cqrs_apply_loop_pause(loop, pause);
    cqrs_apply_progress_t p;
    cqrs_apply_loop_progress(loop, &p);
    if (p.paused != paused) next_state = 0; /* say so at once */
    paused = p.paused;                      /* held at a batch boundary: what it wrote is all it wrote */
    cqrs_apply_loop_positions(loop, pos, r->partitions);
    cqrs_error_t err = {0};
    if (cqrs_time_monotonic_ms() >= next_state) {
      read_ends(r, &err); /* the end moves while live events arrive */
      uint64_t applied = r->applied_before + consumed(r, pos, start);
      update_rate(r, applied);
      state_t s = {paused ? CQRS_REPLAY_PAUSED : CQRS_REPLAY_RUNNING, applied, r->total_before + span(r, start),
                   checkpointed ? pos : NULL, NULL, false};
      put_state(r, &s);
      next_state = cqrs_time_monotonic_ms() + STATE_EVERY_MS;
    }
    if (pause || !p.lag_known) continue;
    if (p.lag == 0) return RUN_CAUGHT_UP;
    bool still = memcmp(pos, before, (size_t)r->partitions * sizeof *pos) == 0;
    memcpy(before, pos, (size_t)r->partitions * sizeof *pos);
    if (still && p.lag <= r->partitions && tail_empty(r, pos)) return RUN_CAUGHT_UP;
  }
}

/* ---- from a time: which aggregates ---- */

static char *aggregate_key(const char *tenant, const char *id) {
  size_t n = strlen(tenant) + strlen(id) + 2;
  char *k = cqrs_xmalloc(n);
  snprintf(k, n, "%s/%s", tenant, id);
  return k;
}

static bool include(void *ctx, const cqrs_event_t *ev) {
  cqrs_replay_t *r = ctx;
  char *k = aggregate_key(ev->tenant, ev->aggregate_id);
  bool in = cqrs_map_get(r->aggregates, k) != NULL;
  free(k);
  return in;
}

/* Reads every event from offsetsForTimes(from) to the end offsets of now and
 * collects the aggregates of this projection (and tenant) among them. */
static bool scan(cqrs_replay_t *r, cqrs_error_t *err) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->partitions);
  for (int p = 0; p < r->partitions; p++) rd_kafka_topic_partition_list_add(l, r->t_events, p)->offset = r->req.from_ms;
  rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(r->probe, l, 10000);
  if (e) {
    cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "offsets for time: %s", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
    return false;
  }
  uint64_t total = 0;
  for (int i = 0; i < l->cnt; i++) {
    int32_t p = l->elems[i].partition;
    r->from_off[p] = l->elems[i].offset < 0 ? r->hi[p] : l->elems[i].offset;
    l->elems[i].offset = r->from_off[p];
    total += (uint64_t)(r->hi[p] - r->from_off[p]);
  }
  r->total_before = total;
  rd_kafka_assign(r->probe, l);
  rd_kafka_topic_partition_list_destroy(l);
  uint64_t seen = 0;
  int64_t next_state = 0;
  int done = 0;
  bool *finished = cqrs_xcalloc((size_t)r->partitions, sizeof *finished);
  for (int p = 0; p < r->partitions; p++)
    if (r->from_off[p] >= r->hi[p]) finished[p] = true, done++;
  const char *agg = r->proj->aggregate_type;
  while (done < r->partitions) {
    if (cqrs_worker_stopping(&r->worker)) break;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(r->probe, 200);
    if (!m) continue;
    /* the end: a transaction's commit marker may take the last offset before hi */
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && m->partition < r->partitions && !finished[m->partition])
      finished[m->partition] = true, done++;
    if (!m->err && m->partition < r->partitions && !finished[m->partition]) {
      seen++;
      cqrs_header_t hdrs[32];
      size_t nh = cqrs_kafka_headers(m, hdrs, 32);
      cqrs_event_t ev;
      cqrs_error_t derr = {0};
      if (cqrs_event_from_record(&ev, hdrs, nh, m->payload, m->len, &derr) &&
          (!agg || strcmp(ev.aggregate_type, agg) == 0) &&
          (!r->req.tenant[0] || strcmp(ev.tenant, r->req.tenant) == 0)) {
        char *k = aggregate_key(ev.tenant, ev.aggregate_id);
        cqrs_map_put(r->aggregates, k, (void *)1);
        free(k);
      }
      cqrs_event_cleanup(&ev);
      if (m->offset + 1 >= r->hi[m->partition]) finished[m->partition] = true, done++;
    }
    rd_kafka_message_destroy(m);
    if (cqrs_time_monotonic_ms() >= next_state) {
      update_rate(r, seen);
      state_t s = {CQRS_REPLAY_RUNNING, seen, total, NULL, NULL, false};
      put_state(r, &s);
      next_state = cqrs_time_monotonic_ms() + STATE_EVERY_MS;
    }
  }
  free(finished);
  rd_kafka_assign(r->probe, NULL);
  r->applied_before = seen;
  return !cqrs_worker_stopping(&r->worker);
}

/* Copies each document of scratch over the live one of its tenant unless the
 * live one is newer; then drops scratch. */
static bool copy_back(cqrs_replay_t *r, const char *scratch, cqrs_error_t *err) {
  size_t n;
  char(*met)[CQRS_TENANT_MAX + 1] = cqrs_tenants_met(r->tenants, scratch, &n);
  bool ok = true;
  for (size_t i = 0; ok && i < n; i++) {
    cqrs_tenants_enter(r->tenants);
    if (cqrs_tenants_deleted(r->tenants, met[i])) {
      cqrs_tenants_leave(r->tenants);
      continue;
    }
    char db[CQRS_TENANT_DB_MAX], live[CQRS_COLLECTION_NAME_MAX];
    cqrs_tenants_db(r->tenants, met[i], db);
    cqrs_tenants_resolve(r->tenants, met[i], r->proj->name, live);
    ok = cqrs_tenants_prepare(r->tenants, met[i], live, r->proj, err);
    mongoc_client_t *client = mongoc_client_pool_pop(r->env.pool);
    mongoc_collection_t *from = mongoc_client_get_collection(client, db, scratch);
    mongoc_collection_t *to = mongoc_client_get_collection(client, db, live);
    bson_t q = BSON_INITIALIZER;
    mongoc_cursor_t *c = ok ? mongoc_collection_find_with_opts(from, &q, NULL, NULL) : NULL;
    const bson_t *doc;
    bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
    while (ok && c && mongoc_cursor_next(c, &doc)) {
      bson_iter_t id, ver;
      if (!bson_iter_init_find(&id, doc, "_id") || !bson_iter_init_find(&ver, doc, CQRS_PROJECTION_VERSION)) continue;
      bson_t filter = BSON_INITIALIZER, cond;
      bson_append_iter(&filter, "_id", -1, &id);
      BSON_APPEND_DOCUMENT_BEGIN(&filter, CQRS_PROJECTION_VERSION, &cond);
      BSON_APPEND_INT64(&cond, "$lte", bson_iter_as_int64(&ver));
      bson_append_document_end(&filter, &cond);
      bson_error_t e;
      if (!mongoc_collection_replace_one(to, &filter, doc, opts, NULL, &e) && e.code != 11000) {
        /* 11000: the live document is newer (the guard matched nothing, the upsert met its _id) */
        cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "copying a re-derived document: %s", e.message);
        ok = false;
      }
      bson_destroy(&filter);
    }
    bson_error_t ce;
    if (ok && c && mongoc_cursor_error(c, &ce)) {
      cqrs_error_set(err, CQRS_ERR_UNAVAILABLE, NULL, "reading re-derived documents: %s", ce.message);
      ok = false;
    }
    if (c) mongoc_cursor_destroy(c);
    bson_destroy(opts);
    bson_destroy(&q);
    mongoc_collection_destroy(from);
    mongoc_collection_destroy(to);
    mongoc_client_pool_push(r->env.pool, client);
    cqrs_tenants_leave(r->tenants);
    if (ok) ok = cqrs_rebuild_drop_collection(r->env.pool, db, scratch, err);
  }
  free(met);
  return ok;
}

/* Drops target in every tenant's database where this replay made it. */
static void drop_built(cqrs_replay_t *r, const char *target) {
  size_t n;
  char(*met)[CQRS_TENANT_MAX + 1] = cqrs_tenants_met(r->tenants, target, &n);
  for (size_t i = 0; i < n; i++) {
    char db[CQRS_TENANT_DB_MAX];
    cqrs_error_t err = {0};
    cqrs_tenants_db(r->tenants, met[i], db);
    if (!cqrs_rebuild_drop_collection(r->env.pool, db, target, &err))
      cqrs_log_warn(r->env.log, "a cancelled replay's collection could not be dropped; drop it by hand", "database", db,
                    "collection", target, "error", err.message, NULL);
  }
  free(met);
}

/* ---- the thread ---- */

static void finish(cqrs_replay_t *r, const char *state, uint64_t applied, uint64_t total, const char *error) {
  state_t s = {state, applied, total, NULL, error, true};
  put_state(r, &s);
  cqrs_log_info(r->env.log, "replay finished", "replayId", r->req.id, "projection", r->req.projection, "state", state,
                "error", error, NULL);
}

static void *run(void *arg) {
  cqrs_replay_t *r = arg;
  cqrs_error_t err = {0};
  cqrs_metrics_t *metrics = cqrs_metrics_new();
  cqrs_apply_loop_t *loop = NULL;
  const char *tenant = r->req.tenant[0] ? r->req.tenant : NULL;
  char target[CQRS_COLLECTION_NAME_MAX];
  snprintf(target, sizeof target, "%s__replay_%s", r->req.projection, r->req.id);
  int64_t start[MAX_PARTITIONS], checkpoint[MAX_PARTITIONS];
  for (int i = 0; i < MAX_PARTITIONS; i++) start[i] = -1;
  r->tenants = cqrs_tenants_new(r->env.cfg, r->env.log, r->env.pool, r->env.reg, 0);
  r->t_events = cqrs_config_topic(r->env.cfg, CQRS_TOPIC_EVENTS);
  cqrs_time_now_rfc3339(r->started_at);
  if (!(r->probe = cqrs_kafka_consumer_new(r->env.cfg, r->env.log, "replay-probe", NULL, NULL, &err,
                                                 "enable.partition.eof", "true", NULL)) ||
      (r->partitions = cqrs_kafka_partition_count(r->probe, r->t_events, 10000, &err)) <= 0 ||
      r->partitions > MAX_PARTITIONS || !read_ends(r, &err))
    goto failed;
  if (tenant) {
    cqrs_tenants_enter(r->tenants);
    bool deleted = cqrs_tenants_deleted(r->tenants, tenant);
    bool ok = !deleted && cqrs_tenants_prepare(r->tenants, tenant, target, r->proj, &err);
    cqrs_tenants_leave(r->tenants);
    if (deleted) cqrs_error_set(&err, CQRS_ERR_INVALID, "tenant", "tenant %s is deleted", tenant);
    if (!ok) goto failed;
  }
  cqrs_apply_opts_t opts = {.target = target, .tenant = tenant};
  if (r->req.from_ms > 0) {
    snprintf(r->phase, sizeof r->phase, "scan");
    if (!scan(r, &err)) goto out;
    opts.include = include;
    opts.include_ctx = r;
    snprintf(r->phase, sizeof r->phase, "derive");
    cqrs_log_info(r->env.log, "replay from a time: re-deriving the aggregates touched since", "replayId", r->req.id,
                  "projection", r->req.projection, NULL);
  } else {
    snprintf(r->phase, sizeof r->phase, "rebuild");
    int n = load_checkpoint(r, target, checkpoint);
    if (n == r->partitions) {
      opts.start_offsets = checkpoint;
      opts.n_start_offsets = n;
      /* progress counts from the beginning, so a resumed replay shows all it has done;
       * the line names where it resumes (events before the checkpoint, its offsets) */
      char before[24], offsets[MAX_PARTITIONS * 21];
      size_t at = 0;
      snprintf(before, sizeof before, "%llu", (unsigned long long)consumed(r, checkpoint, start));
      offsets[0] = '\0';
      for (int p = 0; p < n && at < sizeof offsets; p++)
        at += (size_t)snprintf(offsets + at, sizeof offsets - at, "%s%lld", p ? "," : "", (long long)checkpoint[p]);
      cqrs_log_info(r->env.log, "replay resumes from its checkpoint", "replayId", r->req.id, "applied", before,
                    "offsets", offsets, "instance", r->env.instance, NULL);
    }
  }
  if (!(loop = cqrs_apply_loop_new(r->env.cfg, r->env.log, metrics, r->env.pool, r->tenants, r->proj, &opts, &err)) ||
      !cqrs_apply_loop_start(loop, &err))
    goto failed;
  run_outcome_t o = drive(r, loop, start, r->req.from_ms == 0);
  int64_t pos[MAX_PARTITIONS];
  cqrs_apply_loop_positions(loop, pos, r->partitions);
  uint64_t applied = r->applied_before + consumed(r, pos, start), total = r->total_before + span(r, start);
  if (o == RUN_ABANDONED) goto out;
  if (o == RUN_CANCELLED) {
    cqrs_apply_loop_stop(loop);
    drop_built(r, target);
    finish(r, CQRS_REPLAY_CANCELLED, applied, total, NULL);
    goto out;
  }
  state_t swapping = {CQRS_REPLAY_SWAPPING, applied, total, NULL, NULL, false};
  put_state(r, &swapping);
  if (r->req.from_ms > 0) {
    cqrs_apply_loop_stop(loop);
    if (!copy_back(r, target, &err)) goto failed;
  } else {
    cqrs_rebuild_swap_t *swaps = NULL;
    size_t n_swaps = 0;
    int64_t swapped_ms = cqrs_time_monotonic_ms();
    if (!cqrs_rebuild_swap_all(r->tenants, r->env.pool, r->env.log, r->proj, target, loop, &swaps, &n_swaps, &err)) {
      free(swaps);
      goto failed;
    }
    cqrs_rebuild_finish_swaps(r->env.cfg, r->env.log, r->proj, loop, r->tenants, r->env.pool, target, swaps, n_swaps,
                              swapped_ms, &r->worker);
    cqrs_apply_loop_stop(loop);
    cqrs_rebuild_drop_unused(r->tenants, r->env.pool, r->env.log, target, swaps, n_swaps);
    free(swaps);
  }
  cqrs_apply_loop_positions(loop, pos, r->partitions);
  applied = r->applied_before + consumed(r, pos, start);
  finish(r, CQRS_REPLAY_COMPLETED, applied, applied, NULL);
  goto out;
failed:
  if (!cqrs_worker_stopping(&r->worker)) finish(r, CQRS_REPLAY_FAILED, 0, 0, err.message[0] ? err.message : "failed");
out:
  cqrs_apply_loop_destroy(loop);
  if (r->probe) {
    rd_kafka_consumer_close(r->probe);
    rd_kafka_destroy(r->probe);
  }
  cqrs_tenants_destroy(r->tenants);
  cqrs_metrics_destroy(metrics);
  free(r->t_events);
  atomic_store(&r->finished, true);
  return NULL;
}

cqrs_replay_t *cqrs_replay_start(const cqrs_replay_env_t *env, const char *id, cqrs_error_t *err) {
  cqrs_replay_t *r = cqrs_xcalloc(1, sizeof *r);
  r->env = *env;
  snprintf(r->req.id, sizeof r->req.id, "%s", id);
  char *k = key_of(CQRS_OPS_REPLAY, id);
  char *v = cqrs_ops_get(env->ops, k);
  free(k);
  bool ok = parse_request(v, &r->req);
  free(v);
  if (!ok || !(r->proj = cqrs_projection_find(r->req.projection))) {
    cqrs_error_set(err, CQRS_ERR_INVALID, NULL, "replay %s: its request does not parse or names no projection", id);
    free(r);
    return NULL;
  }
  r->aggregates = cqrs_map_new(NULL);
  if (!cqrs_worker_start(&r->worker, "replay", run, r, err)) {
    cqrs_map_destroy(r->aggregates);
    free(r);
    return NULL;
  }
  return r;
}

bool cqrs_replay_finished(cqrs_replay_t *r) { return atomic_load(&r->finished); }

const char *cqrs_replay_projection(const cqrs_replay_t *r) { return r->req.projection; }

void cqrs_replay_abandon(cqrs_replay_t *r) {
  if (!r) return;
  cqrs_worker_stop(&r->worker);
  cqrs_map_destroy(r->aggregates);
  free(r);
}
