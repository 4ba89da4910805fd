/* Replays: POST/GET /v1/admin/replays, GET /v1/admin/replays/{id} and
 * POST /v1/admin/replays/{id}/pause|resume|cancel. A dry run (the default)
 * reads the event log's offsets and changes nothing; an applied replay is a
 * "replay/<id>" record on the ops topic (cqrs/ops.h) that projector-svc runs
 * and reports on as "replay-state/<id>". A tenant's administrator sees and
 * starts only replays of its tenant. */
#include "../routes.h"

#include "projection.h"

#include "cqrs/alloc.h"
#include "cqrs/json.h"
#include "cqrs/tenant.h"
#include "cqrs/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ID_LEN 16
#define PUT_TIMEOUT_MS 10000
#define DEFAULT_RATE 2000.0 /* events/s a replay is estimated at before one has been measured */

static pthread_mutex_t start_mu = PTHREAD_MUTEX_INITIALIZER; /* one start at a time: the 409 check holds */

/* "2026-12-02T03:00:00Z" (fraction optional) into ms since the epoch. */
static bool parse_time(const char *s, int64_t *ms) {
  struct tm tm = {0};
  const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return false;
  int frac = 0, digits = 0;
  if (*rest == '.')
    for (rest++; *rest >= '0' && *rest <= '9'; rest++, digits++)
      if (digits < 3) frac = frac * 10 + (*rest - '0');
  for (int d = digits; d < 3 && digits > 0; d++) frac *= 10;
  if (strcmp(rest, "Z") != 0) return false;
  *ms = (int64_t)timegm(&tm) * 1000 + frac;
  return *ms > 0;
}

static char *key_of(const char *prefix, const char *id) {
  size_t n = strlen(prefix) + strlen(id) + 1;
  char *k = cqrs_xmalloc(n);
  snprintf(k, n, "%s%s", prefix, id);
  return k;
}

static bson_t *record(admin_ctx_t *ctx, const char *prefix, const char *id) {
  char *k = key_of(prefix, id);
  char *v = cqrs_ops_get(ctx->ops, k);
  free(k);
  cqrs_error_t err = {0};
  bson_t *doc = v ? cqrs_json_parse(v, strlen(v), &err) : NULL;
  free(v);
  return doc;
}

static const char *str(const bson_t *doc, const char *key) {
  bson_iter_t it;
  return doc && bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : NULL;
}

static void copy_or_null(bson_t *out, const bson_t *from, const char *key, const char *as) {
  bson_iter_t it;
  if (from && bson_iter_init_find(&it, from, key))
    bson_append_iter(out, as ? as : key, -1, &it);
  else
    bson_append_null(out, as ? as : key, -1);
}

/* The state of replay id as the API shows it ("pending" before the projector reports). */
static void state_of(const bson_t *st, char out[16]) {
  const char *s = str(st, "state");
  snprintf(out, 16, "%s", s ? s : CQRS_REPLAY_PENDING);
}

static bool open_state(const char *s) {
  return strcmp(s, CQRS_REPLAY_COMPLETED) != 0 && strcmp(s, CQRS_REPLAY_FAILED) != 0 &&
         strcmp(s, CQRS_REPLAY_CANCELLED) != 0;
}

/* The replay object of request req (its "replay/<id>" record) into out. */
static void replay_object(admin_ctx_t *ctx, const bson_t *req, bson_t *out) {
  const char *id = str(req, "replayId");
  bson_t *st = id ? record(ctx, CQRS_OPS_REPLAY_STATE, id) : NULL;
  char state[16];
  state_of(st, state);
  /* asked to pause or cancel and not yet acted on: show what is true now */
  BSON_APPEND_UTF8(out, "replayId", id ? id : "");
  copy_or_null(out, req, "projection", NULL);
  copy_or_null(out, req, "from", NULL);
  copy_or_null(out, req, "tenant", NULL);
  BSON_APPEND_UTF8(out, "state", state);
  bson_iter_t it;
  BSON_APPEND_INT64(out, "applied", st && bson_iter_init_find(&it, st, "applied") ? bson_iter_as_int64(&it) : 0);
  BSON_APPEND_INT64(out, "total", st && bson_iter_init_find(&it, st, "total") ? bson_iter_as_int64(&it) : 0);
  BSON_APPEND_DOUBLE(out, "rate", st && bson_iter_init_find(&it, st, "rate") ? bson_iter_as_double(&it) : 0);
  copy_or_null(out, st, "etaSeconds", NULL);
  copy_or_null(out, req, "createdAt", NULL);
  copy_or_null(out, st, "startedAt", NULL);
  copy_or_null(out, st, "finishedAt", NULL);
  copy_or_null(out, st, "error", NULL);
  copy_or_null(out, req, "requestedBy", NULL);
  copy_or_null(out, st, "phase", NULL);
  if (st) bson_destroy(st);
}

/* The open replay of projection, if any, into id_out. */
static bool running_replay(admin_ctx_t *ctx, const char *projection, char id_out[64]) {
  char **keys, **values;
  size_t n = cqrs_ops_list(ctx->ops, CQRS_OPS_REPLAY, &keys, &values);
  bool found = false;
  for (size_t i = 0; i < n && !found; i++) {
    cqrs_error_t err = {0};
    bson_t *req = cqrs_json_parse(values[i], strlen(values[i]), &err);
    const char *p = str(req, "projection"), *id = str(req, "replayId");
    if (p && id && strcmp(p, projection) == 0) {
      bson_t *st = record(ctx, CQRS_OPS_REPLAY_STATE, id);
      char state[16];
      state_of(st, state);
      if (open_state(state)) {
        snprintf(id_out, 64, "%s", id);
        found = true;
      }
      if (st) bson_destroy(st);
    }
    if (req) bson_destroy(req);
  }
  cqrs_ops_free_list(keys, values, n);
  return found;
}

/* events/s of the last replays that measured one, for estimates */
static double estimated_rate(admin_ctx_t *ctx) {
  char **keys, **values;
  size_t n = cqrs_ops_list(ctx->ops, CQRS_OPS_REPLAY_STATE, &keys, &values);
  double best = 0;
  for (size_t i = 0; i < n; i++) {
    cqrs_error_t err = {0};
    bson_t *st = cqrs_json_parse(values[i], strlen(values[i]), &err);
    bson_iter_t it;
    if (st && bson_iter_init_find(&it, st, "rate") && bson_iter_as_double(&it) > best) best = bson_iter_as_double(&it);
    if (st) bson_destroy(st);
  }
  cqrs_ops_free_list(keys, values, n);
  return best > 0 ? best : DEFAULT_RATE;
}

static void dry_run(cqrs_http_req_t *req, admin_ctx_t *ctx, const char *projection, const char *from, int64_t from_ms,
                    const char *tenant) {
  int64_t lo[ADMIN_MAX_PARTITIONS], hi[ADMIN_MAX_PARTITIONS], at[ADMIN_MAX_PARTITIONS];
  cqrs_error_t err = {0};
  int n = admin_probe_events(ctx->probe, from_ms, lo, hi, at, &err);
  if (n <= 0) {
    cqrs_log_warn(ctx->log, "dry run: Kafka did not answer", "error", err.message, NULL);
    cqrs_http_req_add_header(req, "Retry-After", "1");
    cqrs_http_reply_error(req, 503, "the event log did not answer in time; retry", NULL);
    return;
  }
  bson_t doc = BSON_INITIALIZER, arr, item;
  BSON_APPEND_BOOL(&doc, "dryRun", true);
  BSON_APPEND_UTF8(&doc, "projection", projection);
  BSON_APPEND_UTF8(&doc, "from", from);
  if (tenant)
    BSON_APPEND_UTF8(&doc, "tenant", tenant);
  else
    BSON_APPEND_NULL(&doc, "tenant");
  BSON_APPEND_ARRAY_BEGIN(&doc, "partitions", &arr);
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    char idx[16];
    const char *k;
    bson_uint32_to_string((uint32_t)i, &k, idx, sizeof idx);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &item);
    BSON_APPEND_INT32(&item, "partition", i);
    BSON_APPEND_INT64(&item, "fromOffset", at[i]);
    BSON_APPEND_INT64(&item, "endOffset", hi[i]);
    BSON_APPEND_INT64(&item, "events", hi[i] - at[i]);
    bson_append_document_end(&arr, &item);
    total += hi[i] - at[i];
  }
  bson_append_array_end(&doc, &arr);
  BSON_APPEND_INT64(&doc, "events", total);
  BSON_APPEND_NULL(&doc, "aggregates"); /* known only by reading the events: the replay's scan does */
  /* from a time, the affected aggregates' whole histories are read again too: at least the whole log */
  int64_t work = total;
  if (from_ms > 0)
    for (int i = 0; i < n; i++) work += hi[i] - lo[i];
  BSON_APPEND_DOUBLE(&doc, "estimatedSeconds", (double)work / estimated_rate(ctx));
  cqrs_http_reply_doc(req, 200, &doc);
  bson_destroy(&doc);
}

static void make_id(char out[ID_LEN + 1]) {
  char uuid[CQRS_UUID_LEN];
  cqrs_uuid_random(uuid);
  size_t j = 0;
  for (size_t i = 0; uuid[i] && j < ID_LEN; i++)
    if (uuid[i] != '-') out[j++] = uuid[i];
  out[j] = '\0';
}

static void replay_start(cqrs_http_req_t *req, void *arg) {
  admin_ctx_t *ctx = arg;
  admin_caller_t caller;
  const char *action = "replay.start";
  if (!admin_gate_admin(req, ctx, action, &caller)) return;
  cqrs_error_t err = {0};
  size_t len;
  const char *body = cqrs_http_req_body(req, &len);
  bson_t *doc = cqrs_json_parse(body, len, &err);
  static const char *const members[] = {"projection", "from", "tenant", "dryRun", NULL};
  const char *projection = NULL, *from = NULL, *tenant = NULL;
  bool dry = true;
  int64_t from_ms = 0;
  bson_iter_t it;
  if (!doc || !cqrs_json_members_known(doc, members, &err) ||
      !cqrs_json_get_string(doc, "projection", NULL, true, 60, &projection, &err) ||
      !cqrs_json_get_string(doc, "from", NULL, true, 40, &from, &err) ||
      !cqrs_json_get_string(doc, "tenant", NULL, false, CQRS_TENANT_MAX, &tenant, &err))
    goto bad;
  if (bson_iter_init_find(&it, doc, "dryRun") && !BSON_ITER_HOLDS_NULL(&it)) {
    if (!BSON_ITER_HOLDS_BOOL(&it)) {
      cqrs_error_set(&err, CQRS_ERR_INVALID, "dryRun", "dryRun must be true or false");
      goto bad;
    }
    dry = bson_iter_bool(&it);
  }
  if (!cqrs_projection_find(projection)) {
    cqrs_error_set(&err, CQRS_ERR_INVALID, "projection", "unknown projection %s", projection);
    goto bad;
  }
  if (strcmp(from, "beginning") != 0 && !parse_time(from, &from_ms)) {
    cqrs_error_set(&err, CQRS_ERR_INVALID, "from", "from must be \"beginning\" or an RFC 3339 UTC time");
    goto bad;
  }
  if (!caller.platform) {
    if (tenant && strcmp(tenant, caller.who.tenant) != 0) {
      cqrs_error_set(&err, CQRS_ERR_INVALID, "tenant", "unknown tenant %s", tenant);
      goto bad;
    }
    tenant = caller.who.tenant; /* a tenant's administrator replays its own read models only */
  }
  if (tenant && !(cqrs_tenant_valid(tenant, NULL) &&
                  (cqrs_registry_tenant_state(ctx->reg, tenant) == CQRS_TENANT_ACTIVE ||
                   (!cqrs_auth_enabled(ctx->auth) && strcmp(tenant, CQRS_TENANT_DEFAULT) == 0)))) {
    cqrs_error_set(&err, CQRS_ERR_INVALID, "tenant", "unknown tenant %s", tenant);
    goto bad;
  }
  if (dry) {
    dry_run(req, ctx, projection, from, from_ms, tenant);
    admin_audit(ctx, &caller, "replay.dryrun", projection, 200);
    bson_destroy(doc);
    return;
  }
  pthread_mutex_lock(&start_mu);
  char running[64], id[ID_LEN + 1];
  if (running_replay(ctx, projection, running)) {
    pthread_mutex_unlock(&start_mu);
    char msg[160];
    snprintf(msg, sizeof msg, "a replay of %s is running: %s", projection, running);
    admin_refuse(req, ctx, &caller, action, projection, 409, msg);
    bson_destroy(doc);
    return;
  }
  make_id(id);
  char now[32];
  cqrs_time_now_rfc3339(now);
  bson_t rec = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&rec, "replayId", id);
  BSON_APPEND_UTF8(&rec, "projection", projection);
  BSON_APPEND_UTF8(&rec, "from", from);
  BSON_APPEND_INT64(&rec, "fromMs", from_ms);
  if (tenant)
    BSON_APPEND_UTF8(&rec, "tenant", tenant);
  else
    BSON_APPEND_NULL(&rec, "tenant");
  BSON_APPEND_UTF8(&rec, "requestedBy", caller.who.subject);
  BSON_APPEND_UTF8(&rec, "createdAt", now);
  char *json = cqrs_json_write(&rec, NULL);
  bson_destroy(&rec);
  char *k = key_of(CQRS_OPS_REPLAY, id);
  bool ok = cqrs_ops_put(ctx->ops, k, json, true, PUT_TIMEOUT_MS, &err);
  pthread_mutex_unlock(&start_mu);
  free(k);
  bson_free(json);
  char target[96];
  snprintf(target, sizeof target, "%s/%s", projection, id);
  if (!ok) {
    cqrs_log_warn(ctx->log, "cannot write a replay request", "error", err.message, NULL);
    admin_refuse(req, ctx, &caller, action, target, 503, "the control plane did not answer in time; retry");
  } else {
    char body_out[64], location[64];
    snprintf(body_out, sizeof body_out, "{\"replayId\":\"%s\"}", id);
    snprintf(location, sizeof location, "/v1/admin/replays/%s", id);
    cqrs_http_req_add_header(req, "Location", location);
    cqrs_http_reply_json(req, 202, body_out, strlen(body_out));
    cqrs_log_info(ctx->log, "replay requested", "replayId", id, "projection", projection, "from", from, NULL);
    admin_audit(ctx, &caller, action, target, 202);
  }
  bson_destroy(doc);
  return;
bad:
  cqrs_http_reply_cqrs_error(req, &err);
  admin_audit(ctx, &caller, action, projection ? projection : "", 400);
  if (doc) bson_destroy(doc);
}

/* May caller see replay request req? */
static bool visible(const admin_caller_t *caller, const bson_t *req) {
  if (caller->platform) return true;
  const char *t = str(req, "tenant");
  return t && strcmp(t, caller->who.tenant) == 0;
}

static int newest_first(const void *a, const void *b) {
  const char *x = str(*(bson_t *const *)a, "createdAt"), *y = str(*(bson_t *const *)b, "createdAt");
  return strcmp(y ? y : "", x ? x : "");
}

static void replay_list(cqrs_http_req_t *req, void *arg) {
  admin_ctx_t *ctx = arg;
  admin_caller_t caller;
  if (!admin_gate_admin(req, ctx, "replay.list", &caller)) return;
  static const char *const params[] = {"limit", "cursor", NULL};
  int limit;
  if (!admin_query_only(req, params) || !admin_limit(req, &limit)) return;
  const char *cursor = cqrs_http_req_query(req, "cursor");
  long skip = cursor ? strtol(cursor, NULL, 10) : 0;
  if (skip < 0) skip = 0;
  char **keys, **values;
  size_t n = cqrs_ops_list(ctx->ops, CQRS_OPS_REPLAY, &keys, &values), m = 0;
  bson_t **reqs = cqrs_xcalloc(n ? n : 1, sizeof *reqs);
  for (size_t i = 0; i < n; i++) {
    cqrs_error_t err = {0};
    bson_t *r = cqrs_json_parse(values[i], strlen(values[i]), &err);
    if (r && visible(&caller, r))
      reqs[m++] = r;
    else if (r)
      bson_destroy(r);
  }
  cqrs_ops_free_list(keys, values, n);
  qsort(reqs, m, sizeof *reqs, newest_first);
  bson_t doc = BSON_INITIALIZER, arr, item;
  BSON_APPEND_ARRAY_BEGIN(&doc, "items", &arr);
  size_t shown = 0;
  for (size_t i = (size_t)skip; i < m && shown < (size_t)limit; i++, shown++) {
    char idx[16];
    const char *k;
    bson_uint32_to_string((uint32_t)shown, &k, idx, sizeof idx);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &item);
    replay_object(ctx, reqs[i], &item);
    bson_append_document_end(&arr, &item);
  }
  bson_append_array_end(&doc, &arr);
  if ((size_t)skip + shown < m) {
    char next[24];
    snprintf(next, sizeof next, "%zu", (size_t)skip + shown);
    BSON_APPEND_UTF8(&doc, "nextCursor", next);
  } else {
    BSON_APPEND_NULL(&doc, "nextCursor");
  }
  for (size_t i = 0; i < m; i++) bson_destroy(reqs[i]);
  free(reqs);
  cqrs_http_reply_doc(req, 200, &doc);
  bson_destroy(&doc);
}

/* What an action wants, and the states it may be asked in. */
typedef struct {
  const char *verb;
  const char *want;
  const char *const allowed[4];
} replay_action_t;

static const replay_action_t actions[] = {
    {"pause", "pause", {CQRS_REPLAY_PENDING, CQRS_REPLAY_RUNNING, NULL}},
    {"resume", "run", {CQRS_REPLAY_PAUSED, NULL}},
    {"cancel", "cancel", {CQRS_REPLAY_PENDING, CQRS_REPLAY_RUNNING, CQRS_REPLAY_PAUSED, NULL}},
};

static void replay_item(cqrs_http_req_t *req, void *arg) {
  admin_ctx_t *ctx = arg;
  const char *tail = cqrs_http_req_tail(req);
  const char *slash = strchr(tail, '/');
  char id[64];
  snprintf(id, sizeof id, "%.*s", (int)(slash ? (size_t)(slash - tail) : strlen(tail)), tail);
  const replay_action_t *a = NULL;
  for (size_t i = 0; slash && i < sizeof actions / sizeof actions[0]; i++)
    if (strcmp(slash + 1, actions[i].verb) == 0) a = &actions[i];
  bool post = strcmp(cqrs_http_req_method(req), "POST") == 0;
  char action[32];
  snprintf(action, sizeof action, "replay.%s", a ? a->verb : "get");
  admin_caller_t caller;
  if (!admin_gate_admin(req, ctx, action, &caller)) return;
  if ((slash && !a) || (a && !post) || (!a && post)) {
    cqrs_http_reply_error(req, 404, "no such resource", NULL);
    return;
  }
  bson_t *r = strlen(id) == ID_LEN ? record(ctx, CQRS_OPS_REPLAY, id) : NULL;
  if (!r || !visible(&caller, r)) {
    if (a) admin_audit(ctx, &caller, action, id, 404);
    cqrs_http_reply_error(req, 404, "no such replay", NULL);
    if (r) bson_destroy(r);
    return;
  }
  int status = 200;
  if (a) {
    bson_t *st = record(ctx, CQRS_OPS_REPLAY_STATE, id);
    char state[16];
    state_of(st, state);
    if (st) bson_destroy(st);
    bool ok = false;
    for (size_t i = 0; a->allowed[i]; i++) ok = ok || strcmp(a->allowed[i], state) == 0;
    if (!ok) {
      char msg[96];
      snprintf(msg, sizeof msg, "a %s replay cannot be asked to %s", state, a->verb);
      admin_refuse(req, ctx, &caller, action, id, 409, msg);
      bson_destroy(r);
      return;
    }
    char now[32], json[96];
    cqrs_time_now_rfc3339(now);
    snprintf(json, sizeof json, "{\"want\":\"%s\",\"at\":\"%s\"}", a->want, now);
    char *k = key_of(CQRS_OPS_REPLAY_WANT, id);
    cqrs_error_t err = {0};
    bool put = cqrs_ops_put(ctx->ops, k, json, true, PUT_TIMEOUT_MS, &err);
    free(k);
    if (!put) {
      admin_refuse(req, ctx, &caller, action, id, 503, "the control plane did not answer in time; retry");
      bson_destroy(r);
      return;
    }
    status = 202;
    admin_audit(ctx, &caller, action, id, status);
  }
  bson_t doc = BSON_INITIALIZER;
  replay_object(ctx, r, &doc);
  cqrs_http_reply_doc(req, status, &doc);
  bson_destroy(&doc);
  bson_destroy(r);
}

void admin_replay_routes(cqrs_http_server_t *http, admin_ctx_t *ctx) {
  cqrs_http_server_route(http, "POST", "/v1/admin/replays", "/v1/admin/replays", replay_start, ctx);
  cqrs_http_server_route(http, "GET", "/v1/admin/replays", "/v1/admin/replays", replay_list, ctx);
  cqrs_http_server_route(http, "GET", "/v1/admin/replays/{id}", "/v1/admin/replays/{id}", replay_item, ctx);
  for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
    char path[64];
    snprintf(path, sizeof path, "/v1/admin/replays/{id}/%s", actions[i].verb);
    cqrs_http_server_route(http, "POST", path, "/v1/admin/replays/{id}/{action}", replay_item, ctx);
  }
}
