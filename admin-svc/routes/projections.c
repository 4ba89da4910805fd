/* Projections: GET /v1/admin/projections (state, lag per partition from the
 * projector's committed offsets, events applied, last error) and POST
 * /v1/admin/projections/{p}/pause|resume, written as "projection/<p>" on the
 * ops topic (cqrs/ops.h) that every projector replica follows. Platform
 * administrators only: a projection serves every tenant. */
#include "../routes.h"

#include "projection.h"

#include "cqrs/json.h"
#include "cqrs/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PUT_TIMEOUT_MS 10000
#define STALE_MS 30000 /* a replica's report older than this is a replica gone */

static const char *str(const bson_t *doc, const char *key) {
  bson_iter_t it;
  return doc && bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : NULL;
}

static int64_t parse_ms(const char *s) {
  struct tm tm = {0};
  const char *rest = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
  return rest ? (int64_t)timegm(&tm) * 1000 : 0;
}

/* Whether a replay of p is open (pending to swapping). */
static bool rebuilding(admin_ctx_t *ctx, const char *p) {
  char **keys, **values;
  size_t n = cqrs_ops_list(ctx->ops, CQRS_OPS_REPLAY, &keys, &values);
  bool found = false;
  for (size_t i = 0; i < n && !found; i++) {
    cqrs_error_t err = {0};
    bson_t *req = cqrs_json_parse(values[i], strlen(values[i]), &err);
    const char *proj = str(req, "projection"), *id = str(req, "replayId");
    if (proj && id && strcmp(proj, p) == 0) {
      char key[96];
      snprintf(key, sizeof key, "%s%s", CQRS_OPS_REPLAY_STATE, id);
      char *v = cqrs_ops_get(ctx->ops, key);
      bson_t *st = v ? cqrs_json_parse(v, strlen(v), &err) : NULL;
      const char *s = str(st, "state");
      found = !s || strcmp(s, CQRS_REPLAY_PENDING) == 0 || strcmp(s, CQRS_REPLAY_RUNNING) == 0 ||
              strcmp(s, CQRS_REPLAY_PAUSED) == 0 || strcmp(s, CQRS_REPLAY_SWAPPING) == 0;
      if (st) bson_destroy(st);
      free(v);
    }
    if (req) bson_destroy(req);
  }
  cqrs_ops_free_list(keys, values, n);
  return found;
}

/* The projection object of p into out. */
static void projection_object(admin_ctx_t *ctx, const char *p, bson_t *out) {
  char prefix[128];
  snprintf(prefix, sizeof prefix, "%s%s/", CQRS_OPS_PROJECTION_STATE, p);
  char **keys, **values;
  size_t n = cqrs_ops_list(ctx->ops, prefix, &keys, &values);
  int64_t applied = 0, now = (int64_t)time(NULL) * 1000;
  bool halted = false, paused = false;
  char last_error[256] = "", updated[40] = "";
  for (size_t i = 0; i < n; i++) {
    cqrs_error_t err = {0};
    bson_t *st = cqrs_json_parse(values[i], strlen(values[i]), &err);
    const char *at = str(st, "updatedAt"), *s = str(st, "state"), *e = str(st, "lastError");
    if (st && at && now - parse_ms(at) < STALE_MS) {
      bson_iter_t it;
      if (bson_iter_init_find(&it, st, "eventsApplied")) applied += bson_iter_as_int64(&it);
      if (s && strcmp(s, "halted") == 0) halted = true;
      if (s && strcmp(s, "paused") == 0) paused = true;
      if (e && !last_error[0]) snprintf(last_error, sizeof last_error, "%s", e);
      if (strcmp(at, updated) > 0) snprintf(updated, sizeof updated, "%s", at);
    }
    if (st) bson_destroy(st);
  }
  cqrs_ops_free_list(keys, values, n);
  BSON_APPEND_UTF8(out, "projection", p);
  BSON_APPEND_UTF8(out, "state", halted ? "halted" : paused ? "paused" : rebuilding(ctx, p) ? "rebuilding" : "running");
  int64_t lo[ADMIN_MAX_PARTITIONS], hi[ADMIN_MAX_PARTITIONS], at[ADMIN_MAX_PARTITIONS], committed[ADMIN_MAX_PARTITIONS];
  cqrs_error_t err = {0};
  int parts = admin_probe_events(ctx->probe, 0, lo, hi, at, &err);
  char group[CQRS_GROUP_MAX];
  cqrs_config_projector_group(p, false, group, sizeof group);
  bool known = parts > 0 && admin_probe_committed(ctx->probe, group, parts, committed, &err);
  bson_t arr, item;
  int64_t total = 0;
  BSON_APPEND_ARRAY_BEGIN(out, "lag", &arr);
  for (int i = 0; known && i < parts; i++) {
    char idx[16];
    const char *k;
    bson_uint32_to_string((uint32_t)i, &k, idx, sizeof idx);
    int64_t c = committed[i] >= 0 ? committed[i] : lo[i];
    BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &item);
    BSON_APPEND_INT32(&item, "partition", i);
    BSON_APPEND_INT64(&item, "committed", committed[i]);
    BSON_APPEND_INT64(&item, "end", hi[i]);
    BSON_APPEND_INT64(&item, "lag", hi[i] > c ? hi[i] - c : 0);
    bson_append_document_end(&arr, &item);
    total += hi[i] > c ? hi[i] - c : 0;
  }
  bson_append_array_end(out, &arr);
  if (known)
    BSON_APPEND_INT64(out, "lagTotal", total);
  else
    BSON_APPEND_NULL(out, "lagTotal");
  BSON_APPEND_INT64(out, "eventsApplied", applied);
  if (last_error[0])
    BSON_APPEND_UTF8(out, "lastError", last_error);
  else
    BSON_APPEND_NULL(out, "lastError");
  if (updated[0])
    BSON_APPEND_UTF8(out, "updatedAt", updated);
  else
    BSON_APPEND_NULL(out, "updatedAt");
}

static void projection_list(cqrs_http_req_t *req, void *arg) {
  admin_ctx_t *ctx = arg;
  admin_caller_t caller;
  if (!admin_gate_admin(req, ctx, "projection.list", &caller)) return;
  bson_t doc = BSON_INITIALIZER, arr, item;
  BSON_APPEND_ARRAY_BEGIN(&doc, "items", &arr);
  for (uint32_t i = 0; cqrs_projections[i]; i++) {
    char idx[16];
    const char *k;
    bson_uint32_to_string(i, &k, idx, sizeof idx);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, k, &item);
    projection_object(ctx, cqrs_projections[i]->name, &item);
    bson_append_document_end(&arr, &item);
  }
  bson_append_array_end(&doc, &arr);
  BSON_APPEND_NULL(&doc, "nextCursor");
  cqrs_http_reply_doc(req, 200, &doc);
  bson_destroy(&doc);
}

static void projection_action(cqrs_http_req_t *req, void *arg) {
  admin_ctx_t *ctx = arg;
  const char *tail = cqrs_http_req_tail(req);
  const char *slash = strchr(tail, '/');
  const char *verb = slash ? slash + 1 : "";
  bool pause = strcmp(verb, "pause") == 0, resume = strcmp(verb, "resume") == 0;
  char name[64], action[40];
  snprintf(name, sizeof name, "%.*s", (int)(slash ? (size_t)(slash - tail) : strlen(tail)), tail);
  snprintf(action, sizeof action, "projection.%s", pause ? "pause" : resume ? "resume" : "unknown");
  admin_caller_t caller;
  if (!admin_gate_admin(req, ctx, action, &caller)) return;
  if (!pause && !resume) {
    cqrs_http_reply_error(req, 404, "no such resource", NULL);
    return;
  }
  if (!caller.platform) {
    admin_refuse(req, ctx, &caller, action, name, 403, "pausing a projection needs scope platform:admin");
    return;
  }
  if (!cqrs_projection_find(name)) {
    admin_refuse(req, ctx, &caller, action, name, 404, "no such projection");
    return;
  }
  /* resumes counts every resume: a projection halted at a poison event moves past it at the next */
  char key[96];
  snprintf(key, sizeof key, "%s%s", CQRS_OPS_PROJECTION, name);
  char *v = cqrs_ops_get(ctx->ops, key);
  cqrs_error_t err = {0};
  bson_t *old = v ? cqrs_json_parse(v, strlen(v), &err) : NULL;
  free(v);
  int64_t resumes = 0;
  bool present;
  if (old) cqrs_json_get_int64(old, "resumes", NULL, false, &resumes, &present, &err);
  if (old) bson_destroy(old);
  char now[32], json[128];
  cqrs_time_now_rfc3339(now);
  snprintf(json, sizeof json, "{\"want\":\"%s\",\"resumes\":%lld,\"at\":\"%s\"}", pause ? "pause" : "run",
           (long long)(resumes + (resume ? 1 : 0)), now);
  if (!cqrs_ops_put(ctx->ops, key, json, true, PUT_TIMEOUT_MS, &err)) {
    admin_refuse(req, ctx, &caller, action, name, 503, "the control plane did not answer in time; retry");
    return;
  }
  admin_audit(ctx, &caller, action, name, 202);
  bson_t doc = BSON_INITIALIZER;
  projection_object(ctx, name, &doc);
  cqrs_http_reply_doc(req, 202, &doc);
  bson_destroy(&doc);
}

void admin_projection_routes(cqrs_http_server_t *http, admin_ctx_t *ctx) {
  cqrs_http_server_route(http, "GET", "/v1/admin/projections", "/v1/admin/projections", projection_list, ctx);
  static const char *const verbs[] = {"pause", "resume"};
  for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
    char path[64];
    snprintf(path, sizeof path, "/v1/admin/projections/{p}/%s", verbs[i]);
    cqrs_http_server_route(http, "POST", path, "/v1/admin/projections/{p}/{action}", projection_action, ctx);
  }
}
